//! The ONNX nodes of the sequence layers, on values `[N, T, F]` (a sample's
//! steps first, as staticnet holds them): conv1d and the 1-D pools (through
//! ONNX's channel-first layout), `last`, `embedding`, `positional`, LSTM and GRU
//! (ONNX's ops, gates reordered), and multi-head self-attention (as
//! `MatMul`/`Softmax` nodes: opset 17 has no attention operator).

use super::graph::{Attr, Graph, Tensor};
use super::ops::reshape;
use crate::error::Result;
use crate::float::Float;
use crate::params::Params;

/// `[N, T, F]` ↔ `[N, F, T]`.
fn swap_last(g: &mut Graph, x: &str) -> String {
    g.op("Transpose", &[x], vec![("perm", Attr::Ints(vec![0, 2, 1]))])
}

/// `conv1d`: over the steps, the features as channels (weight `[C, F, K]`, PyTorch's).
pub fn conv1d<T: Float, P: Params<T>>(
    g: &mut Graph,
    x: &str,
    layer: &P,
    [kernel, stride, padding, dilation]: [usize; 4],
) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    let b = if t.iter().any(|t| t.name == "bias") { Some(g.param(&t, "bias")?) } else { None };
    let xt = swap_last(g, x);
    let mut inputs = vec![xt.as_str(), w.as_str()];
    inputs.extend(b.as_deref());
    let k = |v: usize| Attr::Ints(vec![v as i64]);
    let attrs = vec![
        ("kernel_shape", k(kernel)),
        ("strides", k(stride)),
        ("dilations", k(dilation)),
        ("pads", Attr::Ints(vec![padding as i64, padding as i64])),
    ];
    let y = g.op("Conv", &inputs, attrs);
    Ok(swap_last(g, &y))
}

/// `max_pool(k)` / `avg_pool(k)` over steps (`op` is `MaxPool` or `AveragePool`).
pub fn pool1d(g: &mut Graph, x: &str, op: &'static str, kernel: usize, stride: usize) -> String {
    let xt = swap_last(g, x);
    let attrs =
        vec![("kernel_shape", Attr::Ints(vec![kernel as i64])), ("strides", Attr::Ints(vec![stride as i64]))];
    let y = g.op(op, &[&xt], attrs);
    swap_last(g, &y)
}

/// `global_avg_pool` over steps: `[N, T, F]` to `[N, F]`.
pub fn global_avg_pool1d(g: &mut Graph, x: &str) -> String {
    let attrs = vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))];
    g.op("ReduceMean", &[x], attrs)
}

/// `last`: the last of `steps` steps, `[N, T, F]` to `[N, F]`.
pub fn last(g: &mut Graph, x: &str, steps: usize) -> String {
    let index = g.ints("last_step", &[], vec![steps as i64 - 1]);
    g.op("Gather", &[x, &index], vec![("axis", Attr::Int(1))])
}

/// `embedding`: token ids (whole numbers in the float input) to rows of `weight`.
pub fn embedding<T: Float, P: Params<T>>(g: &mut Graph, x: &str, layer: &P) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    let ids = g.op("Cast", &[x], vec![("to", Attr::Int(7))]); // 7: INT64
    Ok(g.op("Gather", &[&w, &ids], vec![("axis", Attr::Int(0))]))
}

/// `positional`: adds the learned `[T, D]` table to every sample.
pub fn positional<T: Float, P: Params<T>>(g: &mut Graph, x: &str, layer: &P) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let w = g.param(&t, "weight")?;
    Ok(g.op("Add", &[x, &w], vec![]))
}

/// The rows of `values` (`blocks` blocks of `rows` rows of `cols`) in the block order `order`.
fn reorder(values: &[f32], rows: usize, cols: usize, order: &[usize]) -> Vec<f32> {
    let block = rows * cols;
    order.iter().flat_map(|&k| values[k * block..(k + 1) * block].iter().copied()).collect()
}

