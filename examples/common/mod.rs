//! What the MNIST examples share: the networks, command-line options, and
//! training with a final test evaluation, a saved model and a plot.

// Each example uses part of this module.
#![allow(dead_code)]

#[cfg(feature = "mpi")]
mod distributed;

use staticnet::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

network! {
    /// The classic MNIST MLP: 784 pixels in, 10 class logits out.
    pub struct Mlp {
        input: [784],
        fc1: dense(256), relu,
        fc2: dense(128), relu,
        head: dense(10),
        output: [10],
    }
}

network! {
    /// A small CNN: every shape below is computed and checked while compiling.
    pub struct Digits {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3), relu,                      // => [16, 26, 26]
        max_pool(2),                                              // => [16, 13, 13]
        conv2: conv2d(32, kernel = 3, padding = 1), batch_norm, relu,
        max_pool(2) => [32, 6, 6],
        flatten => [1152],
        dropout(0.25),
        fc: dense(128), relu,
        head: dense(10),
        output: [10],
    }
}

network! {
    /// A small residual network: a stem, one identity block, one downsampling
    /// block with a learned 1×1 projection on the skip path, then a classifier.
    pub struct SmallResNet {
        input: [1, 28, 28],
        stem: conv2d(16, kernel = 3, padding = same), batch_norm, relu,
        max_pool(2) => [16, 14, 14],
        block1: residual {
            conv2d(16, kernel = 3, padding = same), batch_norm, relu,
            conv2d(16, kernel = 3, padding = same), batch_norm,
        }, relu,
        down: residual(projection) {                      // 1×1 conv, stride 2, on the skip path
            conv2d(32, kernel = 3, stride = 2, padding = 1), batch_norm, relu,
            conv2d(32, kernel = 3, padding = same), batch_norm,
        } => [32, 7, 7],
        relu,
        flatten,
        dropout(0.25),
        head: dense(10),
    }
}

/// Training settings from the command line, with per-example defaults.
pub struct Options {
    pub data: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub augment: bool,
    /// Threads for the products and convolutions; `None`: one per core the
    /// machine has (the results are the same bits on any count).
    pub threads: Option<usize>,
    /// Where the trained model and its training curves go.
    pub out: PathBuf,
}

const USAGE: &str = "[--data DIR] [--epochs N] [--batch-size N] [--lr X] [--weight-decay X] [--seed N] [--augment | --no-augment] [--threads N] [--out DIR] [--distributed]";

impl Options {
    /// Parses `std::env::args` over `defaults`.
    pub fn from_args(name: &str, defaults: Options) -> Result<Options, String> {
        let mut opts = defaults;
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            fn num<N: std::str::FromStr>(flag: &str, v: String) -> Result<N, String>
            where
                N::Err: std::fmt::Display,
            {
                v.parse().map_err(|e| format!("{flag}: {e}"))
            }
            match flag.as_str() {
                "--data" => opts.data = PathBuf::from(value()?),
                "--epochs" => opts.epochs = num(&flag, value()?)?,
                "--batch-size" => opts.batch_size = num(&flag, value()?)?,
                "--lr" => opts.lr = num(&flag, value()?)?,
                "--weight-decay" => opts.weight_decay = num(&flag, value()?)?,
                "--seed" => opts.seed = num(&flag, value()?)?,
                "--threads" => opts.threads = Some(num(&flag, value()?)?),
                "--out" => opts.out = PathBuf::from(value()?),
                "--augment" => opts.augment = true,
                "--no-augment" => opts.augment = false,
                // Read by `main` (see `distributed_requested`).
                "--distributed" => {}
                "-h" | "--help" => return Err(format!("usage: {name} {USAGE}")),
                other => return Err(format!("unknown argument {other}; usage: {name} {USAGE}")),
            }
        }
        Ok(opts)
    }
}

/// An example's `main`: parses the options over `defaults` (with `data` set
/// to the bundled digits and `out` to `target/<name>`), prints the summary,
/// builds the network from the seed, trains and tests it.
pub fn main<N>(name: &str, defaults: Options, summary: String, build: impl FnOnce(u64) -> N) -> ExitCode
where
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }>,
{
    if distributed_requested() {
        #[cfg(feature = "mpi")]
        return distributed::main(name, defaults, summary, build);
        #[cfg(not(feature = "mpi"))]
        {
            eprintln!(
                "error: --distributed needs MPI: cargo build --release --features mpi --example {name}"
            );
            return ExitCode::FAILURE;
        }
    }
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let opts = Options::from_args(name, defaults)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        staticnet::set_threads(opts.threads.unwrap_or(cores));
        println!("{summary}");
        let mut net = build(opts.seed);
        train_and_test(&mut net, &opts)?;
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `--distributed` was given: data-parallel training over MPI ranks
/// (`mpirun -np 2 target/release/examples/mnist --distributed`, feature `mpi`).
pub fn distributed_requested() -> bool {
    std::env::args().skip(1).any(|a| a == "--distributed")
}

/// The bundled digits.
pub fn default_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

/// Trains `net` on the digits in `opts.data` with AdamW and a cosine schedule,
/// prints the test accuracy, and writes `model.safetensors` and `training.svg`
/// into `opts.out`.
pub fn train_and_test<N>(net: &mut N, opts: &Options) -> Result<f64, Box<dyn std::error::Error>>
where
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }>,
{
    let data = mnist::load::<f32>(&opts.data)?;
    println!(
        "{} training and {} test digits from {}, {} thread(s)",
        data.train.len(),
        data.test.len(),
        opts.data.display(),
        staticnet::threads()
    );
    // One-pixel shifts quintuple the training digits and teach small translations.
    let train = if opts.augment { mnist::with_shifts(&data.train) } else { data.train.clone() };
    let mut trainer = Trainer::new(AdamW::new(opts.lr, opts.weight_decay))
        .epochs(opts.epochs)
        .batch_size(opts.batch_size)
        .seed(opts.seed)
        .schedule(Schedule::Cosine { min_factor: 0.01 });
    let start = Instant::now();
    let history = trainer.fit(net, &SoftmaxCrossEntropy, &train, Some(&data.test))?;
    let seconds = start.elapsed().as_secs_f64();
    let test = evaluate(net, &SoftmaxCrossEntropy, &data.test, 256)?;
    let accuracy = test.accuracy.unwrap_or(0.0);
    println!(
        "test accuracy: {:.2}% (loss {:.4}) after {seconds:.1} s of training",
        100.0 * accuracy,
        test.loss
    );

    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let model = opts.out.join("model.safetensors");
    staticnet::persist::save(&*net, &model)?;
    history.plot_svg(opts.out.join("training.svg"))?;
    println!("saved {} and training.svg beside it", model.display());
    Ok(accuracy)
}
