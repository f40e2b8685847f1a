//! Layer normalisation with AVX-512: 16 features per step, the last step of
//! a column masked (masked lanes are neither read nor written).

use super::Keep;
use std::arch::x86_64::*;

/// The lanes of the step at feature `i` of `n`: all 16, or the `n − i` left.
#[inline]
fn lanes(n: usize, i: usize) -> __mmask16 {
    let left = n - i;
    if left >= 16 {
        !0
    } else {
        ((1u32 << left) - 1) as __mmask16
    }
}

/// The `m` lanes of `s` from `i` (zeros elsewhere).
///
/// # Safety
/// `i < s.len()` and `m` selects at most the `s.len() − i` values from `i`
/// ([`lanes`]); the CPU has AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load(m: __mmask16, s: &[f32], i: usize) -> __m512 {
    // SAFETY: the caller's promise: the selected lanes lie inside `s`, masked ones are not read.
    unsafe { _mm512_maskz_loadu_ps(m, s.as_ptr().add(i)) }
}

/// Writes the `m` lanes of `v` to `s` from `i`.
///
/// # Safety
/// As [`load`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store(m: __mmask16, s: &mut [f32], i: usize, v: __m512) {
    // SAFETY: the caller's promise: the selected lanes lie inside `s`, masked ones are not written.
    unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr().add(i), m, v) }
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
        // SAFETY (every `load`/`store` below): `i < n` steps by 16 and `lanes(n, i)`
        // selects only the features left from `i`; `xc`, `yc`, `γ`, `β` and a
        // column of `x̂` hold `n` values each; the CPU has AVX-512F.
        let mut sum = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            sum = _mm512_add_ps(sum, unsafe { load(lanes(n, i), xc, i) });
        }
        let mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) * inv_n);
        let mut squares = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let m = lanes(n, i);
            let d = _mm512_maskz_sub_ps(m, unsafe { load(m, xc, i) }, mean);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        let inv_std = 1.0 / (_mm512_reduce_add_ps(squares) * inv_n + eps).sqrt();
        let s = _mm512_set1_ps(inv_std);
        let mut x_hat = keep.as_mut().map(|k| {
            k.inv_std[b] = inv_std;
            &mut k.x_hat[b * n..(b + 1) * n]
        });
        for i in (0..n).step_by(16) {
            let m = lanes(n, i);
            let h = _mm512_mul_ps(_mm512_sub_ps(unsafe { load(m, xc, i) }, mean), s);
            let out = _mm512_fmadd_ps(h, unsafe { load(m, gamma, i) }, unsafe { load(m, beta, i) });
            unsafe { store(m, yc, i, out) };
            if let Some(hc) = x_hat.as_deref_mut() {
                unsafe { store(m, hc, i, h) };
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
        // SAFETY (every `load`/`store` below): as in `forward`: `dc`, `hc`, `γ`,
        // `dγ`, `dβ` and a column of `dx` hold `n` values each.
        let (mut sum_g, mut sum_gh) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for i in (0..n).step_by(16) {
            let m = lanes(n, i);
            let (d, h) = unsafe { (load(m, dc, i), load(m, hc, i)) };
            unsafe {
                store(m, dgamma, i, _mm512_fmadd_ps(d, h, load(m, dgamma, i)));
                store(m, dbeta, i, _mm512_add_ps(d, load(m, dbeta, i)));
            }
            let g = _mm512_mul_ps(d, unsafe { load(m, gamma, i) });
            sum_g = _mm512_add_ps(sum_g, g);
            sum_gh = _mm512_fmadd_ps(g, h, sum_gh);
        }
        let Some(dx) = dx.as_deref_mut() else { continue };
        let mean_g = _mm512_set1_ps(_mm512_reduce_add_ps(sum_g) * inv_n);
        let mean_gh = _mm512_set1_ps(_mm512_reduce_add_ps(sum_gh) * inv_n);
        let s = _mm512_set1_ps(inv_std[b]);
        let dxc = &mut dx[b * n..(b + 1) * n];
        for i in (0..n).step_by(16) {
            let m = lanes(n, i);
            let (d, h, w) = unsafe { (load(m, dc, i), load(m, hc, i), load(m, gamma, i)) };
            // (d·w − mean_g − h·mean_gh)/σ
            let centred = _mm512_fmsub_ps(d, w, _mm512_fmadd_ps(h, mean_gh, mean_g));
            unsafe { store(m, dxc, i, _mm512_mul_ps(centred, s)) };
        }
    }
}
