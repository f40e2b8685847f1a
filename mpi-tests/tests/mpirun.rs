//! Launches `mpi-check` under `mpirun` with 1, 2 and 3 ranks (3: uneven
//! splits) and checks each job's outcome; the fault cases must fail the job,
//! with a clear message, within `LIMIT`. Jobs run one at a time.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest any job may take: a hung job fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(120);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Job {
    success: bool,
    output: String,
    seconds: f64,
}

fn mpirun(ranks: usize, case: &str) -> Job {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("staticnet-mpi-{}-{case}-{ranks}", std::process::id()));
    let (out, err) = (dir.with_extension("out"), dir.with_extension("err"));
    let start = Instant::now();
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", &ranks.to_string()])
        .arg(env!("CARGO_BIN_EXE_mpi-check"))
        .arg(case)
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("mpirun (Open MPI: apt-get install openmpi-bin libopenmpi-dev)");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{case} on {ranks} ranks still ran after {LIMIT:?}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out).unwrap_or_default()
        + &std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    eprintln!("{case} on {ranks} rank(s): {:.1} s\n{output}", start.elapsed().as_secs_f64());
    Job { success: status.success(), output, seconds: start.elapsed().as_secs_f64() }
}

fn passes(ranks: usize, case: &str) {
    let job = mpirun(ranks, case);
    assert!(job.success && job.output.contains(&format!("ok {case} on {ranks} rank(s)")), "{}", job.output);
}

#[test]
fn weights_are_bit_identical_on_every_rank() {
    passes(2, "identical");
    passes(3, "identical");
}

#[test]
fn ranks_on_a_global_batch_match_one_process_on_it() {
    passes(1, "equivalence");
    passes(2, "equivalence");
    passes(3, "equivalence");
}

#[test]
fn overlapped_buckets_give_the_bits_of_blocking_all_reduces() {
    passes(2, "overlap");
    passes(3, "overlap");
}

#[test]
fn checkpoints_resume_exactly_on_as_many_ranks_and_on_one_process() {
    passes(2, "resume");
    passes(3, "resume");
}

#[test]
fn uneven_last_batches_split_exactly() {
    passes(2, "uneven");
    passes(3, "uneven");
}

#[test]
fn a_rank_with_bad_data_stops_every_rank_at_the_same_step() {
    passes(2, "fault");
    passes(3, "fault");
}

/// A job must fail, soon, saying why.
fn fails(ranks: usize, case: &str, says: &[&str]) {
    let job = mpirun(ranks, case);
    assert!(!job.success, "{case} should have failed the job:\n{}", job.output);
    assert!(job.seconds < 60.0, "{case} took {:.1} s to fail", job.seconds);
    for s in says {
        assert!(job.output.contains(s), "{case}: no {s:?} in:\n{}", job.output);
    }
}

#[test]
fn a_failing_rank_ends_the_job_with_its_error() {
    fails(
        2,
        "fail-exit",
        &[
            "rank 1/2: fail-exit: the loss became NaN at epoch 1, batch 0",
            "rank 0/2: fail-exit: rank 1 of 2 failed in epoch 1, batch 0",
        ],
    );
}

#[test]
fn a_panicking_rank_aborts_the_job() {
    fails(2, "panic", &["a bug on the last rank", "panicked; aborting the MPI job"]);
}

#[test]
fn a_dying_rank_ends_the_job() {
    fails(3, "crash", &["rank 2: dying"]);
}
