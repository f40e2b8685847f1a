//! The generated passes against an independent framework: JAX fixtures written
//! by `tools/gen_fixtures.py` hold weights, inputs, outputs, loss and every
//! gradient for a few small networks. No Python is needed to run these tests.
//!
//! Tolerances: in `f64` the only differences are summation order, so outputs,
//! losses and gradients agree to 1e-10 relative (absolute below 1). In `f32`
//! they agree to 1e-4, about 10^3 ulps of single precision for these sizes.
//!
//! Batch norm: fixtures in training mode compare the training pass (batch
//! statistics), every gradient, and the running statistics after the step;
//! fixtures in evaluation mode compare the inference pass and the loss (the
//! backward pass is defined for training mode only).

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

network! {
    struct ConvStridePad {
        input: [2, 7, 7],
        conv1: conv2d(3, kernel = 3, stride = 2, padding = 1), relu,
        flatten,
        fc: dense(4),
    }
}

network! {
    struct ConvDilationNoBias {
        input: [2, 8, 7],
        conv2d(3, kernel = [3, 2], stride = [1, 2], padding = [2, 1], dilation = 2, bias = false), tanh,
        flatten,
        dense(3),
    }
}

network! {
    struct Pools {
        input: [2, 6, 6],
        conv: conv2d(3, kernel = 3, padding = 1),
        max_pool(2) => [3, 3, 3],
        avg_pool(2, stride = 1) => [3, 2, 2],
        flatten,
        fc: dense(3),
    }
}

network! {
    struct BatchNormNet {
        input: [3, 5, 5],
        conv: conv2d(4, kernel = 3), bn: batch_norm, relu,
        global_avg_pool,
        fc: dense(6), bn1d: batch_norm, tanh,
        head: dense(3),
    }
}

network! {
    struct LayerNormNet {
        input: [2, 4, 4],
        conv: conv2d(3, kernel = 3), ln: layer_norm, gelu,
        flatten,
        fc: dense(4), ln1d: layer_norm,
        head: dense(3),
    }
}

network! {
    struct SmallCnn {
        input: [1, 12, 12],
        conv1: conv2d(4, kernel = 3), relu, max_pool(2) => [4, 5, 5],
        conv2: conv2d(6, kernel = 3, padding = 1), bn: batch_norm, relu, max_pool(2) => [6, 2, 2],
        flatten => [24],
        fc: dense(8), relu,
        head: dense(5),
    }
}

network! {
    struct ResidualProjection {
        input: [2, 6, 6],
        stem: conv2d(3, kernel = 3, padding = 1), tanh,
        block: residual { conv2d(3, kernel = 3, padding = 1), tanh, conv2d(3, kernel = 3, padding = 1) }, tanh,
        down: residual(projection) {
            conv2d(4, kernel = 3, stride = 2, padding = 1), tanh, conv2d(4, kernel = 3, padding = 1)
        } => [4, 3, 3],
        tanh,
        global_avg_pool,
        head: dense(3),
    }
}

network! {
    struct ResidualDense {
        input: [5],
        fc: dense(6), gelu,
        r: residual { dense(6), tanh, dense(6) },
        p: residual(projection) { dense(4), tanh },
        head: dense(3),
    }
}

network! {
    struct ParallelConcat {
        input: [2, 5, 5],
        par: parallel(concat) {
            branch { conv2d(2, kernel = 3, padding = 1), tanh }
            branch { conv2d(3, kernel = 1), sigmoid }
        } => [5, 5, 5],
        max_pool(2),
        flatten,
        fc: dense(4),
        sum: parallel(add) { branch { dense(3) } branch { dense(3), tanh } },
    }
}

network! {
    struct Encoder { input: [6], fc1: dense(5), tanh, fc2: dense(4) }
}

