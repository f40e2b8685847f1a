//! Datasets from rows held in memory: `Vec<[f32; N]>`, slices, `Vec<Vec<f32>>`,
//! with class labels or regression targets, and no loop written by the user.

use super::Dataset;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Labels;
use crate::tensor::Batch;

/// A row of a sample's values: `[T; N]` (whose length fixes `N`, so no type
/// annotation is needed), `Vec<T>` or `&[T]` (checked against `N` when read).
pub trait Row<T, const N: usize> {
    /// The row's values.
    fn values(&self) -> &[T];
}

impl<T, const N: usize> Row<T, N> for [T; N] {
    fn values(&self) -> &[T] {
        self
    }
}

impl<T, const N: usize> Row<T, N> for &[T; N] {
    fn values(&self) -> &[T] {
        &self[..]
    }
}

impl<T, const N: usize> Row<T, N> for Vec<T> {
    fn values(&self) -> &[T] {
        self
    }
}

impl<T, const N: usize> Row<T, N> for &Vec<T> {
    fn values(&self) -> &[T] {
        self
    }
}

impl<T, const N: usize> Row<T, N> for &[T] {
    fn values(&self) -> &[T] {
        self
    }
}

/// One sample per row to one sample per column, checking that every row holds
/// `N` values ([`Error::RowLength`] names the first that does not).
///
/// Rows may be arrays (`[f32; N]`, always the right length), `Vec<f32>` or slices (see [`Row`]).
///
/// ```
/// # use staticnet_core::data::rows_to_batch;
/// let x = rows_to_batch::<f32, 2, _>(vec![vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
/// assert_eq!(x.column(1).as_slice(), &[3.0, 4.0]);
/// assert!(rows_to_batch::<f32, 2, _>(vec![vec![1.0, 2.0], vec![3.0]]).is_err());
/// ```
pub fn rows_to_batch<T: Float, const N: usize, R: Row<T, N>>(
    rows: impl IntoIterator<Item = R>,
) -> Result<Batch<T, N>> {
    gather_rows("feature", rows)
}

fn gather_rows<T: Float, const N: usize, R: Row<T, N>>(
    what: &'static str,
    rows: impl IntoIterator<Item = R>,
) -> Result<Batch<T, N>> {
    let mut values = Vec::new();
    for (row, r) in rows.into_iter().enumerate() {
        let r = r.values();
        if r.len() != N {
            return Err(Error::RowLength { what, row, expected: N, found: r.len() });
        }
        values.extend_from_slice(r);
    }
    Ok(Batch::from_vec(values))
}

impl<T: Float, const N: usize> Dataset<T, N, Labels> {
    /// A classification dataset from rows of `N` features (one row per
    /// sample) and their class labels. For other targets, see
    /// [`Dataset::regression`], or [`Dataset::new`] with [`rows_to_batch`].
    ///
    /// Errors: a row of another length ([`Error::RowLength`]), or as many
    /// labels as rows not given ([`Error::LengthMismatch`]). Labels are checked
    /// against the network's classes when training starts.
    ///
    /// ```
    /// # use staticnet_core::data::Dataset;
    /// let rows = vec![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    /// let xor = Dataset::from_rows(&rows, vec![0, 1, 1, 0]).unwrap();
    /// assert_eq!(xor.len(), 4);
    /// // Rows as vectors are checked when read: say how many features a sample has.
    /// let rows = vec![vec![0.5f32, 1.5], vec![2.5]];
    /// assert!(Dataset::<f32, 2, _>::from_rows(rows, vec![0, 1]).is_err());
    /// ```
    pub fn from_rows<R: Row<T, N>>(rows: impl IntoIterator<Item = R>, labels: Labels) -> Result<Self> {
        Dataset::new(rows_to_batch(rows)?, labels)
    }
}

