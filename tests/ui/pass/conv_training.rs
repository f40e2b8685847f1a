// Training mode against inference mode: dropout is the identity in `forward`
// and draws masks in `forward_train`; batch norm normalises with the batch's
// statistics and updates its running statistics only in `forward_train`, and
// uses the running ones in `forward`. Then a whole convolutional network in
// both modes, and its backward pass against finite differences.
use staticnet::prelude::*;

network! { struct Drop3 { input: [2, 4, 4], drop: dropout(0.5) => [2, 4, 4] } }
network! { struct Drop1 { input: [16], relu, drop: dropout(0.25), identity } }
network! { struct NoDrop { input: [1, 2, 2], drop: dropout(0) } }
network! { struct Bn3 { input: [2, 1, 2], bn: batch_norm(momentum = 0.5) } }
network! { struct Bn1 { input: [2], bn: batch_norm(eps = 1e-3, momentum = 0.25) } }

network! {
    /// Everything with a training mode in one network.
    struct Cnn {
        input: [2, 6, 6],
        conv: conv2d(4, kernel = 3, padding = same), bn: batch_norm, relu,
        drop: dropout(0.3),
        max_pool(2) => [4, 3, 3],
        flatten,
        head: dense(3),
    }
}

network! {
    /// Deterministic in training (no dropout), for finite differences: every
    /// layer with a backward pass of its own, with uneven options.
    struct Smooth {
        input: [2, 6, 6],
        // H: span 5, (6 + 2 − 5)/1 + 1 = 4; W: (6 − 2)/2 + 1 = 3
        conv2d(2 -> 3, kernel = [3, 2], stride = [1, 2], padding = [1, 0], dilation = [2, 1]) => [3, 4, 3],
        batch_norm(momentum = 0.2), tanh,
        avg_pool(2, stride = 1) => [3, 3, 2],
        layer_norm,
        conv2d(2, kernel = 2, padding = same, bias = false), sigmoid => [2, 3, 2],
        max_pool([2, 1]) => [2, 1, 2],
        flatten => [4],
        batch_norm, gelu,
        head: dense(4 -> 2),
    }
}

fn buffers<N: Params<f64>>(net: &N) -> Vec<(String, Vec<f64>)> {
    let mut all = Vec::new();
    net.visit_buffers(&ParamPath::ROOT, &mut |p| all.push((p.name.to_string(), p.value.to_vec())));
    all
}

fn assert_near(got: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: {got:?}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= tol, "{what}[{i}]: got {g}, expected {e}");
    }
}

fn main() {
    dropout();
    batch_norm();
    whole_network();
}

fn dropout() {
    let x = Drop3Input::<f64>::from_element(4, 1.0);
    let mut net = Drop3::<f64>::init(Init::Auto, 11);
    assert_eq!(Drop3::LAYERS[0].kind, "dropout(0.5)");
    assert_eq!(Drop3::PARAM_COUNT, 0);
    // Inference: the identity, every time.
    assert_eq!(net.forward(&x), x);
    assert_eq!(net.forward(&x), x);

    // Training: each value is dropped (0) or scaled by 1/(1 − p) = 2.
    let mut trace = Drop3Trace::<f64>::default();
    let y = net.forward_train(&x, &mut trace).clone();
    assert_eq!((y.nrows(), y.ncols()), (32, 4));
    assert!(y.iter().all(|&v| v == 0.0 || v == 2.0), "{y}");
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    assert!((32..=96).contains(&dropped), "{dropped} of 128 dropped with p = 0.5");
    assert_ne!(y, x);
    // The mask is kept for the backward pass: dx = d_out ⊙ mask.
    let mut grads = net.zero_gradients();
    let mut d_x = Drop3Input::<f64>::zeros(0);
    net.backward(&x, &mut trace, &Drop3Output::from_element(4, 1.0), &mut grads, Some(&mut d_x));
    assert_eq!(d_x, y);
    // The generator advances: the next pass draws another mask.
    let clone = net.clone();
    let y2 = net.forward_train(&x, &mut trace).clone();
    assert_ne!(y2, y);
    // A clone carries the generator's state: it draws the same mask.
    let mut clone = clone;
    let mut trace2 = Drop3Trace::<f64>::default();
    assert_eq!(clone.forward_train(&x, &mut trace2), &y2);
    // The seed decides the masks.
    let mut again = Drop3::<f64>::init(Init::Auto, 11);
    assert_eq!(again.forward_train(&x, &mut trace2), &y);
    // Inference is still the identity after training.
    assert_eq!(net.forward(&x), x);

    // Rank 1, between activations: kept values are scaled by 4/3.
    let mut net = Drop1::new(3);
    let x = Drop1Input::from_fn(8, |i, j| i as f32 + j as f32 + 1.0);
    assert_eq!(net.forward(&x), x);
    let mut trace = Drop1Trace::default();
    let y = net.forward_train(&x, &mut trace);
    assert!(y.iter().zip(x.iter()).all(|(&v, &xi)| v == 0.0 || (v - xi * 4.0 / 3.0).abs() < 1e-4));
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    assert!((8..=56).contains(&dropped), "{dropped} of 128 dropped with p = 0.25");

    // p = 0: the identity in training too.
    let mut net = NoDrop::new(1);
    assert_eq!(NoDrop::LAYERS[0].kind, "dropout(0)");
    let x = NoDropInput::from_fn(3, |i, j| (i * 3 + j) as f32 - 4.0);
    let mut trace = NoDropTrace::default();
    assert_eq!(net.forward_train(&x, &mut trace), &x);
}

