//! Layer normalisation with AVX2 and FMA: 8 features per step, the last step
//! of a column through AVX's masked loads and stores (masked lanes are
//! neither read nor written; the masked store is slow on AMD, but only the
//! tail of a column takes it).

use super::Keep;
use crate::kernels::simd::avx2::first_lanes;
use std::arch::x86_64::*;

/// The lanes of the step at feature `i` of `n`: all 8, or the `n − i` left.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(n: usize, i: usize) -> Option<__m256i> {
    let left = n - i;
    (left < 8).then(|| first_lanes(left))
}

/// The lanes of `s` from `i` that `m` selects (all 8 for `None`; zeros elsewhere).
///
/// # Safety
/// `i < s.len()` and `m` is [`lanes`]`(s.len(), i)` (or selects fewer); the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load(m: Option<__m256i>, s: &[f32], i: usize) -> __m256 {
    // SAFETY: the caller's promise: 8 values from `i`, or only the selected lanes, lie inside `s`.
    unsafe {
        match m {
            None => _mm256_loadu_ps(s.as_ptr().add(i)),
            Some(m) => _mm256_maskload_ps(s.as_ptr().add(i), m),
        }
    }
}

/// Writes the lanes of `v` that `m` selects to `s` from `i`.
///
/// # Safety
/// As [`load`].
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store(m: Option<__m256i>, s: &mut [f32], i: usize, v: __m256) {
    // SAFETY: the caller's promise, as for `load`: masked lanes are not written.
    unsafe {
        match m {
            None => _mm256_storeu_ps(s.as_mut_ptr().add(i), v),
            Some(m) => _mm256_maskstore_ps(s.as_mut_ptr().add(i), m, v),
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
        // SAFETY (every `load`/`store` below): `i < n` steps by 8 and `lanes(n, i)`
        // selects only the features left from `i`; `xc`, `yc`, `γ`, `β` and a
        // column of `x̂` hold `n` values each; the CPU has AVX2.
        let mut sum = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            sum = _mm256_add_ps(sum, unsafe { load(lanes(n, i), xc, i) });
        }
        let mean = sum8(sum) * inv_n;
        let vm = _mm256_set1_ps(mean);
        let mut squares = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            let m = lanes(n, i);
            let mut d = _mm256_sub_ps(unsafe { load(m, xc, i) }, vm);
            if let Some(m) = m {
                d = _mm256_and_ps(d, _mm256_castsi256_ps(m));
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
            let m = lanes(n, i);
            let h = _mm256_mul_ps(_mm256_sub_ps(unsafe { load(m, xc, i) }, vm), s);
            let out = _mm256_fmadd_ps(h, unsafe { load(m, gamma, i) }, unsafe { load(m, beta, i) });
            unsafe { store(m, yc, i, out) };
            if let Some(hc) = x_hat.as_deref_mut() {
                unsafe { store(m, hc, i, h) };
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
        // SAFETY (every `load`/`store` below): as in `forward`: `dc`, `hc`, `γ`,
        // `dγ`, `dβ` and a column of `dx` hold `n` values each.
        let (mut sum_g, mut sum_gh) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for i in (0..n).step_by(8) {
            let m = lanes(n, i);
            let (d, h) = unsafe { (load(m, dc, i), load(m, hc, i)) };
            unsafe {
                store(m, dgamma, i, _mm256_fmadd_ps(d, h, load(m, dgamma, i)));
                store(m, dbeta, i, _mm256_add_ps(d, load(m, dbeta, i)));
            }
            let g = _mm256_mul_ps(d, unsafe { load(m, gamma, i) });
            sum_g = _mm256_add_ps(sum_g, g);
            sum_gh = _mm256_fmadd_ps(g, h, sum_gh);
        }
        let Some(dx) = dx.as_deref_mut() else { continue };
        let mean_g = _mm256_set1_ps(sum8(sum_g) * inv_n);
        let mean_gh = _mm256_set1_ps(sum8(sum_gh) * inv_n);
        let s = _mm256_set1_ps(inv_std[b]);
        let dxc = &mut dx[b * n..(b + 1) * n];
        for i in (0..n).step_by(8) {
            let m = lanes(n, i);
            let (d, h, w) = unsafe { (load(m, dc, i), load(m, hc, i), load(m, gamma, i)) };
            // (d·w − mean_g − h·mean_gh)/σ
            let centred = _mm256_fmsub_ps(d, w, _mm256_fmadd_ps(h, mean_gh, mean_g));
            unsafe { store(m, dxc, i, _mm256_mul_ps(centred, s)) };
        }
    }
}
