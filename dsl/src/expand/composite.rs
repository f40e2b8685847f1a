//! Composite layers: `residual { .. }` and `parallel(..) { branch { .. } .. }`.
//! Each body or branch is expanded as a hidden network of its own
//! (`__Net_block1_body`, via [`super::expand`]) and wrapped in a hidden layer
//! type (`__Net_block1`) with `Layer` and `Params` impls; parameter names
//! nest (`block1.body.0.weight`, `down.projection.weight`, `par.1.0.weight`).

use super::expand;
use super::layers::{checked, conv_geometry};
use super::params::param_count_of;
use super::types::{layer_type, Generics};
use crate::model::{Join, Layer, LayerKind, Model, Shape, Size};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The hidden networks and layer types of every composite layer of `model`.
pub fn all(model: &Model) -> TokenStream {
    model
        .layers
        .iter()
        .filter(|l| matches!(l.kind, LayerKind::Residual { .. } | LayerKind::Parallel { .. }))
        .map(|l| composite(model, l))
        .collect()
}

/// The hidden type of a composite layer: `__Net_block1`.
pub fn composite_name(parent: &syn::Ident, l: &Layer) -> syn::Ident {
    format_ident!("__{}_{}", parent, l.name)
}

/// A hidden network for a block body or branch, generated like any other.
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

/// A part of a composite layer: a hidden body or branch network, or a projection.
#[derive(Clone)]
struct Member {
    /// Its field in the composite layer's struct.
    field: syn::Ident,
    /// Its segment in parameter names (`body`, `projection`, `0`).
    label: String,
    ty: TokenStream,
    /// Its constructor from `init` and `rng`, and its zeroed one.
    init: TokenStream,
    zeros: TokenStream,
}

impl Member {
    /// A hidden network generated for a block body or a branch.
    fn network(name: &syn::Ident, field: syn::Ident, label: String, ga: &TokenStream) -> Member {
        let sn = quote!(::staticnet);
        Member {
            field,
            label,
            ty: quote!(#name<#ga T>),
            init: quote!(#name::init(init, #sn::init::next_seed(rng))),
            zeros: quote!(#name::zeros()),
        }
    }
}

/// What every composite layer has whatever joins its members: the struct, its
/// gradients, constructors, `Clone`, `Debug` and `Params` over the members in
/// order (which fixes parameter order and names: `block.body.0.weight`).
fn composite_parts(model: &Model, l: &Layer, members: &[Member]) -> TokenStream {
    let sn = quote!(::staticnet);
    let Generics { decl: gd, params: gp, args: ga } = Generics::of(model);
    let vis = &model.vis;
    let ty = composite_name(&model.name, l);
    let grads = format_ident!("{}Gradients", ty);
    let hidden = quote!(#[doc(hidden)] #[allow(dead_code, non_camel_case_types)]);
    let fields: Vec<&syn::Ident> = members.iter().map(|m| &m.field).collect();
    let labels: Vec<&str> = members.iter().map(|m| m.label.as_str()).collect();
    let types: Vec<&TokenStream> = members.iter().map(|m| &m.ty).collect();
    let inits = members.iter().map(|m| &m.init);
    let zeros = members.iter().map(|m| &m.zeros);
    let param_count = param_count_of(&l.kind.param_count(&l.output.size()), std::slice::from_ref(l));
    let label = l.kind.to_string();
    quote! {
        #hidden
        #vis struct #ty<#gd T: #sn::Float = f32> { #(pub #fields: #types,)* }

        #hidden
        #vis struct #grads<#gd T: #sn::Float = f32> { #(pub #fields: <#types as #sn::Params<T>>::Gradients,)* }

        impl<#gp T: #sn::Float> #ty<#ga T> {
            fn new(init: #sn::init::Init, rng: &mut #sn::init::SeededRng) -> Self {
                #ty { #(#fields: #inits,)* }
            }
            fn zeros() -> Self {
                #ty { #(#fields: #zeros,)* }
            }
        }

        impl<#gp T: #sn::Float> ::core::clone::Clone for #ty<#ga T> {
            fn clone(&self) -> Self { #ty { #(#fields: ::core::clone::Clone::clone(&self.#fields),)* } }
        }

        impl<#gp T: #sn::Float> ::core::fmt::Debug for #ty<#ga T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#label)
            }
        }

        impl<#gp T: #sn::Float> #sn::Params<T> for #ty<#ga T> {
            type Gradients = #grads<#ga T>;
            const PARAM_COUNT: usize = #param_count;
            fn zero_gradients(&self) -> #grads<#ga T> {
                #grads { #(#fields: #sn::Params::zero_gradients(&self.#fields),)* }
            }
            fn visit_params(&self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::Param<'_, T>)) {
                #(#sn::Params::visit_params(&self.#fields, &path.join(#labels), f);)*
            }
            fn visit_params_mut(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>)) {
                #(#sn::Params::visit_params_mut(&mut self.#fields, &path.join(#labels), f);)*
            }
            fn visit_params_with_grads(&mut self, grads: &#grads<#ga T>, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>, &[T])) {
                #(#sn::Params::visit_params_with_grads(&mut self.#fields, &grads.#fields, &path.join(#labels), f);)*
            }
            fn visit_grads(grads: &#grads<#ga T>, f: &mut dyn FnMut(&[T])) {
                #(<#types as #sn::Params<T>>::visit_grads(&grads.#fields, f);)*
            }
            fn visit_buffers(&self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::Param<'_, T>)) {
                #(#sn::Params::visit_buffers(&self.#fields, &path.join(#labels), f);)*
            }
            fn visit_buffers_mut(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>)) {
                #(#sn::Params::visit_buffers_mut(&mut self.#fields, &path.join(#labels), f);)*
            }
            fn visit_rngs(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamPath<'_>, &mut #sn::init::SeededRng)) {
                #(#sn::Params::visit_rngs(&mut self.#fields, &path.join(#labels), f);)*
            }
        }
    }
}

