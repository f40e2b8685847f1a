//! Tests of the recurrent layers: hand-computed steps, a naive reference of
//! PyTorch's equations, finite-difference gradients in f64, f32 against f64,
//! batch against single samples, parameter names and shapes.

use super::*;
use crate::gradcheck::{assert_close, numeric_grad};
use crate::init::{seeded_rng, Init};
use crate::layers::Layer;
use crate::params::{ParamPath, Params};
use crate::tensor::Batch;

const STEPS: usize = 4;
const F: usize = 3;
const H: usize = 5;
const IN: usize = STEPS * F;
const OUT: usize = STEPS * H;
const BATCH: usize = 3;

type Lstm64 = Lstm<f64, STEPS, F, H>;
type Gru64 = Gru<f64, STEPS, F, H>;

fn sig(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Row `row` of a row-major `[_, cols]` weight times `v`.
fn row_dot(w: &[f64], row: usize, v: &[f64]) -> f64 {
    let cols = v.len();
    w[row * cols..(row + 1) * cols].iter().zip(v).map(|(a, b)| a * b).sum()
}

/// PyTorch's LSTM on one sample, written out scalar by scalar from its documentation.
fn lstm_reference(w: &RecurrentWeights<f64>, x: &[f64], f: usize, h: usize) -> Vec<f64> {
    let (mut hs, mut c, mut out) = (vec![0.0; h], vec![0.0; h], Vec::new());
    for xt in x.chunks(f) {
        let pre = |gate: usize, j: usize| {
            let row = gate * h + j;
            row_dot(w.weight_ih(), row, xt)
                + w.bias_ih()[row]
                + row_dot(w.weight_hh(), row, &hs)
                + w.bias_hh()[row]
        };
        let next: Vec<(f64, f64)> = (0..h)
            .map(|j| {
                let (i, fg, g, o) = (sig(pre(0, j)), sig(pre(1, j)), pre(2, j).tanh(), sig(pre(3, j)));
                let cj = fg * c[j] + i * g;
                (cj, o * cj.tanh())
            })
            .collect();
        c = next.iter().map(|p| p.0).collect();
        hs = next.iter().map(|p| p.1).collect();
        out.extend_from_slice(&hs);
    }
    out
}

/// PyTorch's GRU on one sample, written out scalar by scalar from its documentation.
fn gru_reference(w: &RecurrentWeights<f64>, x: &[f64], f: usize, h: usize) -> Vec<f64> {
    let (mut hs, mut out) = (vec![0.0; h], Vec::new());
    for xt in x.chunks(f) {
        let input =
            |gate: usize, j: usize| row_dot(w.weight_ih(), gate * h + j, xt) + w.bias_ih()[gate * h + j];
        let hidden =
            |gate: usize, j: usize| row_dot(w.weight_hh(), gate * h + j, &hs) + w.bias_hh()[gate * h + j];
        let next: Vec<f64> = (0..h)
            .map(|j| {
                let r = sig(input(0, j) + hidden(0, j));
                let z = sig(input(1, j) + hidden(1, j));
                let n = (input(2, j) + r * hidden(2, j)).tanh();
                (1.0 - z) * n + z * hs[j]
            })
            .collect();
        hs = next;
        out.extend_from_slice(&hs);
    }
    out
}

fn inputs(batch: usize) -> Batch<f64, IN> {
    Batch::from_fn(batch, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin() * 1.5)
}

/// The weights of the loss `Σ y ⊙ r`, which is also its gradient `dL/dy`.
fn loss_weights(batch: usize) -> Batch<f64, OUT> {
    Batch::from_fn(batch, |i, j| ((i + 3 * j) as f64 * 0.61).cos())
}

/// A layer with PyTorch's initialisation, its biases made larger so they matter.
fn lstm() -> Lstm64 {
    let mut l = Lstm64::new(Init::Auto, &mut seeded_rng(7));
    l.weights.bias_hh_mut().iter_mut().for_each(|b| *b *= 2.0);
    l
}

fn gru() -> Gru64 {
    let mut l = Gru64::new(Init::Auto, &mut seeded_rng(8));
    l.weights.bias_hh_mut().iter_mut().for_each(|b| *b *= 2.0);
    l
}

fn forward<L: Layer<f64, IN, OUT>>(layer: &L, x: &Batch<f64, IN>) -> Batch<f64, OUT> {
    let mut y = Batch::zeros(0);
    layer.forward(x, &mut y);
    y
}

/// Every parameter gradient and the input gradient against central differences of `Σ y ⊙ r`.
fn check_gradients<L>(mut layer: L, what: &str)
where
    L: Layer<f64, IN, OUT, Gradients = RecurrentWeights<f64>>
        + Params<f64, Gradients = RecurrentWeights<f64>>
        + Clone,
{
    let (x, r) = (inputs(BATCH), loss_weights(BATCH));
    let loss = |l: &L, x: &Batch<f64, IN>| forward(l, x).component_mul(&r).sum();
    let (mut ws, mut y, mut dx) = (L::Workspace::default(), Batch::zeros(0), Batch::zeros(0));
    let mut grads = Params::zero_gradients(&layer);
    layer.forward_train(&x, &mut y, &mut ws);
    layer.backward(&x, &y, &r, &mut ws, &mut grads, Some(&mut dx));

    let mut analytic = Vec::new();
    L::visit_grads(&grads, &mut |g| analytic.push(g.to_vec()));
    let mut values = Vec::new();
    let mut names = Vec::new();
    layer.visit_params(&ParamPath::ROOT, &mut |p| {
        names.push(p.name.to_string());
        values.push(p.value.to_vec());
    });
    assert_eq!(analytic.len(), 4);
    for (k, (name, value)) in names.iter().zip(&values).enumerate() {
        let numeric = numeric_grad(value, |v| {
            let mut p = layer.clone();
            let mut idx = 0;
            p.visit_params_mut(&ParamPath::ROOT, &mut |t| {
                if idx == k {
                    t.value.copy_from_slice(v);
                }
                idx += 1;
            });
            loss(&p, &x)
        });
        assert!(numeric.iter().any(|g| g.abs() > 1e-3), "{what} {name}: a gradient worth checking");
        assert_close(&analytic[k], &numeric, 1e-7, &format!("{what} {name}"));
    }
    let numeric = numeric_grad(x.as_slice(), |xs| loss(&layer, &Batch::from_column_slice(xs)));
    assert_close(dx.as_slice(), &numeric, 1e-7, &format!("{what} input"));
}

#[test]
fn lstm_first_steps_follow_the_gate_equations_by_hand() {
    // One feature, one unit: W_ih = [0.5, −0.5, 1, 2] (i, f, g, o), W_hh = [0.3, −0.2, 0.7, 0.1],
    // b_ih = [0.1, 0.2, −0.3, 0.4], b_hh = [0, 0, 0.1, −0.1]; x = [1.5, −0.5].
    // Step 0: i = σ(0.85), f = σ(−0.55), g = tanh(1.3), o = σ(3.3), c = i·g, h = o·tanh(c).
    let mut l = Lstm::<f64, 2, 1, 1>::zeros();
    l.weights.weight_ih_mut().copy_from_slice(&[0.5, -0.5, 1.0, 2.0]);
    l.weights.weight_hh_mut().copy_from_slice(&[0.3, -0.2, 0.7, 0.1]);
    l.weights.bias_ih_mut().copy_from_slice(&[0.1, 0.2, -0.3, 0.4]);
    l.weights.bias_hh_mut().copy_from_slice(&[0.0, 0.0, 0.1, -0.1]);
    let x = Batch::<f64, 2>::from_column_slice(&[1.5, -0.5]);
    let mut y = Batch::<f64, 2>::zeros(0);
    Layer::forward(&l, &x, &mut y);
    let (i, g, o) = (sig(0.85), 1.3f64.tanh(), sig(3.3));
    let h0 = o * (i * g).tanh();
    assert!((y[0] - h0).abs() < 1e-15, "{} vs {h0}", y[0]);
    // The same numbers from Python's math module.
    assert!((y[0] - 0.5204767480077969).abs() < 1e-15);
    assert!((y[1] - 0.06489237142372936).abs() < 1e-15);
}

#[test]
fn gru_first_steps_follow_the_gate_equations_by_hand() {
    // W_ih = [0.5, −0.5, 1] (r, z, n), W_hh = [0.3, −0.2, 0.7], b_ih = [0.1, 0.2, −0.3],
    // b_hh = [0.05, 0, 0.1]; step 0: r = σ(0.9), z = σ(−0.55), n = tanh(1.2 + 0.1·r), h = (1 − z)·n.
    let mut l = Gru::<f64, 2, 1, 1>::zeros();
    l.weights.weight_ih_mut().copy_from_slice(&[0.5, -0.5, 1.0]);
    l.weights.weight_hh_mut().copy_from_slice(&[0.3, -0.2, 0.7]);
    l.weights.bias_ih_mut().copy_from_slice(&[0.1, 0.2, -0.3]);
    l.weights.bias_hh_mut().copy_from_slice(&[0.05, 0.0, 0.1]);
    let x = Batch::<f64, 2>::from_column_slice(&[1.5, -0.5]);
    let mut y = Batch::<f64, 2>::zeros(0);
    Layer::forward(&l, &x, &mut y);
    let (r, z) = (sig(0.9), sig(-0.55));
    let h0 = (1.0 - z) * (1.2 + 0.1 * r).tanh();
    assert!((y[0] - h0).abs() < 1e-15, "{} vs {h0}", y[0]);
    assert!((y[0] - 0.5416114920940251).abs() < 1e-15);
    assert!((y[1] - 0.10778956745367915).abs() < 1e-15);
}

#[test]
fn every_step_matches_a_scalar_reference_of_pytorchs_equations() {
    let (l, g, x) = (lstm(), gru(), inputs(BATCH));
    let (yl, yg) = (forward(&l, &x), forward(&g, &x));
    for b in 0..BATCH {
        let sample = x.column(b);
        let want = lstm_reference(&l.weights, sample.as_slice(), F, H);
        assert_close(yl.column(b).as_slice(), &want, 1e-14, "lstm");
        let want = gru_reference(&g.weights, sample.as_slice(), F, H);
        assert_close(yg.column(b).as_slice(), &want, 1e-14, "gru");
    }
}

#[test]
fn lstm_gradients_match_finite_differences() {
    check_gradients(lstm(), "lstm");
}

#[test]
fn gru_gradients_match_finite_differences() {
    check_gradients(gru(), "gru");
}

/// Runs a training pass and a backward pass: the output, the four parameter gradients and `dx`.
fn pass<T: Float, L>(layer: &mut L, x: &Batch<T, IN>, r: &Batch<T, OUT>) -> (Vec<T>, Vec<Vec<T>>, Vec<T>)
where
    L: Layer<T, IN, OUT, Gradients = RecurrentWeights<T>> + Params<T, Gradients = RecurrentWeights<T>>,
{
    let (mut ws, mut y, mut dx) = (L::Workspace::default(), Batch::zeros(0), Batch::zeros(0));
    let mut grads = Params::zero_gradients(layer);
    layer.forward_train(x, &mut y, &mut ws);
    layer.backward(x, &y, r, &mut ws, &mut grads, Some(&mut dx));
    let mut g = Vec::new();
    L::visit_grads(&grads, &mut |v| g.push(v.to_vec()));
    (y.as_slice().to_vec(), g, dx.as_slice().to_vec())
}

/// The f32 layer with the f64 layer's weights rounded.
fn to_f32(w: &RecurrentWeights<f64>, into: &mut RecurrentWeights<f32>) {
    let (mut src, dst) = (w.clone(), into.tensors_mut());
    for (s, d) in src.tensors_mut().into_iter().zip(dst) {
        d.iter_mut().zip(s.iter()).for_each(|(d, &s)| *d = s as f32);
    }
}

#[test]
fn f32_agrees_with_f64() {
    let (x, r) = (inputs(BATCH), loss_weights(BATCH));
    let (x32, r32) = (x.map(|v| v as f32), r.map(|v| v as f32));

    let mut l = lstm();
    let mut l32 = Lstm::<f32, STEPS, F, H>::zeros();
    to_f32(&l.weights, &mut l32.weights);
    let (want, got) = (pass(&mut l, &x, &r), pass(&mut l32, &x32, &r32));
    assert_close(&got.0, &want.0, 1e-5, "lstm f32 output");
    (0..4).for_each(|k| assert_close(&got.1[k], &want.1[k], 1e-4, "lstm f32 gradient"));
    assert_close(&got.2, &want.2, 1e-4, "lstm f32 dx");

    let mut g = gru();
    let mut g32 = Gru::<f32, STEPS, F, H>::zeros();
    to_f32(&g.weights, &mut g32.weights);
    let (want, got) = (pass(&mut g, &x, &r), pass(&mut g32, &x32, &r32));
    assert_close(&got.0, &want.0, 1e-5, "gru f32 output");
    (0..4).for_each(|k| assert_close(&got.1[k], &want.1[k], 1e-4, "gru f32 gradient"));
    assert_close(&got.2, &want.2, 1e-4, "gru f32 dx");
}

/// A batch gives each sample the output and input gradient it gets alone, and
/// the sum of their parameter gradients; a workspace moves between batch sizes.
fn batch_agrees_with_single_samples<L>(mut layer: L, what: &str)
where
    L: Layer<f64, IN, OUT, Gradients = RecurrentWeights<f64>>
        + Params<f64, Gradients = RecurrentWeights<f64>>,
{
    let (x, r) = (inputs(BATCH), loss_weights(BATCH));
    let (y, grads, dx) = pass(&mut layer, &x, &r);
    let mut sums = vec![vec![]; 4];
    let mut ws = L::Workspace::default();
    for b in 0..BATCH {
        let xb = Batch::<f64, IN>::from_column_slice(x.column(b).as_slice());
        let rb = Batch::<f64, OUT>::from_column_slice(r.column(b).as_slice());
        let (mut yb, mut dxb, mut gb) = (Batch::zeros(0), Batch::zeros(0), Params::zero_gradients(&layer));
        layer.forward_train(&xb, &mut yb, &mut ws);
        layer.backward(&xb, &yb, &rb, &mut ws, &mut gb, Some(&mut dxb));
        assert_close(yb.as_slice(), &y[b * OUT..][..OUT], 1e-13, what);
        assert_close(dxb.as_slice(), &dx[b * IN..][..IN], 1e-13, what);
        let mut k = 0;
        L::visit_grads(&gb, &mut |g| {
            if sums[k].is_empty() {
                sums[k] = vec![0.0; g.len()];
            }
            sums[k].iter_mut().zip(g).for_each(|(s, g)| *s += g);
            k += 1;
        });
    }
    (0..4).for_each(|k| assert_close(&grads[k], &sums[k], 1e-12, what));
    // The workspace of batch 1, reused for the whole batch again, gives the same bits.
    let mut y2 = Batch::zeros(0);
    layer.forward_train(&x, &mut y2, &mut ws);
    assert_eq!(y2.as_slice(), &y[..]);
}

#[test]
fn lstm_batches_agree_with_single_samples() {
    batch_agrees_with_single_samples(lstm(), "lstm");
}

#[test]
fn gru_batches_agree_with_single_samples() {
    batch_agrees_with_single_samples(gru(), "gru");
}

#[test]
fn a_second_pass_on_the_same_workspace_gives_the_same_bits() {
    let (x, r) = (inputs(BATCH), loss_weights(BATCH));
    let mut l = lstm();
    let mut ws = LstmWorkspace::default();
    let (mut y, mut dx, mut g1, mut g2) =
        (Batch::zeros(0), Batch::zeros(0), l.zero_gradients(), l.zero_gradients());
    l.forward_train(&x, &mut y, &mut ws);
    l.backward(&x, &y, &r, &mut ws, &mut g1, Some(&mut dx));
    let (y1, dx1) = (y.clone(), dx.clone());
    l.forward_train(&x, &mut y, &mut ws);
    l.backward(&x, &y, &r, &mut ws, &mut g2, Some(&mut dx));
    assert_eq!((y, dx, g2), (y1, dx1, g1));
}

#[test]
fn an_empty_batch_gives_empty_outputs() {
    let (l, g) = (lstm(), gru());
    let x = inputs(0);
    assert_eq!(forward(&l, &x).ncols(), 0);
    assert_eq!(forward(&g, &x).ncols(), 0);
    let mut l = l;
    let (mut ws, mut y, mut dx, mut grads) =
        (LstmWorkspace::default(), Batch::zeros(0), Batch::zeros(0), l.zero_gradients());
    grads.tensors_mut().into_iter().for_each(|t| t.fill(1.0));
    l.forward_train(&x, &mut y, &mut ws);
    Layer::<f64, IN, OUT>::backward(&l, &x, &y, &y, &mut ws, &mut grads, Some(&mut dx));
    assert_eq!(dx.ncols(), 0);
    let mut zero = true;
    Lstm64::visit_grads(&grads, &mut |g| zero &= g.iter().all(|&v| v == 0.0));
    assert!(zero);
}

/// `(name, shape, length)` of every parameter, in visiting order.
fn described<P: Params<f64>>(p: &P) -> Vec<(String, Vec<usize>, usize)> {
    let mut seen = Vec::new();
    p.visit_params(&ParamPath::ROOT.join("rnn"), &mut |p| {
        seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len()))
    });
    seen
}

