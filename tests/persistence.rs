//! Persistence end to end: weights files (safetensors, PyTorch names), checkpoints
//! that resume training bit for bit, atomic saves that survive a killed process,
//! every mismatch and corruption as an error, and the `staticnet_cnn` fixture
//! that a Python script loads into JAX.
//!
//! `STATICNET_WRITE_FIXTURES=1 cargo test --test persistence` rewrites
//! `tests/fixtures/staticnet_cnn.{safetensors,json}`; otherwise the test checks
//! the committed files against today's code.

use serde_json::{json, Value};
use staticnet::init::SeededRng;
use staticnet::persist::TrainingState;
use staticnet::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

network! { struct Mlp { input: [4], fc1: dense(8), relu, dropout(0.2), head: dense(3) } }
network! { struct MlpWide { input: [4], fc1: dense(9), relu, dropout(0.2), head: dense(3) } }
network! { struct MlpRenamed { input: [4], fc1: dense(8), relu, dropout(0.2), out: dense(3) } }
network! { struct Cnn { input: [1, 8, 8], conv: conv2d(4, kernel = 3), bn: batch_norm, relu, max_pool(2), flatten, head: dense(3) } }
network! {
    struct DropCnn {
        input: [1, 8, 8],
        conv: conv2d(4, kernel = 3), bn: batch_norm, relu, max_pool(2),
        flatten, dropout(0.3), dense(6), relu, dropout(0.1), head: dense(3),
    }
}
network! {
    struct StaticnetCnn {
        input: [1, 8, 8],
        conv: conv2d(4, kernel = 3, padding = 1), bn: batch_norm, relu, max_pool(2),
        flatten,
        fc: dense(3),
    }
}
network! {
    /// About a million parameters (4 MB in f32): saving takes long enough to be killed midway.
    struct Big { input: [512], fc1: dense(1024), relu, fc2: dense(512) }
}

// ---------------------------------------------------------------------------
// Helpers

/// A fresh directory for one test under Cargo's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("persistence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic values in [-1, 1) (xorshift), independent of any library's generator.
fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn batch<T: Float, const N: usize>(seed: u64, samples: usize) -> Batch<T, N> {
    let values: Vec<T> = noise(seed, N * samples).into_iter().map(T::cast).collect();
    Batch::from_column_slice(&values)
}

fn dataset<T: Float, const N: usize>(seed: u64, samples: usize) -> Dataset<T, N, Labels> {
    Dataset::new(batch(seed, samples), (0..samples).map(|i| (i * 7 + 1) % 3).collect()).unwrap()
}

/// Every parameter and buffer, by name, as exact bits.
fn bits<T: Float, N: Params<T>>(net: &N) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        out.push((p.name.to_string(), p.value.iter().map(|v| v.as_f64().to_bits()).collect()))
    });
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        out.push((b.name.to_string(), b.value.iter().map(|v| v.as_f64().to_bits()).collect()))
    });
    out
}

/// Every dropout generator, by name.
fn rngs<T: Float, N: Params<T>>(net: &mut N) -> Vec<(String, SeededRng)> {
    let mut out = Vec::new();
    net.visit_rngs(&ParamPath::ROOT, &mut |name, rng| out.push((name.to_string(), rng.clone())));
    out
}

fn output_bits<T: Float, const N: usize>(y: &Batch<T, N>) -> Vec<u64> {
    y.iter().map(|v| v.as_f64().to_bits()).collect()
}

