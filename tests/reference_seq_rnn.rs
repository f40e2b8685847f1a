//! `Lstm` and `Gru` against PyTorch: `tests/fixtures/seq_lstm.json` and
//! `seq_gru.json` (written by `tools/gen_seq_fixtures.py` from `nn.LSTM(3, 5)` /
//! `nn.GRU(3, 5)`, `batch_first`, in float64) hold the parameters under their
//! `state_dict` names, the input `x` `[B, T, F]`, the output `y` `[B, T, H]`, the
//! loss weights `r` (the loss is `Σ y ⊙ r`, so `dL/dy = r`), every parameter
//! gradient and `dx`. staticnet matches them to 1e-10 in f64 and 1e-4 in f32.

use serde_json::Value;
use staticnet::float::Float;
use staticnet::layers::{Gru, Layer, Lstm, RecurrentWeights};
use staticnet::params::{ParamPath, Params};
use staticnet::tensor::Batch;
use std::path::Path;

const STEPS: usize = 4;
const F: usize = 3;
const H: usize = 5;
const IN: usize = STEPS * F;
const OUT: usize = STEPS * H;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// Every number of a nested array, row-major.
fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
        other => out.push(other.as_f64().expect("a number")),
    }
}

/// The shape of a nested array.
fn shape(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(items) => {
            let mut s = vec![items.len()];
            s.extend(items.first().map(shape).unwrap_or_default());
            s
        }
        _ => Vec::new(),
    }
}

fn values(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    flat(v, &mut out);
    out
}

/// `[B, T, N]` row-major is exactly a column-per-sample batch of `T·N` values.
fn batch<T: Float, const N: usize>(v: &Value) -> Batch<T, N> {
    Batch::from_column_slice(&values(v).into_iter().map(T::cast).collect::<Vec<_>>())
}

#[track_caller]
fn assert_close<T: Float>(got: &[T], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g = g.as_f64();
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, PyTorch {w}");
    }
}

/// Loads the fixture into `layer` by name (checking PyTorch's names, order and
/// shapes), runs the training and backward passes and compares everything.
fn check<T: Float, L>(mut layer: L, fixture: &Value, tol: f64)
where
    L: Layer<T, IN, OUT, Gradients = RecurrentWeights<T>> + Params<T, Gradients = RecurrentWeights<T>>,
{
    let params = fixture["params"].as_object().expect("params");
    let mut names = Vec::new();
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let name = p.name.to_string();
        let want = &params[&name];
        assert_eq!(p.shape, &shape(want)[..], "{name}: shape");
        p.value.iter_mut().zip(values(want)).for_each(|(v, w)| *v = T::cast(w));
        names.push(name);
    });
    assert_eq!(names, params.keys().cloned().collect::<Vec<_>>(), "names in state_dict order");

    let (x, r) = (batch::<T, IN>(&fixture["x"]), batch::<T, OUT>(&fixture["r"]));
    let (mut ws, mut y, mut dx) = (L::Workspace::default(), Batch::zeros(0), Batch::zeros(0));
    let mut grads = layer.zero_gradients();
    layer.forward_train(&x, &mut y, &mut ws);
    assert_close(y.as_slice(), &values(&fixture["y"]), tol, "y");
    let loss: f64 = y.iter().zip(r.iter()).map(|(y, r)| y.as_f64() * r.as_f64()).sum();
    assert_close(&[loss], &[fixture["loss"].as_f64().expect("loss")], tol, "loss");
    layer.backward(&x, &y, &r, &mut ws, &mut grads, Some(&mut dx));
    let mut k = 0;
    L::visit_grads(&grads, &mut |g| {
        assert_close(g, &values(&fixture["grads"][&names[k]]), tol, &names[k]);
        k += 1;
    });
    assert_close(dx.as_slice(), &values(&fixture["dx"]), tol, "dx");
    // The inference pass gives the training pass's output.
    let mut y2 = Batch::zeros(0);
    layer.forward(&x, &mut y2);
    assert_eq!(y2, y);
}

#[test]
fn lstm_matches_pytorch() {
    let fixture = load("seq_lstm.json");
    assert_eq!(fixture["config"]["torch"], "nn.LSTM(3, 5, batch_first=True)");
    check::<f64, _>(Lstm::<f64, STEPS, F, H>::zeros(), &fixture, 1e-10);
    check::<f32, _>(Lstm::<f32, STEPS, F, H>::zeros(), &fixture, 1e-4);
}

#[test]
fn gru_matches_pytorch() {
    let fixture = load("seq_gru.json");
    assert_eq!(fixture["config"]["torch"], "nn.GRU(3, 5, batch_first=True)");
    check::<f64, _>(Gru::<f64, STEPS, F, H>::zeros(), &fixture, 1e-10);
    check::<f32, _>(Gru::<f32, STEPS, F, H>::zeros(), &fixture, 1e-4);
}
