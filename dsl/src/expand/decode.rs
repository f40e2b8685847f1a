//! Incremental decoding: `staticnet::decode::StepLayer` for every network whose
//! layers can all run one step at a time, and, for token networks, the
//! `Network::decoder` that hands `generate` a `TokenDecoder`.
//!
//! A network decodes when its input is `tokens[T]` or `[T, F]`, every layer
//! keeps `[T, ..]` and acts on each step alone or looks only back (embedding,
//! positional, `dense`/`layer_norm`/`softmax` per step, element-wise
//! activations, dropout, `residual` blocks without projection whose bodies
//! decode, causal attention, `lstm`/`gru`). Anything else (non-causal attention,
//! `conv1d`, pooling, `last`, nested types, `parallel`) and the network
//! gets neither impl: decoding it is a compile error, never a wrong answer.

use super::layers::layer_ref;
use super::types::layer_type;
use super::Net;
use crate::model::{Activation, Layer, LayerKind, Model, Shape};
use proc_macro2::TokenStream;
use quote::quote;

/// Features per step of a sequence shape: 1 (the id) for `tokens[T]`, `F` for `[T, F]`.
fn step_size(shape: &Shape) -> Option<usize> {
    match shape {
        Shape::Tokens(_) => Some(1),
        _ => shape.steps_features().map(|[_, f]| f),
    }
}

/// [`step_size`] of a shape that [`decodes`] checked.
fn sized(shape: &Shape) -> usize {
    step_size(shape).expect("checked by `decodes`: a sequence shape")
}

/// Whether every layer of `layers` can run one step at a time.
fn steps_alone(layers: &[Layer]) -> bool {
    layers
        .iter()
        .all(|l| step_size(&l.output).is_some() && step_size(&l.input).is_some() && kind_decodes(&l.kind))
}

fn kind_decodes(kind: &LayerKind) -> bool {
    match kind {
        LayerKind::Embedding { .. } | LayerKind::Positional { .. } | LayerKind::Dropout { .. } => true,
        LayerKind::PerStep { .. } => true,
        // Softmax over a whole `[T, V]` sample mixes the steps.
        LayerKind::Activation(a) => !matches!(a, Activation::Softmax | Activation::LogSoftmax),
        LayerKind::Attention { causal, .. } => *causal,
        // The state is the cache.
        LayerKind::Recurrent { .. } => true,
        LayerKind::Residual { body, projection: None } => steps_alone(body),
        _ => false,
    }
}

/// Whether `model` gets a `StepLayer` impl.
fn decodes(model: &Model) -> bool {
    step_size(&model.input).is_some() && steps_alone(&model.layers)
}

/// `impl StepLayer<T, IN, OUT>` for a network that decodes; nothing otherwise.
pub fn step_impl(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, .. } = net;
    let steps = net.steps();
    let (Some(input), Some(output)) = (step_size(&model.input), step_size(model.output())) else {
        return TokenStream::new();
    };
    if !decodes(model) || steps.is_empty() {
        return TokenStream::new();
    }
    let name = &model.name;
    let step_trait = |l: &Layer| {
        let (i, o) = (sized(&l.input), sized(&l.output));
        let ty = layer_type(model, l);
        quote!(<#ty as #sn::decode::StepLayer<T, #i, #o>>)
    };
    let caches = steps.iter().map(|l| {
        let tr = step_trait(l);
        quote!(#tr::Cache)
    });
    let make_caches = steps.iter().map(|l| {
        let (tr, layer) = (step_trait(l), layer_ref(model, l));
        quote!(#tr::step_cache(&#layer))
    });
    let inner = &steps[..steps.len() - 1];
    let outputs = inner.iter().map(|l| {
        let o = sized(&l.output);
        quote!(#sn::Batch<T, #o>)
    });
    let make_outputs = inner.iter().map(|l| {
        let o = sized(&l.output);
        quote!(#sn::Batch::<T, #o>::zeros(1))
    });
    let calls = steps.iter().enumerate().map(|(k, l)| {
        let (tr, layer, own) = (step_trait(l), layer_ref(model, l), syn::Index::from(k));
        let x = match k {
            0 => quote!(x),
            _ => {
                let prev = syn::Index::from(k - 1);
                quote!(&out.#prev)
            }
        };
        let y = if k + 1 == steps.len() { quote!(y) } else { quote!(&mut out.#own) };
        quote! { #tr::step(&#layer, #x, pos, #y, &mut c.#own); }
    });
    quote! {
        #cfg
        /// One step at a time (incremental decoding): each layer's step, in order.
        impl<#gp T: #sn::Float> #sn::decode::StepLayer<T, #input, #output> for #name<#ga T> {
            type Cache = ((#(#caches,)*), (#(#outputs,)*));

            fn step_cache(&self) -> Self::Cache {
                ((#(#make_caches,)*), (#(#make_outputs,)*))
            }

            #[allow(unused_variables)]
            fn step(&self, x: &#sn::Batch<T, #input>, pos: usize, y: &mut #sn::Batch<T, #output>, cache: &mut Self::Cache) {
                let (c, out) = cache;
                #(#calls)*
            }
        }
    }
}

/// `Network::decoder` for a token network that decodes (inside the `Network` impl); nothing otherwise.
pub fn decoder_method(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, .. } = net;
    match (&model.input, step_size(model.output())) {
        (Shape::Tokens(window), Some(vocab)) if decodes(model) && !net.steps().is_empty() => quote! {
            fn decoder(&self) -> ::core::option::Option<::std::boxed::Box<dyn #sn::decode::Decoder<T> + '_>> {
                ::core::option::Option::Some(::std::boxed::Box::new(
                    #sn::decode::TokenDecoder::<T, Self, #window, #vocab>::new(self),
                ))
            }
        },
        _ => TokenStream::new(),
    }
}
