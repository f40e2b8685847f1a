//! Shared timing harness for the Rust peer frameworks (dfdx, candle, burn).
//!
//! A Rust port of the method of `shared/bench/bench_peers.py`: the same cases, the same
//! warm-up / calibration / repeats / median, the same "wait for a quiet machine and re-time a
//! disturbed measurement" rule, and the same JSON and Markdown layout. Each framework is its own
//! binary (`peer-dfdx`, `peer-candle`, `peer-burn`, built behind a Cargo feature of the same
//! name); `peers` runs every framework binary that was built. Each (framework, threads) pair runs
//! in a fresh child process whose thread knobs are set in its environment before the framework
//! initialises, and which pins itself to its first `threads` CPUs.

use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const LR: f32 = 0.01;

pub const TINY_LAYERS: [(usize, usize); 3] = [(4, 16), (16, 16), (16, 3)];
pub const MLP_LAYERS: [(usize, usize); 3] = [(784, 256), (256, 128), (128, 10)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    Tiny,
    Mlp,
    Cnn,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Tiny => "tiny",
            Model::Mlp => "mlp",
            Model::Cnn => "cnn",
        }
    }
    pub fn classes(self) -> usize {
        match self {
            Model::Tiny => 3,
            _ => 10,
        }
    }
    /// Input features per sample (cnn: 1×28×28, NCHW).
    pub fn inputs(self) -> usize {
        match self {
            Model::Tiny => 4,
            Model::Mlp => 784,
            Model::Cnn => 28 * 28,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Train,
    Infer,
}

#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub kind: Kind,
    pub model: Model,
    pub batch: usize,
}

/// The cases of bench_peers.py, in its order.
pub const CASES: [Case; 6] = [
    Case { name: "tiny_train_b32", kind: Kind::Train, model: Model::Tiny, batch: 32 },
    Case { name: "mlp_train_b128", kind: Kind::Train, model: Model::Mlp, batch: 128 },
    Case { name: "cnn_train_b64", kind: Kind::Train, model: Model::Cnn, batch: 64 },
    Case { name: "tiny_infer_b1", kind: Kind::Infer, model: Model::Tiny, batch: 1 },
    Case { name: "mlp_infer_b1", kind: Kind::Infer, model: Model::Mlp, batch: 1 },
    Case { name: "mlp_infer_b128", kind: Kind::Infer, model: Model::Mlp, batch: 128 },
];

/// Seeded random batch: inputs ~ N(0, 1) (row-major; cnn is NCHW with C = 1), labels uniform
/// in `0..classes`. Not numpy's generator, so not the same numbers as bench_peers.py, but the
/// same distribution.
pub struct Data {
    pub x: Vec<f32>,
    pub y: Vec<usize>,
}

