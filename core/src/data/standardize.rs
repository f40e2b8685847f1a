//! Feature standardisation, as scikit-learn's `StandardScaler`: a
//! [`Standardizer`] fitted on the training samples (each feature's mean and
//! standard deviation) and applied unchanged to validation, test and
//! prediction inputs; saved beside the weights, as a safetensors file.

use super::Dataset;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Targets;
use crate::tensor::Batch;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Each of `N` features' mean and scale: applying it maps `x` to `(x − mean) / scale`.
///
/// ```
/// # use staticnet_core::data::Dataset;
/// let rows = vec![[1.0f32, 10.0], [3.0, 10.0], [5.0, 10.0]];
/// let mut train = Dataset::from_rows(&rows, vec![0, 1, 0]).unwrap();
/// let mut test = Dataset::from_rows(&[[7.0f32, 11.0]], vec![1]).unwrap();
/// let scaler = train.standardize(); // mean 3 and 10; deviations √(8/3) and 0
/// scaler.apply(&mut test);
/// assert_eq!(scaler.mean(), &[3.0, 10.0]);
/// let x = test.features();
/// assert!((x[0] - 4.0 / (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
/// // A constant feature keeps scale 1: it is only centred.
/// assert_eq!(x[1], 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<const N: usize> {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl<const N: usize> Standardizer<N> {
    /// Each feature's mean and population standard deviation (divided by the
    /// number of samples, as scikit-learn), over the samples of `x`. A feature
    /// whose deviation is zero (constant) keeps scale 1; no samples give mean 0, scale 1.
    pub fn fit<T: Float>(x: &Batch<T, N>) -> Self {
        let samples = x.ncols().max(1) as f64;
        let mut mean = vec![0.0; N];
        let mut square = vec![0.0; N];
        for column in x.column_iter() {
            mean.iter_mut().zip(column.iter()).for_each(|(m, v)| *m += v.as_f64());
        }
        mean.iter_mut().for_each(|m| *m /= samples);
        for column in x.column_iter() {
            for ((s, v), m) in square.iter_mut().zip(column.iter()).zip(&mean) {
                *s += (v.as_f64() - m) * (v.as_f64() - m);
            }
        }
        let scale =
            square.iter().map(|s| (s / samples).sqrt()).map(|d| if d > 0.0 { d } else { 1.0 }).collect();
        Standardizer { mean, scale }
    }

    /// Each feature's mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Each feature's scale: its standard deviation, or 1 for a constant feature.
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Standardises a batch of inputs in place, e.g. before `predict`.
    pub fn transform<T: Float>(&self, x: &mut Batch<T, N>) {
        for mut column in x.column_iter_mut() {
            for ((v, m), s) in column.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = T::cast((v.as_f64() - m) / s);
            }
        }
    }

    /// Standardises a dataset's features in place (targets are left alone).
    pub fn apply<T: Float, Y: Targets>(&self, data: &mut Dataset<T, N, Y>) {
        self.transform(&mut data.features);
    }

    /// The standardizer as safetensors bytes: F64 tensors `mean` and `scale` of shape `[N]`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let (mean, scale) = (f64_bytes(&self.mean), f64_bytes(&self.scale));
        let view = |bytes| TensorView::new(Dtype::F64, vec![N], bytes);
        let bad = |e: &dyn std::fmt::Display| Error::format("<memory>", format!("cannot encode: {e}"));
        let tensors =
            [("mean", view(&mean).map_err(|e| bad(&e))?), ("scale", view(&scale).map_err(|e| bad(&e))?)];
        safetensors::serialize(tensors, None).map_err(|e| bad(&e))
    }

    /// Saves the standardizer to `path` atomically (see [`Standardizer::to_bytes`]
    /// for the contents, which `safetensors.numpy.load_file` reads too).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::persist::write_atomic(path, &self.to_bytes()?)
    }

    /// Loads a standardizer saved by [`Standardizer::save`].
    ///
    /// Errors: the file cannot be read ([`Error::Io`]), or is not a
    /// safetensors file with F64 `mean` and `scale` of shape `[N]` and
    /// positive, finite scales ([`Error::Format`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = crate::fs::read_regular(path, "a standardizer (safetensors) file")?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads [`Standardizer::to_bytes`]' output; `path` only labels errors.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |reason: String| Error::format(path, reason);
        let file =
            SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let read = |name: &str| -> Result<Vec<f64>> {
            let t = file.tensor(name).map_err(|_| bad(format!("no tensor `{name}`: not a standardizer")))?;
            if t.dtype() != Dtype::F64 || t.shape() != [N] {
                return Err(bad(format!(
                    "`{name}` is {:?} {:?}, expected F64 [{N}] (a standardizer of {N} features)",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect())
        };
        let (mean, scale) = (read("mean")?, read("scale")?);
        if let Some(s) = scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(bad(format!("a scale of {s}: scales are positive and finite")));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(bad(format!("a mean of {m}: means are finite")));
        }
        Ok(Standardizer { mean, scale })
    }
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl<T: Float, const N: usize, Y: Targets> Dataset<T, N, Y> {
    /// Fits a [`Standardizer`] on these samples' features, applies it to them,
    /// and returns it, to apply to the validation and test sets and to inputs
    /// at prediction time (fitting on the training part only keeps the test
    /// set unseen).
    pub fn standardize(&mut self) -> Standardizer<N> {
        let scaler = Standardizer::fit(&self.features);
        scaler.apply(self);
        scaler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Dataset<f64, 2, Vec<usize>> {
        Dataset::from_rows(&[[1.0, 4.0], [2.0, 4.0], [6.0, 4.0]], vec![0, 1, 2]).unwrap()
    }

    #[test]
    fn fitted_on_training_and_applied_to_others() {
        let mut train = data();
        let scaler = train.standardize();
        // Mean 3; population variance (4 + 1 + 9) / 3.
        let sd = (14.0f64 / 3.0).sqrt();
        assert_eq!(scaler.mean(), &[3.0, 4.0]);
        assert_eq!(scaler.scale(), &[sd, 1.0]);
        let x = train.features();
        assert_eq!(x.row(0).iter().copied().collect::<Vec<_>>(), vec![-2.0 / sd, -1.0 / sd, 3.0 / sd]);
        assert_eq!(x.row(1).iter().copied().collect::<Vec<_>>(), vec![0.0, 0.0, 0.0]);
        let mean: f64 = x.row(0).iter().sum::<f64>() / 3.0;
        let var: f64 = x.row(0).iter().map(|v| v * v).sum::<f64>() / 3.0;
        assert!(mean.abs() < 1e-15 && (var - 1.0).abs() < 1e-15);
        let mut test = Dataset::from_rows(&[[9.0, 5.0]], vec![0]).unwrap();
        scaler.apply(&mut test);
        assert_eq!(test.features().as_slice(), &[6.0 / sd, 1.0]);
    }

    #[test]
    fn saves_and_loads() {
        let scaler = data().standardize();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scaler.safetensors");
        scaler.save(&path).unwrap();
        assert_eq!(Standardizer::<2>::load(&path).unwrap(), scaler);
        let err = Standardizer::<3>::load(&path).unwrap_err();
        assert!(matches!(err, Error::Format { .. }) && err.to_string().contains("expected F64 [3]"), "{err}");
        assert!(matches!(Standardizer::<2>::from_bytes(b"not a file", "x"), Err(Error::Format { .. })));
        let zero = Standardizer::<2> { mean: vec![0.0; 2], scale: vec![1.0, 0.0] };
        let err = Standardizer::<2>::from_bytes(&zero.to_bytes().unwrap(), "x").unwrap_err();
        assert!(err.to_string().contains("a scale of 0"), "{err}");
    }
}
