//! The layer table: every layer kind the language knows, with how its
//! arguments are read and how it shapes its input. The checker finds a layer
//! here by name, and "unknown layer" messages list and suggest these names.

use super::args::{self, Call, Spec};
use super::{blocks, seq_args, sequences, shapes, tokens};
use crate::ast::LayerDef;
use crate::ctxt::Ctxt;
use crate::model::{Activation, LayerKind, Shape};

/// Turns a layer's written arguments into a [`Spec`], reporting each mistake.
pub type Resolver = fn(&Call<'_>, &Ctxt) -> Option<Spec>;

/// Checks the incoming shape (given by the producer named in the `&str`)
/// against the resolved layer and computes the outgoing one; `None` for the
/// kind when the layer cannot be built (the error is reported).
pub type ShapeRule = fn(Spec, &Shape, &LayerDef, &str, &Ctxt) -> (Option<LayerKind>, Shape);

/// What the checker knows of one layer kind.
pub struct Entry {
    /// The name written in `network!`: `dense`, `max_pool`.
    pub name: &'static str,
    /// The keyword arguments it accepts, for [`args::Keywords`] and its "did you mean" hints.
    pub keywords: &'static [&'static str],
    /// Reads the arguments.
    pub resolve: Resolver,
    /// Shapes the resolved layer; it receives the [`Spec`] variant `resolve` returns.
    pub shape: ShapeRule,
    /// Whether the output has the input's shape: a `=> [..]` assertion after
    /// such a layer names the layer that made the shape instead.
    pub keeps_shape: bool,
}

/// One entry per layer kind, in the order "unknown layer" messages list them.
///
/// Adding a layer `foo(n, scale = ..)` to the checker is one entry here:
///
/// ```text
/// Entry { name: "foo", keywords: &["scale"], resolve: args::foo, shape: shapes::foo, keeps_shape: false },
/// ```
///
/// with `args::foo` returning a new `Spec::Foo { .. }`, `shapes::foo` turning it into
/// a new `LayerKind::Foo { .. }` (in `model.rs`) and the output shape, and the
/// expansion naming the core type (`expand/types.rs`); the layer itself is one
/// file in `core/src/layers/`. ARCHITECTURE.md has the whole checklist.
pub const LAYERS: &[Entry] = &[
    Entry {
        name: "dense",
        keywords: &["bias"],
        resolve: args::dense,
        shape: shapes::dense,
        keeps_shape: false,
    },
    Entry {
        name: "conv2d",
        keywords: &["kernel", "stride", "padding", "dilation", "bias"],
        resolve: args::conv2d,
        shape: shapes::conv2d,
        keeps_shape: false,
    },
    Entry {
        name: "max_pool",
        keywords: &["stride"],
        resolve: args::pool,
        shape: shapes::pool,
        keeps_shape: false,
    },
    Entry {
        name: "avg_pool",
        keywords: &["stride"],
        resolve: args::pool,
        shape: shapes::pool,
        keeps_shape: false,
    },
    Entry {
        name: "global_avg_pool",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::GlobalAvgPool, cx),
        shape: shapes::global_avg_pool,
        keeps_shape: false,
    },
    Entry {
        name: "flatten",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Flatten, cx),
        shape: shapes::flatten,
        keeps_shape: false,
    },
    Entry {
        name: "batch_norm",
        keywords: &["eps", "momentum"],
        resolve: args::batch_norm,
        shape: shapes::batch_norm,
        keeps_shape: true,
    },
    Entry {
        name: "layer_norm",
        keywords: &["eps"],
        resolve: args::layer_norm,
        shape: shapes::layer_norm,
        keeps_shape: true,
    },
    Entry {
        name: "dropout",
        keywords: &["p"],
        resolve: args::dropout,
        shape: shapes::dropout,
        keeps_shape: true,
    },
    Entry {
        name: "relu",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Relu), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "leaky_relu",
        keywords: &["alpha"],
        resolve: args::leaky_relu,
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "sigmoid",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Sigmoid), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "tanh",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Tanh), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "gelu",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Gelu), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "softmax",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Softmax), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "log_softmax",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::LogSoftmax), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "silu",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Silu), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "swish",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Silu), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "elu",
        keywords: &["alpha"],
        resolve: args::elu,
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "selu",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Selu), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "softplus",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Softplus), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "mish",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Mish), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "identity",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Activation(Activation::Identity), cx),
        shape: shapes::activation,
        keeps_shape: true,
    },
    Entry {
        name: "conv1d",
        keywords: &["kernel", "stride", "padding", "dilation", "bias"],
        resolve: seq_args::conv1d,
        shape: sequences::conv1d,
        keeps_shape: false,
    },
    Entry {
        name: "lstm",
        keywords: &[],
        resolve: seq_args::recurrent,
        shape: sequences::recurrent,
        keeps_shape: false,
    },
    Entry {
        name: "gru",
        keywords: &[],
        resolve: seq_args::recurrent,
        shape: sequences::recurrent,
        keeps_shape: false,
    },
    Entry {
        name: "attention",
        keywords: &["heads", "causal"],
        resolve: seq_args::attention,
        shape: sequences::attention,
        keeps_shape: true,
    },
    Entry {
        name: "positional",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Positional, cx),
        shape: sequences::positional,
        keeps_shape: true,
    },
    Entry {
        name: "embedding",
        keywords: &[],
        resolve: args::embedding,
        shape: tokens::embedding,
        keeps_shape: false,
    },
    Entry {
        name: "last",
        keywords: &[],
        resolve: |call, cx| args::none(call, Spec::Last, cx),
        shape: sequences::last,
        keeps_shape: false,
    },
    Entry {
        name: "residual",
        keywords: &[],
        resolve: args::residual,
        shape: blocks::residual,
        keeps_shape: false,
    },
    Entry {
        name: "parallel",
        keywords: &[],
        resolve: args::parallel,
        shape: blocks::parallel,
        keeps_shape: false,
    },
];

/// The entry for a layer kind written as `name`.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    LAYERS.iter().find(|e| e.name == name)
}

/// Whether the layer kind `name` keeps its input's shape (`false` for unknown kinds and nested networks).
pub fn keeps_shape(name: &str) -> bool {
    lookup(name).is_some_and(|e| e.keeps_shape)
}

/// "unknown layer `desne`; expected one of dense, …; did you mean `dense`?"
pub fn unknown_layer(name: &str) -> String {
    let names: Vec<&str> = LAYERS.iter().map(|e| e.name).collect();
    let hint = closest(name, &names).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
    format!("unknown layer `{name}`; expected one of {}{hint}", names.join(", "))
}

/// The known name closest to `word`, if it is a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
