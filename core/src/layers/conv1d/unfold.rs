//! Unfolding a batch of channels-last sequences into the patch matrix of a
//! 1-D convolution, and folding a patch gradient back onto the input.
//!
//! The patch matrix is column-major with `F·K` rows and one column per output
//! step of every sample (sample after sample): column `b·OSTEPS + t` holds the
//! receptive field of output step `t` of sample `b`, ordered `f·K + k` like a
//! row of PyTorch's `[C, F, K]` weight, with zeros where a tap falls in the
//! padding.

use crate::float::Float;
use crate::geometry::Conv1dGeometry;

/// Unfolds `x` (samples of `steps·F` values, step-major) into `cols` (one
/// column of `F·K` values per output step), overwriting all of it.
pub(super) fn unfold<T: Float, const F: usize>(g: &Conv1dGeometry, x: &[T], cols: &mut [T]) {
    let (k_len, sample) = (g.kernel, g.steps * F);
    let patch = F * k_len;
    let samples = x.chunks_exact(sample).zip(cols.chunks_exact_mut(patch * g.out_steps));
    for (xs, cols) in samples {
        for (t, col) in cols.chunks_exact_mut(patch).enumerate() {
            for k in 0..k_len {
                let taps = col[k..].iter_mut().step_by(k_len);
                match g.input_step(t, k) {
                    Some(s) => taps.zip(&xs[s * F..(s + 1) * F]).for_each(|(c, &v)| *c = v),
                    None => taps.for_each(|c| *c = T::zero()),
                }
            }
        }
    }
}

/// Folds the patch gradient `dcols` back onto the input: `dx` (overwritten)
/// receives, for every input value, the sum of the entries of `dcols` that
/// unfolding copied from it.
pub(super) fn fold<T: Float, const F: usize>(g: &Conv1dGeometry, dcols: &[T], dx: &mut [T]) {
    let (k_len, sample) = (g.kernel, g.steps * F);
    let patch = F * k_len;
    dx.fill(T::zero());
    let samples = dx.chunks_exact_mut(sample).zip(dcols.chunks_exact(patch * g.out_steps));
    for (dxs, dcols) in samples {
        for (t, dcol) in dcols.chunks_exact(patch).enumerate() {
            for k in 0..k_len {
                if let Some(s) = g.input_step(t, k) {
                    let taps = dcol[k..].iter().step_by(k_len);
                    dxs[s * F..(s + 1) * F].iter_mut().zip(taps).for_each(|(d, &v)| *d += v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolding_copies_each_receptive_field_in_weight_order() {
        // 4 steps of 2 features, kernel 2, padding 1, stride 2: output steps 0..3
        // read steps (−1, 0), (1, 2), (3, 4).
        let g = Conv1dGeometry::new(4, 2, 2, 1, 1).unwrap();
        assert_eq!(g.out_steps, 3);
        let x: Vec<f64> = (1..=8).map(f64::from).collect(); // step s = [2s+1, 2s+2]
        let mut cols = vec![f64::NAN; 4 * 3];
        unfold::<_, 2>(&g, &x, &mut cols);
        // Column order (f0k0, f0k1, f1k0, f1k1).
        #[rustfmt::skip]
        assert_eq!(cols, [
            0.0, 1.0, 0.0, 2.0,
            3.0, 5.0, 4.0, 6.0,
            7.0, 0.0, 8.0, 0.0,
        ]);
    }

    #[test]
    fn folding_is_the_transpose_of_unfolding() {
        // <unfold(x), c> = <x, fold(c)> for every x and c.
        let g = Conv1dGeometry::new(5, 3, 1, 2, 2).unwrap();
        let (n_in, n_cols) = (2 * 5 * 3, 2 * g.out_steps * 3 * 3);
        let x: Vec<f64> = (0..n_in).map(|i| (i as f64 * 0.7).sin()).collect();
        let c: Vec<f64> = (0..n_cols).map(|i| (i as f64 * 0.3).cos()).collect();
        let (mut cols, mut dx) = (vec![0.0; n_cols], vec![f64::NAN; n_in]);
        unfold::<_, 3>(&g, &x, &mut cols);
        fold::<_, 3>(&g, &c, &mut dx);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
    }
}