fn batch_norm() {
    // Rank 3: per channel over the batch and all positions.
    let mut net = Bn3::<f64>::zeros();
    let fresh = vec![
        ("bn.running_mean".to_string(), vec![0.0, 0.0]),
        ("bn.running_var".to_string(), vec![1.0, 1.0]),
    ];
    assert_eq!(buffers(&net), fresh);
    // Channel 0 holds 1, 3 | 5, 7 and channel 1 holds 10, 20 | 30, 40 (two samples).
    let x = Bn3Input::from_column_slice(&[1.0, 3.0, 10.0, 20.0, 5.0, 7.0, 30.0, 40.0]);
    let _ = net.forward(&x);
    assert_eq!(buffers(&net), fresh, "inference must not touch the running statistics");

    // Training: channel 0 has mean 4 and biased variance 5, channel 1 mean 25 and variance 125.
    let mut trace = Bn3Trace::default();
    let y = net.forward_train(&x, &mut trace).clone();
    let (s, t) = (1.0 / (5.0f64 + 1e-5).sqrt(), 1.0 / (125.0f64 + 1e-5).sqrt());
    assert_near(
        y.as_slice(),
        &[-3.0 * s, -s, -15.0 * t, -5.0 * t, s, 3.0 * s, 5.0 * t, 15.0 * t],
        1e-12,
        "training output",
    );
    // running ← (1 − 0.5)·running + 0.5·batch, with the unbiased variance (n = 4).
    let (mean0, mean1) = (0.5 * 4.0, 0.5 * 25.0);
    let (var0, var1) = (0.5 + 0.5 * 5.0 * 4.0 / 3.0, 0.5 + 0.5 * 125.0 * 4.0 / 3.0);
    let stats = buffers(&net);
    assert_eq!(stats[0].0, "bn.running_mean");
    assert_near(&stats[0].1, &[mean0, mean1], 1e-12, "running_mean");
    assert_eq!(stats[1].0, "bn.running_var");
    assert_near(&stats[1].1, &[var0, var1], 1e-12, "running_var");

    // Inference now uses the running statistics, and leaves them alone.
    let y = net.forward(&x);
    let expected: Vec<f64> = [(1.0, 0), (3.0, 0), (10.0, 1), (20.0, 1), (5.0, 0), (7.0, 0), (30.0, 1), (40.0, 1)]
        .iter()
        .map(|&(v, c)| {
            let (m, var) = if c == 0 { (mean0, var0) } else { (mean1, var1) };
            (v - m) / (var + 1e-5).sqrt()
        })
        .collect();
    assert_near(y.as_slice(), &expected, 1e-12, "inference output");
    assert_eq!(buffers(&net), stats);
    // A second training pass moves them again.
    net.forward_train(&x, &mut trace);
    assert_ne!(buffers(&net), stats);

    // Rank 1: per feature over the batch. Samples [1, 10] and [3, 30].
    let mut net = Bn1::<f64>::zeros();
    assert_eq!((net.bn.eps, net.bn.momentum), (1e-3, 0.25));
    let x = Bn1Input::from_column_slice(&[1.0, 10.0, 3.0, 30.0]);
    let before = buffers(&net);
    let _ = net.forward(&x);
    assert_eq!(buffers(&net), before);
    let mut trace = Bn1Trace::default();
    let y = net.forward_train(&x, &mut trace);
    // Feature 0: mean 2, variance 1; feature 1: mean 20, variance 100.
    let (s, t) = (1.0 / (1.0f64 + 1e-3).sqrt(), 1.0 / (100.0f64 + 1e-3).sqrt());
    assert_near(y.as_slice(), &[-s, -10.0 * t, s, 10.0 * t], 1e-12, "rank-1 training output");
    // Unbiased variances 2 and 200 (n = 2).
    let stats = buffers(&net);
    assert_near(&stats[0].1, &[0.25 * 2.0, 0.25 * 20.0], 1e-12, "rank-1 running_mean");
    assert_near(&stats[1].1, &[0.75 + 0.25 * 2.0, 0.75 + 0.25 * 200.0], 1e-12, "rank-1 running_var");
}

