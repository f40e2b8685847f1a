//! Argument resolution: a layer's written arguments (`dense(784 -> 128, bias = false)`)
//! to a [`Spec`], with defaults filled in and every mistake reported. Shapes
//! are not known here; `shapes.rs` and `blocks.rs` apply the spec to them.

use super::hints;
use super::table::{closest, Entry};
use super::values::{bool_value, feature_value, float_value, padding_value, pair_value, size_value};
use crate::ast::{Arg, LayerDef, Value};
use crate::ctxt::Ctxt;
use crate::model::{Activation, Cell, Join, Size};
use proc_macro2::Span;

/// PyTorch's defaults.
const DEFAULT_LEAKY_ALPHA: f64 = 0.01;
const DEFAULT_ELU_ALPHA: f64 = 1.0;
const DEFAULT_NORM_EPS: f64 = 1e-5;
const DEFAULT_BN_MOMENTUM: f64 = 0.1;

/// A layer's kind and arguments, resolved but not yet shaped.
pub enum Spec {
    Dense { expects: Option<(Size, Span)>, outputs: Size, bias: bool },
    Conv2d(ConvSpec),
    Pool { max: bool, kernel: [usize; 2], stride: Option<[usize; 2]> },
    GlobalAvgPool,
    Flatten,
    BatchNorm { eps: f64, momentum: f64 },
    LayerNorm { eps: f64 },
    Dropout { p: f64 },
    Activation(Activation),
    Residual { projection: bool },
    Parallel(Join),
    Conv1d(Conv1dSpec),
    Recurrent { cell: Cell, expects: Option<(usize, Span)>, hidden: usize },
    Attention { heads: usize, causal: bool },
    Positional,
    Last,
    Embedding { vocab: usize, dim: usize },
}

/// A convolution over steps: its arguments.
pub struct Conv1dSpec {
    pub expects: Option<(usize, Span)>,
    pub filters: usize,
    pub kernel: usize,
    pub stride: usize,
    /// `None` for `padding = same`.
    pub padding: Option<usize>,
    pub dilation: usize,
    pub bias: bool,
    /// Where a `padding = same` was written, for its errors.
    pub same_span: Option<Span>,
}

/// A convolution's arguments.
pub struct ConvSpec {
    pub expects: Option<(usize, Span)>,
    pub filters: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: Padding,
    pub dilation: [usize; 2],
    pub bias: bool,
    /// Where a `padding = same` with a stride was written, for its error.
    pub same_span: Option<Span>,
}

#[derive(Clone, Copy)]
pub enum Padding {
    Zero([usize; 2]),
    Same,
}

/// A layer as written, with its table entry: what a [`super::table::Resolver`] reads.
pub struct Call<'a> {
    pub entry: &'static Entry,
    pub def: &'a LayerDef,
    pub args: &'a [Arg],
}

impl Call<'_> {
    /// The layer kind's name, `dense`.
    pub(super) fn name(&self) -> &'static str {
        self.entry.name
    }

    /// A checker for the keyword arguments the table allows this kind.
    pub(super) fn keywords(&self) -> Keywords<'_> {
        Keywords { layer: self.entry.name, allowed: self.entry.keywords, seen: Vec::new(), args: self.args }
    }

    /// Where a missing argument is reported: the parentheses, or the kind's name.
    pub(super) fn args_span(&self) -> Span {
        self.def.args.as_ref().map_or(self.def.kind.span(), |a| a.span)
    }
}

/// Keyword arguments, each used at most once; unknown and repeated ones are errors.
pub(super) struct Keywords<'a> {
    layer: &'static str,
    allowed: &'static [&'static str],
    pub(super) seen: Vec<String>,
    /// The written arguments, for the values in Keras and PyTorch hints.
    args: &'a [Arg],
}

