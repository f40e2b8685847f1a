//! Token inputs: `input: tokens[T]` declares `T` token ids per sample, and
//! `embedding(V -> D)` is the one layer that takes them, giving `[T, D]`.

use super::args::Spec;
use super::shapes::{self, describe};
use crate::ast::{LayerDef, ShapeLit};
use crate::ctxt::Ctxt;
use crate::model::{LayerKind, Shape, Size};

/// `tokens[T]`: one literal length.
pub fn input(shape: &ShapeLit, cx: &Ctxt) -> Shape {
    match shape.dims.as_slice() {
        [d] => match &d.size {
            Size::Lit(0) => {
                cx.error_at(d.span, "a size must be at least 1");
                Shape::Unknown
            }
            Size::Lit(t) => Shape::Tokens(*t),
            Size::Param(p) => {
                cx.error_at(d.span, shapes::generic_in_arithmetic(p, "as the length of a token input"));
                Shape::Unknown
            }
        },
        _ => {
            cx.error_at(shape.span, "a token input is `tokens[T]`: the number of token ids per sample");
            Shape::Unknown
        }
    }
}

/// Whether `def` may take `shape`: token ids go into `embedding` and nothing else.
pub fn check_taker(def: &LayerDef, shape: &Shape, producer: &str, cx: &Ctxt) -> bool {
    let ok = !matches!(shape, Shape::Tokens(_)) || (def.nested.is_none() && def.kind == "embedding");
    if !ok {
        let what = def.nested.as_ref().map_or_else(|| def.kind.to_string(), |_| "a nested network".into());
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{} cannot take token ids ({producer} gives {shape}); put `embedding(V -> D)` first to turn them into vectors",
                describe(def, &what)
            ),
        );
    }
    ok
}

/// `embedding(V -> D)` on `tokens[T]`: `[T, D]`.
pub fn embedding(
    spec: Spec,
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> (Option<LayerKind>, Shape) {
    let Spec::Embedding { vocab, dim } = spec else {
        unreachable!("the layer table pairs each resolver with its shape rule")
    };
    let kind = format!("embedding({vocab} -> {dim})");
    match shape {
        Shape::Tokens(steps) if steps.checked_mul(dim).is_some() && vocab.checked_mul(dim).is_some() => {
            (Some(LayerKind::Embedding { steps: *steps, vocab, dim }), Shape::Known(vec![*steps, dim]))
        }
        Shape::Tokens(_) => {
            cx.error_spanned_by(&def.tokens, "the layer's sizes overflow usize");
            (None, Shape::Unknown)
        }
        Shape::Unknown => (None, Shape::Unknown),
        _ => {
            cx.error_spanned_by(
                &def.tokens,
                format!(
                    "{} takes token ids, but {producer} gives {shape}; declare the input as `input: tokens[T]`",
                    describe(def, &kind)
                ),
            );
            (None, Shape::Unknown)
        }
    }
}
