//! The graph builder and the layouts the exporters rewrite (end-to-end runs are in `onnx-tests/`).

use super::graph::{Attr, Data, Graph};
use super::{ops, seq};
use crate::geometry::Conv2dGeometry;
use crate::layers::{Dense, Gru, Lstm};
use crate::params::{ParamPath, Params};

#[test]
fn names_follow_the_scope_and_stay_unique() {
    let mut g = Graph::new();
    let a = g.scoped("block1", |g| g.scoped("body", |g| Ok(g.op("Relu", &["x"], vec![])))).unwrap();
    let b = g.scoped("block1", |g| g.scoped("body", |g| Ok(g.op("Relu", &["x"], vec![])))).unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("block1.body.Relu", "block1.body.Relu_1"));
    assert_eq!(g.layer_name(), "");
}

#[test]
fn dense_keeps_pytorch_names_and_layout() {
    let mut layer = Dense::<f32, 3, 2>::zeros(true);
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        for (k, v) in p.value.iter_mut().enumerate() {
            *v = k as f32;
        }
    });
    let mut g = Graph::new();
    let y = g.scoped("fc1", |g| ops::dense(g, "x", &layer, false)).unwrap();
    assert_eq!(y, "fc1.Gemm");
    let names: Vec<&str> = g.initializers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias"]);
    assert_eq!(g.initializers[0].dims, [2, 3]);
    assert_eq!(g.initializers[0].data, Data::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    assert_eq!(g.nodes[0].attrs, [("transB", Attr::Int(1))]);
}

#[test]
fn conv_padding_at_the_end_gives_the_checked_output_size() {
    // `same` with an even kernel: one row of padding at the bottom, none at the top.
    let geo = Conv2dGeometry {
        in_channels: 1,
        height: 5,
        width: 5,
        out_channels: 1,
        kernel: [2, 2],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        out_height: 5,
        out_width: 5,
    };
    let layer = crate::layers::Conv2d::<f32, 25, 25, 4, 1>::zeros(geo, false).unwrap();
    let mut g = Graph::new();
    ops::conv2d(&mut g, "x", &layer, &geo).unwrap();
    let pads = g.nodes[0].attrs.iter().find(|(n, _)| *n == "pads").map(|(_, a)| a.clone());
    assert_eq!(pads, Some(Attr::Ints(vec![0, 0, 1, 1])));
}

/// The first value of each gate block of the exported `W`, after filling PyTorch's
/// weight with its gate index (block `k` of `H` rows all `k`).
fn gate_order<P: Params<f32>>(layer: &mut P, lstm: bool, hidden: usize) -> Vec<f32> {
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let per_gate = p.value.len() / if lstm { 4 } else { 3 };
        for (k, v) in p.value.iter_mut().enumerate() {
            *v = (k / per_gate) as f32;
        }
    });
    let mut g = Graph::new();
    seq::recurrent(&mut g, "x", layer, lstm, hidden).unwrap();
    let Data::F32(w) = &g.initializers[0].data else { unreachable!() };
    let block = w.len() / if lstm { 4 } else { 3 };
    w.iter().step_by(block).copied().collect()
}

#[test]
fn recurrent_gates_are_reordered_for_onnx() {
    // PyTorch i, f, g, o → ONNX i, o, f, c; PyTorch r, z, n → ONNX z, r, h.
    assert_eq!(gate_order(&mut Lstm::<f32, 2, 3, 4>::zeros(), true, 4), [0.0, 3.0, 1.0, 2.0]);
    assert_eq!(gate_order(&mut Gru::<f32, 2, 3, 4>::zeros(), false, 4), [1.0, 0.0, 2.0]);
}

#[test]
fn a_missing_parameter_is_an_error_naming_the_layer() {
    let layer = Dense::<f32, 3, 2>::zeros(true);
    let mut g = Graph::new();
    let err = g.scoped("head", |g| ops::batch_norm(g, "x", &layer, 1e-5)).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot export `head` to ONNX: parameter `running_mean` not found"),
        "{err}"
    );
}
