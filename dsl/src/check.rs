//! [`NetworkDef`] to [`Model`]: resolves every layer and its arguments, infers
//! each layer's shape and checks it against what the layer needs, every `=>`
//! assertion and `output:`. Each mistake is one spanned error; after a mistake
//! the shape becomes unknown (or continues from the layer's declared sizes),
//! so it is not reported again downstream.

use crate::ast::{Arg, Block, Item, LayerDef, NetworkDef, Role, ShapeLit, Value};
use crate::ctxt::Ctxt;
use crate::model::{
    Activation, ConvGeometry, Count, Join, Layer, LayerKind, Model, PoolGeometry, Shape, Size,
};
use proc_macro2::Span;
use quote::format_ident;
use std::collections::HashMap;
use syn::ext::IdentExt;
use syn::Lit;

/// The layer kinds the language knows, for "unknown layer" messages.
const LAYER_KINDS: [&str; 18] = [
    "dense",
    "conv2d",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "flatten",
    "batch_norm",
    "layer_norm",
    "dropout",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "identity",
    "residual",
    "parallel",
];

/// Kinds that keep the shape; an assertion after one names the layer that made the shape.
const SHAPE_KEEPING: [&str; 10] = [
    "batch_norm",
    "layer_norm",
    "dropout",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "identity",
];

/// PyTorch's defaults.
const DEFAULT_LEAKY_ALPHA: f64 = 0.01;
const DEFAULT_NORM_EPS: f64 = 1e-5;
const DEFAULT_BN_MOMENTUM: f64 = 0.1;

pub fn check(def: NetworkDef, cx: &Ctxt) -> Option<Model> {
    // `None` inside: the entry was there but broken (already reported).
    let mut input: Option<Option<ShapeLit>> = None;
    let mut output: Option<(Span, Option<ShapeLit>)> = None;
    let mut output_misplaced = false;
    let mut layers = Vec::new();
    for item in def.items {
        match item {
            Item::Input { key, shape } => {
                if input.is_some() {
                    cx.error_at(key.span(), "duplicate `input:`; a network has one input");
                } else if !layers.is_empty() || output.is_some() {
                    cx.error_at(key.span(), "`input:` must come first, before any layer");
                }
                input.get_or_insert(Some(shape));
            }
            Item::Invalid(Role::Input) => {
                input.get_or_insert(None);
            }
            Item::Output { key, shape } => {
                if output.is_some() {
                    cx.error_at(key.span(), "duplicate `output:`; a network has one output");
                } else {
                    output = Some((key.span(), Some(shape)));
                }
            }
            Item::Invalid(Role::Output) => {
                output.get_or_insert((Span::call_site(), None));
            }
            Item::Layer(_) | Item::Invalid(Role::Layer) => {
                if let (Some((key, _)), false) = (&output, output_misplaced) {
                    cx.error_at(*key, "`output:` must be the last entry, after every layer");
                    output_misplaced = true;
                }
                layers.push(match item {
                    Item::Layer(layer) => Some(layer),
                    _ => None,
                });
            }
        }
    }
    check_attrs(&def.attrs, cx);

    let input_shape = match &input {
        Some(Some(shape)) => input_shape(shape, cx),
        Some(None) => Shape::Unknown,
        None => {
            cx.error_at(
                def.name.span(),
                "missing `input: [..]`: declare the input shape first, e.g. `input: [784],` or `input: [1, 28, 28],`",
            );
            Shape::Unknown
        }
    };
    if layers.is_empty() {
        cx.error_at(def.name.span(), "a network needs at least one layer, e.g. `dense(10)`");
    } else if layers.iter().all(|l| l.as_ref().is_some_and(|l| l.kind == "flatten")) {
        cx.error_at(def.name.span(), "a network needs at least one layer besides `flatten`");
    }

    let (model_layers, shape, producer) = check_sequence(&layers, input_shape.clone(), "`input`".into(), cx);

    if let Some((_, Some(expected))) = &output {
        if let Some(expected) = shape_of(expected, cx) {
            if shape.is_known() && shape != expected {
                cx.error_at(
                    expected_span(&output),
                    format!("output expects {expected} but {producer} gives {shape}"),
                );
            }
        }
    }

    let param_count = crate::model::sequence_params(&model_layers);
    // Every parameter is held in memory at least once as f64 (8 bytes). A count
    // that depends on a size parameter is asserted per instantiation instead.
    if matches!(param_count, Count::Lit(n) if n > crate::model::MAX_PARAMS) {
        cx.error_at(def.name.span(), "the network has too many parameters to allocate");
    }

    if cx.has_errors() {
        return None;
    }
    Some(Model {
        attrs: def.attrs,
        vis: def.vis,
        name: def.name,
        generics: def.generics,
        input: input_shape,
        layers: model_layers,
        param_count,
    })
}

/// Checks a sequence of layers (the network's, or a block's) from `shape`,
/// naming them; returns them with the final shape and who produced it.
fn check_sequence(
    layers: &[Option<LayerDef>],
    mut shape: Shape,
    mut producer: String,
    cx: &Ctxt,
) -> (Vec<Layer>, Shape, String) {
    // Each name with whether the user wrote it, to tell clashes apart.
    let mut names: HashMap<String, (usize, bool)> = HashMap::new();
    let mut model_layers = Vec::new();
    for (position, def) in layers.iter().enumerate() {
        let Some(def) = def else {
            // A broken entry: nothing is known of its output.
            shape = Shape::Unknown;
            continue;
        };
        let ident = match &def.name {
            Some(name) => name.clone(),
            None => format_ident!("{}_{}", def.kind, position, span = def.kind.span()),
        };
        let name = ident.unraw().to_string();
        if name.starts_with("__") {
            cx.error_at(ident.span(), "layer names starting with `__` are reserved for generated code");
        }
        let written = def.name.is_some();
        match names.insert(name.clone(), (position, written)) {
            Some((first, true)) if written => cx.error_at(
                ident.span(),
                format!("duplicate layer name `{name}` (first used at position {first})"),
            ),
            Some((first, _)) => {
                // One of the two is a generated positional name: point at the name the user wrote.
                let (user, auto) = if written { (position, first) } else { (first, position) };
                let user_span =
                    layers[user].as_ref().and_then(|d| d.name.as_ref()).map_or(ident.span(), |n| n.span());
                cx.error_at(
                    user_span,
                    format!(
                        "layer name `{name}` is also the automatic name of the unnamed layer at position {auto}; \
                         choose another name"
                    ),
                );
            }
            None => {}
        }
        let (kind, out_shape) = match &def.nested {
            Some(path) => apply_nested(path, &shape, def, cx),
            None => {
                let Some(spec) = resolve(def, cx) else {
                    shape = Shape::Unknown;
                    continue;
                };
                apply(spec, &shape, def, &producer, cx)
            }
        };
        if !SHAPE_KEEPING.contains(&def.kind.to_string().as_str()) {
            producer = describe_producer(def, kind.as_ref(), position);
        }
        let input = std::mem::replace(&mut shape, out_shape);
        check_assert(def, &shape, &producer, cx);
        if let Some(kind) = kind {
            model_layers.push(Layer {
                ident,
                name,
                param_name: param_name(def, position),
                position,
                kind,
                input,
                output: shape.clone(),
            });
        }
    }
    (model_layers, shape, producer)
}

