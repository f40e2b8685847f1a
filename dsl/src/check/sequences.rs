//! Shape rules on rank 2, `[steps, features]` (one sample row-major, steps
//! first): the sequence layers (`conv1d`, `lstm`, `gru`, `last`, `attention`,
//! `positional`) and the rank-2 forms of the plain layers (`dense` and
//! `layer_norm` at every step, pooling over the steps). Every size is computed
//! with checked operations.

use super::args::{Conv1dSpec, Spec};
use super::shapes::{describe, generic_in_arithmetic};
use crate::ast::LayerDef;
use crate::ctxt::Ctxt;
use crate::model::{Activation, Conv1dGeometry, LayerKind, Pool1dGeometry, Shape, Size};

/// What a shape rule gives: the layer (`None` when it cannot be built, the
/// error reported) and the shape after it.
type Shaped = (Option<LayerKind>, Shape);

const PAIRED: &str = "the layer table pairs each resolver with its shape rule";

/// `[steps, features]` of the incoming shape, or an error naming the shape `what` got.
fn rank2(what: &str, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Option<[usize; 2]> {
    if shape.is_known() && shape.steps_features().is_none() {
        let fix = if shape.rank() == Some(3) {
            "an image is not a sequence: declare the input as `[steps, features]` (e.g. `[28, 28]`, rows of pixels)"
        } else {
            "sequence layers go before the layer that ends the steps (`last`, `global_avg_pool`, \
             `flatten`), in a network whose `input:` is `[steps, features]`"
        };
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{} needs a rank-2 input [steps, features], but {producer} gives {shape}; {fix}",
                describe(def, what)
            ),
        );
    }
    shape.steps_features()
}

/// `[steps, features]` as the output of `what`, or an overflow error.
fn shape2(what: &str, steps: usize, features: usize, def: &LayerDef, cx: &Ctxt) -> Option<Shape> {
    match steps.checked_mul(features) {
        Some(_) => Some(Shape::Known(vec![steps, features])),
        None => {
            cx.error_spanned_by(
                &def.tokens,
                format!(
                    "{} would give [{steps}, {features}]: the layer's sizes overflow usize",
                    describe(def, what)
                ),
            );
            None
        }
    }
}

/// `dense(H)` on `[T, F]`: the same dense layer at every step, `[T, H]`.
pub fn dense(
    spec: Spec,
    [steps, features]: [usize; 2],
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> Shaped {
    let Spec::Dense { expects, outputs, bias } = spec else { unreachable!("{PAIRED}") };
    let written = |s: &Size| match s {
        Size::Lit(n) => Some(*n),
        Size::Param(p) => {
            cx.error_spanned_by(&def.tokens, generic_in_arithmetic(p, "in a `dense` on a rank-2 input"));
            None
        }
    };
    let inputs = match &expects {
        Some((e, span)) => {
            let e = written(e);
            if let Some(e) = e.filter(|e| *e != features) {
                let kind = format!("dense({e} -> {outputs}{})", if bias { "" } else { ", bias = false" });
                cx.error_at(
                    *span,
                    format!(
                        "{} expects {e} features at each step but {producer} gives {shape}",
                        describe(def, &kind)
                    ),
                );
            }
            e
        }
        None => Some(features),
    };
    let Some(outputs) = written(&outputs) else { return (None, Shape::Unknown) };
    let Some(out) = shape2("dense", steps, outputs, def, cx) else { return (None, Shape::Unknown) };
    let kind = inputs.map(|inputs| LayerKind::PerStep {
        steps,
        inputs,
        outputs,
        inner: Box::new(LayerKind::Dense { inputs: Size::Lit(inputs), outputs: Size::Lit(outputs), bias }),
    });
    (kind, out)
}

/// `layer_norm` (or `softmax`) on `[T, F]`: over each step's features.
pub fn per_step(inner: LayerKind, [steps, features]: [usize; 2], shape: &Shape) -> Shaped {
    let kind = LayerKind::PerStep { steps, inputs: features, outputs: features, inner: Box::new(inner) };
    (Some(kind), shape.clone())
}

/// `softmax` (or `log_softmax`, the activation `a`) on `[T, F]`: over each step's features.
pub fn softmax(a: Activation, [steps, features]: [usize; 2], shape: &Shape) -> Shaped {
    per_step(LayerKind::Activation(a), [steps, features], shape)
}

/// `max_pool(k)` and `avg_pool(k)` on `[T, F]`: over the steps, each feature alone.
pub fn pool(
    spec: Spec,
    [steps, features]: [usize; 2],
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> Shaped {
    let Spec::Pool { max, kernel, stride } = spec else { unreachable!("{PAIRED}") };
    let name = if max { "max_pool" } else { "avg_pool" };
    let stride = stride.unwrap_or(kernel);
    if kernel[0] != kernel[1] || stride[0] != stride[1] {
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "`{name}` on a rank-2 input pools over the steps: its window and stride are one size each, \
                 but {producer} gives {shape} and the layer asks for a 2-d window"
            ),
        );
        return (None, Shape::Unknown);
    }
    let (kernel, stride) = (kernel[0], stride[0]);
    if kernel > steps {
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "`{name}` window {kernel} is longer than the {steps} steps of the input {shape} from {producer}; \
                 use a window of at most {steps}"
            ),
        );
        return (None, Shape::Unknown);
    }
    let out_steps = (steps - kernel) / stride + 1;
    let g = Pool1dGeometry { steps, features, kernel, stride, out_steps };
    let kind = if max { LayerKind::MaxPool1d(g) } else { LayerKind::AvgPool1d(g) };
    (Some(kind), Shape::Known(vec![out_steps, features]))
}

