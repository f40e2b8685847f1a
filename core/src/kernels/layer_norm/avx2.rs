//! Layer normalisation with AVX2 and FMA: 8 features per step, the last step
//! of a column through AVX's masked loads and stores (masked lanes are
//! neither read nor written; the masked store is slow on AMD, but only the
//! tail of a column takes it). `load` and `store` check their bounds.

use super::Keep;
use crate::kernels::simd::avx2::first_lanes;
use std::arch::x86_64::*;

/// The values of `s` from `i` on, at most 8 (zeros in the lanes past its end).
/// Panics if `i > s.len()`.
#[inline]
#[target_feature(enable = "avx2")]
fn load(s: &[f32], i: usize) -> __m256 {
    let s = &s[i..];
    // SAFETY: 8 values from `s`'s start when it holds them, else only the
    // lanes the mask selects, which it holds; masked lanes are not read.
    unsafe {
        if s.len() >= 8 {
            _mm256_loadu_ps(s.as_ptr())
        } else {
            _mm256_maskload_ps(s.as_ptr(), first_lanes(s.len()))
        }
    }
}

/// Writes the lanes of `v` to `s` from `i` on, as many as `s` holds (at most 8).
/// Panics if `i > s.len()`.
#[inline]
#[target_feature(enable = "avx2")]
fn store(s: &mut [f32], i: usize, v: __m256) {
    let s = &mut s[i..];
    // SAFETY: as for `load`: masked lanes are not written.
    unsafe {
        if s.len() >= 8 {
            _mm256_storeu_ps(s.as_mut_ptr(), v)
        } else {
            _mm256_maskstore_ps(s.as_mut_ptr(), first_lanes(s.len()), v)
        }
    }
}

/// The sum of the 8 lanes of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn sum8(v: __m256) -> f32 {
    let four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)))
}

/// [`super::forward`] with AVX2 (lengths checked by the caller).
///
/// # Safety
/// The CPU supports AVX2 and FMA; the lengths agree as [`super::forward`] asserts.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    mut keep: Option<Keep<'_, f32>>,
) {
    let n = gamma.len();
    let inv_n = 1.0 / n as f32;
    for (b, (xc, yc)) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).enumerate() {
        let mut sum = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            sum = _mm256_add_ps(sum, load(xc, i));
        }
        let mean = sum8(sum) * inv_n;
        let vm = _mm256_set1_ps(mean);
        let mut squares = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            let mut d = _mm256_sub_ps(load(xc, i), vm);
            if n - i < 8 {
                d = _mm256_and_ps(d, _mm256_castsi256_ps(first_lanes(n - i)));
            }
            squares = _mm256_fmadd_ps(d, d, squares);
        }
        let inv_std = 1.0 / (sum8(squares) * inv_n + eps).sqrt();
        let s = _mm256_set1_ps(inv_std);
        let mut x_hat = keep.as_mut().map(|k| {
            k.inv_std[b] = inv_std;
            &mut k.x_hat[b * n..(b + 1) * n]
        });
        for i in (0..n).step_by(8) {
            let h = _mm256_mul_ps(_mm256_sub_ps(load(xc, i), vm), s);
            let out = _mm256_fmadd_ps(h, load(gamma, i), load(beta, i));
            store(yc, i, out);
            if let Some(hc) = x_hat.as_deref_mut() {
                store(hc, i, h);
            }
        }
    }
}

/// [`super::backward`] with AVX2 (lengths checked by the caller).
///
/// # Safety
/// The CPU supports AVX2 and FMA; the lengths agree as [`super::backward`] asserts.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn backward(
    dy: &[f32],
    x_hat: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let n = gamma.len();
    dgamma.fill(0.0);
    dbeta.fill(0.0);
    let inv_n = 1.0 / n as f32;
    for (b, (dc, hc)) in dy.chunks_exact(n).zip(x_hat.chunks_exact(n)).enumerate() {
        let (mut sum_g, mut sum_gh) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for i in (0..n).step_by(8) {
            let (d, h) = (load(dc, i), load(hc, i));
            store(dgamma, i, _mm256_fmadd_ps(d, h, load(dgamma, i)));
            store(dbeta, i, _mm256_add_ps(d, load(dbeta, i)));
            let g = _mm256_mul_ps(d, load(gamma, i));
            sum_g = _mm256_add_ps(sum_g, g);
            sum_gh = _mm256_fmadd_ps(g, h, sum_gh);
        }
        let Some(dx) = dx.as_deref_mut() else { continue };
        let mean_g = _mm256_set1_ps(sum8(sum_g) * inv_n);
        let mean_gh = _mm256_set1_ps(sum8(sum_gh) * inv_n);
        let s = _mm256_set1_ps(inv_std[b]);
        let dxc = &mut dx[b * n..(b + 1) * n];
        for i in (0..n).step_by(8) {
            let (d, h, w) = (load(dc, i), load(hc, i), load(gamma, i));
            // (d·w − mean_g − h·mean_gh)/σ
            let centred = _mm256_fmsub_ps(d, w, _mm256_fmadd_ps(h, mean_gh, mean_g));
            store(dxc, i, _mm256_mul_ps(centred, s));
        }
    }
}
