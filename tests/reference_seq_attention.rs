//! `layers::Attention` against PyTorch's `nn.MultiheadAttention(6, 2, batch_first=True)`,
//! without and with the causal mask: the fixtures `tests/fixtures/seq_attention*.json`
//! (written by `tools/gen_seq_fixtures.py` in float64) hold the parameters under
//! PyTorch's names, the input `x` `[B][T][F]`, the output `y`, the loss
//! `Σ y ⊙ r`, every parameter gradient and `dx`. No Python is needed to run this.
//!
//! Tolerances as in `reference.rs`: 1e-10 relative in f64 (only the summation
//! order differs), 1e-4 in f32.

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::layers::{Attention, AttentionWorkspace, Layer};
use staticnet::params::{ParamPath, Params};
use staticnet::{Batch, Float};
use std::path::Path;

const STEPS: usize = 5;
const D: usize = 6;
const HEADS: usize = 2;
const N: usize = STEPS * D;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A nested array flattened row-major, with its shape.
fn flatten(v: &Value) -> (Vec<usize>, Vec<f64>) {
    match v {
        Value::Array(items) => {
            let (mut shape, mut values) = (None::<Vec<usize>>, Vec::new());
            for item in items {
                let (inner, mut vals) = flatten(item);
                assert!(shape.as_ref().is_none_or(|s| *s == inner), "ragged array");
                shape = Some(inner);
                values.append(&mut vals);
            }
            let mut full = vec![items.len()];
            full.extend(shape.unwrap_or_default());
            (full, values)
        }
        v => (Vec::new(), vec![v.as_f64().expect("a number")]),
    }
}

/// `[B][T][F]` as a batch with one `T·F` sample per column.
fn batch<T: Float>(v: &Value) -> Batch<T, N> {
    let (shape, values) = flatten(v);
    assert_eq!(shape[1..], [STEPS, D]);
    Batch::from_iterator(shape[0], values.into_iter().map(T::cast))
}

fn check<T: Float>(name: &str, tol: f64) {
    let fixture = load(name);
    let causal = fixture["config"]["causal"].as_bool().expect("config.causal");
    assert_eq!(fixture["config"]["heads"], HEADS);
    let mut layer = Attention::<T, STEPS, D, HEADS>::zeros(causal).unwrap();
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let name = p.name.to_string();
        let (shape, values) = flatten(&fixture["params"][&name]);
        assert_eq!(shape, p.shape, "{name}");
        p.value.iter_mut().zip(values).for_each(|(v, f)| *v = T::cast(f));
    });

    let (x, r) = (batch::<T>(&fixture["x"]), batch::<T>(&fixture["r"]));
    let (mut y, mut dx) = (Batch::<T, N>::zeros(0), Batch::<T, N>::zeros(0));
    let mut ws = AttentionWorkspace::default();
    layer.forward_train(&x, &mut y, &mut ws);
    let what = format!("{name} ({})", T::DTYPE);
    assert_close(y.as_slice(), &flatten(&fixture["y"]).1, tol, &format!("{what} y"));
    let loss: f64 = y.iter().zip(r.iter()).map(|(y, r)| y.as_f64() * r.as_f64()).sum();
    assert_close(&[loss], &[fixture["loss"].as_f64().expect("loss")], tol, &format!("{what} loss"));

    let mut grads = layer.zero_gradients();
    layer.backward(&x, &y, &r, &mut ws, &mut grads, Some(&mut dx));
    assert_close(dx.as_slice(), &flatten(&fixture["dx"]).1, tol, &format!("{what} dx"));
    let mut names = Vec::new();
    layer.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    let mut k = 0;
    Attention::<T, STEPS, D, HEADS>::visit_grads(&grads, &mut |g| {
        let (_, expected) = flatten(&fixture["grads"][&names[k]]);
        assert_close(g, &expected, tol, &format!("{what} grad {}", names[k]));
        k += 1;
    });
    assert_eq!(k, 4);
}

#[test]
fn attention_matches_pytorch_in_f64() {
    check::<f64>("seq_attention.json", 1e-10);
    check::<f64>("seq_attention_causal.json", 1e-10);
}

#[test]
fn attention_matches_pytorch_in_f32() {
    check::<f32>("seq_attention.json", 1e-4);
    check::<f32>("seq_attention_causal.json", 1e-4);
}
