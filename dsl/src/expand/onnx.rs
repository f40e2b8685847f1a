//! The `staticnet::onnx::Export` impl: the inference pass as ONNX nodes, one
//! call into `staticnet::onnx::{ops, seq}` per layer with the sizes checked
//! here, each under the layer's `state_dict` name (so initializers are named
//! `fc1.weight`, `block1.body.0.weight`). Blocks and nested networks recurse
//! into their hidden or nested network's own `onnx_layers`.

use super::composite::projection_layer;
use super::layers::conv_geometry;
use super::Net;
use crate::model::{Activation, Cell, Join, Layer, LayerKind};
use proc_macro2::TokenStream;
use quote::quote;

/// `impl Export<T> for Net<T>`.
pub fn export_impl(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, .. } = net;
    let name = &model.name;
    let input = model.input.dims();
    let output = model.output().dims();
    let steps = model.layers.iter().map(|l| {
        let (pname, ident) = (&l.param_name, &l.ident);
        let body = layer(l, &quote!(self.#ident));
        quote! {
            let x = g.scoped(#pname, |g| -> #sn::Result<::std::string::String> { #body })?;
        }
    });
    quote! {
        #cfg
        impl<#gp T: #sn::Float> #sn::onnx::Export<T> for #name<#ga T> {
            fn onnx_name(&self) -> &'static str {
                ::core::stringify!(#name)
            }
            fn onnx_input_dims(&self) -> ::std::vec::Vec<usize> {
                ::std::vec![#(#input),*]
            }
            fn onnx_output_dims(&self) -> ::std::vec::Vec<usize> {
                ::std::vec![#(#output),*]
            }
            fn onnx_layers(&self, g: &mut #sn::onnx::Graph, x: &str) -> #sn::Result<::std::string::String> {
                let x = ::std::string::String::from(x);
                #(#steps)*
                ::core::result::Result::Ok(x)
            }
        }
    }
}

/// The body of one layer's closure: reads `g` and `x`, gives `Result<String>`.
/// `at` reaches the layer's value (`self.fc1`, `self.down.projection.0`).
fn layer(l: &Layer, at: &TokenStream) -> TokenStream {
    let o = quote!(::staticnet::onnx);
    let ok = |e: TokenStream| quote!(::core::result::Result::Ok(#e));
    let dims = l.input.dims();
    match &l.kind {
        LayerKind::Dense { .. } => quote!(#o::ops::dense(g, &x, &#at, false)),
        LayerKind::Conv2d { geometry, .. } => {
            let geo = conv_geometry(geometry);
            quote!(#o::ops::conv2d(g, &x, &#at, &#geo))
        }
        LayerKind::MaxPool(p) | LayerKind::AvgPool(p) => {
            let op = if matches!(l.kind, LayerKind::MaxPool(_)) { "MaxPool" } else { "AveragePool" };
            let ([kh, kw], [sh, sw]) = (p.kernel, p.stride);
            ok(quote!(#o::ops::pool2d(g, &x, #op, [#kh, #kw], [#sh, #sw])))
        }
        LayerKind::GlobalAvgPool { .. } => ok(quote!(#o::ops::global_avg_pool(g, &x))),
        LayerKind::Flatten => ok(quote!(#o::ops::flatten(g, &x))),
        LayerKind::BatchNorm { eps, .. } => quote!(#o::ops::batch_norm(g, &x, &#at, #eps)),
        LayerKind::LayerNorm { eps } => {
            let rank = dims.len();
            quote!(#o::ops::layer_norm(g, &x, &#at, #eps, #rank))
        }
        LayerKind::Dropout { .. } => ok(quote!(#o::ops::unary(g, &x, "Identity"))),
        LayerKind::Activation(a) => ok(activation(*a, &quote!(&[#(#dims),*]), false)),
        LayerKind::Residual { projection, .. } => {
            let skip = match projection.as_deref() {
                None => quote!(x.clone()),
                Some(kind) => {
                    let p = layer(&projection_layer(l, kind), &quote!(#at.projection.0));
                    quote!(g.scoped("projection", |g| -> ::staticnet::Result<::std::string::String> { #p })?)
                }
            };
            quote! {{
                let y = g.scoped("body", |g| #o::Export::<T>::onnx_layers(&#at.body, g, &x))?;
                let skip = #skip;
                ::core::result::Result::Ok(#o::ops::add(g, &y, &skip))
            }}
        }
        LayerKind::Parallel { join, branches } => {
            let outs = (0..branches.len()).map(|k| {
                let rest = (0..k).map(|_| quote!(.rest));
                let label = k.to_string();
                quote!(g.scoped(#label, |g| #o::Export::<T>::onnx_layers(&#at.branches #(#rest)* .net, g, &x))?)
            });
            let concat = *join == Join::Concat;
            quote! {{
                let outs = [#(#outs),*];
                ::core::result::Result::Ok(#o::ops::join(g, &outs, #concat))
            }}
        }
        LayerKind::Nested { .. } => quote!(#at.to_onnx(g, &x)),
        LayerKind::PerStep { inner, .. } => match &**inner {
            LayerKind::Dense { .. } => quote!(#o::ops::dense(g, &x, &#at.inner, true)),
            LayerKind::LayerNorm { eps } => quote!(#o::ops::layer_norm(g, &x, &#at.inner, #eps, 1)),
            LayerKind::Activation(a) => ok(activation(*a, &quote!(&[]), true)),
            _ => unreachable!("the checker applies only dense, layer_norm and softmax per step"),
        },
        LayerKind::Conv1d { geometry: c, .. } => {
            let (k, s, p, d) = (c.kernel, c.stride, c.padding, c.dilation);
            quote!(#o::seq::conv1d(g, &x, &#at, [#k, #s, #p, #d]))
        }
        LayerKind::MaxPool1d(p) | LayerKind::AvgPool1d(p) => {
            let op = if matches!(l.kind, LayerKind::MaxPool1d(_)) { "MaxPool" } else { "AveragePool" };
            let (k, s) = (p.kernel, p.stride);
            ok(quote!(#o::seq::pool1d(g, &x, #op, #k, #s)))
        }
        LayerKind::GlobalAvgPool1d { .. } => ok(quote!(#o::seq::global_avg_pool1d(g, &x))),
        LayerKind::Last { steps, .. } => ok(quote!(#o::seq::last(g, &x, #steps))),
        LayerKind::Recurrent { cell, hidden, .. } => {
            let lstm = *cell == Cell::Lstm;
            quote!(#o::seq::recurrent(g, &x, &#at, #lstm, #hidden))
        }
        LayerKind::Attention { steps, dim, heads, causal } => {
            quote!(#o::seq::attention(g, &x, &#at, [#steps, #dim, #heads], #causal))
        }
        LayerKind::Embedding { .. } => quote!(#o::seq::embedding(g, &x, &#at)),
        LayerKind::Positional { .. } => quote!(#o::seq::positional(g, &x, &#at)),
    }
}

/// An element-wise activation or softmax over a sample of shape `dims`
/// (over each step's features when `per_step`).
fn activation(a: Activation, dims: &TokenStream, per_step: bool) -> TokenStream {
    let ops = quote!(::staticnet::onnx::ops);
    let unary = |op: &str| quote!(#ops::unary(g, &x, #op));
    match a {
        Activation::Relu => unary("Relu"),
        Activation::LeakyRelu(alpha) => quote!(#ops::leaky_relu(g, &x, #alpha)),
        Activation::Sigmoid => unary("Sigmoid"),
        Activation::Tanh => unary("Tanh"),
        Activation::Gelu => quote!(#ops::gelu(g, &x)),
        Activation::Softmax => quote!(#ops::softmax(g, &x, #dims, #per_step)),
        Activation::Identity => unary("Identity"),
        Activation::Silu => quote!(#ops::silu(g, &x)),
        Activation::Elu(alpha) => quote!(#ops::elu(g, &x, #alpha)),
        Activation::Selu => unary("Selu"),
        Activation::Softplus => unary("Softplus"),
        Activation::Mish => quote!(#ops::mish(g, &x)),
        Activation::LogSoftmax => quote!(#ops::log_softmax(g, &x, #dims, #per_step)),
    }
}
