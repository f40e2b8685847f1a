//! Shape arithmetic: the shape rules of the layer table (each checks the
//! incoming shape against a resolved layer and computes the outgoing one),
//! written shapes, `=> [..]` assertions, and how messages name layers.
//! Every size is computed with checked operations, so the generated types
//! only ever see literal sizes.

use super::args::{ConvSpec, Padding, Spec};
use super::{hints, sequences, table};
use crate::ast::{LayerDef, ShapeLit};
use crate::ctxt::Ctxt;
use crate::model::{Activation, ConvGeometry, LayerKind, PoolGeometry, Shape, Size};
use syn::ext::IdentExt;

/// What a shape rule gives: the layer (`None` when it cannot be built, the
/// error reported) and the shape after it.
type Shaped = (Option<LayerKind>, Shape);

/// Why a rule got another rule's spec: never, since each table entry pairs its resolver with its rule.
const PAIRED: &str = "the layer table pairs each resolver with its shape rule";

/// `[C, H, W]` of the incoming shape, or an error naming `what` needs it.
fn rank3(what: &str, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Option<[usize; 3]> {
    if shape.is_known() && shape.chw().is_none() {
        let (also, hint) = match (what, shape.rank()) {
            ("conv2d", Some(2)) => ("", "; over the steps of a sequence [steps, features], use `conv1d`"),
            ("conv2d", _) => ("", ""),
            _ => (" or a rank-2 input [steps, features]", ""),
        };
        cx.error_spanned_by(
            &def.tokens,
            format!("`{what}` needs a rank-3 input [C, H, W]{also}, but {producer} gives {shape}{hint}"),
        );
    }
    shape.chw()
}

/// `dense`: a rank-1 input of the declared size, if one is declared.
pub fn dense(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    if let Some(steps_features) = shape.steps_features() {
        return sequences::dense(spec, steps_features, shape, def, producer, cx);
    }
    let Spec::Dense { expects, outputs, bias } = spec else { unreachable!("{PAIRED}") };
    let given = shape.features();
    if shape.is_known() {
        match (&given, &expects) {
            (None, _) => cx.error_spanned_by(
                &def.tokens,
                format!("`dense` needs a rank-1 input [features], but {producer} gives {shape}; add `flatten` before it"),
            ),
            (Some(g), Some((expected, span))) if g != expected => {
                let kind = LayerKind::Dense { inputs: expected.clone(), outputs: outputs.clone(), bias };
                cx.error_at(*span, format!("{} expects [{expected}] but {producer} gives {shape}", describe(def, &kind.to_string())));
            }
            _ => {}
        }
    }
    // After a mismatch, carry on from the declared sizes so later layers are still checked.
    let out = match &outputs {
        Size::Lit(n) => Shape::Known(vec![*n]),
        Size::Param(p) => Shape::Generic(p.clone()),
    };
    let kind = expects.map(|(e, _)| e).or(given).map(|inputs| LayerKind::Dense { inputs, outputs, bias });
    (kind, out)
}

/// `conv2d`: a rank-3 input with the declared channels, if declared.
pub fn conv2d(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Conv2d(c) = spec else { unreachable!("{PAIRED}") };
    let Some([channels, h, w]) = rank3("conv2d", shape, def, producer, cx) else {
        // Carry on with the declared channels; the spatial size is unknown.
        return (None, Shape::Unknown);
    };
    if let Some((expected, span)) = c.expects {
        if expected != channels {
            let plural = if expected == 1 { "" } else { "s" };
            let msg = format!(
                "{} expects {expected} channel{plural} but {producer} gives {shape}{}",
                describe(def, "conv2d"),
                hints::channels_last(shape)
            );
            cx.error_at(span, msg);
            if !hints::channels_last(shape).is_empty() {
                // One mistake, the layout: the kernel that does not fit the width is not a second one.
                return (None, Shape::Unknown);
            }
        }
    }
    conv_geometry(&c, [channels, h, w], def, producer, shape, cx)
}

/// `max_pool` and `avg_pool`: a window that fits the rank-3 input.
pub fn pool(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    if let Some(steps_features) = shape.steps_features() {
        return sequences::pool(spec, steps_features, shape, def, producer, cx);
    }
    let Spec::Pool { max, kernel, stride } = spec else { unreachable!("{PAIRED}") };
    let name = if max { "max_pool" } else { "avg_pool" };
    let Some([channels, h, w]) = rank3(name, shape, def, producer, cx) else { return (None, Shape::Unknown) };
    let stride = stride.unwrap_or(kernel);
    if kernel[0] > h || kernel[1] > w {
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "`{name}` window {}×{} does not fit the input {shape} from {producer}{}",
                kernel[0],
                kernel[1],
                hints::channels_last(shape)
            ),
        );
        return (None, Shape::Unknown);
    }
    let g = PoolGeometry {
        channels,
        height: h,
        width: w,
        kernel,
        stride,
        out_height: (h - kernel[0]) / stride[0] + 1,
        out_width: (w - kernel[1]) / stride[1] + 1,
    };
    let out = Shape::Known(vec![channels, g.out_height, g.out_width]);
    (Some(if max { LayerKind::MaxPool(g) } else { LayerKind::AvgPool(g) }), out)
}

