//! Batch normalisation over channels: PyTorch's `nn.BatchNorm1d` and `nn.BatchNorm2d`.
//!
//! A rank-1 sample `[F]` is normalised per feature over the batch (`N = C = F`);
//! a rank-3 sample `[C, H, W]` per channel over the batch and all `H·W`
//! positions (`N = C·H·W`, channel-major, so channel `c` of a sample is the
//! contiguous run `c·H·W .. (c+1)·H·W` of its column).

use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, heap_clone, heap_zeros, lane_sum, Batch, HeapMatrix};
use std::fmt;

/// Batch normalisation of `C` channels of a sample with `N` features
/// (`N = C` for a rank-1 sample, `N = C·H·W` for a rank-3 one).
///
/// Follows PyTorch exactly:
///
/// - **training** ([`Layer::forward_train`]): normalises each channel with the
///   mean and the *biased* variance of the batch, then updates
///   `running_mean ← (1 − m)·running_mean + m·mean` and
///   `running_var ← (1 − m)·running_var + m·unbiased_var`, where
///   `unbiased_var = biased_var·n / (n − 1)` over the `n = batch·H·W` values of
///   the channel. With `n == 1` the unbiased variance is undefined (PyTorch
///   refuses to train then); this layer uses the biased value (zero) instead.
///   An empty batch produces an empty output and leaves the running statistics
///   untouched.
/// - **evaluation** ([`Layer::forward`]): normalises with the running statistics.
/// - **backward**: the gradient through the batch statistics of the training pass.
///
/// `weight` (γ, starts at 1) and `bias` (β, starts at 0) are trainable and
/// visited by [`Params::visit_params`]; `running_mean` (starts at 0) and
/// `running_var` (starts at 1) are buffers, visited only by
/// [`Params::visit_buffers`], so optimizers never touch them. PyTorch's
/// `num_batches_tracked` buffer is not kept: it only matters for `momentum=None`.
///
/// `C` must divide `N` (and both be non-zero); a mismatch is a compile-time
/// error when the layer is constructed.
pub struct BatchNorm<T: Float, const N: usize, const C: usize> {
    /// γ: the per-channel scale, PyTorch's `weight`, shape `[C]`.
    pub weight: HeapMatrix<T, C, 1>,
    /// β: the per-channel shift, PyTorch's `bias`, shape `[C]`.
    pub bias: HeapMatrix<T, C, 1>,
    /// The running mean used in evaluation, a buffer of shape `[C]`.
    pub running_mean: HeapMatrix<T, C, 1>,
    /// The running (unbiased) variance used in evaluation, a buffer of shape `[C]`.
    pub running_var: HeapMatrix<T, C, 1>,
    /// Added to the variance before the square root (PyTorch's `eps`, default 1e-5).
    pub eps: f64,
    /// The weight of the newest batch in the running statistics (PyTorch's
    /// `momentum`, default 0.1).
    pub momentum: f64,
}

/// The gradient of a loss with respect to a [`BatchNorm`] layer's parameters.
pub struct BatchNormGrad<T: Float, const C: usize> {
    /// Shaped like [`BatchNorm::weight`].
    pub weight: HeapMatrix<T, C, 1>,
    /// Shaped like [`BatchNorm::bias`].
    pub bias: HeapMatrix<T, C, 1>,
}

/// What a [`BatchNorm`] training pass keeps for its backward pass: the
/// normalised input `x̂` and `1/σ` per channel. Resized only when the batch
/// size changes.
pub struct BatchNormWorkspace<T: Float, const N: usize, const C: usize> {
    x_hat: Batch<T, N>,
    inv_std: HeapMatrix<T, C, 1>,
}

impl<T: Float, const N: usize, const C: usize> BatchNormWorkspace<T, N, C> {
    /// The normalised input `x̂ = (x − mean)/σ` of the last training pass.
    pub fn x_hat(&self) -> &Batch<T, N> {
        &self.x_hat
    }

