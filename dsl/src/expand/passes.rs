//! The passes: inference (`forward`, and `infer` into the trace's buffers),
//! the training forward pass and the backward pass, each straight-line code
//! over the layers, some of them fused (`fused.rs`); and the impls that carry
//! them: `Network` and `Layer` (a network is a layer too).

use super::fused::{fused_steps, Fused, Pass};
use super::layers::layer_ref;
use super::types::layer_type;
use super::Net;
use crate::model::{Layer, LayerKind, Model, Shape};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// `impl Network for Net`: the passes over the trace.
pub fn network_impl(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, input_size, output_size, trace, grads, .. } = net;
    let name = &model.name;
    let steps = net.steps();
    let forward = forward_body(model, &steps);
    let forward_train = forward_train_body(model, &steps);
    let infer = infer_body(model, &steps);
    let visit_outputs = steps.iter().map(|l| {
        let (ident, name) = (&l.ident, &l.name);
        quote! { f(#name, t.out.#ident.as_slice()); }
    });
    let backward = backward_body(model, &steps);
    let last = &steps.last().expect("checked: a layer besides flatten").ident;
    let check_input = check_input(net);
    let final_activation = final_activation(model);
    let decoder = super::decode::decoder_method(net);
    quote! {
        #cfg
        impl<#gp T: #sn::Float> #sn::Network<T, #input_size, #output_size> for #name<#ga T> {
            type Trace = #trace<#ga T>;
            const FINAL_ACTIVATION: ::core::option::Option<&'static str> = #final_activation;

            #[allow(non_snake_case)]
            fn forward(&self, x: &#sn::Batch<T, #input_size>) -> #sn::Batch<T, #output_size> {
                #forward
            }

            fn forward_train<'t>(&mut self, x: &#sn::Batch<T, #input_size>, t: &'t mut #trace<#ga T>) -> &'t #sn::Batch<T, #output_size> {
                #forward_train
                &t.out.#last
            }

            fn backward(
                &self,
                x: &#sn::Batch<T, #input_size>,
                t: &mut #trace<#ga T>,
                d_out: &#sn::Batch<T, #output_size>,
                g: &mut #grads<#ga T>,
                d_input: ::core::option::Option<&mut #sn::Batch<T, #input_size>>,
            ) {
                // The hooked pass with a hook that does nothing: the same code once inlined.
                <Self as #sn::Network<T, #input_size, #output_size>>::backward_with(self, x, t, d_out, g, d_input, &mut |_, _| {})
            }

            #[allow(unused_assignments)]
            fn backward_with<H>(
                &self,
                x: &#sn::Batch<T, #input_size>,
                t: &mut #trace<#ga T>,
                d_out: &#sn::Batch<T, #output_size>,
                g: &mut #grads<#ga T>,
                d_input: ::core::option::Option<&mut #sn::Batch<T, #input_size>>,
                on_ready: &mut H,
            ) where
                H: ::core::ops::FnMut(::core::ops::Range<usize>, &#grads<#ga T>),
            {
                let _ = (&g, &on_ready);
                #backward
            }

            fn infer<'t>(&self, x: &#sn::Batch<T, #input_size>, t: &'t mut #trace<#ga T>) -> &'t #sn::Batch<T, #output_size> {
                #infer
                &t.out.#last
            }

            fn visit_outputs(t: &#trace<#ga T>, f: &mut dyn FnMut(&str, &[T])) {
                #(#visit_outputs)*
            }

            fn trace_output(t: &#trace<#ga T>) -> &#sn::Batch<T, #output_size> {
                &t.out.#last
            }

            #check_input
            #decoder
        }
    }
}

