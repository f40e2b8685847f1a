//! Training steps and inference of the dense reference models of
//! `../shared/bench`, so results compare as ratios measured in one sitting.

use common::{forward_alloc, infer, train_step};
use criterion::{criterion_group, criterion_main, Criterion};
use staticnet::prelude::*;

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
}

criterion_group!(mlp, benches);
criterion_main!(mlp);