pub fn data(model: Model, batch: usize, seed: u64) -> Data {
    let mut rng = SplitMix64(seed ^ 0x5eed_0000_0000_0000);
    let n = batch * model.inputs();
    let mut x = Vec::with_capacity(n);
    while x.len() < n {
        // Box-Muller
        let u1 = ((rng.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        x.push((r * t.cos()) as f32);
        if x.len() < n {
            x.push((r * t.sin()) as f32);
        }
    }
    let y = (0..batch).map(|_| (rng.next() % model.classes() as u64) as usize).collect();
    Data { x, y }
}

struct SplitMix64(u64);
impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One built training case: `step` runs forward, mean softmax cross-entropy, backward and the SGD
/// update, and returns the loss it computed (read back, so the step must have happened);
/// `eval_loss` computes the loss on the same batch without updating anything.
pub trait TrainStep {
    fn step(&mut self) -> f32;
    fn eval_loss(&mut self) -> f32;
}

/// One built inference case: `step` runs the forward pass (no gradient tracking) and keeps the
/// output alive through `black_box`; `checksum` reads the output of one more forward back.
pub trait InferStep {
    fn step(&mut self);
    fn checksum(&mut self) -> f32;
}

/// What a framework binary provides.
pub struct Framework {
    /// Row name in the tables ("dfdx", "candle", "burn-ndarray").
    pub name: &'static str,
    pub version: &'static str,
    /// Extra facts recorded in the worker's JSON (crate features, backend, ...).
    pub info: fn() -> Value,
    /// `Err(reason)` when this framework cannot run the case (recorded as skipped).
    pub build_train: fn(Model, usize, &Data) -> Result<Box<dyn TrainStep>, String>,
    pub build_infer: fn(Model, usize, &Data) -> Result<Box<dyn InferStep>, String>,
}

// ---------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Options {
    pub min_time: f64,
    pub repeats: usize,
    pub warmup: usize,
    pub only: Option<Vec<String>>,
    pub threads: Vec<usize>,
    pub frameworks: Option<Vec<String>>,
    pub out_json: Option<PathBuf>,
    pub out_md: Option<PathBuf>,
    // internal (worker mode)
    pub worker: bool,
    pub nthreads: usize,
    pub result: Option<PathBuf>,
}

const USAGE: &str = "\
Options: --min-time S (seconds per timed repeat, default 1.0), --repeats N (default 5),
--warmup N (default 20), --only case1,case2 (default: all six cases), --threads 1,2,
--frameworks dfdx,candle,burn-ndarray (peers only; default: all three, a framework whose
binary was not built is reported as a failed row),
--out-json PATH, --out-md PATH.
Internal: --worker --nthreads N --result PATH.";

pub fn parse_options() -> Options {
    let mut o = Options {
        min_time: 1.0,
        repeats: 5,
        warmup: 20,
        only: None,
        threads: vec![1, 2],
        frameworks: None,
        out_json: None,
        out_md: None,
        worker: false,
        nthreads: 1,
        result: None,
    };
    let mut it = std::env::args().skip(1);
    let list = |s: String| s.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = |name: &str| -> String {
            inline.clone().or_else(|| it.next()).unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        match key.as_str() {
            "--min-time" => o.min_time = val("--min-time").parse().unwrap_or_else(|_| die("bad --min-time")),
            "--repeats" => o.repeats = val("--repeats").parse().unwrap_or_else(|_| die("bad --repeats")),
            "--warmup" => o.warmup = val("--warmup").parse().unwrap_or_else(|_| die("bad --warmup")),
            "--only" => o.only = Some(list(val("--only"))),
            "--frameworks" => o.frameworks = Some(list(val("--frameworks"))),
            "--threads" => {
                o.threads = val("--threads")
                    .split(',')
                    .map(|t| t.parse().unwrap_or_else(|_| die("bad --threads")))
                    .collect()
            }
            "--out-json" => o.out_json = Some(val("--out-json").into()),
            "--out-md" => o.out_md = Some(val("--out-md").into()),
            "--worker" => o.worker = true,
            "--nthreads" => o.nthreads = val("--nthreads").parse().unwrap_or_else(|_| die("bad --nthreads")),
            "--result" => o.result = Some(val("--result").into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => die(&format!("unknown argument {a}")),
        }
    }
    if o.repeats == 0 || o.min_time <= 0.0 {
        die("--repeats must be >= 1 and --min-time > 0");
    }
    if let Some(only) = &o.only {
        for c in only {
            if !CASES.iter().any(|k| k.name == c) {
                die(&format!("unknown case {c} (cases: {})", case_names().join(",")));
            }
        }
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}\n{USAGE}");
    std::process::exit(2)
}

pub fn case_names() -> Vec<&'static str> {
    CASES.iter().map(|c| c.name).collect()
}

// ---------------------------------------------------------------------------------------------
// measuring (same rules as bench_peers.py)
// ---------------------------------------------------------------------------------------------

const QUIET_THRESHOLD: f64 = 0.05;
const MAX_ATTEMPTS: usize = 3;

fn max_quiet_wait() -> f64 {
    std::env::var("PEERBENCH_MAX_QUIET_WAIT").ok().and_then(|s| s.parse().ok()).unwrap_or(60.0)
}

fn proc_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        tv(r.ru_utime) + tv(r.ru_stime)
    }
}

/// (busy, steal) jiffies of the whole machine from /proc/stat.
fn sys_stat() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        s.lines().next().unwrap_or("").split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    if v.len() < 8 {
        return (0, 0);
    }
    let (user, nice, system, irq, softirq, steal) = (v[0], v[1], v[2], v[5], v[6], v[7]);
    (user + nice + system + irq + softirq, steal)
}

