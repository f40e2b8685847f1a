//! `--distributed`: the MNIST examples' training, data-parallel over MPI
//! ranks (`mpirun -np 2 target/release/examples/mnist --distributed`, built
//! with `--features mpi`). Every rank loads the data and trains on its share
//! of each global batch; rank 0 prints, tests, saves and plots; each rank
//! prints `rank R/N weights sha256 HEX` at the end.

use super::Options;
use staticnet::distributed::{self, mpi};
use staticnet::prelude::*;
use std::process::ExitCode;
use std::time::Instant;

use mpi::traits::*;

/// `common::main` with `--distributed`.
pub fn main<N>(name: &str, defaults: Options, summary: String, build: impl FnOnce(u64) -> N) -> ExitCode
where
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }>,
{
    let Some(universe) = mpi::initialize() else {
        eprintln!("error: MPI could not be initialised");
        return ExitCode::FAILURE;
    };
    distributed::abort_on_panic();
    let world = universe.world();
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let opts = Options::from_args(name, defaults)?;
        // One thread per core each rank has: the cores over the ranks on this machine.
        let local = world.split_shared(world.rank()).size().max(1) as usize;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        staticnet::set_threads(opts.threads.unwrap_or((cores / local).max(1)));
        if world.rank() == 0 {
            println!("{summary}");
        }
        let mut net = build(opts.seed);
        train_and_test(&world, &mut net, &opts)?;
        // One rank after another, so the lines come out in rank order.
        for r in 0..world.size() {
            if r == world.rank() {
                println!("{}", distributed::weights_line(&world, &net));
            }
            world.barrier();
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Another rank failed and is printing its own error: give it a moment, since `mpirun`
            // ends every rank as soon as one exits with a failure.
            if matches!(e.downcast_ref::<Error>(), Some(Error::RankFailed { .. })) {
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            // One write, so that a rank ended by `mpirun` meanwhile leaves no half line.
            let line = format!("rank {}/{}: error: {e}\n", world.rank(), world.size());
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// `common::train_and_test` over the ranks of `world`: the same trainer and
/// data; rank 0 reports the test accuracy and the cost of the gradient
/// exchange, and writes the model and its training curves.
fn train_and_test<C, N>(world: &C, net: &mut N, opts: &Options) -> Result<(), Box<dyn std::error::Error>>
where
    C: Communicator,
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }>,
{
    let lead = world.rank() == 0;
    let data = mnist::load::<f32>(&opts.data)?;
    if lead {
        println!(
            "{} training and {} test digits from {}, {} rank(s) × {} thread(s), global batch {}",
            data.train.len(),
            data.test.len(),
            opts.data.display(),
            world.size(),
            staticnet::threads(),
            opts.batch_size
        );
    }
    let train = if opts.augment { mnist::with_shifts(&data.train) } else { data.train.clone() };
    let mut trainer = Trainer::new(AdamW::new(opts.lr, opts.weight_decay))
        .epochs(opts.epochs)
        .batch_size(opts.batch_size)
        .seed(opts.seed)
        .schedule(Schedule::Cosine { min_factor: 0.01 });
    let start = Instant::now();
    let run = trainer.fit_distributed(world, net, &SoftmaxCrossEntropy, &train, Some(&data.test))?;
    let seconds = start.elapsed().as_secs_f64();
    if !lead {
        return Ok(());
    }
    let test = evaluate(net, &SoftmaxCrossEntropy, &data.test, 256)?;
    println!(
        "test accuracy: {:.2}% (loss {:.4}) after {seconds:.1} s of training",
        100.0 * test.accuracy.unwrap_or(0.0),
        test.loss
    );
    let c = &run.communication;
    let per_epoch: Vec<String> = run.history.epochs.iter().map(|e| format!("{:.2}", e.seconds)).collect();
    println!(
        "rank 0: {} steps, all-reduce {:.3} ms/step ({} bytes/step in {} bucket(s), {} fallback broadcast(s)); epochs took {} s",
        c.steps,
        1e3 * c.seconds_per_step(),
        c.bytes_per_step,
        c.buckets,
        c.fallbacks,
        per_epoch.join(", ")
    );
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let model = opts.out.join("model.safetensors");
    staticnet::persist::save(&*net, &model)?;
    run.history.plot_svg(opts.out.join("training.svg"))?;
    println!("saved {} and training.svg beside it", model.display());
    Ok(())
}
