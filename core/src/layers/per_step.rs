//! A layer applied at every step of a rank-2 sample: PyTorch's `nn.Linear` or
//! `nn.LayerNorm(F)` on a `[B, T, F]` tensor.
//!
//! A sample `[STEPS, F]` is `STEPS·F` values, step after step, so a batch of `B`
//! such samples has exactly the memory of a batch of `STEPS·B` samples of `F`
//! values. [`PerStep`] therefore runs its inner layer once, on that reshaped
//! batch, and no step is handled on its own.
//!
//! The reshaping, without copying: the output (and the input gradient) is
//! *moved* into a `Batch<T, H>` of `STEPS·B` columns and back
//! (`std::mem::replace`, then `Matrix::from_data`: the `Vec` changes hands).
//! Borrowed batches (the input, and in the backward pass the output and its
//! gradient) are read through a second `Vec` over the same memory, never
//! dropped or grown ([`with_steps`]), so the inner layer reads them where they
//! are (copying them cost about 4% of a character-GPT training step).

use super::Layer;
use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, Batch};
use nalgebra::{Const, Dyn, Matrix, VecStorage};
use std::fmt;
use std::mem::ManuallyDrop;

/// The layer `L` (`F` to `H` features) applied to each of the `STEPS` steps of
/// a `[STEPS, F]` sample, giving `[STEPS, H]`: `Layer<T, IN, OUT>` with
/// `IN = STEPS·F` and `OUT = STEPS·H` (checked when the impl is instantiated).
///
/// Its parameters are exactly the inner layer's, under the same names
/// (`fc1.weight`, as PyTorch names an `nn.Linear` applied to a sequence).
#[derive(Clone, Debug, PartialEq)]
pub struct PerStep<L, const STEPS: usize, const F: usize, const H: usize> {
    /// The layer applied at every step.
    pub inner: L,
}

impl<L, const STEPS: usize, const F: usize, const H: usize> PerStep<L, STEPS, F, H> {
    /// `inner` applied at every step.
    pub const fn new(inner: L) -> Self {
        PerStep { inner }
    }
}

/// The batches of steps a [`PerStepWorkspace`] is for (a marker: it holds none).
type Steps<T, const F: usize, const H: usize> = fn() -> (Batch<T, F>, Batch<T, H>);

/// What a [`PerStep`] pass keeps: the inner layer's workspace.
pub struct PerStepWorkspace<T: Float, W, const F: usize, const H: usize> {
    /// The inner layer's workspace.
    pub inner: W,
    _steps: std::marker::PhantomData<Steps<T, F, H>>,
}

impl<T: Float, W: Default, const F: usize, const H: usize> Default for PerStepWorkspace<T, W, F, H> {
    fn default() -> Self {
        PerStepWorkspace { inner: W::default(), _steps: std::marker::PhantomData }
    }
}

impl<T: Float, W: fmt::Debug, const F: usize, const H: usize> fmt::Debug for PerStepWorkspace<T, W, F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PerStepWorkspace({:?})", self.inner)
    }
}

/// The same values as a batch of `M` features per column: `N·cols` must be a
/// multiple of `M` (a move of the `Vec`, no copy).
fn reshape<T: Float, const N: usize, const M: usize>(m: Batch<T, N>) -> Batch<T, M> {
    let data: Vec<T> = m.data.into();
    let cols = data.len() / M;
    Matrix::from_data(VecStorage::new(Const::<M>, Dyn(cols), data))
}

/// Calls `f` with `m`'s values viewed as a batch of `M` features per column
/// (`N·cols` must be a multiple of `M`), in place: no copy, no allocation.
pub(super) fn with_steps<T: Float, const N: usize, const M: usize, R>(
    m: &Batch<T, N>,
    f: impl FnOnce(&Batch<T, M>) -> R,
) -> R {
    let data = m.data.as_vec();
    // Checked before the alias exists, so nothing between it and its
    // `ManuallyDrop` can panic (`VecStorage::new` asserts the same).
    assert!(data.len().is_multiple_of(M), "PerStep: {} values are not whole steps of {M}", data.len());
    let cols = data.len() / M;
    // SAFETY: `alias` takes the pointer, length and capacity of `m`'s own vector,
    // so it describes that valid allocation; it is only ever read (through the
    // shared reference `f` gets) while `m` is borrowed, so nothing writes, grows
    // or frees the memory meanwhile, and `ManuallyDrop` keeps it from freeing
    // the memory itself, even if `f` panics.
    let alias = unsafe { Vec::from_raw_parts(data.as_ptr().cast_mut(), data.len(), data.capacity()) };
    let steps = ManuallyDrop::new(Matrix::from_data(VecStorage::new(Const::<M>, Dyn(cols), alias)));
    f(&steps)
}