fn clk_tck() -> f64 {
    // SAFETY: plain sysconf query.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

fn ncpu_machine() -> f64 {
    // SAFETY: plain sysconf query.
    (unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).max(1) as f64
}

/// Share of the machine's CPU capacity used by other processes over `window` seconds.
fn foreign_load(window: f64) -> f64 {
    let c0 = proc_cpu();
    let (b0, _) = sys_stat();
    let t0 = Instant::now();
    std::thread::sleep(std::time::Duration::from_secs_f64(window));
    let wall = t0.elapsed().as_secs_f64();
    let (b1, _) = sys_stat();
    let own = proc_cpu() - c0;
    (((b1 - b0) as f64 / clk_tck() - own) / (wall * ncpu_machine())).max(0.0)
}

fn wait_quiet(max_wait: f64) -> (f64, f64) {
    let t0 = Instant::now();
    loop {
        let f = foreign_load(0.5);
        let waited = t0.elapsed().as_secs_f64();
        if f < QUIET_THRESHOLD || waited >= max_wait {
            return (waited, f);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn measure_once(step: &mut dyn FnMut(), warmup: usize, min_time: f64, repeats: usize) -> Map<String, Value> {
    for _ in 0..warmup {
        step();
    }
    // calibrate the step count so one repeat lasts >= min_time
    let mut n: u64 = 1;
    let mut dt;
    loop {
        let t0 = Instant::now();
        for _ in 0..n {
            step();
        }
        dt = t0.elapsed().as_secs_f64();
        if dt >= min_time.min(0.2) {
            break;
        }
        n *= 2;
    }
    let n = ((n as f64 * min_time / dt).ceil() as u64).max(1);
    let mut per_step = Vec::with_capacity(repeats);
    let c0 = proc_cpu();
    let (b0, s0) = sys_stat();
    let w0 = Instant::now();
    for _ in 0..repeats {
        let t0 = Instant::now();
        for _ in 0..n {
            step();
        }
        per_step.push(t0.elapsed().as_secs_f64() / n as f64 * 1e6);
    }
    let wall = w0.elapsed().as_secs_f64();
    let own_cpu = proc_cpu() - c0;
    let (b1, s1) = sys_stat();
    let sys_busy = (b1 - b0) as f64 / clk_tck();
    let cap = wall * ncpu_machine();
    let mut m = Map::new();
    m.insert("median_us".into(), json!(median(&per_step)));
    m.insert("min_us".into(), json!(per_step.iter().cloned().fold(f64::INFINITY, f64::min)));
    m.insert("max_us".into(), json!(per_step.iter().cloned().fold(0.0, f64::max)));
    m.insert("repeats_us".into(), json!(per_step));
    m.insert("steps_per_repeat".into(), json!(n));
    m.insert("wall_s".into(), json!(wall));
    m.insert("cpu_over_wall".into(), json!(own_cpu / wall));
    m.insert("foreign_cpu_frac".into(), json!(((sys_busy - own_cpu) / cap).max(0.0)));
    m.insert("steal_frac".into(), json!((s1 - s0) as f64 / clk_tck() / cap));
    m
}

/// Waits for a quiet machine, then times; re-times (up to 3 attempts) when other processes used
/// >= 5% of the CPUs during the repeats, and keeps the least disturbed attempt.
pub fn measure(step: &mut dyn FnMut(), warmup: usize, min_time: f64, repeats: usize) -> Map<String, Value> {
    let mut best: Option<Map<String, Value>> = None;
    let mut waited_total = 0.0;
    let mut attempt = 0;
    let frac = |m: &Map<String, Value>| m["foreign_cpu_frac"].as_f64().unwrap();
    for a in 1..=MAX_ATTEMPTS {
        attempt = a;
        let (waited, f_before) = wait_quiet(max_quiet_wait());
        waited_total += waited;
        let mut r = measure_once(step, if a == 1 { warmup } else { 5 }, min_time, repeats);
        r.insert("attempt".into(), json!(a));
        r.insert("foreign_before".into(), json!(f_before));
        let fr = frac(&r);
        if best.as_ref().map_or(true, |b| fr < frac(b)) {
            best = Some(r);
        }
        if fr < QUIET_THRESHOLD {
            break;
        }
        eprintln!("  .. disturbed (foreign CPU {:.0}%), re-timing", fr * 100.0);
    }
    let mut best = best.unwrap();
    best.insert("attempts".into(), json!(attempt));
    best.insert("quiet_wait_s".into(), json!(waited_total));
    best
}

// ---------------------------------------------------------------------------------------------
// worker
// ---------------------------------------------------------------------------------------------

fn affinity() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![];
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Restricts the process (and every thread it starts later) to its first `n` allowed CPUs.
fn pin_first(n: usize) {
    let cpus = affinity();
    // SAFETY: building a cpu_set_t and handing it to sched_setaffinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().take(n.max(1)) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("warning: sched_setaffinity failed");
        }
    }
}

fn loadavg() -> Value {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!(s.split_whitespace().take(3).filter_map(|x| x.parse::<f64>().ok()).collect::<Vec<_>>())
}

fn threads_in_process() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

fn selected_cases(only: &Option<Vec<String>>) -> Vec<Case> {
    CASES.iter().copied().filter(|c| only.as_ref().map_or(true, |o| o.iter().any(|n| n == c.name))).collect()
}

fn run_worker(fw: &Framework, o: &Options) {
    // pin before the framework creates any thread (threads inherit the affinity)
    pin_first(o.nthreads);
    let t_worker = Instant::now();
    let la0 = loadavg();
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for case in selected_cases(&o.only) {
        let d = data(case.model, case.batch, 0);
        let t0 = Instant::now();
        let mut r = match case.kind {
            Kind::Train => {
                let mut s = match (fw.build_train)(case.model, case.batch, &d) {
                    Ok(s) => s,
                    Err(why) => {
                        let why = why.lines().next().unwrap_or("").to_string();
                        eprintln!("  {} {}: skipped ({why})", fw.name, case.name);
                        skipped.push(json!({"case": case.name, "reason": why}));
                        continue;
                    }
                };
                let loss0 = s.eval_loss();
                black_box(s.step()); // first call
                let first = t0.elapsed().as_secs_f64();
                let mut last = 0.0f32;
                let mut r = measure(&mut || last = black_box(s.step()), o.warmup, o.min_time, o.repeats);
                let loss1 = s.eval_loss();
                r.insert("first_call_s".into(), json!(first));
                r.insert("loss_before".into(), json!(loss0));
                r.insert("loss_after".into(), json!(loss1));
                r.insert("last_step_loss".into(), json!(last));
                eprintln!(
                    "  {} {}: median {:.1} us (min {:.1}, max {:.1}) cpu/wall {:.2} loss {:.4}->{:.4}",
                    fw.name,
                    case.name,
                    r["median_us"].as_f64().unwrap(),
                    r["min_us"].as_f64().unwrap(),
                    r["max_us"].as_f64().unwrap(),
                    r["cpu_over_wall"].as_f64().unwrap(),
                    loss0,
                    loss1
                );
                r
            }
            Kind::Infer => {
                let mut s = match (fw.build_infer)(case.model, case.batch, &d) {
                    Ok(s) => s,
                    Err(why) => {
                        let why = why.lines().next().unwrap_or("").to_string();
                        eprintln!("  {} {}: skipped ({why})", fw.name, case.name);
                        skipped.push(json!({"case": case.name, "reason": why}));
                        continue;
                    }
                };
                s.step(); // first call
                let first = t0.elapsed().as_secs_f64();
                let mut r = measure(&mut || s.step(), o.warmup, o.min_time, o.repeats);
                r.insert("first_call_s".into(), json!(first));
                r.insert("output_checksum".into(), json!(s.checksum()));
                eprintln!(
                    "  {} {}: median {:.1} us (min {:.1}, max {:.1}) cpu/wall {:.2}",
                    fw.name,
                    case.name,
                    r["median_us"].as_f64().unwrap(),
                    r["min_us"].as_f64().unwrap(),
                    r["max_us"].as_f64().unwrap(),
                    r["cpu_over_wall"].as_f64().unwrap()
                );
                r
            }
        };
        r.insert("case".into(), json!(case.name));
        r.insert("kind".into(), json!(if case.kind == Kind::Train { "train" } else { "infer" }));
        r.insert("model".into(), json!(case.model.name()));
        r.insert("batch".into(), json!(case.batch));
        results.push(Value::Object(r));
    }
    let knobs: Map<String, Value> =
        THREAD_ENV_KEYS.iter().map(|k| (k.to_string(), json!(std::env::var(k).ok()))).collect();
    let out = json!({
        "version": fw.version,
        "info": (fw.info)(),
        "thread_env": knobs,
        "results": results,
        "skipped": skipped,
        "affinity": affinity(),
        "threads_in_process": threads_in_process(),
        "worker_wall_s": t_worker.elapsed().as_secs_f64(),
        "loadavg_start": la0,
        "loadavg_end": loadavg(),
    });
    let path = o.result.as_ref().unwrap_or_else(|| die("--worker needs --result"));
    std::fs::write(path, serde_json::to_string(&out).unwrap()).expect("write result");
}

// ---------------------------------------------------------------------------------------------
// orchestrator
// ---------------------------------------------------------------------------------------------

/// Thread knobs set in each child's environment: rayon's pool (dfdx's and burn-ndarray's
/// parallel loops, gemm's threads in dfdx and candle, which take their count from rayon),
/// candle's own knob, matrixmultiply's (burn-ndarray's matmul), and the usual BLAS/OpenMP ones.
pub const THREAD_ENV_KEYS: [&str; 6] = [
    "RAYON_NUM_THREADS",
    "CANDLE_NUM_THREADS",
    "MATMUL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
];

/// (name shown in the tables, binary name)
pub const FRAMEWORK_BINARIES: [(&str, &str); 3] =
    [("dfdx", "peer-dfdx"), ("candle", "peer-candle"), ("burn-ndarray", "peer-burn")];

fn spawn(exe: &Path, nt: usize, o: &Options) -> Value {
    let path = std::env::temp_dir().join(format!(
        "peerbench_rs_{}_{}_{}.json",
        std::process::id(),
        exe.file_name().unwrap().to_string_lossy(),
        nt
    ));
    let mut cmd = Command::new(exe);
    cmd.arg("--worker")
        .args(["--nthreads", &nt.to_string()])
        .arg("--result")
        .arg(&path)
        .args(["--min-time", &o.min_time.to_string()])
        .args(["--repeats", &o.repeats.to_string()])
        .args(["--warmup", &o.warmup.to_string()]);
    if let Some(only) = &o.only {
        cmd.args(["--only", &only.join(",")]);
    }
    for k in THREAD_ENV_KEYS {
        cmd.env(k, nt.to_string());
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return json!({"error": format!("spawn {}: {e}", exe.display()), "process_wall_s": 0.0}),
    };
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        if line.starts_with("  ") {
            println!("{line}");
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait");
    let dt = t0.elapsed().as_secs_f64();
    if !status.success() {
        let _ = std::fs::remove_file(&path);
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        println!("!! worker {} t={nt} failed ({status})\n{tail}", exe.display());
        return json!({"error": status.to_string(), "stderr_tail": tail, "process_wall_s": dt});
    }
    let text = std::fs::read_to_string(&path).expect("read worker result");
    let _ = std::fs::remove_file(&path);
    let mut v: Value = serde_json::from_str(&text).expect("parse worker result");
    v["process_wall_s"] = json!(dt);
    v
}

fn sysinfo() -> Value {
    let mut info = Map::new();
    // SAFETY: uname fills the struct it is given.
    let platform = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        let f = |s: &[libc::c_char]| std::ffi::CStr::from_ptr(s.as_ptr()).to_string_lossy().into_owned();
        format!("{}-{}-{}", f(&u.sysname), f(&u.release), f(&u.machine))
    };
    info.insert("platform".into(), json!(platform));
    info.insert("rustc".into(), json!(env!("PEERS_RUSTC_VERSION")));
    info.insert("nproc".into(), json!(ncpu_machine() as usize));
    if let Ok(out) = Command::new("lscpu").output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim(), v.trim());
            if [
                "Model name",
                "Vendor ID",
                "CPU family",
                "Model",
                "Stepping",
                "CPU(s)",
                "Thread(s) per core",
                "L1d cache",
                "L2 cache",
                "L3 cache",
                "Hypervisor vendor",
                "BogoMIPS",
                "CPU max MHz",
            ]
            .contains(&k)
            {
                info.insert(k.into(), json!(v));
            }
            if k == "Flags" {
                let simd: Vec<&str> = v
                    .split_whitespace()
                    .filter(|f| ["avx", "fma", "sse", "ssse", "f16c", "amx"].iter().any(|p| f.starts_with(p)))
                    .collect();
                info.insert("simd_flags".into(), json!(simd));
            }
        }
    }
    Value::Object(info)
}

