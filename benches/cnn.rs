//! Training steps and inference of convolutional networks: the `cnn` reference
//! model of `../shared/bench` and the CNN of `examples/mnist_cnn.rs`.

use common::{infer, train_step};
use criterion::{criterion_group, criterion_main, Criterion};
use staticnet::prelude::*;

network! {
    /// `cnn_*`: 1×28×28 → conv2d(8, 3×3) → relu → max_pool(2) → flatten (1352) → dense(10).
    struct Cnn {
        input: [1, 28, 28],
        conv2d(8, kernel = 3), relu, max_pool(2), flatten => [1352],
        dense(10),
    }
}

network! {
    /// The CNN of `examples/mnist_cnn.rs`.
    struct Digits {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3), relu, max_pool(2),
        conv2: conv2d(32, kernel = 3, padding = 1), batch_norm, relu, max_pool(2),
        flatten, dropout(0.25),
        fc: dense(128), relu,
        head: dense(10),
    }
}

fn benches(c: &mut Criterion) {
    train_step(c, "cnn_train_b64", Cnn::new(0), 64);
    infer(c, "cnn_infer_b64", &Cnn::new(0), 64);
    infer(c, "cnn_infer_b1", &Cnn::new(0), 1);
    train_step(c, "digits_train_b128", Digits::new(0), 128);
    infer(c, "digits_infer_b128", &Digits::new(0), 128);
}

criterion_group!(cnn, benches);
criterion_main!(cnn);