/// Runs `f` on `m` viewed as a batch of `M` features per column, then puts the
/// values back: `m` has `cols` columns of `N` afterwards (allocated only if it
/// had another batch size).
pub(super) fn as_steps<T: Float, const N: usize, const M: usize>(
    m: &mut Batch<T, N>,
    cols: usize,
    f: impl FnOnce(&mut Batch<T, M>),
) {
    ensure_batch(m, cols);
    let mut steps = reshape::<T, N, M>(std::mem::replace(m, Batch::zeros(0)));
    f(&mut steps);
    *m = reshape(steps);
}

impl<T, L, const STEPS: usize, const F: usize, const H: usize, const IN: usize, const OUT: usize>
    Layer<T, IN, OUT> for PerStep<L, STEPS, F, H>
where
    T: Float,
    L: Layer<T, F, H>,
{
    type Workspace = PerStepWorkspace<T, L::Workspace, F, H>;
    type Gradients = L::Gradients;

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.forward_with(x, y, &mut Self::Workspace::default())
    }

    fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Self::Workspace) {
        const { assert!(IN == STEPS * F && OUT == STEPS * H && F > 0 && H > 0, "PerStep: sizes disagree") };
        with_steps(x, |xs| as_steps(y, x.ncols(), |y| self.inner.forward_with(xs, y, &mut ws.inner)));
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Self::Workspace) {
        const { assert!(IN == STEPS * F && OUT == STEPS * H && F > 0 && H > 0, "PerStep: sizes disagree") };
        let inner = &mut self.inner;
        with_steps(x, |xs| as_steps(y, x.ncols(), |y| inner.forward_train(xs, y, &mut ws.inner)));
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut Self::Workspace,
        grads: &mut L::Gradients,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        const { assert!(IN == STEPS * F && OUT == STEPS * H && F > 0 && H > 0, "PerStep: sizes disagree") };
        let inner_ws = &mut ws.inner;
        with_steps(x, |xs| {
            with_steps(y, |ys| {
                with_steps(dy, |dys| match dx {
                    Some(dx) => as_steps(dx, x.ncols(), |dx| {
                        self.inner.backward(xs, ys, dys, inner_ws, grads, Some(dx))
                    }),
                    None => self.inner.backward(xs, ys, dys, inner_ws, grads, None),
                })
            })
        })
    }
}

