// Convolution, pooling, flatten and the norm layers on tiny inputs, computed by
// hand value by value: weights are loaded through `visit_params_mut` in
// PyTorch's layout (`[out, in, kh, kw]`, row-major), samples are channel-major.
use staticnet::prelude::*;

network! {
    /// 1×3×3 input, one 2×2 filter with a bias.
    struct Tiny { input: [1, 3, 3], c: conv2d(1, kernel = 2) => [1, 2, 2] }
}
network! {
    /// The same convolution followed by an activation on its rank-3 output.
    struct TinyRelu { input: [1, 3, 3], c: conv2d(1 -> 1, kernel = [2, 2], bias = true), relu => [1, 2, 2] }
}
network! {
    /// Two channels in, one 2×2 filter: checks the `[out, in, kh, kw]` order.
    struct TwoChannels { input: [2, 2, 2], t: conv2d(2 -> 1, kernel = 2, bias = false) => [1, 1, 1] }
}
network! {
    /// A 1×1 convolution mixes channels at each position.
    struct Mix { input: [2, 2, 2], m: conv2d(2 -> 2, kernel = 1, bias = false) }
}
network! {
    /// Padding 1 and stride 2 on a 3×3 input: (3 + 2 − 3)/2 + 1 = 2.
    struct Strided { input: [1, 3, 3], s: conv2d(1, kernel = 3, padding = 1, stride = 2, bias = false) => [1, 2, 2] }
}
network! {
    /// An even kernel with `same`: PyTorch pads the extra row/column at the bottom/right.
    struct SameEven { input: [1, 3, 3], s: conv2d(1, kernel = 2, padding = same, bias = false) => [1, 3, 3] }
}
network! {
    /// A 2×2 kernel dilated by 2 reads the four corners of a 3×3 input.
    struct Dilated { input: [1, 3, 3], d: conv2d(1, kernel = 2, dilation = 2, bias = false) => [1, 1, 1] }
}
network! { struct MaxPoolNet { input: [1, 4, 4], max_pool(2) => [1, 2, 2] } }
network! { struct MaxPoolStrided { input: [1, 4, 4], max_pool(2, stride = 1) => [1, 3, 3] } }
network! { struct AvgPoolNet { input: [1, 4, 4], avg_pool(2) => [1, 2, 2] } }
network! { struct AvgPoolRect { input: [1, 4, 4], avg_pool([2, 4], stride = [2, 1]) => [1, 2, 1] } }
network! { struct PerChannelMax { input: [2, 2, 2], max_pool(2) => [2, 1, 1] } }
network! { struct Gap { input: [2, 2, 2], global_avg_pool => [2] } }
network! {
    /// `flatten` keeps the channel-major order: a dense weight row sees c, h, w in turn.
    struct Flat { input: [2, 1, 2], flatten => [4], w: dense(1, bias = false) }
}
network! { struct Ln { input: [1, 2, 2], ln: layer_norm => [1, 2, 2] } }
network! { struct BnEval { input: [2, 1, 2], bn: batch_norm(eps = 1e-9) } }

/// Loads every parameter by name; each must be listed.
fn set<N: Params<f64>>(net: &mut N, values: &[(&str, &[f64])]) {
    let mut seen = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let name = p.name.to_string();
        let (_, v) = values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("unexpected {name}"));
        p.value.copy_from_slice(v);
        seen += 1;
    });
    assert_eq!(seen, values.len());
}

fn set_buffers<N: Params<f64>>(net: &mut N, values: &[(&str, &[f64])]) {
    let mut seen = 0;
    net.visit_buffers_mut(&ParamPath::ROOT, &mut |p| {
        let name = p.name.to_string();
        let (_, v) = values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("unexpected {name}"));
        p.value.copy_from_slice(v);
        seen += 1;
    });
    assert_eq!(seen, values.len());
}

/// The inference output, checked equal to the training output (no layer here
/// behaves differently in training, except batch norm, which is not run here).
fn outputs<N: Network<f64, IN, OUT>, const IN: usize, const OUT: usize>(net: &mut N, x: &[f64]) -> Vec<f64> {
    let x = Batch::<f64, IN>::from_column_slice(x);
    let y = net.forward(&x);
    assert_eq!((y.nrows(), y.ncols()), (OUT, x.ncols()));
    let mut trace = N::Trace::default();
    assert_eq!(net.forward_train(&x, &mut trace), &y);
    y.as_slice().to_vec()
}

