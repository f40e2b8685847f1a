//! The ONNX nodes of the plain layers (dense, conv2d, pools, norms, activations)
//! and of the joins of composite blocks. Each function takes the name of its
//! input value and returns the name of its output; values are `[N, ..sample]`
//! (`[N, F]`, `[N, C, H, W]`, `[N, T, F]` for sequences).
//!
//! `network!` writes the calls (`dsl/src/expand/onnx.rs`) with the sizes it
//! checked; parameters are read through [`Params`], so initializers carry their
//! `state_dict` names and PyTorch layouts.

use super::graph::{Attr, Graph};
use crate::error::Result;
use crate::float::Float;
use crate::geometry::Conv2dGeometry;
use crate::params::Params;

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&d| d as i64).collect())
}

/// `y = x Wᵀ + b` on the last axis: `Gemm` on `[N, F]`, `MatMul` and `Add` on a
/// sequence `[N, T, F]` (`per_step`), where the transposed weight is a `Transpose` node.
pub fn dense<T: Float, P: Params<T>>(g: &mut Graph, x: &str, layer: &P, per_step: bool) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    let has_bias = t.iter().any(|t| t.name == "bias");
    if !per_step {
        let mut inputs = vec![x, w.as_str()];
        let b = if has_bias { Some(g.param(&t, "bias")?) } else { None };
        inputs.extend(b.as_deref());
        return Ok(g.op("Gemm", &inputs, vec![("transB", Attr::Int(1))]));
    }
    let wt = g.op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let y = g.op("MatMul", &[x, &wt], vec![]);
    if !has_bias {
        return Ok(y);
    }
    let b = g.param(&t, "bias")?;
    Ok(g.op("Add", &[&y, &b], vec![]))
}

/// A 2-D convolution; the bottom and right padding are what gives the output size
/// network! computed (zero when the last rows and columns are never reached).
pub fn conv2d<T: Float, P: Params<T>>(
    g: &mut Graph,
    x: &str,
    layer: &P,
    geo: &Conv2dGeometry,
) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    let b = if t.iter().any(|t| t.name == "bias") { Some(g.param(&t, "bias")?) } else { None };
    let size = [geo.height, geo.width];
    let out = [geo.out_height, geo.out_width];
    let end = |a: usize| {
        let reach = (out[a] - 1) * geo.stride[a] + geo.dilation[a] * (geo.kernel[a] - 1) + 1;
        reach.saturating_sub(size[a] + geo.padding[a])
    };
    let pads = [geo.padding[0], geo.padding[1], end(0), end(1)];
    let mut inputs = vec![x, w.as_str()];
    inputs.extend(b.as_deref());
    let attrs = vec![
        ("kernel_shape", ints(&geo.kernel)),
        ("strides", ints(&geo.stride)),
        ("dilations", ints(&geo.dilation)),
        ("pads", ints(&pads)),
    ];
    Ok(g.op("Conv", &inputs, attrs))
}

/// `max_pool` / `avg_pool` (`op` is `MaxPool` or `AveragePool`): floor mode, no padding.
pub fn pool2d(g: &mut Graph, x: &str, op: &'static str, kernel: [usize; 2], stride: [usize; 2]) -> String {
    g.op(op, &[x], vec![("kernel_shape", ints(&kernel)), ("strides", ints(&stride))])
}

/// `global_avg_pool`: `[N, C, H, W]` to `[N, C]`.
pub fn global_avg_pool(g: &mut Graph, x: &str) -> String {
    let y = g.op("GlobalAveragePool", &[x], vec![]);
    flatten(g, &y)
}

/// `[N, ..]` to `[N, product]`.
pub fn flatten(g: &mut Graph, x: &str) -> String {
    g.op("Flatten", &[x], vec![("axis", Attr::Int(1))])
}

/// `[N, ..]` to `[N, ..dims]` (the batch kept as it is).
pub fn reshape(g: &mut Graph, x: &str, dims: &[usize]) -> String {
    let shape = [0].into_iter().chain(dims.iter().map(|&d| d as i64)).collect::<Vec<_>>();
    let s = g.ints("shape", &[shape.len()], shape);
    g.op("Reshape", &[x, &s], vec![])
}

/// Batch normalisation with the running statistics, over axis 1 (channels or features).
pub fn batch_norm<T: Float, P: Params<T>>(g: &mut Graph, x: &str, layer: &P, eps: f64) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let names = ["weight", "bias", "running_mean", "running_var"];
    let [w, b, m, v] = names.map(|n| g.param(&t, n));
    let (w, b, m, v) = (w?, b?, m?, v?);
    Ok(g.op("BatchNormalization", &[x, &w, &b, &m, &v], vec![("epsilon", Attr::Float(eps as f32))]))
}

