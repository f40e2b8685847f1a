//! Layer sequences a pass runs as one call each, with the same results as
//! layer by layer but fewer passes over memory.

use crate::model::{Activation, Layer, LayerKind};

/// Layers a pass runs as one call, with the same results as layer by layer but
/// fewer passes over memory: `dense, relu` with the bias and the ReLU in the
/// product's epilogue (`Dense::forward_relu`) and, backward, `relu, dense` with
/// the ReLU's gate in the epilogue of the dense layer's input gradient
/// (`Dense::backward_through_relu`), likewise `gelu, dense` with the GELU's
/// kept derivative (`BackwardScaled`; a dense layer at every step too); in training, `relu, max_pool` in one pass
/// over the ReLU's input (`MaxPool2d::forward_train_after_relu`) and
/// `conv2d, relu, max_pool` sample by sample (`Conv2d::forward_train_relu_max_pool`).
#[derive(Clone, Copy)]
pub enum Fused {
    /// Step `k` alone.
    Single(usize),
    /// A ReLU at step `k`, the max pooling after it.
    ReluPool(usize),
    /// A convolution at step `k`, a ReLU and a max pooling after it.
    ConvReluPool(usize),
    /// A dense layer at step `k`, a ReLU after it (forward passes).
    DenseRelu(usize),
    /// A ReLU at step `k > 0`, a dense layer after it (the backward pass).
    ReluDense(usize),
    /// A GELU at step `k > 0`, a dense layer after it, at every step or not (the backward pass).
    GeluDense(usize),
}

/// Which pass [`fused_steps`] groups for.
#[derive(Clone, Copy, PartialEq)]
pub enum Pass {
    Infer,
    Train,
    Backward,
}

