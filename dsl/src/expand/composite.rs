//! Composite layers: `residual { .. }` and `parallel(..) { branch { .. } .. }`.
//! Each body or branch is expanded as a hidden network of its own
//! (`__Net_block1_body`, `__Net_par_0`, via [`super::expand`]); the layer
//! itself is a core type that the expansion only names and builds:
//! `layers::Residual<Body, NoProjection>`, `layers::Residual<Body, Projection<Conv2d<..>>>`,
//! `layers::Parallel<Concat, Branch<A, 4, Branch<B, 2, ()>>>`. The core types
//! name the parameters (`block1.body.0.weight`, `down.projection.weight`, `par.1.0.weight`).

use super::expand;
use super::layers::{checked, conv_geometry};
use super::types::{layer_type, Generics};
use crate::model::{Join, Layer, LayerKind, Model, Shape, Size};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The hidden networks of every composite layer of `model`: block bodies and branches.
pub fn all(model: &Model) -> TokenStream {
    model.layers.iter().map(|l| hidden_networks(model, l)).collect()
}

/// The prefix of a composite layer's hidden networks: `__Net_block1` (`__Net_block1_body`, `__Net_block1_0`).
pub fn composite_name(parent: &syn::Ident, l: &Layer) -> syn::Ident {
    format_ident!("__{}_{}", parent, l.name)
}

/// The hidden network of each body or branch of `l`, generated like any other.
fn hidden_networks(model: &Model, l: &Layer) -> TokenStream {
    match &l.kind {
        LayerKind::Residual { body, .. } => expand(&sub_model(model, body_name(model, l), &l.input, body)),
        LayerKind::Parallel { branches, .. } => branches
            .iter()
            .enumerate()
            .map(|(k, layers)| expand(&sub_model(model, branch_name(model, l, k), &l.input, layers)))
            .collect(),
        _ => TokenStream::new(),
    }
}

/// `__Net_block1_body`.
fn body_name(model: &Model, l: &Layer) -> syn::Ident {
    format_ident!("{}_body", composite_name(&model.name, l))
}

/// `__Net_par_0`.
fn branch_name(model: &Model, l: &Layer, k: usize) -> syn::Ident {
    format_ident!("{}_{}", composite_name(&model.name, l), k)
}

/// A hidden network for a block body or branch.
fn sub_model(parent: &Model, name: syn::Ident, input: &Shape, layers: &[Layer]) -> Model {
    let attrs =
        vec![syn::parse_quote!(#[doc(hidden)]), syn::parse_quote!(#[allow(dead_code, non_camel_case_types)])];
    Model {
        attrs,
        vis: parent.vis.clone(),
        name,
        generics: parent.generics.clone(),
        input: input.clone(),
        layers: layers.to_vec(),
        param_count: crate::model::sequence_params(layers),
    }
}

/// A residual block's projection as a layer of its own, from the block's input to its output.
pub fn projection_layer(l: &Layer, kind: &LayerKind) -> Layer {
    Layer {
        ident: format_ident!("projection"),
        name: "projection".into(),
        param_name: "projection".into(),
        position: 0,
        kind: kind.clone(),
        input: l.input.clone(),
        output: l.output.clone(),
    }
}

/// The core type of a composite layer.
pub fn composite_type(model: &Model, l: &Layer) -> TokenStream {
    let layers = quote!(::staticnet::layers);
    let ga = Generics::of(model).args;
    match &l.kind {
        LayerKind::Residual { projection, .. } => {
            let body = body_name(model, l);
            let skip = match projection.as_deref() {
                Some(kind) => {
                    let ty = layer_type(model, &projection_layer(l, kind));
                    quote!(#layers::Projection<#ty>)
                }
                None => quote!(#layers::NoProjection),
            };
            quote!(#layers::Residual<#body<#ga T>, #skip>)
        }
        LayerKind::Parallel { join, branches } => {
            let join = join_type(*join);
            let list = (0..branches.len()).rev().fold(quote!(()), |rest, k| {
                let (net, size) = (branch_name(model, l, k), branch_size(&branches[k]));
                quote!(#layers::Branch<#net<#ga T>, #size, #rest>)
            });
            quote!(#layers::Parallel<#join, #list>)
        }
        _ => unreachable!("only residual and parallel layers are composite"),
    }
}

/// A composite layer's constructor: every member initialised from `init`/`rng`
/// (each hidden network from a seed drawn in member order), or zeroed.
pub fn construct(model: &Model, l: &Layer, random: bool) -> TokenStream {
    let sn = quote!(::staticnet);
    let network = |name: syn::Ident| {
        if random {
            quote!(#name::init(init, #sn::init::next_seed(&mut rng)))
        } else {
            quote!(#name::zeros())
        }
    };
    match &l.kind {
        LayerKind::Residual { projection, .. } => {
            let body = network(body_name(model, l));
            let skip = match projection.as_deref() {
                Some(kind) => {
                    let layer = construct_projection(kind, random);
                    quote!(#sn::layers::Projection(#layer))
                }
                None => quote!(#sn::layers::NoProjection),
            };
            quote!(#sn::layers::Residual { body: #body, projection: #skip })
        }
        LayerKind::Parallel { join, branches } => {
            let join = join_type(*join);
            let list = (0..branches.len()).rev().fold(quote!(()), |rest, k| {
                let net = network(branch_name(model, l, k));
                quote!(#sn::layers::Branch { net: #net, rest: #rest })
            });
            quote!(#sn::layers::Parallel { join: #join, branches: #list })
        }
        _ => unreachable!("only residual and parallel layers are composite"),
    }
}

/// A projection: dense or a 1×1 convolution, with a bias, initialised for no ReLU after it.
fn construct_projection(kind: &LayerKind, random: bool) -> TokenStream {
    let layers = quote!(::staticnet::layers);
    match kind {
        LayerKind::Dense { .. } if random => quote!(#layers::Dense::new(true, init.resolve(false), &mut rng)),
        LayerKind::Dense { .. } => quote!(#layers::Dense::zeros(true)),
        LayerKind::Conv2d { geometry, .. } => {
            let g = conv_geometry(geometry);
            if random {
                checked(quote!(#layers::Conv2d::new(#g, true, init.resolve(false), &mut rng)))
            } else {
                checked(quote!(#layers::Conv2d::zeros(#g, true)))
            }
        }
        LayerKind::PerStep { .. } if random => {
            quote!(#layers::PerStep::new(#layers::Dense::new(true, init.resolve(false), &mut rng)))
        }
        LayerKind::PerStep { .. } => quote!(#layers::PerStep::new(#layers::Dense::zeros(true))),
        _ => unreachable!("the checker makes projections dense (at every step on rank 2) or conv2d"),
    }
}

/// `layers::Concat` or `layers::Add`.
fn join_type(join: Join) -> TokenStream {
    match join {
        Join::Concat => quote!(::staticnet::layers::Concat),
        Join::Add => quote!(::staticnet::layers::Add),
    }
}

/// Values per sample a branch gives.
fn branch_size(layers: &[Layer]) -> Size {
    layers.last().map_or(Size::Lit(0), |l| l.output.size())
}
