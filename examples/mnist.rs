//! Trains a multi-layer perceptron on MNIST digits and reports test accuracy.
//!
//! ```text
//! cargo run --release --example mnist                      # the bundled 9,002 digits in data/mnist
//! cargo run --release --example mnist -- --data DIR        # any directory of MNIST IDX files (raw or .gz)
//! cargo run --release --example mnist -- --epochs 10 --lr 0.001 --weight-decay 0 --seed 7 --no-augment
//! ```

mod common;

use common::{Mlp, Options};
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
        threads: None,
        out: PathBuf::from("target/mnist"),
    };
    common::main("mnist", defaults, Mlp::summary(), Mlp::new)
}
