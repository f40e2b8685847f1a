//! Hints for Keras and PyTorch habits: what a user of those libraries writes
//! by reflex (`kernel_size = 3`, `units = 128`, `activation = "relu"`,
//! `Dense(10)`, `conv2d(1, 32, 3)`, a channels-last `[28, 28, 1]`), each with the
//! form `network!` takes. The tables below are the whole knowledge; the
//! functions after them only look things up and fill in the written values.

use super::args::Call;
use super::table::LAYERS;
use crate::ast::{Arg, Value};
use crate::ctxt::Ctxt;
use crate::model::Shape;
use proc_macro2::TokenTree;
use syn::parse::ParseStream;

/// Every layer: a row of [`KEYWORDS`] that applies to any layer.
const ANY: &[&str] = &[];

/// Keyword arguments of Keras or PyTorch: the layers a row applies to ([`ANY`]
/// for all), the keyword, and the hint. In a hint, `{v}` is the value as
/// written and `{layer}` the layer's name.
#[rustfmt::skip]
pub const KEYWORDS: &[(&[&str], &str, &str)] = &[
    (&["conv2d", "conv1d"], "kernel_size", "did you mean `kernel`? write `kernel = {v}`"),
    (&["max_pool", "avg_pool"], "kernel_size", "the window comes first, without a keyword: write `{layer}({v})`"),
    (&["max_pool", "avg_pool"], "pool_size", "the window comes first, without a keyword: write `{layer}({v})`"),
    (ANY, "strides", "did you mean `stride`? write `stride = {v}`"),
    (&["dense"], "units", "the size comes first, without a keyword: write `dense({v})`"),
    (&["dense"], "out_features", "the size comes first, without a keyword: write `dense({v})`"),
    (&["dense"], "in_features", "write the incoming size with an arrow: `dense({v} -> ..)`"),
    (&["conv2d", "conv1d"], "filters", "the filters come first, without a keyword: write `{layer}({v}, kernel = ..)`"),
    (&["conv2d", "conv1d"], "out_channels", "the filters come first, without a keyword: write `{layer}({v}, kernel = ..)`"),
    (&["conv2d", "conv1d"], "in_channels", "write the incoming channels with an arrow: `{layer}({v} -> .., kernel = ..)`"),
    (&["lstm", "gru"], "units", "the hidden size comes first, without a keyword: write `{layer}({v})`"),
    (&["lstm", "gru"], "hidden_size", "the hidden size comes first, without a keyword: write `{layer}({v})`"),
    (ANY, "activation", "an activation is a layer of its own: remove `activation = ..` and write `, {v}` after this layer"),
    (ANY, "use_bias", "did you mean `bias`? write `bias = {v}`"),
    (ANY, "epsilon", "did you mean `eps`? write `eps = {v}`"),
    (ANY, "negative_slope", "did you mean `alpha`? write `alpha = {v}`"),
    (&["attention"], "num_heads", "did you mean `heads`? write `heads = {v}`"),
];

/// Sizes written positionally as in PyTorch (`nn.Conv2d(1, 32, 3)`, `nn.Linear(784, 128)`)
/// or Keras (`Conv2D(32, 3)`): the layers, how many positional values, and the
/// form `network!` takes, where `{0}`, `{1}`… are the values as written.
#[rustfmt::skip]
pub const POSITIONAL: &[(&[&str], usize, &str)] = &[
    (&["conv2d", "conv1d"], 2, "{layer}({0}, kernel = {1})"),
    (&["conv2d", "conv1d"], 3, "{layer}({0} -> {1}, kernel = {2})"),
    (&["conv2d", "conv1d"], 4, "{layer}({0} -> {1}, kernel = {2}, stride = {3})"),
    (&["conv2d", "conv1d"], 5, "{layer}({0} -> {1}, kernel = {2}, stride = {3}, padding = {4})"),
    (&["conv2d", "conv1d"], 6, "{layer}({0} -> {1}, kernel = {2}, stride = {3}, padding = {4}, dilation = {5})"),
    (&["dense"], 2, "dense({0} -> {1})"),
    (&["lstm", "gru"], 2, "{layer}({0} -> {1})"),
    (&["max_pool", "avg_pool"], 2, "{layer}({0}, stride = {1})"),
];

/// Words other libraries spell a layer's name with, and `network!`'s word
/// (a class name is lowercased and its underscores dropped before these apply).
const WORDS: &[(&str, &str)] = &[("pooling", "pool"), ("average", "avg"), ("normalization", "norm")];

/// How each built-in is typically written, for "write `dense` (e.g. `dense(128)`)".
#[rustfmt::skip]
const EXAMPLES: &[(&str, &str)] = &[
    ("dense", "dense(128)"),
    ("conv2d", "conv2d(32, kernel = 3)"),
    ("conv1d", "conv1d(32, kernel = 3)"),
    ("max_pool", "max_pool(2)"),
    ("avg_pool", "avg_pool(2)"),
    ("dropout", "dropout(0.25)"),
    ("batch_norm", "batch_norm"),
    ("leaky_relu", "leaky_relu(0.1)"),
    ("lstm", "lstm(64)"),
    ("gru", "gru(64)"),
    ("attention", "attention(heads = 4)"),
    ("embedding", "embedding(10000 -> 128)"),
];

/// The hint for a keyword argument `key = value` that `layer` does not take, if
/// it is another library's habit.
pub fn keyword(layer: &str, key: &str, value: Option<&Value>) -> Option<String> {
    let (_, _, hint) =
        KEYWORDS.iter().find(|(layers, k, _)| *k == key && (layers.is_empty() || layers.contains(&layer)))?;
    let v = value.map_or_else(|| "..".to_string(), show);
    Some(hint.replace("{layer}", layer).replace("{v}", &v))
}