impl Keywords<'_> {
    /// Whether `key` may be used here; reports why not.
    pub(super) fn accept(&mut self, key: &syn::Ident, cx: &Ctxt) -> bool {
        let name = key.to_string();
        if !self.allowed.contains(&name.as_str()) {
            let expected: Vec<String> = self.allowed.iter().map(|k| format!("`{k}`")).collect();
            let expected = match expected.len() {
                0 => "it takes no keyword arguments".to_string(),
                _ => format!("expected {}", expected.join(", ")),
            };
            let value = self.args.iter().find_map(|a| match a {
                Arg::Keyword { key: k, value } if k == key => Some(value),
                _ => None,
            });
            let hint = match (hints::keyword(self.layer, &name, value), self.allowed.len()) {
                (Some(hint), _) => format!("; {hint}"),
                (None, 0 | 1) => String::new(),
                (None, _) => {
                    closest(&name, self.allowed).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default()
                }
            };
            cx.error_at(
                key.span(),
                format!("unknown argument `{name}` for `{}`; {expected}{hint}", self.layer),
            );
            return false;
        }
        if self.seen.contains(&name) {
            cx.error_at(key.span(), format!("`{name}` is given twice"));
            return false;
        }
        self.seen.push(name);
        true
    }
}

/// A layer that takes no arguments (`relu`, `flatten`).
pub fn none(call: &Call<'_>, spec: Spec, cx: &Ctxt) -> Option<Spec> {
    if let Some(arg) = call.args.first() {
        cx.error_at(arg.span(), format!("`{}` takes no arguments", call.name()));
        None
    } else {
        Some(spec)
    }
}

/// The size argument of `dense` and `conv2d`, `n` or `in -> out`: the first
/// argument that is not a keyword (keywords may come before it).
pub(super) fn leading_size<S>(
    call: &Call<'_>,
    what: &str,
    value: fn(&Value, &Ctxt) -> Option<S>,
    cx: &Ctxt,
) -> Option<(Option<(S, Span)>, S)> {
    let example = match call.name() {
        "dense" => "`dense(128)` or `dense(784 -> 128)`",
        "conv1d" => "`conv1d(32, kernel = 3)` or `conv1d(28 -> 32, kernel = 3)`",
        "lstm" => "`lstm(64)` or `lstm(28 -> 64)`",
        "gru" => "`gru(64)` or `gru(28 -> 64)`",
        _ => "`conv2d(16, kernel = 3)` or `conv2d(1 -> 16, kernel = 3)`",
    };
    match call.args.iter().find(|a| !matches!(a, Arg::Keyword { .. })) {
        Some(Arg::Positional(v)) => Some((None, value(v, cx)?)),
        Some(Arg::Arrow { from, to }) => {
            let (i, o) = (value(from, cx), value(to, cx));
            Some((Some((i?, from.span())), o?))
        }
        // `units = 128`: its own error says how to write it.
        _ if hints::size_given_by_keyword(call.name(), call.args) => None,
        _ => {
            cx.error_at(call.args_span(), format!("`{}` needs its {what}, e.g. {example}", call.name()));
            None
        }
    }
}

/// The arguments after the size: every keyword, and any further positional one (an error).
pub(super) fn rest(args: &[Arg]) -> impl Iterator<Item = &Arg> {
    let first = args.iter().position(|a| !matches!(a, Arg::Keyword { .. }));
    args.iter().enumerate().filter(move |(i, _)| Some(*i) != first).map(|(_, a)| a)
}

/// `dense(out)`, `dense(in -> out)`, `bias = false`.
pub fn dense(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let size = leading_size(call, "output size", feature_value, cx);
    let mut bias = true;
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in rest(call.args) {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => match bool_value(value, cx) {
                Some(b) => bias = b,
                None => ok = false,
            },
            Arg::Keyword { .. } => ok = false,
            other => {
                cx.error_at(other.span(), "`dense` takes one size (or `in -> out`); unexpected argument");
                ok = false;
            }
        }
    }
    let (expects, outputs) = size?;
    ok.then_some(Spec::Dense { expects, outputs, bias })
}

/// `conv2d(filters, kernel = .., stride = .., padding = .., dilation = .., bias = ..)`.
pub fn conv2d(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let size = leading_size(call, "number of filters", size_value, cx);
    let mut spec = ConvSpec {
        expects: None,
        filters: 0,
        kernel: [0, 0],
        stride: [1, 1],
        padding: Padding::Zero([0, 0]),
        dilation: [1, 1],
        bias: true,
        same_span: None,
    };
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in rest(call.args) {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => {
                let done = match key.to_string().as_str() {
                    "kernel" => pair_value(value, false, cx).map(|v| spec.kernel = v),
                    "stride" => pair_value(value, false, cx).map(|v| spec.stride = v),
                    "dilation" => pair_value(value, false, cx).map(|v| spec.dilation = v),
                    "bias" => bool_value(value, cx).map(|b| spec.bias = b),
                    _ => padding_value(value, cx).map(|(padding, same_span)| {
                        spec.padding = padding;
                        spec.same_span = same_span;
                    }),
                };
                ok &= done.is_some();
            }
            Arg::Keyword { .. } => ok = false,
            other => ok = misplaced_after_filters(call, other, cx),
        }
    }
    ok = ok && size.is_some() && has_kernel(call, &kw, "conv2d(16, kernel = 3)", cx);
    let (expects, filters) = size?;
    spec.expects = expects;
    spec.filters = filters;
    ok.then_some(Spec::Conv2d(spec))
}