/// The `Layer` impl of a composite layer, around its four bodies (which see
/// `x`, `y`, `dy`, `ws`, `g` and `dx` as the trait's arguments).
fn composite_layer_impl(
    model: &Model,
    l: &Layer,
    forward: TokenStream,
    forward_with: TokenStream,
    forward_train: TokenStream,
    backward: TokenStream,
) -> TokenStream {
    let sn = quote!(::staticnet);
    let Generics { params: gp, args: ga, .. } = Generics::of(model);
    let ty = composite_name(&model.name, l);
    let workspace = format_ident!("{}Workspace", ty);
    let grads = format_ident!("{}Gradients", ty);
    let (i, o) = (l.input.size(), l.output.size());
    quote! {
        impl<#gp T: #sn::Float> #sn::layers::Layer<T, #i, #o> for #ty<#ga T> {
            type Workspace = #workspace<#ga T>;
            type Gradients = #grads<#ga T>;

            fn forward(&self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>) {
                #forward
            }

            fn forward_with(&self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>, ws: &mut #workspace<#ga T>) {
                #forward_with
            }

            fn forward_train(&mut self, x: &#sn::Batch<T, #i>, y: &mut #sn::Batch<T, #o>, ws: &mut #workspace<#ga T>) {
                #forward_train
            }

            fn backward(
                &self,
                x: &#sn::Batch<T, #i>,
                _y: &#sn::Batch<T, #o>,
                dy: &#sn::Batch<T, #o>,
                ws: &mut #workspace<#ga T>,
                g: &mut #grads<#ga T>,
                dx: ::core::option::Option<&mut #sn::Batch<T, #i>>,
            ) {
                #backward
            }
        }
    }
}

