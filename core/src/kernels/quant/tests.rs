//! The compact-weight products at every level against an f64 reference, over
//! sizes that exercise every path (four-row groups, the single rows after them,
//! 16/8-lane steps and scalar tails), and the conversions.

use super::*;
use crate::kernels::tested_levels;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZES: [(usize, usize); 9] =
    [(1, 1), (3, 7), (4, 8), (5, 16), (7, 33), (9, 64), (10, 128), (13, 100), (256, 784)];

fn inputs(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// `|a - b| <= tol · (Σ |w·x| + |bias|)`: the error bound of an f32 sum.
fn close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    for (o, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert!((f64::from(g) - w).abs() <= 1e-6 * (s + 1.0), "{what}: row {o}: {g} vs {w}");
    }
}

#[test]
fn int8_gemv_matches_f64_at_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (rows, cols) in SIZES {
        let q: Vec<i8> = (0..rows * cols).map(|_| rng.random_range(-127..=127)).collect();
        let scales: Vec<f32> = (0..rows).map(|_| rng.random_range(1e-3..0.1)).collect();
        let bias = inputs(&mut rng, rows);
        let x = inputs(&mut rng, cols);
        let (mut want, mut scale) = (vec![0.0; rows], vec![0.0; rows]);
        for o in 0..rows {
            let row = &q[o * cols..(o + 1) * cols];
            let dot: f64 = row.iter().zip(&x).map(|(&q, &x)| f64::from(q) * f64::from(x)).sum();
            let abs: f64 = row.iter().zip(&x).map(|(&q, &x)| (f64::from(q) * f64::from(x)).abs()).sum();
            want[o] = f64::from(scales[o]) * dot + f64::from(bias[o]);
            scale[o] = f64::from(scales[o]) * abs + f64::from(bias[o]).abs();
            // AVX2 rounds the input to 2⁻¹⁵ of its largest magnitude (see the module docs).
            let max_x = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let q_abs: f64 = row.iter().map(|&q| f64::from(q).abs()).sum();
            scale[o] += 1e6 * f64::from(scales[o]) * q_abs * f64::from(max_x) / 32768.0;
        }
        for isa in tested_levels("int8 gemv") {
            for with_bias in [true, false] {
                let mut y = vec![f32::NAN; rows];
                let b = with_bias.then_some(&bias[..]);
                int8_gemv(isa, &q, &scales, &x, b, &mut y);
                let want: Vec<f64> = want
                    .iter()
                    .zip(&bias)
                    .map(|(w, &b)| if with_bias { *w } else { w - f64::from(b) })
                    .collect();
                close(&y, &want, &scale, &format!("{isa:?} {rows}×{cols}"));
            }
        }
    }
}

#[test]
fn bf16_gemv_matches_f64_at_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (rows, cols) in SIZES {
        let w: Vec<u16> =
            (0..rows * cols).map(|_| half::bf16::from_f32(rng.random_range(-1.0..1.0)).to_bits()).collect();
        let bias = inputs(&mut rng, rows);
        let x = inputs(&mut rng, cols);
        let widen = |w: u16| f64::from(half::bf16::from_bits(w).to_f32());
        let (mut want, mut scale) = (vec![0.0; rows], vec![0.0; rows]);
        for o in 0..rows {
            let row = &w[o * cols..(o + 1) * cols];
            want[o] =
                row.iter().zip(&x).map(|(&w, &x)| widen(w) * f64::from(x)).sum::<f64>() + f64::from(bias[o]);
            scale[o] = row.iter().zip(&x).map(|(&w, &x)| (widen(w) * f64::from(x)).abs()).sum::<f64>();
        }
        for isa in tested_levels("bf16 gemv") {
            let mut y = vec![f32::NAN; rows];
            bf16_gemv(isa, &w, &x, Some(&bias), &mut y);
            close(&y, &want, &scale, &format!("{isa:?} {rows}×{cols}"));
        }
    }
}

#[test]
fn nan_in_the_input_reaches_the_output_at_every_level() {
    let q = vec![1i8; 4 * 20];
    let mut x = vec![1.0f32; 20];
    x[17] = f32::NAN;
    for isa in tested_levels("int8 gemv") {
        let mut y = vec![0.0; 4];
        int8_gemv(isa, &q, &[1.0; 4], &x, None, &mut y);
        assert!(y.iter().all(|v| v.is_nan()), "{isa:?}: {y:?}");
    }
}

#[test]
fn conversions_are_exact() {
    let mut out = [0.0f32; 3];
    dequantize_int8(&[-127, 0, 5], &[0.5], 3, &mut out);
    assert_eq!(out, [-63.5, 0.0, 2.5]);
    let w = [
        half::bf16::from_f32(0.1).to_bits(),
        half::bf16::from_f32(-3.0).to_bits(),
        half::bf16::NAN.to_bits(),
    ];
    bf16_to_f32(&w, &mut out);
    assert_eq!(out[..2], [half::bf16::from_f32(0.1).to_f32(), -3.0]);
    assert!(out[2].is_nan());
}

#[test]
#[should_panic(expected = "weights are")]
fn mismatched_sizes_are_refused() {
    int8_gemv(crate::kernels::Isa::Portable, &[0; 5], &[1.0; 2], &[0.0; 3], None, &mut [0.0; 2]);
}
