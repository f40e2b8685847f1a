//! Argument values: sizes, `[height, width]` pairs, numbers, booleans and
//! padding, each checked and reported where it was written.

use super::args::Padding;
use super::shapes::generic_in_arithmetic;
use crate::ast::Value;
use crate::ctxt::Ctxt;
use crate::model::Size;
use proc_macro2::Span;
use syn::Lit;

/// `p`, `[ph, pw]`, `same` or `valid`, and where `same` was written (for its stride error).
pub fn padding_value(v: &Value, cx: &Ctxt) -> Option<(Padding, Option<Span>)> {
    match v {
        Value::Ident(i) if i == "same" => Some((Padding::Same, Some(i.span()))),
        Value::Ident(i) if i == "valid" => Some((Padding::Zero([0, 0]), None)),
        Value::Ident(i) => {
            cx.error_at(i.span(), format!("unknown padding `{i}`; expected a size, `same` or `valid`"));
            None
        }
        Value::Lit(Lit::Int(_)) | Value::List(..) => {
            pair_value(v, true, cx).map(|p| (Padding::Zero(p), None))
        }
        Value::Lit(Lit::Str(s)) if s.value() == "same" || s.value() == "valid" => {
            cx.error_at(s.span(), format!("write `padding = {}` without quotes", s.value()));
            None
        }
        other => {
            cx.error_spanned_by(
                other.tokens(),
                "expected a padding: a size (0 or more), `[height, width]`, `same` or `valid`",
            );
            None
        }
    }
}

/// `k` or `[kh, kw]`; with `zero_ok`, zero is allowed (padding).
pub fn pair_value(v: &Value, zero_ok: bool, cx: &Ctxt) -> Option<[usize; 2]> {
    let one = |v: &Value| if zero_ok { count_value(v, cx) } else { size_value(v, cx) };
    match v {
        Value::List(items, span) => match items.as_slice() {
            [a, b] => Some([one(a)?, one(b)?]),
            _ => {
                cx.error_at(*span, "expected one size or two, `[height, width]`");
                None
            }
        },
        other => one(other).map(|n| [n, n]),
    }
}

/// One size (a layer over steps has no `[height, width]`); with `zero_ok`, zero is allowed (padding).
pub fn single_value(v: &Value, zero_ok: bool, cx: &Ctxt) -> Option<usize> {
    match v {
        Value::List(_, span) => {
            cx.error_at(*span, "expected one size: a layer over steps slides along one axis");
            None
        }
        other if zero_ok => count_value(other, cx),
        other => size_value(other, cx),
    }
}

pub fn size_value(v: &Value, cx: &Ctxt) -> Option<usize> {
    match count_value(v, cx)? {
        0 => {
            cx.error_at(v.span(), "a size must be at least 1");
            None
        }
        n => Some(n),
    }
}

/// A feature count: a positive number or a size parameter.
pub fn feature_value(v: &Value, cx: &Ctxt) -> Option<Size> {
    match v {
        Value::Param(p) => Some(Size::Param(p.clone())),
        other => size_value(other, cx).map(Size::Lit),
    }
}

/// A whole number, zero included.
fn count_value(v: &Value, cx: &Ctxt) -> Option<usize> {
    match v {
        Value::Lit(Lit::Int(i)) => match i.base10_parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                cx.error_at(i.span(), format!("size `{i}` is too large"));
                None
            }
        },
        Value::Neg(minus, lit) => {
            cx.error_spanned_by(quote::quote!(#minus #lit), "a size must be a positive whole number");
            None
        }
        Value::Param(p) => {
            cx.error_at(p.span(), generic_in_arithmetic(p, "here"));
            None
        }
        other => {
            cx.error_at(other.span(), "expected a size (a positive whole number)");
            None
        }
    }
}

pub fn bool_value(v: &Value, cx: &Ctxt) -> Option<bool> {
    match v {
        Value::Lit(Lit::Bool(b)) => Some(b.value),
        other => {
            cx.error_at(other.span(), "expected `true` or `false`");
            None
        }
    }
}

pub fn float_value(v: &Value, cx: &Ctxt) -> Option<f64> {
    let (negative, lit) = match v {
        Value::Lit(l) => (false, l),
        Value::Neg(_, l) => (true, l),
        other => {
            cx.error_at(other.span(), "expected a number, e.g. `0.1`");
            return None;
        }
    };
    let parsed = match lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(x) if x.is_finite() => Some(if negative { -x } else { x }),
        _ => {
            cx.error_spanned_by(v.tokens(), "expected a finite number, e.g. `0.1`");
            None
        }
    }
}
