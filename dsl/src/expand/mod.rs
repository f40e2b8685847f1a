//! [`Model`] to Rust: the network struct, its batch aliases, trace and
//! gradient types, and straight-line forward and backward passes.
//!
//! Every layer is driven through `staticnet::layers::Layer` with its sizes as
//! literals; no shape is checked at run time because every one was checked
//! here. Layers with parameters or state are fields of the struct; the others
//! (activations, pools) are written inline as values. `flatten` emits no code:
//! a `[C, H, W]` batch is already `C·H·W` features per column.
//!
//! [`expand`] assembles the parts, each from its own file:
//! - `types.rs`: the struct, aliases, `…Trace`/`…Buffers`/`…Workspaces`/`…Gradients`, `Clone`, `Debug`;
//! - `layers.rs`: each layer's core type, constructor and how the passes reach it;
//! - `inherent.rs`: constants (`LAYERS`, shapes), `init`/`zeros`/`save`/`load`, the size checks;
//! - `params.rs`: the `Params` impl (parameter names and order);
//! - `passes.rs`: the forward, training, inference and backward passes (with fusions), and the
//!   `Network`, `Layer` and `NestedNetwork` impls;
//! - `composite.rs`: `residual` and `parallel` blocks, their bodies expanded as hidden networks;
//! - `onnx.rs`: the `onnx::Export` impl, the inference pass as ONNX nodes.
//! - `decode.rs`: incremental decoding (`decode::StepLayer`, `Network::decoder`) for networks that can.
//!   `Network` and `Layer` impls; `custom.rs`: types used as layers (the
//!   user's own, or networks) and the network's `CustomLayer` impl;
//! - `composite.rs`: `residual` and `parallel` blocks, their bodies expanded as hidden networks.

mod composite;
mod custom;
mod decode;
mod fused;
mod inherent;
mod layers;
mod onnx;
mod params;
mod passes;
mod types;

use crate::model::{Layer, LayerKind, Model, Size};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use types::Generics;

/// The spellings every part of one network's expansion shares.
struct Net<'a> {
    model: &'a Model,
    /// `::staticnet`: generated code reaches the library through the facade only.
    sn: TokenStream,
    /// The size parameters, as declared, as `impl` parameters and as arguments.
    gd: TokenStream,
    gp: TokenStream,
    ga: TokenStream,
    /// The network's `#[cfg]` and `#[allow]`, repeated on every item generated for it.
    cfg: TokenStream,
    input_size: Size,
    output_size: Size,
    /// `PARAM_COUNT`'s value, nested networks' counts included.
    param_count: TokenStream,
    trace: syn::Ident,
    buffers: syn::Ident,
    workspaces: syn::Ident,
    grads: syn::Ident,
}

impl<'a> Net<'a> {
    fn of(model: &'a Model) -> Self {
        let Generics { decl: gd, params: gp, args: ga } = Generics::of(model);
        // `#[cfg]` on the network applies to everything generated for it.
        let cfgs = model.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("allow"));
        let name = &model.name;
        Net {
            model,
            sn: quote!(::staticnet),
            gd,
            gp,
            ga,
            cfg: quote!(#(#cfgs)*),
            input_size: model.input.size(),
            output_size: model.output().size(),
            param_count: params::param_count_of(&model.param_count, &model.layers),
            trace: format_ident!("{}Trace", name),
            buffers: format_ident!("{}Buffers", name),
            workspaces: format_ident!("{}Workspaces", name),
            grads: format_ident!("{}Gradients", name),
        }
    }

    /// The layers that are fields of the struct: those with parameters or state.
    fn fields(&self) -> Vec<&'a Layer> {
        self.model.layers.iter().filter(|l| l.kind.is_field()).collect()
    }

    /// The layers with parameters (and gradients).
    fn with_params(&self) -> Vec<&'a Layer> {
        self.model.layers.iter().filter(|l| l.kind.has_params()).collect()
    }

    /// The layers that run: `flatten` is only a change of view.
    fn steps(&self) -> Vec<&'a Layer> {
        self.model.layers.iter().filter(|l| l.kind != LayerKind::Flatten).collect()
    }
}

/// The whole expansion of a checked network.
pub fn expand(model: &Model) -> TokenStream {
    let net = Net::of(model);
    let checks = inherent::SizeChecks::of(&net);
    let composites = composite::all(model);
    let network_struct = types::network_struct(&net);
    let pass_types = types::pass_types(&net);
    let defaults = types::defaults(&net);
    let constants = inherent::constants(&net, &checks);
    let methods = inherent::methods(&net, &checks);
    let clone_debug = types::clone_and_debug(&net);
    let params = params::params_impl(&net);
    let free_checks = &checks.free;
    let layer = passes::layer_impls(&net);
    let network = passes::network_impl(&net);
    let onnx = onnx::export_impl(&net);
    let custom = custom::network_impls(&net);
    let decode = decode::step_impl(&net);
    quote! {
        #composites
        #network_struct
        #pass_types
        #defaults
        #constants
        #methods
        #clone_debug
        #params
        #free_checks
        #layer
        #network
        #onnx
        #custom
        #decode
    }
}
