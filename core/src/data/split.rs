//! Reordering and splitting a [`Dataset`]: [`Dataset::shuffled`] and
//! [`Dataset::split`], seeded so the same seed gives the same samples.

use super::Dataset;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::seeded_rng;
use crate::loss::Targets;
use rand::seq::SliceRandom;

impl<T: Float, const N: usize, Y: Targets> Dataset<T, N, Y> {
    /// The samples in an order drawn from `seed` (ChaCha8, so the same on every
    /// platform): e.g. before splitting a file whose rows are sorted by class.
    pub fn shuffled(&self, seed: u64) -> Self {
        self.gather(&shuffled_indices(self.len(), seed))
    }

    /// Shuffles with `seed`, then splits into the first `fraction` of the
    /// samples (rounded to the nearest whole sample) and the rest, e.g.
    /// `data.split(0.8, 0)?` for 80 % training and 20 % test samples.
    ///
    /// Errors: a `fraction` outside `[0, 1]` ([`Error::InvalidConfig`]).
    ///
    /// ```
    /// # use staticnet_core::data::Dataset;
    /// let rows: Vec<[f32; 1]> = (0..10).map(|i| [i as f32]).collect();
    /// let data = Dataset::from_rows(&rows, (0..10).collect()).unwrap();
    /// let (train, test) = data.split(0.8, 42).unwrap();
    /// assert_eq!((train.len(), test.len()), (8, 2));
    /// ```
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::InvalidConfig(format!(
                "split fraction must be between 0 and 1 (the share of the first part), got {fraction}"
            )));
        }
        let order = shuffled_indices(self.len(), seed);
        let first = ((self.len() as f64 * fraction).round() as usize).min(self.len());
        Ok((self.gather(&order[..first]), self.gather(&order[first..])))
    }

    /// The samples at `indices`, which are in range.
    fn gather(&self, indices: &[usize]) -> Self {
        let mut features = crate::tensor::Batch::zeros(0);
        self.features.gather_into(indices, &mut features);
        let mut targets = Y::empty();
        self.targets.gather_into(indices, &mut targets);
        Dataset { features, targets }
    }
}

/// `0..len` in the order the seed draws.
fn shuffled_indices(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut seeded_rng(seed));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Labels;

    fn numbered(n: usize) -> Dataset<f32, 2, Labels> {
        let rows: Vec<[f32; 2]> = (0..n).map(|i| [i as f32, -(i as f32)]).collect();
        Dataset::from_rows(&rows, (0..n).collect()).unwrap()
    }

    /// The labels are the samples' original positions: every sample keeps its features.
    fn assert_paired(d: &Dataset<f32, 2, Labels>) {
        for (j, &label) in d.targets().iter().enumerate() {
            assert_eq!(d.features().column(j).as_slice(), &[label as f32, -(label as f32)]);
        }
    }

    #[test]
    fn shuffled_is_a_seeded_permutation() {
        let d = numbered(50);
        let (a, b, c) = (d.shuffled(7), d.shuffled(7), d.shuffled(8));
        assert_eq!(a.targets(), b.targets());
        assert_ne!(a.targets(), c.targets());
        assert_ne!(a.targets(), d.targets());
        let mut sorted = a.targets().clone();
        sorted.sort_unstable();
        assert_eq!(&sorted, d.targets());
        assert_paired(&a);
    }

    #[test]
    fn split_partitions_by_fraction() {
        let d = numbered(10);
        let (train, test) = d.split(0.75, 3).unwrap();
        // 7.5 rounds to 8.
        assert_eq!((train.len(), test.len()), (8, 2));
        let mut all: Vec<usize> = train.targets().iter().chain(test.targets()).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_paired(&train);
        assert_paired(&test);
        assert_eq!(d.split(0.75, 3).unwrap().1.targets(), test.targets());
        assert_eq!(d.split(1.0, 0).unwrap().1.len(), 0);
        assert_eq!(d.split(0.0, 0).unwrap().0.len(), 0);
        for bad in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(d.split(bad, 0), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }
}
