//! Pooling over the steps of a `[STEPS, F]` sample, feature by feature:
//! PyTorch's `MaxPool1d`/`AvgPool1d` (floor mode, no padding) on the
//! transposed sample, and the mean over all steps ([`GlobalAvgPool1d`]).
//!
//! A sample is step-major (`x[s·F + f]`), so a window is `kernel` consecutive
//! rows of `F` values and every loop runs along a row: one step's features.

#[cfg(test)]
mod tests;

use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernels::pool::portable::is_nan;
use crate::tensor::{ensure_batch, Batch};

/// Checks a pooling's window against its sizes: `kernel` and `stride` at
/// least 1, `kernel ≤ STEPS`, and `OSTEPS = (STEPS − kernel)/stride + 1`.
fn check_window<const STEPS: usize, const F: usize, const OSTEPS: usize>(
    layer: &str,
    kernel: usize,
    stride: usize,
) -> Result<()> {
    let invalid =
        |what: String| Err(Error::InvalidConfig(format!("{layer}<{STEPS}, {F}, {OSTEPS}>: {what}")));
    if kernel == 0 || stride == 0 || F == 0 {
        return invalid(format!(
            "kernel, stride and features must be at least 1, got kernel = {kernel}, stride = {stride}"
        ));
    }
    if kernel > STEPS {
        return invalid(format!("a window of {kernel} steps is longer than the {STEPS} steps"));
    }
    let out = (STEPS - kernel) / stride + 1;
    if out != OSTEPS {
        return invalid(format!(
            "a window of {kernel} steps with stride {stride} gives {out} steps, not {OSTEPS}"
        ));
    }
    Ok(())
}

/// Max pooling over steps: `y[o, f] = max_j x[o·stride + j, f]` for `j < kernel`.
/// The gradient goes to the first maximum of each window (as in PyTorch); a
/// NaN is the maximum of any window holding one (the first NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool1d<const STEPS: usize, const F: usize, const OSTEPS: usize> {
    kernel: usize,
    stride: usize,
}

/// Average pooling over steps: `y[o, f] = Σ_j x[o·stride + j, f] / kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool1d<const STEPS: usize, const F: usize, const OSTEPS: usize> {
    kernel: usize,
    stride: usize,
}

/// Generates a pooling's constructor and size accessors.
macro_rules! window_constructors {
    ($name:ident) => {
        impl<const STEPS: usize, const F: usize, const OSTEPS: usize> $name<STEPS, F, OSTEPS> {
            #[doc = concat!("A ", stringify!($name), " with windows of `kernel` steps, `stride` steps apart.")]
            ///
            /// Errors: [`Error::InvalidConfig`] if `kernel`, `stride` or `F` is 0,
            /// the window is longer than `STEPS`, or `OSTEPS` is not
            /// `(STEPS − kernel)/stride + 1` (PyTorch's floor mode).
            pub fn new(kernel: usize, stride: usize) -> Result<Self> {
                check_window::<STEPS, F, OSTEPS>(stringify!($name), kernel, stride)?;
                Ok($name { kernel, stride })
            }

            /// The same pooling built in a `const` context, for sizes already
            /// checked (`network!` can write it inline as
            #[doc = concat!("`const { ", stringify!($name), "::<STEPS, F, OSTEPS>::with_window(k, s) }`).")]
            ///
            /// Panics (at compile time in a `const` context) where
            #[doc = concat!("[`", stringify!($name), "::new`] returns an error.")]
            pub const fn with_window(kernel: usize, stride: usize) -> Self {
                assert!(kernel >= 1 && stride >= 1 && F >= 1, "kernel, stride and features must be at least 1");
                assert!(kernel <= STEPS, "the pooling window is longer than the steps");
                assert!((STEPS - kernel) / stride + 1 == OSTEPS, "the window and stride do not give OSTEPS steps");
                $name { kernel, stride }
            }

            /// The window length, in steps.
            pub fn kernel(&self) -> usize {
                self.kernel
            }

            /// The steps between two windows.
            pub fn stride(&self) -> usize {
                self.stride
            }
        }
    };
}
window_constructors!(MaxPool1d);
window_constructors!(AvgPool1d);

/// The size check every pass of a pooling over steps makes when instantiated.
macro_rules! assert_sizes {
    ($in:expr, $out:expr) => {
        const { assert!($in && $out, "pooling over steps: sizes disagree") }
    };
}

/// What [`MaxPool1d`]'s training pass keeps: for every output value of the
/// batch, the step of its maximum within its window. Resized only when the
/// batch size changes.
#[derive(Clone, Debug, Default)]
pub struct MaxPool1dWorkspace {
    argmax: Vec<u32>,
}

impl<const STEPS: usize, const F: usize, const OSTEPS: usize> MaxPool1d<STEPS, F, OSTEPS> {
    /// Pools every sample of `x` into `y`, writing each output's step within
    /// its window into `argmax` when given.
    fn pool<T: Float>(&self, x: &[T], y: &mut [T], mut argmax: Option<&mut [u32]>) {
        let samples = x.chunks_exact(STEPS * F).zip(y.chunks_exact_mut(OSTEPS * F));
        for (b, (xs, ys)) in samples.enumerate() {
            for (o, yo) in ys.chunks_exact_mut(F).enumerate() {
                let start = o * self.stride;
                let at = argmax.as_deref_mut().map(|a| &mut a[(b * OSTEPS + o) * F..][..F]);
                window_max(&xs[start * F..(start + self.kernel) * F], yo, at);
            }
        }
    }
}