/// `global_avg_pool`: `[C, H, W]` to `[C]` (or `[T, F]` to `[F]`).
pub fn global_avg_pool(_: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    if let Some(steps_features) = shape.steps_features() {
        return sequences::global_avg_pool(steps_features);
    }
    match rank3("global_avg_pool", shape, def, producer, cx) {
        Some([c, h, w]) => match h.checked_mul(w) {
            Some(spatial) => (Some(LayerKind::GlobalAvgPool { channels: c, spatial }), Shape::Known(vec![c])),
            None => overflow(def, cx),
        },
        None => (None, Shape::Unknown),
    }
}

/// `flatten`: `[C, H, W]` to `[C·H·W]`, `[T, F]` to `[T·F]`.
pub fn flatten(_: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    if let Some([steps, features]) = shape.steps_features() {
        return match steps.checked_mul(features) {
            Some(size) => (Some(LayerKind::Flatten), Shape::Known(vec![size])),
            None => overflow(def, cx),
        };
    }
    match rank3("flatten", shape, def, producer, cx) {
        Some([c, h, w]) => match c.checked_mul(h).and_then(|ch| ch.checked_mul(w)) {
            Some(size) => (Some(LayerKind::Flatten), Shape::Known(vec![size])),
            None => overflow(def, cx),
        },
        None => (None, Shape::Unknown),
    }
}

/// A size past `usize`: unreachable while every shape's size is checked where
/// it is made, but reported rather than trusted.
fn overflow(def: &LayerDef, cx: &Ctxt) -> Shaped {
    cx.error_spanned_by(&def.tokens, "the layer's sizes overflow usize");
    (None, Shape::Unknown)
}

/// `batch_norm`: normalises over the first size (channels or features); not on rank 2.
pub fn batch_norm(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::BatchNorm { eps, momentum } = spec else { unreachable!("{PAIRED}") };
    if shape.rank() == Some(2) {
        let hint = "normalise each step over its features with `layer_norm`";
        sequences::not_on_rank2("batch_norm", hint, shape, def, producer, cx);
        return (None, shape.clone());
    }
    match shape.dims().into_iter().next() {
        Some(channels) => (Some(LayerKind::BatchNorm { channels, eps, momentum }), shape.clone()),
        None => (None, Shape::Unknown),
    }
}