/// `conv1d(C, kernel = K, ..)`: `[T, F]` to `[T', C]`, PyTorch's
/// `T' = floor((T + 2p − d(k−1) − 1)/s) + 1`, every overflow checked.
pub fn conv1d(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Conv1d(c) = spec else { unreachable!("{PAIRED}") };
    let Some([steps, features]) = rank2("conv1d", shape, def, producer, cx) else {
        return (None, Shape::Unknown);
    };
    if let Some((expected, span)) = c.expects {
        if expected != features {
            let plural = if expected == 1 { "" } else { "s" };
            cx.error_at(
                span,
                format!(
                    "{} expects {expected} feature{plural} at each step but {producer} gives {shape}",
                    describe(def, "conv1d")
                ),
            );
        }
    }
    conv1d_geometry(&c, [steps, features], shape, def, producer, cx)
}

fn conv1d_geometry(
    c: &Conv1dSpec,
    [steps, features]: [usize; 2],
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> Shaped {
    let Some(span) = c.dilation.checked_mul(c.kernel - 1).and_then(|v| v.checked_add(1)) else {
        cx.error_spanned_by(&def.tokens, "kernel size times dilation overflows");
        return (None, Shape::Unknown);
    };
    let report = |message: String| match c.same_span {
        Some(at) => cx.error_at(at, message),
        None => cx.error_spanned_by(&def.tokens, message),
    };
    let padding = match c.padding {
        Some(p) => p,
        None if c.stride != 1 => {
            report("`padding = same` needs stride 1, as in PyTorch".to_string());
            return (None, Shape::Unknown);
        }
        None if span % 2 == 0 => {
            report(format!(
                "`padding = same` on `conv1d` needs an odd kernel span, but kernel {}{} spans {span} steps; \
                 use an odd kernel or an explicit `padding = ..`",
                c.kernel,
                if c.dilation != 1 { format!(" with dilation {}", c.dilation) } else { String::new() }
            ));
            return (None, Shape::Unknown);
        }
        None => (span - 1) / 2,
    };
    let Some(padded) = padding.checked_mul(2).and_then(|p| p.checked_add(steps)) else {
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{}: the padded input size overflows usize: the padding is too large",
                describe(def, "conv1d")
            ),
        );
        return (None, Shape::Unknown);
    };
    if span > padded {
        let dilated = if c.dilation != 1 { format!(" (dilated to {span})") } else { String::new() };
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{} kernel {}{dilated} is longer than the {padded} padded steps: {producer} gives {shape}; \
                 use a shorter kernel or more padding",
                describe(def, "conv1d"),
                c.kernel
            ),
        );
        return (None, Shape::Unknown);
    }
    let out_steps = (padded - span) / c.stride + 1;
    let geometry = Conv1dGeometry {
        steps,
        in_features: features,
        out_channels: c.filters,
        kernel: c.kernel,
        stride: c.stride,
        padding,
        dilation: c.dilation,
        out_steps,
    };
    let patch = features.checked_mul(c.kernel);
    let Some(out) = patch.and_then(|_| shape2("conv1d", out_steps, c.filters, def, cx)) else {
        if patch.is_none() {
            cx.error_spanned_by(&def.tokens, "the layer's sizes overflow usize");
        }
        return (None, Shape::Unknown);
    };
    (Some(LayerKind::Conv1d { geometry, bias: c.bias, same: c.padding.is_none() }), out)
}

