//! Layers the passes run as one call (`relu, max_pool` and
//! `conv2d, relu, max_pool`, see `Conv2d::forward_train_relu_max_pool`;
//! `dense, relu` and, backward, `relu, dense`, see `Dense::forward_relu`;
//! backward, `gelu, dense`, see `BackwardScaled`) give
//! what the layers give one by one.
//!
//! Convolutions: the f32 network runs the fused kernels (vectorised, sample by
//! sample, where the CPU allows); the f64 one, with the same weights and data,
//! runs layer by layer. Every output, output gradient and parameter gradient
//! must agree to single precision. Dense layers: the generated passes must give
//! the very bits of the layers called one by one.

use staticnet::prelude::*;
use std::sync::{Mutex, MutexGuard};

/// Held for the whole of every test here that changes the global thread count,
/// so a "1 vs 2 threads" check is not disturbed by another test of this binary.
fn thread_count_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

network! {
    /// A padded first convolution (its input gradient is not needed) and a second
    /// one whose input gradient is, each followed by relu and 2×2 max pooling.
    struct Fused {
        input: [2, 10, 10],
        a: conv2d(3, kernel = 3, padding = 1), relu, max_pool(2) => [3, 5, 5],
        b: conv2d(4, kernel = 2), relu, max_pool(2) => [4, 2, 2],
        flatten,
        fc: dense(3),
    }
}

/// The f64 values of every output (or output gradient) of a trace, by layer.
fn buffers<T: Float>(visit: impl Fn(&mut dyn FnMut(&str, &[T]))) -> Vec<(String, Vec<f64>)> {
    let mut all = Vec::new();
    visit(&mut |name, values| all.push((name.to_string(), values.iter().map(|v| v.as_f64()).collect())));
    all
}

fn assert_close(got: &[f64], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{what}[{i}]: {g} vs {e}");
    }
}

#[test]
fn fused_f32_passes_equal_layer_by_layer_f64() {
    let mut net64 = Fused::<f64>::init(Init::He, 7);
    let mut net32 = Fused::<f32>::zeros();
    let mut values = Vec::new();
    net64.visit_params(&ParamPath::ROOT, &mut |p| values.extend_from_slice(p.value));
    let mut at = 0;
    net32.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        for v in p.value.iter_mut() {
            *v = values[at] as f32;
            at += 1;
        }
    });
    let x64 = Batch::<f64, 200>::from_fn(5, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin());
    let x32 = x64.map(|v| v as f32);
    let labels: Labels = vec![0, 1, 2, 1, 0];

    let mut t64 = FusedTrace::<f64>::default();
    let mut t32 = FusedTrace::<f32>::default();
    let (mut d64, mut d32) = (Batch::zeros(0), Batch::zeros(0));
    let out = net64.forward_train(&x64, &mut t64);
    let loss64 = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d64).unwrap();
    let out = net32.forward_train(&x32, &mut t32);
    let loss32 = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d32).unwrap();
    assert_close(&[loss32 as f64], &[loss64], "loss");
    let (mut g64, mut g32) = (net64.zero_gradients(), net32.zero_gradients());
    net64.backward(&x64, &mut t64, &d64, &mut g64, None);
    net32.backward(&x32, &mut t32, &d32, &mut g32, None);

    let outs64 = buffers(|f| Fused::<f64>::visit_outputs(&t64, f));
    let outs32 = buffers(|f| Fused::<f32>::visit_outputs(&t32, f));
    for ((name, got), (_, expected)) in outs32.iter().zip(&outs64) {
        assert_close(got, expected, &format!("output of {name}"));
    }
    // The gradients with respect to each layer's output, the fused ones included.
    let grads = |t: &FusedTrace<f64>| {
        vec![
            t.d.a.as_slice().to_vec(),
            t.d.relu_1.as_slice().to_vec(),
            t.d.b.as_slice().to_vec(),
            t.d.relu_4.as_slice().to_vec(),
        ]
    };
    let grads32 = |t: &FusedTrace<f32>| {
        [t.d.a.as_slice(), t.d.relu_1.as_slice(), t.d.b.as_slice(), t.d.relu_4.as_slice()]
            .map(|d| d.iter().map(|&v| v as f64).collect::<Vec<_>>())
    };
    for ((got, expected), what) in grads32(&t32).iter().zip(grads(&t64)).zip(["a", "relu_1", "b", "relu_4"]) {
        assert!(expected.iter().any(|&v| v != 0.0), "{what}: an all-zero gradient tests nothing");
        assert_close(got, &expected, &format!("gradient of the output of {what}"));
    }
    let mut expected = Vec::new();
    Fused::<f64>::visit_grads(&g64, &mut |g| expected.extend_from_slice(g));
    let mut got = Vec::new();
    Fused::<f32>::visit_grads(&g32, &mut |g| got.extend(g.iter().map(|&v| v as f64)));
    assert_close(&got, &expected, "parameter gradients");
}

