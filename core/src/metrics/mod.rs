//! Classification metrics beyond accuracy: a [`ConfusionMatrix`], per-class
//! precision, recall and F1 ([`classification_report`], printed like
//! scikit-learn's), [`top_k_accuracy`], and
//! [`binary_accuracy`] for multi-label outputs.
//!
//! They take a network's outputs (logits or probabilities: only their order
//! matters) and the true labels; [`confusion_matrix`] runs a
//! network over a dataset in batches and fills the matrix.
//!
//! ```
//! # use staticnet_core::{Batch, metrics::ConfusionMatrix};
//! // Three samples' scores over two classes; the last one is wrong.
//! let out = Batch::<f32, 2>::from_column_slice(&[0.9, 0.1, 0.2, 0.8, 0.7, 0.3]);
//! let cm = ConfusionMatrix::from_outputs(&out, &[0, 1, 1])?;
//! assert_eq!(cm.count(1, 0), 1); // one sample of class 1 predicted as 0
//! assert_eq!(cm.recall(1), 0.5);
//! println!("{}", cm.report());
//! # Ok::<(), staticnet_core::Error>(())
//! ```

mod report;

pub use report::{ClassScores, ClassificationReport};

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Labels;
use crate::network::Network;
use crate::tensor::Batch;

/// Counts of (true class, predicted class) pairs over `classes` classes:
/// rows are true classes, columns predictions, as in scikit-learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// `classes × classes`, row-major: `counts[actual * classes + predicted]`.
    counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// An empty matrix of `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    /// Counts one sample of class `actual` predicted as `predicted`.
    ///
    /// Errors: either class not below the number of classes ([`Error::LabelOutOfRange`], sample 0).
    pub fn add(&mut self, actual: usize, predicted: usize) -> Result<()> {
        if let Some(&label) = [actual, predicted].iter().find(|&&c| c >= self.classes) {
            return Err(Error::LabelOutOfRange { label, sample: 0, classes: self.classes });
        }
        self.counts[actual * self.classes + predicted] += 1;
        Ok(())
    }

    /// The matrix of true `labels` against `predicted` classes, over `classes` classes.
    ///
    /// Errors: lengths that differ ([`Error::LengthMismatch`]), a class out of
    /// range ([`Error::LabelOutOfRange`], naming the sample).
    pub fn from_labels(labels: &[usize], predicted: &[usize], classes: usize) -> Result<Self> {
        check_lengths(labels.len(), predicted.len())?;
        let mut m = ConfusionMatrix::new(classes);
        for (sample, (&a, &p)) in labels.iter().zip(predicted).enumerate() {
            m.add(a, p).map_err(|_| Error::LabelOutOfRange { label: a.max(p), sample, classes })?;
        }
        Ok(m)
    }

    /// The matrix of true `labels` against each sample's highest output (the
    /// first one on ties), over `K` classes.
    pub fn from_outputs<T: Float, const K: usize>(outputs: &Batch<T, K>, labels: &[usize]) -> Result<Self> {
        let mut m = ConfusionMatrix::new(K);
        m.add_outputs(outputs, labels)?;
        Ok(m)
    }

    /// Adds a batch of outputs and their labels (see [`ConfusionMatrix::from_outputs`]).
    pub fn add_outputs<T: Float, const K: usize>(
        &mut self,
        outputs: &Batch<T, K>,
        labels: &[usize],
    ) -> Result<()> {
        check_lengths(labels.len(), outputs.ncols())?;
        if let Some(sample) = labels.iter().position(|&l| l >= self.classes) {
            return Err(Error::LabelOutOfRange { label: labels[sample], sample, classes: self.classes });
        }
        for (column, &label) in outputs.column_iter().zip(labels) {
            self.add(label, argmax(column.as_slice()))?;
        }
        Ok(())
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// How many samples of class `actual` were predicted as `predicted` (0 out of range).
    pub fn count(&self, actual: usize, predicted: usize) -> usize {
        match actual < self.classes && predicted < self.classes {
            true => self.counts[actual * self.classes + predicted],
            false => 0,
        }
    }

    /// Every sample counted.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Samples whose true class is `class` (its row's sum): its "support".
    pub fn support(&self, class: usize) -> usize {
        (0..self.classes).map(|p| self.count(class, p)).sum()
    }

    /// Samples predicted as `class` (its column's sum).
    pub fn predicted(&self, class: usize) -> usize {
        (0..self.classes).map(|a| self.count(a, class)).sum()
    }

    /// The fraction on the diagonal (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        ratio((0..self.classes).map(|c| self.count(c, c)).sum(), self.total())
    }

    /// Of the samples predicted as `class`, the fraction that are (0 if none
    /// were predicted, as scikit-learn's `zero_division=0`).
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.count(class, class), self.predicted(class))
    }

    /// Of the samples of `class`, the fraction predicted as such (0 if there are none).
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.count(class, class), self.support(class))
    }

    /// The harmonic mean of precision and recall (0 if both are 0).
    pub fn f1(&self, class: usize) -> f64 {
        let (p, r) = (self.precision(class), self.recall(class));
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }

    /// Per-class precision, recall, F1 and support, with averages; classes
    /// named by number (see [`ClassificationReport::named`]).
    pub fn report(&self) -> ClassificationReport {
        ClassificationReport::from_matrix(self)
    }
}

