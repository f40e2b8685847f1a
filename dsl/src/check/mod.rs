//! [`NetworkDef`] to [`Model`]: resolves every layer and its arguments, infers
//! each layer's shape and checks it against what the layer needs, every `=>`
//! assertion and `output:`. Each mistake is one spanned error; after a mistake
//! the shape becomes unknown (or continues from the layer's declared sizes),
//! so it is not reported again downstream.
//!
//! This file orders the entries (`input:`, the layers, `output:`) and names
//! the layers, then hands each layer to its entry in the layer table:
//! - `table.rs`: every layer kind (name, keywords, resolver, shape rule) and "did you mean";
//! - `args.rs`: a layer's arguments to a `Spec` (`values.rs`: the values inside them);
//! - `shapes.rs`: the shape rules of plain layers, written shapes, assertions;
//! - `sequences.rs`: the rules on rank 2, `[steps, features]` (sequence layers, per-step forms),
//!   `seq_args.rs` the sequence layers' arguments;
//! - `blocks.rs`: `residual`, `parallel` and nested networks;
//! - `tokens.rs`: `input: tokens[T]` and `embedding`, the one layer that takes token ids.

mod args;
mod blocks;
#[cfg(test)]
mod geometry;
#[cfg(test)]
mod hint_tests;
pub(crate) mod hints;
mod seq_args;
#[cfg(test)]
mod sequence_tests;
mod sequences;
mod shapes;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod token_tests;
mod tokens;
mod values;

use crate::ast::{Item, LayerDef, NetworkDef, Role, ShapeLit};
use crate::ctxt::Ctxt;
use crate::model::{Count, Layer, LayerKind, Model, Shape};
use proc_macro2::Span;
use quote::format_ident;
use std::collections::HashMap;
use syn::ext::IdentExt;

/// Checks a whole network; `None` when anything is wrong (every mistake is in `cx`).
pub fn check(def: NetworkDef, cx: &Ctxt) -> Option<Model> {
    let entries = order_entries(def.items, cx);
    check_attrs(&def.attrs, cx);

    let input_shape = match &entries.input {
        Some(Some((shape, false))) => shapes::input_shape(shape, cx),
        Some(Some((shape, true))) => tokens::input(shape, cx),
        Some(None) => Shape::Unknown,
        None => {
            cx.error_at(
                def.name.span(),
                "missing `input: [..]`: declare the input shape first, e.g. `input: [784],` or `input: [1, 28, 28],`",
            );
            Shape::Unknown
        }
    };
    let layers = entries.layers;
    if layers.is_empty() {
        cx.error_at(def.name.span(), "a network needs at least one layer, e.g. `dense(10)`");
    } else if layers.iter().all(|l| l.as_ref().is_some_and(|l| l.kind == "flatten")) {
        cx.error_at(def.name.span(), "a network needs at least one layer besides `flatten`");
    }

    let (model_layers, shape, producer) = check_sequence(&layers, input_shape.clone(), "`input`".into(), cx);

    if let Some((_, Some(written))) = &entries.output {
        if let Some(expected) = shapes::shape_of(written, cx) {
            if shape.is_known() && shape != expected {
                cx.error_at(written.span, format!("output expects {expected} but {producer} gives {shape}"));
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

/// The network's entries sorted by role; `None` inside: the entry was there
/// but broken (already reported).
struct Entries {
    input: Option<Option<(ShapeLit, bool)>>,
    output: Option<(Span, Option<ShapeLit>)>,
    layers: Vec<Option<LayerDef>>,
}

/// Sorts the entries, reporting duplicates and misplaced `input:`/`output:`.
fn order_entries(items: Vec<Item>, cx: &Ctxt) -> Entries {
    let mut entries = Entries { input: None, output: None, layers: Vec::new() };
    let mut output_misplaced = false;
    for item in items {
        match item {
            Item::Input { key, shape, tokens } => {
                if entries.input.is_some() {
                    cx.error_at(key.span(), "duplicate `input:`; a network has one input");
                } else if !entries.layers.is_empty() || entries.output.is_some() {
                    cx.error_at(key.span(), "`input:` must come first, before any layer");
                }
                entries.input.get_or_insert(Some((shape, tokens)));
            }
            Item::Invalid(Role::Input, _) => {
                entries.input.get_or_insert(None);
            }
            Item::Output { key, shape } => {
                if entries.output.is_some() {
                    cx.error_at(key.span(), "duplicate `output:`; a network has one output");
                } else {
                    entries.output = Some((key.span(), Some(shape)));
                }
            }
            Item::Invalid(Role::Output, span) => {
                entries.output.get_or_insert((span, None));
            }
            Item::Layer(_) | Item::Invalid(Role::Layer, _) => {
                if let (Some((key, _)), false) = (&entries.output, output_misplaced) {
                    cx.error_at(*key, "`output:` must be the last entry, after every layer");
                    output_misplaced = true;
                }
                entries.layers.push(match item {
                    Item::Layer(layer) => Some(layer),
                    _ => None,
                });
            }
        }
    }
    entries
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
        check_name(layers, position, &ident, &name, &mut names, cx);
        let taken = tokens::check_taker(def, &shape, &producer, cx);
        let Some((kind, out_shape)) = taken.then(|| check_layer(def, &shape, &producer, cx)).flatten() else {
            shape = Shape::Unknown;
            continue;
        };
        if !table::keeps_shape(&def.kind.to_string()) {
            producer = shapes::describe_producer(def, kind.as_ref(), position);
        }
        let input = std::mem::replace(&mut shape, out_shape);
        shapes::check_assert(def, &shape, &producer, cx);
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

/// Reports a reserved name, or one already used (written, or generated for an unnamed layer).
fn check_name(
    layers: &[Option<LayerDef>],
    position: usize,
    ident: &syn::Ident,
    name: &str,
    names: &mut HashMap<String, (usize, bool)>,
    cx: &Ctxt,
) {
    if name.starts_with("__") {
        cx.error_at(ident.span(), "layer names starting with `__` are reserved for generated code");
    }
    let written = layers[position].as_ref().is_some_and(|d| d.name.is_some());
    match names.insert(name.to_string(), (position, written)) {
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
}

/// One layer through its table entry: its arguments resolved, then its shape
/// rule applied. `None` when the kind is unknown or its arguments are wrong.
fn check_layer(
    def: &LayerDef,
    shape: &Shape,
    producer: &str,
    cx: &Ctxt,
) -> Option<(Option<LayerKind>, Shape)> {
    if let Some(path) = &def.nested {
        return Some(blocks::nested(path, shape, def, cx));
    }
    let kind = def.kind.to_string();
    let Some(entry) = table::lookup(&kind) else {
        let message = match kind.as_str() {
            "input" | "output" => format!("expected `{kind}: [..]` with a colon"),
            _ => table::unknown_layer(&kind),
        };
        cx.error_at(def.kind.span(), message);
        return None;
    };
    let args = def.args.as_ref().map_or(&[][..], |a| &a.list);
    let call = args::Call { entry, def, args };
    if hints::positional(&call, cx) {
        return None;
    }
    let spec = (entry.resolve)(&call, cx)?;
    Some((entry.shape)(spec, shape, def, producer, cx))
}

/// The `state_dict` prefix: the user's name, or the position (as in `nn.Sequential`).
fn param_name(def: &LayerDef, position: usize) -> String {
    def.name.as_ref().map_or_else(|| position.to_string(), |n| n.unraw().to_string())
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