impl<T: Float, L: Params<T>, const STEPS: usize, const F: usize, const H: usize> Params<T>
    for PerStep<L, STEPS, F, H>
{
    type Gradients = L::Gradients;
    const PARAM_COUNT: usize = L::PARAM_COUNT;

    fn zero_gradients(&self) -> L::Gradients {
        self.inner.zero_gradients()
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.inner.visit_params(path, f)
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.inner.visit_params_mut(path, f)
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &L::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.inner.visit_params_with_grads(grads, path, f)
    }

    fn visit_grads(grads: &L::Gradients, f: &mut dyn FnMut(&[T])) {
        L::visit_grads(grads, f)
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.inner.visit_buffers(path, f)
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.inner.visit_buffers_mut(path, f)
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.inner.visit_rngs(path, f)
    }

    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        self.inner.visit_compact(path, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::assert_close;
    use crate::init::{seeded_rng, Init};
    use crate::layers::seq_check::check_gradients;
    use crate::layers::{Dense, LayerNorm};

    type Fc = PerStep<Dense<f64, 3, 2>, 4, 3, 2>;

    fn input<const N: usize>(batch: usize) -> Batch<f64, N> {
        Batch::from_fn(batch, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin())
    }

    /// `L = Σ c ⊙ y` for fixed `c`: `dL/dy = c`.
    fn weights<const N: usize>(batch: usize) -> Batch<f64, N> {
        Batch::from_fn(batch, |i, j| ((i + 3 * j) as f64 * 0.61).cos())
    }

    #[test]
    fn every_step_is_the_inner_layer_on_that_step() {
        let mut dense = Dense::<f64, 3, 2>::zeros(true);
        // PyTorch weight [[1, 2, 3], [-1, 0, 0.5]], bias [0.5, -1].
        dense.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, -1.0, 0.0, 0.5]);
        dense.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(&[0.5, -1.0]);
        let layer = PerStep::<_, 2, 3, 2>::new(dense);
        // Two samples of two steps: [[1, 1, 1], [2, 0, -2]] and [[0, 0, 0], [1, 0, 0]].
        let x = Batch::<f64, 6>::from_column_slice(&[
            1.0, 1.0, 1.0, 2.0, 0.0, -2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0,
        ]);
        let mut y = Batch::<f64, 4>::zeros(0);
        Layer::forward(&layer, &x, &mut y);
        assert_eq!(y.as_slice(), &[6.5, -1.5, -3.5, -4.0, 0.5, -1.0, 1.5, -2.0]);
    }

    #[test]
    fn the_output_keeps_its_memory_across_passes() {
        let mut layer = Fc::new(Dense::new(true, Init::Glorot, &mut seeded_rng(1)));
        let x = input::<12>(5);
        let (mut y, mut ws) = (Batch::<f64, 8>::zeros(0), PerStepWorkspace::default());
        layer.forward_train(&x, &mut y, &mut ws);
        let y_at = y.as_ptr();
        let first = y.clone();
        layer.forward_train(&x, &mut y, &mut ws);
        assert_eq!(y.as_ptr(), y_at, "a second pass reallocated");
        assert_eq!((y.ncols(), &y), (5, &first));
        let (mut dx, mut g) = (Batch::<f64, 12>::zeros(5), layer.zero_gradients());
        let dx_at = dx.as_ptr();
        layer.backward(&x, &y, &weights(5), &mut ws, &mut g, Some(&mut dx));
        assert_eq!(dx.as_ptr(), dx_at);
    }

    #[test]
    fn dense_at_every_step_matches_finite_differences() {
        let mut layer = Fc::new(Dense::new(true, Init::Glorot, &mut seeded_rng(2)));
        check_gradients::<_, 12, 8>(&mut layer, &input(3), "per-step dense");
    }

    #[test]
    fn layer_norm_at_every_step_matches_finite_differences() {
        let mut norm = LayerNorm::<f64, 3>::new(&[3], 1e-5).unwrap();
        norm.weight.as_mut_slice().copy_from_slice(&[1.5, -0.5, 0.75]);
        norm.bias.as_mut_slice().copy_from_slice(&[0.1, 0.2, -0.3]);
        let mut layer = PerStep::<_, 4, 3, 3>::new(norm);
        check_gradients::<_, 12, 12>(&mut layer, &input(3), "per-step layer norm");
        // Each step is normalised on its own: step 2 is the inner layer on step 2 alone.
        let x = input::<12>(1);
        let (mut y, mut y0) = (Batch::<f64, 12>::zeros(0), Batch::<f64, 3>::zeros(0));
        Layer::forward(&layer, &x, &mut y);
        Layer::forward(&layer.inner, &Batch::<f64, 3>::from_column_slice(&x.as_slice()[6..9]), &mut y0);
        assert_eq!(&y.as_slice()[6..9], y0.as_slice());
    }

    #[test]
    fn params_are_the_inner_layers_under_the_same_names() {
        let layer = Fc::new(Dense::zeros(true));
        let mut seen = Vec::new();
        layer.visit_params(&ParamPath::ROOT.join("fc1"), &mut |p| {
            seen.push((p.name.to_string(), p.shape.to_vec()))
        });
        assert_eq!(seen, [("fc1.weight".to_string(), vec![2, 3]), ("fc1.bias".to_string(), vec![2])]);
        assert_eq!(<Fc as Params<f64>>::PARAM_COUNT, 8);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let d64 = Dense::<f64, 3, 2>::new(true, Init::Glorot, &mut seeded_rng(4));
        let mut d32 = Dense::<f32, 3, 2>::zeros(true);
        d32.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            let src = if p.name.last() == "weight" {
                d64.weight.as_slice()
            } else {
                d64.bias.as_ref().unwrap().as_slice()
            };
            p.value.iter_mut().zip(src).for_each(|(a, &b)| *a = b as f32);
        });
        let x64 = input::<12>(3);
        let x32 = x64.map(|v| v as f32);
        let (mut y64, mut y32) = (Batch::<f64, 8>::zeros(0), Batch::<f32, 8>::zeros(0));
        Layer::forward(&Fc::new(d64), &x64, &mut y64);
        Layer::forward(&PerStep::<_, 4, 3, 2>::new(d32), &x32, &mut y32);
        assert_close(y32.as_slice(), y64.as_slice(), 1e-5, "f32 per-step dense");
    }
}
