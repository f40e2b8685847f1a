//! Recurrent layers over rank-2 samples `[STEPS, F]`: [`Lstm`] and [`Gru`],
//! PyTorch's `nn.LSTM` / `nn.GRU` (one layer, `batch_first`, zero initial state)
//! returning every step's hidden state, `[STEPS, H]`.
//!
//! # Layout and products
//!
//! A batch of `B` samples is `B` columns of `STEPS·F` values, steps first, so
//! its memory is also an `F × (B·STEPS)` column-major matrix whose column
//! `b·STEPS + t` is step `t` of sample `b` ([`col`]). Every per-step buffer of
//! the workspaces uses that same order (`rows × (B·STEPS)`), so:
//!
//! - the input projection of every step of every sample is **one** product,
//!   `W_ih · X` (`G·H × B·STEPS`), and so are the input-weight gradient
//!   (`X · dGᵀ`), the recurrent-weight gradient (`H_prev · dGᵀ`, where
//!   `H_prev` holds `h_{t−1}` in column `(b, t)`) and the input gradient
//!   (`W_ihᵀ · dG`);
//! - only `W_hh · h_{t−1}` (forward) and `W_hhᵀ · dG_t` (backward) run once per
//!   step, over the whole batch: step `t` of every sample is the strided view
//!   [`step`] (columns `STEPS` apart).
//!
//! The gate nonlinearities run over one sample's gates at a time, through the
//! vector kernels of [`crate::kernels`] in f32.
//! Buffers are sized when the batch size changes, never inside a step.
//!
//! # Input side and recurrence
//!
//! Each layer is two parts ([`Recurrent`]): the input projection `W_ih·x_t`,
//! a linear map of each step's input alone, and the recurrence that reads it.
//! [`Layer`]'s passes compute the projection as the one product above (and
//! its gradients, `dW_ih` and `dX`, from the projection's gradient). After an
//! embedding the input is a one-hot token, so the fused `embedding, lstm | gru`
//! passes (`layers/fused/embed_recurrent.rs`) make a table of one projection
//! per token instead and hand it to the recurrence ([`RecurrentInput::ByToken`]).