/// Crate versions resolved in Cargo.lock (read by build.rs), for every framework whether built
/// or not; the workers report the version they were compiled with too.
pub fn locked_versions() -> Value {
    json!({
        "dfdx": env!("PEERS_LOCK_DFDX"),
        "gemm (dfdx)": env!("PEERS_LOCK_GEMM_DFDX"),
        "candle-core": env!("PEERS_LOCK_CANDLE_CORE"),
        "candle-nn": env!("PEERS_LOCK_CANDLE_NN"),
        "burn": env!("PEERS_LOCK_BURN"),
        "burn-ndarray": env!("PEERS_LOCK_BURN_NDARRAY"),
        "burn-autodiff": env!("PEERS_LOCK_BURN_AUTODIFF"),
        "matrixmultiply": env!("PEERS_LOCK_MATRIXMULTIPLY"),
        "rustc": env!("PEERS_RUSTC_VERSION"),
    })
}

fn flops_table() -> Value {
    let dense = |layers: &[(usize, usize)], b: usize| -> u64 {
        layers.iter().map(|&(i, o)| 2 * (b * i * o) as u64).sum()
    };
    let mut out = Map::new();
    for (name, layers, b) in [("tiny", &TINY_LAYERS, 32usize), ("mlp", &MLP_LAYERS, 128)] {
        let fwd = dense(layers, b);
        let dx = dense(&layers[1..], b);
        out.insert(
            format!("{name}_train"),
            json!({"batch": b, "forward": fwd, "backward_dW": fwd, "backward_dX": dx, "train_step": 2 * fwd + dx}),
        );
    }
    let b = 64u64;
    let conv = 2 * b * 8 * 26 * 26 * 9;
    let dense_c = 2 * b * 1352 * 10;
    out.insert(
        "cnn_train".into(),
        json!({"batch": b, "forward": conv + dense_c, "backward_dW": conv + dense_c, "backward_dX": dense_c,
               "train_step": 2 * (conv + dense_c) + dense_c, "conv_forward": conv, "dense_forward": dense_c}),
    );
    out.insert("mlp_infer_b1".into(), json!({"batch": 1, "forward": dense(&MLP_LAYERS, 1)}));
    out.insert("mlp_infer_b128".into(), json!({"batch": 128, "forward": dense(&MLP_LAYERS, 128)}));
    out.insert("tiny_infer_b1".into(), json!({"batch": 1, "forward": dense(&TINY_LAYERS, 1)}));
    Value::Object(out)
}

