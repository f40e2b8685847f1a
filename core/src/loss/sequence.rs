//! Softmax cross-entropy at every step of a sequence: a language model's loss.
//!
//! A network with output `[STEPS, CLASSES]` gives each sample `STEPS` rows of
//! logits, steps first (row-major, like PyTorch's `batch_first`); the loss is
//! the mean over all `batch · STEPS` rows, as PyTorch's `F.cross_entropy` on
//! the logits flattened to `[batch · STEPS, CLASSES]`.

use super::{argmax_hits, check_len, cross_entropy, cross_entropy_at, Loss};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernels::Isa;
use crate::tensor::{ensure_batch, Batch};

/// Class indices at every step: one `[usize; STEPS]` per sample (the next
/// token at each position, for a language model).
pub type StepLabels<const STEPS: usize> = Vec<[usize; STEPS]>;

/// Softmax cross-entropy at every one of `STEPS` steps over `CLASSES`
/// classes, averaged over every step of every sample.
///
/// It implements [`Loss`] for outputs of `N = STEPS · CLASSES` values, a
/// network ending in `[STEPS, CLASSES]`. Accuracy counts steps, not samples.
///
/// ```
/// use staticnet_core::loss::{Loss, SequenceCrossEntropy};
/// use staticnet_core::tensor::Batch;
///
/// // One sample, 2 steps of 3 classes: equal logits cost ln 3 at each step.
/// let logits = Batch::<f64, 6>::zeros(1);
/// let loss = SequenceCrossEntropy::<2, 3>.loss(&logits, &vec![[0, 2]]).unwrap();
/// assert!((loss - 3f64.ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceCrossEntropy<const STEPS: usize, const CLASSES: usize>;

impl<const STEPS: usize, const CLASSES: usize> SequenceCrossEntropy<STEPS, CLASSES> {
    /// The sizes agree (a compile-time check), the batch and the labels have
    /// the same length and every label is in range; the labels flattened.
    fn check<'a, T: Float, const N: usize>(
        output: &Batch<T, N>,
        labels: &'a StepLabels<STEPS>,
    ) -> Result<&'a [usize]> {
        const { assert!(N == STEPS * CLASSES, "a sequence loss over [STEPS, CLASSES] outputs") };
        check_len("sequence cross-entropy", output.ncols(), labels.len())?;
        validate_steps(labels, CLASSES)?;
        Ok(labels.as_flattened())
    }

    /// [`Loss::loss_and_grad`] with the kernels of level `isa`.
    fn loss_and_grad_at<T: Float, const N: usize>(
        isa: Isa,
        output: &Batch<T, N>,
        labels: &StepLabels<STEPS>,
        grad: &mut Batch<T, N>,
    ) -> Result<T> {
        let flat = Self::check(output, labels)?;
        ensure_batch(grad, output.ncols());
        Ok(cross_entropy_at::<T, CLASSES>(isa, output.as_slice(), grad.as_mut_slice(), flat))
    }
}

impl<T: Float, const N: usize, const STEPS: usize, const CLASSES: usize> Loss<T, N>
    for SequenceCrossEntropy<STEPS, CLASSES>
{
    type Target = StepLabels<STEPS>;
    const APPLIES: Option<&'static str> = Some("softmax");

    fn loss(&self, output: &Batch<T, N>, labels: &StepLabels<STEPS>) -> Result<T> {
        let flat = Self::check(output, labels)?;
        Ok(cross_entropy::<T, CLASSES>(output.as_slice(), flat))
    }

    fn loss_and_grad(
        &self,
        output: &Batch<T, N>,
        labels: &StepLabels<STEPS>,
        grad: &mut Batch<T, N>,
    ) -> Result<T> {
        Self::loss_and_grad_at(Isa::active(), output, labels, grad)
    }

    fn correct(&self, output: &Batch<T, N>, labels: &StepLabels<STEPS>) -> Option<(usize, usize)> {
        let flat = labels.as_flattened();
        Some((argmax_hits::<T, CLASSES>(output.as_slice(), flat), flat.len()))
    }

    fn validate(&self, labels: &StepLabels<STEPS>) -> Result<()> {
        validate_steps(labels, CLASSES)
    }
}

