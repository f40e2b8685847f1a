//! `gelu, dense` backward in one pass: the dense layer's input gradient is
//! scaled by the derivative the GELU's training pass kept ([`Gelu`]'s cache)
//! in the product's epilogue, so the gradient with respect to the GELU's
//! output is never written and read back.
//!
//! [`Gelu`]: crate::layers::Gelu

use crate::float::Float;
use crate::layers::per_step::{as_steps, with_steps};
use crate::layers::{Dense, Layer, PerStep};
use crate::tensor::{ensure_batch, gemm_then, Batch, MatRef};

/// A layer whose backward pass scales its input gradient element by element
/// as it computes it, `dx = s ⊙ ∂L/∂x`: with `s` the derivative of an
/// element-wise activation before the layer, `dx` is the gradient with respect
/// to the activation's input. `network!` calls it for a dense layer (at every
/// step or not) that follows a `gelu`.
pub trait BackwardScaled<T: Float, const IN: usize, const OUT: usize>: Layer<T, IN, OUT> {
    /// The parameter gradients into `grads` (overwritten), as
    /// [`Layer::backward`] gives them, and `dx = scale ⊙ ∂L/∂x`.
    ///
    /// Panics unless `scale` holds one value per value of `x`.
    fn backward_scaled(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        scale: &[T],
        dx: &mut Batch<T, IN>,
    );
}

impl<T: Float, const IN: usize, const OUT: usize> BackwardScaled<T, IN, OUT> for Dense<T, IN, OUT> {
    fn backward_scaled(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        scale: &[T],
        dx: &mut Batch<T, IN>,
    ) {
        assert_eq!(scale.len(), x.len(), "backward_scaled needs one scale per input value");
        self.parameter_gradients(x, dy, grads);
        ensure_batch(dx, x.ncols());
        // dx (IN×B) = W · dy, each finished block scaled by the thread that computed it.
        gemm_then(T::one(), MatRef::of(&*self.weight), MatRef::of(dy), T::zero(), dx, &|mut block| {
            let cols = block.cols.clone();
            if let Some(g) = block.whole_columns() {
                return scale_by(g, &scale[cols.start * IN..cols.end * IN]);
            }
            let rows = block.rows.clone();
            for j in cols {
                scale_by(block.column(j), &scale[j * IN + rows.start..j * IN + rows.end]);
            }
        });
    }
}

impl<T, L, const STEPS: usize, const F: usize, const H: usize, const IN: usize, const OUT: usize>
    BackwardScaled<T, IN, OUT> for PerStep<L, STEPS, F, H>
where
    T: Float,
    L: BackwardScaled<T, F, H>,
{
    fn backward_scaled(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        grads: &mut L::Gradients,
        scale: &[T],
        dx: &mut Batch<T, IN>,
    ) {
        const { assert!(IN == STEPS * F && OUT == STEPS * H && F > 0 && H > 0, "PerStep: sizes disagree") };
        // The steps of a batch are the samples of the inner layer, in the same memory and order.
        with_steps(x, |xs| {
            with_steps(dy, |dys| {
                as_steps(dx, x.ncols(), |dx| self.inner.backward_scaled(xs, dys, grads, scale, dx))
            })
        })
    }
}

/// `g = g ⊙ s` over part of the input gradient.
#[inline(never)]
fn scale_by<T: Float>(g: &mut [T], s: &[T]) {
    g.iter_mut().zip(s).for_each(|(g, &s)| *g *= s);
}
