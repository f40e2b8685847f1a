//! The network's inherent items: its constants (`INPUT_SHAPE`, `LAYERS`,
//! `PARAM_COUNT` …), `summary`/`to_dot`, constructors, `forward`, `save` and
//! `load`, and the size checks only the compiler can evaluate.

use super::composite::composite_name;
use super::layers::construct;
use super::params::param_count_of;
use super::types::nested_type;
use super::Net;
use crate::model::{LayerKind, Shape};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// What only the compiler can check for a network with size parameters: that
/// an instantiation's sizes fit. Without
/// size parameters the checks run as soon as the network is compiled (`free`);
/// with them, once per instantiation (`instance`), when `init`/`zeros` is
/// compiled for it (`on_use`).
pub struct SizeChecks {
    pub free: TokenStream,
    instance: TokenStream,
    on_use: TokenStream,
}

impl SizeChecks {
    pub fn of(net: &Net<'_>) -> Self {
        let Net { model, cfg, param_count, .. } = net;
        let name = &model.name;
        // A type used as a layer is checked by its hidden constructor (`custom.rs`).
        let mut checks: Vec<TokenStream> = Vec::new();
        for p in &model.generics {
            let ident = &p.ident;
            let msg = format!("`{name}`: the size parameter `{ident}` must be at least 1");
            checks.push(quote!(::core::assert!(#ident >= 1, #msg);));
        }
        if !model.generics.is_empty() {
            let max = crate::model::MAX_PARAMS;
            let msg = format!("`{name}`: these sizes give the network too many parameters to allocate");
            checks.push(quote!(::core::assert!(#param_count <= #max, #msg);));
        }
        let (free, instance, on_use) = if checks.is_empty() {
            (quote!(), quote!(), quote!())
        } else if model.generics.is_empty() {
            (quote!(#cfg const _: () = { #(#checks)* };), quote!(), quote!())
        } else {
            (
                quote!(),
                quote! {
                    #[doc(hidden)]
                    const __SIZES_FIT: () = { #(#checks)* };
                },
                quote!(let () = Self::__SIZES_FIT;),
            )
        };
        SizeChecks { free, instance, on_use }
    }
}

/// The constants, `summary`, `to_dot` and `new`, on the `f32` network.
pub fn constants(net: &Net<'_>, checks: &SizeChecks) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, input_size, output_size, param_count, .. } = net;
    let name = &model.name;
    let (input_shape, output_shape) = (model.input.dims(), model.output().dims());
    let layer_infos = layer_infos(net);
    // A token network's input shows as `tokens[T]`.
    let (summary, to_dot) = match model.input {
        Shape::Tokens(_) => (quote!(token_summary), quote!(token_dot)),
        _ => (quote!(summary), quote!(to_dot)),
    };
    let use_checks = &checks.on_use;
    // `Mlp`, or `Mlp<128>` for an instantiation of a network with size parameters.
    let display_name = if model.generics.is_empty() {
        quote!(::core::stringify!(#name))
    } else {
        let idents = model.generics.iter().map(|g| &g.ident);
        let pattern = format!("{name}<{}>", vec!["{}"; model.generics.len()].join(", "));
        quote!(&::std::format!(#pattern, #(#idents),*))
    };
    // The constants sit on the `f32` network so that `Net::LAYERS` needs no
    // type annotation; generic code reads `Params::PARAM_COUNT` instead.
    quote! {
        #cfg
        impl<#gp> #name<#ga f32> {
            /// The shape of one input sample.
            pub const INPUT_SHAPE: &'static [usize] = &[#(#input_shape),*];
            /// The shape of one output sample.
            pub const OUTPUT_SHAPE: &'static [usize] = &[#(#output_shape),*];
            /// Values per input sample (the batch's row count).
            pub const INPUT_SIZE: usize = #input_size;
            /// Values per output sample.
            pub const OUTPUT_SIZE: usize = #output_size;
            /// Trainable scalars in the whole network.
            pub const PARAM_COUNT: usize = #param_count;
            /// Every layer with its shapes and parameter count, in order.
            pub const LAYERS: &'static [#sn::network::LayerInfo] = &[#(#layer_infos),*];

            /// A Keras-style table of the layers: name, kind, output shape and
            /// parameter count, with totals (parameters, buffers, bytes as f32).
            pub fn summary() -> ::std::string::String {
                #sn::inspect::#summary(#display_name, Self::INPUT_SHAPE, Self::LAYERS)
            }

            /// The data-flow graph in Graphviz DOT, each node labelled with its
            /// layer and output shape: `dot -Tsvg` draws it.
            pub fn to_dot() -> ::std::string::String {
                #sn::inspect::#to_dot(#display_name, Self::INPUT_SHAPE, Self::LAYERS)
            }

            /// An `f32` network initialised from `seed`: He before ReLU-family
            /// activations, Glorot elsewhere, zero biases.
            pub fn new(seed: u64) -> Self {
                #use_checks
                Self::init(#sn::init::Init::Auto, seed)
            }

            /// Loads an `f32` network saved by `save`, or a PyTorch `state_dict` of the
            /// same architecture; every name, dtype and shape is checked first. Other
            /// float types: `Net::<f64>::load` (`staticnet::network::Build`, in the prelude).
            pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> #sn::Result<Self> {
                <Self as #sn::network::Build<f32>>::load(path)
            }
        }
    }
}

/// `LAYERS`: each layer's `LayerInfo`, with a composite's or nested network's layers as children.
fn layer_infos(net: &Net<'_>) -> Vec<TokenStream> {
    let Net { model, sn, ga, .. } = net;
    model.layers.iter().map(|l| {
        let (name, pname) = (&l.name, &l.param_name);
        let kind = l.kind.to_string();
        let (input, output) = (l.input.dims(), l.output.dims());
        let params = param_count_of(&l.kind.param_count(&l.output.size()), std::slice::from_ref(l));
        let buffers = crate::model::buffer_count(std::slice::from_ref(l));
        let children: Vec<TokenStream> = match &l.kind {
            LayerKind::Residual { .. } => {
                let body = format_ident!("{}_body", composite_name(&model.name, l));
                vec![quote!(<#body<#ga f32>>::LAYERS)]
            }
            LayerKind::Parallel { branches, .. } => (0..branches.len())
                .map(|b| {
                    let branch = format_ident!("{}_{}", composite_name(&model.name, l), b);
                    quote!(<#branch<#ga f32>>::LAYERS)
                })
                .collect(),
            _ => Vec::new(),
        };
        let children = match &l.kind {
            LayerKind::Nested { path, .. } => {
                let nested = nested_type(path, quote!(f32));
                quote!(<#nested as #sn::Params<f32>>::SUBLAYERS)
            }
            _ => quote!(&[#(#children),*]),
        };
        quote! {
            #sn::network::LayerInfo {
                name: #name, param_name: #pname, kind: #kind,
                input_shape: &[#(#input),*], output_shape: &[#(#output),*], params: #params, buffers: #buffers,
                children: #children,
            }
        }
    }).collect()
}

/// `init`, `zeros`, `forward`, `save` and `load`, for any scalar type.
pub fn methods(net: &Net<'_>, checks: &SizeChecks) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, input_size, output_size, trace, grads, .. } = net;
    let name = &model.name;
    let SizeChecks { instance: instance_checks, on_use: use_checks, .. } = checks;
    let custom_wrappers = super::custom::wrappers(net);
    let fields = net.fields();
    let constructors = fields.iter().map(|l| {
        let ident = &l.ident;
        let value = construct(model, l, true);
        quote! { #ident: #value }
    });
    let zero_fields = fields.iter().map(|l| {
        let ident = &l.ident;
        let value = construct(model, l, false);
        quote! { #ident: #value }
    });
    quote! {
        #cfg
        impl<#gp T: #sn::Float> #name<#ga T> {
            #instance_checks
            #custom_wrappers

            /// A network with weights drawn by `init` from `seed` and zero biases.
            /// The same seed gives the same weights.
            pub fn init(init: #sn::init::Init, seed: u64) -> Self {
                #use_checks
                let mut rng = #sn::init::seeded_rng(seed);
                let _ = (&init, &mut rng);
                #name { #(#constructors,)* __scalar: ::core::marker::PhantomData }
            }

            /// A network whose weights are all zero (norm layers start at their
            /// identity), e.g. to load weights into.
            pub fn zeros() -> Self {
                #use_checks
                #name { #(#zero_fields,)* __scalar: ::core::marker::PhantomData }
            }

            /// The inference pass over a batch (one sample per column).
            pub fn forward(&self, x: &#sn::Batch<T, #input_size>) -> #sn::Batch<T, #output_size> {
                <Self as #sn::Network<T, #input_size, #output_size>>::forward(self, x)
            }

            /// The training pass ([`Network::forward_train`](#sn::Network::forward_train)), also
            /// inherent so that the call is unambiguous with `CustomLayer` in scope.
            pub fn forward_train<'t>(
                &mut self,
                x: &#sn::Batch<T, #input_size>,
                trace: &'t mut #trace<#ga T>,
            ) -> &'t #sn::Batch<T, #output_size> {
                <Self as #sn::Network<T, #input_size, #output_size>>::forward_train(self, x, trace)
            }

            /// The backward pass ([`Network::backward`](#sn::Network::backward)), also inherent
            /// so that the call is unambiguous with `CustomLayer` in scope.
            pub fn backward(
                &self,
                x: &#sn::Batch<T, #input_size>,
                trace: &mut #trace<#ga T>,
                d_out: &#sn::Batch<T, #output_size>,
                grads: &mut #grads<#ga T>,
                d_input: ::core::option::Option<&mut #sn::Batch<T, #input_size>>,
            ) {
                <Self as #sn::Network<T, #input_size, #output_size>>::backward(self, x, trace, d_out, grads, d_input)
            }

            /// Saves the parameters and buffers as safetensors under PyTorch
            /// `state_dict` names, atomically (see `staticnet::persist`).
            pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #sn::Result<()> {
                #sn::persist::save(self, path)
            }

        }

        // `Net::<f64>::new(seed)`, `Net::<f64>::load(path)` and generic code; the `f32`
        // network has both as inherent functions too, so they need no annotation there.
        #cfg
        impl<#gp T: #sn::Float> #sn::network::Build<T> for #name<#ga T> {
            fn new(seed: u64) -> Self {
                Self::init(#sn::init::Init::Auto, seed)
            }

            fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> #sn::Result<Self> {
                let mut net = Self::zeros();
                #sn::persist::load_into(&mut net, path)?;
                ::core::result::Result::Ok(net)
            }
        }
    }
}