/// The `Layer`, `Recurrent`, `Params` and `Debug` impls of a recurrent layer,
/// the same for both cells but for the names: the recurrence is the layer's
/// `run` (forward) and `backprop` (down to the input projection), its weights
/// are a [`RecurrentWeights`] of `GATES` gates.
macro_rules! recurrent_impls {
    ($layer:ident, $workspace:ident, $a_layer:literal) => {
        impl<T: Float> std::fmt::Debug for $workspace<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}(batch {})", stringify!($workspace), self.batch)
            }
        }

        impl<
                T: Float,
                const STEPS: usize,
                const F: usize,
                const H: usize,
                const IN: usize,
                const OUT: usize,
            > crate::layers::Layer<T, IN, OUT> for $layer<T, STEPS, F, H>
        {
            type Workspace = $workspace<T>;
            type Gradients = RecurrentWeights<T>;

            fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
                self.forward_with(x, y, &mut $workspace::default())
            }

            fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut $workspace<T>) {
                const {
                    assert!(
                        IN == STEPS * F && OUT == STEPS * H,
                        concat!($a_layer, " takes [STEPS, F] to [STEPS, H]")
                    )
                };
                let batch = x.ncols();
                crate::tensor::ensure_batch(y, batch);
                let side = <Self as Recurrent<T, IN, OUT>>::prepare(ws, batch);
                project_input(&self.weights, x.as_slice(), F, batch * STEPS, side.projection);
                <Self as Recurrent<T, IN, OUT>>::recur(
                    self,
                    y.as_mut_slice(),
                    batch,
                    ws,
                    RecurrentInput::Projected,
                )
            }

            fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut $workspace<T>) {
                self.forward_with(x, y, ws)
            }

            fn backward(
                &self,
                x: &Batch<T, IN>,
                y: &Batch<T, OUT>,
                dy: &Batch<T, OUT>,
                ws: &mut $workspace<T>,
                grads: &mut RecurrentWeights<T>,
                dx: Option<&mut Batch<T, IN>>,
            ) {
                const {
                    assert!(
                        IN == STEPS * F && OUT == STEPS * H,
                        concat!($a_layer, " takes [STEPS, F] to [STEPS, H]")
                    )
                };
                let batch = x.ncols();
                let dx = dx.map(|dx| {
                    crate::tensor::ensure_batch(dx, batch);
                    dx.as_mut_slice()
                });
                let side = <Self as Recurrent<T, IN, OUT>>::backprop_to_input(
                    self,
                    y.as_slice(),
                    dy.as_slice(),
                    batch,
                    ws,
                    grads,
                );
                let n = batch * STEPS;
                input_gradients(&self.weights, x.as_slice(), F, n, side.gradient, grads, dx);
                Self::shared_bias_gradient(grads)
            }
        }

        impl<
                T: Float,
                const STEPS: usize,
                const F: usize,
                const H: usize,
                const IN: usize,
                const OUT: usize,
            > Recurrent<T, IN, OUT> for $layer<T, STEPS, F, H>
        {
            const STEPS: usize = STEPS;
            const INPUTS: usize = F;
            const HIDDEN: usize = H;
            const GATES: usize = GATES;

            fn weights(&self) -> &RecurrentWeights<T> {
                &self.weights
            }

            fn prepare(ws: &mut $workspace<T>, batch: usize) -> InputSide<'_, T> {
                ws.resize(batch, STEPS, H);
                ws.input_side()
            }

            fn recur(&self, y: &mut [T], batch: usize, ws: &mut $workspace<T>, input: RecurrentInput<'_>) {
                self.run(y, batch, ws, input)
            }

            fn backprop_to_input<'w>(
                &self,
                y: &[T],
                dy: &[T],
                batch: usize,
                ws: &'w mut $workspace<T>,
                grads: &mut RecurrentWeights<T>,
            ) -> InputSide<'w, T> {
                self.backprop(y, dy, batch, ws, grads);
                ws.input_side()
            }

            fn complete_bias_gradients(grads: &mut RecurrentWeights<T>) {
                Self::shared_bias_gradient(grads)
            }
        }

        impl<T: Float, const STEPS: usize, const F: usize, const H: usize> crate::params::Params<T>
            for $layer<T, STEPS, F, H>
        {
            type Gradients = RecurrentWeights<T>;

            const PARAM_COUNT: usize = GATES * H * (F + H + 2);

            fn zero_gradients(&self) -> RecurrentWeights<T> {
                RecurrentWeights::zeros(GATES, F, H)
            }

            fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::params::Param<'_, T>)) {
                self.weights.visit(path, f)
            }

            fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
                self.weights.visit_mut(path, f)
            }

            fn visit_params_with_grads(
                &mut self,
                grads: &RecurrentWeights<T>,
                path: &ParamPath<'_>,
                f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
            ) {
                self.weights.visit_with_grads(grads, path, f)
            }

            fn visit_grads(grads: &RecurrentWeights<T>, f: &mut dyn FnMut(&[T])) {
                grads.visit_values(f)
            }
        }

        impl<T: Float, const STEPS: usize, const F: usize, const H: usize> std::fmt::Debug
            for $layer<T, STEPS, F, H>
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}([{STEPS}, {F}] -> [{STEPS}, {H}])", stringify!($layer))
            }
        }
    };
}

mod gru;
mod lstm;
mod params;
mod step;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;

pub use gru::{Gru, GruWorkspace};
pub use lstm::{Lstm, LstmWorkspace};
pub use params::RecurrentWeights;
pub use step::RecurrentCache;

use crate::float::Float;
use crate::kernels::{gates, Isa};
use crate::layers::{ensure_len, Layer};
use crate::tensor::threads::{for_ranges, SharedSlice};
use crate::tensor::{gemm, MatRef};
use nalgebra::{Const, Dyn, MatrixView, MatrixViewMut};

/// A recurrent layer as two parts: its input projection `W_ih·x_t` (one linear
/// map of each step's input, the same at every step) and the recurrence that
/// reads it. The layer's own passes compute the projection as one product
/// ([`Layer`]); the fused `embedding → lstm | gru` passes
/// ([`Embedding::forward_into_recurrent`](crate::layers::Embedding::forward_into_recurrent))
/// gather it from a table of one column per token id instead.
pub trait Recurrent<T: Float, const IN: usize, const OUT: usize>:
    Layer<T, IN, OUT, Gradients = RecurrentWeights<T>>
{
    /// Steps per sample.
    const STEPS: usize;
    /// Input features per step (`F`).
    const INPUTS: usize;
    /// Hidden units (`H`).
    const HIDDEN: usize;
    /// Gates: the projection has `GATES·H` rows (LSTM 4, GRU 3).
    const GATES: usize;

    /// The parameters, in PyTorch's layouts.
    fn weights(&self) -> &RecurrentWeights<T>;

    /// Sizes `ws` for a forward pass over `batch` samples (allocating only when
    /// the batch size changes) and hands out its input side, which the caller
    /// fills before [`Recurrent::recur`]: `projection` with `W_ih·x` (no bias)
    /// for [`RecurrentInput::Projected`], `by_token` with the table of [`RecurrentInput::ByToken`].
    fn prepare(ws: &mut Self::Workspace, batch: usize) -> InputSide<'_, T>;

    /// The recurrence over `batch` samples, the input projection in `ws` as
    /// `input` says ([`Recurrent::prepare`]): `y` is `H × (B·STEPS)` (the module docs).
    fn recur(&self, y: &mut [T], batch: usize, ws: &mut Self::Workspace, input: RecurrentInput<'_>);

    /// Backpropagation through time after [`Recurrent::recur`] on `ws` gave `y`, down to
    /// the input projection: the input side's `gradient`, the loss's gradient
    /// with respect to the projection, and `grads`' `weight_hh` (and the GRU's
    /// `bias_hh`). What comes from the input side's gradient is left to the
    /// caller: `weight_ih`, `bias_ih` (its sum over every column), then
    /// [`Recurrent::complete_bias_gradients`].
    fn backprop_to_input<'w>(
        &self,
        y: &[T],
        dy: &[T],
        batch: usize,
        ws: &'w mut Self::Workspace,
        grads: &mut RecurrentWeights<T>,
    ) -> InputSide<'w, T>;

    /// Once the caller has written `bias_ih`'s gradient: the LSTM's `bias_hh`
    /// gets the same (both biases add to the same pre-activations); the GRU's
    /// has its own, from [`Recurrent::backprop_to_input`].
    fn complete_bias_gradients(grads: &mut RecurrentWeights<T>);
}