#[test]
fn parameters_have_pytorchs_names_shapes_and_order() {
    let want = |g: usize| {
        vec![
            ("rnn.weight_ih_l0".to_string(), vec![g * H, F], g * H * F),
            ("rnn.weight_hh_l0".to_string(), vec![g * H, H], g * H * H),
            ("rnn.bias_ih_l0".to_string(), vec![g * H], g * H),
            ("rnn.bias_hh_l0".to_string(), vec![g * H], g * H),
        ]
    };
    assert_eq!(described(&lstm()), want(4));
    assert_eq!(described(&gru()), want(3));
    assert_eq!(Lstm64::PARAM_COUNT, 4 * H * (F + H) + 8 * H);
    assert_eq!(Gru64::PARAM_COUNT, 3 * H * (F + H) + 6 * H);
    // Values are visited in PyTorch's row-major layout: the forget gate's unit 1, input 2.
    let mut l = Lstm64::zeros();
    l.weights.weight_ih_mut()[(H + 1) * F + 2] = 9.0;
    l.visit_params(&ParamPath::ROOT, &mut |p| {
        if p.name.last() == "weight_ih_l0" {
            assert_eq!(p.value[(H + 1) * F + 2], 9.0);
        }
    });
}

#[test]
fn initialisation_is_pytorchs_uniform_and_seeded() {
    let (a, b) = (Lstm64::new(Init::Auto, &mut seeded_rng(1)), Lstm64::new(Init::He, &mut seeded_rng(1)));
    assert!(a.weights == b.weights, "the same seed gives the same weights");
    let k = 1.0 / (H as f64).sqrt();
    let mut all = Vec::new();
    a.visit_params(&ParamPath::ROOT, &mut |p| all.extend_from_slice(p.value));
    assert!(all.iter().all(|v| v.abs() <= k));
    assert!(all.iter().any(|v| v.abs() > 0.9 * k), "spread over the whole range");
    assert!(Gru64::zeros().weights.weight_hh().iter().all(|&v| v == 0.0));
}

