//! Layers you write yourself, used in `network!` like a built-in layer:
//! `act: MySilu => [128]` or `gate: MyGate<64>(0.5) => [64]`.
//!
//! A type implements [`CustomLayer`] for the sizes it takes and gives (as
//! const generics, so a layer that works at every size implements it for
//! every `N`), and [`Params`] for its parameters (none: [`crate::no_params!`]).
//! In `network!`, a capitalised entry names such a type; its float type is the
//! type's last generic parameter, which the macro supplies, as for networks
//! (`MyGate<64>` is `MyGate<64, T>`). The layer is built by
//! `MyGate::<64, T>::new(0.5)` when arguments are written, and by
//! `Default::default()` when none are, then drawn by
//! [`CustomLayer::init_params`] in `Net::init`/`Net::new` (not in `Net::zeros`).
//! `=> [..]` declares its output shape, and the compiler checks that the type
//! implements `CustomLayer<T, IN, OUT>` for the sizes around it: a mismatch is
//! one error on the entry, naming the layer and both shapes.
//!
//! Networks made by `network!` implement [`CustomLayer`] too (for their own
//! sizes), which is how `encoder: Encoder => [..]` nests one network in another.
//!
//! [`Custom`] is the field type the macro writes: the layer and its passes for
//! the sizes around it, taken once, where the macro checks that they fit, so
//! that every other use of the layer compiles whatever the sizes.

use super::Layer;
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, Batch};
use std::any::Any;
use std::fmt;

/// A layer of your own from `IN` to `OUT` values per sample (a `[C, H, W]`
/// shape is `C·H·W` values, channel-major), usable in `network!`.
///
/// Implement [`Params`] beside it: its parameters under their own names
/// (`weight`), which the network prefixes with the layer's field name
/// (`gate.weight`) for optimizers and safetensors files. A layer without
/// parameters writes [`crate::no_params!`]. Check the gradients of an
/// implementation with [`crate::gradcheck::check_layer`].
///
/// The batches hold one sample per column; `y` and `dx` arrive sized to the
/// batch. A layer that keeps something from its training pass for the
/// backward pass (a mask, a normalisation) keeps it in its [`Self::Workspace`].
///
/// # Examples
///
/// A SiLU, `x·σ(x)`, at every size (in a network: `act: MySilu => [8]`;
/// the README's "Layers of your own" has a whole program):
///
/// ```
/// use staticnet_core::layers::{Custom, CustomLayer, Layer};
/// use staticnet_core::{gradcheck, Batch, Float};
/// use std::marker::PhantomData;
///
/// #[derive(Clone, Debug, Default)]
/// pub struct MySilu<T = f32>(PhantomData<T>);
/// staticnet_core::no_params!(MySilu<T>);
///
/// impl<T: Float, const N: usize> CustomLayer<T, N, N> for MySilu<T> {
///     type Workspace = ();
///     fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
///         y.zip_apply(x, |y, x| *y = x / (T::one() + (-x).exp()));
///     }
///     fn backward(&self, x: &Batch<T, N>, _y: &Batch<T, N>, dy: &Batch<T, N>,
///                 _ws: &mut (), _grads: &mut (), dx: Option<&mut Batch<T, N>>) {
///         if let Some(dx) = dx {
///             for ((dx, &x), &dy) in dx.iter_mut().zip(x.iter()).zip(dy.iter()) {
///                 let s = T::one() / (T::one() + (-x).exp());
///                 *dx = dy * s * (T::one() + x * (T::one() - s));
///             }
///         }
///     }
/// }
///
/// // Its gradients, by finite differences.
/// let x = Batch::<f64, 4>::from_fn(3, |i, j| i as f64 - j as f64);
/// assert!(gradcheck::check_layer(&mut MySilu::<f64>::default(), &x, 1e-6) < 1e-6);
///
/// // As the field `network!` makes of it, from 4 values to 4.
/// let act = Custom::<f32, _, 4, 4>::new(MySilu::<f32>::default());
/// let mut y = Batch::zeros(0);
/// Layer::forward(&act, &Batch::<f32, 4>::from_element(2, 1.0), &mut y);
/// assert!((y[(0, 0)] - 0.7310586).abs() < 1e-6);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a layer from {IN} to {OUT} values per sample",
    label = "no `CustomLayer<T, {IN}, {OUT}>` for this type",
    note = "a layer of your own implements `staticnet::layers::CustomLayer<T, IN, OUT>` for the sizes around it"
)]
pub trait CustomLayer<T: Float, const IN: usize, const OUT: usize>: Params<T> {
    /// What the training pass keeps for the backward pass: `()` when the
    /// input and output suffice. It starts as `Default::default()` and is
    /// reused from step to step.
    type Workspace: Default + Send + 'static;