/// Whether `key` is the keyword by which another library gives `layer`'s leading
/// size (`units`, `pool_size`): its own error says how to write it, so the
/// layer's "needs its size" is not said too.
pub fn size_given_by_keyword(layer: &str, args: &[Arg]) -> bool {
    args.iter().any(|a| match a {
        Arg::Keyword { key, .. } => keyword(layer, &key.to_string(), None)
            .is_some_and(|h| h.contains("comes first") || h.contains("come first")),
        _ => false,
    })
}

/// Reports sizes written positionally in PyTorch's or Keras' order
/// (`conv2d(1, 32, 3)`), with the keyword form; `true` when it did.
pub fn positional(call: &Call<'_>, cx: &Ctxt) -> bool {
    let layer = call.entry.name;
    let values: Vec<&Value> = call
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Positional(v) => Some(v),
            _ => None,
        })
        .collect();
    let Some((_, _, form)) =
        POSITIONAL.iter().find(|(layers, n, _)| layers.contains(&layer) && *n == values.len())
    else {
        return false;
    };
    if call.args.iter().any(|a| matches!(a, Arg::Arrow { .. })) {
        return false;
    }
    let mut written = form.replace("{layer}", layer);
    for (i, v) in values.iter().enumerate() {
        written = written.replace(&format!("{{{i}}}"), &show(v));
    }
    // Keep the keywords the user wrote, after the sizes.
    for arg in call.args {
        if let Arg::Keyword { key, value } = arg {
            written.insert_str(written.len() - 1, &format!(", {key} = {}", show(value)));
        }
    }
    let whose = if values.len() == 2 && layer.starts_with("conv") { "Keras'" } else { "PyTorch's" };
    cx.error_at(
        call.args_span(),
        format!("`{layer}` does not take {whose} positional arguments; write `{written}`"),
    );
    true
}

/// A capitalised name written as a layer that is a built-in's class name in
/// Keras or PyTorch (`Dense`, `Conv2D`, `MaxPool2d`, `BatchNormalization`,
/// `ReLU`): the error to report instead of reading it as a nested network. Only
/// without a `=> [..]` after it (and its parenthesised arguments, if any), which
/// a nested network or a layer type of the user's needs: a type of the user's
/// named `Attention` stays usable.
pub fn capitalised_entry(path: &syn::Path, input: ParseStream) -> Option<syn::Error> {
    let [segment] = path.segments.iter().collect::<Vec<_>>()[..] else { return None };
    let name = segment.ident.to_string();
    if !segment.arguments.is_none() || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let fork = input.fork();
    let mut args = None;
    if fork.peek(syn::token::Paren) {
        if let Ok(TokenTree::Group(g)) = fork.parse::<TokenTree>() {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            if let [TokenTree::Literal(l)] = &inner[..] {
                args = Some(l.to_string());
            }
        }
    }
    if fork.peek(syn::Token![=>]) {
        return None;
    }
    let message = capitalised_builtin(&name, args.as_deref())?;
    Some(syn::Error::new(segment.ident.span(), message))
}

/// The message for the capitalised built-in `name` (see [`capitalised_entry`]);
/// `args` is the literal written in parentheses after it (`Dense(10)`), for the example.
pub fn capitalised_builtin(name: &str, args: Option<&str>) -> Option<String> {
    let layer = builtin_named(name)?;
    let takes_one = matches!(layer, "dense" | "dropout" | "max_pool" | "avg_pool" | "lstm" | "gru");
    let example = match (args, EXAMPLES.iter().find(|(l, _)| *l == layer)) {
        (Some(a), _) if takes_one => format!("`{layer}({a})`"),
        (_, Some((_, e))) => format!("`{e}`"),
        (_, None) => format!("`{layer}`"),
    };
    Some(format!(
        "`{name}` is read as a nested network: built-in layers are written in lowercase, e.g. {example}"
    ))
}

/// The built-in layer `name` spells up to case, underscores, a `1d`/`2d` suffix and [`WORDS`].
fn builtin_named(name: &str) -> Option<&'static str> {
    let mut folded = name.to_ascii_lowercase().replace('_', "");
    for (theirs, ours) in WORDS {
        folded = folded.replace(theirs, ours);
    }
    let plain =
        folded.strip_suffix("2d").or_else(|| folded.strip_suffix("1d")).unwrap_or(&folded).to_string();
    let fold = |n: &str| n.replace('_', "");
    LAYERS
        .iter()
        .map(|e| e.name)
        .find(|n| fold(n) == folded)
        .or_else(|| LAYERS.iter().map(|e| e.name).find(|n| fold(n) == plain))
}

/// "; samples are channels-first …" when a rank-3 shape looks channels-last
/// (`[28, 28, 1]`, `[32, 32, 3]`): appended to a convolution's or pool's error.
pub fn channels_last(shape: &Shape) -> String {
    match shape.chw() {
        Some([h, w, c]) if matches!(c, 1 | 3 | 4) && h > c && w > c => format!(
            "; samples are channels-first [channels, height, width], as in PyTorch: [{c}, {h}, {w}], not [{h}, {w}, {c}]"
        ),
        _ => String::new(),
    }
}

/// A value as the user wrote it: `3`, `[3, 5]`, `-0.5`, `relu` (a string's text without its quotes).
fn show(v: &Value) -> String {
    match v {
        Value::Lit(syn::Lit::Str(s)) => s.value(),
        Value::Lit(l) => quote::ToTokens::to_token_stream(l).to_string(),
        Value::Neg(_, l) => format!("-{}", quote::ToTokens::to_token_stream(l)),
        Value::Ident(i) | Value::Param(i) => i.to_string(),
        Value::List(items, _) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
    }
}
