//! Reads MNIST digits as sequences, 28 steps (rows) of 28 pixels, with a 1-D
//! convolution over the rows, an LSTM and a GRU, and classifies the last step.
//!
//! ```text
//! cargo run --release --example mnist_rows                 # the bundled 9,002 digits in data/mnist
//! cargo run --release --example mnist_rows -- --epochs 20 --no-augment --threads 1
//! ```

mod common;

use common::Options;
use staticnet::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

network! {
    /// A digit as 28 rows of 28 pixels, `[steps, features]`; every shape is checked while compiling.
    pub struct Rows {
        input: [28, 28],
        conv: conv1d(32, kernel = 3, padding = 1), relu,   // over the rows: [28, 32]
        rnn: lstm(64),                                     // every row's hidden state: [28, 64]
        gru1: gru(32),                                     // [28, 32]
        last,                                              // the last row's state: [32]
        head: dense(10),
        output: [10],
    }
}

fn main() -> ExitCode {
    let defaults = Options {
        data: common::default_data(),
        epochs: 12,
        batch_size: 64,
        lr: 2e-3,
        weight_decay: 0.01,
        seed: 42,
        augment: true,
        threads: None,
        out: PathBuf::from("target/mnist_rows"),
    };
    common::main("mnist_rows", defaults, Rows::summary(), Rows::new)
}
