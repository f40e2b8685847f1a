//! No heap allocation in a training step or an inference call of a generated
//! sequence network (`[steps, features]` inputs) once its buffers exist: the
//! workspaces of the per-step, recurrent, attention and pooling layers the
//! macro puts in the trace are sized by the first step and reused.
//!
//! A counting global allocator (this test binary only) counts every allocation
//! by any thread; the file holds a single `#[test]`, so nothing else in the
//! binary allocates while it measures.

use staticnet::prelude::*;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

network! {
    /// Issue 19's `Rows`.
    struct Rows {
        input: [28, 28],
        conv: conv1d(32, kernel = 3, padding = 1), relu,
        rnn: lstm(64),
        gru1: gru(32),
        last,
        head: dense(10),
    }
}

network! {
    /// A pre-LN transformer block with every other rank-2 layer around it.
    struct Block {
        input: [16, 32],
        pos: positional,
        att: residual { layer_norm, attention(heads = 4, causal) },
        ff: residual { layer_norm, dense(64), gelu, dropout(0.1), dense(32) },
        softmax,
        c: conv1d(8, kernel = 3, stride = 2, padding = 1),
        max_pool(2), avg_pool(2, stride = 1),
        p: parallel(add) { branch { dense(6) } branch { gru(6) } },
        global_avg_pool,
        dense(10),
    }
}

fn check<N, O, const IN: usize, const OUT: usize>(what: &str, mut net: N, mut opt: O, n: usize) -> Vec<String>
where
    N: Network<f32, IN, OUT>,
    O: Optimizer<f32>,
{
    let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.3);
    let labels: Labels = (0..n).map(|j| j % OUT).collect();
    let mut trace = N::Trace::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::<f32, OUT>::zeros(0);
    let mut step = |net: &mut N| {
        let out = net.forward_train(&x, &mut trace);
        let loss = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
        net.backward(&x, &mut trace, &d_out, &mut grads, None);
        opt.step(net, &grads).unwrap();
        assert!(loss.is_finite());
    };
    let mut failures = Vec::new();
    let first = allocations_in(|| step(&mut net));
    assert!(first > 0, "{what}: the counting allocator saw nothing");
    let training = allocations_in(|| (0..3).for_each(|_| step(&mut net)));
    if training != 0 {
        failures.push(format!("{what}: {training} allocations in 3 training steps"));
    }
    let mut trace = N::Trace::default();
    net.infer(&x, &mut trace);
    let inference = allocations_in(|| {
        for _ in 0..3 {
            std::hint::black_box(net.infer(&x, &mut trace));
        }
    });
    if inference != 0 {
        failures.push(format!("{what}: {inference} allocations in 3 inference calls"));
    }
    failures
}

#[test]
fn sequence_networks_allocate_nothing_once_sized() {
    let mut failures = Vec::new();
    for threads in [1, 2] {
        staticnet::set_threads(threads);
        for n in [1, 16] {
            let t = format!("b{n}, {threads} thread(s)");
            failures.extend(check(&format!("rows {t}"), Rows::new(0), Adam::new(1e-3), n));
            failures.extend(check(&format!("block {t}"), Block::new(0), AdamW::new(1e-3, 0.01), n));
        }
    }
    staticnet::set_threads(1);
    assert!(failures.is_empty(), "allocations found:\n{}", failures.join("\n"));
}