    /// `1/σ = 1/sqrt(biased_var + eps)` per channel, from the last training pass.
    pub fn inv_std(&self) -> &[T] {
        self.inv_std.as_slice()
    }
}

impl<T: Float, const N: usize, const C: usize> Default for BatchNormWorkspace<T, N, C> {
    fn default() -> Self {
        BatchNormWorkspace { x_hat: Batch::zeros(0), inv_std: heap_zeros() }
    }
}

impl<T: Float, const N: usize, const C: usize> fmt::Debug for BatchNormWorkspace<T, N, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchNormWorkspace({N} features, {C} channels, batch {})", self.x_hat.ncols())
    }
}

impl<T: Float, const N: usize, const C: usize> BatchNorm<T, N, C> {
    /// PyTorch's default `eps`.
    pub const DEFAULT_EPS: f64 = 1e-5;
    /// PyTorch's default `momentum`.
    pub const DEFAULT_MOMENTUM: f64 = 0.1;

    /// The number of values per channel in one sample: `H·W`, or 1 for a rank-1 sample.
    ///
    /// Evaluating it (every constructor does) fails to compile unless `C` divides `N`:
    ///
    /// ```compile_fail
    /// let _ = staticnet_core::layers::BatchNorm::<f32, 5, 2>::new(1e-5, 0.1);
    /// ```
    pub const SPATIAL: usize = {
        assert!(C > 0 && N > 0 && N.is_multiple_of(C), "BatchNorm: the channel count C must divide N");
        N / C
    };

    /// A fresh layer: `weight` 1, `bias` 0, `running_mean` 0, `running_var` 1.
    ///
    /// Errors: [`Error::InvalidConfig`] unless `eps` is finite and non-negative
    /// and `momentum` lies in `[0, 1]`. `network!` checks both while compiling,
    /// so generated code never meets the error.
    pub fn new(eps: f64, momentum: f64) -> Result<Self> {
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "BatchNorm: eps must be finite and non-negative, got {eps}"
            )));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::InvalidConfig(format!(
                "BatchNorm: momentum must lie in [0, 1], got {momentum}"
            )));
        }
        Ok(Self::fresh(eps, momentum))
    }

    fn fresh(eps: f64, momentum: f64) -> Self {
        let _ = Self::SPATIAL; // the compile-time check of N and C
        let mut weight: HeapMatrix<T, C, 1> = heap_zeros();
        weight.fill(T::one());
        let mut running_var: HeapMatrix<T, C, 1> = heap_zeros();
        running_var.fill(T::one());
        BatchNorm { weight, bias: heap_zeros(), running_mean: heap_zeros(), running_var, eps, momentum }
    }
}

impl<T: Float, const N: usize, const C: usize> Default for BatchNorm<T, N, C> {
    /// [`BatchNorm::new`] with PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`.
    fn default() -> Self {
        Self::fresh(Self::DEFAULT_EPS, Self::DEFAULT_MOMENTUM)
    }
}

/// The values of channel `c` in each sample of a batch slice, one run per sample.
fn channel<T, const N: usize>(data: &[T], c: usize, sp: usize) -> impl Iterator<Item = &[T]> {
    data.chunks_exact(N).map(move |col| &col[c * sp..(c + 1) * sp])
}

/// Mutable [`channel`].
fn channel_mut<T, const N: usize>(data: &mut [T], c: usize, sp: usize) -> impl Iterator<Item = &mut [T]> {
    data.chunks_exact_mut(N).map(move |col| &mut col[c * sp..(c + 1) * sp])
}

impl<T: Float, const N: usize, const C: usize> Layer<T, N, N> for BatchNorm<T, N, C> {
    type Workspace = BatchNormWorkspace<T, N, C>;
    type Gradients = BatchNormGrad<T, C>;