/// `layer_norm`: over the whole sample; on `[T, F]`, over each step's features.
pub fn layer_norm(spec: Spec, shape: &Shape, _: &LayerDef, _: &str, _: &Ctxt) -> Shaped {
    let Spec::LayerNorm { eps } = spec else { unreachable!("{PAIRED}") };
    if let Some(steps_features) = shape.steps_features() {
        return sequences::per_step(LayerKind::LayerNorm { eps }, steps_features, shape);
    }
    (shape.is_known().then_some(LayerKind::LayerNorm { eps }), shape.clone())
}

/// `dropout`: any shape.
pub fn dropout(spec: Spec, shape: &Shape, _: &LayerDef, _: &str, _: &Ctxt) -> Shaped {
    let Spec::Dropout { p } = spec else { unreachable!("{PAIRED}") };
    (Some(LayerKind::Dropout { p }), shape.clone())
}

/// Element-wise activations: any shape; `softmax` and `log_softmax` on `[T, F]` are over each step's features.
pub fn activation(spec: Spec, shape: &Shape, _: &LayerDef, _: &str, _: &Ctxt) -> Shaped {
    let Spec::Activation(a) = spec else { unreachable!("{PAIRED}") };
    if let (Activation::Softmax | Activation::LogSoftmax, Some(steps_features)) = (a, shape.steps_features())
    {
        return sequences::softmax(a, steps_features, shape);
    }
    (Some(LayerKind::Activation(a)), shape.clone())
}

/// PyTorch's output size, floor((H + 2p − d(k−1) − 1)/s) + 1, with `same`
/// padding and every overflow checked.
fn conv_geometry(
    c: &ConvSpec,
    [channels, h, w]: [usize; 3],
    def: &LayerDef,
    producer: &str,
    shape: &Shape,
    cx: &Ctxt,
) -> Shaped {
    let span_of = |dim: usize| c.dilation[dim].checked_mul(c.kernel[dim] - 1).and_then(|v| v.checked_add(1));
    let (Some(span_h), Some(span_w)) = (span_of(0), span_of(1)) else {
        cx.error_spanned_by(&def.tokens, "kernel size times dilation overflows");
        return (None, Shape::Unknown);
    };
    let (padding, same) = match c.padding {
        Padding::Same => {
            if c.stride != [1, 1] {
                let message = "`padding = same` needs stride 1, as in PyTorch";
                match c.same_span {
                    Some(span) => cx.error_at(span, message),
                    None => cx.error_spanned_by(&def.tokens, message),
                }
                return (None, Shape::Unknown);
            }
            // PyTorch pads the extra row/column of an even kernel at the bottom/right.
            ([(span_h - 1) / 2, (span_w - 1) / 2], true)
        }
        Padding::Zero(p) => (p, false),
    };
    let padded = |size: usize, dim: usize| -> Option<usize> {
        match c.padding {
            Padding::Same => size.checked_add(if dim == 0 { span_h - 1 } else { span_w - 1 }),
            Padding::Zero(p) => size.checked_add(p[dim].checked_mul(2)?),
        }
    };
    let (Some(ph), Some(pw)) = (padded(h, 0), padded(w, 1)) else {
        cx.error_spanned_by(
            &def.tokens,
            "the padded input size overflows usize: the kernel or padding is too large",
        );
        return (None, Shape::Unknown);
    };
    if span_h > ph || span_w > pw {
        let dilated =
            if c.dilation != [1, 1] { format!(" (dilated to {span_h}×{span_w})") } else { String::new() };
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{} kernel {}×{}{dilated} does not fit the padded input {ph}×{pw}: {producer} gives {shape}{}",
                describe(def, "conv2d"),
                c.kernel[0],
                c.kernel[1],
                hints::channels_last(shape)
            ),
        );
        return (None, Shape::Unknown);
    }
    let geometry = ConvGeometry {
        in_channels: channels,
        height: h,
        width: w,
        out_channels: c.filters,
        kernel: c.kernel,
        stride: c.stride,
        padding,
        dilation: c.dilation,
        out_height: (ph - span_h) / c.stride[0] + 1,
        out_width: (pw - span_w) / c.stride[1] + 1,
    };
    let out = Shape::Known(vec![c.filters, geometry.out_height, geometry.out_width]);
    if out.size_checked().is_none() || geometry.patch_checked().is_none() {
        cx.error_spanned_by(&def.tokens, "the layer's sizes overflow usize");
        return (None, Shape::Unknown);
    }
    (Some(LayerKind::Conv2d { geometry, bias: c.bias, same }), out)
}