/// The layers of a block's items; misplaced `input:`/`output:` are errors.
fn block_layers(items: &[Item], cx: &Ctxt) -> Vec<Option<LayerDef>> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Layer(l) => Some(Some(l.clone())),
            Item::Invalid(_) => Some(None),
            Item::Input { key, .. } | Item::Output { key, .. } => {
                cx.error_at(key.span(), format!("`{key}:` belongs to the network, not inside a block"));
                None
            }
        })
        .collect()
}

/// `residual { .. }` and `residual(projection) { .. }`.
fn apply_residual(
    projection: bool,
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> (Option<LayerKind>, Shape) {
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
    let projection = match (shape.features(), out.features(), shape.chw(), out.chw()) {
        (Some(inputs), Some(outputs), _, _) => Some(LayerKind::Dense { inputs, outputs, bias: true }),
        (_, _, Some([c, h, w]), Some([c2, h2, w2])) => {
            // A 1×1 convolution whose stride brings the spatial size down to the body's.
            let stride = |from: usize, to: usize| (1..=from).find(|s| (from - 1) / s + 1 == to);
            match (stride(h, h2), stride(w, w2)) {
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
    };
    match projection {
        Some(p) => (Some(LayerKind::Residual { body, projection: Some(Box::new(p)) }), out),
        None => {
            cx.error_at(*span, format!("no projection takes {shape} to {out}: the body of {name} must keep the rank, and shrink height and width by a whole stride"));
            (None, out)
        }
    }
}

/// `parallel(concat | add) { branch { .. } branch { .. } }`.
fn apply_parallel(
    join: Join,
    shape: &Shape,
    def: &LayerDef,
    producer: &str,
    cx: &Ctxt,
) -> (Option<LayerKind>, Shape) {
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
        checked.push(check_sequence(&layers, shape.clone(), producer.to_string(), cx));
    }
    let outs: Vec<&Shape> = checked.iter().map(|(_, out, _)| out).collect();
    if outs.iter().any(|s| matches!(s, Shape::Unknown)) {
        return (None, Shape::Unknown);
    }
    let listing =
        outs.iter().enumerate().map(|(b, s)| format!("branch {b} gives {s}")).collect::<Vec<_>>().join(", ");
    let out = match join {
        Join::Add if outs.iter().all(|s| *s == outs[0]) => Some(outs[0].clone()),
        Join::Add => {
            cx.error_at(
                *span,
                format!(
                    "the branches of {name} cannot be added: {listing}; `parallel(add)` needs equal shapes"
                ),
            );
            None
        }
        Join::Concat if outs.iter().any(|s| matches!(s, Shape::Generic(_))) => {
            cx.error_at(
                *span,
                format!(
                    "the branches of {name} cannot be concatenated: {listing}; the joined size would be a sum \
                     involving a size parameter, which a type cannot hold on stable Rust; use `parallel(add)` \
                     or sizes that are numbers"
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
                let mut joined = dims[0].clone();
                joined[0] = dims.iter().map(|d| d[0]).sum();
                Some(Shape::Known(joined))
            } else {
                let along = if rank == 3 {
                    "they must agree in height and width"
                } else {
                    "they must have the same rank"
                };
                cx.error_at(
                    *span,
                    format!("the branches of {name} cannot be concatenated: {listing}; {along}"),
                );
                None
            }
        }
    };
    match out {
        Some(out) => {
            let branches = checked.into_iter().map(|(layers, _, _)| layers).collect();
            (Some(LayerKind::Parallel { join, branches }), out)
        }
        None => (None, Shape::Unknown),
    }
}

/// A network used as a layer. Its shapes live in another macro invocation, so
/// the output shape is declared with `=>` and both ends are checked by the
/// compiler (the generated `Layer` bound and a constant assertion).
fn apply_nested(path: &syn::Path, shape: &Shape, def: &LayerDef, cx: &Ctxt) -> (Option<LayerKind>, Shape) {
    let Some(assert) = &def.assert else {
        let name = def.name.as_ref().map_or_else(|| "net".to_string(), |n| n.unraw().to_string());
        cx.error_spanned_by(
            &def.tokens,
            format!("a nested network needs its output shape: write `{name}: {} => [..]`", def.kind),
        );
        return (None, Shape::Unknown);
    };
    match shape_of(assert, cx) {
        Some(out) if out.rank().is_some_and(|r| r == 1 || r == 3) => {
            (shape.is_known().then(|| LayerKind::Nested { path: path.clone() }), out)
        }
        Some(out) => {
            cx.error_at(
                assert.span,
                format!("a shape is `[features]` or `[channels, height, width]`, found {out}"),
            );
            (None, Shape::Unknown)
        }
        None => (None, Shape::Unknown),
    }
}

fn param_name(def: &LayerDef, position: usize) -> String {
    def.name.as_ref().map_or_else(|| position.to_string(), |n| n.unraw().to_string())
}

fn expected_span(output: &Option<(Span, Option<ShapeLit>)>) -> Span {
    output.as_ref().and_then(|(_, s)| s.as_ref()).map_or_else(Span::call_site, |s| s.span)
}

/// `network!` writes `Clone` and `Debug` itself (cloning big matrices without
/// the stack); a derive of either would conflict, so say so up front.
fn check_attrs(attrs: &[syn::Attribute], cx: &Ctxt) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("Clone") || meta.path.is_ident("Debug") {
                let name = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                cx.error_spanned_by(
                    &meta.path,
                    format!("`network!` already implements `{name}`; remove it from the derive"),
                );
            }
            Ok(())
        });
    }
}