network! {
    struct Outer { input: [6], encoder: Encoder => [4], relu, head: dense(3) }
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

    fn named(&self, key: &str) -> Named {
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

type Named = Vec<(String, Vec<usize>, Vec<f64>)>;

/// Loads the fixture's parameters (and batch-norm buffers) by name, checking names, order and shapes.
fn load_params<T: Float, N: Params<T>>(net: &mut N, fixture: &Fixture) {
    let params = fixture.named("params");
    let buffers = if fixture.0.get("buffers").is_some() { fixture.named("buffers") } else { Vec::new() };
    let mut k = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| set(&params, &mut k, p));
    assert_eq!(k, params.len(), "parameter count");
    let mut k = 0;
    net.visit_buffers_mut(&ParamPath::ROOT, &mut |p| set(&buffers, &mut k, p));
    assert_eq!(k, buffers.len(), "buffer count");
}

/// Sets the `k`-th visited tensor from the fixture, checking its name and shape.
fn set<T: Float>(expected: &Named, k: &mut usize, p: ParamMut<'_, T>) {
    let (name, shape, data) = &expected[*k];
    assert_eq!(&p.name.to_string(), name, "tensor {k}");
    assert_eq!(p.shape, shape.as_slice(), "{name}");
    p.value.iter_mut().zip(data).for_each(|(v, d)| *v = T::cast(*d));
    *k += 1;
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
    let mut buffers = N::Trace::default();
    assert_eq!(net.infer(&x, &mut buffers), &inference, "inference into buffers agrees exactly");
    let expected_output = Fixture::floats(&fixture.0["output"]);
    if fixture.0["mode"] == "eval" {
        assert_close(inference.as_slice(), &expected_output, tol, "output");
        assert_close(&[loss.loss(&inference, target).unwrap()], &[fixture.loss_value()], tol, "loss");
        return;
    }

    let mut trace = N::Trace::default();
    let out = net.forward_train(&x, &mut trace);
    assert_close(out.as_slice(), &expected_output, tol, "output");
    if fixture.0.get("mode").is_none() {
        assert_eq!(out, &inference, "without batch norm or dropout, training and inference agree exactly");
    }
    let mut d_out = Batch::zeros(0);
    let value = loss.loss_and_grad(out, target, &mut d_out).unwrap();
    assert_close(&[value], &[fixture.loss_value()], tol, "loss");

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

    if fixture.0.get("buffers_after").is_some() {
        let expected = fixture.named("buffers_after");
        let mut k = 0;
        net.visit_buffers(&ParamPath::ROOT, &mut |b| {
            let (name, _, data) = &expected[k];
            assert_eq!(&b.name.to_string(), name);
            assert_close(b.value, data, tol, &format!("{name} after the step"));
            k += 1;
        });
        assert_eq!(k, expected.len());
    }
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
from_zeros!(
    MlpReluCe,
    MlpActsMse,
    MlpBce,
    DeepTanhCe,
    ConvStridePad,
    ConvDilationNoBias,
    Pools,
    BatchNormNet,
    LayerNormNet,
    SmallCnn,
    ResidualProjection,
    ResidualDense,
    ParallelConcat,
    Outer
);

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

#[test]
fn conv2d_with_stride_and_padding_matches_jax() {
    let f = Fixture::load("conv_stride_pad.json");
    check::<f64, ConvStridePad<f64>, _, 98, 4>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, ConvStridePad<f32>, _, 98, 4>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn conv2d_with_dilation_rectangular_kernel_and_no_bias_matches_jax() {
    let f = Fixture::load("conv_dilation_nobias.json");
    check::<f64, ConvDilationNoBias<f64>, _, 112, 3>(&f, MeanSquaredError, &f.batch("target"), F64_TOL);
    check::<f32, ConvDilationNoBias<f32>, _, 112, 3>(&f, MeanSquaredError, &f.batch("target"), F32_TOL);
}

#[test]
fn max_and_avg_pools_match_jax() {
    let f = Fixture::load("pools.json");
    check::<f64, Pools<f64>, _, 72, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, Pools<f32>, _, 72, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn batch_norm_in_training_mode_matches_jax() {
    let f = Fixture::load("batch_norm_train.json");
    check::<f64, BatchNormNet<f64>, _, 75, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, BatchNormNet<f32>, _, 75, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn batch_norm_in_evaluation_mode_matches_jax() {
    let f = Fixture::load("batch_norm_eval.json");
    check::<f64, BatchNormNet<f64>, _, 75, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, BatchNormNet<f32>, _, 75, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn layer_norm_matches_jax() {
    let f = Fixture::load("layer_norm.json");
    check::<f64, LayerNormNet<f64>, _, 32, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, LayerNormNet<f32>, _, 32, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn whole_cnn_matches_jax() {
    let f = Fixture::load("cnn.json");
    check::<f64, SmallCnn<f64>, _, 144, 5>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, SmallCnn<f32>, _, 144, 5>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn residual_blocks_with_and_without_projection_match_jax() {
    let f = Fixture::load("residual_projection.json");
    check::<f64, ResidualProjection<f64>, _, 72, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, ResidualProjection<f32>, _, 72, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
    let f = Fixture::load("residual_dense.json");
    check::<f64, ResidualDense<f64>, _, 5, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, ResidualDense<f32>, _, 5, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn concat_and_add_joins_match_jax() {
    let f = Fixture::load("parallel_concat.json");
    check::<f64, ParallelConcat<f64>, _, 50, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, ParallelConcat<f32>, _, 50, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
}

#[test]
fn a_nested_network_matches_jax() {
    let f = Fixture::load("nested.json");
    check::<f64, Outer<f64>, _, 6, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F64_TOL);
    check::<f32, Outer<f32>, _, 6, 3>(&f, SoftmaxCrossEntropy, &f.labels(), F32_TOL);
    assert_eq!(Outer::PARAM_COUNT, Encoder::PARAM_COUNT + 4 * 3 + 3);
}