/// The input side of a recurrent layer's workspace: its buffers of
/// `GATES·H × (B·STEPS)` values (the module docs' layout), and a table by token.
pub struct InputSide<'a, T> {
    /// `W_ih·x_t` in column `(b, t)`, filled before the recurrence ([`RecurrentInput::Projected`]).
    pub projection: &'a mut [T],
    /// After [`Recurrent::backprop_to_input`]: the loss's gradient with respect to `projection`.
    pub gradient: &'a [T],
    /// `GATES·H × V` values in column-major order, sized by the caller and kept
    /// with the workspace (so a pass allocates only once): before the
    /// recurrence, the projection `W_ih·e_v` of each token `v` ([`RecurrentInput::ByToken`]);
    /// the fused backward pass sums the gradient by token there.
    pub by_token: &'a mut Vec<T>,
}

/// Where [`Recurrent::recur`] finds each step's input projection `W_ih·x_t` (no bias).
#[derive(Clone, Copy)]
pub enum RecurrentInput<'a> {
    /// In [`InputSide::projection`], column `(b, t)`.
    Projected,
    /// Column `v` of the table [`InputSide::by_token`] (`GATES·H × V`) for the
    /// column `(b, t)` the function maps to `Some(v)`; NaN where it gives `None`
    /// (as the product of a NaN input would). The recurrence reads the table
    /// as each step's gates are formed, so the projection is never copied out.
    ByToken(&'a (dyn Fn(usize) -> Option<usize> + Sync)),
}

/// The input projection of every step of every sample, `G = W_ih · X`
/// (`w.weight_ih()` `[g, f]`, `x` `f × n`, `g` `g × n`): one product.
fn project_input<T: Float>(w: &RecurrentWeights<T>, x: &[T], f: usize, n: usize, g: &mut [T]) {
    let rows = w.bias_ih().len();
    if n > 0 {
        let (w_ih_t, x) = (transposed(w.weight_ih(), rows, f), view(x, f, n, f));
        product(MatRef::of(&w_ih_t).t(), MatRef::of(&x), T::zero(), &mut view_mut(g, rows, n, rows));
    }
}

/// What the input projection's gradient `dG` (`g × n`) gives: `dW_ih = dG · Xᵀ`
/// (written as PyTorch's `[g, f]`), `db_ih = Σ dG` and, if asked for,
/// `dX = W_ihᵀ · dG` (`f × n`).
fn input_gradients<T: Float>(
    w: &RecurrentWeights<T>,
    x: &[T],
    f: usize,
    n: usize,
    d_g: &[T],
    grads: &mut RecurrentWeights<T>,
    dx: Option<&mut [T]>,
) {
    let rows = w.bias_ih().len();
    sum_columns(grads.bias_ih_mut(), &d_g[..rows * n]);
    if n == 0 {
        return grads.weight_ih_mut().fill(T::zero());
    }
    let (x, d_g) = (view(x, f, n, f), view(d_g, rows, n, rows));
    product(
        MatRef::of(&x),
        MatRef::of(&d_g).t(),
        T::zero(),
        &mut view_mut(grads.weight_ih_mut(), f, rows, f),
    );
    if let Some(dx) = dx {
        let w_ih_t = transposed(w.weight_ih(), rows, f);
        product(MatRef::of(&w_ih_t), MatRef::of(&d_g), T::zero(), &mut view_mut(dx, f, n, f));
    }
}

