//! 1-D convolution over the steps of a `[STEPS, F]` sample, the features as
//! channels (Keras `Conv1D`; PyTorch's `Conv1d` on the transposed sample).
//!
//! The whole batch is unfolded into one column-major patch matrix `U` of
//! `F·K` rows and `OSTEPS·B` columns (`unfold.rs`: column `(b, t)` is the
//! receptive field of output step `t` of sample `b`). The weight, PyTorch's
//! row-major `[C, F, K]`, is the column-major `F·K × C` matrix `W`, and the
//! output batch, `[OSTEPS, C]` per sample, is the column-major `C × OSTEPS·B`
//! matrix `Y`. Each pass is then one product through `tensor::gemm`:
//!
//! - forward: `Y = Wᵀ · U (+ b)`
//! - weight gradient: `dW = U · dYᵀ`, and `db` the sums of `dY`'s rows
//! - input gradient: `dU = W · dY`, folded back onto the input.

mod params;
#[cfg(test)]
mod tests;
mod unfold;

pub use crate::geometry::Conv1dGeometry;

use super::{ensure_len, Layer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::tensor::{ensure_batch, gemm, heap_clone, heap_zeros, Batch, HeapMatrix, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};
use std::fmt;
use unfold::{fold, unfold};

/// A 1-D convolution from `[STEPS, F]` to `[OSTEPS, C]` with a kernel of `K`
/// taps; see [`Conv1dGeometry`] for the sizes. `Layer<T, IN, OUT>` with
/// `IN = STEPS·F` and `OUT = OSTEPS·C` (checked when the impl is instantiated).
pub struct Conv1d<
    T: Float,
    const STEPS: usize,
    const F: usize,
    const OSTEPS: usize,
    const C: usize,
    const K: usize,
> {
    /// PyTorch's `[C, F, K]` weight, row-major: `C` filters of `F·K` values.
    weight: Vec<T>,
    /// One bias per output channel, or none for `conv1d(.., bias = false)`.
    pub bias: Option<HeapMatrix<T, C, 1>>,
    geometry: Conv1dGeometry,
}

/// The gradient of a loss with respect to a [`Conv1d`] layer's parameters.
pub struct Conv1dGrad<T: Float, const C: usize> {
    /// Shaped like the weight, `[C, F, K]` row-major.
    weight: Vec<T>,
    /// Shaped like [`Conv1d::bias`].
    pub bias: Option<HeapMatrix<T, C, 1>>,
}

impl<T: Float, const C: usize> Conv1dGrad<T, C> {
    /// The weight's gradient, `[C, F, K]` row-major.
    pub fn weight(&self) -> &[T] {
        &self.weight
    }
}

/// What [`Conv1d`]'s training pass keeps for its backward pass: the patch
/// matrix of the batch (`cols`), and the scratch of the input gradient and of
/// inference (`dcols`, so an inference pass leaves `cols` intact). Resized
/// only when the batch size changes.
#[derive(Default)]
pub struct Conv1dWorkspace<T> {
    cols: Vec<T>,
    dcols: Vec<T>,
    /// The batch size of the last training pass (0 before the first).
    trained_batch: usize,
}

impl<T> fmt::Debug for Conv1dWorkspace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conv1dWorkspace(cols: {}, dcols: {})", self.cols.len(), self.dcols.len())
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const OSTEPS: usize, const C: usize, const K: usize>
    Conv1d<T, STEPS, F, OSTEPS, C, K>
{
    /// The length of a patch (a filter), `F·K`.
    const PATCH: usize = F * K;

    /// A layer with zero weights (and zero bias if `bias`), to be filled by loading.
    ///
    /// Errors: [`Error::InvalidConfig`] unless the const generics agree with
    /// `geometry` (`STEPS = steps`, `OSTEPS = out_steps`, `K = kernel`), `F`
    /// and `C` are at least 1 and the weight's `C·F·K` values fit in memory.
    /// `network!` computes both from the same shapes, so generated code never
    /// meets the error.
    pub fn zeros(geometry: Conv1dGeometry, bias: bool) -> Result<Self> {
        let g = &geometry;
        if !(STEPS == g.steps && OSTEPS == g.out_steps && K == g.kernel && F >= 1 && C >= 1) {
            return Err(Error::InvalidConfig(format!(
                "Conv1d<STEPS = {STEPS}, F = {F}, OSTEPS = {OSTEPS}, C = {C}, K = {K}> disagrees with {g:?}"
            )));
        }
        let Some(len) = C.checked_mul(F).and_then(|n| n.checked_mul(K)) else {
            return Err(Error::InvalidConfig(format!("Conv1d: a weight of {C}×{F}×{K} values overflows")));
        };
        Ok(Conv1d { weight: vec![T::zero(); len], bias: bias.then(heap_zeros), geometry })
    }

    /// A layer with weights drawn by `init` and a zero bias. The fans are
    /// PyTorch's: `fan_in = F·K`, `fan_out = C·K`. Errors as [`Conv1d::zeros`] does.
    pub fn new(geometry: Conv1dGeometry, bias: bool, init: Init, rng: &mut SeededRng) -> Result<Self> {
        let mut layer = Self::zeros(geometry, bias)?;
        init.fill(&mut layer.weight, F * K, C * K, rng);
        Ok(layer)
    }

    /// The sizes this layer was built with.
    pub fn geometry(&self) -> Conv1dGeometry {
        self.geometry
    }

    /// The weight, PyTorch's `[C, F, K]` row-major.
    pub fn weight(&self) -> &[T] {
        &self.weight
    }

    /// The weight, mutably (its length is fixed).
    pub fn weight_mut(&mut self) -> &mut [T] {
        &mut self.weight
    }

    /// The weight in PyTorch's orientation: `weight[c, f, k]`.
    pub fn weight_at(&self, c: usize, f: usize, k: usize) -> T {
        self.weight[(c * F + f) * K + k]
    }

    /// The number of scalars this layer holds: `C·F·K`, plus `C` with a bias.
    pub fn param_count(&self) -> usize {
        self.weight.len() + if self.bias.is_some() { C } else { 0 }
    }

    /// `W` (`F·K × C`, column-major): column `c` is filter `c`.
    fn w(&self) -> DMatrixView<'_, T> {
        DMatrixView::from_slice(&self.weight, Self::PATCH, C)
    }

    /// `Y = Wᵀ · U (+ b)` for `batch` samples: `cols` holds their patch
    /// matrix `U`, `y` receives `OSTEPS·C` values per sample.
    fn forward_cols(&self, cols: &[T], batch: usize, y: &mut [T]) {
        let n = OSTEPS * batch;
        let u = DMatrixView::from_slice(cols, Self::PATCH, n);
        gemm(
            T::one(),
            MatRef::of(&self.w()).t(),
            MatRef::of(&u),
            T::zero(),
            &mut DMatrixViewMut::from_slice(y, C, n),
        );
        if let Some(b) = &self.bias {
            for step in y.as_chunks_mut::<C>().0 {
                step.iter_mut().zip(b.as_slice()).for_each(|(y, &b)| *y += b);
            }
        }
    }

    /// `dW = U · dYᵀ` and `db` (the sums of `dY` over every output step of the batch).
    fn parameter_gradients(&self, cols: &[T], dy: &[T], grad: &mut Conv1dGrad<T, C>) {
        let n = dy.len() / C;
        let (u, dy_m) = (DMatrixView::from_slice(cols, Self::PATCH, n), DMatrixView::from_slice(dy, C, n));
        let mut dw = DMatrixViewMut::from_slice(&mut grad.weight, Self::PATCH, C);
        gemm(T::one(), MatRef::of(&u), MatRef::of(&dy_m).t(), T::zero(), &mut dw);
        if let Some(db) = &mut grad.bias {
            let db = db.as_mut_slice();
            db.fill(T::zero());
            for step in dy.as_chunks::<C>().0 {
                db.iter_mut().zip(step).for_each(|(s, &d)| *s += d);
            }
        }
    }

    /// `dU = W · dY` into `dcols`, folded back onto the input into `dx`.
    fn input_gradient(&self, dy: &[T], dcols: &mut Vec<T>, dx: &mut [T]) {
        let n = dy.len() / C;
        ensure_len(dcols, Self::PATCH * n);
        let dy = DMatrixView::from_slice(dy, C, n);
        let mut du = DMatrixViewMut::from_slice(dcols, Self::PATCH, n);
        gemm(T::one(), MatRef::of(&self.w()), MatRef::of(&dy), T::zero(), &mut du);
        fold::<T, F>(&self.geometry, dcols, dx);
    }
}