/// The confusion matrix of `net`'s predictions (each sample's highest output)
/// against the labels of `data`, computed in batches of `batch_size` in
/// inference mode; [`ConfusionMatrix::report`] gives per-class precision,
/// recall and F1.
///
/// Errors: a zero batch size ([`Error::InvalidConfig`]), a label not below
/// `OUT` ([`Error::LabelOutOfRange`]), an input the network refuses.
pub fn confusion_matrix<T, N, const IN: usize, const OUT: usize>(
    net: &N,
    data: &Dataset<T, IN, Labels>,
    batch_size: usize,
) -> Result<ConfusionMatrix>
where
    T: Float,
    N: Network<T, IN, OUT>,
{
    if batch_size == 0 {
        return Err(Error::InvalidConfig("batch size must be at least 1".into()));
    }
    N::check_input(data.features())?;
    if let Some(sample) = data.targets().iter().position(|&l| l >= OUT) {
        return Err(Error::LabelOutOfRange { label: data.targets()[sample], sample, classes: OUT });
    }
    let indices: Vec<usize> = (0..data.len()).collect();
    let (mut batch, mut trace) = (MiniBatch::new(), N::Trace::default());
    let mut matrix = ConfusionMatrix::new(OUT);
    for chunk in indices.chunks(batch_size) {
        batch.fill_from(data, chunk);
        matrix.add_outputs(net.infer(&batch.features, &mut trace), &batch.targets)?;
    }
    Ok(matrix)
}

/// Per-class precision, recall, F1 and support of `outputs` (each sample's
/// highest one is its prediction) against `labels`, as scikit-learn's
/// `classification_report`; print it with `{}` (or `{:.4}` for 4 digits).
///
/// ```
/// # use staticnet_core::{Batch, metrics::classification_report};
/// let out = Batch::<f32, 2>::from_column_slice(&[0.9, 0.1, 0.2, 0.8, 0.7, 0.3]);
/// let report = classification_report(&out, &[0, 1, 1])?;
/// assert_eq!((report.classes[0].precision, report.classes[1].recall), (0.5, 0.5));
/// # Ok::<(), staticnet_core::Error>(())
/// ```
pub fn classification_report<T: Float, const K: usize>(
    outputs: &Batch<T, K>,
    labels: &[usize],
) -> Result<ClassificationReport> {
    Ok(ConfusionMatrix::from_outputs(outputs, labels)?.report())
}

/// The fraction of samples whose true class is among the `k` highest outputs,
/// as scikit-learn's `top_k_accuracy_score`: a sample counts when fewer than
/// `k` classes score strictly higher than its own (ties count in its favour);
/// a NaN score for its own class never counts. 0 for no samples.
///
/// Errors: `k` of 0 or above the number of classes ([`Error::InvalidConfig`]),
/// lengths that differ, a label out of range.
///
/// ```
/// # use staticnet_core::{Batch, metrics::top_k_accuracy};
/// let out = Batch::<f32, 3>::from_column_slice(&[0.5, 0.3, 0.2, 0.1, 0.2, 0.7]);
/// assert_eq!(top_k_accuracy(&out, &[1, 0], 1)?, 0.0);
/// assert_eq!(top_k_accuracy(&out, &[1, 0], 2)?, 0.5);
/// # Ok::<(), staticnet_core::Error>(())
/// ```
pub fn top_k_accuracy<T: Float, const K: usize>(
    outputs: &Batch<T, K>,
    labels: &[usize],
    k: usize,
) -> Result<f64> {
    if k == 0 || k > K {
        return Err(Error::InvalidConfig(format!(
            "top-k accuracy needs k from 1 to {K} (the classes), got {k}"
        )));
    }
    check_lengths(labels.len(), outputs.ncols())?;
    let mut hits = 0;
    for (sample, (column, &label)) in outputs.column_iter().zip(labels).enumerate() {
        let scores = column.as_slice();
        let Some(&own) = scores.get(label) else {
            return Err(Error::LabelOutOfRange { label, sample, classes: K });
        };
        let higher = scores.iter().filter(|&&s| s > own).count();
        if !own.as_f64().is_nan() && higher < k {
            hits += 1;
        }
    }
    Ok(ratio(hits, labels.len()))
}

/// The fraction of outputs on the right side of a threshold, for multi-label
/// targets in `[0, 1]` (as Keras' `binary_accuracy`): an output is right when
/// it is above `threshold` exactly when its target is above one half. Use 0 for
/// logits (what [`crate::loss::BinaryCrossEntropy`] takes), 0.5 for probabilities.
///
/// Errors: lengths that differ ([`Error::LengthMismatch`]).
pub fn binary_accuracy<T: Float, const N: usize>(
    outputs: &Batch<T, N>,
    targets: &Batch<T, N>,
    threshold: f64,
) -> Result<f64> {
    check_lengths(targets.ncols(), outputs.ncols())?;
    let (threshold, half) = (T::cast(threshold), T::cast(0.5));
    let right = outputs.iter().zip(targets.iter()).filter(|(&z, &t)| (z > threshold) == (t > half)).count();
    Ok(ratio(right, outputs.len()))
}

/// The index of the highest value, the first on ties (as `argmax` in NumPy, and the losses' accuracy).
fn argmax<T: Float>(values: &[T]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn check_lengths(labels: usize, outputs: usize) -> Result<()> {
    if labels == outputs {
        return Ok(());
    }
    Err(Error::LengthMismatch { what: "metric: labels vs outputs".into(), left: labels, right: outputs })
}

#[cfg(test)]
mod tests;