/// A column-major `rows × cols` view of `data` with columns `stride` apart.
pub(super) type View<'a, T> = MatrixView<'a, T, Dyn, Dyn, Const<1>, Dyn>;
/// [`View`], writable.
pub(super) type ViewMut<'a, T> = MatrixViewMut<'a, T, Dyn, Dyn, Const<1>, Dyn>;

/// `data` as `rows × cols`, column `j` starting at `j·stride`.
pub(super) fn view<T: Float>(data: &[T], rows: usize, cols: usize, stride: usize) -> View<'_, T> {
    View::from_slice_with_strides_generic(data, Dyn(rows), Dyn(cols), Const::<1>, Dyn(stride))
}

/// [`view`], writable.
pub(super) fn view_mut<T: Float>(data: &mut [T], rows: usize, cols: usize, stride: usize) -> ViewMut<'_, T> {
    ViewMut::from_slice_with_strides_generic(data, Dyn(rows), Dyn(cols), Const::<1>, Dyn(stride))
}

/// The column of step `t` of sample `b` in a `rows × (B·STEPS)` sequence buffer.
#[inline]
fn col(steps: usize, b: usize, t: usize) -> usize {
    b * steps + t
}

/// Step `t` of every sample of a `rows × (B·STEPS)` buffer: `rows × B`, columns `STEPS` apart.
fn step<T: Float>(seq: &[T], rows: usize, steps: usize, batch: usize, t: usize) -> View<'_, T> {
    view(&seq[t * rows..], rows, batch, steps * rows)
}

/// [`step`], writable.
fn step_mut<T: Float>(seq: &mut [T], rows: usize, steps: usize, batch: usize, t: usize) -> ViewMut<'_, T> {
    view_mut(&mut seq[t * rows..], rows, batch, steps * rows)
}

/// The transpose `Wᵀ` (`cols × rows`, no copy) of a PyTorch row-major `[rows, cols]`
/// weight `W`: row-major `W` is column-major `Wᵀ`. A product takes `W` as its `.t()`.
pub(super) fn transposed<T: Float>(w: &[T], rows: usize, cols: usize) -> View<'_, T> {
    view(w, cols, rows, cols)
}

/// `c = alpha·a·b + beta·c` on views (the crate's product, which takes any strides).
pub(super) fn product<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: &mut ViewMut<'_, T>) {
    gemm(T::one(), a, b, beta, c)
}

/// `out[r] = Σ_j seq[r + j·rows]`: a bias gradient, the sum of every column.
pub(super) fn sum_columns<T: Float>(out: &mut [T], seq: &[T]) {
    out.fill(T::zero());
    for column in seq.chunks_exact(out.len()) {
        out.iter_mut().zip(column).for_each(|(o, &v)| *o += v);
    }
}

/// Calls `f(b)` for every sample `b` of the batch, the samples split between
/// threads when each part would hold enough work (`gate_rows` values a sample):
/// one step's gate nonlinearities are independent between samples, so the
/// result does not depend on the split.
fn per_sample(batch: usize, gate_rows: usize, f: &(dyn Fn(usize) + Sync)) {
    const MIN_VALUES: usize = 4096;
    for_ranges(batch, MIN_VALUES.div_ceil(gate_rows.max(1)), &|samples| samples.for_each(f))
}

/// A buffer shared between the threads of [`per_sample`], each writing its samples' columns.
fn share<T>(buf: &mut [T]) -> SharedSlice<T> {
    SharedSlice::new(buf)
}

/// Column `j` (`rows` values) of a sequence buffer shared between the threads of [`per_sample`].
///
/// # Safety
/// As [`SharedSlice::range`]: the column lies in the buffer, which lives, and
/// no other live reference overlaps it (each sample's columns go to one call).
#[allow(clippy::mut_from_ref)]
unsafe fn column<T>(buf: &SharedSlice<T>, rows: usize, j: usize) -> &mut [T] {
    // SAFETY: the caller's promise.
    unsafe { buf.range(j * rows..(j + 1) * rows) }
}

/// `v = σ(v) = 1/(1 + e^−v)` in place: f32 through the vector kernels at the
/// active level, f64 through their portable loop.
fn sigmoid_in_place<T: Float>(v: &mut [T]) {
    match T::f32s_mut(v) {
        Some(v) => gates::sigmoid(Isa::active(), v),
        None => gates::portable::sigmoid(v),
    }
}

/// `v = tanh(v)` in place, like [`sigmoid_in_place`].
fn tanh_in_place<T: Float>(v: &mut [T]) {
    match T::f32s_mut(v) {
        Some(v) => gates::tanh(Isa::active(), v),
        None => gates::portable::tanh(v),
    }
}