fn case_flops(flops: &Value, case: &str) -> f64 {
    let (k, f) = match case {
        "tiny_train_b32" => ("tiny_train", "train_step"),
        "mlp_train_b128" => ("mlp_train", "train_step"),
        "cnn_train_b64" => ("cnn_train", "train_step"),
        other => (other, "forward"),
    };
    flops[k][f].as_f64().unwrap_or(f64::NAN)
}

fn date_utc() -> String {
    // SAFETY: time/gmtime_r/strftime on local buffers.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        let mut buf = [0 as libc::c_char; 64];
        let n = libc::strftime(buf.as_mut_ptr(), buf.len(), c"%Y-%m-%d %H:%M:%S UTC".as_ptr(), &tm);
        String::from_utf8_lossy(std::slice::from_raw_parts(buf.as_ptr() as *const u8, n)).into_owned()
    }
}

const NOTES: [&str; 8] = [
    "Each (framework, threads) pair runs in a fresh child process. Threads=1: RAYON_NUM_THREADS, \
     CANDLE_NUM_THREADS, MATMUL_NUM_THREADS, OMP/OPENBLAS/MKL_NUM_THREADS = 1 in the child's environment \
     and the child pinned to its first allowed CPU with sched_setaffinity before the framework starts; \
     threads=2: the same knobs = 2 and two CPUs allowed.",
    "Thread knobs: dfdx 0.13's Cpu device runs its kernels in the calling thread except matmul, which \
     calls gemm with Parallelism::Rayon(rayon::current_num_threads()) (so RAYON_NUM_THREADS); candle 0.11 \
     takes its gemm thread count from RAYON_NUM_THREADS (CANDLE_NUM_THREADS for its own pool); \
     burn-ndarray runs batch/channel loops on rayon and matmul through ndarray -> matrixmultiply, \
     whose threads are MATMUL_NUM_THREADS.",
    "Every step is synchronous: all three CPU backends compute eagerly in the calling thread (or its \
     pools, joined before the op returns). Training steps read the loss back to an f32 every step; \
     inference keeps the output through std::hint::black_box (burn additionally calls device.sync()).",
    "Training step = forward, mean softmax cross-entropy over the batch, backward, plain SGD p -= 0.01*grad \
     with each framework's own optimizer (dfdx::optim::Sgd with SgdConfig{lr: 0.01, momentum: None, \
     weight_decay: None}; candle_nn::SGD; burn SgdConfig::new() (no momentum, no weight decay) at lr 0.01). \
     Loss: dfdx cross_entropy_with_logits_loss against one-hot targets (same value as integer-label \
     cross-entropy); candle_nn::loss::cross_entropy with u32 labels; burn CrossEntropyLoss with Int labels.",
    "Inference: forward only, no gradient tracking (dfdx: NoneTape forward; candle: detached weights; \
     burn: model on the plain ndarray device without autodiff). Parameters resident, input pre-made.",
    "Layouts: NCHW for the cnn in all three; dense weights in each framework's own layout. Parameter \
     initialisation: each framework's default for its layers (the timing does not depend on the values).",
    "Inputs ~ N(0,1), labels uniform, generated from a fixed seed (SplitMix64 + Box-Muller), not numpy's \
     generator: same shapes and distributions as bench_peers.py, not the same numbers.",
    "Timing and disturbance control are a port of bench_peers.py: warm-up steps, calibration to >= \
     min_time per repeat, median over repeats; before each measurement wait (up to \
     PEERBENCH_MAX_QUIET_WAIT s, default 60) until other processes use < 5% of the CPUs; if they used >= 5% \
     during the repeats re-time (max 3 attempts) and keep the least disturbed attempt.",
];

