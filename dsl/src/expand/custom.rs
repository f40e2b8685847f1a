//! Types used as layers (`act: MySilu => [128]`, `gate: MyGate<64>(0.5) => [64]`,
//! `encoder: Encoder => [4]`): a layer of the user's or another network, both
//! driven through `staticnet::layers::CustomLayer` as a `layers::Custom` field.
//!
//! Each such layer gets a hidden constructor, `__custom_<name>`, the one place
//! where the type must implement `CustomLayer<T, IN, OUT>` for the sizes around
//! it: a mismatch is one error there, spanned on the entry's type and naming the
//! layer and both shapes (a trait local to that function carries the message),
//! and every other use of the `Custom` field compiles whatever the sizes.
//! Networks implement `CustomLayer` for their own sizes and `Default` (their
//! `zeros`), so the macro never needs to know which kind a type is.

use super::types::nested_type;
use super::Net;
use crate::model::{Layer, LayerKind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// The hidden constructor's name: `__custom_gate`.
fn wrapper_name(l: &Layer) -> syn::Ident {
    format_ident!("__custom_{}", l.ident.to_string().trim_start_matches("r#"))
}

/// The field's value: the layer built (`new(args)` or `Default`) and wrapped,
/// and with `random` its parameters drawn from `init` and `rng`.
pub fn construct(l: &Layer, random: bool) -> TokenStream {
    let LayerKind::Nested { path, args } = &l.kind else {
        unreachable!("only types used as layers are built here")
    };
    let ty = nested_type(path, quote!(T));
    let layer = match args {
        Some(args) => quote!(<#ty>::new(#args)),
        None => quote!(<#ty as ::core::default::Default>::default()),
    };
    let wrapper = wrapper_name(l);
    if random {
        quote!(Self::#wrapper(#layer).init_params(init, &mut rng))
    } else {
        quote!(Self::#wrapper(#layer))
    }
}

/// The hidden constructors of the network's types used as layers.
pub fn wrappers(net: &Net<'_>) -> TokenStream {
    let wrappers = net.model.layers.iter().filter_map(|l| match &l.kind {
        LayerKind::Nested { path, .. } => Some(wrapper(l, path)),
        _ => None,
    });
    quote!(#(#wrappers)*)
}

/// `fn __custom_gate(layer: MyGate<64, T>) -> Custom<T, MyGate<64, T>, 128, 64>`.
fn wrapper(l: &Layer, path: &syn::Path) -> TokenStream {
    let sn = quote!(::staticnet);
    let ty = nested_type(path, quote!(T));
    let (i, o) = (l.input.size(), l.output.size());
    let wrapper = wrapper_name(l);
    let message = format!(
        "`{}: {}` gets {} ({i} values) and is declared to give {} ({o} values), but `{}` takes or gives other sizes",
        l.name, l.kind, l.input, l.output, l.kind
    );
    let label = format!("`{}` does not take {i} values per sample to {o}", l.kind);
    let note = "a layer of your own implements `staticnet::layers::CustomLayer<T, IN, OUT>` for the sizes \
                around it (the help below lists the sizes it has); a network made by `network!` takes its \
                `INPUT_SHAPE` to its `OUTPUT_SHAPE`; fix the shape after `=>` or the layers before it";
    // Spanned on the type as written, so the error points at the entry.
    let call = quote_spanned!(path.span()=> Fits::<T, #i, #o>::wrap(layer));
    quote! {
        #[doc(hidden)]
        fn #wrapper(layer: #ty) -> #sn::layers::Custom<T, #ty, #i, #o> {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            trait Fits<T: #sn::Float, const I: usize, const O: usize>: #sn::Params<T> + ::core::marker::Sized {
                fn wrap(self) -> #sn::layers::Custom<T, Self, I, O>;
            }
            impl<T: #sn::Float, L: #sn::layers::CustomLayer<T, I, O>, const I: usize, const O: usize> Fits<T, I, O> for L {
                fn wrap(self) -> #sn::layers::Custom<T, Self, I, O> {
                    #sn::layers::Custom::new(self)
                }
            }
            #call
        }
    }
}

/// `CustomLayer` and `Default` for the network, so another can use it as a
/// layer (`encoder: Encoder => [..]`): its passes, and `init` drawing it
/// afresh from one seed of the outer network's generator.
pub fn network_impls(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, input_size, output_size, trace, grads, .. } = net;
    let name = &model.name;
    let (i, o) = (input_size, output_size);
    let layer = quote!(<Self as #sn::layers::Layer<T, #i, #o>>);
    quote! {
        #cfg
        /// The network as a layer of another (`encoder: Encoder => [..]`).
        impl<#gp T: #sn::Float> #sn::layers::CustomLayer<T, #i, #o> for #name<#ga T> {
            type Workspace = #trace<#ga T>;

            fn forward(&self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>) {
                #layer::forward(self, x, y)
            }

            fn forward_with(&self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>, ws: &mut #trace<#ga T>) {
                #layer::forward_with(self, x, y, ws)
            }

            fn forward_train(&mut self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>, ws: &mut #trace<#ga T>) {
                #layer::forward_train(self, x, y, ws)
            }

            fn backward(
                &self,
                x: &#sn::Batch<T, #i>,
                y: &#sn::Batch<T, #o>,
                dy: &#sn::Batch<T, #o>,
                ws: &mut #trace<#ga T>,
                g: &mut #grads<#ga T>,
                dx: ::core::option::Option<&mut #sn::Batch<T, #i>>,
            ) {
                #layer::backward(self, x, y, dy, ws, g, dx)
            }

            fn init_params(&mut self, init: #sn::init::Init, rng: &mut #sn::init::SeededRng) {
                *self = Self::init(init, #sn::init::next_seed(rng));
            }

            fn to_onnx(&self, g: &mut #sn::onnx::Graph, x: &str) -> #sn::Result<::std::string::String> {
                #sn::onnx::Export::<T>::onnx_layers(self, g, x)
            }
        }

        #cfg
        /// The network with all weights zero ([`Self::zeros`]).
        impl<#gp T: #sn::Float> ::core::default::Default for #name<#ga T> {
            fn default() -> Self {
                Self::zeros()
            }
        }
    }
}