/// A convolution's argument after its filters that is not a keyword: an error (returns `false`).
pub(super) fn misplaced_after_filters(call: &Call<'_>, arg: &Arg, cx: &Ctxt) -> bool {
    let message =
        format!("`{}` takes the filters first, then keyword arguments such as `kernel = 3`", call.name());
    cx.error_at(arg.span(), message);
    false
}

/// Whether a convolution was given its `kernel`, reporting it if not. Called
/// only when nothing else is wrong: a misspelt `kernel` is one mistake, reported once.
pub(super) fn has_kernel(call: &Call<'_>, kw: &Keywords<'_>, example: &str, cx: &Ctxt) -> bool {
    let given = kw.seen.iter().any(|k| k == "kernel");
    if !given {
        cx.error_at(call.args_span(), format!("`{}` needs a kernel size, e.g. `{example}`", call.name()));
    }
    given
}

/// `max_pool(window, stride = ..)` and `avg_pool(..)`.
pub fn pool(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let kind = call.name();
    let kernel = match call.args.iter().find(|a| !matches!(a, Arg::Keyword { .. })) {
        Some(Arg::Positional(v)) => pair_value(v, false, cx),
        // `pool_size = 2`: its own error says how to write it.
        _ if hints::size_given_by_keyword(kind, call.args) => None,
        _ => {
            cx.error_at(call.args_span(), format!("`{kind}` needs a window size, e.g. `{kind}(2)`"));
            None
        }
    };
    let mut stride = None;
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in rest(call.args) {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => match pair_value(value, false, cx) {
                Some(s) => stride = Some(s),
                None => ok = false,
            },
            Arg::Keyword { .. } => ok = false,
            other => {
                cx.error_at(
                    other.span(),
                    format!("`{kind}` takes a window size and `stride = ..`; unexpected argument"),
                );
                ok = false;
            }
        }
    }
    let kernel = kernel?;
    ok.then_some(Spec::Pool { max: kind == "max_pool", kernel, stride })
}

/// `batch_norm`, `batch_norm(eps = .., momentum = ..)`.
pub fn batch_norm(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let mut eps = DEFAULT_NORM_EPS;
    let mut momentum = DEFAULT_BN_MOMENTUM;
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in call.args {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => {
                let v = float_value(value, cx);
                match (key.to_string().as_str(), v) {
                    ("eps", Some(v)) if v > 0.0 => eps = v,
                    ("momentum", Some(v)) if (0.0..=1.0).contains(&v) => momentum = v,
                    (k, Some(v)) => {
                        let range = if k == "eps" { "greater than 0" } else { "in [0, 1]" };
                        cx.error_spanned_by(value.tokens(), format!("`{k}` must be {range}, found {v:?}"));
                        ok = false;
                    }
                    (_, None) => ok = false,
                }
            }
            Arg::Keyword { .. } => ok = false,
            other => {
                cx.error_at(other.span(), "`batch_norm` takes only `eps = ..` and `momentum = ..`");
                ok = false;
            }
        }
    }
    ok.then_some(Spec::BatchNorm { eps, momentum })
}

/// `layer_norm`, `layer_norm(eps = ..)`.
pub fn layer_norm(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let mut eps = DEFAULT_NORM_EPS;
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in call.args {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => match float_value(value, cx) {
                Some(v) if v > 0.0 => eps = v,
                Some(v) => {
                    cx.error_spanned_by(value.tokens(), format!("`eps` must be greater than 0, found {v:?}"));
                    ok = false;
                }
                None => ok = false,
            },
            Arg::Keyword { .. } => ok = false,
            other => {
                cx.error_at(other.span(), "`layer_norm` takes only `eps = ..`");
                ok = false;
            }
        }
    }
    ok.then_some(Spec::LayerNorm { eps })
}

