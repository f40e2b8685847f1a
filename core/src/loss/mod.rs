//! Losses: a scalar to minimise and its gradient with respect to the network's output.
//!
//! Reductions follow PyTorch's defaults, so values compare one to one:
//! cross-entropy averages over samples, MSE and BCE over all elements.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernels::cross_entropy::softmax_cross_entropy;
use crate::kernels::Isa;
use crate::layers::softmax_into;
use crate::tensor::{ensure_batch, Batch};

mod probabilities;
mod sequence;

pub use probabilities::{check_pairing, CrossEntropyOnProbabilities, PROBABILITY_FLOOR};
pub use sequence::{SequenceCrossEntropy, StepLabels};

/// What a loss compares the network's output with, stored for a whole
/// dataset and gathered into mini-batches by index.
pub trait Targets: Sized + Send {
    /// An empty collection, to gather into.
    fn empty() -> Self;
    /// The number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies the samples at `indices` into `out`, replacing its contents.
    /// Indices come from the trainer and are always in range.
    fn gather_into(&self, indices: &[usize], out: &mut Self);
}

/// Class indices, one per sample.
pub type Labels = Vec<usize>;

/// Per-sample targets kept in a `Vec`: [`Labels`], [`StepLabels`] (a class
/// at every step), or any other plain value per sample.
impl<L: Copy + Send> Targets for Vec<L> {
    fn empty() -> Self {
        Vec::new()
    }
    fn len(&self) -> usize {
        self.len()
    }
    fn gather_into(&self, indices: &[usize], out: &mut Self) {
        out.clear();
        out.extend(indices.iter().map(|&i| self[i]));
    }
}

impl<T: Float, const N: usize> Targets for Batch<T, N> {
    fn empty() -> Self {
        Batch::zeros(0)
    }
    fn len(&self) -> usize {
        self.ncols()
    }
    fn gather_into(&self, indices: &[usize], out: &mut Self) {
        ensure_batch(out, indices.len());
        for (k, &i) in indices.iter().enumerate() {
            out.column_mut(k).copy_from(&self.column(i));
        }
    }
}

/// A loss over outputs of `N` features.
pub trait Loss<T: Float, const N: usize> {
    /// What the output is compared with.
    type Target: Targets;

    /// The activation the loss applies to the outputs itself (`softmax` for
    /// [`SoftmaxCrossEntropy`], `sigmoid` for [`BinaryCrossEntropy`]): the
    /// trainer and [`crate::train::evaluate`] refuse a network whose
    /// [`crate::Network::FINAL_ACTIVATION`] is the same, which would apply
    /// it twice ([`crate::Error::ActivationTwice`]).
    const APPLIES: Option<&'static str> = None;

    /// The loss of a batch.
    fn loss(&self, output: &Batch<T, N>, target: &Self::Target) -> Result<T>;

    /// The loss of a batch, and its gradient with respect to `output` written to `grad`.
    fn loss_and_grad(&self, output: &Batch<T, N>, target: &Self::Target, grad: &mut Batch<T, N>)
        -> Result<T>;

    /// How many of the batch's predictions are right, out of how many; `None`
    /// where accuracy means nothing (regression).
    fn correct(&self, output: &Batch<T, N>, target: &Self::Target) -> Option<(usize, usize)> {
        let _ = (output, target);
        None
    }

    /// Checks targets once before training, so errors surface before the first step.
    fn validate(&self, target: &Self::Target) -> Result<()> {
        let _ = target;
        Ok(())
    }
}

fn check_len(what: &str, outputs: usize, targets: usize) -> Result<()> {
    if outputs == targets {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: format!("{what}: outputs vs targets"),
            left: outputs,
            right: targets,
        })
    }
}

/// Refuses a NaN or infinite target, naming its sample (column) and element (row).
/// Losses call it when their sum is not finite, so valid batches pay nothing.
fn check_finite_targets<T: Float, const N: usize>(what: &str, target: &Batch<T, N>) -> Result<()> {
    match target.iter().position(|t| !t.is_finite()) {
        Some(i) => Err(Error::InvalidConfig(format!(
            "{what} target {} at sample {}, element {} is not finite",
            target[i],
            i / N,
            i % N
        ))),
        None => Ok(()),
    }
}