fn input_shape(shape: &ShapeLit, cx: &Ctxt) -> Shape {
    match shape_of(shape, cx) {
        Some(s) if matches!(s.rank(), Some(1 | 3)) => {
            if s.size_checked().is_none() {
                cx.error_at(shape.span, format!("the input shape {s} has more elements than fit in usize"));
                return Shape::Unknown;
            }
            s
        }
        Some(s) => {
            cx.error_at(
                shape.span,
                format!("an input is `[features]` or `[channels, height, width]`, found {s}"),
            );
            Shape::Unknown
        }
        None => Shape::Unknown,
    }
}

/// A written shape as a [`Shape`], reporting zero sizes and size parameters
/// anywhere but alone in a rank-1 shape.
fn shape_of(shape: &ShapeLit, cx: &Ctxt) -> Option<Shape> {
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
fn generic_in_arithmetic(p: &syn::Ident, here: &str) -> String {
    format!(
        "the size parameter `{p}` cannot be used {here}: it may only stand alone as the features of a rank-1 \
         shape (`[{p}]`, `dense({p})`), because every other size computed from it (such as C·H·W values per \
         sample) would be arithmetic on a const parameter in a type, which stable Rust does not allow"
    )
}

fn check_assert(def: &LayerDef, shape: &Shape, producer: &str, cx: &Ctxt) {
    let Some(assert) = &def.assert else { return };
    if def.nested.is_some() {
        return; // For a nested network, `=>` declares the output shape.
    }
    let Some(expected) = shape_of(assert, cx) else { return };
    if shape.is_known() && *shape != expected {
        let who = match &def.name {
            Some(n) => format!("`{}`", n.unraw()),
            None if SHAPE_KEEPING.contains(&def.kind.to_string().as_str()) => {
                format!("`{}` after {producer}", def.kind)
            }
            None => producer.to_string(),
        };
        cx.error_at(assert.span, format!("shape assertion expects {expected} but {who} gives {shape}"));
    }
}

/// How an erroring layer is named in a message: `` `head: dense(128 -> 10)` ``.
fn describe(def: &LayerDef, kind: &str) -> String {
    match &def.name {
        Some(n) => format!("`{}: {kind}`", n.unraw()),
        None => format!("`{kind}`"),
    }
}

/// How the layer that produced a shape is named: `` `fc2` `` or `` `dense(784 -> 256)` at position 2 ``.
fn describe_producer(def: &LayerDef, kind: Option<&LayerKind>, position: usize) -> String {
    match (&def.name, kind) {
        (Some(n), _) => format!("`{}`", n.unraw()),
        (None, Some(kind)) => format!("`{kind}` at position {position}"),
        (None, None) => format!("`{}` at position {position}", def.kind),
    }
}

/// A layer's kind and arguments, resolved but not yet shaped.
enum Spec {
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
}

struct ConvSpec {
    expects: Option<(usize, Span)>,
    filters: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
    bias: bool,
    /// Where a `padding = same` with a stride was written, for its error.
    same_span: Option<Span>,
}

#[derive(Clone, Copy)]
enum Padding {
    Zero([usize; 2]),
    Same,
}

/// Checks the incoming shape against the layer and computes the outgoing one.
/// `None` for the kind when the layer cannot be built (the error is reported).
fn apply(spec: Spec, shape: &Shape, def: &LayerDef, producer: &str, cx: &Ctxt) -> (Option<LayerKind>, Shape) {
    let known = shape.is_known();
    let need_rank3 = |what: &str| {
        if known && shape.chw().is_none() {
            cx.error_spanned_by(
                &def.tokens,
                format!("`{what}` needs a rank-3 input [C, H, W], but {producer} gives {shape}"),
            );
        }
        shape.chw()
    };
    match spec {
        Spec::Dense { expects, outputs, bias } => {
            let given = shape.features();
            if known {
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
            let kind =
                expects.map(|(e, _)| e).or(given).map(|inputs| LayerKind::Dense { inputs, outputs, bias });
            (kind, out)
        }
        Spec::Conv2d(c) => {
            let Some([channels, h, w]) = need_rank3("conv2d") else {
                // Carry on with the declared channels; the spatial size is unknown.
                return (None, Shape::Unknown);
            };
            if let Some((expected, span)) = c.expects {
                if expected != channels {
                    let plural = if expected == 1 { "" } else { "s" };
                    let msg = format!(
                        "{} expects {expected} channel{plural} but {producer} gives {shape}",
                        describe(def, "conv2d")
                    );
                    cx.error_at(span, msg);
                }
            }
            conv_geometry(&c, [channels, h, w], def, producer, shape, cx)
        }
        Spec::Pool { max, kernel, stride } => {
            let name = if max { "max_pool" } else { "avg_pool" };
            let Some([channels, h, w]) = need_rank3(name) else { return (None, Shape::Unknown) };
            let stride = stride.unwrap_or(kernel);
            if kernel[0] > h || kernel[1] > w {
                cx.error_spanned_by(
                    &def.tokens,
                    format!(
                        "`{name}` window {}×{} does not fit the input {shape} from {producer}",
                        kernel[0], kernel[1]
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
        Spec::GlobalAvgPool => match need_rank3("global_avg_pool") {
            Some([c, h, w]) => {
                (Some(LayerKind::GlobalAvgPool { channels: c, spatial: h * w }), Shape::Known(vec![c]))
            }
            None => (None, Shape::Unknown),
        },
        Spec::Flatten => match need_rank3("flatten") {
            Some([c, h, w]) => (Some(LayerKind::Flatten), Shape::Known(vec![c * h * w])),
            None => (None, Shape::Unknown),
        },
        Spec::BatchNorm { eps, momentum } => match shape.dims().into_iter().next() {
            Some(channels) => (Some(LayerKind::BatchNorm { channels, eps, momentum }), shape.clone()),
            None => (None, Shape::Unknown),
        },
        Spec::LayerNorm { eps } => (known.then_some(LayerKind::LayerNorm { eps }), shape.clone()),
        Spec::Dropout { p } => (Some(LayerKind::Dropout { p }), shape.clone()),
        Spec::Residual { projection } => apply_residual(projection, shape, def, producer, cx),
        Spec::Parallel(join) => apply_parallel(join, shape, def, producer, cx),
        Spec::Activation(a) => (Some(LayerKind::Activation(a)), shape.clone()),
    }
}

fn conv_geometry(
    c: &ConvSpec,
    [channels, h, w]: [usize; 3],
    def: &LayerDef,
    producer: &str,
    shape: &Shape,
    cx: &Ctxt,
) -> (Option<LayerKind>, Shape) {
    let span_of = |dim: usize| c.dilation[dim].checked_mul(c.kernel[dim] - 1).and_then(|v| v.checked_add(1));
    let (Some(span_h), Some(span_w)) = (span_of(0), span_of(1)) else {
        cx.error_spanned_by(&def.tokens, "kernel size times dilation overflows");
        return (None, Shape::Unknown);
    };
    let (padding, same) = match c.padding {
        Padding::Same => {
            if c.stride != [1, 1] {
                cx.error_at(
                    c.same_span.unwrap_or_else(Span::call_site),
                    "`padding = same` needs stride 1, as in PyTorch",
                );
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
                "{} kernel {}×{}{dilated} does not fit the padded input {ph}×{pw}: {producer} gives {shape}",
                describe(def, "conv2d"),
                c.kernel[0],
                c.kernel[1]
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

/// Keyword arguments, each used at most once; unknown and repeated ones are errors.
struct Keywords<'a> {
    layer: &'a str,
    allowed: &'a [&'a str],
    seen: Vec<String>,
}

impl<'a> Keywords<'a> {
    fn new(layer: &'a str, allowed: &'a [&'a str]) -> Self {
        Keywords { layer, allowed, seen: Vec::new() }
    }

    /// Whether `key` may be used here; reports why not.
    fn accept(&mut self, key: &syn::Ident, cx: &Ctxt) -> bool {
        let name = key.to_string();
        if !self.allowed.contains(&name.as_str()) {
            let expected: Vec<String> = self.allowed.iter().map(|k| format!("`{k}`")).collect();
            let expected = match expected.len() {
                0 => "it takes no keyword arguments".to_string(),
                _ => format!("expected {}", expected.join(", ")),
            };
            let hint = match self.allowed.len() {
                0 | 1 => String::new(),
                _ => {
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

fn resolve(def: &LayerDef, cx: &Ctxt) -> Option<Spec> {
    let kind = def.kind.to_string();
    let args: &[Arg] = def.args.as_ref().map_or(&[], |a| &a.list);
    let no_args = |spec: Spec| {
        if let Some(arg) = args.first() {
            cx.error_at(arg.span(), format!("`{kind}` takes no arguments"));
            None
        } else {
            Some(spec)
        }
    };
    match kind.as_str() {
        "dense" => resolve_dense(def, args, cx),
        "conv2d" => resolve_conv2d(def, args, cx),
        "max_pool" | "avg_pool" => resolve_pool(def, &kind, args, cx),
        "global_avg_pool" => no_args(Spec::GlobalAvgPool),
        "flatten" => no_args(Spec::Flatten),
        "batch_norm" => {
            let mut eps = DEFAULT_NORM_EPS;
            let mut momentum = DEFAULT_BN_MOMENTUM;
            let mut ok = true;
            let mut kw = Keywords::new("batch_norm", &["eps", "momentum"]);
            for arg in args {
                match arg {
                    Arg::Keyword { key, value } if kw.accept(key, cx) => {
                        let v = float_value(value, cx);
                        match (key.to_string().as_str(), v) {
                            ("eps", Some(v)) if v > 0.0 => eps = v,
                            ("momentum", Some(v)) if (0.0..=1.0).contains(&v) => momentum = v,
                            (k, Some(v)) => {
                                let range = if k == "eps" { "greater than 0" } else { "in [0, 1]" };
                                cx.error_spanned_by(
                                    value.tokens(),
                                    format!("`{k}` must be {range}, found {v:?}"),
                                );
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
        "layer_norm" => {
            let mut eps = DEFAULT_NORM_EPS;
            let mut ok = true;
            let mut kw = Keywords::new("layer_norm", &["eps"]);
            for arg in args {
                match arg {
                    Arg::Keyword { key, value } if kw.accept(key, cx) => match float_value(value, cx) {
                        Some(v) if v > 0.0 => eps = v,
                        Some(v) => {
                            cx.error_spanned_by(
                                value.tokens(),
                                format!("`eps` must be greater than 0, found {v:?}"),
                            );
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
        "dropout" => {
            let value = match args {
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
                    let span = args.first().map_or_else(|| def.kind.span(), |a| a.span());
                    cx.error_at(span, "`dropout` takes one probability, e.g. `dropout(0.25)`");
                    None
                }
            }
        }
        "residual" => match args {
            [] => Some(Spec::Residual { projection: false }),
            [Arg::Positional(Value::Ident(i))] if i == "projection" => {
                Some(Spec::Residual { projection: true })
            }
            [other, ..] => {
                cx.error_at(
                    other.span(),
                    "`residual` takes nothing or `projection`: `residual(projection) { .. }`",
                );
                None
            }
        },
        "parallel" => match args {
            [Arg::Positional(Value::Ident(i))] if i == "concat" => Some(Spec::Parallel(Join::Concat)),
            [Arg::Positional(Value::Ident(i))] if i == "add" => Some(Spec::Parallel(Join::Add)),
            _ => {
                let span = args.first().map_or_else(|| def.kind.span(), |a| a.span());
                cx.error_at(
                    span,
                    "`parallel` needs its join: `parallel(concat) { .. }` or `parallel(add) { .. }`",
                );
                None
            }
        },
        "relu" => no_args(Spec::Activation(Activation::Relu)),
        "sigmoid" => no_args(Spec::Activation(Activation::Sigmoid)),
        "tanh" => no_args(Spec::Activation(Activation::Tanh)),
        "gelu" => no_args(Spec::Activation(Activation::Gelu)),
        "softmax" => no_args(Spec::Activation(Activation::Softmax)),
        "identity" => no_args(Spec::Activation(Activation::Identity)),
        "leaky_relu" => resolve_leaky_relu(args, cx),
        "input" | "output" => {
            cx.error_at(def.kind.span(), format!("expected `{kind}: [..]` with a colon"));
            None
        }
        _ => {
            let hint =
                closest(&kind, &LAYER_KINDS).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
            cx.error_at(
                def.kind.span(),
                format!("unknown layer `{kind}`; expected one of {}{hint}", LAYER_KINDS.join(", ")),
            );
            None
        }
    }
}

/// The size argument of `dense` and `conv2d`, `n` or `in -> out`: the first
/// argument that is not a keyword (keywords may come before it).
fn leading_size<S>(
    layer: &str,
    def: &LayerDef,
    args: &[Arg],
    what: &str,
    value: fn(&Value, &Ctxt) -> Option<S>,
    cx: &Ctxt,
) -> Option<(Option<(S, Span)>, S)> {
    let example = if layer == "dense" {
        "`dense(128)` or `dense(784 -> 128)`"
    } else {
        "`conv2d(16, kernel = 3)` or `conv2d(1 -> 16, kernel = 3)`"
    };
    match args.iter().find(|a| !matches!(a, Arg::Keyword { .. })) {
        Some(Arg::Positional(v)) => Some((None, value(v, cx)?)),
        Some(Arg::Arrow { from, to }) => {
            let (i, o) = (value(from, cx), value(to, cx));
            Some((Some((i?, from.span())), o?))
        }
        _ => {
            let span = def.args.as_ref().map_or(def.kind.span(), |a| a.span);
            cx.error_at(span, format!("`{layer}` needs its {what}, e.g. {example}"));
            None
        }
    }
}

/// The arguments after the size: every keyword, and any further positional one (an error).
fn rest(args: &[Arg]) -> impl Iterator<Item = &Arg> {
    let first = args.iter().position(|a| !matches!(a, Arg::Keyword { .. }));
    args.iter().enumerate().filter(move |(i, _)| Some(*i) != first).map(|(_, a)| a)
}

fn resolve_dense(def: &LayerDef, args: &[Arg], cx: &Ctxt) -> Option<Spec> {
    let size = leading_size("dense", def, args, "output size", feature_value, cx);
    let mut bias = true;
    let mut ok = true;
    let mut kw = Keywords::new("dense", &["bias"]);
    for arg in rest(args) {
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

fn resolve_conv2d(def: &LayerDef, args: &[Arg], cx: &Ctxt) -> Option<Spec> {
    let size = leading_size("conv2d", def, args, "number of filters", size_value, cx);
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
    let mut kw = Keywords::new("conv2d", &["kernel", "stride", "padding", "dilation", "bias"]);
    for arg in rest(args) {
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
            other => {
                cx.error_at(
                    other.span(),
                    "`conv2d` takes the filters first, then keyword arguments such as `kernel = 3`",
                );
                ok = false;
            }
        }
    }
    // Only when nothing else is wrong: a misspelt `kernel` is one mistake, reported once.
    if ok && size.is_some() && !kw.seen.iter().any(|k| k == "kernel") {
        let span = def.args.as_ref().map_or(def.kind.span(), |a| a.span);
        cx.error_at(span, "`conv2d` needs a kernel size, e.g. `conv2d(16, kernel = 3)`");
        ok = false;
    }
    let (expects, filters) = size?;
    spec.expects = expects;
    spec.filters = filters;
    ok.then_some(Spec::Conv2d(spec))
}

fn resolve_pool(def: &LayerDef, kind: &str, args: &[Arg], cx: &Ctxt) -> Option<Spec> {
    let kernel = match args.iter().find(|a| !matches!(a, Arg::Keyword { .. })) {
        Some(Arg::Positional(v)) => pair_value(v, false, cx),
        _ => {
            let span = def.args.as_ref().map_or(def.kind.span(), |a| a.span);
            cx.error_at(span, format!("`{kind}` needs a window size, e.g. `{kind}(2)`"));
            None
        }
    };
    let mut stride = None;
    let mut ok = true;
    let mut kw = Keywords::new(if kind == "max_pool" { "max_pool" } else { "avg_pool" }, &["stride"]);
    for arg in rest(args) {
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

fn resolve_leaky_relu(args: &[Arg], cx: &Ctxt) -> Option<Spec> {
    let mut alpha = DEFAULT_LEAKY_ALPHA;
    for (i, arg) in args.iter().enumerate() {
        let value = match arg {
            Arg::Positional(v) if i == 0 => v,
            Arg::Keyword { key, value } if key == "alpha" && i == 0 => value,
            Arg::Keyword { key, .. } if key != "alpha" => {
                cx.error_at(
                    key.span(),
                    format!("unknown argument `{key}` for `leaky_relu`; expected `alpha`"),
                );
                return None;
            }
            _ => {
                cx.error_at(arg.span(), "`leaky_relu` takes one slope, e.g. `leaky_relu(0.1)`");
                return None;
            }
        };
        alpha = float_value(value, cx)?;
    }
    Some(Spec::Activation(Activation::LeakyRelu(alpha)))
}

/// `p`, `[ph, pw]`, `same` or `valid`, and where `same` was written (for its stride error).
fn padding_value(v: &Value, cx: &Ctxt) -> Option<(Padding, Option<Span>)> {
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
fn pair_value(v: &Value, zero_ok: bool, cx: &Ctxt) -> Option<[usize; 2]> {
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

fn size_value(v: &Value, cx: &Ctxt) -> Option<usize> {
    match count_value(v, cx)? {
        0 => {
            cx.error_at(v.span(), "a size must be at least 1");
            None
        }
        n => Some(n),
    }
}

/// A feature count: a positive number or a size parameter.
fn feature_value(v: &Value, cx: &Ctxt) -> Option<Size> {
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

fn bool_value(v: &Value, cx: &Ctxt) -> Option<bool> {
    match v {
        Value::Lit(Lit::Bool(b)) => Some(b.value),
        other => {
            cx.error_at(other.span(), "expected `true` or `false`");
            None
        }
    }
}

fn float_value(v: &Value, cx: &Ctxt) -> Option<f64> {
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

/// The known name closest to `word`, if it is a plausible typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn run(tokens: TokenStream) -> (Option<Model>, Vec<String>) {
        let cx = Ctxt::new();
        let model = parse(tokens, &cx).and_then(|def| check(def, &cx));
        let msgs = cx.messages();
        (model, msgs)
    }

    fn errors(tokens: TokenStream) -> Vec<String> {
        run(tokens).1
    }

    #[test]
    fn infers_shapes_names_and_parameter_counts() {
        let (model, errs) = run(quote! {
            pub struct Mlp {
                input: [784],
                fc1: dense(256), relu,
                dense(256 -> 128, bias = false) => [128], leaky_relu(0.2),
                head: dense(10),
                output: [10],
            }
        });
        assert!(errs.is_empty(), "{errs:?}");
        let m = model.unwrap();
        let names: Vec<String> = m.layers.iter().map(|l| l.ident.to_string()).collect();
        assert_eq!(names, ["fc1", "relu_1", "dense_2", "leaky_relu_3", "head"]);
        let params: Vec<&str> = m.layers.iter().map(|l| l.param_name.as_str()).collect();
        assert_eq!(params, ["fc1", "1", "2", "3", "head"]);
        assert_eq!(
            m.layers[2].kind,
            LayerKind::Dense { inputs: Size::Lit(256), outputs: Size::Lit(128), bias: false }
        );
        assert_eq!(m.layers[2].input, Shape::Known(vec![256]));
        assert_eq!(m.layers[3].kind, LayerKind::Activation(Activation::LeakyRelu(0.2)));
        assert!(matches!(m.param_count, Count::Lit(n) if n == 784 * 256 + 256 + 256 * 128 + 128 * 10 + 10));
        assert_eq!(*m.output(), Shape::Known(vec![10]));
    }

    #[test]
    fn size_parameters_stand_for_rank_1_shapes_and_count_symbolically() {
        let (model, errs) = run(quote! {
            pub struct Mlp<const IN: usize, const HIDDEN: usize = 64> {
                input: [IN],
                fc1: dense(HIDDEN) => [HIDDEN], relu,
                block: residual { dense(HIDDEN -> 16), dense(HIDDEN) },
                head: dense(10),
            }
        });
        assert!(errs.is_empty(), "{errs:?}");
        let m = model.unwrap();
        let param = |name: &str| Size::Param(syn::Ident::new(name, Span::call_site()));
        assert_eq!(m.generics.len(), 2);
        assert_eq!(m.input, Shape::Generic(syn::Ident::new("IN", Span::call_site())));
        assert_eq!(
            m.layers[0].kind,
            LayerKind::Dense { inputs: param("IN"), outputs: param("HIDDEN"), bias: true }
        );
        assert_eq!(m.layers[2].output.to_string(), "[HIDDEN]");
        assert_eq!(m.layers[3].kind.to_string(), "dense(HIDDEN -> 10)");
        // The count is code for the compiler: IN·HIDDEN + HIDDEN + … (saturating).
        let Count::Code(code) = &m.param_count else { panic!("a symbolic count") };
        let code = code.to_string();
        assert!(code.contains("saturating_mul") && code.contains("IN") && code.contains("HIDDEN"), "{code}");

        let errs = errors(quote! {
            struct Bad<const H: usize> { input: [H], residual { dense(16) }, dense(H) => [8] }
        });
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("turns [H] into [16]"), "{errs:?}");
        assert!(errs[1].contains("expects [8] but `dense(16 -> H)` at position 1 gives [H]"), "{errs:?}");
    }

    #[test]
    fn a_dense_input_mismatch_names_the_layer_and_both_shapes() {
        let errs = errors(quote! { struct N { input: [784], fc1: dense(256), relu, fc2: dense(128 -> 10) } });
        assert_eq!(errs, ["`fc2: dense(128 -> 10)` expects [128] but `fc1` gives [256]"]);
        let errs = errors(quote! { struct N { input: [784], dense(256), dense(128 -> 10) } });
        assert_eq!(
            errs,
            ["`dense(128 -> 10)` expects [128] but `dense(784 -> 256)` at position 0 gives [256]"]
        );
        let errs = errors(quote! { struct N { input: [784], dense(100 -> 10) } });
        assert_eq!(errs, ["`dense(100 -> 10)` expects [100] but `input` gives [784]"]);
    }

    #[test]
    fn assertions_and_output_are_checked() {
        let errs = errors(
            quote! { struct N { input: [4], fc1: dense(8) => [9], relu => [7], dense(2), output: [3] } },
        );
        assert_eq!(
            errs,
            [
                "shape assertion expects [9] but `fc1` gives [8]",
                "shape assertion expects [7] but `relu` after `fc1` gives [8]",
                "output expects [3] but `dense(8 -> 2)` at position 2 gives [2]",
            ]
        );
    }

    #[test]
    fn independent_mistakes_are_each_reported_once() {
        let errs = errors(quote! {
            struct N { input: [4], dense(3 -> 5), relu, dense(9 -> 2), relu(1), output: [2] }
        });
        // The first mismatch does not spill into the later layers: the second
        // dense is checked against the first one's declared output.
        assert_eq!(
            errs,
            [
                "`dense(3 -> 5)` expects [3] but `input` gives [4]",
                "`dense(9 -> 2)` expects [9] but `dense(3 -> 5)` at position 0 gives [5]",
                "`relu` takes no arguments",
            ]
        );
    }

    #[test]
    fn malformed_layers_are_spanned_errors() {
        let cases: Vec<(TokenStream, &str)> = vec![
            (quote! { struct N { dense(2) } }, "missing `input: [..]`"),
            (quote! { struct N { input: [2] } }, "at least one layer"),
            (quote! { struct N { input: [2], dense } }, "`dense` needs its output size"),
            (quote! { struct N { input: [2], dense(x) } }, "expected a size"),
            (quote! { struct N { input: [2], dense(-3) } }, "positive whole number"),
            (quote! { struct N { input: [2], dense(3, 4) } }, "takes one size"),
            (
                quote! { struct N { input: [2], dense(3, biass = false) } },
                "unknown argument `biass` for `dense`",
            ),
            (quote! { struct N { input: [2], dense(3, bias = 1) } }, "expected `true` or `false`"),
            (
                quote! { struct N { input: [2], dense(3, bias = true, bias = false) } },
                "`bias` is given twice",
            ),
            (quote! { struct N { input: [2], dense(3), relu(2) } }, "`relu` takes no arguments"),
            (quote! { struct N { input: [2], dense(3), leaky_relu(x) } }, "expected a number"),
            (quote! { struct N { input: [2], dense(3), leaky_relu(0.1, 0.2) } }, "takes one slope"),
            (
                quote! { struct N { input: [2], dense(3), leaky_relu(slope = 0.1) } },
                "unknown argument `slope`",
            ),
            (
                quote! { struct N { input: [2], desne(3) } },
                "unknown layer `desne`; expected one of dense, conv2d",
            ),
            (quote! { struct N { input: [2], desne(3) } }, "did you mean `dense`?"),
            (quote! { struct N { input: [2], a: dense(3), a: dense(3) } }, "duplicate layer name `a`"),
            (quote! { struct N { input: [0], dense(3) } }, "at least 1"),
            (quote! { struct N { input: [1, 28, 28], dense(3) } }, "add `flatten` before it"),
            (
                quote! { struct N { input: [28, 28], dense(3) } },
                "an input is `[features]` or `[channels, height, width]`",
            ),
            (
                quote! { struct N { input: [4], conv2d(3, kernel = 3) } },
                "`conv2d` needs a rank-3 input [C, H, W], but `input` gives [4]",
            ),
            (quote! { struct N { input: [4], max_pool(2) } }, "`max_pool` needs a rank-3 input"),
            (quote! { struct N { input: [4], flatten, dense(2) } }, "`flatten` needs a rank-3 input"),
            (quote! { struct N { input: [1, 4, 4], conv2d(3) } }, "`conv2d` needs a kernel size"),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(kernel = 3) } },
                "`conv2d` needs its number of filters",
            ),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 5) } },
                "kernel 5×5 does not fit the padded input 4×4",
            ),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, dilation = 2) } },
                "(dilated to 5×5)",
            ),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, stride = 2, padding = same) } },
                "needs stride 1",
            ),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = full) } },
                "unknown padding `full`",
            ),
            (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = [3, 3, 3]) } }, "one size or two"),
            (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 0) } }, "at least 1"),
            (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 2, stride = 0) } }, "at least 1"),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 2, groups = 2) } },
                "unknown argument `groups` for `conv2d`",
            ),
            (
                quote! { struct N { input: [2, 4, 4], conv2d(3 -> 8, kernel = 3) } },
                "expects 3 channels but `input` gives [2, 4, 4]",
            ),
            (
                quote! { struct N { input: [2, 4, 4], max_pool(5) } },
                "`max_pool` window 5×5 does not fit the input [2, 4, 4]",
            ),
            (quote! { struct N { input: [2, 4, 4], avg_pool(2, stride = 0) } }, "at least 1"),
            (quote! { struct N { input: [2, 4, 4], max_pool } }, "`max_pool` needs a window size"),
            (quote! { struct N { input: [4], global_avg_pool } }, "`global_avg_pool` needs a rank-3 input"),
            (
                quote! { struct N { input: [4], dropout(1.0) } },
                "a dropout probability must be in [0, 1), found 1",
            ),
            (quote! { struct N { input: [4], dropout } }, "`dropout` takes one probability"),
            (quote! { struct N { input: [4], dropout(0.1, 0.2) } }, "`dropout` takes one probability"),
            (quote! { struct N { input: [1, 4, 4], conv2d(3, kernal = 3) } }, "did you mean `kernel`?"),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = 1.5) } },
                "expected a padding",
            ),
            (
                quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = "same") } },
                "without quotes",
            ),
            (quote! { struct N { input: [4], batch_norm(momentum = 2.0) } }, "`momentum` must be in [0, 1]"),
            (quote! { struct N { input: [4], batch_norm(0.1) } }, "`batch_norm` takes only"),
            (quote! { struct N { input: [4], layer_norm(eps = 0) } }, "`eps` must be greater than 0"),
            (quote! { struct N { input: [4], flatten } }, "at least one layer besides `flatten`"),
            (quote! { struct N { dense(3), input: [2] } }, "`input:` must come first"),
            (quote! { struct N { input: [2], input: [2], dense(3) } }, "duplicate `input:`"),
            (quote! { struct N { input: [2], output: [3], dense(3) } }, "`output:` must be the last entry"),
            (quote! { struct N { input: [2], dense(3), output: [3], output: [3] } }, "duplicate `output:`"),
            (quote! { struct N { input: [2], input } }, "expected `input: [..]` with a colon"),
            (
                quote! { struct N { input: [4294967296], dense(4294967296), dense(4294967296) } },
                "too many parameters",
            ),
        ];
        for (tokens, expected) in cases {
            let errs = errors(tokens.clone());
            assert!(
                errs.iter().any(|e| e.contains(expected)),
                "{tokens}: expected {expected:?}, got {errs:?}"
            );
        }
    }

    #[test]
    fn a_broken_entry_causes_no_follow_up_errors() {
        // Each network has exactly one mistake: its parse error.
        for tokens in [
            quote! { struct A { input: [4], dense(8) junk, dense(8 -> 2) } },
            quote! { struct B { input: [4], fc1: dense(8 ->), fc2: dense(8 -> 2), output: [2] } },
            quote! { struct C { input: [4] extra, dense(8) } },
            quote! { struct D { input: [4], dense(3) => [3] extra, output: [3] } },
            quote! { struct E { input: [4], dense(8) junk } },
        ] {
            let errs = errors(tokens.clone());
            assert_eq!(errs.len(), 1, "{tokens}: {errs:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        let errs = errors(quote! { struct N { input: [2], relu, relu_0: dense(2) } });
        assert_eq!(errs, ["layer name `relu_0` is also the automatic name of the unnamed layer at position 0; choose another name"]);
        let errs = errors(quote! { struct N { input: [2], a: dense(2), a: relu } });
        assert_eq!(errs, ["duplicate layer name `a` (first used at position 0)"]);
        let errs = errors(quote! { struct N { input: [2], __x: dense(2) } });
        assert!(errs[0].contains("reserved"));
        let (m, _) = run(quote! { struct N { input: [2], r#type: dense(2) } });
        let m = m.unwrap();
        assert_eq!((m.layers[0].param_name.as_str(), m.layers[0].name.as_str()), ("type", "type"));
        assert_eq!(m.layers[0].ident.to_string(), "r#type");
        let errs = errors(quote! { #[derive(Clone, PartialEq)] struct N { input: [2], dense(2) } });
        assert_eq!(errs, ["`network!` already implements `Clone`; remove it from the derive"]);
    }

    #[test]
    fn convolution_shapes_follow_pytorch() {
        let (m, errs) = run(quote! {
            struct Digits {
                input: [1, 28, 28],
                conv1: conv2d(16, kernel = 3), relu => [16, 26, 26],
                max_pool(2) => [16, 13, 13],
                conv2: conv2d(16 -> 32, kernel = 3, padding = 1), batch_norm, relu,
                max_pool(2) => [32, 6, 6],
                flatten => [1152],
                dropout(0.25),
                fc: dense(128), relu,
                head: dense(10),
            }
        });
        assert!(errs.is_empty(), "{errs:?}");
        let m = m.unwrap();
        let LayerKind::Conv2d { geometry: g, .. } = m.layers[3].kind else { panic!() };
        assert_eq!((g.out_height, g.out_width, g.patch()), (13, 13, 16 * 9));
        assert_eq!(
            m.layers[4].kind,
            LayerKind::BatchNorm { channels: Size::Lit(32), eps: 1e-5, momentum: 0.1 }
        );
        let conv = 16 * 9 + 16 + 32 * 16 * 9 + 32;
        assert!(matches!(m.param_count, Count::Lit(n) if n == conv + 2 * 32 + 1152 * 128 + 128 + 1290));

        let shape = |tokens: TokenStream| run(tokens).0.map(|m| m.output().clone());
        // stride, padding and dilation: floor((H + 2p − d(k−1) − 1)/s) + 1
        let s =
            shape(quote! { struct A { input: [2, 7, 7], conv2d(3, kernel = 3, stride = 2, padding = 1) } });
        assert_eq!(s, Some(Shape::Known(vec![3, 4, 4])));
        let s = shape(
            quote! { struct B { input: [2, 8, 7], conv2d(3, kernel = [3, 2], stride = [1, 2], padding = [2, 1], dilation = 2) } },
        );
        assert_eq!(s, Some(Shape::Known(vec![3, 8, 4])));
        // `same` keeps the size, also for even kernels (padded more at the bottom/right, as in PyTorch).
        let (m, _) = run(quote! { struct C { input: [1, 5, 6], conv2d(2, kernel = 4, padding = same) } });
        let LayerKind::Conv2d { geometry: g, same: true, .. } = m.unwrap().layers[0].kind else { panic!() };
        assert_eq!((g.out_height, g.out_width, g.padding), (5, 6, [1, 1]));
        let s = shape(quote! { struct D { input: [3, 7, 7], avg_pool(3, stride = 2), global_avg_pool } });
        assert_eq!(s, Some(Shape::Known(vec![3])));
        let s = shape(quote! { struct E { input: [3, 4, 4], layer_norm, flatten } });
        assert_eq!(s, Some(Shape::Known(vec![48])));
    }

    #[test]
    fn one_mistake_in_conv_arguments_is_one_error() {
        assert_eq!(errors(quote! { struct N { input: [1, 4, 4], conv2d(3, kernal = 3) } }).len(), 1);
        assert_eq!(errors(quote! { struct N { input: [1, 4, 4], conv2d() } }).len(), 1);
        let (m, _) = run(quote! { struct N { input: [4], dropout(p = 0.5) } });
        assert_eq!(m.unwrap().layers[0].kind, LayerKind::Dropout { p: 0.5 });
    }

    #[test]
    fn rank3_assertions_and_flatten_hints() {
        let errs =
            errors(quote! { struct N { input: [1, 8, 8], c: conv2d(4, kernel = 3) => [4, 8, 8], dense(2) } });
        assert_eq!(
            errs,
            [
                "shape assertion expects [4, 8, 8] but `c` gives [4, 6, 6]",
                "`dense` needs a rank-1 input [features], but `c` gives [4, 6, 6]; add `flatten` before it",
            ]
        );
    }

    #[test]
    fn leaky_relu_defaults_to_pytorchs_slope() {
        let (m, _) = run(quote! { struct N { input: [2], leaky_relu, leaky_relu(alpha = -0.5) } });
        let m = m.unwrap();
        assert_eq!(m.layers[0].kind, LayerKind::Activation(Activation::LeakyRelu(0.01)));
        assert_eq!(m.layers[1].kind, LayerKind::Activation(Activation::LeakyRelu(-0.5)));
    }

    #[test]
    fn edit_distance_suggests_close_names_only() {
        assert_eq!(closest("rlu", &LAYER_KINDS), Some("relu"));
        assert_eq!(closest("convolution", &LAYER_KINDS), None);
    }
}
