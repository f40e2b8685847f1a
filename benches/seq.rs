//! Issue 19's sequence cases: a training step and batch-1 inference of the
//! character GPT of `examples/charlm.rs`, a training step of its LSTM language
//! model, and sampling 200 tokens with `generate`. The peers (PyTorch eager,
//! `torch.compile`, JAX jit) run the same models in `bench/seq_peers.py`.
//!
//! - `train/gpt_train_b32_t64/<n>t`: forward, the per-step cross-entropy,
//!   backward and an AdamW step (lr 1e-3, weight decay 0.01) on 32 windows of
//!   64 token ids.
//! - `infer/gpt_infer_b1_t64/<n>t`: `Network::infer` of one window into a
//!   reused trace.
//! - `train/lstm_train_b32_t64/<n>t`: the same step for `CharLstm` with a
//!   plain SGD step (lr 0.1).
//! - `generate/generate_tokens/<n>t`: 200 tokens from a 1-token prompt, each a
//!   pass over the whole window (`generate_full_window`; criterion's throughput
//!   is tokens per second).
//! - `generate/generate_tokens_kv/<n>t`: the same with `generate`, which
//!   decodes incrementally (a key/value cache) for the first 64 positions and
//!   passes over the whole window after them; `generate_tokens_kv63` and
//!   `generate_tokens63`: 63 tokens, all within the window, with and without
//!   the cache (the peers' `generate_tokens_kv` case).
//!
//! Token ids and step labels are drawn once from a fixed seed. Thread counts:
//! `STATICNET_BENCH_THREADS` (default `1,2`), as in the other benches.

use common::{thread_counts, train_step_with};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seq_nets::*;
use staticnet::generate::generate_full_window;
use staticnet::prelude::*;
use std::hint::black_box;

#[path = "seq_nets.rs"]
mod seq_nets;

/// Times one training step of `net` with `optimizer` on a fixed batch of `n`
/// windows: forward, per-step cross-entropy, backward, the optimizer's step.
fn train_step<N, O>(c: &mut Criterion, name: &str, net: N, optimizer: O, n: usize)
where
    N: Network<f32, STEPS, LOGITS>,
    O: Optimizer<f32>,
{
    let (x, labels) = windows(n);
    train_step_with(c, name, net, &SequenceCrossEntropy::<STEPS, VOCAB>, optimizer, &x, &labels);
}

/// Times `infer` of one window into a reused trace.
fn infer_one<N: Network<f32, STEPS, LOGITS>>(c: &mut Criterion, name: &str, net: &N) {
    let (x, _) = windows(1);
    let mut trace = N::Trace::default();
    let mut group = c.benchmark_group("infer");
    group.throughput(Throughput::Elements(1));
    for threads in thread_counts() {
        staticnet::set_threads(threads);
        group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
            b.iter(|| black_box(net.infer(black_box(&x), &mut trace)[(0, 0)]))
        });
    }
    group.finish();
    staticnet::set_threads(1);
}

/// How a generation case samples: `generate` (with the incremental decoder)
/// or `generate_full_window`.
type Generator<N> = fn(&N, &[usize], usize, &Sampling) -> staticnet::Result<Vec<usize>>;

/// Times `generator` of `tokens` tokens from a 1-token prompt (temperature 1,
/// every token, seed 0); the throughput is in tokens.
fn generate_tokens<N>(c: &mut Criterion, name: &str, net: &N, tokens: usize, generator: Generator<N>)
where
    N: Network<f32, STEPS, LOGITS>,
{
    let sampling = Sampling::default();
    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(tokens as u64));
    for threads in thread_counts() {
        staticnet::set_threads(threads);
        group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
            b.iter(|| {
                let new = generator(net, black_box(&[0]), tokens, &sampling).unwrap();
                assert_eq!(new.len(), tokens);
                black_box(new)
            })
        });
    }
    group.finish();
    staticnet::set_threads(1);
}

fn benches(c: &mut Criterion) {
    train_step(c, "gpt_train_b32_t64", CharGpt::new(0), AdamW::new(1e-3, 0.01), BATCH);
    infer_one(c, "gpt_infer_b1_t64", &CharGpt::new(0));
    train_step(c, "lstm_train_b32_t64", CharLstm::new(0), Sgd::new(0.1), BATCH);
    let gpt = CharGpt::new(0);
    generate_tokens(c, "generate_tokens", &gpt, TOKENS, generate_full_window);
    generate_tokens(c, "generate_tokens_kv", &gpt, TOKENS, generate);
    generate_tokens(c, "generate_tokens63", &gpt, STEPS - 1, generate_full_window);
    generate_tokens(c, "generate_tokens_kv63", &gpt, STEPS - 1, generate);
}

criterion_group!(seq, benches);
criterion_main!(seq);
