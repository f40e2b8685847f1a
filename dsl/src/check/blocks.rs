//! Composite layers: `residual` and `parallel` blocks, whose bodies are
//! checked as sequences of their own (`check_sequence`), and networks used as
//! layers (`encoder: Encoder => [..]`).

use super::args::Spec;
use super::check_sequence;
use super::shapes::shape_of;
use crate::ast::{Block, Item, LayerDef};
use crate::ctxt::Ctxt;
use crate::model::{ConvGeometry, Join, LayerKind, Shape, Size};
use proc_macro2::Span;
use syn::ext::IdentExt;

/// A layer (`None` when it cannot be built, the error reported) and the shape after it.
type Shaped = (Option<LayerKind>, Shape);

/// The layers of a block's items; misplaced `input:`/`output:` are errors.
fn block_layers(items: &[Item], cx: &Ctxt) -> Vec<Option<LayerDef>> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Layer(l) => Some(Some(l.clone())),
            Item::Invalid(..) => Some(None),
            Item::Input { key, .. } | Item::Output { key, .. } => {
                cx.error_at(key.span(), format!("`{key}:` belongs to the network, not inside a block"));
                None
            }
        })
        .collect()
}

/// Whether every layer is `flatten` (which emits no code).
fn only_flatten(layers: &[Option<LayerDef>]) -> bool {
    layers.iter().all(|l| l.as_ref().is_some_and(|l| l.kind == "flatten" && l.nested.is_none()))
}

/// `residual { .. }` and `residual(projection) { .. }`.
pub fn residual(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Residual { projection } = spec else {
        unreachable!("the layer table pairs each resolver with its shape rule")
    };
    let name = def.name.as_ref().map_or_else(|| "`residual`".to_string(), |n| format!("`{}`", n.unraw()));
    let Some(Block::Layers(items, span)) = &def.block else {
        cx.error_spanned_by(
            &def.tokens,
            "`residual` needs its body in braces, e.g. `residual { dense(64), relu }`",
        );
        return (None, Shape::Unknown);
    };
    let layers = block_layers(items, cx);
    if layers.is_empty() {
        cx.error_at(*span, format!("the body of {name} is empty; a residual block needs at least one layer"));
        return (None, Shape::Unknown);
    }
    if only_flatten(&layers) {
        cx.error_at(*span, format!("the body of {name} needs at least one layer besides `flatten`"));
        return (None, Shape::Unknown);
    }
    let (body, out, _) = check_sequence(&layers, shape.clone(), producer.to_string(), cx);
    if !shape.is_known() || !out.is_known() {
        return (None, out);
    }
    if !projection {
        if shape != &out {
            cx.error_at(
                *span,
                format!(
                    "the body of {name} turns {shape} into {out}, but a residual block must end in its input's shape; \
                     use `residual(projection)` to add a learned projection on the skip path"
                ),
            );
            return (None, out);
        }
        return (Some(LayerKind::Residual { body, projection: None }), out);
    }
    let projection = projection_between(shape, &out);
    match projection {
        Some(p) => (Some(LayerKind::Residual { body, projection: Some(Box::new(p)) }), out),
        None => {
            let why = if shape.rank() == Some(2) {
                "the body of a rank-2 block must end in [steps, features] with its input's steps (the projection is a dense layer at every step)"
            } else {
                "the body of {name} must keep the rank, and shrink height and width by a whole stride"
            };
            let why = why.replace("{name}", &name);
            cx.error_at(*span, format!("no projection takes {shape} to {out}: {why}"));
            (None, out)
        }
    }
}