/// PyTorch's `nn.LSTM` (gates i, f, g, o) or `nn.GRU` (r, z, n) as ONNX's `LSTM`
/// (i, o, f, c) or `GRU` (z, r, h, with `linear_before_reset`), from zero states:
/// `[N, T, F]` to every step's hidden state `[N, T, H]`.
pub fn recurrent<T: Float, P: Params<T>>(
    g: &mut Graph,
    x: &str,
    layer: &P,
    lstm: bool,
    hidden: usize,
) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let (op, order): (&'static str, &[usize]) =
        if lstm { ("LSTM", &[0, 3, 1, 2]) } else { ("GRU", &[1, 0, 2]) };
    let gates = order.len();
    let weight = |g: &mut Graph, name: &str| {
        g.param_with(&t, name, name, |shape, v| {
            let cols = shape.get(1).copied().unwrap_or(1);
            (vec![1, gates * hidden, cols], reorder(v, hidden, cols, order))
        })
    };
    let w = weight(g, "weight_ih_l0")?;
    let r = weight(g, "weight_hh_l0")?;
    let bias = |name: &str| -> Result<Vec<f32>> {
        let b = find(&t, name).ok_or_else(|| missing(g, name))?;
        Ok(reorder(&b.values, hidden, 1, order))
    };
    let mut biases = bias("bias_ih_l0")?;
    biases.extend(bias("bias_hh_l0")?);
    let b = g.constant("bias", &[1, 2 * gates * hidden], biases);
    let xs = g.op("Transpose", &[x], vec![("perm", Attr::Ints(vec![1, 0, 2]))]); // [T, N, F]
    let mut attrs = vec![("hidden_size", Attr::Int(hidden as i64))];
    if !lstm {
        attrs.push(("linear_before_reset", Attr::Int(1)));
    }
    let y = g.op_n(op, &[&xs, &w, &r, &b], 1, attrs).remove(0); // [T, 1, N, H]
    let axes = g.ints("axes", &[1], vec![1]);
    let y = g.op("Squeeze", &[&y, &axes], vec![]);
    Ok(g.op("Transpose", &[&y], vec![("perm", Attr::Ints(vec![1, 0, 2]))]))
}

fn find<'a>(t: &'a [Tensor], name: &str) -> Option<&'a Tensor> {
    t.iter().find(|t| t.name == name)
}

fn missing(g: &Graph, name: &str) -> crate::error::Error {
    crate::error::Error::OnnxExport { layer: g.layer_name(), reason: format!("parameter `{name}` not found") }
}

/// Multi-head self-attention (PyTorch's `nn.MultiheadAttention`, `x` as query, key
/// and value): `[N, T, D]` to `[N, T, D]`, causal with a `−1e9` mask above the diagonal.
pub fn attention<T: Float, P: Params<T>>(
    g: &mut Graph,
    x: &str,
    layer: &P,
    [steps, dim, heads]: [usize; 3],
    causal: bool,
) -> Result<String> {
    let t = g.tensors_of(layer)?;
    let head = dim / heads.max(1);
    // One projection `x Wᵀ + b` from rows `rows` of the weight `name` and its bias.
    let project = |g: &mut Graph, x: &str, w: &str, b: &str, part: usize, label: &str| -> Result<String> {
        let wt = g.param_with(&t, w, &format!("{w}.{label}"), |_, v| {
            let rows = &v[part * dim * dim..(part + 1) * dim * dim];
            (vec![dim, dim], (0..dim * dim).map(|k| rows[(k % dim) * dim + k / dim]).collect())
        })?;
        let bias = g.param_with(&t, b, &format!("{b}.{label}"), |_, v| {
            (vec![dim], v[part * dim..(part + 1) * dim].to_vec())
        })?;
        let y = g.op("MatMul", &[x, &wt], vec![]);
        Ok(g.op("Add", &[&y, &bias], vec![]))
    };
    let split = |g: &mut Graph, y: &str, perm: Vec<i64>| {
        let y = reshape(g, y, &[steps, heads, head]);
        g.op("Transpose", &[&y], vec![("perm", Attr::Ints(perm))])
    };
    let q = project(g, x, "in_proj_weight", "in_proj_bias", 0, "q")?;
    let k = project(g, x, "in_proj_weight", "in_proj_bias", 1, "k")?;
    let v = project(g, x, "in_proj_weight", "in_proj_bias", 2, "v")?;
    let q = split(g, &q, vec![0, 2, 1, 3]); // [N, H, T, d]
    let k = split(g, &k, vec![0, 2, 3, 1]); // [N, H, d, T]
    let v = split(g, &v, vec![0, 2, 1, 3]);
    let scores = g.op("MatMul", &[&q, &k], vec![]);
    let scale = g.constant("scale", &[], vec![1.0 / (head as f32).sqrt()]);
    let mut scores = g.op("Mul", &[&scores, &scale], vec![]);
    if causal {
        let mask = (0..steps * steps).map(|k| if k % steps > k / steps { -1e9 } else { 0.0 }).collect();
        let mask = g.constant("causal_mask", &[steps, steps], mask);
        scores = g.op("Add", &[&scores, &mask], vec![]);
    }
    let p = g.op("Softmax", &[&scores], vec![("axis", Attr::Int(-1))]);
    let ctx = g.op("MatMul", &[&p, &v], vec![]);
    let ctx = g.op("Transpose", &[&ctx], vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
    let ctx = reshape(g, &ctx, &[steps, dim]);
    project(g, &ctx, "out_proj.weight", "out_proj.bias", 0, "t")
}
