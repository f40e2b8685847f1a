//! [`Model`] to Rust: the network struct, its batch aliases, trace and
//! gradient types, and straight-line forward and backward passes.
//!
//! Every layer is driven through `staticnet::layers::Layer` with its sizes as
//! literals; no shape is checked at run time because every one was checked
//! here. Layers with parameters or state are fields of the struct; the others
//! (activations, pools) are written inline as values. `flatten` emits no code:
//! a `[C, H, W]` batch is already `C·H·W` features per column.

use crate::model::{
    Activation, ConvGeometry, Count, Join, Layer, LayerKind, Model, PoolGeometry, Shape, Size,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// A network's const generic parameters, spelled for each place they appear
/// (each ends in a comma, ready to be followed by the scalar type `T`).
struct Generics {
    /// `const HIDDEN: usize = 128,`: in struct definitions.
    decl: TokenStream,
    /// `const HIDDEN: usize,`: in `impl<..>` headers.
    params: TokenStream,
    /// `HIDDEN,`: in uses of the generated types.
    args: TokenStream,
}

impl Generics {
    fn of(model: &Model) -> Self {
        let decl = &model.generics;
        let params = decl.iter().map(|p| {
            let (ident, ty) = (&p.ident, &p.ty);
            quote!(const #ident: #ty)
        });
        let args = decl.iter().map(|p| &p.ident);
        Generics { decl: quote!(#(#decl,)*), params: quote!(#(#params,)*), args: quote!(#(#args,)*) }
    }
}

/// The type of a nested network with scalar type `scalar`: `Encoder<f32>`, `Encoder<64, T>`.
fn nested_type(path: &syn::Path, scalar: TokenStream) -> TokenStream {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        let scalar: syn::GenericArgument = syn::parse_quote!(#scalar);
        match &mut last.arguments {
            syn::PathArguments::AngleBracketed(args) => args.args.push(scalar),
            other => *other = syn::PathArguments::AngleBracketed(syn::parse_quote!(<#scalar>)),
        }
    }
    quote!(#path)
}

/// The parameter count of `layers` (a literal or an expression over the size
/// parameters), plus the nested networks' counts, which only the compiler knows.
fn param_count_of(own: &Count, layers: &[Layer]) -> TokenStream {
    let nested = crate::model::nested_paths(layers).into_iter().map(|p| nested_type(p, quote!(f32)));
    quote!(#own #(+ <#nested>::PARAM_COUNT)*)
}

pub fn expand(model: &Model) -> TokenStream {
    let Model { attrs, vis, name, .. } = model;
    let sn = quote!(::staticnet);
    let Generics { decl: gd, params: gp, args: ga } = Generics::of(model);
    // `#[cfg]` on the network applies to everything generated for it.
    let cfgs: Vec<_> =
        attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("allow")).collect();
    let cfg = quote!(#(#cfgs)*);
    let input_size = model.input.size();
    let output_size = model.output().size();
    let input_shape = model.input.dims();
    let output_shape = model.output().dims();
    let param_count = param_count_of(&model.param_count, &model.layers);

    let input_alias = format_ident!("{}Input", name);
    let output_alias = format_ident!("{}Output", name);
    let trace = format_ident!("{}Trace", name);
    let buffers = format_ident!("{}Buffers", name);
    let workspaces = format_ident!("{}Workspaces", name);
    let grads = format_ident!("{}Gradients", name);

    let fields: Vec<&Layer> = model.layers.iter().filter(|l| l.kind.is_field()).collect();
    let with_params: Vec<&Layer> = model.layers.iter().filter(|l| l.kind.has_params()).collect();
    // The layers that run: `flatten` is only a change of view.
    let steps: Vec<&Layer> = model.layers.iter().filter(|l| l.kind != LayerKind::Flatten).collect();

    let field_defs = fields.iter().map(|l| {
        let (ident, ty) = (&l.ident, layer_type(model, l));
        let doc = format!("`{}`: {}, {} → {}", l.name, l.kind, l.input, l.output);
        quote! { #[doc = #doc] pub #ident: #ty }
    });
    let grad_field_defs = with_params.iter().map(|l| {
        let (ident, ty) = (&l.ident, layer_type(model, l));
        let doc = format!("Gradient of the loss with respect to the parameters of `{}`.", l.name);
        quote! { #[doc = #doc] pub #ident: <#ty as #sn::Params<T>>::Gradients }
    });
    let buffer_defs = steps.iter().map(|l| {
        let (ident, n) = (&l.ident, l.output.size());
        let doc = format!("`{}` ({}): {} per sample.", l.name, l.kind, l.output);
        quote! { #[doc = #doc] pub #ident: #sn::Batch<T, #n> }
    });
    let buffer_defaults = steps.iter().map(|l| {
        let ident = &l.ident;
        quote! { #ident: #sn::Batch::zeros(0) }
    });
    let workspace_defs = steps.iter().map(|l| {
        let (ident, ty) = (&l.ident, layer_type(model, l));
        let (i, o) = (l.input.size(), l.output.size());
        let doc = format!("What `{}` keeps for its backward pass.", l.name);
        quote! { #[doc = #doc] pub #ident: <#ty as #sn::layers::Layer<T, #i, #o>>::Workspace }
    });
    let workspace_defaults = steps.iter().map(|l| {
        let ident = &l.ident;
        quote! { #ident: ::core::default::Default::default() }
    });

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
    let clone_fields = fields.iter().map(|l| {
        let ident = &l.ident;
        quote! { #ident: ::core::clone::Clone::clone(&self.#ident) }
    });
    let debug_fields = fields.iter().map(|l| {
        let (ident, key) = (&l.ident, &l.name);
        quote! { .field(#key, &self.#ident) }
    });
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
    let visit_rngs = fields.iter().filter(|l| matches!(l.kind, LayerKind::Dropout { .. })).map(|l| {
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

    let layer_infos = model.layers.iter().map(|l| {
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
            LayerKind::Nested { path } => {
                let nested = nested_type(path, quote!(f32));
                vec![quote!(<#nested>::LAYERS)]
            }
            _ => Vec::new(),
        };
        quote! {
            #sn::network::LayerInfo {
                name: #name, param_name: #pname, kind: #kind,
                input_shape: &[#(#input),*], output_shape: &[#(#output),*], params: #params, buffers: #buffers,
                children: &[#(#children),*],
            }
        }
    });

    let composites: Vec<TokenStream> = model
        .layers
        .iter()
        .filter(|l| matches!(l.kind, LayerKind::Residual { .. } | LayerKind::Parallel { .. }))
        .map(|l| composite(model, l))
        .collect();
    // What only the compiler can check: a nested network's shapes, and for a
    // network with size parameters, that an instantiation's sizes fit.
    let mut checks: Vec<(TokenStream, String)> = model
        .layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKind::Nested { path } => {
                let (i, o) = (l.input.size(), l.output.size());
                let nested = nested_type(path, quote!(f32));
                let msg = format!(
                    "`{}: {}` gets {} ({i} values) and is declared to give {} ({o} values), but `{}` takes or gives other sizes",
                    l.name, l.kind, l.input, l.output, l.kind
                );
                Some((quote!(<#nested>::INPUT_SIZE == #i && <#nested>::OUTPUT_SIZE == #o), msg))
            }
            _ => None,
        })
        .collect();
    for p in &model.generics {
        let ident = &p.ident;
        checks.push((
            quote!(#ident >= 1),
            format!("`{name}`: the size parameter `{ident}` must be at least 1"),
        ));
    }
    if !model.generics.is_empty() {
        let max = crate::model::MAX_PARAMS;
        checks.push((
            quote!(#param_count <= #max),
            format!("`{name}`: these sizes give the network too many parameters to allocate"),
        ));
    }
    let checks: Vec<TokenStream> =
        checks.iter().map(|(cond, msg)| quote!(::core::assert!(#cond, #msg);)).collect();
    // Without size parameters the checks run as soon as the network is compiled;
    // with them, once per instantiation, when `init`/`zeros` is compiled for it.
    let (free_checks, instance_checks, use_checks) = if checks.is_empty() {
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
    let forward = forward_body(model, &steps);
    let forward_train = forward_train_body(model, &steps);
    let infer = infer_body(model, &steps);
    let visit_outputs = steps.iter().map(|l| {
        let (ident, name) = (&l.ident, &l.name);
        quote! { f(#name, t.out.#ident.as_slice()); }
    });
    let backward = backward_body(model, &steps);
    let last = &steps.last().expect("checked: a layer besides flatten").ident;

    // An alias names the one size parameter its size is, if any.
    let alias_generics = |size: &Size| match size {
        Size::Param(p) => {
            let decl = model.generics.iter().filter(|g| g.ident == *p);
            quote!(#(#decl,)*)
        }
        Size::Lit(_) => quote!(),
    };
    let (input_alias_generics, output_alias_generics) =
        (alias_generics(&input_size), alias_generics(&output_size));
    // `Mlp`, or `Mlp<128>` for an instantiation of a network with size parameters.
    let display_name = if model.generics.is_empty() {
        quote!(::core::stringify!(#name))
    } else {
        let idents = model.generics.iter().map(|g| &g.ident);
        let pattern = format!("{name}<{}>", vec!["{}"; model.generics.len()].join(", "));
        quote!(&::std::format!(#pattern, #(#idents),*))
    };
    let count_doc = match &model.param_count {
        Count::Lit(n) if crate::model::nested_paths(&model.layers).is_empty() => format!("{n} parameters"),
        _ => "`PARAM_COUNT` parameters".to_string(),
    };
    let struct_doc = format!("Generated by `network!`: {} → {}, {count_doc}.", model.input, model.output());
    let trace_doc = format!("The buffers of a training pass of [`{name}`], reused from step to step.");
    let buffers_doc = format!("One batch buffer per layer of [`{name}`], named after the layer.");
    let workspaces_doc = format!("What each layer of [`{name}`] keeps for its backward pass.");
    let grads_doc = format!("The gradient of a loss with respect to every parameter of [`{name}`].");
    let input_doc = format!(
        "A batch of inputs to [`{name}`]: {} per sample ({input_size} values), one sample per column.",
        model.input
    );
    let output_doc = format!(
        "A batch of outputs of [`{name}`]: {} per sample ({output_size} values), one sample per column.",
        model.output()
    );

    quote! {
        #(#composites)*

        #(#attrs)*
        #[doc = ""]
        #[doc = #struct_doc]
        #vis struct #name<#gd T: #sn::Float = f32> {
            #(#field_defs,)*
            #[doc(hidden)]
            pub __scalar: ::core::marker::PhantomData<T>,
        }

        #cfg
        #[doc = #input_doc]
        #vis type #input_alias<#input_alias_generics T = f32> = #sn::Batch<T, #input_size>;
        #cfg
        #[doc = #output_doc]
        #vis type #output_alias<#output_alias_generics T = f32> = #sn::Batch<T, #output_size>;

        #cfg
        #[doc = #trace_doc]
        #vis struct #trace<#gd T: #sn::Float = f32> {
            /// Each layer's output in the last training forward pass.
            pub out: #buffers<#ga T>,
            /// The gradient of the loss with respect to each layer's output (the last layer's is the caller's).
            pub d: #buffers<#ga T>,
            /// What each layer keeps for its backward pass.
            pub ws: #workspaces<#ga T>,
        }

        #cfg
        #[doc = #buffers_doc]
        #vis struct #buffers<#gd T: #sn::Float = f32> {
            #(#buffer_defs,)*
        }

        #cfg
        #[doc = #workspaces_doc]
        #vis struct #workspaces<#gd T: #sn::Float = f32> {
            #(#workspace_defs,)*
            #[doc(hidden)]
            pub __scalar: ::core::marker::PhantomData<T>,
        }

        #cfg
        #[doc = #grads_doc]
        #vis struct #grads<#gd T: #sn::Float = f32> {
            #(#grad_field_defs,)*
            #[doc(hidden)]
            pub __scalar: ::core::marker::PhantomData<T>,
        }

        #cfg
        impl<#gp T: #sn::Float> ::core::default::Default for #buffers<#ga T> {
            fn default() -> Self {
                #buffers { #(#buffer_defaults,)* }
            }
        }

        #cfg
        impl<#gp T: #sn::Float> ::core::default::Default for #workspaces<#ga T> {
            fn default() -> Self {
                #workspaces { #(#workspace_defaults,)* __scalar: ::core::marker::PhantomData }
            }
        }

        #cfg
        impl<#gp T: #sn::Float> ::core::default::Default for #trace<#ga T> {
            fn default() -> Self {
                #trace {
                    out: ::core::default::Default::default(),
                    d: ::core::default::Default::default(),
                    ws: ::core::default::Default::default(),
                }
            }
        }

        // The constants sit on the `f32` network so that `Net::LAYERS` needs no
        // type annotation; generic code reads `Params::PARAM_COUNT` instead.
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
                #sn::inspect::summary(#display_name, Self::INPUT_SHAPE, Self::LAYERS)
            }

            /// The data-flow graph in Graphviz DOT, each node labelled with its
            /// layer and output shape: `dot -Tsvg` draws it.
            pub fn to_dot() -> ::std::string::String {
                #sn::inspect::to_dot(#display_name, Self::INPUT_SHAPE, Self::LAYERS)
            }

            /// An `f32` network initialised from `seed`: He before ReLU-family
            /// activations, Glorot elsewhere, zero biases.
            pub fn new(seed: u64) -> Self {
                #use_checks
                Self::init(#sn::init::Init::Auto, seed)
            }
        }

        #cfg
        impl<#gp T: #sn::Float> #name<#ga T> {
            #instance_checks

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

            /// Saves the parameters and buffers as safetensors under PyTorch
            /// `state_dict` names, atomically (see `staticnet::persist`).
            pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #sn::Result<()> {
                #sn::persist::save(self, path)
            }

            /// Loads a network saved by [`Self::save`], or a PyTorch `state_dict` of the
            /// same architecture; every name, dtype and shape is checked first.
            pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> #sn::Result<Self> {
                let mut net = Self::zeros();
                #sn::persist::load_into(&mut net, path)?;
                ::core::result::Result::Ok(net)
            }
        }

        #cfg
        impl<#gp T: #sn::Float> ::core::clone::Clone for #name<#ga T> {
            fn clone(&self) -> Self {
                #name { #(#clone_fields,)* __scalar: ::core::marker::PhantomData }
            }
        }

        #cfg
        impl<#gp T: #sn::Float> ::core::fmt::Debug for #name<#ga T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#name)) #(#debug_fields)* .finish()
            }
        }

        #cfg
        impl<#gp T: #sn::Float> #sn::Params<T> for #name<#ga T> {
            type Gradients = #grads<#ga T>;
            const PARAM_COUNT: usize = #param_count;

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
        }

        #free_checks

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

        #cfg
        /// Nesting: the `Layer` passes over batches of any size, which a `const`
        /// assertion of the outer network has checked to be this network's.
        impl<#gp T: #sn::Float> #sn::layers::NestedNetwork<T> for #name<#ga T> {
            type Trace = #trace<#ga T>;

            fn nested_forward<const __I: usize, const __O: usize>(&self, x: &#sn::Batch<T, __I>, y: &mut #sn::Batch<T, __O>) {
                let (x, y) = (#sn::layers::same_size(x), #sn::layers::same_size_mut(y));
                <Self as #sn::layers::Layer<T, #input_size, #output_size>>::forward(self, x, y)
            }

            fn nested_forward_with<const __I: usize, const __O: usize>(&self, x: &#sn::Batch<T, __I>, y: &mut #sn::Batch<T, __O>, ws: &mut #trace<#ga T>) {
                let (x, y) = (#sn::layers::same_size(x), #sn::layers::same_size_mut(y));
                <Self as #sn::layers::Layer<T, #input_size, #output_size>>::forward_with(self, x, y, ws)
            }

            fn nested_forward_train<const __I: usize, const __O: usize>(&mut self, x: &#sn::Batch<T, __I>, y: &mut #sn::Batch<T, __O>, ws: &mut #trace<#ga T>) {
                let (x, y) = (#sn::layers::same_size(x), #sn::layers::same_size_mut(y));
                <Self as #sn::layers::Layer<T, #input_size, #output_size>>::forward_train(self, x, y, ws)
            }

            fn nested_backward<const __I: usize, const __O: usize>(
                &self,
                x: &#sn::Batch<T, __I>,
                y: &#sn::Batch<T, __O>,
                dy: &#sn::Batch<T, __O>,
                ws: &mut #trace<#ga T>,
                g: &mut #grads<#ga T>,
                dx: ::core::option::Option<&mut #sn::Batch<T, __I>>,
            ) {
                let (x, y, dy) = (#sn::layers::same_size(x), #sn::layers::same_size(y), #sn::layers::same_size(dy));
                let dx = dx.map(|dx| #sn::layers::same_size_mut(dx));
                <Self as #sn::layers::Layer<T, #input_size, #output_size>>::backward(self, x, y, dy, ws, g, dx)
            }
        }

        #cfg
        impl<#gp T: #sn::Float> #sn::Network<T, #input_size, #output_size> for #name<#ga T> {
            type Trace = #trace<#ga T>;

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
                let _ = &g;
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
        }
    }
}

/// The Rust type of a layer.
fn layer_type(model: &Model, l: &Layer) -> TokenStream {
    let layers = quote!(::staticnet::layers);
    let (i, o) = (l.input.size(), l.output.size());
    match &l.kind {
        LayerKind::Dense { inputs, outputs, .. } => quote!(#layers::Dense<T, #inputs, #outputs>),
        LayerKind::Conv2d { geometry: g, .. } => {
            let (patch, cout) = (g.patch(), g.out_channels);
            quote!(#layers::Conv2d<T, #i, #o, #patch, #cout>)
        }
        LayerKind::MaxPool(_) => quote!(#layers::MaxPool2d),
        LayerKind::AvgPool(_) => quote!(#layers::AvgPool2d),
        LayerKind::GlobalAvgPool { .. } => quote!(#layers::GlobalAvgPool),
        LayerKind::Flatten => quote!(#layers::Identity),
        LayerKind::BatchNorm { channels, .. } => quote!(#layers::BatchNorm<T, #o, #channels>),
        LayerKind::LayerNorm { .. } => quote!(#layers::LayerNorm<T, #o>),
        LayerKind::Dropout { .. } => quote!(#layers::Dropout),
        LayerKind::Residual { .. } | LayerKind::Parallel { .. } => {
            let ty = composite_name(&model.name, l);
            let ga = Generics::of(model).args;
            quote!(#ty<#ga T>)
        }
        LayerKind::Nested { path } => {
            let ty = nested_type(path, quote!(T));
            quote!(#layers::Nested<#ty>)
        }
        LayerKind::Activation(a) => match a {
            Activation::Relu => quote!(#layers::Relu),
            Activation::LeakyRelu(_) => quote!(#layers::LeakyRelu),
            Activation::Sigmoid => quote!(#layers::Sigmoid),
            Activation::Tanh => quote!(#layers::Tanh),
            Activation::Gelu => quote!(#layers::Gelu),
            Activation::Softmax => quote!(#layers::Softmax),
            Activation::Identity => quote!(#layers::Identity),
        },
    }
}

fn conv_geometry(g: &ConvGeometry) -> TokenStream {
    let ConvGeometry {
        in_channels,
        height,
        width,
        out_channels,
        kernel,
        stride,
        padding,
        dilation,
        out_height,
        out_width,
    } = *g;
    let [kh, kw] = kernel;
    let [sh, sw] = stride;
    let [ph, pw] = padding;
    let [dh, dw] = dilation;
    quote! {
        ::staticnet::layers::Conv2dGeometry {
            in_channels: #in_channels, height: #height, width: #width, out_channels: #out_channels,
            kernel: [#kh, #kw], stride: [#sh, #sw], padding: [#ph, #pw], dilation: [#dh, #dw],
            out_height: #out_height, out_width: #out_width,
        }
    }
}

fn pool_geometry(g: &PoolGeometry) -> TokenStream {
    let PoolGeometry { channels, height, width, kernel, stride, out_height, out_width } = *g;
    let [kh, kw] = kernel;
    let [sh, sw] = stride;
    quote! {
        ::staticnet::layers::PoolGeometry {
            channels: #channels, height: #height, width: #width,
            kernel: [#kh, #kw], stride: [#sh, #sw], out_height: #out_height, out_width: #out_width,
        }
    }
}

/// A field layer's constructor: initialised from `init`/`rng`, or zeroed.
fn construct(model: &Model, l: &Layer, random: bool) -> TokenStream {
    let layers = quote!(::staticnet::layers);
    let relu_like = relu_follows(model, l);
    match &l.kind {
        LayerKind::Dense { bias, .. } if random => {
            quote!(#layers::Dense::new(#bias, init.resolve(#relu_like), &mut rng))
        }
        LayerKind::Dense { bias, .. } => quote!(#layers::Dense::zeros(#bias)),
        LayerKind::Conv2d { geometry, bias, .. } => {
            let g = conv_geometry(geometry);
            if random {
                checked(quote!(#layers::Conv2d::new(#g, #bias, init.resolve(#relu_like), &mut rng)))
            } else {
                checked(quote!(#layers::Conv2d::zeros(#g, #bias)))
            }
        }
        LayerKind::BatchNorm { eps, momentum, .. } => {
            checked(quote!(#layers::BatchNorm::new(#eps, #momentum)))
        }
        LayerKind::LayerNorm { eps } => {
            let shape = l.output.dims();
            checked(quote!(#layers::LayerNorm::new(&[#(#shape),*], #eps)))
        }
        LayerKind::Dropout { p } if random => {
            checked(quote!(#layers::Dropout::new(#p, ::staticnet::init::next_seed(&mut rng))))
        }
        LayerKind::Dropout { p } => checked(quote!(#layers::Dropout::new(#p, 0))),
        LayerKind::Nested { path } if random => {
            let ty = nested_type(path, quote!(T));
            quote!(#layers::Nested(<#ty>::init(init, ::staticnet::init::next_seed(&mut rng))))
        }
        LayerKind::Nested { path } => {
            let ty = nested_type(path, quote!(T));
            quote!(#layers::Nested(<#ty>::zeros()))
        }
        LayerKind::Residual { .. } | LayerKind::Parallel { .. } => {
            let ty = composite_name(&model.name, l);
            if random {
                quote!(#ty::new(init, &mut rng))
            } else {
                quote!(#ty::zeros())
            }
        }
        _ => unreachable!("only layers with parameters or state are fields"),
    }
}

/// Whether a ReLU-family activation is the first activation after `l`,
/// before any other layer with weights: He initialisation suits it then.
/// Wraps a fallible layer constructor whose arguments the checker has validated.
fn checked(constructor: TokenStream) -> TokenStream {
    quote!(::staticnet::__private::checked(#constructor))
}

fn relu_follows(model: &Model, l: &Layer) -> bool {
    for next in &model.layers[l.position + 1..] {
        match next.kind {
            LayerKind::Activation(a) => return a.is_relu_like(),
            LayerKind::Dense { .. } | LayerKind::Conv2d { .. } => return false,
            _ => {}
        }
    }
    false
}

/// How generated code reaches a layer: `self.fc1` for fields, a value otherwise.
fn layer_ref(model: &Model, l: &Layer) -> TokenStream {
    let layers = quote!(::staticnet::layers);
    let ident = &l.ident;
    match &l.kind {
        kind if kind.is_field() => quote!(self.#ident),
        LayerKind::MaxPool(g) => {
            let g = pool_geometry(g);
            quote!(#layers::MaxPool2d { geometry: #g })
        }
        LayerKind::AvgPool(g) => {
            let g = pool_geometry(g);
            quote!(#layers::AvgPool2d { geometry: #g })
        }
        LayerKind::GlobalAvgPool { channels, spatial } => {
            quote!(#layers::GlobalAvgPool { channels: #channels, spatial: #spatial })
        }
        LayerKind::Activation(Activation::LeakyRelu(alpha)) => quote!(#layers::LeakyRelu::new(#alpha)),
        _ => layer_type(model, l),
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

/// Layers a pass runs as one call, with the same results as layer by layer but
/// fewer passes over memory: `dense, relu` with the bias and the ReLU in the
/// product's epilogue (`Dense::forward_relu`) and, backward, `relu, dense` with
/// the ReLU's gate in the epilogue of the dense layer's input gradient
/// (`Dense::backward_through_relu`); in training, `relu, max_pool` in one pass
/// over the ReLU's input (`MaxPool2d::forward_train_after_relu`) and
/// `conv2d, relu, max_pool` sample by sample (`Conv2d::forward_train_relu_max_pool`).
#[derive(Clone, Copy)]
enum Fused {
    /// Step `k` alone.
    Single(usize),
    /// A ReLU at step `k`, the max pooling after it.
    ReluPool(usize),
    /// A convolution at step `k`, a ReLU and a max pooling after it.
    ConvReluPool(usize),
    /// A dense layer at step `k`, a ReLU after it (forward passes).
    DenseRelu(usize),
    /// A ReLU at step `k > 0`, a dense layer after it (the backward pass).
    ReluDense(usize),
}

/// Which pass [`fused_steps`] groups for.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Infer,
    Train,
    Backward,
}

/// The steps of a pass, grouped into what runs as one call.
fn fused_steps(steps: &[&Layer], pass: Pass) -> Vec<Fused> {
    let kind = |k: usize| steps.get(k).map(|l| &l.kind);
    let is_relu = |k| matches!(kind(k), Some(LayerKind::Activation(Activation::Relu)));
    let is_pool = |k| matches!(kind(k), Some(LayerKind::MaxPool(_)));
    let is_conv = |k| matches!(kind(k), Some(LayerKind::Conv2d { .. }));
    let is_dense = |k| matches!(kind(k), Some(LayerKind::Dense { .. }));
    let training = pass != Pass::Infer;
    let mut groups = Vec::new();
    let mut k = 0;
    while k < steps.len() {
        let (group, len) = if training && is_conv(k) && is_relu(k + 1) && is_pool(k + 2) {
            (Fused::ConvReluPool(k), 3)
        } else if training && is_relu(k) && is_pool(k + 1) {
            (Fused::ReluPool(k), 2)
        } else if pass != Pass::Backward && is_dense(k) && is_relu(k + 1) {
            (Fused::DenseRelu(k), 2)
        } else if pass == Pass::Backward && k > 0 && is_relu(k) && is_dense(k + 1) {
            (Fused::ReluDense(k), 2)
        } else {
            (Fused::Single(k), 1)
        };
        groups.push(group);
        k += len;
    }
    groups
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
                    &mut #pool_layer, #input, &mut t.out.#conv, &mut t.out.#relu, &mut t.out.#pool, &mut t.ws.#conv, &mut t.ws.#pool,
                );
            }
        }
        Fused::DenseRelu(k) => dense_relu(model, steps, k),
        Fused::ReluDense(_) => unreachable!("a backward group"),
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
                #layer.backward_after_relu(#input, &t.out.#relu, &t.out.#pool, #d_output, &mut t.ws.#pool, &mut t.d.#relu, #d_input);
            }
        }
        Fused::ConvReluPool(k) => {
            let (conv, relu, pool) = (&steps[k].ident, &steps[k + 1].ident, &steps[k + 2].ident);
            let (input, layer, pool_layer) = (step_input(steps, k), layer_ref(model, steps[k]), layer_ref(model, steps[k + 2]));
            let (d_output, d_input) = (d_output_of(k + 2), d_input_of(k));
            quote! {
                #layer.backward_relu_max_pool(
                    &#pool_layer,
                    (#input, &t.out.#conv, &t.out.#relu, &t.out.#pool),
                    #d_output,
                    (&mut t.ws.#conv, &mut t.ws.#pool),
                    &mut g.#conv,
                    (&mut t.d.#relu, &mut t.d.#conv),
                    #d_input,
                );
            }
        }
        Fused::ReluDense(k) => {
            let (pre, relu, dense) = (&steps[k - 1].ident, &steps[k].ident, &steps[k + 1].ident);
            let (input, layer, d_output) = (step_input(steps, k), layer_ref(model, steps[k + 1]), d_output_of(k + 1));
            quote! {
                #layer.backward_through_relu((#input, &t.out.#relu), #d_output, &mut g.#dense, &mut t.d.#relu, &mut t.d.#pre);
            }
        }
        Fused::DenseRelu(_) => unreachable!("a forward group"),
    });
    quote! { #(#code)* }
}

/// The hidden type of a composite layer: `__Net_block1`.
fn composite_name(parent: &syn::Ident, l: &Layer) -> syn::Ident {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model(body: &str) -> Model {
        let cx = crate::ctxt::Ctxt::new();
        let tokens: TokenStream = format!("struct Net {{ {body} }}").parse().expect("tokens");
        let model = crate::parse::parse(tokens, &cx).and_then(|def| crate::check::check(def, &cx));
        assert!(!cx.has_errors(), "{body}");
        model.expect("a model")
    }

    /// The groups of a pass, as (kind, first step) pairs.
    fn groups(body: &str, pass: Pass) -> Vec<(&'static str, usize)> {
        let model = model(body);
        let steps: Vec<&Layer> = model.layers.iter().filter(|l| l.kind != LayerKind::Flatten).collect();
        fused_steps(&steps, pass)
            .into_iter()
            .map(|g| match g {
                Fused::Single(k) => ("single", k),
                Fused::ReluPool(k) => ("relu_pool", k),
                Fused::ConvReluPool(k) => ("conv_relu_pool", k),
                Fused::DenseRelu(k) => ("dense_relu", k),
                Fused::ReluDense(k) => ("relu_dense", k),
            })
            .collect()
    }

    #[test]
    fn dense_and_relu_pair_forward_one_way_and_backward_the_other() {
        let mlp = "input: [8], dense(6), relu, dense(4), relu, dense(2)";
        let forward = vec![("dense_relu", 0), ("dense_relu", 2), ("single", 4)];
        assert_eq!(groups(mlp, Pass::Train), forward);
        assert_eq!(groups(mlp, Pass::Infer), forward);
        assert_eq!(groups(mlp, Pass::Backward), [("single", 0), ("relu_dense", 1), ("relu_dense", 3)]);
        // A leading ReLU has no previous layer to hand its gradient to through a dense one.
        let leading = "input: [8], relu, dense(4), sigmoid, dense(2)";
        assert_eq!(
            groups(leading, Pass::Backward),
            [("single", 0), ("single", 1), ("single", 2), ("single", 3)]
        );
    }

    #[test]
    fn pooling_groups_are_for_training_only() {
        let cnn = "input: [1, 8, 8], conv2d(2, kernel = 3), relu, max_pool(2), relu, max_pool(1), flatten, dense(3)";
        let train = vec![("conv_relu_pool", 0), ("relu_pool", 3), ("single", 5)];
        assert_eq!(groups(cnn, Pass::Train), train);
        assert_eq!(groups(cnn, Pass::Backward), train);
        assert_eq!(groups(cnn, Pass::Infer), (0..6).map(|k| ("single", k)).collect::<Vec<_>>());
    }
}
