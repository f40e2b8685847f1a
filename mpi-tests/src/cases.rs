//! The checks. Each runs on every rank and returns `Err` with a reason when it fails.

use crate::nets::{buffers, data, flat, relative_difference, Cnn, Mlp};
use staticnet::distributed::{self, mpi::topology::SimpleCommunicator, mpi::traits::*};
use staticnet::prelude::*;
use std::path::Path;

pub type Check = Result<(), String>;

/// The largest relative weight difference allowed between 2 or 3 ranks and one
/// process on the same global batch after 20 Adam steps: only the order of the
/// gradient sums differs (observed: 7e-8 on 2 ranks, 1.4e-7 on 3; see DISTRIBUTED.md).
const TOLERANCE: f32 = 1e-5;

pub fn ensure(ok: bool, why: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// Whether `values` holds the same bits on every rank.
pub fn same_on_every_rank(world: &SimpleCommunicator, values: &[f32]) -> bool {
    let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
    let mut all = vec![0u32; bits.len() * world.size() as usize];
    world.all_gather_into(&bits[..], &mut all[..]);
    all.chunks(bits.len().max(1)).all(|c| c == &bits[..])
}

fn adam_trainer(epochs: usize, batch: usize) -> Trainer<Adam<f32>> {
    Trainer::new(Adam::new(1e-2)).epochs(epochs).batch_size(batch).seed(3).verbose(false)
}

/// Bit-identical weights and buffers on every rank, with batch norm and dropout, after training.
pub fn identical(world: &SimpleCommunicator) -> Check {
    let train = data::<64>(200, 1);
    let validation = data::<64>(50, 2);
    // Each rank starts from other weights: rank 0's are broadcast.
    let mut cnn = Cnn::new(10 + world.rank() as u64);
    let before = flat(&cnn);
    let run = adam_trainer(2, 16)
        .fit_distributed(world, &mut cnn, &SoftmaxCrossEntropy, &train, Some(&validation))
        .map_err(|e| e.to_string())?;
    ensure(run.communication.steps == 2 * 13, || format!("{} steps, expected 26", run.communication.steps))?;
    ensure(same_on_every_rank(world, &flat(&cnn)), || "CNN weights differ between ranks".into())?;
    ensure(same_on_every_rank(world, &buffers(&cnn)), || {
        "batch-norm statistics differ between ranks".into()
    })?;
    ensure(flat(&cnn) != before, || "training changed nothing".into())?;
    let losses: Vec<f64> = run.history.epochs.iter().map(|e| e.train.loss).collect();
    ensure(losses[1] < losses[0], || format!("the loss did not fall: {losses:?}"))?;
    let val = run.history.epochs[1].validation.as_ref().map(|m| m.loss).unwrap_or(f64::NAN);
    let mine = evaluate(&cnn, &SoftmaxCrossEntropy, &validation, 64).map_err(|e| e.to_string())?;
    ensure((val - mine.loss).abs() < 1e-5, || {
        format!("validation over ranks {val} vs one process {}", mine.loss)
    })?;

    let mut mlp = Mlp::new(5);
    adam_trainer(2, 16)
        .fit_distributed(world, &mut mlp, &SoftmaxCrossEntropy, &data::<16>(200, 3), None)
        .map_err(|e| e.to_string())?;
    ensure(same_on_every_rank(world, &flat(&mlp)), || "MLP weights differ between ranks".into())?;
    println!("{}", distributed::weights_line(world, &cnn));
    Ok(())
}

/// `size` ranks on a global batch of 16 against one process on 16, after 20 steps, and the same on every rank.
pub fn equivalence(world: &SimpleCommunicator) -> Check {
    let train = data::<16>(320, 4);
    let (mut spread, mut single) = (Mlp::new(6), Mlp::new(6));
    let run = adam_trainer(1, 16)
        .fit_distributed(world, &mut spread, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    let history = adam_trainer(1, 16)
        .fit(&mut single, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    ensure(run.communication.steps == 20, || format!("{} steps", run.communication.steps))?;
    ensure(same_on_every_rank(world, &flat(&spread)), || "weights differ between ranks".into())?;
    let diff = relative_difference(&flat(&spread), &flat(&single));
    if world.rank() == 0 {
        println!(
            "equivalence: {} rank(s) vs one process after 20 steps: relative difference {diff:.3e}",
            world.size()
        );
    }
    if world.size() == 1 {
        // One rank weighs its gradient by exactly 1: the very same steps.
        ensure(flat(&spread) == flat(&single), || format!("one rank differs from fit by {diff:e}"))?;
    }
    ensure(diff <= TOLERANCE, || format!("{diff:e} > {TOLERANCE:e}"))?;
    let (a, b) = (run.history.epochs[0].train.loss, history.epochs[0].train.loss);
    ensure((a - b).abs() < 1e-5 * b.abs(), || format!("training loss {a} vs {b}"))
}

/// A checkpoint taken on `size` ranks resumes on `size` ranks to exactly the
/// uninterrupted run's weights (CNN with batch norm and dropout), and on one
/// process to them within the tolerance (MLP).
pub fn resume(world: &SimpleCommunicator, dir: &Path) -> Check {
    let train = data::<64>(120, 7);
    let path = dir.join(format!("cnn-{}.safetensors", world.size()));
    if world.rank() == 0 {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    world.barrier();
    let fit = |net: &mut Cnn, trainer: &mut Trainer<Adam<f32>>| {
        trainer.fit_distributed(world, net, &SoftmaxCrossEntropy, &train, None).map_err(|e| e.to_string())
    };
    let mut whole = Cnn::new(8);
    let all = fit(&mut whole, &mut adam_trainer(3, 16))?;
    let mut first = Cnn::new(8);
    fit(&mut first, &mut adam_trainer(2, 16).checkpoint(&path))?;
    let (mut resumed, mut trainer) = (Cnn::new(99), adam_trainer(3, 16));
    trainer.resume(&mut resumed, &path).map_err(|e| e.to_string())?;
    let rest = fit(&mut resumed, &mut trainer)?;
    ensure(flat(&resumed) == flat(&whole), || {
        "the resumed CNN's weights differ from the uninterrupted run's".into()
    })?;
    ensure(buffers(&resumed) == buffers(&whole), || "the resumed CNN's statistics differ".into())?;
    ensure(rest.history.epochs[0].train == all.history.epochs[2].train, || "epoch 3's loss differs".into())?;

    let train = data::<16>(160, 9);
    let path = dir.join(format!("mlp-{}.safetensors", world.size()));
    let mut whole = Mlp::new(4);
    adam_trainer(3, 16)
        .fit_distributed(world, &mut whole, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    let mut first = Mlp::new(4);
    adam_trainer(2, 16)
        .checkpoint(&path)
        .fit_distributed(world, &mut first, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    let (mut alone, mut trainer) = (Mlp::new(0), adam_trainer(3, 16));
    trainer.resume(&mut alone, &path).map_err(|e| e.to_string())?;
    trainer.fit(&mut alone, &SoftmaxCrossEntropy, &train, None).map_err(|e| e.to_string())?;
    let diff = relative_difference(&flat(&alone), &flat(&whole));
    ensure(diff <= TOLERANCE, || format!("resumed on one process: {diff:e} > {TOLERANCE:e}"))
}

/// Uneven splits: 103 samples in batches of 10 (last batch 3), and 101 (last
/// batch 1: some ranks' shares are empty); the same on every rank and as one process.
pub fn uneven(world: &SimpleCommunicator) -> Check {
    for n in [103, 101] {
        let train = data::<16>(n, 11);
        let (mut spread, mut single) = (Mlp::new(12), Mlp::new(12));
        let run = adam_trainer(2, 10)
            .fit_distributed(world, &mut spread, &SoftmaxCrossEntropy, &train, Some(&data::<16>(7, 5)))
            .map_err(|e| e.to_string())?;
        adam_trainer(2, 10)
            .fit(&mut single, &SoftmaxCrossEntropy, &train, None)
            .map_err(|e| e.to_string())?;
        ensure(run.communication.steps == 22, || {
            format!("{n}: {} steps, expected 22", run.communication.steps)
        })?;
        ensure(same_on_every_rank(world, &flat(&spread)), || format!("{n}: weights differ between ranks"))?;
        let diff = relative_difference(&flat(&spread), &flat(&single));
        ensure(diff <= TOLERANCE, || format!("{n} samples: {diff:e} > {TOLERANCE:e}"))?;
    }
    Ok(())
}

/// The training data, with NaN features on the last rank only (bad data there).
fn poisoned(world: &SimpleCommunicator) -> Dataset<f32, 16, Labels> {
    let train = data::<16>(64, 13);
    if world.rank() + 1 < world.size() {
        return train;
    }
    let features = train.features().map(|_| f32::NAN);
    Dataset::new(features, train.targets().clone()).expect("same length")
}

/// A rank with bad data fails its first step with its own error; every other
/// rank returns `RankFailed` naming it, at the same step.
pub fn fault(world: &SimpleCommunicator) -> Check {
    if world.size() > 1 {
        lengths_must_agree(world)?;
    }
    let last = world.size() as usize - 1;
    let mut net = Mlp::new(1);
    let result =
        adam_trainer(2, 8).fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &poisoned(world), None);
    match result {
        Err(Error::NonFinite { epoch: 1, batch: 0, .. }) if world.rank() as usize == last => Ok(()),
        Err(Error::RankFailed { rank, size, during }) if rank == last && size == last + 1 => {
            ensure(during == "in epoch 1, batch 0", || format!("failed {during}"))
        }
        other => Err(format!("expected this rank's own error or RankFailed, got {:?}", other.map(|_| ()))),
    }
}

/// Data sets of different lengths on different ranks are refused on every rank, before training.
fn lengths_must_agree(world: &SimpleCommunicator) -> Check {
    let n = if world.rank() + 1 == world.size() { 63 } else { 64 };
    let mut net = Mlp::new(1);
    match adam_trainer(1, 8).fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &data::<16>(n, 13), None)
    {
        Err(Error::InvalidConfig(m)) if m.contains("differs between ranks (from 63 to 64)") => Ok(()),
        other => Err(format!("expected the lengths to be refused, got {:?}", other.map(|_| ()))),
    }
}

/// As an example would: print the error and fail, so `mpirun` ends the job with a failure.
/// A rank that reports another's failure waits a moment before exiting (as the examples do), so that
/// the failing rank's own message is out before `mpirun` ends the job at the first failed exit.
pub fn fail_exit(world: &SimpleCommunicator) -> Check {
    let mut net = Mlp::new(1);
    match adam_trainer(2, 8).fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &poisoned(world), None) {
        Ok(_) => Ok(()),
        Err(e) => {
            if matches!(e, Error::RankFailed { .. }) {
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            Err(e.to_string())
        }
    }
}

/// The last rank panics between two fits while the others wait in the second's all-reduce.
pub fn panic(world: &SimpleCommunicator) -> Check {
    let mut net = Mlp::new(1);
    let train = data::<16>(64, 13);
    adam_trainer(1, 8)
        .fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    if world.rank() + 1 == world.size() {
        panic!("a bug on the last rank");
    }
    adam_trainer(1, 8)
        .fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    Err("the job went on after a rank panicked".into())
}

/// The last rank dies (SIGABRT) while the others wait for it.
pub fn crash(world: &SimpleCommunicator) -> Check {
    let mut net = Mlp::new(1);
    let train = data::<16>(64, 13);
    adam_trainer(1, 8)
        .fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    if world.rank() + 1 == world.size() {
        eprintln!("rank {}: dying", world.rank());
        std::process::abort();
    }
    adam_trainer(1, 8)
        .fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &train, None)
        .map_err(|e| e.to_string())?;
    Err("the job went on after a rank died".into())
}

/// Times the all-reduce of `counts` f32 values in the trainer's buckets (after
/// a barrier, so no rank waits for another's compute), and of one integer
/// (the per-step status flag): 5 warm-up calls, then the minimum, median and
/// mean of 50 (on a loaded machine the minimum is the transport, the rest scheduling).
pub fn bench(world: &SimpleCommunicator, counts: &[String]) -> Check {
    use staticnet::distributed::mpi::collective::SystemOperation;
    let time = |f: &mut dyn FnMut()| {
        (0..5).for_each(|_| f());
        world.barrier();
        let mut times: Vec<f64> = (0..50)
            .map(|_| {
                let start = std::time::Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        format!("min {:.3} ms, median {:.3} ms, mean {mean:.3} ms", times[0], times[times.len() / 2])
    };
    let (flag, mut out) = (1u64, 0u64);
    let latency = time(&mut || world.all_reduce_into(&flag, &mut out, SystemOperation::max()));
    if world.rank() == 0 {
        println!("{} ranks: all-reduce of one u64: {latency}", world.size());
    }
    for count in counts {
        let count: usize = count.parse().map_err(|e| format!("{count}: {e}"))?;
        let (send, mut sum) = (vec![1.0f32; count], vec![0.0f32; count]);
        let per = distributed::BUCKET_BYTES / 4;
        let summary = time(&mut || {
            for (s, r) in send.chunks(per).zip(sum.chunks_mut(per)) {
                world.all_reduce_into(s, r, SystemOperation::sum());
            }
        });
        if world.rank() == 0 {
            println!("{} ranks: all-reduce of {} bytes: {summary}", world.size(), count * 4);
        }
    }
    Ok(())
}
