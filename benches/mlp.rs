//! Training steps and inference of the reference models of `../shared/bench`
//! (the same models the peer frameworks are timed on), so results compare as
//! ratios measured in one sitting. See BENCHMARKS.md for how to run both.
//!
//! A training step is what a peer's step is: forward, softmax cross-entropy,
//! backward and a plain SGD update (lr 0.01), on a fixed batch.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use staticnet::prelude::*;
use std::hint::black_box;

network! {
    /// `tiny_*`: 4 → 16 → 16 → 3.
    struct Tiny { input: [4], dense(16), relu, dense(16), relu, dense(3) }
}

network! {
    /// `mlp_*`: 784 → 256 → 128 → 10.
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

fn batch<const N: usize>(n: usize) -> (Batch<f32, N>, Labels) {
    let x = Batch::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0);
    let labels = (0..n).map(|j| j % 3).collect();
    (x, labels)
}

/// Times one training step of `net` on a fixed batch.
fn train_step<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, mut net: N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, labels) = batch::<IN>(n);
    let mut trace = N::Trace::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::<f32, OUT>::zeros(0);
    let mut sgd = Sgd::new(0.01);
    c.benchmark_group("train").throughput(Throughput::Elements(n as u64)).bench_function(name, |b| {
        b.iter(|| {
            let out = net.forward_train(black_box(&x), &mut trace);
            let loss = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
            net.backward(&x, &mut trace, &d_out, &mut grads, None);
            sgd.step(&mut net, &grads).unwrap();
            black_box(loss)
        })
    });
}

/// Times the inference pass of `net` on a fixed batch.
fn infer<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, net: &N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, _) = batch::<IN>(n);
    c.benchmark_group("infer")
        .throughput(Throughput::Elements(n as u64))
        .bench_function(name, |b| b.iter(|| black_box(net.forward(black_box(&x)))));
}

fn benches(c: &mut Criterion) {
    train_step(c, "tiny_train_b32", Tiny::new(0), 32);
    train_step(c, "mlp_train_b128", Mlp::new(0), 128);
    train_step(c, "mlp_train_b1", Mlp::new(0), 1);
    infer(c, "tiny_infer_b1", &Tiny::new(0), 1);
    infer(c, "tiny_infer_b32", &Tiny::new(0), 32);
    infer(c, "mlp_infer_b1", &Mlp::new(0), 1);
    infer(c, "mlp_infer_b128", &Mlp::new(0), 128);
}

criterion_group!(mlp, benches);
criterion_main!(mlp);
