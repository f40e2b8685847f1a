//! The smooth activations (`silu`/`swish`, `elu`, `selu`, `softplus`, `mish`,
//! `log_softmax`), declared with `network!`, against PyTorch: fixtures written by
//! `tools/gen_activation_fixtures.py` (torch, float64) hold each input `x`, output
//! `y`, upstream gradient `dy` and input gradient `dx`. No Python is needed here.
//!
//! Each network is the one activation, so its training pass, inference pass
//! (in place) and backward pass are exactly the activation's, through the
//! generated code. Tolerances: 1e-10 in f64, 1e-5 in f32 (relative, absolute below 1).

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::prelude::*;
use std::path::Path;

network! { struct SiluNet { input: [8], silu } }
network! { struct SwishNet { input: [8], swish } }
network! { struct EluNet { input: [8], elu } }
network! { struct EluHalfNet { input: [8], elu(alpha = 0.5) } }
network! { struct SeluNet { input: [8], selu } }
network! { struct SoftplusNet { input: [8], softplus } }
network! { struct MishNet { input: [8], mish } }
network! { struct LogSoftmaxNet { input: [7], log_softmax } }
network! { struct LogSoftmaxStepsNet { input: [4, 5], log_softmax } }

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/activations.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let all: Value = serde_json::from_str(&text).expect("valid JSON");
    all[name].clone()
}

/// A nested array's numbers, row-major: `[B, F]` or `[B, T, F]` is a column-per-sample batch.
fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        number => vec![number.as_f64().expect("a number")],
    }
}

fn batch<T: Float, const N: usize>(v: &Value) -> Batch<T, N> {
    Batch::from_column_slice(&flat(v).into_iter().map(T::cast).collect::<Vec<_>>())
}

/// Training pass, inference pass and backward pass of `net` against the fixture `name`.
fn check<T: Float, N: Network<T, F, F>, const F: usize>(net: N, name: &str, tol: f64) {
    let f = fixture(name);
    let x: Batch<T, F> = batch(&f["x"]);
    let mut trace = N::Trace::default();
    let mut net = net;
    let y = net.forward_train(&x, &mut trace).clone();
    assert_close(y.as_slice(), &flat(&f["y"]), tol, &format!("{name}: output"));
    assert_close(net.forward(&x).as_slice(), &flat(&f["y"]), tol, &format!("{name}: inference"));
    let (mut grads, mut dx) = (net.zero_gradients(), Batch::zeros(0));
    net.backward(&x, &mut trace, &batch(&f["dy"]), &mut grads, Some(&mut dx));
    assert_close(dx.as_slice(), &flat(&f["dx"]), tol, &format!("{name}: input gradient"));
}

macro_rules! both {
    ($net:ident, $name:literal) => {
        check::<f64, _, _>($net::<f64>::zeros(), $name, 1e-10);
        check::<f32, _, _>($net::<f32>::zeros(), $name, 1e-5);
    };
}

#[test]
fn silu_and_its_alias_swish_match_pytorch() {
    both!(SiluNet, "silu");
    both!(SwishNet, "silu");
}

#[test]
fn elu_matches_pytorch_with_the_default_and_a_given_alpha() {
    both!(EluNet, "elu");
    both!(EluHalfNet, "elu_0_5");
}

#[test]
fn selu_softplus_and_mish_match_pytorch() {
    both!(SeluNet, "selu");
    both!(SoftplusNet, "softplus");
    both!(MishNet, "mish");
}

#[test]
fn log_softmax_matches_pytorch_per_sample_and_per_step() {
    both!(LogSoftmaxNet, "log_softmax");
    both!(LogSoftmaxStepsNet, "log_softmax_steps");
}
