//! [`CrossEntropyOnProbabilities`]: the cross-entropy of outputs that already
//! are probabilities (a network ending in `softmax`), and [`check_pairing`],
//! which refuses a loss that would apply the network's final activation again.

use super::{argmax_hits, check_labels, check_len, Labels, Loss};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::network::Network;
use crate::tensor::{ensure_batch, Batch};

/// Probabilities are clamped to at least this before the logarithm (Keras'
/// epsilon), so a confidently wrong sample gives a large finite loss.
pub const PROBABILITY_FLOOR: f64 = 1e-7;

/// The mean cross-entropy `−log p[label]` of outputs that are probabilities
/// (PyTorch's `NLLLoss` on their logarithm, Keras'
/// `SparseCategoricalCrossentropy(from_logits=False)`), for a network that
/// ends in `softmax`. A network that ends in logits trains better with
/// [`super::SoftmaxCrossEntropy`], which is exact where this clamps
/// probabilities at [`PROBABILITY_FLOOR`].
///
/// # Examples
///
/// ```
/// use staticnet_core::loss::{CrossEntropyOnProbabilities, Loss};
/// use staticnet_core::Batch;
///
/// let p = Batch::<f64, 2>::from_column_slice(&[0.25, 0.75]);
/// let loss = CrossEntropyOnProbabilities.loss(&p, &vec![1]).unwrap();
/// assert!((loss - -(0.75f64.ln())).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrossEntropyOnProbabilities;

impl CrossEntropyOnProbabilities {
    fn check<T: Float, const N: usize>(output: &Batch<T, N>, labels: &Labels) -> Result<()> {
        check_len("cross-entropy on probabilities", output.ncols(), labels.len())?;
        check_labels(labels, N)
    }
}

/// `p` at the floor, as the loss takes it.
fn floored<T: Float>(p: T) -> T {
    p.max(T::cast(PROBABILITY_FLOOR))
}

impl<T: Float, const N: usize> Loss<T, N> for CrossEntropyOnProbabilities {
    type Target = Labels;

    fn loss(&self, output: &Batch<T, N>, labels: &Labels) -> Result<T> {
        Self::check(output, labels)?;
        let total = output.column_iter().zip(labels).fold(T::zero(), |t, (p, &l)| t - floored(p[l]).ln());
        Ok(total / T::cast(labels.len().max(1) as f64))
    }

    fn loss_and_grad(&self, output: &Batch<T, N>, labels: &Labels, grad: &mut Batch<T, N>) -> Result<T> {
        let loss = self.loss(output, labels)?;
        ensure_batch(grad, output.ncols());
        grad.fill(T::zero());
        let scale = T::one() / T::cast(labels.len().max(1) as f64);
        for (j, &l) in labels.iter().enumerate() {
            let p = output[(l, j)];
            // d(−log max(p, floor))/dp: zero where the floor holds.
            grad[(l, j)] = if p > T::cast(PROBABILITY_FLOOR) { -scale / p } else { T::zero() };
        }
        Ok(loss)
    }

    fn correct(&self, output: &Batch<T, N>, labels: &Labels) -> Option<(usize, usize)> {
        Some((argmax_hits::<T, N>(output.as_slice(), labels), labels.len()))
    }

    fn validate(&self, labels: &Labels) -> Result<()> {
        check_labels(labels, N)
    }
}

/// Refuses a network that ends in the activation the loss applies itself
/// (`softmax` then `SoftmaxCrossEntropy`): it would train on the activation
/// applied twice, badly and without a word ([`Error::ActivationTwice`]).
pub fn check_pairing<T, N, L, const IN: usize, const OUT: usize>() -> Result<()>
where
    T: Float,
    N: Network<T, IN, OUT>,
    L: Loss<T, OUT>,
{
    match (N::FINAL_ACTIVATION, L::APPLIES) {
        (Some(activation), Some(applied)) if activation == applied => {
            let loss = std::any::type_name::<L>();
            let loss = loss.split('<').next().and_then(|path| path.rsplit("::").next()).unwrap_or(loss);
            Err(Error::ActivationTwice { activation, loss: loss.to_string() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    #[test]
    fn the_gradient_agrees_with_finite_differences() {
        let p = Batch::<f64, 3>::from_column_slice(&[0.2, 0.5, 0.3, 0.6, 0.3, 0.1]);
        let labels = vec![1, 2];
        let mut grad = Batch::zeros(0);
        let loss = CrossEntropyOnProbabilities.loss_and_grad(&p, &labels, &mut grad).unwrap();
        assert!((loss - -(0.5f64.ln() + 0.1f64.ln()) / 2.0).abs() < 1e-12);
        let numeric = numeric_grad(p.as_slice(), |v| {
            CrossEntropyOnProbabilities.loss(&Batch::<f64, 3>::from_column_slice(v), &labels).unwrap()
        });
        assert_close(grad.as_slice(), &numeric, 1e-6, "gradient");
    }

    #[test]
    fn a_zero_probability_gives_a_finite_loss_and_labels_are_checked() {
        let p = Batch::<f32, 2>::from_column_slice(&[1.0, 0.0]);
        let loss: f32 = CrossEntropyOnProbabilities.loss(&p, &vec![1]).unwrap();
        assert!((loss - 16.118_096).abs() < 1e-3, "{loss}");
        assert!(matches!(
            CrossEntropyOnProbabilities.loss(&p, &vec![2]),
            Err(Error::LabelOutOfRange { label: 2, sample: 0, classes: 2 })
        ));
    }
}
