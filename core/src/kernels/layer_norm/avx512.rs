//! Layer normalisation with AVX-512: 16 features per step, the last step of
//! a column masked (masked lanes are neither read nor written).

use super::Keep;
use std::arch::x86_64::*;

/// The first `left` lanes, at most all 16.
#[inline]
fn lanes(left: usize) -> __mmask16 {
    if left >= 16 {
        !0
    } else {
        ((1u32 << left) - 1) as __mmask16
    }
}

/// The values of `s` from `i` on, at most 16 (zeros in the lanes past its end).
/// Panics if `i > s.len()`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(s: &[f32], i: usize) -> __m512 {
    let s = &s[i..];
    // SAFETY: the mask selects at most the `s.len()` values from `s`'s start;
    // masked lanes are not read.
    unsafe { _mm512_maskz_loadu_ps(lanes(s.len()), s.as_ptr()) }
}

/// Writes the lanes of `v` to `s` from `i` on, as many as `s` holds (at most 16).
/// Panics if `i > s.len()`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(s: &mut [f32], i: usize, v: __m512) {
    let s = &mut s[i..];
    // SAFETY: as for `load`: masked lanes are not written.
    unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr(), lanes(s.len()), v) }
}

/// [`super::forward`] with AVX-512 (lengths checked by the caller).
///
/// # Safety
/// The CPU supports AVX-512F; the lengths agree as [`super::forward`] asserts.
#[target_feature(enable = "avx512f")]
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
        let mut sum = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            sum = _mm512_add_ps(sum, load(xc, i));
        }
        let mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) * inv_n);
        let mut squares = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let d = _mm512_maskz_sub_ps(lanes(n - i), load(xc, i), mean);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        let inv_std = 1.0 / (_mm512_reduce_add_ps(squares) * inv_n + eps).sqrt();
        let s = _mm512_set1_ps(inv_std);
        let mut x_hat = keep.as_mut().map(|k| {
            k.inv_std[b] = inv_std;
            &mut k.x_hat[b * n..(b + 1) * n]
        });
        for i in (0..n).step_by(16) {
            let h = _mm512_mul_ps(_mm512_sub_ps(load(xc, i), mean), s);
            let out = _mm512_fmadd_ps(h, load(gamma, i), load(beta, i));
            store(yc, i, out);
            if let Some(hc) = x_hat.as_deref_mut() {
                store(hc, i, h);
            }
        }
    }
}

/// [`super::backward`] with AVX-512 (lengths checked by the caller).
///
/// # Safety
/// The CPU supports AVX-512F; the lengths agree as [`super::backward`] asserts.
#[target_feature(enable = "avx512f")]
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
        let (mut sum_g, mut sum_gh) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for i in (0..n).step_by(16) {
            let (d, h) = (load(dc, i), load(hc, i));
            store(dgamma, i, _mm512_fmadd_ps(d, h, load(dgamma, i)));
            store(dbeta, i, _mm512_add_ps(d, load(dbeta, i)));
            let g = _mm512_mul_ps(d, load(gamma, i));
            sum_g = _mm512_add_ps(sum_g, g);
            sum_gh = _mm512_fmadd_ps(g, h, sum_gh);
        }
        let Some(dx) = dx.as_deref_mut() else { continue };
        let mean_g = _mm512_set1_ps(_mm512_reduce_add_ps(sum_g) * inv_n);
        let mean_gh = _mm512_set1_ps(_mm512_reduce_add_ps(sum_gh) * inv_n);
        let s = _mm512_set1_ps(inv_std[b]);
        let dxc = &mut dx[b * n..(b + 1) * n];
        for i in (0..n).step_by(16) {
            let (d, h, w) = (load(dc, i), load(hc, i), load(gamma, i));
            // (d·w − mean_g − h·mean_gh)/σ
            let centred = _mm512_fmsub_ps(d, w, _mm512_fmadd_ps(h, mean_gh, mean_g));
            store(dxc, i, _mm512_mul_ps(centred, s));
        }
    }
}