/// The projection from `shape` to `out` on a residual block's skip path: a
/// dense layer (at every step on rank 2), or a 1×1 convolution whose stride
/// brings the spatial size down.
fn projection_between(shape: &Shape, out: &Shape) -> Option<LayerKind> {
    if let (Some([steps, inputs]), Some([out_steps, outputs])) =
        (shape.steps_features(), out.steps_features())
    {
        return (steps == out_steps).then(|| LayerKind::PerStep {
            steps,
            inputs,
            outputs,
            inner: Box::new(LayerKind::Dense {
                inputs: Size::Lit(inputs),
                outputs: Size::Lit(outputs),
                bias: true,
            }),
        });
    }
    match (shape.features(), out.features(), shape.chw(), out.chw()) {
        (Some(inputs), Some(outputs), _, _) => Some(LayerKind::Dense { inputs, outputs, bias: true }),
        (_, _, Some([c, h, w]), Some([c2, h2, w2])) => {
            match (projection_stride(h, h2), projection_stride(w, w2)) {
                (Some(sh), Some(sw)) => Some(LayerKind::Conv2d {
                    geometry: ConvGeometry {
                        in_channels: c,
                        height: h,
                        width: w,
                        out_channels: c2,
                        kernel: [1, 1],
                        stride: [sh, sw],
                        padding: [0, 0],
                        dilation: [1, 1],
                        out_height: h2,
                        out_width: w2,
                    },
                    bias: true,
                    same: false,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The smallest stride `s` of a 1×1 convolution that takes `from` rows to
/// `to` (`(from - 1) / s + 1 == to`), in closed form: the sizes may be as
/// large as `usize`, so a search over strides could run for hours.
///
/// With `n = from - 1` and `q = to - 1`, `n / s == q` holds exactly when
/// `n / (q + 1) < s <= n / q`; the smallest such `s` is `n / (q + 1) + 1`.
fn projection_stride(from: usize, to: usize) -> Option<usize> {
    if from == 0 || to == 0 {
        return None;
    }
    let (n, q) = (from - 1, to - 1);
    if q == 0 {
        // Any stride past `n` leaves one row; the search took the first, `from`.
        return Some(from);
    }
    let s = n / to + 1;
    (s <= n / q).then_some(s)
}

/// `parallel(concat | add) { branch { .. } branch { .. } }`.
pub fn parallel(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Parallel(join) = spec else {
        unreachable!("the layer table pairs each resolver with its shape rule")
    };
    let name = def.name.as_ref().map_or_else(|| "`parallel`".to_string(), |n| format!("`{}`", n.unraw()));
    let Some(Block::Branches(branches, span)) = &def.block else {
        cx.error_spanned_by(&def.tokens, "`parallel` needs its branches in braces, e.g. `parallel(concat) { branch { dense(8) } branch { dense(4) } }`");
        return (None, Shape::Unknown);
    };
    if branches.len() < 2 {
        cx.error_at(*span, format!("{name} needs at least two `branch {{ .. }}`"));
        return (None, Shape::Unknown);
    }
    let mut checked = Vec::new();
    for (items, branch_span) in branches {
        let layers = block_layers(items, cx);
        if layers.is_empty() {
            cx.error_at(*branch_span, "an empty branch; it needs at least one layer");
            return (None, Shape::Unknown);
        }
        if only_flatten(&layers) {
            // `flatten` emits no code, so such a branch would have no output of its own.
            cx.error_at(*branch_span, "a branch needs at least one layer besides `flatten`");
            return (None, Shape::Unknown);
        }
        checked.push(check_sequence(&layers, shape.clone(), producer.to_string(), cx));
    }
    let outs: Vec<&Shape> = checked.iter().map(|(_, out, _)| out).collect();
    if outs.iter().any(|s| matches!(s, Shape::Unknown)) {
        return (None, Shape::Unknown);
    }
    let out = joined_shape(join, &outs, &name, *span, cx);
    match out {
        Some(out) => {
            let branches = checked.into_iter().map(|(layers, _, _)| layers).collect();
            (Some(LayerKind::Parallel { join, branches }), out)
        }
        None => (None, Shape::Unknown),
    }
}

/// The shape of the joined branch outputs `outs`, or the error saying why they do not join.
fn joined_shape(join: Join, outs: &[&Shape], name: &str, span: Span, cx: &Ctxt) -> Option<Shape> {
    let listing =
        outs.iter().enumerate().map(|(b, s)| format!("branch {b} gives {s}")).collect::<Vec<_>>().join(", ");
    match join {
        Join::Add if outs.iter().all(|s| *s == outs[0]) => Some(outs[0].clone()),
        Join::Add => {
            cx.error_at(
                span,
                format!(
                    "the branches of {name} cannot be added: {listing}; `parallel(add)` needs equal shapes"
                ),
            );
            None
        }
        Join::Concat if outs.iter().any(|s| matches!(s, Shape::Generic(_))) => {
            cx.error_at(
                span,
                format!(
                    "the branches of {name} cannot be concatenated: {listing}; the joined size would be a sum \
                     involving a size parameter, which a type cannot hold on stable Rust; use `parallel(add)` \
                     or sizes that are numbers"
                ),
            );
            None
        }
        Join::Concat if outs.iter().any(|s| s.rank() == Some(2)) => {
            cx.error_at(
                span,
                format!(
                    "the branches of {name} cannot be concatenated: {listing}; `parallel(concat)` does not join \
                     rank-2 [steps, features] shapes (stacking a sample's values would join the steps, not the \
                     features); use `parallel(add)`, or `flatten` each branch first"
                ),
            );
            None
        }
        Join::Concat => {
            let dims: Vec<&Vec<usize>> = outs
                .iter()
                .filter_map(|s| match s {
                    Shape::Known(d) => Some(d),
                    _ => None,
                })
                .collect();
            let rank = dims[0].len();
            if dims.iter().all(|d| d.len() == rank && d[1..] == dims[0][1..]) {
                // The channels (or features) add up; a sum or a size past `usize` is refused.
                let channels = dims.iter().try_fold(0usize, |sum, d| sum.checked_add(d[0]));
                let joined = channels.map(|c| Shape::Known([&[c], &dims[0][1..]].concat()));
                let joined = joined.filter(|j| j.size_checked().is_some());
                if joined.is_none() {
                    cx.error_at(
                        span,
                        format!(
                            "the branches of {name} cannot be concatenated: {listing}; the joined shape has more \
                             elements than fit in usize"
                        ),
                    );
                }
                joined
            } else {
                let along = if rank == 3 {
                    "they must agree in height and width"
                } else {
                    "they must have the same rank"
                };
                cx.error_at(
                    span,
                    format!("the branches of {name} cannot be concatenated: {listing}; {along}"),
                );
                None
            }
        }
    }
}

/// A network or a layer of the user's (`CustomLayer`) used as a layer. Its
/// shapes live in another macro invocation or in Rust code, so the output
/// shape is declared with `=>` and the compiler checks both ends (the
/// `CustomLayer<T, IN, OUT>` bound of `expand::layers::custom_wrappers`).
pub fn nested(path: &syn::Path, shape: &Shape, def: &LayerDef, cx: &Ctxt) -> Shaped {
    let Some(assert) = &def.assert else {
        let name = def.name.as_ref().map_or_else(|| "net".to_string(), |n| n.unraw().to_string());
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "a nested network or a layer of your own needs its output shape: write `{name}: {} => [..]`",
                def.kind
            ),
        );
        return (None, Shape::Unknown);
    };
    match shape_of(assert, cx) {
        Some(out) if out.rank().is_some_and(|r| (1..=3).contains(&r)) => (
            shape.is_known().then(|| LayerKind::Nested { path: path.clone(), args: def.ctor_args.clone() }),
            out,
        ),
        Some(out) => {
            cx.error_at(
                assert.span,
                format!("a shape is `[features]`, `[steps, features]` or `[channels, height, width]`, found {out}"),
            );
            (None, Shape::Unknown)
        }
        None => (None, Shape::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::projection_stride;

    /// The closed form gives what the former search over every stride gave.
    #[test]
    fn projection_stride_agrees_with_the_search() {
        let search = |from: usize, to: usize| (1..=from).find(|s| (from - 1) / s + 1 == to);
        for from in 0..400 {
            for to in 0..=from + 2 {
                assert_eq!(projection_stride(from, to), search(from, to), "{from} -> {to}");
            }
        }
        assert_eq!(projection_stride(usize::MAX, 1), Some(usize::MAX));
        assert_eq!(projection_stride(usize::MAX, usize::MAX), Some(1));
        assert_eq!(projection_stride(1_000_000_000_000, 999_999_999_998), None);
    }
}
