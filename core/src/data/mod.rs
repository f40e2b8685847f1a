//! Datasets in memory, readers for common formats, and mini-batching.
//!
//! A [`Dataset`] comes from rows in memory ([`Dataset::from_rows`],
//! [`Dataset::regression`]), a CSV file ([`csv::CsvReader`]), a folder of
//! images per class (`folder::ImageFolder`, feature `image-folder`), or the
//! MNIST and text readers; [`Dataset::shuffled`], [`Dataset::split`] and
//! [`Dataset::standardize`] prepare it for training.

mod classes;
#[cfg(feature = "csv")]
pub mod csv;
#[cfg(feature = "image-folder")]
pub mod folder;
pub mod idx;
pub mod image;
pub mod mnist;
mod rows;
mod split;
mod standardize;
pub mod text;

pub use classes::Classes;
#[cfg(feature = "csv")]
pub use csv::{Column, CsvReader, LabelKind};
pub use rows::{rows_to_batch, Row};
pub use standardize::Standardizer;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Targets;
use crate::tensor::Batch;

/// Samples of `N` features (one per column) with their targets.
///
/// # Examples
///
/// ```
/// use staticnet::prelude::*;
///
/// // Six samples of 2 features, one per column, with class labels.
/// let x = Batch::<f32, 2>::from_fn(6, |feature, sample| (sample * 2 + feature) as f32);
/// let data = Dataset::new(x, vec![0, 1, 0, 1, 0, 1])?;
/// let (train, test) = data.shuffled(7).split(0.5, 7)?;
/// assert_eq!((train.len(), test.len()), (3, 3));
/// // A mismatched number of labels is an error, not a panic.
/// assert!(Dataset::new(Batch::<f32, 2>::zeros(3), vec![0, 1]).is_err());
/// # Ok::<(), staticnet::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Dataset<T: Float, const N: usize, Y> {
    features: Batch<T, N>,
    targets: Y,
}

impl<T: Float, const N: usize, Y: Targets> Dataset<T, N, Y> {
    /// Pairs features with targets; they must hold the same number of samples.
    pub fn new(features: Batch<T, N>, targets: Y) -> Result<Self> {
        if features.ncols() != targets.len() {
            return Err(Error::LengthMismatch {
                what: "dataset features vs targets".into(),
                left: features.ncols(),
                right: targets.len(),
            });
        }
        Ok(Dataset { features, targets })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.features.ncols()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All features, one sample per column.
    pub fn features(&self) -> &Batch<T, N> {
        &self.features
    }

    /// All targets.
    pub fn targets(&self) -> &Y {
        &self.targets
    }

    /// The samples at `indices`, as a new dataset.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidConfig(format!(
                "sample index {bad} is out of range for {} samples",
                self.len()
            )));
        }
        let mut features = Batch::zeros(0);
        self.features.gather_into(indices, &mut features);
        let mut targets = Y::empty();
        self.targets.gather_into(indices, &mut targets);
        Ok(Dataset { features, targets })
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Self {
        let indices: Vec<usize> = (0..n.min(self.len())).collect();
        let mut features = Batch::zeros(0);
        self.features.gather_into(&indices, &mut features);
        let mut targets = Y::empty();
        self.targets.gather_into(&indices, &mut targets);
        Dataset { features, targets }
    }

    /// Splits into the first `n` samples and the rest, e.g. for a validation set.
    pub fn split_at(&self, n: usize) -> (Self, Self) {
        let n = n.min(self.len());
        let tail: Vec<usize> = (n..self.len()).collect();
        let mut features = Batch::zeros(0);
        self.features.gather_into(&tail, &mut features);
        let mut targets = Y::empty();
        self.targets.gather_into(&tail, &mut targets);
        (self.take(n), Dataset { features, targets })
    }
}

/// A reusable mini-batch: features and targets gathered from a [`Dataset`].
pub struct MiniBatch<T: Float, const N: usize, Y> {
    /// The batch's features.
    pub features: Batch<T, N>,
    /// The batch's targets.
    pub targets: Y,
}

impl<T: Float, const N: usize, Y: Targets> MiniBatch<T, N, Y> {
    /// An empty batch to gather into.
    pub fn new() -> Self {
        MiniBatch { features: Batch::zeros(0), targets: Y::empty() }
    }

    /// Replaces the contents with the samples of `data` at `indices` (all in range),
    /// reusing the buffers when the batch size is unchanged.
    pub fn fill_from(&mut self, data: &Dataset<T, N, Y>, indices: &[usize]) {
        data.features.gather_into(indices, &mut self.features);
        data.targets.gather_into(indices, &mut self.targets);
    }
}

impl<T: Float, const N: usize, Y: Targets> Default for MiniBatch<T, N, Y> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Dataset<f32, 2, Vec<usize>> {
        let x = Batch::<f32, 2>::from_column_slice(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        Dataset::new(x, vec![0, 1, 2]).unwrap()
    }

    #[test]
    fn new_rejects_mismatched_lengths() {
        let x = Batch::<f32, 2>::zeros(3);
        assert!(matches!(
            Dataset::new(x, vec![0usize, 1]),
            Err(Error::LengthMismatch { left: 3, right: 2, .. })
        ));
    }

    #[test]
    fn select_take_and_split() {
        let d = data();
        let s = d.select(&[2, 0]).unwrap();
        assert_eq!(s.features().as_slice(), &[4.0, 5.0, 0.0, 1.0]);
        assert_eq!(s.targets(), &vec![2, 0]);
        assert!(d.select(&[3]).is_err());
        let (a, b) = d.split_at(1);
        assert_eq!((a.len(), b.len()), (1, 2));
        assert_eq!(b.targets(), &vec![1, 2]);
        assert_eq!(d.take(10).len(), 3);
    }

    #[test]
    fn minibatch_gathers_columns() {
        let d = data();
        let mut mb = MiniBatch::new();
        mb.fill_from(&d, &[1, 2]);
        assert_eq!(mb.features.as_slice(), &[2.0, 3.0, 4.0, 5.0]);
        assert_eq!(mb.targets, vec![1, 2]);
    }
}
