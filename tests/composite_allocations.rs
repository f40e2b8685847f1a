//! No heap allocation in a training step or an inference call through residual
//! blocks and parallel branches once the buffers exist, as `allocations.rs`
//! checks for the plain layers (same counting allocator, one `#[test]`).

use staticnet::prelude::*;
#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

network! {
    /// Every composite: residual blocks with and without a projection (conv and dense),
    /// parallel branches joined by concatenation and by a sum.
    struct Blocks {
        input: [2, 8, 8],
        block: residual { conv2d(2, kernel = 3, padding = 1), batch_norm, relu },
        down: residual(projection) { conv2d(4, kernel = 3, stride = 2, padding = 1), relu },
        par: parallel(concat) { branch { conv2d(2, kernel = 1) } branch { max_pool(1), dropout(0.1) } branch { relu } },
        global_avg_pool,
        sum: parallel(add) { branch { dense(6) } branch { dense(6), tanh } },
        r: residual(projection) { dense(3), relu },
        dense(3),
    }
}

#[test]
fn composite_training_steps_and_inference_allocate_nothing_once_sized() {
    let mut net = Blocks::new(0);
    let mut opt = Adam::new(1e-3);
    let n = 8;
    let x = Batch::<f32, 128>::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.3);
    let labels: Labels = (0..n).map(|j| j % 3).collect();
    let mut trace = <Blocks as Network<f32, 128, 3>>::Trace::default();
    let mut grads = net.zero_gradients();
    let (mut d_out, mut d_in) = (Batch::<f32, 3>::zeros(0), Batch::<f32, 128>::zeros(0));
    let mut step = |net: &mut Blocks| {
        let out = net.forward_train(&x, &mut trace);
        let loss = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
        net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_in));
        opt.step(net, &grads).unwrap();
        assert!(loss.is_finite());
    };
    assert!(allocations_in(|| step(&mut net)) > 0, "the counting allocator saw nothing");
    assert_eq!(allocations_in(|| (0..3).for_each(|_| step(&mut net))), 0, "training steps allocated");

    let mut trace = <Blocks as Network<f32, 128, 3>>::Trace::default();
    net.infer(&x, &mut trace);
    let inference = allocations_in(|| {
        for _ in 0..3 {
            std::hint::black_box(net.infer(&x, &mut trace));
        }
    });
    assert_eq!(inference, 0, "inference calls allocated");
}
