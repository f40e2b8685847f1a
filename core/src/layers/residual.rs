//! A residual block (`residual { .. }` in `network!`): a body network with a
//! skip path around it, `body(x) + x`, or `body(x) + projection(x)` when the
//! body changes the shape (ResNet's downsampling blocks).

use super::Layer;
use crate::float::Float;
use crate::init::SeededRng;
use crate::network::Network;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, Batch};
use std::fmt;

/// `body(x) + skip(x)`: the body is a network (`network!` generates one for the
/// block's layers), the skip path the input itself ([`NoProjection`]) or a
/// learned [`Projection`] (a dense layer or a strided 1×1 convolution).
///
/// Parameters are named `body.…` and `projection.…` under the block's name
/// (`block1.body.0.weight`, `down.projection.weight`), body first.
#[derive(Clone)]
pub struct Residual<B, S> {
    /// The block's layers.
    pub body: B,
    /// The skip path.
    pub projection: S,
}

/// The skip path of a block whose body keeps the shape: the input, added as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProjection;

/// A learned skip path: a layer from the block's input to its output shape.
#[derive(Clone, Debug)]
pub struct Projection<L>(pub L);

/// What a [`Residual`] block keeps for its backward pass.
#[derive(Default)]
pub struct ResidualWorkspace<B, S> {
    /// The body's trace.
    pub body: B,
    /// The skip path's workspace.
    pub skip: S,
}

/// The parameter gradients of a [`Residual`] block, shaped like its fields.
pub struct ResidualGrad<B, S> {
    /// The body's gradients.
    pub body: B,
    /// The projection's gradients (`()` without one).
    pub projection: S,
}

/// The skip path of a [`Residual`] block from `I` to `O` values per sample:
/// what it adds to the body's output, and backward to the input gradient.
pub trait Skip<T: Float, const I: usize, const O: usize>: Params<T> {
    /// What the skip path keeps for its backward pass.
    type Workspace: Default + Send;

    /// Adds the skip path's output for `x` to `y` (inference).
    fn add_forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>);

    /// `y = body + skip(x)` in one pass over `y` (inference), with a workspace
    /// to reuse, allocation-free once it exists; `y` has the batch of `body`.
    fn sum_forward_with(
        &self,
        body: &Batch<T, O>,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
    );

    /// `y = body + skip(x)` in one pass over `y` (training).
    fn sum_forward_train(
        &mut self,
        body: &Batch<T, O>,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
    );

    /// The parameter gradients from `dy` into `grads`, and the skip path's
    /// input gradient added to `dx` when asked for.
    fn add_backward(
        &self,
        x: &Batch<T, I>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        grads: &mut Self::Gradients,
        dx: Option<&mut Batch<T, I>>,
    );
}

impl<T: Float, const N: usize> Skip<T, N, N> for NoProjection {
    type Workspace = ();

    fn add_forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        *y += x;
    }

    fn sum_forward_with(&self, body: &Batch<T, N>, x: &Batch<T, N>, y: &mut Batch<T, N>, _: &mut ()) {
        sum_into(y, body, x);
    }

    fn sum_forward_train(&mut self, body: &Batch<T, N>, x: &Batch<T, N>, y: &mut Batch<T, N>, _: &mut ()) {
        sum_into(y, body, x);
    }

    fn add_backward(
        &self,
        _: &Batch<T, N>,
        dy: &Batch<T, N>,
        _: &mut (),
        _: &mut (),
        dx: Option<&mut Batch<T, N>>,
    ) {
        if let Some(dx) = dx {
            *dx += dy;
        }
    }
}

/// `y = a + b`, one pass, `y` resized to their batch if needed.
fn sum_into<T: Float, const N: usize>(y: &mut Batch<T, N>, a: &Batch<T, N>, b: &Batch<T, N>) {
    ensure_batch(y, a.ncols());
    let (a, b) = (&a.as_slice()[..y.len()], &b.as_slice()[..y.len()]);
    y.as_mut_slice().iter_mut().zip(a.iter().zip(b)).for_each(|(y, (&a, &b))| *y = a + b);
}

/// A projection's workspace: its output, its layer's workspace and its input gradient.
pub struct ProjectionWorkspace<T: Float, W, const I: usize, const O: usize> {
    projected: Batch<T, O>,
    layer: W,
    dx: Batch<T, I>,
}

impl<T: Float, W: Default, const I: usize, const O: usize> Default for ProjectionWorkspace<T, W, I, O> {
    fn default() -> Self {
        ProjectionWorkspace { projected: Batch::zeros(0), layer: W::default(), dx: Batch::zeros(0) }
    }
}

