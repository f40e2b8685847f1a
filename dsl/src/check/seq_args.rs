//! Argument resolution of the sequence layers (`conv1d`, `lstm`/`gru`,
//! `attention`): each layer's written arguments to a [`Spec`], with defaults
//! filled in and every mistake reported, like the plain layers' in `args.rs`.

use super::args::{has_kernel, leading_size, misplaced_after_filters, rest, Call, Conv1dSpec, Spec};
use super::hints;
use super::values::{bool_value, padding_value, single_value, size_value};
use crate::ast::{Arg, Value};
use crate::ctxt::Ctxt;
use crate::model::Cell;

/// `conv1d(filters, kernel = .., stride = .., padding = .., dilation = .., bias = ..)`:
/// one size each, since it slides along the steps only.
pub fn conv1d(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let size = leading_size(call, "number of filters", size_value, cx);
    let mut spec = Conv1dSpec {
        expects: None,
        filters: 0,
        kernel: 0,
        stride: 1,
        padding: Some(0),
        dilation: 1,
        bias: true,
        same_span: None,
    };
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in rest(call.args) {
        match arg {
            Arg::Keyword { key, value } if kw.accept(key, cx) => {
                let done = match key.to_string().as_str() {
                    "kernel" => single_value(value, false, cx).map(|v| spec.kernel = v),
                    "stride" => single_value(value, false, cx).map(|v| spec.stride = v),
                    "dilation" => single_value(value, false, cx).map(|v| spec.dilation = v),
                    "bias" => bool_value(value, cx).map(|b| spec.bias = b),
                    _ => match value {
                        Value::Ident(i) if i == "same" => {
                            spec.padding = None;
                            spec.same_span = Some(i.span());
                            Some(())
                        }
                        Value::Ident(i) if i == "valid" => {
                            spec.padding = Some(0);
                            Some(())
                        }
                        // An unknown word, or `"same"` in quotes: said as for `conv2d`.
                        Value::Ident(_) => padding_value(value, cx).map(|_| ()),
                        Value::Lit(syn::Lit::Str(q)) if q.value() == "same" || q.value() == "valid" => {
                            padding_value(value, cx).map(|_| ())
                        }
                        other => single_value(other, true, cx).map(|p| spec.padding = Some(p)),
                    },
                };
                ok &= done.is_some();
            }
            Arg::Keyword { .. } => ok = false,
            other => ok = misplaced_after_filters(call, other, cx),
        }
    }
    ok = ok && size.is_some() && has_kernel(call, &kw, "conv1d(32, kernel = 3)", cx);
    let (expects, filters) = size?;
    spec.expects = expects;
    spec.filters = filters;
    ok.then_some(Spec::Conv1d(spec))
}

/// `lstm(hidden)`, `lstm(in -> hidden)`, and the same for `gru`.
pub fn recurrent(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let cell = if call.name() == "lstm" { Cell::Lstm } else { Cell::Gru };
    let size = leading_size(call, "hidden size", size_value, cx);
    let mut ok = true;
    for arg in rest(call.args) {
        let message = match arg {
            Arg::Keyword { key, value } => {
                let hint =
                    hints::keyword(cell.name(), &key.to_string(), Some(value)).map(|h| format!("; {h}"));
                let name = cell.name();
                format!(
                    "unknown argument `{key}` for `{name}`; it takes no keyword arguments{}",
                    hint.unwrap_or_default()
                )
            }
            _ => format!("`{}` takes one size (or `in -> hidden`); unexpected argument", cell.name()),
        };
        cx.error_at(arg.span(), message);
        ok = false;
    }
    let (expects, hidden) = size?;
    ok.then_some(Spec::Recurrent { cell, expects, hidden })
}

/// `attention(heads = 4)`, `attention(heads = 4, causal)` (or `causal = true`).
pub fn attention(call: &Call<'_>, cx: &Ctxt) -> Option<Spec> {
    let mut heads = None;
    let mut causal = false;
    let mut ok = true;
    let mut kw = call.keywords();
    for arg in call.args {
        match arg {
            Arg::Positional(Value::Ident(i)) if i == "causal" => {
                let key = syn::Ident::new("causal", i.span());
                ok &= kw.accept(&key, cx);
                causal = true;
            }
            Arg::Keyword { key, value } if kw.accept(key, cx) => {
                if key == "heads" {
                    heads = size_value(value, cx);
                    ok &= heads.is_some();
                } else {
                    match bool_value(value, cx) {
                        Some(b) => causal = b,
                        None => ok = false,
                    }
                }
            }
            Arg::Keyword { .. } => ok = false,
            other => {
                cx.error_at(
                    other.span(),
                    "`attention` takes `heads = ..` and optionally `causal`, e.g. `attention(heads = 4, causal)`",
                );
                ok = false;
            }
        }
    }
    if ok && !kw.seen.iter().any(|k| k == "heads") {
        cx.error_at(call.args_span(), "`attention` needs its number of heads, e.g. `attention(heads = 4)`");
        ok = false;
    }
    match (ok, heads) {
        (true, Some(heads)) => Some(Spec::Attention { heads, causal }),
        _ => None,
    }
}