/// The steps of a pass, grouped into what runs as one call.
pub fn fused_steps(steps: &[&Layer], pass: Pass) -> Vec<Fused> {
    let kind = |k: usize| steps.get(k).map(|l| &l.kind);
    let is_relu = |k| matches!(kind(k), Some(LayerKind::Activation(Activation::Relu)));
    let is_pool = |k| matches!(kind(k), Some(LayerKind::MaxPool(_)));
    let is_conv = |k| matches!(kind(k), Some(LayerKind::Conv2d { .. }));
    let is_dense = |k| matches!(kind(k), Some(LayerKind::Dense { .. }));
    let is_gelu = |k| matches!(kind(k), Some(LayerKind::Activation(Activation::Gelu)));
    let is_any_dense = |k| match kind(k) {
        Some(LayerKind::PerStep { inner, .. }) => matches!(**inner, LayerKind::Dense { .. }),
        other => matches!(other, Some(LayerKind::Dense { .. })),
    };
    let training = pass != Pass::Infer;
    let mut groups = Vec::new();
    let mut k = 0;
    while k < steps.len() {
        let (group, len) = if training && is_conv(k) && is_relu(k + 1) && is_pool(k + 2) {
            (Fused::ConvReluPool(k), 3)
        } else if training && is_relu(k) && is_pool(k + 1) {
            (Fused::ReluPool(k), 2)
        } else if pass != Pass::Backward && is_dense(k) && is_relu(k + 1) {
            (Fused::DenseRelu(k), 2)
        } else if pass == Pass::Backward && k > 0 && is_relu(k) && is_dense(k + 1) {
            (Fused::ReluDense(k), 2)
        } else if pass == Pass::Backward && k > 0 && is_gelu(k) && is_any_dense(k + 1) {
            (Fused::GeluDense(k), 2)
        } else {
            (Fused::Single(k), 1)
        };
        groups.push(group);
        k += len;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use proc_macro2::TokenStream;

    fn model(body: &str) -> Model {
        let cx = crate::ctxt::Ctxt::new();
        let tokens: TokenStream = format!("struct Net {{ {body} }}").parse().expect("tokens");
        let model = crate::parse::parse(tokens, &cx).and_then(|def| crate::check::check(def, &cx));
        assert!(!cx.has_errors(), "{body}");
        model.expect("a model")
    }

    /// The groups of a pass, as (kind, first step) pairs.
    fn groups(body: &str, pass: Pass) -> Vec<(&'static str, usize)> {
        let model = model(body);
        let steps: Vec<&Layer> = model.layers.iter().filter(|l| l.kind != LayerKind::Flatten).collect();
        fused_steps(&steps, pass)
            .into_iter()
            .map(|g| match g {
                Fused::Single(k) => ("single", k),
                Fused::ReluPool(k) => ("relu_pool", k),
                Fused::ConvReluPool(k) => ("conv_relu_pool", k),
                Fused::DenseRelu(k) => ("dense_relu", k),
                Fused::ReluDense(k) => ("relu_dense", k),
                Fused::GeluDense(k) => ("gelu_dense", k),
            })
            .collect()
    }

    #[test]
    fn dense_and_relu_pair_forward_one_way_and_backward_the_other() {
        let mlp = "input: [8], dense(6), relu, dense(4), relu, dense(2)";
        let forward = vec![("dense_relu", 0), ("dense_relu", 2), ("single", 4)];
        assert_eq!(groups(mlp, Pass::Train), forward);
        assert_eq!(groups(mlp, Pass::Infer), forward);
        assert_eq!(groups(mlp, Pass::Backward), [("single", 0), ("relu_dense", 1), ("relu_dense", 3)]);
        // A leading ReLU has no previous layer to hand its gradient to through a dense one.
        let leading = "input: [8], relu, dense(4), sigmoid, dense(2)";
        assert_eq!(
            groups(leading, Pass::Backward),
            [("single", 0), ("single", 1), ("single", 2), ("single", 3)]
        );
    }

    /// A dense layer at every step of a sequence is a `PerStep`, never fused with
    /// the ReLU after it (its epilogue is per sample, not per step); a rank-1 dense after `last` still is.
    #[test]
    fn a_per_step_dense_is_not_fused() {
        let seq = "input: [3, 8], dense(6), relu, dense(4), relu, last, dense(2), relu, dense(2)";
        for pass in [Pass::Train, Pass::Infer] {
            let expected = vec![
                ("single", 0),
                ("single", 1),
                ("single", 2),
                ("single", 3),
                ("single", 4),
                ("dense_relu", 5),
                ("single", 7),
            ];
            assert_eq!(groups(seq, pass), expected);
        }
        let backward = groups(seq, Pass::Backward);
        assert_eq!(
            backward[..6],
            [("single", 0), ("single", 1), ("single", 2), ("single", 3), ("single", 4), ("single", 5)]
        );
        assert_eq!(backward[6..], [("relu_dense", 6)]);
        let pools = "input: [8, 3], relu, max_pool(2), conv1d(2, kernel = 1), relu, max_pool(2)";
        assert_eq!(groups(pools, Pass::Train), (0..5).map(|k| ("single", k)).collect::<Vec<_>>());
    }

    /// Backward, a GELU hands its derivative to the dense layer after it, at every step or not.
    #[test]
    fn gelu_and_the_dense_layer_after_it_pair_backward() {
        let ff = "input: [4, 8], layer_norm, dense(16), gelu, dense(8), last, dense(6), gelu, dense(2)";
        let backward = groups(ff, Pass::Backward);
        let expected = [
            ("single", 0),
            ("single", 1),
            ("gelu_dense", 2),
            ("single", 4),
            ("single", 5),
            ("gelu_dense", 6),
        ];
        assert_eq!(backward, expected);
        for pass in [Pass::Train, Pass::Infer] {
            assert_eq!(groups(ff, pass), (0..8).map(|k| ("single", k)).collect::<Vec<_>>());
        }
        // A leading GELU has no previous layer to hand its gradient to.
        assert_eq!(groups("input: [8], gelu, dense(4)", Pass::Backward), [("single", 0), ("single", 1)]);
    }

    #[test]
    fn pooling_groups_are_for_training_only() {
        let cnn = "input: [1, 8, 8], conv2d(2, kernel = 3), relu, max_pool(2), relu, max_pool(1), flatten, dense(3)";
        let train = vec![("conv_relu_pool", 0), ("relu_pool", 3), ("single", 5)];
        assert_eq!(groups(cnn, Pass::Train), train);
        assert_eq!(groups(cnn, Pass::Backward), train);
        assert_eq!(groups(cnn, Pass::Infer), (0..6).map(|k| ("single", k)).collect::<Vec<_>>());
    }
}