/// Parameter and input gradients of `sum(d_out ⊙ y)` after a training pass on `x`.
fn gradients<N: Network<f64, IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &[f64],
    d_out: &[f64],
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let x = Batch::<f64, IN>::from_column_slice(x);
    let mut trace = N::Trace::default();
    net.forward_train(&x, &mut trace);
    let d_out = Batch::<f64, OUT>::from_column_slice(d_out);
    let mut grads = net.zero_gradients();
    let mut d_x = Batch::<f64, IN>::zeros(0);
    net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_x));
    let mut all = Vec::new();
    N::visit_grads(&grads, &mut |g| all.push(g.to_vec()));
    (all, d_x.as_slice().to_vec())
}

fn assert_near(got: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: {got:?}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= tol, "{what}[{i}]: got {g}, expected {e}");
    }
}

// x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], row-major.
const X3: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
// x[i][j] = 4i + j.
const X4: [f64; 16] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0];
// A 2×2 kernel [[1, 2], [3, 4]].
const K2: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

fn main() {
    // y[i][j] = Σ w[a][b]·x[i + a][j + b] + bias (cross-correlation, as PyTorch).
    let mut tiny = Tiny::<f64>::zeros();
    set(&mut tiny, &[("c.weight", &K2), ("c.bias", &[0.5])]);
    assert_eq!(tiny.c.weight_at(0, 0, 1, 0), 3.0);
    assert_eq!(tiny.c.weight_at(0, 0, 0, 1), 2.0);
    // y00 = 1 + 4 + 12 + 20, y01 = 2 + 6 + 15 + 24, y10 = 4 + 10 + 21 + 32, y11 = 5 + 12 + 24 + 36.
    assert_eq!(outputs(&mut tiny, &X3), [37.5, 47.5, 67.5, 77.5]);
    // A batch of two: one sample per column; a constant 1 sums the kernel.
    let mut two = X3.to_vec();
    two.extend([1.0; 9]);
    assert_eq!(outputs(&mut tiny, &two), [37.5, 47.5, 67.5, 77.5, 10.5, 10.5, 10.5, 10.5]);
    // Backward with d_out = 1 everywhere: dW[a][b] = Σ x[i + a][j + b], db = 4
    // outputs, and dx[p][q] = Σ of the kernel taps that read x[p][q].
    let (grads, d_x) = gradients(&mut tiny, &X3, &[1.0; 4]);
    assert_eq!(grads, [vec![12.0, 16.0, 24.0, 28.0], vec![4.0]]);
    assert_eq!(d_x, [1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0]);

    // relu on the conv's [1, 2, 2] output.
    let mut relu = TinyRelu::<f64>::zeros();
    set(&mut relu, &[("c.weight", &K2), ("c.bias", &[-50.0])]);
    assert_eq!(outputs(&mut relu, &X3), [0.0, 0.0, 17.0, 27.0]);

    // Channel c, row i, column j of filter 0 is weight[c·4 + i·2 + j].
    let mut tc = TwoChannels::<f64>::zeros();
    set(&mut tc, &[("t.weight", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])]);
    assert_eq!((tc.t.weight_at(0, 1, 0, 0), tc.t.weight_at(0, 1, 1, 1)), (5.0, 8.0));
    // x: channel 0 = [[1, 0], [0, 0]], channel 1 = [[0, 0], [0, 2]] → 1·1 + 8·2.
    assert_eq!(outputs(&mut tc, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]), [17.0]);
    // Channel 1, row 1, column 0 alone → weight 7.
    assert_eq!(outputs(&mut tc, &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]), [7.0]);

    // 1×1: y[o] = Σ_c w[o][c]·x[c] at each position; weight [2, 2, 1, 1] = [[1, 10], [−1, 0.5]].
    let mut mix = Mix::<f64>::zeros();
    set(&mut mix, &[("m.weight", &[1.0, 10.0, -1.0, 0.5])]);
    assert_eq!(
        outputs(&mut mix, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
        [51.0, 62.0, 73.0, 84.0, 1.5, 1.0, 0.5, 0.0]
    );

    // A 3×3 box of ones, padding 1, stride 2: outputs centred on the four corners.
    let mut strided = Strided::<f64>::zeros();
    set(&mut strided, &[("s.weight", &[1.0; 9])]);
    assert_eq!(strided.s.geometry().padding, [1, 1]);
    assert_eq!(outputs(&mut strided, &X3), [12.0, 16.0, 24.0, 28.0]);

    // `same` with a 2×2 kernel: no padding at the top/left, one zero row/column
    // at the bottom/right; the last row and column read zeros.
    let mut same = SameEven::<f64>::zeros();
    set(&mut same, &[("s.weight", &K2)]);
    assert_eq!(same.s.geometry().padding, [0, 0]);
    assert_eq!(
        outputs(&mut same, &X3),
        [37.0, 47.0, 3.0 + 18.0, 67.0, 77.0, 6.0 + 27.0, 7.0 + 16.0, 8.0 + 18.0, 9.0]
    );

    // Dilation 2: 1·x00 + 2·x02 + 3·x20 + 4·x22.
    let mut dilated = Dilated::<f64>::zeros();
    set(&mut dilated, &[("d.weight", &K2)]);
    assert_eq!(outputs(&mut dilated, &X3), [1.0 + 6.0 + 21.0 + 36.0]);

    // Pools have no parameters.
    let mut pool = MaxPoolNet::<f64>::zeros();
    assert_eq!(MaxPoolNet::PARAM_COUNT, 0);
    assert_eq!(outputs(&mut pool, &X4), [5.0, 7.0, 13.0, 15.0]);
    // The gradient goes to the maximum of each window.
    let (grads, d_x) = gradients(&mut pool, &X4, &[1.0, 2.0, 3.0, 4.0]);
    assert!(grads.is_empty());
    let mut expected = [0.0; 16];
    (expected[5], expected[7], expected[13], expected[15]) = (1.0, 2.0, 3.0, 4.0);
    assert_eq!(d_x, expected);

    // Overlapping windows: the maximum is always the bottom-right value.
    assert_eq!(
        outputs(&mut MaxPoolStrided::<f64>::zeros(), &X4),
        [5.0, 6.0, 7.0, 9.0, 10.0, 11.0, 13.0, 14.0, 15.0]
    );
    let mut avg = AvgPoolNet::<f64>::zeros();
    assert_eq!(outputs(&mut avg, &X4), [2.5, 4.5, 10.5, 12.5]);
    // Each input gets a quarter of its window's gradient.
    let (_, d_x) = gradients(&mut avg, &X4, &[4.0, 8.0, 12.0, 16.0]);
    assert_eq!(d_x, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
    // 2×4 windows, stride 2 down: the means of rows 0–1 and of rows 2–3.
    assert_eq!(outputs(&mut AvgPoolRect::<f64>::zeros(), &X4), [3.5, 11.5]);

    // Per channel: channel 0 = [1, 2, 3, 4], channel 1 = [10, 20, 30, 40].
    let x2 = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
    assert_eq!(outputs(&mut PerChannelMax::<f64>::zeros(), &x2), [4.0, 40.0]);
    assert_eq!(outputs(&mut Gap::<f64>::zeros(), &x2), [2.5, 25.0]);

    let mut flat = Flat::<f64>::zeros();
    set(&mut flat, &[("w.weight", &[1.0, 10.0, 100.0, 1000.0])]);
    assert_eq!(outputs(&mut flat, &[1.0, 2.0, 3.0, 4.0]), [4321.0]);

    // Layer norm over the whole [1, 2, 2] sample: mean 2.5, biased variance 1.25.
    let mut ln = Ln::<f64>::zeros();
    let inv = 1.0 / (1.25f64 + 1e-5).sqrt();
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_near(&outputs(&mut ln, &x), &[-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv], 1e-12, "layer_norm");
    // With an elementwise weight and bias.
    set(&mut ln, &[("ln.weight", &[1.0, 2.0, 1.0, 1.0]), ("ln.bias", &[0.0, 0.0, 0.0, 10.0])]);
    assert_near(&outputs(&mut ln, &x), &[-1.5 * inv, -1.0 * inv, 0.5 * inv, 1.5 * inv + 10.0], 1e-12, "affine");

    // Batch norm in inference: (x − running_mean)/sqrt(running_var + eps)·γ + β per channel.
    let mut bn = BnEval::<f64>::zeros();
    // A fresh layer is the identity up to eps.
    assert_near(&bn.forward(&BnEvalInput::from_column_slice(&x)).as_slice().to_vec(), &x, 1e-8, "fresh");
    set(&mut bn, &[("bn.weight", &[2.0, 1.0]), ("bn.bias", &[0.0, 1.0])]);
    set_buffers(&mut bn, &[("bn.running_mean", &[1.0, 2.0]), ("bn.running_var", &[4.0, 9.0])]);
    let y = bn.forward(&BnEvalInput::from_column_slice(&[3.0, 5.0, 5.0, 8.0]));
    // Channel 0: (3 − 1)/2·2, (5 − 1)/2·2; channel 1: (5 − 2)/3 + 1, (8 − 2)/3 + 1.
    assert_near(y.as_slice(), &[2.0, 4.0, 2.0, 3.0], 1e-8, "batch_norm");
}