/// A residual block or parallel branches: hidden networks for the bodies, and
/// a hidden layer type combining them, with `Layer` and `Params` impls.
fn composite(model: &Model, l: &Layer) -> TokenStream {
    let sn = quote!(::staticnet);
    let Generics { decl: gd, params: gp, args: ga } = Generics::of(model);
    let vis = &model.vis;
    let ty = composite_name(&model.name, l);
    let workspace = format_ident!("{}Workspace", ty);
    let (i, o) = (l.input.size(), l.output.size());
    let hidden = quote!(#[doc(hidden)] #[allow(dead_code, non_camel_case_types)]);
    match &l.kind {
        LayerKind::Residual { body, projection } => {
            let body_ty = format_ident!("{}_body", ty);
            let body_net = expand(&sub_model(model, body_ty.clone(), &l.input, body));
            let net = quote!(<#body_ty<#ga T> as #sn::Network<T, #i, #o>>);
            let proj = projection.as_deref().map(|kind| {
                let layer = Layer {
                    ident: format_ident!("projection"),
                    name: "projection".into(),
                    param_name: "projection".into(),
                    position: 0,
                    kind: kind.clone(),
                    input: l.input.clone(),
                    output: l.output.clone(),
                };
                let construct = |random: bool| match kind {
                    LayerKind::Dense { .. } if random => {
                        quote!(#sn::layers::Dense::new(true, init.resolve(false), rng))
                    }
                    LayerKind::Dense { .. } => quote!(#sn::layers::Dense::zeros(true)),
                    LayerKind::Conv2d { geometry, .. } => {
                        let g = conv_geometry(geometry);
                        if random {
                            checked(quote!(#sn::layers::Conv2d::new(#g, true, init.resolve(false), rng)))
                        } else {
                            checked(quote!(#sn::layers::Conv2d::zeros(#g, true)))
                        }
                    }
                    _ => unreachable!("the checker makes projections dense or conv2d"),
                };
                Member {
                    field: format_ident!("projection"),
                    label: "projection".into(),
                    ty: layer_type(model, &layer),
                    init: construct(true),
                    zeros: construct(false),
                }
            });
            let mut members = vec![Member::network(&body_ty, format_ident!("body"), "body".into(), &ga)];
            let proj_ws = match &proj {
                Some(p) => {
                    let pt = &p.ty;
                    members.push(p.clone());
                    quote!(pub projected: #sn::Batch<T, #o>, pub projection: <#pt as #sn::layers::Layer<T, #i, #o>>::Workspace, pub dx: #sn::Batch<T, #i>,)
                }
                None => quote!(),
            };
            let parts = composite_parts(model, l, &members);
            let has_proj = proj.is_some();
            let ws_default = if has_proj {
                quote!(projected: #sn::Batch::zeros(0), projection: ::core::default::Default::default(), dx: #sn::Batch::zeros(0),)
            } else {
                quote!()
            };
            // The skip path: the input itself, or its projection.
            let (skip_infer, skip_with, skip_train) = if has_proj {
                (
                    quote! {
                        let mut projected = #sn::Batch::<T, #o>::zeros(0);
                        #sn::layers::Layer::forward(&self.projection, x, &mut projected);
                        *y += &projected;
                    },
                    quote! {
                        #sn::layers::Layer::forward_with(&self.projection, x, &mut ws.projected, &mut ws.projection);
                        *y += &ws.projected;
                    },
                    quote! {
                        #sn::layers::Layer::forward_train(&mut self.projection, x, &mut ws.projected, &mut ws.projection);
                        *y += &ws.projected;
                    },
                )
            } else {
                (quote!(*y += x;), quote!(*y += x;), quote!(*y += x;))
            };
            let backward_skip = if has_proj {
                quote! {
                    match dx {
                        ::core::option::Option::Some(dx) => {
                            #net::backward(&self.body, x, &mut ws.body, dy, &mut g.body, ::core::option::Option::Some(&mut *dx));
                            #sn::layers::Layer::backward(&self.projection, x, &ws.projected, dy, &mut ws.projection, &mut g.projection, ::core::option::Option::Some(&mut ws.dx));
                            *dx += &ws.dx;
                        }
                        ::core::option::Option::None => {
                            #net::backward(&self.body, x, &mut ws.body, dy, &mut g.body, ::core::option::Option::None);
                            #sn::layers::Layer::backward(&self.projection, x, &ws.projected, dy, &mut ws.projection, &mut g.projection, ::core::option::Option::None);
                        }
                    }
                }
            } else {
                quote! {
                    match dx {
                        ::core::option::Option::Some(dx) => {
                            #net::backward(&self.body, x, &mut ws.body, dy, &mut g.body, ::core::option::Option::Some(&mut *dx));
                            *dx += dy;
                        }
                        ::core::option::Option::None => {
                            #net::backward(&self.body, x, &mut ws.body, dy, &mut g.body, ::core::option::Option::None);
                        }
                    }
                }
            };
            let layer_impl = composite_layer_impl(
                model,
                l,
                quote! {
                    *y = #net::forward(&self.body, x);
                    #skip_infer
                },
                quote! {
                    let out = #net::infer(&self.body, x, &mut ws.body);
                    #sn::tensor::ensure_batch(y, x.ncols());
                    y.copy_from(out);
                    #skip_with
                },
                quote! {
                    let out = #net::forward_train(&mut self.body, x, &mut ws.body);
                    #sn::tensor::ensure_batch(y, x.ncols());
                    y.copy_from(out);
                    #skip_train
                },
                backward_skip,
            );
            quote! {
                #body_net

                #parts

                #hidden
                #vis struct #workspace<#gd T: #sn::Float = f32> { pub body: #net::Trace, #proj_ws }

                impl<#gp T: #sn::Float> ::core::default::Default for #workspace<#ga T> {
                    fn default() -> Self { #workspace { body: ::core::default::Default::default(), #ws_default } }
                }

                #layer_impl
            }
        }
        LayerKind::Parallel { join, branches } => {
            let names: Vec<syn::Ident> = (0..branches.len()).map(|b| format_ident!("{}_{}", ty, b)).collect();
            let fields: Vec<syn::Ident> = (0..branches.len()).map(|b| format_ident!("b{}", b)).collect();
            let traces: Vec<syn::Ident> = (0..branches.len()).map(|b| format_ident!("t{}", b)).collect();
            let deltas: Vec<syn::Ident> = (0..branches.len()).map(|b| format_ident!("d{}", b)).collect();
            let nets: Vec<TokenStream> = branches
                .iter()
                .zip(&names)
                .map(|(layers, n)| expand(&sub_model(model, n.clone(), &l.input, layers)))
                .collect();
            let outs: Vec<Size> =
                branches.iter().map(|b| b.last().map_or(Size::Lit(0), |l| l.output.size())).collect();
            let net_of = |k: usize| {
                let (n, bo) = (&names[k], &outs[k]);
                quote!(<#n<#ga T> as #sn::Network<T, #i, #bo>>)
            };
            let branch_nets: Vec<TokenStream> = (0..branches.len()).map(net_of).collect();
            // Where each branch's rows start in the joined output (concat: the
            // checker allows only number sizes there).
            let offsets: Vec<usize> = outs
                .iter()
                .scan(0, |acc, n| {
                    let at = *acc;
                    *acc += match n {
                        Size::Lit(n) => *n,
                        Size::Param(_) => 0,
                    };
                    Some(at)
                })
                .collect();
            let is_concat = *join == Join::Concat;
            let combine = |outputs: Vec<TokenStream>| -> TokenStream {
                if is_concat {
                    let parts = outputs.iter().zip(&offsets).zip(&outs).map(|((out, off), n)| {
                        quote! { y.rows_mut(#off, #n).copy_from(#out); }
                    });
                    quote! { #sn::tensor::ensure_batch(y, x.ncols()); #(#parts)* }
                } else {
                    let first = &outputs[0];
                    let rest = &outputs[1..];
                    quote! { #sn::tensor::ensure_batch(y, x.ncols()); y.copy_from(#first); #( *y += #rest; )* }
                }
            };
            let infer_outs: Vec<TokenStream> = (0..branches.len())
                .map(|k| {
                    let (n, f) = (&branch_nets[k], &fields[k]);
                    quote!(&#n::forward(&self.#f, x))
                })
                .collect();
            let forward_combine = combine(infer_outs);
            let with_steps: Vec<TokenStream> = (0..branches.len())
                .map(|k| {
                    let (n, f, t) = (&branch_nets[k], &fields[k], &traces[k]);
                    quote!(#n::infer(&self.#f, x, &mut ws.#t);)
                })
                .collect();
            let with_outs: Vec<TokenStream> = (0..branches.len())
                .map(|k| {
                    let (n, t) = (&branch_nets[k], &traces[k]);
                    quote!(#n::trace_output(&ws.#t))
                })
                .collect();
            let with_combine = combine(with_outs.clone());
            let train_steps: Vec<TokenStream> = (0..branches.len())
                .map(|k| {
                    let (n, f, t) = (&branch_nets[k], &fields[k], &traces[k]);
                    quote!(#n::forward_train(&mut self.#f, x, &mut ws.#t);)
                })
                .collect();
            let train_combine = combine(with_outs);
            // Backward: each branch gets its part of dy (concat) or all of it (add);
            // the input gradients of the branches add up.
            let branch_dy: Vec<TokenStream> = (0..branches.len()).map(|k| {
                if is_concat {
                    let (d, off, n) = (&deltas[k], offsets[k], &outs[k]);
                    quote! { #sn::tensor::ensure_batch(&mut ws.#d, dy.ncols()); ws.#d.copy_from(&dy.rows(#off, #n)); }
                } else {
                    quote!()
                }
            }).collect();
            let dy_of = |k: usize| {
                if is_concat {
                    let d = &deltas[k];
                    quote!(&ws.#d)
                } else {
                    quote!(dy)
                }
            };
            let back_some: Vec<TokenStream> = (0..branches.len()).map(|k| {
                let (n, f, t) = (&branch_nets[k], &fields[k], &traces[k]);
                let d = dy_of(k);
                if k == 0 {
                    quote! { #n::backward(&self.#f, x, &mut ws.#t, #d, &mut g.#f, ::core::option::Option::Some(&mut *dx)); }
                } else {
                    quote! { #n::backward(&self.#f, x, &mut ws.#t, #d, &mut g.#f, ::core::option::Option::Some(&mut ws.dx)); *dx += &ws.dx; }
                }
            }).collect();
            let back_none: Vec<TokenStream> = (0..branches.len()).map(|k| {
                let (n, f, t) = (&branch_nets[k], &fields[k], &traces[k]);
                let d = dy_of(k);
                quote! { #n::backward(&self.#f, x, &mut ws.#t, #d, &mut g.#f, ::core::option::Option::None); }
            }).collect();
            let delta_fields: Vec<TokenStream> = if is_concat {
                deltas.iter().zip(&outs).map(|(d, n)| quote!(pub #d: #sn::Batch<T, #n>,)).collect()
            } else {
                Vec::new()
            };
            let delta_defaults: Vec<TokenStream> = if is_concat {
                deltas.iter().map(|d| quote!(#d: #sn::Batch::zeros(0),)).collect()
            } else {
                Vec::new()
            };
            let members: Vec<Member> = names
                .iter()
                .enumerate()
                .map(|(k, n)| Member::network(n, fields[k].clone(), k.to_string(), &ga))
                .collect();
            let parts = composite_parts(model, l, &members);
            let layer_impl = composite_layer_impl(
                model,
                l,
                forward_combine,
                quote! {
                    #(#with_steps)*
                    #with_combine
                },
                quote! {
                    #(#train_steps)*
                    #train_combine
                },
                quote! {
                    #(#branch_dy)*
                    match dx {
                        ::core::option::Option::Some(dx) => { #(#back_some)* }
                        ::core::option::Option::None => { #(#back_none)* }
                    }
                },
            );
            quote! {
                #(#nets)*

                #parts

                #hidden
                #vis struct #workspace<#gd T: #sn::Float = f32> {
                    #(pub #traces: #branch_nets::Trace,)*
                    #(#delta_fields)*
                    pub dx: #sn::Batch<T, #i>,
                }

                impl<#gp T: #sn::Float> ::core::default::Default for #workspace<#ga T> {
                    fn default() -> Self {
                        #workspace { #(#traces: ::core::default::Default::default(),)* #(#delta_defaults)* dx: #sn::Batch::zeros(0) }
                    }
                }

                #layer_impl
            }
        }
        _ => unreachable!("only residual and parallel layers are composite"),
    }
}
