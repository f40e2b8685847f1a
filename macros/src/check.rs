//! [`NetworkDef`] to [`Model`]: resolves every layer and its arguments, infers
//! each layer's shape and checks it against what the next layer, every `=>`
//! assertion and `output:` expect. Each mistake is one spanned error; after a
//! mistake the shape becomes unknown, so it is not reported again downstream.

use crate::ast::{Arg, Item, LayerDef, NetworkDef, Role, ShapeLit, Value};
use crate::ctxt::Ctxt;
use crate::model::{Activation, Layer, LayerKind, Model, Shape};
use proc_macro2::Span;
use quote::format_ident;
use std::collections::HashMap;
use syn::ext::IdentExt;
use syn::Lit;

/// The layer kinds the language knows, for "unknown layer" messages.
const LAYER_KINDS: [&str; 8] =
    ["dense", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "identity"];

/// PyTorch's default negative slope.
const DEFAULT_LEAKY_ALPHA: f64 = 0.01;

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
                "missing `input: [features]`: declare the input shape first, e.g. `input: [784],`",
            );
            Shape::Unknown
        }
    };
    if layers.is_empty() {
        cx.error_at(def.name.span(), "a network needs at least one layer, e.g. `dense(10)`");
    }

    let mut shape = input_shape.clone();
    let mut producer = "`input`".to_string();
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
            Some((first, true)) if written => {
                cx.error_at(ident.span(), format!("duplicate layer name `{name}` (first used at position {first})"))
            }
            Some((first, false)) | Some((first, true)) => {
                // One of the two is a generated positional name: point at the name the user wrote.
                let (user, auto) = if written { (position, first) } else { (first, position) };
                let span = if written { ident.span() } else { layers[user].as_ref().and_then(|d| d.name.as_ref()).map_or(ident.span(), |n| n.span()) };
                cx.error_at(
                    span,
                    format!("layer name `{name}` is also the automatic name of the unnamed layer at position {auto}; choose another name"),
                );
            }
            None => {}
        }
        let Some(spec) = resolve(def, cx) else {
            shape = Shape::Unknown;
            continue;
        };
        let (kind, out_shape) = match spec {
            Spec::Dense { expects, outputs, bias } => {
                let given = shape.features();
                if let Shape::Known(_) = shape {
                    match (given, expects) {
                        (None, _) => cx.error_spanned_by(
                            &def.tokens,
                            format!(
                                "`dense` needs a rank-1 input `[features]`, but {producer} gives {shape}"
                            ),
                        ),
                        (Some(g), Some((expected, span))) if g != expected => {
                            let kind = LayerKind::Dense { inputs: expected, outputs, bias };
                            let msg = format!(
                                "{} expects [{expected}] but {producer} gives {shape}",
                                describe(def, &kind)
                            );
                            cx.error_at(span, msg);
                        }
                        _ => {}
                    }
                }
                // After a mismatch, carry on from the declared sizes so later layers are still checked.
                let inputs = expects.map(|(e, _)| e).or(given).unwrap_or(0);
                let kind = LayerKind::Dense { inputs, outputs, bias };
                producer = describe_producer(def, &kind, position);
                (kind, Shape::Known(vec![outputs]))
            }
            Spec::Activation(a) => (LayerKind::Activation(a), shape.clone()),
        };
        shape = out_shape;
        check_assert(def, &shape, &producer, cx);
        model_layers.push(Layer {
            ident,
            name,
            param_name: def.name.as_ref().map_or_else(|| position.to_string(), |n| n.unraw().to_string()),
            input: Shape::Unknown,
            output: shape.clone(),
            kind,
        });
    }

    if let Some((_, Some(expected))) = &output {
        if let Some(expected) = shape_of(expected, cx) {
            if matches!(shape, Shape::Known(_)) && shape != expected {
                cx.error_at(
                    expected_span(&output),
                    format!("output expects {expected} but {producer} gives {shape}"),
                );
            }
        }
    }

    let param_count = model_layers.iter().try_fold(0usize, |acc, l| acc.checked_add(l.kind.param_count()?));
    let param_count = match param_count {
        // Every parameter is held in memory at least once as f64 (8 bytes).
        Some(n) if n <= isize::MAX as usize / 8 => n,
        _ => {
            cx.error_at(def.name.span(), "the network has too many parameters to allocate");
            0
        }
    };

    if cx.has_errors() {
        return None;
    }
    // Fill in each layer's input shape now that all are known.
    let mut prev = input_shape.clone();
    for layer in &mut model_layers {
        layer.input = std::mem::replace(&mut prev, layer.output.clone());
    }
    Some(Model {
        attrs: def.attrs,
        vis: def.vis,
        name: def.name,
        input: input_shape,
        layers: model_layers,
        param_count,
    })
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
                cx.error_spanned_by(&meta.path, format!("`network!` already implements `{name}`; remove it from the derive"));
            }
            Ok(())
        });
    }
}

fn input_shape(shape: &ShapeLit, cx: &Ctxt) -> Shape {
    match shape_of(shape, cx) {
        Some(s @ Shape::Known(_)) if s.features().is_some() => s,
        Some(s) => {
            cx.error_at(
                shape.span,
                format!("only rank-1 inputs `[features]` are supported so far, found {s}"),
            );
            Shape::Unknown
        }
        None => Shape::Unknown,
    }
}

/// A written shape as a [`Shape`], reporting zero sizes.
fn shape_of(shape: &ShapeLit, cx: &Ctxt) -> Option<Shape> {
    let mut dims = Vec::new();
    for d in &shape.dims {
        match d.value {
            Some(0) => {
                cx.error_at(d.span, "a size must be at least 1");
                return None;
            }
            Some(v) => dims.push(v),
            None => return None,
        }
    }
    Some(Shape::Known(dims))
}

