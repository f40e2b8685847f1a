//! The rank-2 layers of core allocate nothing once their buffers are sized:
//! a training pass, a backward pass (with the input gradient) and an inference
//! pass with a workspace, after one of each with the batch size.
//!
//! A counting global allocator (this test binary only) counts every allocation
//! made by any thread; the file holds a single `#[test]`, so nothing else in the
//! binary allocates while it measures. (`tests/allocations.rs` does the same for
//! whole networks.)

use staticnet::init::{seeded_rng, Init};
use staticnet::layers::{
    AvgPool1d, Conv1d, Conv1dGeometry, Dense, GlobalAvgPool1d, Last, Layer, LayerNorm, MaxPool1d, PerStep,
};
use staticnet::params::Params;
use staticnet::tensor::Batch;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

/// Runs `steps` training steps and inference calls of `layer` on a batch of
/// `n`; returns the allocations seen after the first of each, if any.
fn check<L, const IN: usize, const OUT: usize>(
    what: &str,
    mut layer: L,
    mut grads: L::Gradients,
    n: usize,
) -> Vec<String>
where
    L: Layer<f32, IN, OUT>,
{
    let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.3);
    let dy = Batch::<f32, OUT>::from_fn(n, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5);
    let (mut y, mut dx, mut ws) = (Batch::zeros(0), Batch::zeros(0), L::Workspace::default());
    let mut step = |layer: &mut L| {
        layer.forward_train(&x, &mut y, &mut ws);
        layer.backward(&x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
        layer.forward_with(&x, &mut y, &mut ws);
        std::hint::black_box(&dx);
    };
    let first = allocations_in(|| step(&mut layer));
    assert!(first > 0, "{what}: the counting allocator saw nothing");
    let later = allocations_in(|| (0..3).for_each(|_| step(&mut layer)));
    if later == 0 {
        Vec::new()
    } else {
        vec![format!("{what}: {later} allocations in 3 steps after the first")]
    }
}

fn check_all(threads: usize) -> Vec<String> {
    staticnet::set_threads(threads);
    let mut failures = Vec::new();
    let t = format!("{threads} thread(s)");
    let rng = &mut seeded_rng(0);
    for n in [1, 16] {
        let dense = PerStep::<_, 16, 64, 128>::new(Dense::<f32, 64, 128>::new(true, Init::He, rng));
        let grads = dense.zero_gradients();
        failures.extend(check::<_, 1024, 2048>(&format!("per-step dense b{n}, {t}"), dense, grads, n));
        let norm = PerStep::<_, 16, 64, 64>::new(LayerNorm::<f32, 64>::new(&[64], 1e-5).unwrap());
        let grads = norm.zero_gradients();
        failures.extend(check::<_, 1024, 1024>(&format!("per-step layer norm b{n}, {t}"), norm, grads, n));
        let g = Conv1dGeometry::new(32, 3, 1, 1, 1).unwrap();
        let conv = Conv1d::<f32, 32, 16, 32, 64, 3>::new(g, true, Init::He, rng).unwrap();
        let grads = conv.zero_gradients();
        failures.extend(check::<_, 512, 2048>(&format!("conv1d b{n}, {t}"), conv, grads, n));
        let pool = MaxPool1d::<32, 16, 16>::new(2, 2).unwrap();
        failures.extend(check::<_, 512, 256>(&format!("max pool b{n}, {t}"), pool, (), n));
        let pool = AvgPool1d::<32, 16, 15>::new(4, 2).unwrap();
        failures.extend(check::<_, 512, 240>(&format!("avg pool b{n}, {t}"), pool, (), n));
        failures.extend(check::<_, 512, 16>(
            &format!("global avg pool b{n}, {t}"),
            GlobalAvgPool1d::<32, 16>,
            (),
            n,
        ));
        failures.extend(check::<_, 512, 16>(&format!("last b{n}, {t}"), Last::<32, 16>, (), n));
    }
    failures
}

#[test]
fn sequence_layers_allocate_nothing_once_sized() {
    let mut failures = check_all(1);
    failures.extend(check_all(2));
    staticnet::set_threads(1);
    assert!(failures.is_empty(), "allocations found:\n{}", failures.join("\n"));
}