    /// Evaluation: `y = (x − running_mean)/sqrt(running_var + eps)·γ + β` per channel.
    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        let sp = Self::SPATIAL;
        ensure_batch(y, x.ncols());
        let eps = T::cast(self.eps);
        for c in 0..C {
            let scale = self.weight[c] / (self.running_var[c] + eps).sqrt();
            let shift = self.bias[c] - self.running_mean[c] * scale;
            let xs = channel::<T, N>(x.as_slice(), c, sp);
            for (xc, yc) in xs.zip(channel_mut::<T, N>(y.as_mut_slice(), c, sp)) {
                for (yi, &xi) in yc.iter_mut().zip(xc) {
                    *yi = xi * scale + shift;
                }
            }
        }
    }

    fn forward_train(&mut self, x: &Batch<T, N>, y: &mut Batch<T, N>, ws: &mut Self::Workspace) {
        let sp = Self::SPATIAL;
        let batch = x.ncols();
        ensure_batch(y, batch);
        ensure_batch(&mut ws.x_hat, batch);
        let n = batch * sp;
        if n == 0 {
            return;
        }
        let eps = T::cast(self.eps);
        let momentum = T::cast(self.momentum);
        let keep = T::one() - momentum;
        let inv_n = T::one() / T::cast(n as f64);
        // PyTorch's Bessel correction; undefined for a single value, where the biased value (0) is used.
        let unbias = if n > 1 { T::cast(n as f64 / (n - 1) as f64) } else { T::one() };
        for c in 0..C {
            let xc = || channel::<T, N>(x.as_slice(), c, sp);
            let mean = lane_sum(xc().zip(xc()), |v, _| v) * inv_n;
            let sq = lane_sum(xc().zip(xc()), |v, _| (v - mean) * (v - mean));
            let var = sq * inv_n;
            let inv_std = T::one() / (var + eps).sqrt();
            ws.inv_std[c] = inv_std;
            let (gamma, beta) = (self.weight[c], self.bias[c]);
            let xs = channel::<T, N>(x.as_slice(), c, sp);
            let hs = channel_mut::<T, N>(ws.x_hat.as_mut_slice(), c, sp);
            for ((xc, hc), yc) in xs.zip(hs).zip(channel_mut::<T, N>(y.as_mut_slice(), c, sp)) {
                for ((hi, yi), &xi) in hc.iter_mut().zip(yc.iter_mut()).zip(xc) {
                    let h = (xi - mean) * inv_std;
                    *hi = h;
                    *yi = gamma * h + beta;
                }
            }
            self.running_mean[c] = keep * self.running_mean[c] + momentum * mean;
            self.running_var[c] = keep * self.running_var[c] + momentum * var * unbias;
        }
    }

    /// With `x̂` and `1/σ` from the training pass and `n = batch·H·W` values per channel:
    /// `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/σ · (dy − dβ/n − x̂·dγ/n)`.
    fn backward(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        ws: &mut Self::Workspace,
        grads: &mut BatchNormGrad<T, C>,
        mut dx: Option<&mut Batch<T, N>>,
    ) {
        let sp = Self::SPATIAL;
        let batch = x.ncols();
        if let Some(dx) = dx.as_deref_mut() {
            ensure_batch(dx, batch);
        }
        let n = batch * sp;
        let inv_n = if n > 0 { T::one() / T::cast(n as f64) } else { T::zero() };
        for c in 0..C {
            let runs =
                || channel::<T, N>(dy.as_slice(), c, sp).zip(channel::<T, N>(ws.x_hat.as_slice(), c, sp));
            let sum_dy = lane_sum(runs(), |g, _| g);
            let sum_dy_xhat = lane_sum(runs(), |g, h| g * h);
            grads.bias[c] = sum_dy;
            grads.weight[c] = sum_dy_xhat;
            if let Some(dx) = dx.as_deref_mut() {
                let k = self.weight[c] * ws.inv_std[c];
                let (mean_dy, mean_dy_xhat) = (sum_dy * inv_n, sum_dy_xhat * inv_n);
                let gs = channel::<T, N>(dy.as_slice(), c, sp);
                let hs = channel::<T, N>(ws.x_hat.as_slice(), c, sp);
                for ((gc, hc), dc) in gs.zip(hs).zip(channel_mut::<T, N>(dx.as_mut_slice(), c, sp)) {
                    for ((d, &g), &h) in dc.iter_mut().zip(gc).zip(hc) {
                        *d = k * (g - mean_dy - h * mean_dy_xhat);
                    }
                }
            }
        }
    }
}