/// Softmax followed by cross-entropy, on logits, with class-index labels.
///
/// Fused: the loss is `logsumexp(z) − z_label`, computed after shifting by the
/// maximum so it stays finite for logits of any size, and the gradient is
/// `(softmax(z) − onehot(label)) / batch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftmaxCrossEntropy;

impl SoftmaxCrossEntropy {
    fn check<T: Float, const N: usize>(output: &Batch<T, N>, labels: &Labels) -> Result<()> {
        check_len("softmax cross-entropy", output.ncols(), labels.len())?;
        Loss::<T, N>::validate(&SoftmaxCrossEntropy, labels)
    }

    /// [`Loss::loss_and_grad`] with the kernels of level `isa` (f32 only; the
    /// portable level and f64 take the generic code of [`cross_entropy_at`]).
    fn loss_and_grad_at<T: Float, const N: usize>(
        isa: Isa,
        output: &Batch<T, N>,
        labels: &Labels,
        grad: &mut Batch<T, N>,
    ) -> Result<T> {
        Self::check(output, labels)?;
        ensure_batch(grad, output.ncols());
        Ok(cross_entropy_at::<T, N>(isa, output.as_slice(), grad.as_mut_slice(), labels))
    }
}

/// The mean softmax cross-entropy of the rows of `z` (`N` logits each, one
/// label each, in range) and its gradient into `g`, with the kernels of level
/// `isa` for f32. Shared by [`SoftmaxCrossEntropy`] and the per-step
/// [`SequenceCrossEntropy`], whose steps are rows like samples.
fn cross_entropy_at<T: Float, const N: usize>(isa: Isa, z: &[T], g: &mut [T], labels: &[usize]) -> T {
    let scale = T::one() / T::cast(labels.len().max(1) as f64);
    if let (Some(z), Some(g)) = (T::f32s(z), T::f32s_mut(g)) {
        if let Some(total) = softmax_cross_entropy::<N>(isa, z, g, labels, scale.as_f64() as f32) {
            return T::cast(total as f64);
        }
    }
    let mut total = T::zero();
    for ((z, g), &label) in z.chunks_exact(N).zip(g.chunks_exact_mut(N)).zip(labels) {
        // One pass of exponentials gives the softmax and the log-sum-exp; the
        // loss comes from logits, not log(p) (a saturated softmax would give log(0)).
        let lse = softmax_into(z, g);
        total += lse - z[label];
        g.iter_mut().for_each(|v| *v *= scale);
        g[label] -= scale;
    }
    total * scale
}

/// The mean softmax cross-entropy of the rows of `z` (`N` logits each), without a gradient.
fn cross_entropy<T: Float, const N: usize>(z: &[T], labels: &[usize]) -> T {
    let total = z.chunks_exact(N).zip(labels).fold(T::zero(), |t, (z, &l)| t + logsumexp(z) - z[l]);
    total / T::cast(labels.len().max(1) as f64)
}

/// How many rows of `z` (`N` logits each) have their largest logit at the label.
fn argmax_hits<T: Float, const N: usize>(z: &[T], labels: &[usize]) -> usize {
    let argmax = |z: &[T]| (0..z.len()).fold(0, |best, i| if z[i] > z[best] { i } else { best });
    z.chunks_exact(N).zip(labels).filter(|(z, &l)| argmax(z) == l).count()
}

/// The first label `>= classes`, as the error naming it and its position.
fn check_labels(labels: &[usize], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l >= classes) {
        Some(sample) => Err(Error::LabelOutOfRange { label: labels[sample], sample, classes }),
        None => Ok(()),
    }
}

impl<T: Float, const N: usize> Loss<T, N> for SoftmaxCrossEntropy {
    type Target = Labels;
    const APPLIES: Option<&'static str> = Some("softmax");

    fn loss(&self, output: &Batch<T, N>, labels: &Labels) -> Result<T> {
        Self::check(output, labels)?;
        Ok(cross_entropy::<T, N>(output.as_slice(), labels))
    }

