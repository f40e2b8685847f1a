//! The generated passes against an independent framework: JAX fixtures written
//! by `tools/gen_fixtures.py` hold weights, inputs, outputs, loss and every
//! gradient for a few small networks. No Python is needed to run these tests.
//!
//! Tolerances: in `f64` the only differences are summation order, so outputs,
//! losses and gradients agree to 1e-10 relative (absolute below 1). In `f32`
//! they agree to 1e-4, about 10^3 ulps of single precision for these sizes.

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::prelude::*;
use std::path::Path;

network! {
    struct MlpReluCe { input: [4], fc1: dense(5), relu, fc2: dense(3) }
}

network! {
    struct MlpActsMse {
        input: [3],
        dense(4), tanh, dense(4), sigmoid, dense(4), gelu, dense(4), leaky_relu(0.1),
        dense(3, bias = false), softmax, identity,
    }
}

network! {
    struct MlpBce { input: [3], hidden: dense(4), relu, out: dense(2) }
}

network! {
    struct DeepTanhCe {
        input: [8],
        fc1: dense(16), tanh,
        fc2: dense(16), leaky_relu(0.2),
        fc3: dense(16), gelu,
        head: dense(10),
    }
}

struct Fixture(Value);

impl Fixture {
    fn load(name: &str) -> Fixture {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture(serde_json::from_str(&text).expect("valid JSON"))
    }

    fn floats(v: &Value) -> Vec<f64> {
        v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("number")).collect()
    }

    fn tensor<T: Float>(&self, key: &str) -> Vec<T> {
        Self::floats(&self.0[key]).into_iter().map(T::cast).collect()
    }

    /// `[batch, features]` row-major is exactly a column-per-sample batch.
    fn batch<T: Float, const N: usize>(&self, key: &str) -> Batch<T, N> {
        Batch::from_column_slice(&self.tensor::<T>(key))
    }

    fn named(&self, key: &str) -> Vec<(String, Vec<usize>, Vec<f64>)> {
        self.0[key]
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| {
                let shape =
                    v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (k.clone(), shape, Self::floats(v))
            })
            .collect()
    }

    fn labels(&self) -> Labels {
        self.0["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as usize).collect()
    }

    fn loss_value(&self) -> f64 {
        self.0["loss_value"].as_f64().unwrap()
    }
}

/// Loads the fixture's parameters by name, checking names, order and shapes.
fn load_params<T: Float, N: Params<T>>(net: &mut N, fixture: &Fixture) {
    let expected = fixture.named("params");
    let mut k = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let (name, shape, data) = &expected[k];
        assert_eq!(&p.name.to_string(), name, "parameter {k}");
        assert_eq!(p.shape, shape.as_slice(), "{name}");
        p.value.iter_mut().zip(data).for_each(|(v, d)| *v = T::cast(*d));
        k += 1;
    });
    assert_eq!(k, expected.len(), "parameter count");
}

/// Runs forward, loss and backward and compares everything with the fixture.
fn check<T, N, L, const IN: usize, const OUT: usize>(fixture: &Fixture, loss: L, target: &L::Target, tol: f64)
where
    T: Float,
    N: Network<T, IN, OUT>,
    L: Loss<T, OUT>,
    N: FromZeros,
{
    let mut net = N::zeros();
    load_params(&mut net, fixture);
    let x: Batch<T, IN> = fixture.batch("input");

    let inference = net.forward(&x);
    assert_close(inference.as_slice(), &Fixture::floats(&fixture.0["output"]), tol, "output");

    let mut trace = N::Trace::default();
    let out = net.forward_train(&x, &mut trace);
    assert_eq!(out, &inference, "training and inference forward agree exactly");
    let mut d_out = Batch::zeros(0);
    let value = loss.loss_and_grad(out, target, &mut d_out).unwrap();
    assert_close(&[value], &[fixture.loss_value()], tol, "loss");
    assert_close(&[loss.loss(&inference, target).unwrap()], &[fixture.loss_value()], tol, "loss alone");

    let mut grads = net.zero_gradients();
    let mut d_input = Batch::zeros(0);
    net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_input));
    let expected = fixture.named("grads");
    let mut k = 0;
    N::visit_grads(&grads, &mut |g| {
        let (name, _, data) = &expected[k];
        assert_close(g, data, tol, &format!("gradient of {name}"));
        k += 1;
    });
    assert_eq!(k, expected.len());
    assert_close(d_input.as_slice(), &Fixture::floats(&fixture.0["input_grad"]), tol, "input gradient");
}

/// The generated `zeros()` constructor, reachable from generic test code.
trait FromZeros {
    fn zeros() -> Self;
}

macro_rules! from_zeros {
    ($($net:ident),*) => {$(
        impl<T: Float> FromZeros for $net<T> {
            fn zeros() -> Self {
                $net::zeros()
            }
        }
    )*};
}
from_zeros!(MlpReluCe, MlpActsMse, MlpBce, DeepTanhCe);

const F64_TOL: f64 = 1e-10;
const F32_TOL: f64 = 1e-4;

#[test]
fn relu_mlp_with_cross_entropy_matches_jax() {
    let f = Fixture::load("mlp_relu_ce.json");
    check::<f64, MlpReluCe<f64>, _, 4, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, MlpReluCe<f32>, _, 4, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn every_activation_with_mse_matches_jax() {
    let f = Fixture::load("mlp_acts_mse.json");
    check::<f64, MlpActsMse<f64>, _, 3, 3>(&f, MeanSquaredError, &f.batch("target"), F64_TOL);
    check::<f32, MlpActsMse<f32>, _, 3, 3>(&f, MeanSquaredError, &f.batch("target"), F32_TOL);
}

#[test]
fn binary_cross_entropy_matches_jax() {
    let f = Fixture::load("mlp_bce.json");
    check::<f64, MlpBce<f64>, _, 3, 2>(&f, BinaryCrossEntropy, &f.batch("target"), F64_TOL);
    check::<f32, MlpBce<f32>, _, 3, 2>(&f, BinaryCrossEntropy, &f.batch("target"), F32_TOL);
}

#[test]
fn deep_network_matches_jax() {
    let f = Fixture::load("deep_tanh_ce.json");
    check::<f64, DeepTanhCe<f64>, _, 8, 10>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, DeepTanhCe<f32>, _, 8, 10>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}