/// One quiet epoch of SGD, so batch-norm statistics and weights are no longer their initial values.
fn warm_up<T: Float, N: Network<T, IN, 3>, const IN: usize>(net: &mut N) {
    let data = dataset::<T, IN>(99, 12);
    Trainer::new(Sgd::new(0.05).momentum(0.9))
        .epochs(1)
        .batch_size(4)
        .verbose(false)
        .fit(net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
}

fn mismatch(err: Error) -> Vec<TensorProblem> {
    match err {
        Error::Mismatch { problems, .. } => problems,
        other => panic!("expected a mismatch, got {other}"),
    }
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn weights_round_trip_bit_for_bit_in_f32_and_f64() {
    let dir = scratch("round-trip");
    let path = dir.join("net.safetensors");
    macro_rules! round_trip {
        ($net:ident, $t:ty, $in:expr) => {{
            let mut net = $net::<$t>::init(Init::He, 3);
            warm_up::<$t, _, $in>(&mut net);
            persist::save(&net, &path).unwrap();
            let mut loaded = $net::<$t>::zeros();
            persist::load_into(&mut loaded, &path).unwrap();
            assert_eq!(bits(&loaded), bits(&net), "{} {}", stringify!($net), stringify!($t));
            let x = batch::<$t, $in>(5, 6);
            assert_eq!(output_bits(&loaded.forward(&x)), output_bits(&net.forward(&x)));
            // The same through memory, and the bytes are those of the file.
            let bytes = persist::to_bytes(&net).unwrap();
            assert_eq!(bytes, std::fs::read(&path).unwrap());
            let mut again = $net::<$t>::zeros();
            persist::load_from_bytes(&mut again, &bytes).unwrap();
            assert_eq!(bits(&again), bits(&net));
        }};
    }
    round_trip!(Mlp, f32, 4);
    round_trip!(Mlp, f64, 4);
    round_trip!(Cnn, f32, 64);
    round_trip!(Cnn, f64, 64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_use_pytorch_state_dict_names_and_shapes() {
    let bytes = persist::to_bytes(&Cnn::new(1)).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let mut entries: Vec<(String, String, Value)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| (k.clone(), v["dtype"].as_str().unwrap().to_string(), v["shape"].clone()))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [
        ("bn.bias", "F32", json!([4])),
        ("bn.num_batches_tracked", "I64", json!([])),
        ("bn.running_mean", "F32", json!([4])),
        ("bn.running_var", "F32", json!([4])),
        ("bn.weight", "F32", json!([4])),
        ("conv.bias", "F32", json!([4])),
        ("conv.weight", "F32", json!([4, 1, 3, 3])),
        ("head.bias", "F32", json!([3])),
        ("head.weight", "F32", json!([3, 36])),
    ];
    let expected: Vec<_> = expected.into_iter().map(|(n, d, s)| (n.to_string(), d.to_string(), s)).collect();
    assert_eq!(entries, expected);
    assert_eq!(header["__metadata__"], json!({"format": "pt"}));
}

// ---------------------------------------------------------------------------
// Checkpoints

/// Trains `new_net()` for 4 epochs straight, and again for 2 epochs with a
/// checkpoint, resumed into `zeros()` with a fresh optimizer for epochs 3 and 4:
/// the weights, buffers, generators and losses must be identical.
fn resume_equals_uninterrupted<N, O, const IN: usize>(
    name: &str,
    new_net: impl Fn() -> N,
    zeros: impl Fn() -> N,
    optimizer: impl Fn() -> O,
) where
    N: Network<f32, IN, 3>,
    O: Optimizer<f32>,
{
    let dir = scratch(name);
    let checkpoint = dir.join("checkpoint.safetensors");
    let data = dataset::<f32, IN>(17, 23); // the last batch of each epoch is smaller
    let validation = dataset::<f32, IN>(18, 7);
    let trainer = |epochs| {
        Trainer::new(optimizer())
            .epochs(epochs)
            .batch_size(5)
            .seed(11)
            .verbose(false)
            .schedule(Schedule::Step { every: 1, factor: 0.7 })
    };

    let mut straight = new_net();
    let full = trainer(4).fit(&mut straight, &SoftmaxCrossEntropy, &data, Some(&validation)).unwrap();

    let mut first = new_net();
    let mut interrupted = trainer(2).checkpoint(&checkpoint);
    interrupted.fit(&mut first, &SoftmaxCrossEntropy, &data, Some(&validation)).unwrap();
    assert_eq!((interrupted.completed_epochs(), interrupted.steps()), (2, 10));

    let mut resumed_net = zeros();
    let mut resumed = trainer(4).checkpoint(&checkpoint);
    resumed.resume(&mut resumed_net, &checkpoint).unwrap();
    assert_eq!(resumed.completed_epochs(), 2);
    let rest = resumed.fit(&mut resumed_net, &SoftmaxCrossEntropy, &data, Some(&validation)).unwrap();

    assert_eq!(rest.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [3, 4], "{name}");
    for (a, b) in full.epochs[2..].iter().zip(&rest.epochs) {
        assert_eq!(a.train.loss.to_bits(), b.train.loss.to_bits(), "{name}: epoch {}", a.epoch);
        assert_eq!(a.validation, b.validation, "{name}");
    }
    assert_eq!(bits(&resumed_net), bits(&straight), "{name}: weights after resuming");
    assert!(rngs(&mut resumed_net) == rngs(&mut straight), "{name}: dropout generators");
    assert_eq!((resumed.completed_epochs(), resumed.steps()), (4, 20));
    // The checkpoint of the resumed run is the final state too.
    let mut last = zeros();
    let state = persist::load_checkpoint(&mut last, &checkpoint).unwrap();
    assert_eq!((state.epoch, state.step), (4, 20));
    assert_eq!(bits(&last), bits(&straight));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resumed_training_equals_uninterrupted_training() {
    resume_equals_uninterrupted("adam-mlp", || Mlp::new(1), Mlp::zeros, || Adam::new(0.01));
    resume_equals_uninterrupted(
        "sgd-cnn",
        || DropCnn::new(2),
        DropCnn::zeros,
        || Sgd::new(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3),
    );
    resume_equals_uninterrupted("adamw-cnn", || DropCnn::new(3), DropCnn::zeros, || AdamW::new(0.005, 0.01));
}

#[test]
fn a_checkpoint_of_another_optimizer_or_network_changes_nothing() {
    let dir = scratch("resume-errors");
    let checkpoint = dir.join("ck.safetensors");
    let data = dataset::<f32, 4>(3, 10);
    let mut net = Mlp::new(4);
    Trainer::new(Adam::new(0.01))
        .epochs(1)
        .verbose(false)
        .checkpoint(&checkpoint)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();

    let mut target = Mlp::new(9);
    let before = (bits(&target), rngs(&mut target));
    let mut sgd = Trainer::new(Sgd::new(0.1).momentum(0.9)).verbose(false);
    let err = sgd.resume(&mut target, &checkpoint).unwrap_err();
    assert!(err.to_string().contains("cannot restore adam optimizer state into sgd"), "{err}");
    assert!((bits(&target), rngs(&mut target)) == before);
    assert_eq!(sgd.completed_epochs(), 0);

    let mut wide = MlpWide::new(1);
    let wide_before = bits(&wide);
    let problems = mismatch(Trainer::new(Adam::new(0.01)).resume(&mut wide, &checkpoint).unwrap_err());
    assert!(problems.iter().any(|p| p.name() == "optimizer.exp_avg.fc1.weight"), "{problems:?}");
    assert_eq!(bits(&wide), wide_before);

    // A plain weights file is not a checkpoint, and a checkpoint's weights load as weights.
    let weights = dir.join("w.safetensors");
    persist::save(&net, &weights).unwrap();
    let err = Trainer::new(Adam::new(0.01)).resume(&mut target, &weights).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    let mut plain = Mlp::<f32>::zeros();
    persist::load_into(&mut plain, &checkpoint).unwrap();
    assert_eq!(bits(&plain), bits(&net));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint of `optimizer` after one epoch of 8 steps on `net`, in memory.
fn checkpoint_bytes<O: Optimizer<f32>>(test: &str, optimizer: O) -> (Vec<u8>, TrainingState<f32>) {
    let dir = scratch(test);
    let path = dir.join(format!("{}.safetensors", optimizer.state().unwrap().kind));
    let mut net = Mlp::new(4);
    let data = dataset::<f32, 4>(3, 16);
    let mut trainer = Trainer::new(optimizer).epochs(1).batch_size(2).verbose(false).checkpoint(&path);
    trainer.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let state = persist::load_checkpoint_from_bytes(&mut Mlp::<f32>::zeros(), &bytes).unwrap();
    assert_eq!(state.step, 8);
    let _ = std::fs::remove_dir_all(&dir);
    (bytes, state)
}

#[test]
fn hostile_optimizer_state_is_refused_naming_the_field() {
    type Edit = fn(&mut TrainingState<f32>);
    fn fill(state: &mut TrainingState<f32>, slot: &str, value: f32) {
        let (_, vectors) = state.optimizer.slots.iter_mut().find(|(name, _)| name == slot).unwrap();
        vectors.iter_mut().flatten().for_each(|v| *v = value);
    }
    let adam: [(&str, &str, Edit); 5] = [
        ("step 2^53+1", "`optimizer.step`", |s| s.optimizer.step = (1 << 53) + 1),
        ("eps NaN", "`optimizer.eps`", |s| _ = s.optimizer.hyper.insert("eps".into(), f64::NAN)),
        ("eps negative", "`optimizer.eps`", |s| _ = s.optimizer.hyper.insert("eps".into(), -1e-8)),
        ("exp_avg_sq -1", "`optimizer.exp_avg_sq.fc1.weight`", |s| fill(s, "exp_avg_sq", -1.0)),
        ("exp_avg NaN", "`optimizer.exp_avg.fc1.weight`", |s| fill(s, "exp_avg", f32::NAN)),
    ];
    let sgd: [(&str, &str, Edit); 3] = [
        ("momentum_buffer inf", "`optimizer.momentum_buffer.fc1.weight`", |s| {
            fill(s, "momentum_buffer", f32::INFINITY)
        }),
        ("nesterov NaN", "`optimizer.nesterov`", |s| {
            _ = s.optimizer.hyper.insert("nesterov".into(), f64::NAN)
        }),
        ("momentum slot missing at step 8", "`optimizer.momentum_buffer`", |s| s.optimizer.slots.clear()),
    ];
    let cases = [
        (checkpoint_bytes("hostile-adam", Adam::new(0.01)), &adam[..]),
        (checkpoint_bytes("hostile-sgd", Sgd::new(0.05).momentum(0.9).nesterov(true)), &sgd[..]),
    ];
    for ((good, state), edits) in cases {
        let kind = state.optimizer.kind.clone();
        let mut net = Mlp::<f32>::zeros();
        // The unedited checkpoint resumes.
        resume(&kind, &mut net, &good).unwrap();
        for (what, field, edit) in edits {
            let mut bad = state.clone();
            edit(&mut bad);
            let bytes = persist::checkpoint_to_bytes(&mut Mlp::<f32>::zeros(), &bad).unwrap();
            let mut target = Mlp::<f32>::new(9);
            let before = bits(&target);
            let err = resume(&kind, &mut target, &bytes).expect_err(what);
            assert!(matches!(err, Error::Format { .. }), "{what}: {err}");
            assert!(err.to_string().contains(field), "{what}: {err}");
            assert_eq!(bits(&target), before, "{what}");
            let err = persist::load_checkpoint_from_bytes(&mut target, &bytes).unwrap_err();
            assert!(err.to_string().contains(field), "{what}: {err}");
        }
    }
}

#[test]
fn adam_resumes_from_any_step_count_without_wrapping_around() {
    // Bias correction raised beta to the step count cast to i32: these wrapped to
    // negative powers and the first step turned every weight into NaN.
    let (_, state) = checkpoint_bytes("late-adam", Adam::new(0.01));
    let data = dataset::<f32, 4>(5, 16);
    for step in [2_147_483_647, 4_294_967_295, 1 << 53] {
        let mut late = state.clone();
        late.optimizer.step = step;
        let bytes = persist::checkpoint_to_bytes(&mut Mlp::<f32>::zeros(), &late).unwrap();
        let mut net = Mlp::<f32>::zeros();
        let mut trainer = Trainer::new(Adam::new(1.0)).epochs(2).batch_size(4).verbose(false);
        trainer.resume_from_bytes(&mut net, &bytes).unwrap();
        trainer.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
        let finite = bits(&net).iter().all(|(_, v)| v.iter().all(|b| f64::from_bits(*b).is_finite()));
        assert!(finite, "step {step}");
        assert_eq!(trainer.optimizer().state().unwrap().step, step + 4);
    }
}

/// Resumes a trainer with a default optimizer of `kind` from checkpoint bytes.
fn resume(kind: &str, net: &mut Mlp<f32>, bytes: &[u8]) -> Result<()> {
    match kind {
        "adam" => Trainer::new(Adam::new(1.0)).resume_from_bytes(net, bytes),
        _ => Trainer::new(Sgd::new(1.0)).resume_from_bytes(net, bytes),
    }
}

#[test]
fn optimizer_state_loaded_directly_is_checked_too() {
    let mut adam = Adam::<f32>::new(0.01);
    let mut state = adam.state().unwrap();
    state.hyper.insert("beta2".into(), 1.0);
    let err = adam.load_state(state).unwrap_err();
    assert!(err.to_string().contains("`optimizer.beta2` = 1.0 must be in [0, 1)"), "{err}");
    let mut state = Sgd::<f32>::new(0.1).momentum(0.9).state().unwrap();
    state.slots[0].1 = vec![vec![f32::NAN]];
    let err = Sgd::<f32>::new(0.1).load_state(state).unwrap_err();
    assert!(err.to_string().contains("`optimizer.momentum_buffer` of parameter 0 holds NaN"), "{err}");
}

// ---------------------------------------------------------------------------
// Killed while saving

const SAVE_LOOP_TARGET: &str = "STATICNET_SAVE_LOOP_TARGET";

/// Not a test: the child process of `a_process_killed_while_saving_leaves_a_complete_file`,
/// which saves two versions of a big network in turn until it is killed.
/// Does nothing unless that test starts it.
#[test]
#[ignore = "helper process of a_process_killed_while_saving_leaves_a_complete_file"]
fn save_loop_child() {
    let Some(target) = std::env::var_os(SAVE_LOOP_TARGET) else { return };
    let nets = [Big::new(1), Big::new(2)];
    // Never outlive a parent that died without killing us for long.
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0.. {
        persist::save(&nets[i % 2], &target).unwrap();
        if i == 0 {
            println!("saved");
        }
        if Instant::now() > deadline {
            break;
        }
    }
}

#[test]
fn a_process_killed_while_saving_leaves_a_complete_file() {
    let dir = scratch("kill");
    let target = dir.join("big.safetensors");
    let versions = [persist::to_bytes(&Big::new(1)).unwrap(), persist::to_bytes(&Big::new(2)).unwrap()];
    let mut seen = [0usize; 2];
    for round in 0..10u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["save_loop_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(SAVE_LOOP_TARGET, &target)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first complete save, then kill it somewhere in a later one.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            assert!(n > 0, "the child exited before saving");
            if line.contains("saved") {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(1_500 + 2_300 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let bytes = std::fs::read(&target).unwrap();
        let which =
            versions.iter().position(|v| *v == bytes).expect("the file is one of the complete versions");
        seen[which] += 1;
        let mut net = Big::<f32>::zeros();
        persist::load_into(&mut net, &target).unwrap();
    }
    let strays = std::fs::read_dir(&dir).unwrap().count() - 1;
    eprintln!("versions seen {seen:?}; {strays} temporary files left by kills in mid-write");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Mismatches and corrupt files

#[test]
fn every_mismatch_is_named_and_the_network_is_unchanged() {
    let dir = scratch("mismatch");
    let path = dir.join("other.safetensors");
    let mut net = Mlp::new(5);
    let before = bits(&net);
    let s = String::from;

    persist::save(&MlpWide::new(1), &path).unwrap();
    let problems = mismatch(persist::load_into(&mut net, &path).unwrap_err());
    assert_eq!(
        problems,
        [
            TensorProblem::WrongShape { name: s("fc1.weight"), expected: vec![8, 4], found: vec![9, 4] },
            TensorProblem::WrongShape { name: s("fc1.bias"), expected: vec![8], found: vec![9] },
            TensorProblem::WrongShape { name: s("head.weight"), expected: vec![3, 8], found: vec![3, 9] },
        ]
    );

    // An f64 file converts; integers do not (the header patched to I64, same length).
    let f64_bytes = persist::to_bytes(&Mlp::<f64>::init(Init::He, 1)).unwrap();
    let n = 8 + u64::from_le_bytes(f64_bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&f64_bytes[8..n]).unwrap().replace("\"F64\"", "\"I64\"");
    std::fs::write(&path, [&f64_bytes[..8], header.as_bytes(), &f64_bytes[n..]].concat()).unwrap();
    let problems = mismatch(persist::load_into(&mut net, &path).unwrap_err());
    let names: Vec<&str> = problems.iter().map(TensorProblem::name).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias", "head.weight", "head.bias"]);
    assert!(problems.iter().all(|p| matches!(p, TensorProblem::WrongDtype { expected, found, .. } if expected == "F32" && found == "I64")));

    persist::save(&MlpRenamed::new(1), &path).unwrap();
    let err = persist::load_into(&mut net, &path).unwrap_err();
    let message = err.to_string();
    assert_eq!(
        mismatch(err),
        [
            TensorProblem::Missing { name: s("head.weight"), dtype: s("F32"), shape: vec![3, 8] },
            TensorProblem::Missing { name: s("head.bias"), dtype: s("F32"), shape: vec![3] },
            TensorProblem::Unexpected { name: s("out.bias"), dtype: s("F32"), shape: vec![3] },
            TensorProblem::Unexpected { name: s("out.weight"), dtype: s("F32"), shape: vec![3, 8] },
        ]
    );
    assert_eq!(
        message,
        format!(
            "{}: the stored tensors do not fit the network (4 problems):\n  \
             - missing tensor `head.weight`: expected F32 [3, 8]\n  \
             - missing tensor `head.bias`: expected F32 [3]\n  \
             - unexpected tensor `out.bias` (F32 [3]): the network has no such parameter\n  \
             - unexpected tensor `out.weight` (F32 [3, 8]): the network has no such parameter",
            path.display()
        )
    );
    assert_eq!(bits(&net), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_files_are_errors_and_change_nothing() {
    let dir = scratch("corrupt");
    let path = dir.join("bad.safetensors");
    let good = persist::to_bytes(&Cnn::new(1)).unwrap();
    let mut net = Cnn::new(2);
    let before = bits(&net);
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("garbage".into(), noise(1, 300).iter().map(|v| (v * 127.0) as i8 as u8).collect()),
        ("text".into(), b"this is not a safetensors file at all".to_vec()),
    ];
    for cut in [1, 7, 8, 9, header_len / 2, header_len + 7, header_len + 8, header_len + 9, good.len() - 1] {
        cases.push((format!("truncated to {cut} bytes"), good[..cut].to_vec()));
    }
    let mut long = good.clone();
    long.push(0);
    cases.push(("a byte too many".into(), long));
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    cases.push(("a huge header length".into(), huge));
    let hostile =
        br#"{"conv.weight":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}"#;
    let mut bytes = (hostile.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(hostile);
    bytes.extend_from_slice(&[0; 16]);
    cases.push(("a tensor claiming 2^80 elements".into(), bytes));
    let lying = br#"{"conv.weight":{"dtype":"F32","shape":[4,1,3,3],"data_offsets":[0,144000000000]}}"#;
    let mut bytes = (lying.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(lying);
    cases.push(("offsets past the end".into(), bytes));

    for (what, bytes) in &cases {
        std::fs::write(&path, bytes).unwrap();
        let err = persist::load_into(&mut net, &path).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{what}: {err}");
        assert!(err.to_string().starts_with(&path.display().to_string()), "{what}: {err}");
        let err = persist::load_from_bytes(&mut net, bytes).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{what}: {err}");
        assert_eq!(bits(&net), before, "{what}");
    }
    let err = persist::load_into(&mut net, &dir).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "a directory: {err}");
    let err = persist::load_into(&mut net, dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "a missing file: {err}");
    assert!(matches!(persist::save(&net, &dir), Err(Error::Io { .. })), "saving over a directory");
    assert_eq!(bits(&net), before);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// The fixture for the JAX check

const FIXTURE_SEED: u64 = 7;

/// `StaticnetCnn::new(7)` after two SGD steps on random data (so the running
/// statistics are not trivial), and a batch of 2 inputs.
fn fixture_network() -> (StaticnetCnn, Batch<f32, 64>) {
    let mut net = StaticnetCnn::new(FIXTURE_SEED);
    let data = dataset::<f32, 64>(100, 8);
    Trainer::new(Sgd::new(0.1))
        .epochs(1)
        .batch_size(4)
        .seed(FIXTURE_SEED)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
    (net, batch(200, 2))
}

fn fixture_json(x: &Batch<f32, 64>, y: &Batch<f32, 3>) -> Value {
    let data = |m: &[f32]| m.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    json!({
        "description": "staticnet_cnn.safetensors (written by staticnet, f32, PyTorch state_dict names) loaded into \
            input [1, 8, 8] -> conv conv2d(4, kernel 3, padding 1) -> [4, 8, 8] -> bn batch_norm -> relu -> \
            max_pool(2) -> [4, 4, 4] -> flatten (64) -> fc dense(3); evaluation mode (batch norm uses the \
            stored running statistics); batch 2. `output` is staticnet's output for `input`.",
        "generator": "tests/persistence.rs (STATICNET_WRITE_FIXTURES=1 cargo test --test persistence), seed 7, \
            two SGD steps (lr 0.1, batch 4) on random data before saving",
        "weights": "staticnet_cnn.safetensors",
        "dtype": "F32",
        "input_shape": [1, 8, 8],
        "layers": [
            {"kind": "conv2d", "name": "conv", "out_channels": 4, "kernel": [3, 3], "stride": [1, 1],
             "padding": [1, 1], "dilation": [1, 1], "bias": true},
            {"kind": "batch_norm", "name": "bn", "eps": 1e-5, "momentum": 0.1},
            {"kind": "relu"},
            {"kind": "max_pool", "kernel": 2, "stride": 2},
            {"kind": "flatten"},
            {"kind": "dense", "name": "fc", "out": 3, "bias": true},
        ],
        "mode": "eval",
        "batch": 2,
        "input": {"shape": [2, 1, 8, 8], "data": data(x.as_slice())},
        "output": {"shape": [2, 3], "data": data(y.as_slice())},
    })
}

/// JSON laid out like the other fixtures: one key per line, arrays and layer
/// descriptions on one line each.
fn fixture_text(v: &Value, indent: usize) -> String {
    fn inline(v: &Value) -> String {
        match v {
            Value::Array(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
            Value::Object(map) => {
                let fields: Vec<String> =
                    map.iter().map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), inline(v))).collect();
                format!("{{{}}}", fields.join(", "))
            }
            scalar => scalar.to_string(),
        }
    }
    let pad = " ".repeat(indent + 2);
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{pad}{}: {}", Value::from(k.as_str()), fixture_text(v, indent + 2)))
                .collect();
            format!("{{\n{}\n{}}}", fields.join(",\n"), " ".repeat(indent))
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let lines: Vec<String> = items.iter().map(|item| format!("{pad}{}", inline(item))).collect();
            format!("[\n{}\n{}]", lines.join(",\n"), " ".repeat(indent))
        }
        other => inline(other),
    }
}

#[test]
fn staticnet_cnn_fixture_is_stable() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let weights_path = fixtures.join("staticnet_cnn.safetensors");
    let json_path = fixtures.join("staticnet_cnn.json");
    let (net, x) = fixture_network();
    let y = net.forward(&x);
    let today = persist::to_bytes(&net).unwrap();

    if std::env::var_os("STATICNET_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        persist::save(&net, &weights_path).unwrap();
        let text = fixture_text(&fixture_json(&x, &y), 0) + "\n";
        std::fs::write(&json_path, text).unwrap();
    }

    // The committed file loads, and saving what it loads gives it back byte for byte.
    let committed = std::fs::read(&weights_path).expect("tests/fixtures/staticnet_cnn.safetensors");
    let mut loaded = StaticnetCnn::zeros();
    persist::load_from_bytes(&mut loaded, &committed).unwrap();
    assert_eq!(
        persist::to_bytes(&loaded).unwrap(),
        committed,
        "format changed: names, order, header or layout"
    );

    // Saving the same seeded network today gives the committed bytes. The header
    // (names, dtypes, shapes, offsets, metadata) must match exactly; the values
    // too on any machine whose matrix kernels round like the one that wrote the
    // fixture, and to f32 rounding otherwise (SIMD kernels differ between CPUs).
    let header_len = 8 + u64::from_le_bytes(committed[..8].try_into().unwrap()) as usize;
    assert_eq!(today.len(), committed.len());
    assert_eq!(today[..header_len], committed[..header_len], "header changed");
    if today != committed {
        let (a, b) = (bits(&net), bits(&loaded));
        for ((name, a), (_, b)) in a.iter().zip(&b) {
            for (&a, &b) in a.iter().zip(b) {
                let (a, b) = (f64::from_bits(a), f64::from_bits(b));
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{name}: {a} vs {b}");
            }
        }
    }

    // The JSON holds the inputs and the loaded network's evaluation-mode outputs.
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let floats =
        |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<_>>();
    assert_eq!(fixture["input"]["shape"], json!([2, 1, 8, 8]));
    assert_eq!(fixture["output"]["shape"], json!([2, 3]));
    let input = floats(&fixture["input"]["data"]);
    assert_eq!(input, x.as_slice());
    let expected = floats(&fixture["output"]["data"]);
    let out = loaded.forward(&Batch::<f32, 64>::from_column_slice(&input));
    for (&o, &e) in out.as_slice().iter().zip(&expected) {
        assert!((o - e).abs() <= 1e-5 * (1.0 + e.abs()), "{o} vs {e}");
    }
    // Batch norm's running statistics moved away from (0, 1).
    let mut stats = Vec::new();
    loaded.visit_buffers(&ParamPath::ROOT, &mut |b| stats.extend_from_slice(b.value));
    assert!(stats[..4].iter().all(|&m| m != 0.0) && stats[4..].iter().all(|&v| v != 1.0), "{stats:?}");
}

/// A file written the way a PyTorch user writes one (`safetensors.torch.save_file(model.state_dict())`,
/// here by `tools/gen_fixtures.py` from JAX, with `num_batches_tracked`) loads and gives the same outputs.
#[test]
fn a_pytorch_style_file_from_jax_loads_and_agrees() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let net = StaticnetCnn::load(dir.join("jax_cnn.safetensors")).expect("the JAX file loads");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("jax_cnn.json")).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    };
    let input: Vec<f32> = floats(&expected["input"]).into_iter().map(|v| v as f32).collect();
    let out = net.forward(&Batch::<f32, 64>::from_column_slice(&input));
    // Eval mode (running statistics); computed by JAX in f64 from the same f32 values.
    staticnet::gradcheck::assert_close(out.as_slice(), &floats(&expected["output"]), 1e-5, "output");
}

// ---------------------------------------------------------------------------
// The float type of `new` and `load`

/// `Net::load(path)` and `Net::new(seed)` are `f32` networks without annotation;
/// `Net::<f64>::new` and `Net::<f64>::load` exist (`Build`), and generic code can call both.
#[test]
fn new_and_load_need_no_annotation_for_f32_and_exist_for_f64() {
    fn rebuilt<T: Float, N: Build<T> + Params<T>>(path: &Path) -> N {
        N::load(path).unwrap()
    }
    let dir = scratch("float-choice");
    let (p32, p64) = (dir.join("mlp32.safetensors"), dir.join("mlp64.safetensors"));
    Mlp::new(3).save(&p32).unwrap();
    let loaded = Mlp::load(&p32).unwrap();
    let x = batch::<f32, 4>(1, 2);
    assert_eq!(loaded.forward(&x), Mlp::new(3).forward(&x));
    let exact = Mlp::<f64>::new(3);
    exact.save(&p64).unwrap();
    let back = Mlp::<f64>::load(&p64).unwrap();
    let x64 = batch::<f64, 4>(1, 2);
    assert_eq!(back.forward(&x64), exact.forward(&x64));
    // The same seed draws the same weights in both types.
    let (a, b) = (Mlp::new(3).forward(&x), exact.forward(&x64));
    assert!(a.iter().zip(b.iter()).all(|(a, b)| (*a as f64 - b).abs() < 1e-5));
    let generic: Mlp<f64> = rebuilt(&p64);
    assert_eq!(generic.forward(&x64), exact.forward(&x64));
}
