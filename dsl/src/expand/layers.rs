//! How the generated code builds each layer and reaches it: constructors
//! (initialised or zeroed), geometry literals, and the expression a pass calls
//! a layer through (a field, or a value written inline).

use super::composite;
use super::types::layer_type;
use crate::model::{Activation, Cell, ConvGeometry, Layer, LayerKind, Model, PoolGeometry};
use proc_macro2::TokenStream;
use quote::quote;

/// A `Conv2dGeometry` literal.
pub fn conv_geometry(g: &ConvGeometry) -> TokenStream {
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

/// A `PoolGeometry` literal.
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
pub fn construct(model: &Model, l: &Layer, random: bool) -> TokenStream {
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
        LayerKind::Nested { .. } => super::custom::construct(l, random),
        LayerKind::Residual { .. } | LayerKind::Parallel { .. } => composite::construct(model, l, random),
        LayerKind::PerStep { inputs, inner, .. } => {
            let inner = match &**inner {
                LayerKind::Dense { bias, .. } if random => {
                    quote!(#layers::Dense::new(#bias, init.resolve(#relu_like), &mut rng))
                }
                LayerKind::Dense { bias, .. } => quote!(#layers::Dense::zeros(#bias)),
                LayerKind::LayerNorm { eps } => checked(quote!(#layers::LayerNorm::new(&[#inputs], #eps))),
                _ => unreachable!("only dense and layer_norm are fields per step"),
            };
            quote!(#layers::PerStep::new(#inner))
        }
        LayerKind::Conv1d { geometry: g, bias, .. } => {
            let (steps, k, s, p, d) = (g.steps, g.kernel, g.stride, g.padding, g.dilation);
            let g = checked(quote!(#layers::Conv1dGeometry::new(#steps, #k, #s, #p, #d)));
            if random {
                checked(quote!(#layers::Conv1d::new(#g, #bias, init.resolve(#relu_like), &mut rng)))
            } else {
                checked(quote!(#layers::Conv1d::zeros(#g, #bias)))
            }
        }
        LayerKind::Recurrent { cell, .. } => {
            let ty = match cell {
                Cell::Lstm => quote!(#layers::Lstm),
                Cell::Gru => quote!(#layers::Gru),
            };
            if random {
                quote!(#ty::new(init.resolve(false), &mut rng))
            } else {
                quote!(#ty::zeros())
            }
        }
        LayerKind::Attention { causal, .. } if random => {
            checked(quote!(#layers::Attention::new(#causal, init.resolve(false), &mut rng)))
        }
        LayerKind::Attention { causal, .. } => checked(quote!(#layers::Attention::zeros(#causal))),
        LayerKind::Positional { .. } if random => {
            quote!(#layers::Positional::new(init.resolve(false), &mut rng))
        }
        LayerKind::Positional { .. } => quote!(#layers::Positional::zeros()),
        LayerKind::Embedding { .. } if random => quote!(#layers::Embedding::new(&mut rng)),
        LayerKind::Embedding { .. } => quote!(#layers::Embedding::zeros()),
        _ => unreachable!("only layers with parameters or state are fields"),
    }
}

/// Wraps a fallible layer constructor whose arguments the checker has validated.
pub fn checked(constructor: TokenStream) -> TokenStream {
    quote!(::staticnet::__private::checked(#constructor))
}

/// Whether a ReLU-family activation is the first activation after `l`,
/// before any other layer with weights: He initialisation suits it then.
fn relu_follows(model: &Model, l: &Layer) -> bool {
    for next in &model.layers[l.position + 1..] {
        match next.kind {
            LayerKind::Activation(a) => return a.is_relu_like(),
            LayerKind::Dense { .. }
            | LayerKind::Conv2d { .. }
            | LayerKind::PerStep { .. }
            | LayerKind::Conv1d { .. }
            | LayerKind::Recurrent { .. }
            | LayerKind::Attention { .. } => return false,
            _ => {}
        }
    }
    false
}

/// How generated code reaches a layer: `self.fc1` for fields, a value otherwise.
pub fn layer_ref(model: &Model, l: &Layer) -> TokenStream {
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
        LayerKind::Activation(Activation::Elu(alpha)) => quote!(#layers::Elu::new(#alpha)),
        LayerKind::PerStep { steps, inputs, outputs, inner } => {
            // Only `softmax` and `log_softmax` per step are not fields.
            let a = match &**inner {
                LayerKind::Activation(Activation::LogSoftmax) => quote!(#layers::LogSoftmax),
                _ => quote!(#layers::Softmax),
            };
            quote!(#layers::PerStep::<#a, #steps, #inputs, #outputs>::new(#a))
        }
        LayerKind::MaxPool1d(g) | LayerKind::AvgPool1d(g) => {
            let ty =
                if matches!(l.kind, LayerKind::MaxPool1d(_)) { quote!(MaxPool1d) } else { quote!(AvgPool1d) };
            let (steps, f, out_steps, k, s) = (g.steps, g.features, g.out_steps, g.kernel, g.stride);
            // Sizes the checker computed: built in a `const` block, checked at compile time.
            quote!(const { #layers::#ty::<#steps, #f, #out_steps>::with_window(#k, #s) })
        }
        LayerKind::GlobalAvgPool1d { steps, features } => {
            quote!(#layers::GlobalAvgPool1d::<#steps, #features>::new())
        }
        LayerKind::Last { steps, features } => quote!(#layers::Last::<#steps, #features>::new()),
        _ => layer_type(model, l),
    }
}