impl<
        T,
        const STEPS: usize,
        const F: usize,
        const OSTEPS: usize,
        const C: usize,
        const K: usize,
        const IN: usize,
        const OUT: usize,
    > Layer<T, IN, OUT> for Conv1d<T, STEPS, F, OSTEPS, C, K>
where
    T: Float,
{
    type Workspace = Conv1dWorkspace<T>;
    type Gradients = Conv1dGrad<T, C>;

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.forward_with(x, y, &mut Conv1dWorkspace::default())
    }

    /// Unfolds into `ws.dcols`, the scratch the backward pass uses only within
    /// a call, so the patches a training pass kept in `ws.cols` stay intact.
    fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv1dWorkspace<T>) {
        const { assert!(IN == STEPS * F && OUT == OSTEPS * C, "Conv1d: sizes disagree") };
        ensure_batch(y, x.ncols());
        ensure_len(&mut ws.dcols, Self::PATCH * OSTEPS * x.ncols());
        unfold::<T, F>(&self.geometry, x.as_slice(), &mut ws.dcols);
        self.forward_cols(&ws.dcols, x.ncols(), y.as_mut_slice());
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv1dWorkspace<T>) {
        const { assert!(IN == STEPS * F && OUT == OSTEPS * C, "Conv1d: sizes disagree") };
        ensure_batch(y, x.ncols());
        ensure_len(&mut ws.cols, Self::PATCH * OSTEPS * x.ncols());
        unfold::<T, F>(&self.geometry, x.as_slice(), &mut ws.cols);
        self.forward_cols(&ws.cols, x.ncols(), y.as_mut_slice());
        ws.trained_batch = x.ncols();
    }

    /// Panics if `ws` was not filled by a training pass on a batch of this size
    /// (a stale workspace would silently give wrong gradients).
    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut Conv1dWorkspace<T>,
        grads: &mut Conv1dGrad<T, C>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        const { assert!(IN == STEPS * F && OUT == OSTEPS * C, "Conv1d: sizes disagree") };
        assert!(
            ws.trained_batch == x.ncols() && ws.cols.len() == Self::PATCH * OSTEPS * x.ncols(),
            "Conv1d::backward needs the workspace of a training pass on the same batch"
        );
        self.parameter_gradients(&ws.cols, dy.as_slice(), grads);
        if let Some(dx) = dx {
            ensure_batch(dx, x.ncols());
            self.input_gradient(dy.as_slice(), &mut ws.dcols, dx.as_mut_slice());
        }
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const OSTEPS: usize, const C: usize, const K: usize> Clone
    for Conv1d<T, STEPS, F, OSTEPS, C, K>
{
    fn clone(&self) -> Self {
        // Deriving would copy the bias through the stack.
        Conv1d {
            weight: self.weight.clone(),
            bias: self.bias.as_ref().map(heap_clone),
            geometry: self.geometry,
        }
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const OSTEPS: usize, const C: usize, const K: usize>
    fmt::Debug for Conv1d<T, STEPS, F, OSTEPS, C, K>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.geometry;
        write!(
            f,
            "Conv1d([{STEPS}, {F}] -> [{OSTEPS}, {C}], kernel = {K}, stride = {}, padding = {}, dilation = {}, bias = {})",
            g.stride,
            g.padding,
            g.dilation,
            self.bias.is_some()
        )
    }
}
