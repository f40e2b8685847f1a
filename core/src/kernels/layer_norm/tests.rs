//! Layer normalisation at every level this CPU runs, portable included,
//! against the same formulas in f64, for every column length up to 40 (each
//! vector body and tail) and the character GPT's 128.

use super::*;
use crate::kernels::tested_levels;

/// Column lengths: every tail of both vector widths, and a model's width.
fn lengths() -> impl Iterator<Item = usize> {
    (1..=40).chain([128])
}

/// `cols` columns of `n` values: offsets and scales that differ per column.
fn data(n: usize, cols: usize, seed: f64) -> Vec<f32> {
    (0..n * cols)
        .map(|i| ((i as f64 * 0.37 + seed).sin() * (1.0 + (i / n) as f64) + (i / n) as f64) as f32)
        .collect()
}

/// The forward pass in f64: `(y, x̂, 1/σ)`.
fn exact_forward(x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = gamma.len();
    let (mut y, mut h, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for xc in x.chunks_exact(n) {
        let mean = xc.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = xc.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps).sqrt();
        s.push(inv);
        for ((&v, &g), &b) in xc.iter().zip(gamma).zip(beta) {
            let hv = (v as f64 - mean) * inv;
            h.push(hv);
            y.push(hv * g as f64 + b as f64);
        }
    }
    (y, h, s)
}

#[track_caller]
fn close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, exact {w}");
    }
}

#[test]
fn forward_matches_f64_at_every_level() {
    for isa in tested_levels("layer_norm") {
        for n in lengths() {
            let cols = 3;
            let (x, gamma, beta) = (data(n, cols, 0.1), data(n, 1, 2.0), data(n, 1, 5.0));
            let (want_y, want_h, want_s) = exact_forward(&x, &gamma, &beta, 1e-5);
            let (mut y, mut h, mut s) =
                (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()], vec![f32::NAN; cols]);
            forward(isa, &x, &gamma, &beta, 1e-5, &mut y, Some(Keep { x_hat: &mut h, inv_std: &mut s }));
            let what = format!("{isa:?}, {n} features");
            close(&y, &want_y, 1e-5, &format!("{what}: y"));
            close(&h, &want_h, 1e-5, &format!("{what}: x̂"));
            close(&s, &want_s, 1e-5, &format!("{what}: 1/σ"));
            // Inference computes the same values, bit for bit.
            let mut y2 = vec![f32::NAN; x.len()];
            forward(isa, &x, &gamma, &beta, 1e-5, &mut y2, None);
            assert_eq!(y, y2, "{what}: with and without keeping");
        }
    }
}

#[test]
fn backward_matches_f64_at_every_level() {
    for isa in tested_levels("layer_norm backward") {
        for n in lengths() {
            let cols = 3;
            let (x, gamma, beta, dy) =
                (data(n, cols, 0.3), data(n, 1, 1.0), data(n, 1, 4.0), data(n, cols, 7.0));
            let (mut y, mut h, mut s) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; cols]);
            forward(isa, &x, &gamma, &beta, 1e-5, &mut y, Some(Keep { x_hat: &mut h, inv_std: &mut s }));
            let (mut dg, mut db, mut dx) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; x.len()]);
            backward(isa, &dy, &h, &s, &gamma, &mut dg, &mut db, Some(&mut dx));
            // The same formulas in f64 from the kept x̂ and 1/σ.
            let (mut want_dg, mut want_db, mut want_dx) = (vec![0.0; n], vec![0.0; n], Vec::new());
            for (b, (dc, hc)) in dy.chunks_exact(n).zip(h.chunks_exact(n)).enumerate() {
                let g: Vec<f64> = dc.iter().zip(&gamma).map(|(&d, &w)| d as f64 * w as f64).collect();
                let mean_g = g.iter().sum::<f64>() / n as f64;
                let mean_gh = g.iter().zip(hc).map(|(&g, &h)| g * h as f64).sum::<f64>() / n as f64;
                for j in 0..n {
                    want_dg[j] += dc[j] as f64 * hc[j] as f64;
                    want_db[j] += dc[j] as f64;
                    want_dx.push(s[b] as f64 * (g[j] - mean_g - hc[j] as f64 * mean_gh));
                }
            }
            let what = format!("{isa:?}, {n} features");
            close(&dg, &want_dg, 1e-5, &format!("{what}: dγ"));
            close(&db, &want_db, 1e-5, &format!("{what}: dβ"));
            close(&dx, &want_dx, 1e-4, &format!("{what}: dx"));
            // Without dx, the parameter gradients are the same bits.
            let (mut dg2, mut db2) = (vec![0.0; n], vec![0.0; n]);
            backward(isa, &dy, &h, &s, &gamma, &mut dg2, &mut db2, None);
            assert_eq!((dg, db), (dg2, db2), "{what}: with and without dx");
        }
    }
}

#[test]
fn f64_takes_the_portable_path() {
    let x = [1.0f64, 3.0, 1.0, 3.0, 10.0, 10.0, 0.0, 0.0];
    let (gamma, beta) = ([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 1.0]);
    let mut y = [0.0; 8];
    forward(Isa::active(), &x, &gamma, &beta, 0.0, &mut y, None);
    assert_eq!(y, [-1.0, 2.0, -3.0, 5.0, 1.0, 2.0, -3.0, -3.0]);
}

#[test]
#[should_panic(expected = "values, 4 features")]
fn columns_must_be_whole() {
    let mut y = [0.0f32; 6];
    forward(Isa::active(), &[0.0; 6], &[1.0; 4], &[0.0; 4], 1e-5, &mut y, None);
}