    fn loss_and_grad(&self, output: &Batch<T, N>, labels: &Labels, grad: &mut Batch<T, N>) -> Result<T> {
        Self::loss_and_grad_at(Isa::active(), output, labels, grad)
    }

    fn correct(&self, output: &Batch<T, N>, labels: &Labels) -> Option<(usize, usize)> {
        Some((argmax_hits::<T, N>(output.as_slice(), labels), labels.len()))
    }

    fn validate(&self, labels: &Labels) -> Result<()> {
        check_labels(labels, N)
    }
}

/// `log Σ e^{z_i}`, shifted by the maximum so it is finite for logits of any size.
fn logsumexp<T: Float>(z: &[T]) -> T {
    let max = z.iter().copied().fold(T::cast(f64::NEG_INFINITY), |a, b| a.max(b));
    max + z.iter().map(|&v| (v - max).exp()).fold(T::zero(), |a, b| a + b).ln()
}

/// Mean squared error, averaged over every element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeanSquaredError;

impl<T: Float, const N: usize> Loss<T, N> for MeanSquaredError {
    type Target = Batch<T, N>;

    fn loss(&self, output: &Batch<T, N>, target: &Batch<T, N>) -> Result<T> {
        check_len("mean squared error", output.ncols(), target.ncols())?;
        let sum =
            output.iter().zip(target.iter()).map(|(&o, &t)| (o - t) * (o - t)).fold(T::zero(), |a, b| a + b);
        if !sum.is_finite() {
            check_finite_targets("mean squared error", target)?;
        }
        Ok(sum / T::cast(output.len().max(1) as f64))
    }

    fn loss_and_grad(&self, output: &Batch<T, N>, target: &Batch<T, N>, grad: &mut Batch<T, N>) -> Result<T> {
        let loss = self.loss(output, target)?;
        ensure_batch(grad, output.ncols());
        let scale = T::cast(2.0 / output.len().max(1) as f64);
        for ((g, &o), &t) in grad.iter_mut().zip(output.iter()).zip(target.iter()) {
            *g = scale * (o - t);
        }
        Ok(loss)
    }

    fn validate(&self, target: &Batch<T, N>) -> Result<()> {
        check_finite_targets("mean squared error", target)
    }
}

/// Binary cross-entropy on logits, averaged over every element; targets are
/// probabilities in [0, 1] (usually 0 or 1). Training reports an accuracy only
/// for one output per sample (a binary classifier), not per pixel or label.
///
/// Uses `max(z, 0) − z·t + log(1 + e^{−|z|})`, which never exponentiates a
/// positive number, so it is finite for logits of any size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinaryCrossEntropy;

impl<T: Float, const N: usize> Loss<T, N> for BinaryCrossEntropy {
    type Target = Batch<T, N>;
    const APPLIES: Option<&'static str> = Some("sigmoid");

    fn loss(&self, output: &Batch<T, N>, target: &Batch<T, N>) -> Result<T> {
        check_len("binary cross-entropy", output.ncols(), target.ncols())?;
        let sum = output
            .iter()
            .zip(target.iter())
            .map(|(&z, &t)| z.max(T::zero()) - z * t + (-z.abs()).exp().ln_1p())
            .fold(T::zero(), |a, b| a + b);
        if !sum.is_finite() {
            check_finite_targets("binary cross-entropy", target)?;
        }
        Ok(sum / T::cast(output.len().max(1) as f64))
    }

    fn loss_and_grad(&self, output: &Batch<T, N>, target: &Batch<T, N>, grad: &mut Batch<T, N>) -> Result<T> {
        let loss = self.loss(output, target)?;
        ensure_batch(grad, output.ncols());
        let scale = T::one() / T::cast(output.len().max(1) as f64);
        for ((g, &z), &t) in grad.iter_mut().zip(output.iter()).zip(target.iter()) {
            *g = scale * (crate::layers::sigmoid(z) - t);
        }
        Ok(loss)
    }

