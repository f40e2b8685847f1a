//! Trains a multi-layer perceptron on MNIST digits and reports test accuracy.
//!
//! ```text
//! cargo run --release --example mnist                      # the bundled 9,002 digits in data/mnist
//! cargo run --release --example mnist -- --data DIR        # any directory of MNIST IDX files (raw or .gz)
//! cargo run --release --example mnist -- --epochs 10 --lr 0.001 --weight-decay 0 --seed 7 --no-augment
//! ```

mod common;

use common::{Mlp, Options};
use staticnet::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let defaults = Options {
        data: common::default_data(),
        epochs: 6,
        batch_size: 128,
        lr: 2e-3,
        weight_decay: 0.1,
        seed: 42,
        augment: true,
        out: PathBuf::from("target/mnist"),
    };
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let opts = Options::from_args("mnist", defaults)?;
        println!("{}", Mlp::summary());
        let mut net = Mlp::new(opts.seed);
        common::train_and_test(&mut net, &opts)?;
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