pub fn run_orchestrator(frameworks: &[(String, PathBuf)], o: &Options) {
    let t0 = Instant::now();
    let si = sysinfo();
    println!("{}", serde_json::to_string_pretty(&si).unwrap());
    let mut runs = Map::new();
    let mut names = Vec::new();
    for (name, exe) in frameworks {
        names.push(json!(name));
        let mut per = Map::new();
        for &nt in &o.threads {
            println!("== {name} threads={nt}");
            let r = if exe.exists() {
                spawn(exe, nt, o)
            } else {
                println!("!! {name}: binary {} not built", exe.display());
                json!({"error": format!("binary {} not built", exe.display())})
            };
            per.insert(nt.to_string(), r);
        }
        runs.insert(name.clone(), Value::Object(per));
    }
    let data = json!({
        "date": date_utc(),
        "sysinfo": si,
        "versions": locked_versions(),
        "flops": flops_table(),
        "config": {"min_time": o.min_time, "repeats": o.repeats, "warmup": o.warmup, "threads": o.threads,
                   "only": o.only.clone().unwrap_or_else(|| case_names().iter().map(|s| s.to_string()).collect())},
        "frameworks": names,
        "runs": runs,
        "total_wall_s": t0.elapsed().as_secs_f64(),
        "notes": NOTES,
    });
    let json_path = o.out_json.clone().unwrap_or_else(|| "peers_rust.json".into());
    let md_path = o.out_md.clone().unwrap_or_else(|| "peers_rust.md".into());
    std::fs::write(&json_path, serde_json::to_string_pretty(&data).unwrap()).expect("write json");
    std::fs::write(&md_path, markdown(&data)).expect("write md");
    println!(
        "wrote {} and {}; total {:.0} s",
        json_path.display(),
        md_path.display(),
        data["total_wall_s"].as_f64().unwrap()
    );
}

