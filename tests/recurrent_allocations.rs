//! `Lstm` and `Gru` allocate nothing in a training pass, a backward pass or an
//! inference pass with a workspace once the workspace exists for the batch size,
//! on one thread and on two (the products' and the gate loops' split).
//!
//! A counting global allocator (this test binary only) counts every allocation
//! of any thread; the file holds a single `#[test]`, so nothing else allocates
//! while it measures.

use staticnet::init::{seeded_rng, Init};
use staticnet::layers::{Gru, Layer, Lstm, RecurrentWeights};
use staticnet::params::Params;
use staticnet::tensor::Batch;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

const STEPS: usize = 8;
const F: usize = 24;
const H: usize = 64;

/// Allocations of the second training step, backward pass and inference call
/// (the first sizes the workspace, the gradients and the output buffers).
fn second_step_allocations<L>(mut layer: L) -> usize
where
    L: Layer<f32, { STEPS * F }, { STEPS * H }, Gradients = RecurrentWeights<f32>>
        + Params<f32, Gradients = RecurrentWeights<f32>>,
{
    let x = Batch::<f32, { STEPS * F }>::from_fn(40, |i, j| ((i * 3 + j) as f32 * 0.17).sin());
    let dy = Batch::<f32, { STEPS * H }>::from_fn(40, |i, j| ((i + 2 * j) as f32 * 0.29).cos());
    let (mut ws, mut y, mut dx) = (L::Workspace::default(), Batch::zeros(0), Batch::zeros(0));
    let (mut infer_ws, mut y_infer) = (L::Workspace::default(), Batch::zeros(0));
    let mut grads = layer.zero_gradients();
    let mut step = |layer: &mut L| {
        layer.forward_train(&x, &mut y, &mut ws);
        layer.backward(&x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
        layer.forward_with(&x, &mut y_infer, &mut infer_ws);
    };
    step(&mut layer);
    allocations_in(|| step(&mut layer))
}

#[test]
fn a_second_step_allocates_nothing() {
    for threads in [1, 2] {
        staticnet::set_threads(threads);
        let lstm = Lstm::<f32, STEPS, F, H>::new(Init::Auto, &mut seeded_rng(1));
        assert_eq!(second_step_allocations(lstm), 0, "lstm, {threads} threads");
        let gru = Gru::<f32, STEPS, F, H>::new(Init::Auto, &mut seeded_rng(2));
        assert_eq!(second_step_allocations(gru), 0, "gru, {threads} threads");
    }
    staticnet::set_threads(1);
}
