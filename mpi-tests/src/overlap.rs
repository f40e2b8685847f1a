//! The gradient all-reduce overlapped with the backward pass: small buckets
//! started while backward runs give the very bits of blocking all-reduces after
//! it (`overlap`), and a bench of a model of tens of MB with overlap on and off
//! (`overlap-bench`, DISTRIBUTED.md).

use crate::cases::{ensure, same_on_every_rank, Check};
use crate::nets::{buffers, data, flat, Cnn, Mlp};
use staticnet::distributed::{mpi::topology::SimpleCommunicator, mpi::traits::*, DistributedOptions};
use staticnet::prelude::*;
use std::time::Instant;

fn trainer(options: DistributedOptions) -> Trainer<Adam<f32>> {
    Trainer::new(Adam::new(1e-2)).epochs(2).batch_size(16).seed(3).verbose(false).distributed(options)
}

/// Tiny buckets (32 bytes first, then 128: several in flight at once).
const SMALL: DistributedOptions =
    DistributedOptions { bucket_bytes: 128, first_bucket_bytes: 32, overlap: true };

/// The blocking exchange: DDP's default buckets, all-reduced after the whole backward pass.
fn blocking() -> DistributedOptions {
    DistributedOptions { overlap: false, ..DistributedOptions::default() }
}

/// A CNN (batch norm, dropout: buffers in the first bucket) and an MLP trained
/// with tiny overlapped buckets, with the default ones and blocking: the same
/// weights, statistics and losses, bit for bit, on every rank.
pub fn overlap(world: &SimpleCommunicator) -> Check {
    let (train, validation) = (data::<64>(200, 1), data::<64>(50, 2));
    let mut runs = Vec::new();
    for options in [SMALL, DistributedOptions::default(), blocking()] {
        let mut cnn = Cnn::new(10 + world.rank() as u64);
        let run = trainer(options)
            .fit_distributed(world, &mut cnn, &SoftmaxCrossEntropy, &train, Some(&validation))
            .map_err(|e| e.to_string())?;
        ensure(same_on_every_rank(world, &flat(&cnn)), || {
            format!("{options:?}: weights differ between ranks")
        })?;
        let losses: Vec<_> = run.history.epochs.iter().map(|e| (e.train, e.validation)).collect();
        runs.push((flat(&cnn), buffers(&cnn), losses, run.communication));
    }
    let (small, default, base) = (&runs[0], &runs[1], &runs[2]);
    let (s, d, b) = (&small.3, &default.3, &base.3);
    ensure(s.buckets >= 6 && s.early_buckets >= s.steps * 3, || format!("tiny buckets: {s:?}"))?;
    ensure(d.buckets == 1 && d.early_buckets == 0 && b.early_buckets == 0, || format!("{d:?} {b:?}"))?;
    for (name, run) in [("tiny overlapped buckets", small), ("default buckets", default)] {
        ensure(run.0 == base.0, || format!("CNN: {name} give other weights than blocking all-reduces"))?;
        ensure(run.1 == base.1, || format!("CNN: {name} give other running statistics"))?;
        ensure(run.2 == base.2, || format!("CNN: {name} give other losses"))?;
    }

    let train = data::<16>(200, 3);
    let mut weights = Vec::new();
    for options in [SMALL, blocking()] {
        let mut mlp = Mlp::new(5);
        let run = trainer(options)
            .fit_distributed(world, &mut mlp, &SoftmaxCrossEntropy, &train, None)
            .map_err(|e| e.to_string())?;
        ensure(same_on_every_rank(world, &flat(&mlp)), || format!("MLP {options:?}: ranks differ"))?;
        weights.push((flat(&mlp), run.communication));
    }
    ensure(weights[0].1.buckets > 20, || format!("MLP tiny buckets: {:?}", weights[0].1))?;
    ensure(weights[0].0 == weights[1].0, || "MLP: overlapped tiny buckets differ from blocking".into())?;
    if world.rank() == 0 {
        println!(
            "overlap: CNN {} and MLP {} buckets per step, the same bits as blocking",
            s.buckets, weights[0].1.buckets
        );
    }
    Ok(())
}

network! {
    /// An MLP of 10.5 M parameters (42 MB of gradients): two buckets of DDP's
    /// default sizes start before its backward pass ends.
    pub struct BigMlp {
        input: [1024],
        fc1: dense(2048), relu,
        fc2: dense(2048), relu,
        fc3: dense(2048), relu,
        fc4: dense(10),
        output: [10],
    }
}

/// `overlap-bench STEPS ROUNDS [BUCKET_MIB [FIRST_MIB]]`: [`BigMlp`] on a global batch of
/// 128, one epoch of STEPS steps with overlap on, one with it off, alternating
/// which goes first, ROUNDS times after a warm-up; rank 0 prints each epoch's
/// milliseconds per step and the exchange's (MPI calls, waiting included), then the medians.
pub fn bench(world: &SimpleCommunicator, args: &[String]) -> Check {
    let number = |i: usize, default: usize| {
        args.get(i).map_or(Ok(default), |a| a.parse().map_err(|e| format!("{a}: {e}")))
    };
    let (steps, rounds, mib, first) = (number(0, 20)?, number(1, 5)?, number(2, 25)?, number(3, 1)?);
    let train = data::<1024>(128 * steps, 21);
    let mut net = BigMlp::new(1);
    let options =
        |overlap| DistributedOptions { bucket_bytes: mib << 20, first_bucket_bytes: first << 20, overlap };
    let mut epoch = |overlap: bool| -> Result<(f64, f64, usize, u64), String> {
        world.barrier();
        let start = Instant::now();
        let trainer = Trainer::new(Sgd::new(1e-4)).epochs(1).batch_size(128).shuffle(false).verbose(false);
        let run = trainer
            .distributed(options(overlap))
            .fit_distributed(world, &mut net, &SoftmaxCrossEntropy, &train, None)
            .map_err(|e| e.to_string())?;
        let ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
        let c = run.communication;
        Ok((ms, c.seconds_per_step() * 1e3, c.buckets, c.early_buckets / c.steps.max(1)))
    };
    epoch(true)?;
    epoch(false)?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for overlap in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let (ms, comm, buckets, early) = epoch(overlap)?;
            if world.rank() == 0 {
                let name = if overlap { "on " } else { "off" };
                println!("round {round} overlap {name}: {ms:.1} ms/step, exchange {comm:.2} ms/step ({buckets} buckets, {early} early)");
            }
            if overlap {
                on.push((ms, comm))
            } else {
                off.push((ms, comm))
            }
        }
    }
    let median = |v: &mut Vec<(f64, f64)>, pick: fn(&(f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(pick).collect();
        x.sort_by(f64::total_cmp);
        x.get(x.len() / 2).copied().unwrap_or(f64::NAN)
    };
    if world.rank() == 0 {
        let bytes = <BigMlp as Params<f32>>::PARAM_COUNT * 4;
        println!(
            "{} ranks, {bytes} bytes, buckets of {mib} MiB (first {first} MiB): median step overlap on {:.1} ms (exchange {:.2}), off {:.1} ms (exchange {:.2})",
            world.size(),
            median(&mut on, |x| x.0),
            median(&mut on, |x| x.1),
            median(&mut off, |x| x.0),
            median(&mut off, |x| x.1),
        );
    }
    Ok(())
}