impl<T: Float, const N: usize, const C: usize> Clone for BatchNorm<T, N, C> {
    fn clone(&self) -> Self {
        BatchNorm {
            weight: heap_clone(&self.weight),
            bias: heap_clone(&self.bias),
            running_mean: heap_clone(&self.running_mean),
            running_var: heap_clone(&self.running_var),
            eps: self.eps,
            momentum: self.momentum,
        }
    }
}

impl<T: Float, const N: usize, const C: usize> fmt::Debug for BatchNorm<T, N, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchNorm({C} channels of {N} features, eps = {}, momentum = {})", self.eps, self.momentum)
    }
}

impl<T: Float, const C: usize> Clone for BatchNormGrad<T, C> {
    fn clone(&self) -> Self {
        BatchNormGrad { weight: heap_clone(&self.weight), bias: heap_clone(&self.bias) }
    }
}

impl<T: Float, const C: usize> fmt::Debug for BatchNormGrad<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchNormGrad({C} channels)")
    }
}

impl<T: Float, const N: usize, const C: usize> Params<T> for BatchNorm<T, N, C> {
    type Gradients = BatchNormGrad<T, C>;

    const PARAM_COUNT: usize = 2 * C;

    fn zero_gradients(&self) -> Self::Gradients {
        BatchNormGrad { weight: heap_zeros(), bias: heap_zeros() }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &[C], value: self.weight.as_slice() });
        f(Param { name: path.join("bias"), shape: &[C], value: self.bias.as_slice() });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &[C], value: self.weight.as_mut_slice() });
        f(ParamMut { name: path.join("bias"), shape: &[C], value: self.bias.as_mut_slice() });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let w = ParamMut { name: path.join("weight"), shape: &[C], value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
        let b = ParamMut { name: path.join("bias"), shape: &[C], value: self.bias.as_mut_slice() };
        f(b, grads.bias.as_slice());
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
        f(grads.bias.as_slice());
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("running_mean"), shape: &[C], value: self.running_mean.as_slice() });
        f(Param { name: path.join("running_var"), shape: &[C], value: self.running_var.as_slice() });
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let mean = self.running_mean.as_mut_slice();
        f(ParamMut { name: path.join("running_mean"), shape: &[C], value: mean });
        f(ParamMut { name: path.join("running_var"), shape: &[C], value: self.running_var.as_mut_slice() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    /// Rank 1, two features, batch 4, eps 0: feature 0 is {1, 3, 1, 3}, feature 1 {2, 6, 2, 6}.
    fn hand_layer() -> (BatchNorm<f64, 2, 2>, Batch<f64, 2>) {
        let mut bn = BatchNorm::<f64, 2, 2>::new(0.0, 0.1).unwrap();
        bn.weight.as_mut_slice().copy_from_slice(&[2.0, -1.0]);
        bn.bias.as_mut_slice().copy_from_slice(&[0.5, 1.0]);
        let x = Batch::<f64, 2>::from_column_slice(&[1.0, 2.0, 3.0, 6.0, 1.0, 2.0, 3.0, 6.0]);
        (bn, x)
    }

    #[test]
    fn a_bad_eps_or_momentum_is_an_error() {
        for (eps, momentum) in [(-1.0, 0.1), (f64::NAN, 0.1), (f64::INFINITY, 0.1)] {
            let e = BatchNorm::<f32, 2, 2>::new(eps, momentum).unwrap_err();
            assert!(e.to_string().contains("eps must be finite and non-negative"), "{e}");
        }
        for momentum in [-0.1, 1.5, f64::NAN] {
            let e = BatchNorm::<f32, 2, 2>::new(1e-5, momentum).unwrap_err();
            assert!(e.to_string().contains("momentum must lie in [0, 1]"), "{e}");
        }
    }

    #[test]
    fn defaults_are_pytorchs() {
        let bn = BatchNorm::<f32, 12, 3>::default();
        assert_eq!((bn.eps, bn.momentum), (1e-5, 0.1));
        assert_eq!(bn.weight.as_slice(), &[1.0; 3]);
        assert_eq!(bn.bias.as_slice(), &[0.0; 3]);
        assert_eq!(bn.running_mean.as_slice(), &[0.0; 3]);
        assert_eq!(bn.running_var.as_slice(), &[1.0; 3]);
        assert_eq!(BatchNorm::<f32, 12, 3>::SPATIAL, 4);
        assert_eq!(format!("{bn:?}"), "BatchNorm(3 channels of 12 features, eps = 0.00001, momentum = 0.1)");
    }

    #[test]
    fn train_mode_normalises_with_batch_statistics_and_updates_running_ones() {
        let (mut bn, x) = hand_layer();
        let mut y = Batch::zeros(0);
        let mut ws = BatchNormWorkspace::default();
        bn.forward_train(&x, &mut y, &mut ws);
        // Feature 0: mean 2, biased var 1, x̂ = ∓1, y = 2·x̂ + 0.5.
        // Feature 1: mean 4, biased var 4, x̂ = ∓1, y = −x̂ + 1.
        assert_close(y.as_slice(), &[-1.5, 2.0, 2.5, 0.0, -1.5, 2.0, 2.5, 0.0], 1e-15, "bn train");
        assert_close(ws.inv_std(), &[1.0, 0.5], 1e-15, "1/σ");
        // Unbiased variances 4/3 and 16/3; momentum 0.1.
        assert_close(bn.running_mean.as_slice(), &[0.2, 0.4], 1e-15, "running mean");
        assert_close(bn.running_var.as_slice(), &[0.9 + 0.4 / 3.0, 0.9 + 1.6 / 3.0], 1e-15, "running var");

        // Evaluation now uses the running statistics.
        bn.forward(&x, &mut y);
        let (s0, s1) = (2.0 / (0.9f64 + 0.4 / 3.0).sqrt(), -1.0 / (0.9f64 + 1.6 / 3.0).sqrt());
        let expected: Vec<f64> = x
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 2 == 0 { (v - 0.2) * s0 + 0.5 } else { (v - 0.4) * s1 + 1.0 })
            .collect();
        assert_close(y.as_slice(), &expected, 1e-14, "bn eval");
    }

    #[test]
    fn eval_mode_of_a_fresh_layer_only_scales_by_eps() {
        let bn = BatchNorm::<f64, 3, 3>::default();
        let x = Batch::<f64, 3>::from_column_slice(&[1.0, -2.0, 3.0]);
        let mut y = Batch::zeros(0);
        bn.forward(&x, &mut y);
        let s = 1.0 / (1.0f64 + 1e-5).sqrt();
        assert_close(y.as_slice(), &[s, -2.0 * s, 3.0 * s], 1e-15, "fresh eval");
    }

    #[test]
    fn rank_3_normalises_each_channel_over_batch_and_positions() {
        // [C=2, H=1, W=2], batch 2. Channel 0 holds {1, 3, 1, 3}, channel 1 {10, 10, 20, 20}.
        let mut bn = BatchNorm::<f64, 4, 2>::new(0.0, 0.5).unwrap();
        let x = Batch::<f64, 4>::from_column_slice(&[1.0, 3.0, 10.0, 10.0, 1.0, 3.0, 20.0, 20.0]);
        let mut y = Batch::zeros(0);
        bn.forward_train(&x, &mut y, &mut BatchNormWorkspace::default());
        assert_close(y.as_slice(), &[-1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0], 1e-15, "rank 3");
        // n = 4 values per channel: unbiased variances 4/3 and 100/3.
        assert_close(bn.running_mean.as_slice(), &[1.0, 7.5], 1e-15, "running mean");
        assert_close(bn.running_var.as_slice(), &[0.5 + 2.0 / 3.0, 0.5 + 50.0 / 3.0], 1e-14, "running var");
    }

    #[test]
    fn a_single_value_per_channel_uses_the_biased_variance() {
        let mut bn = BatchNorm::<f64, 2, 2>::default();
        bn.bias.as_mut_slice().copy_from_slice(&[0.25, -0.5]);
        let x = Batch::<f64, 2>::from_column_slice(&[7.0, -3.0]);
        let mut y = Batch::zeros(0);
        bn.forward_train(&x, &mut y, &mut BatchNormWorkspace::default());
        assert_eq!(y.as_slice(), &[0.25, -0.5]);
        assert_close(bn.running_mean.as_slice(), &[0.7, -0.3], 1e-15, "running mean");
        assert_close(bn.running_var.as_slice(), &[0.9, 0.9], 1e-15, "running var");
    }

    #[test]
    fn an_empty_batch_changes_nothing() {
        let mut bn = BatchNorm::<f64, 4, 2>::default();
        let x = Batch::<f64, 4>::zeros(0);
        let mut y = Batch::zeros(3);
        let mut ws = BatchNormWorkspace::default();
        bn.forward_train(&x, &mut y, &mut ws);
        assert_eq!(y.ncols(), 0);
        assert_eq!(bn.running_mean.as_slice(), &[0.0, 0.0]);
        assert_eq!(bn.running_var.as_slice(), &[1.0, 1.0]);
        let mut g = bn.zero_gradients();
        let mut dx = Batch::zeros(2);
        bn.backward(&x, &y, &y, &mut ws, &mut g, Some(&mut dx));
        assert_eq!(dx.ncols(), 0);
        assert_eq!(g.weight.as_slice(), &[0.0, 0.0]);
    }

    /// Checks input, weight and bias gradients of a training pass against finite differences.
    fn check_gradients<const N: usize, const C: usize>(batch: usize) {
        let mut bn = BatchNorm::<f64, N, C>::new(1e-3, 0.3).unwrap();
        bn.weight.iter_mut().enumerate().for_each(|(i, w)| *w = 0.5 + 0.7 * (i as f64 * 1.3).sin());
        bn.bias.iter_mut().enumerate().for_each(|(i, b)| *b = (i as f64 * 0.9).cos());
        let x =
            Batch::<f64, N>::from_fn(batch, |i, j| ((i * 7 + j * 3) as f64 * 0.37).sin() * 2.0 + i as f64);
        // Loss L = Σ c ⊙ y with fixed c, so dL/dy = c.
        let c = Batch::<f64, N>::from_fn(batch, |i, j| ((i + 2 * j) as f64 * 0.61).cos());
        // Train-mode normalisation on a copy, so running-statistic updates do not interfere.
        let loss = |bn: &BatchNorm<f64, N, C>, x: &Batch<f64, N>| {
            let mut y = Batch::zeros(0);
            bn.clone().forward_train(x, &mut y, &mut BatchNormWorkspace::default());
            y.component_mul(&c).sum()
        };

        let mut y = Batch::zeros(0);
        let mut ws = BatchNormWorkspace::default();
        let before = bn.clone();
        bn.forward_train(&x, &mut y, &mut ws);
        let mut g = bn.zero_gradients();
        let mut dx = Batch::zeros(0);
        bn.backward(&x, &y, &c, &mut ws, &mut g, Some(&mut dx));

        let num_w = numeric_grad(before.weight.as_slice(), |w| {
            let mut p = before.clone();
            p.weight.as_mut_slice().copy_from_slice(w);
            loss(&p, &x)
        });
        assert_close(g.weight.as_slice(), &num_w, 1e-7, "bn weight");
        let num_b = numeric_grad(before.bias.as_slice(), |b| {
            let mut p = before.clone();
            p.bias.as_mut_slice().copy_from_slice(b);
            loss(&p, &x)
        });
        assert_close(g.bias.as_slice(), &num_b, 1e-7, "bn bias");
        let num_x = numeric_grad(x.as_slice(), |xs| loss(&before, &Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num_x, 1e-7, "bn input");

        // Without dx, the parameter gradients are the same.
        let mut g2 = bn.zero_gradients();
        bn.backward(&x, &y, &c, &mut ws, &mut g2, None);
        assert_eq!(g2.weight.as_slice(), g.weight.as_slice());
        assert_eq!(g2.bias.as_slice(), g.bias.as_slice());
    }

    #[test]
    fn rank_1_backward_matches_finite_differences() {
        check_gradients::<3, 3>(5);
    }

    #[test]
    fn rank_3_backward_matches_finite_differences() {
        // [C=2, H=2, W=3], batch 3: 18 values per channel.
        check_gradients::<12, 2>(3);
    }

    #[test]
    fn a_second_step_with_the_same_batch_reuses_every_buffer() {
        let mut bn = BatchNorm::<f32, 12, 3>::default();
        let x = Batch::<f32, 12>::from_fn(4, |i, j| (i * 4 + j) as f32 * 0.1);
        let (mut y, mut dx) = (Batch::zeros(0), Batch::zeros(0));
        let mut ws = BatchNormWorkspace::default();
        let mut g = bn.zero_gradients();
        bn.forward_train(&x, &mut y, &mut ws);
        bn.backward(&x, &y, &x, &mut ws, &mut g, Some(&mut dx));
        let ptrs = (ws.x_hat.as_ptr(), ws.inv_std.as_ptr(), y.as_ptr(), dx.as_ptr());
        bn.forward_train(&x, &mut y, &mut ws);
        bn.backward(&x, &y, &x, &mut ws, &mut g, Some(&mut dx));
        assert_eq!(ptrs, (ws.x_hat.as_ptr(), ws.inv_std.as_ptr(), y.as_ptr(), dx.as_ptr()));
    }

    #[test]
    fn params_and_buffers_have_pytorch_names_and_are_visited_apart() {
        let mut bn = BatchNorm::<f64, 8, 2>::default();
        let root = ParamPath::ROOT.join("bn");
        let mut params = Vec::new();
        bn.visit_params(&root, &mut |p| {
            params.push((p.name.to_string(), p.shape.to_vec(), p.value.to_vec()))
        });
        assert_eq!(
            params,
            [("bn.weight".into(), vec![2], vec![1.0, 1.0]), ("bn.bias".into(), vec![2], vec![0.0, 0.0])]
        );
        let mut buffers = Vec::new();
        bn.visit_buffers(&root, &mut |p| {
            buffers.push((p.name.to_string(), p.shape.to_vec(), p.value.to_vec()))
        });
        assert_eq!(
            buffers,
            [
                ("bn.running_mean".into(), vec![2], vec![0.0, 0.0]),
                ("bn.running_var".into(), vec![2], vec![1.0, 1.0])
            ]
        );
        // Loading buffers changes what evaluation uses.
        bn.visit_buffers_mut(&root, &mut |p| {
            let v = if p.name.last() == "running_mean" { [1.0, 2.0] } else { [4.0, 0.25] };
            p.value.copy_from_slice(&v);
        });
        assert_eq!(bn.running_mean.as_slice(), &[1.0, 2.0]);
        assert_eq!(bn.running_var.as_slice(), &[4.0, 0.25]);

        let mut names = Vec::new();
        let g = bn.zero_gradients();
        bn.visit_params_with_grads(&g, &root, &mut |p, gr| names.push((p.name.to_string(), gr.len())));
        assert_eq!(names, [("bn.weight".to_string(), 2), ("bn.bias".to_string(), 2)]);
        let mut count = 0;
        BatchNorm::<f64, 8, 2>::visit_grads(&g, &mut |gr| count += gr.len());
        assert_eq!(count, BatchNorm::<f64, 8, 2>::PARAM_COUNT);
    }
}