fn fmt(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(x) if x >= 1000.0 => {
            let s = format!("{:.0}", x);
            let b = s.as_bytes();
            let mut out = String::new();
            for (i, c) in b.iter().enumerate() {
                if i > 0 && (b.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(*c as char);
            }
            out
        }
        Some(x) => format!("{x:.1}"),
    }
}

fn markdown(d: &Value) -> String {
    let mut l: Vec<String> = Vec::new();
    let si = &d["sysinfo"];
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let cfg = &d["config"];
    l.push("# Rust peer frameworks (CPU, float32)\n".into());
    l.push(format!(
        "Generated by `bench/peers` (`peers`) on {}. Total benchmark wall time: {:.0} s. Timing: warmup {} steps \
         (+ first call), then {} repeats of N steps, N chosen so one repeat lasts >= {} s; median / min / max over \
         the repeats of the mean per-step time.\n",
        s(&d["date"]), f(&d["total_wall_s"]), cfg["warmup"], cfg["repeats"], cfg["min_time"]
    ));
    l.push("## Machine\n".into());
    l.push(format!(
        "- lscpu Model name: `{}` (Vendor {}, family {}, model {}, stepping {}), {} CPUs, hypervisor {}",
        s(&si["Model name"]),
        s(&si["Vendor ID"]),
        s(&si["CPU family"]),
        s(&si["Model"]),
        s(&si["Stepping"]),
        s(&si["CPU(s)"]),
        s(&si["Hypervisor vendor"])
    ));
    l.push(format!(
        "- caches: L1d {}, L2 {}, L3 {}",
        s(&si["L1d cache"]),
        s(&si["L2 cache"]),
        s(&si["L3 cache"])
    ));
    let simd: Vec<String> =
        si["simd_flags"].as_array().map(|a| a.iter().map(&s).collect()).unwrap_or_default();
    l.push(format!("- SIMD flags: {}", simd.join(" ")));
    l.push(format!("- {}, {}\n", s(&si["rustc"]), s(&si["platform"])));
    l.push("## Versions (Cargo.lock)\n".into());
    let vers: Vec<String> =
        d["versions"].as_object().unwrap().iter().map(|(k, v)| format!("{k} {}", s(v))).collect();
    l.push(vers.join(", ") + "\n");

    let frameworks: Vec<String> = d["frameworks"].as_array().unwrap().iter().map(&s).collect();
    let mut thread_keys: Vec<String> =
        cfg["threads"].as_array().unwrap().iter().map(|t| t.to_string()).collect();
    thread_keys.dedup();
    let runs = &d["runs"];
    l.push("## Results: µs per step (training step, or inference call)\n".into());
    l.push(
        "`cpu/wall` = process CPU time / wall time over the timed repeats (≈1 for one thread, up to 2 for \
         two). `foreign CPU` = share of the machine's CPUs used by other processes during the timed repeats \
         (disturbance indicator). GFLOP/s counts matmul/conv FLOPs only (table below).\n"
            .into(),
    );
    l.push("| framework | version | case | threads | median µs | min µs | max µs | spread (max-min)/median | GFLOP/s (median) | cpu/wall | foreign CPU | attempts | first call s |".into());
    l.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    let mut skipped_lines = Vec::new();
    for fw in &frameworks {
        for nt in &thread_keys {
            let w = &runs[fw][nt];
            let Some(results) = w["results"].as_array() else {
                l.push(format!("| {fw} | - | (all) | {nt} | FAILED: {} | | | | | | | | |", s(&w["error"])));
                continue;
            };
            for r in results {
                let med = f(&r["median_us"]);
                let gf = case_flops(&d["flops"], r["case"].as_str().unwrap()) / med / 1e3;
                l.push(format!(
                    "| {fw} | {} | {} | {nt} | {} | {} | {} | {:.1}% | {gf:.2} | {:.2} | {:.0}% | {} | {:.2} |",
                    s(&w["version"]), s(&r["case"]), fmt(Some(med)), fmt(Some(f(&r["min_us"]))),
                    fmt(Some(f(&r["max_us"]))), (f(&r["max_us"]) - f(&r["min_us"])) / med * 100.0,
                    f(&r["cpu_over_wall"]), f(&r["foreign_cpu_frac"]) * 100.0, r["attempts"], f(&r["first_call_s"])
                ));
            }
            for sk in w["skipped"].as_array().into_iter().flatten() {
                skipped_lines.push(format!(
                    "- {fw} {} (threads {nt}): not run: {}",
                    s(&sk["case"]),
                    s(&sk["reason"])
                ));
            }
        }
    }
    l.push(String::new());
    if !skipped_lines.is_empty() {
        l.push("Cases a framework could not run:\n".into());
        l.extend(skipped_lines);
        l.push(String::new());
    }

    l.push(format!(
        "## Compact view: median µs ({} threads)\n",
        thread_keys.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" / ")
    ));
    let cases = case_names();
    l.push(format!("| framework | {} |", cases.join(" | ")));
    l.push(format!("|---|{}", "---|".repeat(cases.len())));
    for fw in &frameworks {
        let cells: Vec<String> = cases
            .iter()
            .map(|c| {
                thread_keys
                    .iter()
                    .map(|nt| {
                        fmt(runs[fw][nt]["results"]
                            .as_array()
                            .and_then(|rs| rs.iter().find(|r| r["case"] == *c))
                            .and_then(|r| r["median_us"].as_f64()))
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .collect();
        l.push(format!("| {fw} | {} |", cells.join(" | ")));
    }
    l.push(String::new());

    l.push("## Training sanity check (loss on the fixed random batch before/after all timed steps)\n".into());
    l.push("| framework | threads | case | loss before | loss after | steps run (approx) |".into());
    l.push("|---|---|---|---|---|---|".into());
    let (warm, reps) = (cfg["warmup"].as_u64().unwrap(), cfg["repeats"].as_u64().unwrap());
    for fw in &frameworks {
        for nt in &thread_keys {
            for r in runs[fw][nt]["results"].as_array().into_iter().flatten() {
                if r["kind"] == "train" {
                    let steps = warm + r["steps_per_repeat"].as_u64().unwrap() * (reps + 1);
                    l.push(format!(
                        "| {fw} | {nt} | {} | {:.4} | {:.4} | ~{steps} |",
                        s(&r["case"]),
                        f(&r["loss_before"]),
                        f(&r["loss_after"])
                    ));
                }
            }
        }
    }
    l.push(String::new());

    l.push("## FLOPs per step (2 FLOPs per multiply-add; matmul/conv only)\n".into());
    l.push("| case | batch | forward | backward dW | backward dX | train step total |".into());
    l.push("|---|---|---|---|---|---|".into());
    let fl = &d["flops"];
    for k in ["tiny_train", "mlp_train", "cnn_train"] {
        let v = &fl[k];
        l.push(format!(
            "| {k} | {} | {} | {} | {} | {} |",
            v["batch"], v["forward"], v["backward_dW"], v["backward_dX"], v["train_step"]
        ));
    }
    for k in ["tiny_infer_b1", "mlp_infer_b1", "mlp_infer_b128"] {
        let v = &fl[k];
        l.push(format!("| {k} | {} | {} | - | - | - |", v["batch"], v["forward"]));
    }
    l.push(String::new());
    l.push("## Thread facts per worker\n".into());
    l.push("| framework | threads | affinity | OS threads in process at end | thread env |".into());
    l.push("|---|---|---|---|---|".into());
    for fw in &frameworks {
        for nt in &thread_keys {
            let w = &runs[fw][nt];
            if w.get("results").is_none() {
                continue;
            }
            let env: Vec<String> = w["thread_env"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
                .unwrap_or_default();
            l.push(format!(
                "| {fw} | {nt} | {} | {} | {} |",
                w["affinity"],
                w["threads_in_process"],
                env.join(" ")
            ));
        }
    }
    l.push(String::new());
    l.push("## Method notes\n".into());
    for n in d["notes"].as_array().unwrap() {
        l.push(format!("- {}", s(n)));
    }
    l.push(String::new());
    l.join("\n")
}

/// Entry point of a framework binary: `--worker` runs the cases in this process; otherwise it
/// re-executes itself once per thread count, as `peers` does for every framework.
pub fn framework_main(fw: Framework) {
    let o = parse_options();
    if o.worker {
        run_worker(&fw, &o);
    } else {
        let exe = std::env::current_exe().expect("current_exe");
        run_orchestrator(&[(fw.name.to_string(), exe)], &o);
    }
}

/// Entry point of `peers`: runs every framework binary built next to it.
pub fn peers_main() {
    let o = parse_options();
    if o.worker {
        die("peers has no worker mode; run a framework binary");
    }
    let me = std::env::current_exe().expect("current_exe");
    let dir = me.parent().unwrap();
    let wanted = |name: &str| {
        o.frameworks.as_ref().map_or(true, |f| f.iter().any(|x| x == name || format!("peer-{x}") == name))
    };
    let list: Vec<(String, PathBuf)> = FRAMEWORK_BINARIES
        .iter()
        .filter(|(name, bin)| wanted(name) || wanted(bin))
        .map(|(name, bin)| (name.to_string(), dir.join(bin)))
        .collect();
    if let Some(f) = &o.frameworks {
        for x in f {
            if !FRAMEWORK_BINARIES.iter().any(|(n, b)| n == x || *b == format!("peer-{x}") || b == x) {
                die(&format!("unknown framework {x} (dfdx, candle, burn-ndarray)"));
            }
        }
    }
    run_orchestrator(&list, &o);
}