/// The first maximum of each feature over the rows of `window` (steps of
/// `y.len()` features) into `y`, and its row into `at` when given. NaN wins:
/// once a feature's maximum is NaN nothing replaces it.
#[inline]
fn window_max<T: Float>(window: &[T], y: &mut [T], mut at: Option<&mut [u32]>) {
    let (first, rest) = window.split_at(y.len());
    y.copy_from_slice(first);
    if let Some(at) = at.as_deref_mut() {
        at.fill(0);
    }
    for (j, row) in (1u32..).zip(rest.chunks_exact(y.len())) {
        for (f, (best, &v)) in y.iter_mut().zip(row).enumerate() {
            if v > *best || (is_nan(v) && !is_nan(*best)) {
                *best = v;
                if let Some(at) = at.as_deref_mut() {
                    at[f] = j;
                }
            }
        }
    }
}

impl<
        T: Float,
        const STEPS: usize,
        const F: usize,
        const OSTEPS: usize,
        const IN: usize,
        const OUT: usize,
    > Layer<T, IN, OUT> for MaxPool1d<STEPS, F, OSTEPS>
{
    type Workspace = MaxPool1dWorkspace;
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        assert_sizes!(IN == STEPS * F, OUT == OSTEPS * F);
        ensure_batch(y, x.ncols());
        self.pool(x.as_slice(), y.as_mut_slice(), None)
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut MaxPool1dWorkspace) {
        assert_sizes!(IN == STEPS * F, OUT == OSTEPS * F);
        ensure_batch(y, x.ncols());
        if ws.argmax.len() != OUT * x.ncols() {
            ws.argmax.clear();
            ws.argmax.resize(OUT * x.ncols(), 0);
        }
        self.pool(x.as_slice(), y.as_mut_slice(), Some(&mut ws.argmax))
    }

    /// Panics if `ws` was not filled by a training pass on a batch of this size.
    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut MaxPool1dWorkspace,
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        assert_sizes!(IN == STEPS * F, OUT == OSTEPS * F);
        let Some(dx) = dx else { return };
        assert!(
            ws.argmax.len() == OUT * x.ncols(),
            "MaxPool1d::backward needs the workspace of a training pass on the same batch"
        );
        ensure_batch(dx, x.ncols());
        // Steps outside every window keep a zero gradient; overlapping windows add up.
        dx.as_mut_slice().fill(T::zero());
        let samples = dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT));
        for ((dxs, dys), args) in samples.zip(ws.argmax.chunks_exact(OUT)) {
            for (o, (dyo, ao)) in dys.chunks_exact(F).zip(args.chunks_exact(F)).enumerate() {
                for (f, (&d, &j)) in dyo.iter().zip(ao).enumerate() {
                    dxs[(o * self.stride + j as usize) * F + f] += d;
                }
            }
        }
    }
}

impl<
        T: Float,
        const STEPS: usize,
        const F: usize,
        const OSTEPS: usize,
        const IN: usize,
        const OUT: usize,
    > Layer<T, IN, OUT> for AvgPool1d<STEPS, F, OSTEPS>
{
    type Workspace = ();
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        assert_sizes!(IN == STEPS * F, OUT == OSTEPS * F);
        ensure_batch(y, x.ncols());
        let count = T::cast(self.kernel as f64);
        for (xs, ys) in x.as_slice().chunks_exact(IN).zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
            for (o, yo) in ys.chunks_exact_mut(F).enumerate() {
                let start = o * self.stride;
                yo.fill(T::zero());
                for row in xs[start * F..(start + self.kernel) * F].chunks_exact(F) {
                    yo.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                }
                yo.iter_mut().for_each(|s| *s /= count);
            }
        }
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::<T, IN, OUT>::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        assert_sizes!(IN == STEPS * F, OUT == OSTEPS * F);
        let Some(dx) = dx else { return };
        ensure_batch(dx, x.ncols());
        dx.as_mut_slice().fill(T::zero());
        let count = T::cast(self.kernel as f64);
        for (dxs, dys) in dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT)) {
            for (o, dyo) in dys.chunks_exact(F).enumerate() {
                let start = o * self.stride;
                for row in dxs[start * F..(start + self.kernel) * F].chunks_exact_mut(F) {
                    row.iter_mut().zip(dyo).for_each(|(g, &d)| *g += d / count);
                }
            }
        }
    }
}

/// The mean over all steps, `[STEPS, F]` to `[F]` (PyTorch's `x.mean(dim = 1)`
/// on `[B, T, F]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool1d<const STEPS: usize, const F: usize>;

impl<const STEPS: usize, const F: usize> GlobalAvgPool1d<STEPS, F> {
    /// The mean over the `STEPS` steps of each of the `F` features.
    pub const fn new() -> Self {
        GlobalAvgPool1d
    }
}

impl<const STEPS: usize, const F: usize> GlobalAvgPool1d<STEPS, F> {
    /// The same passes as one window over every step.
    const WINDOW: AvgPool1d<STEPS, F, 1> = AvgPool1d::with_window(STEPS, STEPS);
}

impl<T: Float, const STEPS: usize, const F: usize, const IN: usize, const OUT: usize> Layer<T, IN, OUT>
    for GlobalAvgPool1d<STEPS, F>
{
    type Workspace = ();
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        assert_sizes!(IN == STEPS * F && STEPS >= 1, OUT == F);
        Layer::<T, IN, OUT>::forward(&Self::WINDOW, x, y)
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::<T, IN, OUT>::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut (),
        grads: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        assert_sizes!(IN == STEPS * F && STEPS >= 1, OUT == F);
        Self::WINDOW.backward(x, y, dy, ws, grads, dx)
    }
}
