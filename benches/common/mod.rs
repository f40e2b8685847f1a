//! Timing helpers shared by the benches: a training step and an inference
//! pass of a network on a fixed batch.
//!
//! A training step is what the peers' step in `../shared/bench` is: forward,
//! softmax cross-entropy, backward and a plain SGD update (lr 0.01).

use criterion::{Criterion, Throughput};
use staticnet::prelude::*;
use std::hint::black_box;

/// A deterministic batch of `n` samples and labels below `classes`.
pub fn batch<const N: usize>(n: usize, classes: usize) -> (Batch<f32, N>, Labels) {
    let x = Batch::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0);
    (x, (0..n).map(|j| j % classes).collect())
}

/// Times one training step of `net` on a fixed batch of `n`.
pub fn train_step<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, mut net: N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, labels) = batch::<IN>(n, OUT);
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

/// Times the inference pass of `net` on a fixed batch of `n`.
pub fn infer<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, net: &N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, _) = batch::<IN>(n, OUT);
    c.benchmark_group("infer")
        .throughput(Throughput::Elements(n as u64))
        .bench_function(name, |b| b.iter(|| black_box(net.forward(black_box(&x)))));
}