/// One training step of `net` on `x` with `threads` threads: every output and
/// output gradient of the trace, and the parameter gradients.
fn step_with_threads(net: &mut Fused, x: &Batch<f32, 200>, threads: usize) -> Vec<Vec<f32>> {
    staticnet::set_threads(threads);
    let labels: Labels = (0..x.ncols()).map(|j| j % 3).collect();
    let mut t = FusedTrace::default();
    let mut d = Batch::zeros(0);
    let out = net.forward_train(x, &mut t);
    SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d).unwrap();
    let mut g = net.zero_gradients();
    net.backward(x, &mut t, &d, &mut g, None);
    staticnet::set_threads(1);
    let mut all = Vec::new();
    Fused::visit_outputs(&t, &mut |_, v| all.push(v.to_vec()));
    let d = &t.d;
    all.extend(
        [d.a.as_slice(), d.relu_1.as_slice(), d.b.as_slice(), d.relu_4.as_slice()].map(<[f32]>::to_vec),
    );
    Fused::visit_grads(&g, &mut |v| all.push(v.to_vec()));
    all
}

#[test]
fn fused_passes_give_the_same_bits_on_one_and_two_threads() {
    let _threads = thread_count_lock();
    // 21 samples: threads split them, and the weight gradient's chunks of 8
    // end with a partial one.
    let mut net = Fused::new(3);
    let x = Batch::<f32, 200>::from_fn(21, |i, j| ((i * 5 + j * 11) as f32 * 0.29).cos());
    let one = step_with_threads(&mut net, &x, 1);
    let two = step_with_threads(&mut net, &x, 2);
    assert!(one == two, "results depend on the thread count");
}

network! {
    /// Dense layers large enough that their products are split on two threads.
    struct Mlp { input: [128], fc1: dense(256), relu, fc2: dense(128), relu, fc3: dense(10) }
}