/// One training and backward pass of a layer large enough that the products
/// and the per-step gate loops split between threads, at `threads` threads.
fn split_pass<L>(layer: &mut L, threads: usize) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>)
where
    L: Layer<f32, { 6 * 24 }, { 6 * 64 }, Gradients = RecurrentWeights<f32>>
        + Params<f32, Gradients = RecurrentWeights<f32>>,
{
    crate::set_threads(threads);
    let x = Batch::<f32, { 6 * 24 }>::from_fn(40, |i, j| ((i * 7 + j * 3) as f32 * 0.23).sin());
    let dy = Batch::<f32, { 6 * 64 }>::from_fn(40, |i, j| ((i + 5 * j) as f32 * 0.41).cos());
    let (mut ws, mut y, mut dx) = (L::Workspace::default(), Batch::zeros(0), Batch::zeros(0));
    let mut grads = Params::zero_gradients(layer);
    layer.forward_train(&x, &mut y, &mut ws);
    layer.backward(&x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
    let mut g = Vec::new();
    L::visit_grads(&grads, &mut |v| g.push(v.to_vec()));
    (y.as_slice().to_vec(), g, dx.as_slice().to_vec())
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let _threads = crate::tensor::threads::thread_count_lock();
    let mut l = Lstm::<f32, 6, 24, 64>::new(Init::Auto, &mut seeded_rng(3));
    let mut g = Gru::<f32, 6, 24, 64>::new(Init::Auto, &mut seeded_rng(4));
    let (l1, g1) = (split_pass(&mut l, 1), split_pass(&mut g, 1));
    let (l2, g2) = (split_pass(&mut l, 2), split_pass(&mut g, 2));
    crate::set_threads(1);
    assert!(l1 == l2, "lstm: 1 and 2 threads differ");
    assert!(g1 == g2, "gru: 1 and 2 threads differ");
}