fn whole_network() {
    let mut net = Cnn::<f64>::init(Init::He, 2);
    let x = CnnInput::<f64>::from_fn(5, |i, j| ((i * 13 + j * 7) % 17) as f64 / 17.0 - 0.5);
    let y0 = net.forward(&x);
    assert_eq!((y0.nrows(), y0.ncols()), (3, 5));
    assert_eq!(net.forward(&x), y0);
    let stats = buffers(&net);
    assert_eq!(
        stats.iter().map(|(n, v)| (n.as_str(), v.len())).collect::<Vec<_>>(),
        [("bn.running_mean", 4), ("bn.running_var", 4)]
    );

    let mut trace = CnnTrace::default();
    let y = net.forward_train(&x, &mut trace).clone();
    assert_eq!((y.nrows(), y.ncols()), (3, 5));
    assert!(y.iter().all(|v| v.is_finite()));
    assert_ne!(y, y0, "training uses batch statistics and dropout");
    let after = buffers(&net);
    assert_ne!(after, stats);
    assert!(after[0].1.iter().any(|&m| m != 0.0));
    // The trace keeps every layer's output.
    assert_eq!(trace.out.conv.nrows(), 4 * 6 * 6);
    assert_eq!(trace.out.max_pool_4.nrows(), 4 * 3 * 3);
    assert_eq!(Cnn::trace_output(&trace), &y);

    // Backward: a gradient for every parameter and for the input.
    let mut grads = net.zero_gradients();
    let mut d_x = CnnInput::<f64>::zeros(0);
    net.backward(&x, &mut trace, &CnnOutput::from_element(5, 1.0), &mut grads, Some(&mut d_x));
    assert_eq!((d_x.nrows(), d_x.ncols()), (72, 5));
    assert!(d_x.iter().any(|&v| v != 0.0));
    let mut count = 0;
    Cnn::visit_grads(&grads, &mut |g| count += g.len());
    assert_eq!(count, Cnn::PARAM_COUNT);
    assert_eq!(Cnn::PARAM_COUNT, (4 * 2 * 9 + 4) + 8 + (36 * 3 + 3));

    let mut smooth = Smooth::<f64>::init(Init::Glorot, 4);
    let x = SmoothInput::<f64>::from_fn(6, |i, j| ((i * 5 + j * 11) % 23) as f64 / 7.0 - 1.5);
    let smooth_target = SmoothOutput::<f64>::from_fn(6, |i, j| (i as f64 - j as f64) * 0.1);
    // Finite differences through the training pass (batch statistics included).
    let worst = staticnet::gradcheck::check_network(&mut smooth, &MeanSquaredError, &x, &smooth_target, 1e-5);
    assert!(worst <= 1e-5, "{worst}");
}