#[test]
fn dense_relu_passes_give_the_bits_of_the_layers_one_by_one() {
    let _threads = thread_count_lock();
    use staticnet::layers::{Activation, Relu};
    let mut net = Mlp::new(11);
    let x = Batch::<f32, 128>::from_fn(64, |i, j| ((i * 3 + j * 7) as f32 * 0.21).sin());
    let labels: Labels = (0..64).map(|j| j % 10).collect();
    // The layers one by one, through their public methods, on one thread.
    let (mut y1, mut r1, mut y2, mut r2, mut y3) =
        (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
    net.fc1.forward(&x, &mut y1);
    Relu.forward(&y1, &mut r1);
    net.fc2.forward(&r1, &mut y2);
    Relu.forward(&y2, &mut r2);
    net.fc3.forward(&r2, &mut y3);
    let mut d3 = Batch::zeros(0);
    SoftmaxCrossEntropy.loss_and_grad(&y3, &labels, &mut d3).unwrap();
    let mut g = net.zero_gradients();
    let (mut dr2, mut dy2, mut dr1, mut dy1) =
        (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
    net.fc3.backward(&r2, &d3, &mut g.fc3, Some(&mut dr2));
    Relu.backward(&y2, &r2, &dr2, &mut dy2);
    net.fc2.backward(&r1, &dy2, &mut g.fc2, Some(&mut dr1));
    Relu.backward(&y1, &r1, &dr1, &mut dy1);
    net.fc1.backward(&x, &dy1, &mut g.fc1, None);
    assert!(r1.iter().any(|&v| v == 0.0) && dy1.iter().any(|&v| v != 0.0), "the ReLUs gate something");
    let mut expected_grads = Vec::new();
    Mlp::visit_grads(&g, &mut |v| expected_grads.push(v.to_vec()));

    for threads in [1, 2] {
        staticnet::set_threads(threads);
        let mut t = MlpTrace::default();
        let out = net.forward_train(&x, &mut t).clone();
        let mut d = Batch::zeros(0);
        SoftmaxCrossEntropy.loss_and_grad(&out, &labels, &mut d).unwrap();
        let mut g2 = net.zero_gradients();
        net.backward(&x, &mut t, &d, &mut g2, None);
        let mut inferred = MlpTrace::default();
        let inferred = net.infer(&x, &mut inferred).clone();
        staticnet::set_threads(1);
        let o = &t.out;
        for (name, got, expected) in [
            ("fc1", o.fc1.as_slice(), y1.as_slice()),
            ("relu_1", o.relu_1.as_slice(), r1.as_slice()),
            ("fc2", o.fc2.as_slice(), y2.as_slice()),
            ("relu_3", o.relu_3.as_slice(), r2.as_slice()),
        ] {
            assert!(got == expected, "output of {name}, {threads} threads");
        }
        assert!(out == y3 && inferred == y3, "network output, {threads} threads");
        for (name, got, expected) in [
            ("relu_3", t.d.relu_3.as_slice(), dr2.as_slice()),
            ("fc2", t.d.fc2.as_slice(), dy2.as_slice()),
            ("relu_1", t.d.relu_1.as_slice(), dr1.as_slice()),
            ("fc1", t.d.fc1.as_slice(), dy1.as_slice()),
        ] {
            assert!(got == expected, "gradient of the output of {name}, {threads} threads");
        }
        let mut grads = Vec::new();
        Mlp::visit_grads(&g2, &mut |v| grads.push(v.to_vec()));
        assert!(grads == expected_grads, "parameter gradients, {threads} threads");
    }
}

network! {
    /// Convolutions outside the fused pattern (batch norm between convolution
    /// and ReLU, a convolution feeding another): their sample-by-sample passes
    /// are split between threads too. On AVX2 CPUs without AVX-512, `b` (2,304
    /// weights) takes the products of `tensor::gemm`, `a` and `c` the small kernels.
    struct Plain {
        input: [3, 12, 12],
        a: conv2d(16, kernel = 3, padding = 1), batch_norm, relu,
        b: conv2d(16, kernel = 3),
        c: conv2d(4, kernel = 3, padding = 1), relu, avg_pool(2) => [4, 5, 5],
        flatten,
        fc: dense(3),
    }
}

#[test]
fn plain_convolutions_give_the_same_bits_on_one_and_two_threads() {
    let _threads = thread_count_lock();
    // 37 samples: threads split them unevenly, and the last chunk of 8 is partial.
    let x = Batch::<f32, 432>::from_fn(37, |i, j| ((i * 5 + j * 11) as f32 * 0.23).sin());
    let labels: Labels = (0..37).map(|j| j % 3).collect();
    let run = |threads: usize| {
        let mut net = Plain::new(5);
        staticnet::set_threads(threads);
        let mut t = PlainTrace::default();
        let mut d = Batch::zeros(0);
        let out = net.forward_train(&x, &mut t);
        SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d).unwrap();
        let mut g = net.zero_gradients();
        let mut dx = Batch::zeros(0);
        net.backward(&x, &mut t, &d, &mut g, Some(&mut dx));
        let mut inferred = PlainTrace::default();
        let inferred = net.infer(&x, &mut inferred).clone();
        let alloc = net.forward(&x);
        staticnet::set_threads(1);
        let mut all = vec![dx.as_slice().to_vec(), inferred.as_slice().to_vec(), alloc.as_slice().to_vec()];
        Plain::visit_outputs(&t, &mut |_, v| all.push(v.to_vec()));
        all.extend([t.d.a.as_slice(), t.d.b.as_slice(), t.d.c.as_slice()].map(<[f32]>::to_vec));
        Plain::visit_grads(&g, &mut |v| all.push(v.to_vec()));
        all
    };
    let one = run(1);
    assert!(one[0].iter().any(|&v| v != 0.0), "the input gradient is computed");
    assert!(one == run(2), "results depend on the thread count");
}

network! {
    /// A transformer's feed-forward body at every step, large enough that its
    /// products are split on two threads: backward, `gelu, dense` runs as one call.
    struct FeedForward { input: [16, 32], ln: layer_norm, up: dense(128), gelu, down: dense(32) }
}

#[test]
fn gelu_dense_backward_gives_the_bits_of_the_layers_one_by_one() {
    let _threads = thread_count_lock();
    use staticnet::layers::{Activation, Gelu, Layer};
    let mut net = FeedForward::new(5);
    let x = Batch::<f32, 512>::from_fn(64, |i, j| ((i * 5 + j * 3) as f32 * 0.13).sin());
    let d_out = Batch::<f32, 512>::from_fn(64, |i, j| ((i + 2 * j) as f32 * 0.07).cos());
    // The layers one by one, through their public methods, on one thread.
    let mut t = FeedForwardTrace::default();
    net.forward_train(&x, &mut t);
    let (mut d_gelu, mut d_up, mut g) = (Batch::zeros(0), Batch::zeros(0), net.zero_gradients());
    let (down_in, down_out, ws) = (&t.out.gelu_2, &t.out.down, &mut Default::default());
    Layer::backward(&net.down, down_in, down_out, &d_out, ws, &mut g.down, Some(&mut d_gelu));
    Activation::backward(&Gelu, &t.out.up, &t.out.gelu_2, &d_gelu, &mut d_up);
    let (up_in, up_out, ws) = (&t.out.ln, &t.out.up, &mut Default::default());
    Layer::backward(&net.up, up_in, up_out, &d_up, ws, &mut g.up, None);
    let mut expected = Vec::new();
    FeedForward::visit_grads(&g, &mut |v| expected.push(v.to_vec()));
    for threads in [1, 2] {
        staticnet::set_threads(threads);
        let mut g2 = net.zero_gradients();
        net.backward(&x, &mut t, &d_out, &mut g2, None);
        staticnet::set_threads(1);
        assert!(t.d.up == d_up, "gradient at the GELU's input, {threads} threads");
        let mut grads = Vec::new();
        FeedForward::visit_grads(&g2, &mut |v| grads.push(v.to_vec()));
        assert!(grads[2..] == expected[2..], "the dense layers' gradients, {threads} threads");
    }
}