impl<T, L, const I: usize, const O: usize> Skip<T, I, O> for Projection<L>
where
    T: Float,
    L: Layer<T, I, O> + Params<T, Gradients = <L as Layer<T, I, O>>::Gradients>,
{
    type Workspace = ProjectionWorkspace<T, L::Workspace, I, O>;

    fn add_forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>) {
        let mut projected = Batch::<T, O>::zeros(0);
        self.0.forward(x, &mut projected);
        *y += &projected;
    }

    fn sum_forward_with(
        &self,
        body: &Batch<T, O>,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
    ) {
        self.0.forward_with(x, &mut ws.projected, &mut ws.layer);
        sum_into(y, body, &ws.projected);
    }

    fn sum_forward_train(
        &mut self,
        body: &Batch<T, O>,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
    ) {
        self.0.forward_train(x, &mut ws.projected, &mut ws.layer);
        sum_into(y, body, &ws.projected);
    }

    fn add_backward(
        &self,
        x: &Batch<T, I>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        grads: &mut Self::Gradients,
        dx: Option<&mut Batch<T, I>>,
    ) {
        match dx {
            Some(dx) => {
                self.0.backward(x, &ws.projected, dy, &mut ws.layer, grads, Some(&mut ws.dx));
                *dx += &ws.dx;
            }
            None => self.0.backward(x, &ws.projected, dy, &mut ws.layer, grads, None),
        }
    }
}

impl<T, B, S, const I: usize, const O: usize> Layer<T, I, O> for Residual<B, S>
where
    T: Float,
    B: Network<T, I, O>,
    S: Skip<T, I, O>,
{
    type Workspace = ResidualWorkspace<B::Trace, S::Workspace>;
    type Gradients = ResidualGrad<<B as Params<T>>::Gradients, <S as Params<T>>::Gradients>;

    fn forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>) {
        *y = Network::forward(&self.body, x);
        self.projection.add_forward(x, y);
    }

    fn forward_with(&self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut Self::Workspace) {
        let out = self.body.infer(x, &mut ws.body);
        self.projection.sum_forward_with(out, x, y, &mut ws.skip);
    }

    fn forward_train(&mut self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut Self::Workspace) {
        let out = Network::forward_train(&mut self.body, x, &mut ws.body);
        self.projection.sum_forward_train(out, x, y, &mut ws.skip);
    }

    fn backward(
        &self,
        x: &Batch<T, I>,
        _y: &Batch<T, O>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        g: &mut Self::Gradients,
        mut dx: Option<&mut Batch<T, I>>,
    ) {
        // The body writes the input gradient; the skip path adds its own to it.
        Network::backward(&self.body, x, &mut ws.body, dy, &mut g.body, dx.as_deref_mut());
        self.projection.add_backward(x, dy, &mut ws.skip, &mut g.projection, dx);
    }
}

impl<T: Float> Params<T> for NoProjection {
    type Gradients = ();
    const PARAM_COUNT: usize = 0;

    fn zero_gradients(&self) {}
    fn visit_params(&self, _: &ParamPath<'_>, _: &mut dyn FnMut(Param<'_, T>)) {}
    fn visit_params_mut(&mut self, _: &ParamPath<'_>, _: &mut dyn FnMut(ParamMut<'_, T>)) {}
    fn visit_params_with_grads(
        &mut self,
        _: &(),
        _: &ParamPath<'_>,
        _: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
    }
    fn visit_grads(_: &(), _: &mut dyn FnMut(&[T])) {}
}

crate::params::params_of_inner! {
    /// The projection's parameters are its layer's, under `projection`.
    Projection<L>
}

/// The body's parameters under `body`, then the projection's under `projection`.
impl<T: Float, B: Params<T>, S: Params<T>> Params<T> for Residual<B, S> {
    type Gradients = ResidualGrad<B::Gradients, S::Gradients>;
    const PARAM_COUNT: usize = B::PARAM_COUNT.saturating_add(S::PARAM_COUNT);

    fn zero_gradients(&self) -> Self::Gradients {
        ResidualGrad { body: self.body.zero_gradients(), projection: self.projection.zero_gradients() }
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.body.visit_params(&path.join("body"), f);
        self.projection.visit_params(&path.join("projection"), f);
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.body.visit_params_mut(&path.join("body"), f);
        self.projection.visit_params_mut(&path.join("projection"), f);
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.body.visit_params_with_grads(&grads.body, &path.join("body"), f);
        self.projection.visit_params_with_grads(&grads.projection, &path.join("projection"), f);
    }
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        B::visit_grads(&grads.body, f);
        S::visit_grads(&grads.projection, f);
    }
    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.body.visit_buffers(&path.join("body"), f);
        self.projection.visit_buffers(&path.join("projection"), f);
    }
    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.body.visit_buffers_mut(&path.join("body"), f);
        self.projection.visit_buffers_mut(&path.join("projection"), f);
    }
    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.body.visit_rngs(&path.join("body"), f);
        self.projection.visit_rngs(&path.join("projection"), f);
    }
    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        self.body.visit_compact(&path.join("body"), f);
        self.projection.visit_compact(&path.join("projection"), f);
    }
}

/// How the block reads in a network's `Debug`: `residual`, as in `network!`.
impl<B> fmt::Debug for Residual<B, NoProjection> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("residual")
    }
}

/// How the block reads in a network's `Debug`: `residual(projection)`, as in `network!`.
impl<B, L> fmt::Debug for Residual<B, Projection<L>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("residual(projection)")
    }
}
