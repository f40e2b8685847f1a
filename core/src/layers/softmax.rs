//! Softmax and log-softmax over the features of each sample.

use super::Activation;
use crate::float::Float;
use crate::tensor::{ensure_batch, Batch};

/// `softmax(x)_i = e^{x_i} / Σ_j e^{x_j}` over each sample's features.
///
/// For classification, prefer ending the network in logits and training with
/// [`crate::loss::SoftmaxCrossEntropy`], which fuses both and stays stable.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softmax;

impl Activation for Softmax {
    const NAME: &'static str = "softmax";
    type Cache<T: Float> = ();

    fn forward<T: Float, const N: usize>(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        ensure_batch(y, x.ncols());
        for (xc, mut yc) in x.column_iter().zip(y.column_iter_mut()) {
            softmax_into(xc.as_slice(), yc.as_mut_slice());
        }
    }

    fn forward_in_place<T: Float, const N: usize>(&self, y: &mut Batch<T, N>) {
        for mut col in y.column_iter_mut() {
            let max = col.iter().copied().fold(T::cast(f64::NEG_INFINITY), |a, b| a.max(b));
            col.iter_mut().for_each(|v| *v = (*v - max).exp());
            let inv = T::one() / col.sum();
            col.iter_mut().for_each(|v| *v *= inv);
        }
    }

    fn backward<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
    ) {
        ensure_batch(dx, x.ncols());
        // dx = y ⊙ (dy − ⟨dy, y⟩), per sample.
        for ((yc, gc), mut dc) in y.column_iter().zip(dy.column_iter()).zip(dx.column_iter_mut()) {
            let dot = yc.dot(&gc);
            for ((d, &yi), &gi) in dc.iter_mut().zip(yc.iter()).zip(gc.iter()) {
                *d = yi * (gi - dot);
            }
        }
    }
}

/// `log_softmax(x)_i = x_i − log Σ_j e^{x_j}` over each sample's features
/// (PyTorch's `log_softmax` over the last dimension), computed stably.
///
/// Its backward pass is `dx = dy − softmax(x)·Σ dy`, with `softmax(x) = e^y`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogSoftmax;

impl Activation for LogSoftmax {
    const NAME: &'static str = "log_softmax";
    type Cache<T: Float> = ();

    fn forward<T: Float, const N: usize>(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        ensure_batch(y, x.ncols());
        y.as_mut_slice().copy_from_slice(x.as_slice());
        self.forward_in_place(y);
    }

    fn forward_in_place<T: Float, const N: usize>(&self, y: &mut Batch<T, N>) {
        for mut col in y.column_iter_mut() {
            let max = col.iter().copied().fold(T::cast(f64::NEG_INFINITY), |a, b| a.max(b));
            let sum = col.iter().fold(T::zero(), |s, &v| s + (v - max).exp());
            let log_sum = max + sum.ln();
            col.iter_mut().for_each(|v| *v -= log_sum);
        }
    }

    fn backward<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
    ) {
        ensure_batch(dx, x.ncols());
        for ((yc, gc), mut dc) in y.column_iter().zip(dy.column_iter()).zip(dx.column_iter_mut()) {
            let total = gc.sum();
            for ((d, &yi), &gi) in dc.iter_mut().zip(yc.iter()).zip(gc.iter()) {
                *d = gi - yi.exp() * total;
            }
        }
    }
}

/// A stable softmax of one sample: shifts by the maximum so `exp` never overflows.
/// Returns `log Σ e^{x_i}` (computed from the same exponentials), which the fused
/// softmax cross-entropy needs.
pub(crate) fn softmax_into<T: Float>(x: &[T], y: &mut [T]) -> T {
    let max = x.iter().copied().fold(T::cast(f64::NEG_INFINITY), |a, b| a.max(b));
    let mut sum = T::zero();
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = (xi - max).exp();
        sum += *yi;
    }
    let inv = T::one() / sum;
    y.iter_mut().for_each(|yi| *yi *= inv);
    max + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    #[test]
    fn values_sum_to_one_and_match_hand_computation() {
        let x = Batch::<f64, 3>::from_column_slice(&[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0]);
        let mut y = Batch::zeros(0);
        Softmax.forward(&x, &mut y);
        let mut in_place = x.clone();
        Softmax.forward_in_place(&mut in_place);
        assert_eq!(y, in_place);
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let s: f64 = e.iter().sum();
        assert_close(&y.as_slice()[..3], &[e[0] / s, e[1] / s, e[2] / s], 1e-15, "softmax");
        // Large logits do not overflow.
        assert_eq!(&y.as_slice()[3..], &[0.5, 0.5, 0.0]);
    }

    #[test]
    fn log_softmax_is_the_log_of_softmax() {
        let x = Batch::<f64, 3>::from_column_slice(&[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0]);
        let (mut y, mut p) = (Batch::zeros(0), Batch::zeros(0));
        LogSoftmax.forward(&x, &mut y);
        Softmax.forward(&x, &mut p);
        let mut in_place = x.clone();
        LogSoftmax.forward_in_place(&mut in_place);
        assert_eq!(y, in_place);
        let logs: Vec<f64> = p.as_slice()[..3].iter().map(|v| v.ln()).collect();
        assert_close(&y.as_slice()[..3], &logs, 1e-15, "log_softmax");
        // Large logits stay finite: ln 2 below the two largest, 2000 + ln 2 below the smallest.
        let ln2 = std::f64::consts::LN_2;
        assert_close(&y.as_slice()[3..], &[-ln2, -ln2, -2000.0 - ln2], 1e-12, "log_softmax");
    }

    #[test]
    fn log_softmax_gradient_matches_finite_differences() {
        let x = Batch::<f64, 4>::from_column_slice(&[0.1, -0.3, 2.0, 0.5, 1.0, 1.5, -1.0, 0.0]);
        let c = Batch::<f64, 4>::from_column_slice(&[1.0, -2.0, 0.5, 0.3, -1.0, 0.2, 0.9, 1.4]);
        let loss = |xs: &[f64]| {
            let mut y = Batch::<f64, 4>::zeros(0);
            LogSoftmax.forward(&Batch::from_column_slice(xs), &mut y);
            y.component_mul(&c).sum()
        };
        let mut y = Batch::zeros(0);
        LogSoftmax.forward(&x, &mut y);
        let mut dx = Batch::zeros(0);
        LogSoftmax.backward(&x, &y, &c, &mut dx);
        assert_close(dx.as_slice(), &numeric_grad(x.as_slice(), loss), 1e-7, "log_softmax");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Batch::<f64, 4>::from_column_slice(&[0.1, -0.3, 2.0, 0.5, 1.0, 1.5, -1.0, 0.0]);
        let c = Batch::<f64, 4>::from_column_slice(&[1.0, -2.0, 0.5, 0.3, -1.0, 0.2, 0.9, 1.4]);
        let loss = |xs: &[f64]| {
            let mut y = Batch::<f64, 4>::zeros(0);
            Softmax.forward(&Batch::from_column_slice(xs), &mut y);
            y.component_mul(&c).sum()
        };
        let mut y = Batch::zeros(0);
        Softmax.forward(&x, &mut y);
        let mut dx = Batch::zeros(0);
        Softmax.backward(&x, &y, &c, &mut dx);
        assert_close(dx.as_slice(), &numeric_grad(x.as_slice(), loss), 1e-7, "softmax");
    }
}