fn check_assert(def: &LayerDef, shape: &Shape, producer: &str, cx: &Ctxt) {
    let Some(assert) = &def.assert else { return };
    let Some(expected) = shape_of(assert, cx) else {
        return;
    };
    if matches!(shape, Shape::Known(_)) && *shape != expected {
        let who = match &def.name {
            Some(n) => format!("`{n}`"),
            None if LAYER_KINDS[1..].contains(&def.kind.to_string().as_str()) => {
                format!("`{}` after {producer}", def.kind)
            }
            None => producer.to_string(),
        };
        cx.error_at(assert.span, format!("shape assertion expects {expected} but {who} gives {shape}"));
    }
}

/// How an erroring layer is named in a message: `` `head: dense(128 -> 10)` ``.
fn describe(def: &LayerDef, kind: &LayerKind) -> String {
    match &def.name {
        Some(n) => format!("`{n}: {kind}`"),
        None => format!("`{kind}`"),
    }
}

/// How the layer that produced a shape is named: `` `fc2` `` or `` `dense(784 -> 256)` at position 2 ``.
fn describe_producer(def: &LayerDef, kind: &LayerKind, position: usize) -> String {
    match &def.name {
        Some(n) => format!("`{n}`"),
        None => format!("`{kind}` at position {position}"),
    }
}

/// A layer's kind and arguments, resolved.
enum Spec {
    Dense { expects: Option<(usize, Span)>, outputs: usize, bias: bool },
    Activation(Activation),
}

fn resolve(def: &LayerDef, cx: &Ctxt) -> Option<Spec> {
    let kind = def.kind.to_string();
    let args: &[Arg] = def.args.as_ref().map_or(&[], |a| &a.list);
    let no_args = |a: Activation| {
        if let Some(arg) = args.first() {
            cx.error_at(arg.span(), format!("`{kind}` takes no arguments"));
            None
        } else {
            Some(Spec::Activation(a))
        }
    };
    match kind.as_str() {
        "dense" => resolve_dense(def, args, cx),
        "relu" => no_args(Activation::Relu),
        "sigmoid" => no_args(Activation::Sigmoid),
        "tanh" => no_args(Activation::Tanh),
        "gelu" => no_args(Activation::Gelu),
        "softmax" => no_args(Activation::Softmax),
        "identity" => no_args(Activation::Identity),
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

fn resolve_dense(def: &LayerDef, args: &[Arg], cx: &Ctxt) -> Option<Spec> {
    let mut size: Option<(Option<(usize, Span)>, usize)> = None;
    let mut bias = true;
    let mut ok = true;
    let mut seen_bias = false;
    for arg in args {
        match arg {
            Arg::Positional(_) | Arg::Arrow { .. } if size.is_some() => {
                cx.error_at(arg.span(), "`dense` takes one size (or `in -> out`); unexpected argument");
                ok = false;
            }
            Arg::Positional(v) => match size_value(v, cx) {
                Some(out) => size = Some((None, out)),
                None => ok = false,
            },
            Arg::Arrow { from, to } => match (size_value(from, cx), size_value(to, cx)) {
                (Some(i), Some(o)) => size = Some((Some((i, from.span())), o)),
                _ => ok = false,
            },
            Arg::Keyword { key, value } if key == "bias" => {
                if seen_bias {
                    cx.error_at(key.span(), "`bias` is given twice");
                    ok = false;
                }
                seen_bias = true;
                match bool_value(value, cx) {
                    Some(b) => bias = b,
                    None => ok = false,
                }
            }
            Arg::Keyword { key, .. } => {
                cx.error_at(key.span(), format!("unknown argument `{key}` for `dense`; expected `bias`"));
                ok = false;
            }
        }
    }
    match size {
        Some((expects, outputs)) if ok => Some(Spec::Dense { expects, outputs, bias }),
        Some(_) => None,
        None => {
            if ok {
                let span = def.args.as_ref().map_or(def.kind.span(), |a| a.span);
                cx.error_at(span, "`dense` needs its output size, e.g. `dense(128)` or `dense(784 -> 128)`");
            }
            None
        }
    }
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

fn size_value(v: &Value, cx: &Ctxt) -> Option<usize> {
    match v {
        Value::Lit(Lit::Int(i)) => match i.base10_parse::<usize>() {
            Ok(0) => {
                cx.error_at(i.span(), "a size must be at least 1");
                None
            }
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
        Value::Ident(i) => {
            cx.error_at(i.span(), "expected a number, e.g. `0.1`");
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
            cx.error_at(v.span(), "expected a finite number, e.g. `0.1`");
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
        assert_eq!(m.layers[2].kind, LayerKind::Dense { inputs: 256, outputs: 128, bias: false });
        assert_eq!(m.layers[2].input, Shape::Known(vec![256]));
        assert_eq!(m.layers[3].kind, LayerKind::Activation(Activation::LeakyRelu(0.2)));
        assert_eq!(m.param_count, 784 * 256 + 256 + 256 * 128 + 128 * 10 + 10);
        assert_eq!(*m.output(), Shape::Known(vec![10]));
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
            (quote! { struct N { dense(2) } }, "missing `input: [features]`"),
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
                "unknown layer `desne`; expected one of dense, relu",
            ),
            (quote! { struct N { input: [2], desne(3) } }, "did you mean `dense`?"),
            (quote! { struct N { input: [2], a: dense(3), a: dense(3) } }, "duplicate layer name `a`"),
            (quote! { struct N { input: [0], dense(3) } }, "at least 1"),
            (quote! { struct N { input: [1, 28, 28], dense(3) } }, "only rank-1 inputs"),
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
