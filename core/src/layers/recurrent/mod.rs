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

/// The `Layer`, `Params` and `Debug` impls of a recurrent layer, the same for
/// both cells but for the names: the passes are the layer's `run` (forward) and
/// `backprop`, its weights are a [`RecurrentWeights`] of `GATES` gates.
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
                crate::tensor::ensure_batch(y, x.ncols());
                self.run(x.as_slice(), y.as_mut_slice(), x.ncols(), ws)
            }

            fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut $workspace<T>) {
                self.forward_with(x, y, ws)
            }

            fn backward(
                &self,
                x: &Batch<T, IN>,
                _y: &Batch<T, OUT>,
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
                let dx = dx.map(|dx| {
                    crate::tensor::ensure_batch(dx, x.ncols());
                    dx.as_mut_slice()
                });
                self.backprop(x.as_slice(), dy.as_slice(), x.ncols(), ws, grads, dx)
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
use crate::tensor::threads::{for_ranges, SharedSlice};
use crate::tensor::{gemm, MatRef};
use nalgebra::{Const, Dyn, MatrixView, MatrixViewMut};

/// A column-major `rows × cols` view of `data` with columns `stride` apart.
type View<'a, T> = MatrixView<'a, T, Dyn, Dyn, Const<1>, Dyn>;
/// [`View`], writable.
type ViewMut<'a, T> = MatrixViewMut<'a, T, Dyn, Dyn, Const<1>, Dyn>;

/// `data` as `rows × cols`, column `j` starting at `j·stride`.
fn view<T: Float>(data: &[T], rows: usize, cols: usize, stride: usize) -> View<'_, T> {
    View::from_slice_with_strides_generic(data, Dyn(rows), Dyn(cols), Const::<1>, Dyn(stride))
}

/// [`view`], writable.
fn view_mut<T: Float>(data: &mut [T], rows: usize, cols: usize, stride: usize) -> ViewMut<'_, T> {
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
fn transposed<T: Float>(w: &[T], rows: usize, cols: usize) -> View<'_, T> {
    view(w, cols, rows, cols)
}

/// `c = alpha·a·b + beta·c` on views (the crate's product, which takes any strides).
fn product<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: &mut ViewMut<'_, T>) {
    gemm(T::one(), a, b, beta, c)
}

/// `out[r] = Σ_j seq[r + j·rows]`: a bias gradient, the sum of every column.
fn sum_columns<T: Float>(out: &mut [T], seq: &[T]) {
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

/// Makes `buf` hold `len` values, reallocating only when the length changes
/// (the contents are then unspecified; callers overwrite them).
fn ensure_len<T: Float>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        *buf = vec![T::zero(); len];
    }
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