/// `dropout(p)` or `dropout(p = ..)`.
pub fn dropout(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let value = match call.args {
        [Arg::Positional(v)] => Some(v),
        [Arg::Keyword { key, value }] if key == "p" => Some(value),
        _ => None,
    };
    match value {
        Some(v) => {
            let p = float_value(v, cx)?;
            if (0.0..1.0).contains(&p) {
                Some(Spec::Dropout { p })
            } else {
                cx.error_spanned_by(
                    v.tokens(),
                    format!("a dropout probability must be in [0, 1), found {p:?}"),
                );
                None
            }
        }
        None => {
            let span = call.args.first().map_or_else(|| call.def.kind.span(), |a| a.span());
            cx.error_at(span, "`dropout` takes one probability, e.g. `dropout(0.25)`");
            None
        }
    }
}

/// `leaky_relu`, `leaky_relu(0.1)` or `leaky_relu(alpha = 0.1)`.
pub fn leaky_relu(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let alpha = alpha(call, DEFAULT_LEAKY_ALPHA, "one slope, e.g. `leaky_relu(0.1)`", cx)?;
    Some(Spec::Activation(Activation::LeakyRelu(alpha)))
}

/// `elu`, `elu(0.5)` or `elu(alpha = 0.5)`.
pub fn elu(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let alpha = alpha(call, DEFAULT_ELU_ALPHA, "one `alpha`, e.g. `elu(0.5)`", cx)?;
    Some(Spec::Activation(Activation::Elu(alpha)))
}

/// The one optional `alpha` of `leaky_relu` and `elu`, positional or keyword;
/// `takes` says what the layer takes when given something else.
fn alpha(call: &Call<'_>, default: f64, takes: &str, cx: &Ctxt) -> Option<f64> {
    let mut alpha = default;
    let name = call.name();
    for (i, arg) in call.args.iter().enumerate() {
        let value = match arg {
            Arg::Positional(v) if i == 0 => v,
            Arg::Keyword { key, value } if key == "alpha" && i == 0 => value,
            Arg::Keyword { key, value } if key != "alpha" => {
                let hint = hints::keyword(name, &key.to_string(), Some(value)).map(|h| format!("; {h}"));
                let hint = hint.unwrap_or_default();
                cx.error_at(
                    key.span(),
                    format!("unknown argument `{key}` for `{name}`; expected `alpha`{hint}"),
                );
                return None;
            }
            _ => {
                cx.error_at(arg.span(), format!("`{name}` takes {takes}"));
                return None;
            }
        };
        alpha = float_value(value, cx)?;
    }
    Some(alpha)
}

/// `residual { .. }` or `residual(projection) { .. }`.
pub fn residual(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    match call.args {
        [] => Some(Spec::Residual { projection: false }),
        [Arg::Positional(Value::Ident(i))] if i == "projection" => Some(Spec::Residual { projection: true }),
        [other, ..] => {
            cx.error_at(
                other.span(),
                "`residual` takes nothing or `projection`: `residual(projection) { .. }`",
            );
            None
        }
    }
}

/// `parallel(concat) { .. }` or `parallel(add) { .. }`.
pub fn parallel(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    match call.args {
        [Arg::Positional(Value::Ident(i))] if i == "concat" => Some(Spec::Parallel(Join::Concat)),
        [Arg::Positional(Value::Ident(i))] if i == "add" => Some(Spec::Parallel(Join::Add)),
        _ => {
            let span = call.args.first().map_or_else(|| call.def.kind.span(), |a| a.span());
            cx.error_at(
                span,
                "`parallel` needs its join: `parallel(concat) { .. }` or `parallel(add) { .. }`",
            );
            None
        }
    }
}
/// `embedding(V -> D)`: the vocabulary's size and the features of each token's vector.
pub fn embedding(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    match call.args {
        [Arg::Arrow { from, to }] => {
            let (vocab, dim) = (size_value(from, cx), size_value(to, cx));
            Some(Spec::Embedding { vocab: vocab?, dim: dim? })
        }
        _ => {
            cx.error_at(
                call.args_span(),
                "`embedding` takes the vocabulary's size and the features, e.g. `embedding(63 -> 128)`",
            );
            None
        }
    }
}
