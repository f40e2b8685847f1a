//! A network made by `network!`, used as a layer of another (`encoder: Encoder => [4]`).
//!
//! The inner network's sizes live in its own macro invocation, so the outer
//! macro cannot check them; it emits a `const` assertion that compares them
//! with the declared ones instead. [`Nested`] implements [`Layer`] for any
//! sizes, so that the assertion is the only error a mismatch produces (one
//! readable message, not one type error per use of the layer); when the
//! assertion holds, the sizes are the network's own and [`same_size`] hands
//! each batch over unchanged.

use super::Layer;
use crate::float::Float;
use crate::params::Params;
use crate::tensor::Batch;
use std::any::Any;
use std::ops::{Deref, DerefMut};

/// What `network!` implements on every network so that it can be nested: its
/// passes over batches of any size, which it converts to its own with
/// [`same_size`]. Not meant to be implemented by hand.
pub trait NestedNetwork<T: Float>: Params<T> {
    /// The network's trace, which is the nested layer's workspace.
    type Trace: Default + Send;

    /// [`Layer::forward`] on the network's own sizes.
    fn nested_forward<const I: usize, const O: usize>(&self, x: &Batch<T, I>, y: &mut Batch<T, O>);

    /// [`Layer::forward_with`] on the network's own sizes.
    fn nested_forward_with<const I: usize, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Trace,
    );

    /// [`Layer::forward_train`] on the network's own sizes.
    fn nested_forward_train<const I: usize, const O: usize>(
        &mut self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Trace,
    );

    /// [`Layer::backward`] on the network's own sizes.
    #[allow(clippy::too_many_arguments)]
    fn nested_backward<const I: usize, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &Batch<T, O>,
        dy: &Batch<T, O>,
        ws: &mut Self::Trace,
        grads: &mut Self::Gradients,
        dx: Option<&mut Batch<T, I>>,
    );
}

/// A network used as a layer: the network itself (also reached through
/// `Deref`), with a [`Layer`] implementation for the sizes around it.
#[derive(Clone, Debug)]
pub struct Nested<N>(pub N);

impl<N> Deref for Nested<N> {
    type Target = N;
    fn deref(&self) -> &N {
        &self.0
    }
}

impl<N> DerefMut for Nested<N> {
    fn deref_mut(&mut self) -> &mut N {
        &mut self.0
    }
}

/// `x` as a batch of `B` features: the same batch, for `A == B`, which the
/// `const` assertion `network!` writes beside every nested network guarantees
/// before any of this code can run.
pub fn same_size<T: Float, const A: usize, const B: usize>(x: &Batch<T, A>) -> &Batch<T, B> {
    match (x as &dyn Any).downcast_ref::<Batch<T, B>>() {
        Some(x) => x,
        None => unreachable_sizes(A, B),
    }
}

/// [`same_size`] for a batch to write.
pub fn same_size_mut<T: Float, const A: usize, const B: usize>(x: &mut Batch<T, A>) -> &mut Batch<T, B> {
    match (x as &mut dyn Any).downcast_mut::<Batch<T, B>>() {
        Some(x) => x,
        None => unreachable_sizes(A, B),
    }
}

#[allow(clippy::panic)]
#[cold]
fn unreachable_sizes(a: usize, b: usize) -> ! {
    panic!("a nested network of {b} features got {a}: network!'s size assertion should have refused this")
}

impl<T: Float, N: NestedNetwork<T>, const I: usize, const O: usize> Layer<T, I, O> for Nested<N> {
    type Workspace = N::Trace;
    type Gradients = N::Gradients;

    fn forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>) {
        self.0.nested_forward(x, y)
    }

    fn forward_with(&self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut N::Trace) {
        self.0.nested_forward_with(x, y, ws)
    }

    fn forward_train(&mut self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut N::Trace) {
        self.0.nested_forward_train(x, y, ws)
    }

    fn backward(
        &self,
        x: &Batch<T, I>,
        y: &Batch<T, O>,
        dy: &Batch<T, O>,
        ws: &mut N::Trace,
        grads: &mut N::Gradients,
        dx: Option<&mut Batch<T, I>>,
    ) {
        self.0.nested_backward(x, y, dy, ws, grads, dx)
    }
}

crate::params::params_of_inner! {
    /// The parameters are the network's, under the layer's name.
    Nested<N>
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_hands_the_batch_over_unchanged() {
        let x = Batch::<f64, 3>::from_fn(2, |i, j| (i + 3 * j) as f64);
        let y: &Batch<f64, 3> = same_size::<f64, 3, 3>(&x);
        assert!(std::ptr::eq(y, &x));
    }

    #[test]
    #[should_panic(expected = "size assertion should have refused this")]
    fn different_sizes_are_refused() {
        let x = Batch::<f64, 3>::zeros(1);
        let _ = same_size::<f64, 3, 4>(&x);
    }
}