    /// The fraction of samples on the right side of 0.5 for a binary
    /// classifier (one output, `N == 1`); `None` for several outputs, whose
    /// per-element "accuracy" (pixels of an autoencoder, say) would mislead.
    /// Multi-label outputs: [`crate::metrics::binary_accuracy`].
    fn correct(&self, output: &Batch<T, N>, target: &Batch<T, N>) -> Option<(usize, usize)> {
        if N != 1 {
            return None;
        }
        let half = T::cast(0.5);
        let right = output.iter().zip(target.iter()).filter(|(&z, &t)| (z > T::zero()) == (t > half)).count();
        Some((right, output.len()))
    }

    fn validate(&self, target: &Batch<T, N>) -> Result<()> {
        match target.iter().position(|&t| !(t >= T::zero() && t <= T::one())) {
            Some(i) => Err(Error::InvalidConfig(format!(
                "binary cross-entropy target {} at element {i} is outside [0, 1]",
                target[i]
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    fn grad_check<L: Loss<f64, 3>>(loss: L, out: &Batch<f64, 3>, target: &L::Target) {
        let mut grad = Batch::zeros(0);
        loss.loss_and_grad(out, target, &mut grad).unwrap();
        let numeric =
            numeric_grad(out.as_slice(), |o| loss.loss(&Batch::from_column_slice(o), target).unwrap());
        assert_close(grad.as_slice(), &numeric, 1e-7, "loss gradient");
    }

    fn outputs() -> Batch<f64, 3> {
        Batch::from_column_slice(&[0.5, -1.0, 2.0, 0.0, 0.3, -0.7])
    }

    #[test]
    fn cross_entropy_by_hand() {
        // Equal logits: −log(1/3) whatever the label.
        let z = Batch::<f64, 3>::zeros(2);
        let l = SoftmaxCrossEntropy.loss(&z, &vec![0, 2]).unwrap();
        assert!((l - 3f64.ln()).abs() < 1e-15);
        let mut g = Batch::zeros(0);
        SoftmaxCrossEntropy.loss_and_grad(&z, &vec![0, 2], &mut g).unwrap();
        // (1/3 − 1) / 2 at the label, (1/3) / 2 elsewhere.
        assert_close(g.column(0).as_slice(), &[-1.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0], 1e-15, "ce grad");
        grad_check(SoftmaxCrossEntropy, &outputs(), &vec![2, 1]);
        assert_eq!(SoftmaxCrossEntropy.correct(&outputs(), &vec![2, 1]), Some((2, 2)));
    }

    #[test]
    fn cross_entropy_is_finite_for_huge_logits() {
        for isa in crate::kernels::tested_levels("softmax cross-entropy") {
            let z = Batch::<f32, 3>::from_column_slice(&[1e4, -1e4, 0.0]);
            let mut g = Batch::zeros(0);
            let right = SoftmaxCrossEntropy::loss_and_grad_at(isa, &z, &vec![0], &mut g).unwrap();
            assert_eq!(right, 0.0, "{isa:?}");
            let wrong = SoftmaxCrossEntropy::loss_and_grad_at(isa, &z, &vec![1], &mut g).unwrap();
            assert_eq!(wrong, 2e4, "{isa:?}");
            assert!(g.iter().all(|v| v.is_finite()), "{isa:?}");
            assert_eq!(g.as_slice(), &[1.0, -1.0, 0.0], "{isa:?}");
        }
    }

    #[test]
    fn cross_entropy_rejects_bad_labels_and_lengths() {
        let z = Batch::<f64, 3>::zeros(2);
        assert!(matches!(
            SoftmaxCrossEntropy.loss(&z, &vec![0, 3]),
            Err(Error::LabelOutOfRange { label: 3, .. })
        ));
        assert!(matches!(SoftmaxCrossEntropy.loss(&z, &vec![0]), Err(Error::LengthMismatch { .. })));
    }

    #[test]
    fn mse_by_hand() {
        let out = Batch::<f64, 3>::from_column_slice(&[1.0, 2.0, 3.0]);
        let target = Batch::<f64, 3>::from_column_slice(&[1.0, 0.0, 6.0]);
        // (0 + 4 + 9) / 3
        assert!((MeanSquaredError.loss(&out, &target).unwrap() - 13.0 / 3.0).abs() < 1e-15);
        grad_check(MeanSquaredError, &outputs(), &Batch::from_column_slice(&[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]));
        assert_eq!(MeanSquaredError.correct(&out, &target), None);
    }

    #[test]
    fn binary_cross_entropy_by_hand_and_at_the_extremes() {
        let z = Batch::<f64, 3>::from_column_slice(&[0.0, 2.0, -1.0]);
        let t = Batch::<f64, 3>::from_column_slice(&[1.0, 0.0, 1.0]);
        // mean of ln 2, −ln(1 − σ(2)) = ln(1 + e²), −ln σ(−1) = ln(1 + e)
        let expected = (2f64.ln() + (1.0 + 2f64.exp()).ln() + (1.0 + 1f64.exp()).ln()) / 3.0;
        assert!((BinaryCrossEntropy.loss(&z, &t).unwrap() - expected).abs() < 1e-15);
        grad_check(
            BinaryCrossEntropy,
            &outputs(),
            &Batch::from_column_slice(&[0.0, 1.0, 0.3, 1.0, 1.0, 0.0]),
        );
        let huge = Batch::<f32, 3>::from_column_slice(&[1e4, -1e4, 1e4]);
        let t = Batch::<f32, 3>::from_column_slice(&[1.0, 0.0, 0.0]);
        let mut g = Batch::zeros(0);
        let l = BinaryCrossEntropy.loss_and_grad(&huge, &t, &mut g).unwrap();
        assert!((l - 1e4 / 3.0).abs() < 1e-2, "{l}");
        assert!(g.iter().all(|v| v.is_finite()));
        // Three outputs per sample (pixels, labels): no accuracy; one output (a binary classifier): one.
        assert_eq!(BinaryCrossEntropy.correct(&huge, &t), None);
        let one = Batch::<f32, 1>::from_column_slice(&[2.0, -1.0, 0.5]);
        let right = Batch::<f32, 1>::from_column_slice(&[1.0, 1.0, 0.0]);
        assert_eq!(BinaryCrossEntropy.correct(&one, &right), Some((1, 3)));
        assert!(Loss::<f32, 3>::validate(&BinaryCrossEntropy, &Batch::from_column_slice(&[0.0, 1.5, 0.0]))
            .is_err());
    }

    /// The f32 softmax cross-entropy at level `isa` (vectorised, several
    /// samples at a time, above the portable level) agrees with f64, tails of
    /// the registers included.
    fn f32_agrees<const N: usize>(isa: Isa, batch: usize, spread: f64) {
        let out = Batch::<f64, N>::from_fn(batch, |i, j| ((i * 13 + j * 7) as f64 * 0.77).sin() * spread);
        let labels: Labels = (0..batch).map(|j| (j * 5) % N).collect();
        let (mut g64, mut g32) = (Batch::zeros(0), Batch::zeros(0));
        let l64 = SoftmaxCrossEntropy.loss_and_grad(&out, &labels, &mut g64).unwrap();
        let out32 = out.map(|v| v as f32);
        let l32 = SoftmaxCrossEntropy::loss_and_grad_at(isa, &out32, &labels, &mut g32).unwrap();
        assert_close(&[l32 as f64], &[l64], 1e-5, "loss");
        let g32: Vec<f64> = g32.iter().map(|&v| v as f64).collect();
        assert!(
            g32.iter().zip(g64.iter()).all(|(a, b)| (a - b).abs() <= 1e-6),
            "{isa:?} {spread}: gradients differ"
        );
    }

    #[test]
    fn f32_softmax_cross_entropy_agrees_with_f64_at_every_level() {
        for isa in crate::kernels::tested_levels("softmax cross-entropy") {
            f32_agrees::<3>(isa, 37, 2.0);
            f32_agrees::<10>(isa, 5, 30.0);
            f32_agrees::<10>(isa, 64, 1e4);
            f32_agrees::<1>(isa, 17, 1.0);
            // NaN logits give a NaN loss, as in f64.
            let out = Batch::<f32, 3>::from_column_slice(&[0.0, f32::NAN, 1.0, 2.0, 3.0, 4.0]);
            let mut g = Batch::zeros(0);
            let loss = SoftmaxCrossEntropy::loss_and_grad_at(isa, &out, &vec![0, 1], &mut g).unwrap();
            assert!(loss.is_nan(), "{isa:?}");
        }
    }
}