/// Layer normalisation over the last `rank` axes (the whole sample, or each step's features).
pub fn layer_norm<T: Float, P: Params<T>>(
    g: &mut Graph,
    x: &str,
    layer: &P,
    eps: f64,
    rank: usize,
) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    let b = g.param(&t, "bias")?;
    let attrs = vec![("axis", Attr::Int(-(rank as i64))), ("epsilon", Attr::Float(eps as f32))];
    Ok(g.op("LayerNormalization", &[x, &w, &b], attrs))
}

/// A softmax over the whole sample `dims` (flattened first when it has several
/// axes), or over the last axis when `per_step`.
pub fn softmax(g: &mut Graph, x: &str, dims: &[usize], per_step: bool) -> String {
    softmax_like(g, x, "Softmax", dims, per_step)
}

/// `log_softmax`, over the same axes as [`softmax`].
pub fn log_softmax(g: &mut Graph, x: &str, dims: &[usize], per_step: bool) -> String {
    softmax_like(g, x, "LogSoftmax", dims, per_step)
}

fn softmax_like(g: &mut Graph, x: &str, op: &'static str, dims: &[usize], per_step: bool) -> String {
    let last = vec![("axis", Attr::Int(-1))];
    if per_step || dims.len() == 1 {
        return g.op(op, &[x], last);
    }
    let flat = flatten(g, x);
    let y = g.op(op, &[&flat], last);
    reshape(g, &y, dims)
}

/// `silu` (swish): `x·σ(x)`.
pub fn silu(g: &mut Graph, x: &str) -> String {
    let s = g.op("Sigmoid", &[x], vec![]);
    g.op("Mul", &[x, &s], vec![])
}

/// `mish`: `x·tanh(softplus(x))` (opset 17 has no `Mish`).
pub fn mish(g: &mut Graph, x: &str) -> String {
    let sp = g.op("Softplus", &[x], vec![]);
    let t = g.op("Tanh", &[&sp], vec![]);
    g.op("Mul", &[x, &t], vec![])
}

/// `elu(alpha)`.
pub fn elu(g: &mut Graph, x: &str, alpha: f64) -> String {
    g.op("Elu", &[x], vec![("alpha", Attr::Float(alpha as f32))])
}

/// The exact GELU, `x·Φ(x) = x·(1 + erf(x/√2))/2` (opset 17 has no `Gelu`).
pub fn gelu(g: &mut Graph, x: &str) -> String {
    let inv_sqrt2 = g.constant("inv_sqrt2", &[], vec![std::f32::consts::FRAC_1_SQRT_2]);
    let (one, half) = (g.constant("one", &[], vec![1.0]), g.constant("half", &[], vec![0.5]));
    let scaled = g.op("Mul", &[x, &inv_sqrt2], vec![]);
    let erf = g.op("Erf", &[&scaled], vec![]);
    let plus = g.op("Add", &[&erf, &one], vec![]);
    let halved = g.op("Mul", &[&plus, &half], vec![]);
    g.op("Mul", &[x, &halved], vec![])
}

/// An element-wise operator with no attributes (`Relu`, `Sigmoid`, `Tanh`, `Identity`,
/// `Selu` and `Softplus`, whose defaults are PyTorch's).
pub fn unary(g: &mut Graph, x: &str, op: &'static str) -> String {
    g.op(op, &[x], vec![])
}

/// `leaky_relu(alpha)`.
pub fn leaky_relu(g: &mut Graph, x: &str, alpha: f64) -> String {
    g.op("LeakyRelu", &[x], vec![("alpha", Attr::Float(alpha as f32))])
}

/// A residual block's sum of body and skip path.
pub fn add(g: &mut Graph, a: &str, b: &str) -> String {
    g.op("Add", &[a, b], vec![])
}

/// `parallel(concat)`: along axis 1 (features of `[N, F]`, channels of `[N, C, H, W]`);
/// `parallel(add)`: the element-wise sum, in branch order.
pub fn join(g: &mut Graph, branches: &[String], concat: bool) -> String {
    let inputs: Vec<&str> = branches.iter().map(String::as_str).collect();
    match inputs.split_first() {
        Some((first, rest)) if !concat => rest.iter().fold(first.to_string(), |sum, b| add(g, &sum, b)),
        _ => g.op("Concat", &inputs, vec![("axis", Attr::Int(1))]),
    }
}
