//! The network's `Params` impl: every parameter, buffer and random generator
//! visited in layer order under its `state_dict` name (`fc1.weight`), and the
//! parameter count.

use super::types::{layer_type, nested_type};
use super::Net;
use crate::model::{Count, Layer, LayerKind};
use proc_macro2::TokenStream;
use quote::quote;

/// The parameter count of `layers` (a literal or an expression over the size
/// parameters), plus the nested networks' counts, which only the compiler knows.
pub fn param_count_of(own: &Count, layers: &[Layer]) -> TokenStream {
    let nested = crate::model::nested_paths(layers).into_iter().map(|p| nested_type(p, quote!(f32)));
    quote!(#own #(+ <#nested as ::staticnet::Params<f32>>::PARAM_COUNT)*)
}

/// `impl Params for Net`: the layers with parameters, each under its name.
pub fn params_impl(net: &Net<'_>) -> TokenStream {
    let Net { model, sn, gp, ga, cfg, param_count, grads, .. } = net;
    let name = &model.name;
    let with_params = net.with_params();
    let zero_grads = with_params.iter().map(|l| {
        let ident = &l.ident;
        quote! { #ident: #sn::Params::zero_gradients(&self.#ident) }
    });
    let visit = |method: TokenStream, receiver: TokenStream| {
        let calls = with_params.iter().map(|l| {
            let (ident, pname) = (&l.ident, &l.param_name);
            quote! { #sn::Params::#method(#receiver self.#ident, &path.join(#pname), f); }
        });
        quote! { #(#calls)* }
    };
    let visit_params = visit(quote!(visit_params), quote!(&));
    let visit_params_mut = visit(quote!(visit_params_mut), quote!(&mut));
    let visit_buffers = visit(quote!(visit_buffers), quote!(&));
    let visit_buffers_mut = visit(quote!(visit_buffers_mut), quote!(&mut));
    let visit_compact = visit(quote!(visit_compact), quote!(&mut));
    let visit_rngs =
        net.fields().into_iter().filter(|l| matches!(l.kind, LayerKind::Dropout { .. })).map(|l| {
            let (ident, pname) = (&l.ident, &l.param_name);
            quote! { #sn::Params::<T>::visit_rngs(&mut self.#ident, &path.join(#pname), f); }
        });
    let visit_with_grads = with_params.iter().map(|l| {
        let (ident, pname) = (&l.ident, &l.param_name);
        quote! { #sn::Params::visit_params_with_grads(&mut self.#ident, &grads.#ident, &path.join(#pname), f); }
    });
    let visit_grads = with_params.iter().map(|l| {
        let (ident, ty) = (&l.ident, layer_type(model, l));
        quote! { <#ty as #sn::Params<T>>::visit_grads(&grads.#ident, f); }
    });
    quote! {
        #cfg
        impl<#gp T: #sn::Float> #sn::Params<T> for #name<#ga T> {
            type Gradients = #grads<#ga T>;
            const PARAM_COUNT: usize = #param_count;
            const SUBLAYERS: &'static [&'static [#sn::network::LayerInfo]] = &[<#name<#ga f32>>::LAYERS];

            fn zero_gradients(&self) -> #grads<#ga T> {
                #grads { #(#zero_grads,)* __scalar: ::core::marker::PhantomData }
            }

            fn visit_params(&self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::Param<'_, T>)) {
                let _ = (path, &f);
                #visit_params
            }

            fn visit_params_mut(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>)) {
                let _ = (path, &f);
                #visit_params_mut
            }

            fn visit_params_with_grads(
                &mut self,
                grads: &#grads<#ga T>,
                path: &#sn::params::ParamPath<'_>,
                f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>, &[T]),
            ) {
                let _ = (grads, path, &f);
                #(#visit_with_grads)*
            }

            fn visit_grads(grads: &#grads<#ga T>, f: &mut dyn FnMut(&[T])) {
                let _ = (grads, &f);
                #(#visit_grads)*
            }

            fn visit_buffers(&self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::Param<'_, T>)) {
                let _ = (path, &f);
                #visit_buffers
            }

            fn visit_buffers_mut(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamMut<'_, T>)) {
                let _ = (path, &f);
                #visit_buffers_mut
            }

            fn visit_rngs(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::params::ParamPath<'_>, &mut #sn::init::SeededRng)) {
                let _ = (path, &f);
                #(#visit_rngs)*
            }

            fn visit_compact(&mut self, path: &#sn::params::ParamPath<'_>, f: &mut dyn FnMut(#sn::quant::CompactSlot<'_, T>)) {
                let _ = (path, &f);
                #visit_compact
            }
        }
    }
}