impl<T: Float, const N: usize, const M: usize> Dataset<T, N, Batch<T, M>> {
    /// A dataset for regression: rows of `N` features and rows of `M` targets,
    /// as many of each (for [`crate::loss::MeanSquaredError`] and the like).
    ///
    /// ```
    /// # use staticnet_core::data::Dataset;
    /// let x: Vec<[f64; 1]> = (0..8).map(|i| [i as f64]).collect();
    /// let y: Vec<[f64; 2]> = x.iter().map(|[v]| [v.sin(), v.cos()]).collect();
    /// let data = Dataset::regression(&x, &y).unwrap();
    /// assert_eq!(data.targets().column(1)[0], 1f64.sin());
    /// ```
    pub fn regression<R: Row<T, N>, S: Row<T, M>>(
        rows: impl IntoIterator<Item = R>,
        targets: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        Dataset::new(rows_to_batch(rows)?, gather_rows("target", targets)?)
    }
}

impl<T: Float, const N: usize> Dataset<T, N, Batch<T, 1>> {
    /// A dataset for regression on one value per sample: rows of `N` features
    /// and a value each, e.g. `y = sin(x)`.
    ///
    /// ```
    /// # use staticnet_core::data::Dataset;
    /// let x: Vec<[f32; 1]> = (0..16).map(|i| [i as f32 / 4.0]).collect();
    /// let y: Vec<f32> = x.iter().map(|[v]| v.sin()).collect();
    /// let data = Dataset::regression_values(&x, y).unwrap();
    /// assert_eq!(data.len(), 16);
    /// ```
    pub fn regression_values<R: Row<T, N>>(
        rows: impl IntoIterator<Item = R>,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let features = rows_to_batch(rows)?;
        Dataset::new(features, Batch::from_vec(values.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_vectors_and_slices_give_the_same_dataset() {
        let arrays = vec![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let vectors: Vec<Vec<f32>> = arrays.iter().map(|r| r.to_vec()).collect();
        let slices: Vec<&[f32]> = arrays.iter().map(|r| &r[..]).collect();
        let a = Dataset::from_rows(&arrays, vec![0, 1]).unwrap();
        let b = Dataset::<f32, 3, _>::from_rows(vectors, vec![0, 1]).unwrap();
        let c = Dataset::<f32, 3, _>::from_rows(slices, vec![0, 1]).unwrap();
        // One sample per column: the second sample is the second column.
        assert_eq!(a.features().as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(a.features().column(1).as_slice(), &[4.0, 5.0, 6.0]);
        assert_eq!(a.features(), b.features());
        assert_eq!(a.features(), c.features());
        assert_eq!(c.targets(), &vec![0, 1]);
    }

    #[test]
    fn a_short_or_long_row_is_named() {
        let rows = vec![vec![1.0f32, 2.0], vec![3.0, 4.0], vec![5.0, 6.0, 7.0]];
        let err = Dataset::<f32, 2, _>::from_rows(rows, vec![0, 0, 0]).unwrap_err();
        assert!(matches!(err, Error::RowLength { what: "feature", row: 2, expected: 2, found: 3 }), "{err}");
        assert_eq!(err.to_string(), "feature row 2 holds 3 values, expected 2");
        let targets = vec![vec![1.0f32], vec![]];
        let err = Dataset::<f32, 1, Batch<f32, 1>>::regression(vec![[0.0f32], [1.0]], targets).unwrap_err();
        assert!(matches!(err, Error::RowLength { what: "target", row: 1, expected: 1, found: 0 }), "{err}");
    }

    #[test]
    fn labels_and_targets_must_match_the_rows() {
        let rows = vec![[0.0f32; 2]; 3];
        assert!(matches!(
            Dataset::from_rows(&rows, vec![0usize, 1]),
            Err(Error::LengthMismatch { left: 3, right: 2, .. })
        ));
        assert!(matches!(
            Dataset::<f32, 2, Batch<f32, 1>>::regression_values(&rows, [1.0, 2.0, 3.0, 4.0]),
            Err(Error::LengthMismatch { left: 3, right: 4, .. })
        ));
    }

    #[test]
    fn regression_targets_are_columns_too() {
        let x = vec![[1.0f64, 0.0], [0.0, 1.0]];
        let y = vec![[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]];
        let d = Dataset::regression(&x, &y).unwrap();
        assert_eq!(d.targets().column(1).as_slice(), &[40.0, 50.0, 60.0]);
        let d = Dataset::regression_values(&x, [7.0, 8.0]).unwrap();
        assert_eq!(d.targets().as_slice(), &[7.0, 8.0]);
    }
}