/// `lstm(H)` and `gru(H)`: `[T, F]` to `[T, H]`.
pub fn recurrent(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Recurrent { cell, expects, hidden } = spec else { unreachable!("{PAIRED}") };
    let name = cell.name();
    let Some([steps, features]) = rank2(name, shape, def, producer, cx) else {
        return (None, Shape::Unknown);
    };
    let inputs = match expects {
        Some((e, span)) if e != features => {
            cx.error_at(
                span,
                format!(
                    "{} expects {e} features at each step but {producer} gives {shape}",
                    describe(def, &format!("{name}({e} -> {hidden})"))
                ),
            );
            e
        }
        _ => features,
    };
    match shape2(name, steps, hidden, def, cx) {
        Some(out) => (Some(LayerKind::Recurrent { cell, steps, inputs, hidden }), out),
        None => (None, Shape::Unknown),
    }
}

/// `last`: `[T, F]` to `[F]`, the last step.
pub fn last(_: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    match rank2("last", shape, def, producer, cx) {
        Some([steps, features]) => (Some(LayerKind::Last { steps, features }), Shape::Known(vec![features])),
        None => (None, Shape::Unknown),
    }
}

/// `global_avg_pool` on `[T, F]`: the mean over the steps, `[F]`.
pub fn global_avg_pool([steps, features]: [usize; 2]) -> Shaped {
    (Some(LayerKind::GlobalAvgPool1d { steps, features }), Shape::Known(vec![features]))
}

/// `attention(heads = H)`: `[T, D]` to `[T, D]`, `H` dividing `D`.
pub fn attention(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    let Spec::Attention { heads, causal } = spec else { unreachable!("{PAIRED}") };
    let kind = LayerKind::Attention { steps: 0, dim: 0, heads, causal }.to_string();
    let Some([steps, dim]) = rank2(&kind, shape, def, producer, cx) else { return (None, Shape::Unknown) };
    if dim % heads != 0 {
        let plural = if heads == 1 { "" } else { "s" };
        cx.error_spanned_by(
            &def.tokens,
            format!(
                "{} splits the features among its heads, but {producer} gives {shape}: {dim} features do not \
                 divide into {heads} head{plural}; choose a head count that divides {dim}",
                describe(def, &kind)
            ),
        );
        return (None, shape.clone());
    }
    (Some(LayerKind::Attention { steps, dim, heads, causal }), shape.clone())
}

/// `positional`: a learned `[T, D]` table added to the input.
pub fn positional(_: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> Shaped {
    match rank2("positional", shape, def, producer, cx) {
        Some([steps, dim]) => (Some(LayerKind::Positional { steps, dim }), shape.clone()),
        None => (None, Shape::Unknown),
    }
}

/// Why a layer of ranks 1 and 3 is refused on `[T, F]`, with what to use instead.
pub fn not_on_rank2(what: &str, hint: &str, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) {
    cx.error_spanned_by(
        &def.tokens,
        format!(
            "{} does not take a rank-2 input [steps, features], but {producer} gives {shape}; {hint}",
            describe(def, what)
        ),
    );
}
