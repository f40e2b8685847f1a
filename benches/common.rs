//! Timing helpers shared by the benches: a training step and an inference
//! pass of a network on a fixed batch, for each thread count asked for.
//!
//! A training step is what the peers' step in `../shared/bench` is: forward,
//! softmax cross-entropy, backward and a plain SGD update (lr 0.01).
//! Inference is `Network::infer` into reused buffers (allocation-free), as a
//! serving loop would run it; `forward` (which allocates its outputs) is timed
//! too for reference as `*_alloc`.
//!
//! Thread counts: `STATICNET_BENCH_THREADS` (default `1,2`), e.g.
//! `STATICNET_BENCH_THREADS=1 cargo bench --bench mlp`. Each case is reported as
//! `train/<case>/<n>t` or `infer/<case>/<n>t`.

#![allow(dead_code)]

use criterion::{BenchmarkId, Criterion, Throughput};
use staticnet::prelude::*;
use std::hint::black_box;

/// The thread counts to time, from `STATICNET_BENCH_THREADS` (default 1 and 2).
pub fn thread_counts() -> Vec<usize> {
    std::env::var("STATICNET_BENCH_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2])
}

/// A deterministic batch of `n` samples and labels below `classes`.
pub fn batch<const N: usize>(n: usize, classes: usize) -> (Batch<f32, N>, Labels) {
    let x = Batch::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0);
    (x, (0..n).map(|j| j % classes).collect())
}

/// Times one training step of `net` on a fixed batch of `n`: softmax
/// cross-entropy and an SGD step.
pub fn train_step<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, net: N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, labels) = batch::<IN>(n, OUT);
    train_step_with(c, name, net, &SoftmaxCrossEntropy, Sgd::new(0.01), &x, &labels);
}

/// Times one training step of `net` on `x` and `targets`: forward, `loss`
/// with its gradient, backward, the `optimizer`'s step.
pub fn train_step_with<N, L, O, const IN: usize, const OUT: usize>(
    c: &mut Criterion,
    name: &str,
    mut net: N,
    loss: &L,
    mut optimizer: O,
    x: &Batch<f32, IN>,
    targets: &L::Target,
) where
    N: Network<f32, IN, OUT>,
    L: Loss<f32, OUT>,
    O: Optimizer<f32>,
{
    let mut trace = N::Trace::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::<f32, OUT>::zeros(0);
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(x.ncols() as u64));
    for threads in thread_counts() {
        staticnet::set_threads(threads);
        group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
            b.iter(|| {
                let out = net.forward_train(black_box(x), &mut trace);
                let value = loss.loss_and_grad(out, targets, &mut d_out).unwrap();
                net.backward(x, &mut trace, &d_out, &mut grads, None);
                optimizer.step(&mut net, &grads).unwrap();
                black_box(value)
            })
        });
    }
    group.finish();
    staticnet::set_threads(1);
}

/// Times the inference pass of `net` on a fixed batch of `n`.
pub fn infer<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, net: &N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, _) = batch::<IN>(n, OUT);
    let mut trace = N::Trace::default();
    let mut group = c.benchmark_group("infer");
    group.throughput(Throughput::Elements(n as u64));
    for threads in thread_counts() {
        staticnet::set_threads(threads);
        group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
            b.iter(|| black_box(net.infer(black_box(&x), &mut trace)[(0, 0)]))
        });
    }
    staticnet::set_threads(1);
}

/// Times `Network::forward` (fresh output buffers per call), one thread.
pub fn forward_alloc<N, const IN: usize, const OUT: usize>(c: &mut Criterion, name: &str, net: &N, n: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, _) = batch::<IN>(n, OUT);
    staticnet::set_threads(1);
    c.benchmark_group("infer")
        .throughput(Throughput::Elements(n as u64))
        .bench_function(BenchmarkId::new(format!("{name}_alloc"), "1t"), |b| {
            b.iter(|| black_box(net.forward(black_box(&x))))
        });
}