/// The `input:` shape: rank 1, 2 or 3, its size within `usize`.
pub fn input_shape(shape: &ShapeLit, cx: &Ctxt) -> Shape {
    match shape_of(shape, cx) {
        Some(s) if matches!(s.rank(), Some(1..=3)) => {
            if s.size_checked().is_none() {
                cx.error_at(shape.span, format!("the input shape {s} has more elements than fit in usize"));
                return Shape::Unknown;
            }
            s
        }
        Some(s) => {
            cx.error_at(
                shape.span,
                format!(
                    "an input is `[features]`, `[steps, features]` or `[channels, height, width]`, found {s}"
                ),
            );
            Shape::Unknown
        }
        None => Shape::Unknown,
    }
}

/// A written shape as a [`Shape`], reporting zero sizes and size parameters
/// anywhere but alone in a rank-1 shape.
pub fn shape_of(shape: &ShapeLit, cx: &Ctxt) -> Option<Shape> {
    let mut dims = Vec::new();
    for d in &shape.dims {
        match &d.size {
            Size::Lit(0) => {
                cx.error_at(d.span, "a size must be at least 1");
                return None;
            }
            Size::Lit(v) => dims.push(*v),
            Size::Param(p) if shape.dims.len() == 1 => return Some(Shape::Generic(p.clone())),
            Size::Param(p) => {
                cx.error_at(d.span, generic_in_arithmetic(p, "in a shape of several sizes"));
                return None;
            }
        }
    }
    Some(Shape::Known(dims))
}

/// Why a size parameter cannot stand where the size of something is computed from it.
pub fn generic_in_arithmetic(p: &syn::Ident, here: &str) -> String {
    format!(
        "the size parameter `{p}` cannot be used {here}: it may only stand alone as the features of a rank-1 \
         shape (`[{p}]`, `dense({p})`), because every other size computed from it (such as C·H·W values per \
         sample) would be arithmetic on a const parameter in a type, which stable Rust does not allow"
    )
}

/// A `=> [..]` assertion after a layer.
pub fn check_assert(def: &LayerDef, shape: &Shape, producer: &str, cx: &Ctxt) {
    let Some(assert) = &def.assert else { return };
    if def.nested.is_some() {
        return; // For a nested network, `=>` declares the output shape.
    }
    let Some(expected) = shape_of(assert, cx) else { return };
    if shape.is_known() && *shape != expected {
        let who = match &def.name {
            Some(n) => format!("`{}`", n.unraw()),
            None if table::keeps_shape(&def.kind.to_string()) => {
                format!("`{}` after {producer}", def.kind)
            }
            None => producer.to_string(),
        };
        cx.error_at(assert.span, format!("shape assertion expects {expected} but {who} gives {shape}"));
    }
}

/// How an erroring layer is named in a message: `` `head: dense(128 -> 10)` ``.
pub fn describe(def: &LayerDef, kind: &str) -> String {
    match &def.name {
        Some(n) => format!("`{}: {kind}`", n.unraw()),
        None => format!("`{kind}`"),
    }
}

/// How the layer that produced a shape is named: `` `fc2` `` or `` `dense(784 -> 256)` at position 2 ``.
pub fn describe_producer(def: &LayerDef, kind: Option<&LayerKind>, position: usize) -> String {
    match (&def.name, kind) {
        (Some(n), _) => format!("`{}`", n.unraw()),
        (None, Some(kind)) => format!("`{kind}` at position {position}"),
        (None, None) => format!("`{}` at position {position}", def.kind),
    }
}