/// The first label `>= classes`, as the error naming its sample and step.
fn validate_steps<const STEPS: usize>(labels: &StepLabels<STEPS>, classes: usize) -> Result<()> {
    let flat = labels.as_flattened();
    match flat.iter().position(|&l| l >= classes) {
        Some(i) => {
            Err(Error::StepLabelOutOfRange { label: flat[i], sample: i / STEPS, step: i % STEPS, classes })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};
    use crate::loss::SoftmaxCrossEntropy;
    use crate::loss::Targets;

    /// Logits of 3 samples of 4 steps of 5 classes, all different.
    fn logits() -> Batch<f64, 20> {
        Batch::from_fn(3, |i, j| ((i * 7 + j * 31) as f64 * 0.37).sin() * 3.0)
    }

    fn labels() -> StepLabels<4> {
        vec![[0, 4, 2, 2], [1, 1, 3, 0], [4, 3, 2, 1]]
    }

    #[test]
    fn equals_the_per_sample_loss_on_the_flattened_steps() {
        // PyTorch's definition: cross-entropy over [batch · STEPS, CLASSES].
        let flat = Batch::<f64, 5>::from_column_slice(logits().as_slice());
        let expected = SoftmaxCrossEntropy.loss(&flat, &labels().as_flattened().to_vec()).unwrap();
        let loss = SequenceCrossEntropy::<4, 5>.loss(&logits(), &labels()).unwrap();
        assert_close(&[loss], &[expected], 1e-15, "loss");
        let mut grad = Batch::zeros(0);
        let with_grad = SequenceCrossEntropy::<4, 5>.loss_and_grad(&logits(), &labels(), &mut grad).unwrap();
        assert_close(&[with_grad], &[expected], 1e-15, "loss with gradient");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut grad = Batch::zeros(0);
        SequenceCrossEntropy::<4, 5>.loss_and_grad(&logits(), &labels(), &mut grad).unwrap();
        let numeric = numeric_grad(logits().as_slice(), |z| {
            SequenceCrossEntropy::<4, 5>.loss(&Batch::<f64, 20>::from_column_slice(z), &labels()).unwrap()
        });
        assert_close(grad.as_slice(), &numeric, 1e-7, "sequence cross-entropy gradient");
    }

    #[test]
    fn f32_agrees_with_f64_at_every_level() {
        let mut g64 = Batch::zeros(0);
        let l64 = SequenceCrossEntropy::<4, 5>.loss_and_grad(&logits(), &labels(), &mut g64).unwrap();
        for isa in crate::kernels::tested_levels("sequence cross-entropy") {
            let mut g32 = Batch::zeros(0);
            let z = logits().map(|v| v as f32);
            let l32 = SequenceCrossEntropy::<4, 5>::loss_and_grad_at(isa, &z, &labels(), &mut g32).unwrap();
            assert_close(&[l32], &[l64], 1e-6, "f32 loss");
            assert_close(g32.as_slice(), g64.as_slice(), 1e-6, "f32 gradient");
        }
    }

    #[test]
    fn accuracy_counts_steps() {
        // Labels at each step's arg-max: all 12 steps right; one changed: 11.
        let z = logits();
        let best: Vec<usize> =
            z.as_slice().chunks(5).map(|r| (0..5).fold(0, |b, i| if r[i] > r[b] { i } else { b })).collect();
        let mut right: StepLabels<4> = best.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
        assert_eq!(SequenceCrossEntropy::<4, 5>.correct(&z, &right), Some((12, 12)));
        right[1][2] = (right[1][2] + 1) % 5;
        assert_eq!(SequenceCrossEntropy::<4, 5>.correct(&z, &right), Some((11, 12)));
    }

    #[test]
    fn refuses_labels_out_of_range_and_wrong_lengths() {
        let mut bad = labels();
        bad[2][3] = 5;
        let err = SequenceCrossEntropy::<4, 5>.loss(&logits(), &bad).unwrap_err();
        assert!(
            matches!(err, Error::StepLabelOutOfRange { label: 5, sample: 2, step: 3, classes: 5 }),
            "{err}"
        );
        assert!(Loss::<f64, 20>::validate(&SequenceCrossEntropy::<4, 5>, &bad).is_err());
        let short = labels()[..2].to_vec();
        assert!(matches!(
            SequenceCrossEntropy::<4, 5>.loss(&logits(), &short),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn gathers_whole_samples() {
        let mut out = StepLabels::<4>::empty();
        labels().gather_into(&[2, 0], &mut out);
        assert_eq!(out, vec![[4, 3, 2, 1], [0, 4, 2, 2]]);
    }
}