    /// The inference pass (evaluation mode).
    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>);

    /// The inference pass with the workspace to reuse; by default [`Self::forward`].
    fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Self::Workspace) {
        let _ = ws;
        self.forward(x, y)
    }

    /// The training pass, keeping what [`Self::backward`] needs in `ws`; by
    /// default [`Self::forward`].
    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Self::Workspace) {
        let _ = ws;
        self.forward(x, y)
    }

    /// From `dy`, the gradient of the loss with respect to the output `y` of
    /// the training pass on `x`: the parameter gradients into `grads`
    /// (overwritten) and, when asked for, the input gradient into `dx`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        x: &Batch<T, IN>,
        y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut Self::Workspace,
        grads: &mut Self::Gradients,
        dx: Option<&mut Batch<T, IN>>,
    );

    /// Draws the initial parameters (`Net::init`/`Net::new`; `Net::zeros` and
    /// `Net::load` keep the constructor's). By default nothing is drawn.
    fn init_params(&mut self, init: Init, rng: &mut SeededRng) {
        let _ = (init, rng);
    }

    /// Adds the layer's inference pass to an ONNX graph reading the value `x`
    /// (`[N, ..]`) and returns its output's name (see `crate::onnx::ops` for
    /// helpers). Networks used as layers export themselves; by default a layer
    /// of the user's is [`crate::Error::OnnxExport`], so no file is written without it.
    fn to_onnx(&self, g: &mut crate::onnx::Graph, x: &str) -> crate::Result<String> {
        let _ = x;
        let reason = "a layer of the user's has no ONNX form: implement `CustomLayer::to_onnx`".to_string();
        Err(crate::Error::OnnxExport { layer: g.layer_name(), reason })
    }
}

/// The workspace of a [`Custom`] layer: its [`CustomLayer::Workspace`],
/// created on first use (the only allocation) and reused afterwards.
#[derive(Default)]
pub struct CustomWorkspace(Option<Box<dyn Any + Send>>);

impl fmt::Debug for CustomWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomWorkspace")
    }
}

impl CustomWorkspace {
    fn get<W: Default + Send + 'static>(&mut self) -> &mut W {
        if !self.0.as_ref().is_some_and(|w| w.is::<W>()) {
            self.0 = Some(Box::new(W::default()));
        }
        match self.0.as_mut().and_then(|w| w.downcast_mut::<W>()) {
            Some(w) => w,
            None => unreachable_workspace(),
        }
    }
}

#[allow(clippy::panic)]
#[cold]
fn unreachable_workspace() -> ! {
    panic!("a custom layer's workspace was just created with its own type")
}

type Forward<T, L, const I: usize, const O: usize> =
    fn(&L, &Batch<T, I>, &mut Batch<T, O>, &mut CustomWorkspace);
type ForwardTrain<T, L, const I: usize, const O: usize> =
    fn(&mut L, &Batch<T, I>, &mut Batch<T, O>, &mut CustomWorkspace);
type Backward<T, L, const I: usize, const O: usize> = fn(
    &L,
    &Batch<T, I>,
    &Batch<T, O>,
    &Batch<T, O>,
    &mut CustomWorkspace,
    &mut <L as Params<T>>::Gradients,
    Option<&mut Batch<T, I>>,
);

/// A [`CustomLayer`] as a field of a network: the layer (also reached as
/// `net.act.layer`) and its passes for `I` values in, `O` out, taken by
/// [`Custom::new`]. It implements [`Layer`] and [`Params`] (the layer's
/// parameters under the field's name).
pub struct Custom<T: Float, L: Params<T>, const I: usize, const O: usize> {
    /// The layer.
    pub layer: L,
    forward: Forward<T, L, I, O>,
    forward_train: ForwardTrain<T, L, I, O>,
    backward: Backward<T, L, I, O>,
    init: fn(&mut L, Init, &mut SeededRng),
    onnx: fn(&L, &mut crate::onnx::Graph, &str) -> crate::Result<String>,
}

impl<T: Float, L: CustomLayer<T, I, O>, const I: usize, const O: usize> Custom<T, L, I, O> {
    /// `layer` with its passes from `I` values to `O`.
    pub fn new(layer: L) -> Self {
        Custom {
            layer,
            forward: |l, x, y, ws| l.forward_with(x, y, ws.get()),
            forward_train: |l, x, y, ws| l.forward_train(x, y, ws.get()),
            backward: |l, x, y, dy, ws, g, dx| l.backward(x, y, dy, ws.get(), g, dx),
            init: L::init_params,
            onnx: L::to_onnx,
        }
    }
}

