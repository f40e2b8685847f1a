//! Training steps and inference of the dense reference models of
//! `../shared/bench`, so results compare as ratios measured in one sitting.

use common::{batch, forward_alloc, infer, thread_counts, train_step};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use staticnet::prelude::*;
use staticnet::quant::Scheme;
use std::hint::black_box;

network! {
    /// `tiny_*`: 4 → 16 → 16 → 3.
    struct Tiny { input: [4], dense(16), relu, dense(16), relu, dense(3) }
}

network! {
    /// `mlp_*`: 784 → 256 → 128 → 10.
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

fn benches(c: &mut Criterion) {
    // The reference cases of issue 6 / ../shared/bench.
    train_step(c, "tiny_train_b32", Tiny::new(0), 32);
    train_step(c, "mlp_train_b128", Mlp::new(0), 128);
    infer(c, "tiny_infer_b1", &Tiny::new(0), 1);
    infer(c, "mlp_infer_b1", &Mlp::new(0), 1);
    infer(c, "mlp_infer_b128", &Mlp::new(0), 128);
    // Batch sweeps.
    for n in [1, 32, 512] {
        train_step(c, &format!("mlp_train_b{n}"), Mlp::new(0), n);
    }
    for n in [32, 512] {
        infer(c, &format!("mlp_infer_b{n}"), &Mlp::new(0), n);
    }
    infer(c, "tiny_infer_b32", &Tiny::new(0), 32);
    forward_alloc(c, "mlp_infer_b1", &Mlp::new(0), 1);
    // Issue 21: weight-only quantization (int8 with per-row scales, bf16), activations in f32.
    infer_quantized::<Int8>(c, "mlp_infer_b1_int8", 1);
    infer_quantized::<Bf16>(c, "mlp_infer_b1_bf16", 1);
    infer_quantized::<Int8>(c, "mlp_infer_b128_int8", 128);
}

/// `infer` of the quantized `Mlp` (its dense weights in `Q`) into a reused trace.
fn infer_quantized<Q: Scheme>(c: &mut Criterion, name: &str, n: usize) {
    let net = Mlp::new(0).quantized::<Q>();
    let (x, _) = batch::<784>(n, 10);
    let mut trace = Default::default();
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

criterion_group!(mlp, benches);
criterion_main!(mlp);
