//! No heap allocation in an inference call of a quantized network once its
//! buffers exist (the trace, the per-thread panel and fixed-point buffers), at
//! batch 1 (the GEMVs) and batch 64 (the widened panels and the f32 product).
//! One `#[test]`, so nothing else in the binary allocates while it measures.

use staticnet::prelude::*;
use staticnet::quant::{Quantized, Scheme};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

network! {
    /// The `mlp` reference model: 784 → 256 → 128 → 10.
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

network! {
    /// A conv network: its convolutions quantized too.
    struct Cnn { input: [1, 12, 12], conv2d(8, kernel = 3), relu, max_pool(2), conv2d(8, kernel = 3, padding = 1), relu, flatten, dense(10) }
}

fn check<N, const IN: usize, const OUT: usize>(what: &str, q: &Quantized<N>, failures: &mut Vec<String>)
where
    N: Network<f32, IN, OUT>,
{
    for n in [1, 64] {
        let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 3 + j * 7) as f32 * 0.01).sin());
        let mut trace = N::Trace::default();
        q.infer(&x, &mut trace);
        let calls = allocations_in(|| {
            for _ in 0..3 {
                std::hint::black_box(q.infer(&x, &mut trace));
            }
        });
        if calls != 0 {
            failures.push(format!("{what}, batch {n}: {calls} allocations in 3 inference calls"));
        }
    }
}

fn check_scheme<Q: Scheme>(name: &str, failures: &mut Vec<String>) {
    check(&format!("mlp {name}"), &Mlp::new(1).quantized::<Q>(), failures);
    check(&format!("cnn {name}"), &Cnn::new(2).quantized::<Q>(), failures);
}

#[test]
fn quantized_inference_allocates_nothing_once_sized() {
    let mut failures = Vec::new();
    for threads in [1, 2] {
        staticnet::set_threads(threads);
        check_scheme::<Int8>(&format!("int8, {threads} threads"), &mut failures);
        check_scheme::<Bf16>(&format!("bf16, {threads} threads"), &mut failures);
    }
    staticnet::set_threads(1);
    assert!(failures.is_empty(), "allocations found:\n{}", failures.join("\n"));
}