impl<T: Float, L: Params<T>, const I: usize, const O: usize> Custom<T, L, I, O> {
    /// Draws the layer's initial parameters ([`CustomLayer::init_params`]).
    pub fn init_params(mut self, init: Init, rng: &mut SeededRng) -> Self {
        (self.init)(&mut self.layer, init, rng);
        self
    }

    /// The layer's inference pass in an ONNX graph ([`CustomLayer::to_onnx`]).
    ///
    /// # Errors
    /// [`crate::Error::OnnxExport`] if the layer has no ONNX form.
    pub fn to_onnx(&self, g: &mut crate::onnx::Graph, x: &str) -> crate::Result<String> {
        (self.onnx)(&self.layer, g, x)
    }
}

impl<T: Float, L: Params<T> + Clone, const I: usize, const O: usize> Clone for Custom<T, L, I, O> {
    fn clone(&self) -> Self {
        Custom { layer: self.layer.clone(), ..*self }
    }
}

impl<T: Float, L: Params<T> + fmt::Debug, const I: usize, const O: usize> fmt::Debug for Custom<T, L, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.layer.fmt(f)
    }
}

impl<T: Float, L: Params<T>, const I: usize, const O: usize> Layer<T, I, O> for Custom<T, L, I, O> {
    type Workspace = CustomWorkspace;
    type Gradients = L::Gradients;

    fn forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>) {
        self.forward_with(x, y, &mut CustomWorkspace::default())
    }

    fn forward_with(&self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut CustomWorkspace) {
        ensure_batch(y, x.ncols());
        (self.forward)(&self.layer, x, y, ws)
    }

    fn forward_train(&mut self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut CustomWorkspace) {
        ensure_batch(y, x.ncols());
        (self.forward_train)(&mut self.layer, x, y, ws)
    }

    fn backward(
        &self,
        x: &Batch<T, I>,
        y: &Batch<T, O>,
        dy: &Batch<T, O>,
        ws: &mut CustomWorkspace,
        grads: &mut L::Gradients,
        dx: Option<&mut Batch<T, I>>,
    ) {
        let mut dx = dx;
        if let Some(dx) = dx.as_deref_mut() {
            ensure_batch(dx, x.ncols());
        }
        (self.backward)(&self.layer, x, y, dy, ws, grads, dx)
    }
}

/// The parameters are the layer's, under the field's name.
impl<T: Float, L: Params<T>, const I: usize, const O: usize> Params<T> for Custom<T, L, I, O> {
    type Gradients = L::Gradients;
    const PARAM_COUNT: usize = L::PARAM_COUNT;
    const SUBLAYERS: &'static [&'static [crate::network::LayerInfo]] = L::SUBLAYERS;

    fn zero_gradients(&self) -> L::Gradients {
        self.layer.zero_gradients()
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.layer.visit_params(path, f)
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.layer.visit_params_mut(path, f)
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &L::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.layer.visit_params_with_grads(grads, path, f)
    }
    fn visit_grads(grads: &L::Gradients, f: &mut dyn FnMut(&[T])) {
        L::visit_grads(grads, f)
    }
    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.layer.visit_buffers(path, f)
    }
    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.layer.visit_buffers_mut(path, f)
    }
    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.layer.visit_rngs(path, f)
    }
}

/// Implements [`Params`] with no parameters for a layer of your own:
/// `staticnet::no_params!(MySilu<T>)`, where `T` (the float type, which must
/// be the type's last generic parameter and is named `T`) gets the `Float`
/// bound; other generic parameters go first in brackets:
/// `staticnet::no_params!([const N: usize] MyScale<N, T>)`.
#[macro_export]
macro_rules! no_params {
    ($(#[$doc:meta])* $([$($generics:tt)*])? $ty:ty) => {
        $(#[$doc])*
        impl<$($($generics)*,)? T: $crate::Float> $crate::params::Params<T> for $ty {
            type Gradients = ();
            const PARAM_COUNT: usize = 0;
            fn zero_gradients(&self) {}
            fn visit_params(&self, _: &$crate::params::ParamPath<'_>, _: &mut dyn FnMut($crate::params::Param<'_, T>)) {}
            fn visit_params_mut(&mut self, _: &$crate::params::ParamPath<'_>, _: &mut dyn FnMut($crate::params::ParamMut<'_, T>)) {}
            fn visit_params_with_grads(
                &mut self,
                _: &(),
                _: &$crate::params::ParamPath<'_>,
                _: &mut dyn FnMut($crate::params::ParamMut<'_, T>, &[T]),
            ) {
            }
            fn visit_grads(_: &(), _: &mut dyn FnMut(&[T])) {}
        }
    };
}