/// `Some("softmax")` when the last layer that computes (past `flatten` and
/// `dropout`) is an activation, at every step or not; `None` otherwise.
fn final_activation(model: &Model) -> TokenStream {
    let last =
        model.layers.iter().rev().find(|l| !matches!(l.kind, LayerKind::Flatten | LayerKind::Dropout { .. }));
    let activation = last.filter(|l| match &l.kind {
        LayerKind::Activation(_) => true,
        LayerKind::PerStep { inner, .. } => matches!(**inner, LayerKind::Activation(_)),
        _ => false,
    });
    match activation {
        Some(l) => {
            let name = l.kind.to_string();
            quote!(::core::option::Option::Some(#name))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// A network of token ids (`input: tokens[T]`) checks them with its first
/// layer, the embedding (the checker allows no other); others take any input.
fn check_input(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, input_size, .. } = net;
    match (&model.input, model.layers.first()) {
        (Shape::Tokens(_), Some(first @ Layer { kind: LayerKind::Embedding { .. }, .. })) => {
            let embedding = layer_type(model, first);
            quote! {
                fn check_input(x: &#sn::Batch<T, #input_size>) -> #sn::error::Result<()> {
                    <#embedding>::check_ids(x)
                }
            }
        }
        _ => TokenStream::new(),
    }
}

/// `Layer` for the network, which its `CustomLayer` impl (`custom.rs`) hands on to.
pub fn layer_impls(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, input_size, output_size, trace, grads, .. } = net;
    let name = &model.name;
    quote! {
        #cfg
        /// A network is a layer too, so it can be nested in another (`encoder: Encoder => [..]`).
        impl<#gp T: #sn::Float> #sn::layers::Layer<T, #input_size, #output_size> for #name<#ga T> {
            type Workspace = #trace<#ga T>;
            type Gradients = #grads<#ga T>;

            fn forward(&self, x: &#sn::Batch<T, #input_size>, y: &mut #sn::Batch<T, #output_size>) {
                *y = <Self as #sn::Network<T, #input_size, #output_size>>::forward(self, x);
            }

            fn forward_with(&self, x: &#sn::Batch<T, #input_size>, y: &mut #sn::Batch<T, #output_size>, ws: &mut #trace<#ga T>) {
                let out = <Self as #sn::Network<T, #input_size, #output_size>>::infer(self, x, ws);
                #sn::tensor::ensure_batch(y, x.ncols());
                y.copy_from(out);
            }

            fn forward_train(&mut self, x: &#sn::Batch<T, #input_size>, y: &mut #sn::Batch<T, #output_size>, ws: &mut #trace<#ga T>) {
                let out = <Self as #sn::Network<T, #input_size, #output_size>>::forward_train(self, x, ws);
                #sn::tensor::ensure_batch(y, x.ncols());
                y.copy_from(out);
            }

            fn backward(
                &self,
                x: &#sn::Batch<T, #input_size>,
                _y: &#sn::Batch<T, #output_size>,
                dy: &#sn::Batch<T, #output_size>,
                ws: &mut #trace<#ga T>,
                g: &mut #grads<#ga T>,
                dx: ::core::option::Option<&mut #sn::Batch<T, #input_size>>,
            ) {
                <Self as #sn::Network<T, #input_size, #output_size>>::backward(self, x, ws, dy, g, dx)
            }
        }
    }
}

/// Inference: a fresh buffer per layer; activations work in place and dropout is skipped.
fn forward_body(model: &Model, steps: &[&Layer]) -> TokenStream {
    let mut current: Option<syn::Ident> = None;
    let mut code = Vec::new();
    for l in steps {
        let local = format_ident!("__{}", l.ident.to_string().trim_start_matches("r#"));
        let input = match &current {
            Some(c) => quote!(&#c),
            None => quote!(x),
        };
        let layer = layer_ref(model, l);
        code.push(match &l.kind {
            LayerKind::Dropout { .. } => quote! {},
            LayerKind::Activation(_) => match &current {
                Some(c) => quote! { ::staticnet::layers::Activation::forward_in_place(&#layer, &mut #c); },
                None => {
                    current = Some(local.clone());
                    quote! {
                        let mut #local = x.clone();
                        ::staticnet::layers::Activation::forward_in_place(&#layer, &mut #local);
                    }
                }
            },
            _ => {
                let n = l.output.size();
                current = Some(local.clone());
                quote! {
                    let mut #local = ::staticnet::Batch::<T, #n>::zeros(0);
                    ::staticnet::layers::Layer::forward(&#layer, #input, &mut #local);
                }
            }
        });
    }
    let result = match current {
        Some(c) => quote!(#c),
        None => quote!(x.clone()),
    };
    quote! { #(#code)* #result }
}

/// The expression for the input of step `k`: `x` or the previous step's output.
fn step_input(steps: &[&Layer], k: usize) -> TokenStream {
    match k {
        0 => quote!(x),
        _ => {
            let prev = &steps[k - 1].ident;
            quote!(&t.out.#prev)
        }
    }
}

/// `Dense::forward_relu` for the dense layer at step `k` and the ReLU after it.
fn dense_relu(model: &Model, steps: &[&Layer], k: usize) -> TokenStream {
    let (dense, relu) = (&steps[k].ident, &steps[k + 1].ident);
    let (input, layer) = (step_input(steps, k), layer_ref(model, steps[k]));
    quote! { #layer.forward_relu(#input, &mut t.out.#dense, &mut t.out.#relu); }
}

/// Training forward: every layer's output is kept in `t.out` for the backward pass.
fn forward_train_body(model: &Model, steps: &[&Layer]) -> TokenStream {
    let code = fused_steps(steps, Pass::Train).into_iter().map(|group| match group {
        Fused::Single(k) => {
            let (ident, input, layer) = (&steps[k].ident, step_input(steps, k), layer_ref(model, steps[k]));
            quote! {
                ::staticnet::layers::Layer::forward_train(&mut #layer, #input, &mut t.out.#ident, &mut t.ws.#ident);
            }
        }
        Fused::ReluPool(k) => {
            let (relu, pool) = (&steps[k].ident, &steps[k + 1].ident);
            let (input, layer) = (step_input(steps, k), layer_ref(model, steps[k + 1]));
            quote! {
                #layer.forward_train_after_relu(#input, &mut t.out.#relu, &mut t.out.#pool, &mut t.ws.#pool);
            }
        }
        Fused::ConvReluPool(k) => {
            let (conv, relu, pool) = (&steps[k].ident, &steps[k + 1].ident, &steps[k + 2].ident);
            let (input, layer, pool_layer) = (step_input(steps, k), layer_ref(model, steps[k]), layer_ref(model, steps[k + 2]));
            quote! {
                #layer.forward_train_relu_max_pool(
                    &mut #pool_layer,
                    #input,
                    ::staticnet::layers::ConvReluPoolOutputs { conv: &mut t.out.#conv, relu: &mut t.out.#relu, pooled: &mut t.out.#pool },
                    ::staticnet::layers::ConvReluPoolWorkspaces { conv: &mut t.ws.#conv, pool: &mut t.ws.#pool },
                );
            }
        }
        Fused::DenseRelu(k) => dense_relu(model, steps, k),
        Fused::ReluDense(_) | Fused::GeluDense(_) => unreachable!("a backward group"),
    });
    quote! { #(#code)* }
}

/// Inference into the trace's buffers: allocation-free once they exist.
fn infer_body(model: &Model, steps: &[&Layer]) -> TokenStream {
    let code = fused_steps(steps, Pass::Infer).into_iter().map(|group| match group {
        Fused::Single(k) => {
            let (ident, input, layer) = (&steps[k].ident, step_input(steps, k), layer_ref(model, steps[k]));
            quote! {
                ::staticnet::layers::Layer::forward_with(&#layer, #input, &mut t.out.#ident, &mut t.ws.#ident);
            }
        }
        Fused::DenseRelu(k) => dense_relu(model, steps, k),
        _ => unreachable!("a training group"),
    });
    quote! { #(#code)* }
}

/// Backward: the layers in reverse, each turning the gradient of its output
/// (`t.d.<layer>`, or `d_out` for the last) into its parameter gradient and
/// the gradient of its input (`t.d.<previous layer>`, or `d_input` for the first).
fn backward_body(model: &Model, steps: &[&Layer]) -> TokenStream {
    let n = steps.len();
    let d_input_of = |k: usize| match k {
        0 => quote!(d_input),
        _ => {
            let prev = &steps[k - 1].ident;
            quote!(::core::option::Option::Some(&mut t.d.#prev))
        }
    };
    let d_output_of = |k: usize| {
        let ident = &steps[k].ident;
        if k + 1 == n {
            quote!(d_out)
        } else {
            quote!(&t.d.#ident)
        }
    };
    let ready = |group: &Fused| grads_ready(model, steps, group);
    let hooks: Vec<TokenStream> = fused_steps(steps, Pass::Backward).iter().rev().map(ready).collect();
    let code = fused_steps(steps, Pass::Backward).into_iter().rev().map(|group| match group {
        Fused::Single(k) => {
            let l = steps[k];
            let (ident, input, layer) = (&l.ident, step_input(steps, k), layer_ref(model, l));
            let (d_output, d_input) = (d_output_of(k), d_input_of(k));
            let grads = if l.kind.has_params() { quote!(&mut g.#ident) } else { quote!(&mut ()) };
            quote! {
                ::staticnet::layers::Layer::backward(&#layer, #input, &t.out.#ident, #d_output, &mut t.ws.#ident, #grads, #d_input);
            }
        }
        Fused::ReluPool(k) => {
            let (relu, pool) = (&steps[k].ident, &steps[k + 1].ident);
            let (input, layer) = (step_input(steps, k), layer_ref(model, steps[k + 1]));
            let (d_output, d_input) = (d_output_of(k + 1), d_input_of(k));
            quote! {
                #layer.backward_after_relu(
                    ::staticnet::layers::ReluPoolTrace { x: #input, relu: &t.out.#relu, pooled: &t.out.#pool },
                    #d_output,
                    &mut t.ws.#pool,
                    &mut t.d.#relu,
                    #d_input,
                );
            }
        }
        Fused::ConvReluPool(k) => {
            let (conv, relu, pool) = (&steps[k].ident, &steps[k + 1].ident, &steps[k + 2].ident);
            let (input, layer, pool_layer) = (step_input(steps, k), layer_ref(model, steps[k]), layer_ref(model, steps[k + 2]));
            let (d_output, d_input) = (d_output_of(k + 2), d_input_of(k));
            quote! {
                #layer.backward_relu_max_pool(
                    &#pool_layer,
                    ::staticnet::layers::ConvReluPoolTrace { x: #input, conv: &t.out.#conv, relu: &t.out.#relu, pooled: &t.out.#pool },
                    ::staticnet::layers::ConvReluPoolWorkspaces { conv: &mut t.ws.#conv, pool: &mut t.ws.#pool },
                    &mut g.#conv,
                    ::staticnet::layers::ConvReluPoolGrads { pooled: #d_output, relu: &mut t.d.#relu, conv: &mut t.d.#conv, x: #d_input },
                );
            }
        }
        Fused::ReluDense(k) => {
            let (pre, relu, dense) = (&steps[k - 1].ident, &steps[k].ident, &steps[k + 1].ident);
            let (input, layer, d_output) = (step_input(steps, k), layer_ref(model, steps[k + 1]), d_output_of(k + 1));
            quote! {
                #layer.backward_through_relu(
                    ::staticnet::layers::ReluDenseTrace { pre: #input, x: &t.out.#relu },
                    #d_output,
                    &mut g.#dense,
                    &mut t.d.#relu,
                    &mut t.d.#pre,
                );
            }
        }
        Fused::GeluDense(k) => {
            let (pre, gelu, dense) = (&steps[k - 1].ident, &steps[k].ident, &steps[k + 1].ident);
            let (layer, d_output) = (layer_ref(model, steps[k + 1]), d_output_of(k + 1));
            quote! {
                ::staticnet::layers::BackwardScaled::backward_scaled(
                    &#layer, &t.out.#gelu, #d_output, &mut g.#dense, &t.ws.#gelu, &mut t.d.#pre,
                );
            }
        }
        Fused::DenseRelu(_) => unreachable!("a forward group"),
    });
    let start = match steps.iter().any(|l| l.kind.has_params()) {
        true => quote! { let mut __grads_ready_from: usize = <Self as ::staticnet::Params<T>>::PARAM_COUNT; },
        false => TokenStream::new(),
    };
    quote! { #start #(#code #hooks)* }
}

/// After a backward group: `on_ready` with the visiting-order range of each
/// of its layers with parameters, whose gradients are now final. The ranges
/// are counted down from `PARAM_COUNT` by each layer's own count.
fn grads_ready(model: &Model, steps: &[&Layer], group: &Fused) -> TokenStream {
    let with_params = match *group {
        Fused::Single(k) => vec![k],
        Fused::ConvReluPool(k) => vec![k],
        Fused::ReluDense(k) | Fused::GeluDense(k) => vec![k + 1],
        Fused::ReluPool(_) | Fused::DenseRelu(_) => vec![],
    };
    let calls = with_params.into_iter().filter(|&k| steps[k].kind.has_params()).map(|k| {
        let ty = layer_type(model, steps[k]);
        quote! {
            let __from = __grads_ready_from.saturating_sub(<#ty as ::staticnet::Params<T>>::PARAM_COUNT);
            on_ready(__from..__grads_ready_from, &*g);
            __grads_ready_from = __from;
        }
    });
    quote! { #(#calls)* }
}
