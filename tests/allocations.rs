//! No heap allocation in a training step or an inference call once the buffers exist.
//!
//! A counting global allocator (this test binary only) wraps the system one and
//! counts every allocation and reallocation made by any thread. The file holds a
//! single `#[test]`, so nothing else in the binary allocates while it measures.
//!
//! A training step is what the trainer and the benches run: `forward_train`,
//! `loss_and_grad`, `backward`, `Optimizer::step`. The first step may allocate
//! (trace buffers for the batch size, optimizer state); every later one must not.
//! The same holds for `Network::infer` after one call with the batch size.

use staticnet::prelude::*;
use std::sync::{Mutex, MutexGuard};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

network! {
    /// The `tiny` reference model: 4 → 16 → 16 → 3.
    struct Tiny { input: [4], dense(16), relu, dense(16), relu, dense(3) }
}

network! {
    /// The `mlp` reference model: 784 → 256 → 128 → 10.
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

network! {
    /// The `cnn` reference model: 1×28×28 → conv2d(8, 3×3) → relu → max_pool(2) → flatten → dense(10).
    struct Cnn {
        input: [1, 28, 28],
        conv2d(8, kernel = 3), relu, max_pool(2), flatten,
        dense(10),
    }
}

network! {
    /// Every other layer kind that keeps a workspace, and a conv large enough for the gemm path.
    struct Wide {
        input: [3, 12, 12],
        conv2d(16, kernel = 3, padding = 1), batch_norm, relu,
        conv2d(128, kernel = 3, padding = 1), relu, avg_pool(2),
        conv2d(8, kernel = 1), layer_norm, gelu, max_pool(2),
        flatten, dropout(0.25),
        dense(32), tanh,
        dense(5),
    }
}

network! {
    /// Issue 19's `Rows`: a convolution over steps, recurrent layers, the last step.
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
        // Heads of 16 features: the f32 attention core runs in `kernels::attention`.
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(64), gelu, dropout(0.1), dense(32) },
        softmax,
        c: conv1d(8, kernel = 3, stride = 2, padding = 1),
        max_pool(2), avg_pool(2, stride = 1),
        p: parallel(add) { branch { dense(6) } branch { gru(6) } },
        global_avg_pool,
        dense(10),
    }
}

network! {
    /// An embedding right before an LSTM (one fused call) and before a GRU.
    struct Tokens { input: tokens[8], embed: embedding(11 -> 16), rnn: lstm(16), gru1: gru(8), last, head: dense(5) }
}

/// A deterministic batch of `n` samples and labels below `classes`.
fn batch<const N: usize>(n: usize, classes: usize) -> (Batch<f32, N>, Labels) {
    let x = Batch::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.3);
    (x, (0..n).map(|j| j % classes).collect())
}

/// Asserts that training steps after the first, and inference calls after the
/// first, allocate nothing.
fn check<N, O, const IN: usize, const OUT: usize>(what: &str, net: N, opt: O, n: usize) -> Vec<String>
where
    N: Network<f32, IN, OUT>,
    O: Optimizer<f32>,
{
    check_on(what, net, opt, batch::<IN>(n, OUT))
}

/// [`check`] on the batch `(x, labels)`.
fn check_on<N, O, const IN: usize, const OUT: usize>(
    what: &str,
    mut net: N,
    mut opt: O,
    (x, labels): (Batch<f32, IN>, Labels),
) -> Vec<String>
where
    N: Network<f32, IN, OUT>,
    O: Optimizer<f32>,
{
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
    // The first step sizes the trace and creates the optimizer state; that it is
    // seen allocating shows the counter works.
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

fn check_all(threads: usize) -> Vec<String> {
    staticnet::set_threads(threads);
    let mut failures = Vec::new();
    let mut run = |f: Vec<String>| failures.extend(f);
    let t = format!("{threads} thread(s)");
    let sgd = || Sgd::new(0.01).momentum(0.9);
    let adam = || Adam::new(1e-3);
    for n in [1, 32] {
        run(check(&format!("tiny b{n}, sgd, {t}"), Tiny::new(0), sgd(), n));
        run(check(&format!("tiny b{n}, adam, {t}"), Tiny::new(0), adam(), n));
    }
    for n in [1, 128] {
        run(check(&format!("mlp b{n}, sgd, {t}"), Mlp::new(0), sgd(), n));
        run(check(&format!("mlp b{n}, adam, {t}"), Mlp::new(0), adam(), n));
    }
    for n in [1, 64] {
        run(check(&format!("cnn b{n}, sgd, {t}"), Cnn::new(0), sgd(), n));
        run(check(&format!("cnn b{n}, adam, {t}"), Cnn::new(0), adam(), n));
    }
    run(check(&format!("wide b16, adamw, {t}"), Wide::new(0), AdamW::new(1e-3, 0.01), 16));
    for n in [1, 16] {
        run(check(&format!("rows b{n}, adam, {t}"), Rows::new(0), adam(), n));
        run(check(&format!("transformer block b{n}, adamw, {t}"), Block::new(0), AdamW::new(1e-3, 0.01), n));
    }
    // 1 window: fewer tokens than ids, the layers one by one; 16: the fused per-token path.
    for n in [1, 16] {
        let ids = Batch::from_fn(n, |i, j| ((i * 5 + j * 3) % 11) as f32);
        let labels = (0..n).map(|j| j % 5).collect();
        run(check_on(&format!("tokens b{n}, adam, {t}"), Tokens::new(0), adam(), (ids, labels)));
    }
    failures
}

/// Held for the whole of every test here that changes the global thread count
/// (one today), so a test added beside it cannot change the count under it.
fn thread_count_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn training_steps_and_inference_allocate_nothing_once_sized() {
    let _threads = thread_count_lock();
    // With two threads, the parts of a split product go to whichever thread
    // claims them first, so this also checks that no thread's first part allocates.
    let mut failures = check_all(1);
    failures.extend(check_all(2));
    staticnet::set_threads(1);
    assert!(failures.is_empty(), "allocations found:\n{}", failures.join("\n"));
}
