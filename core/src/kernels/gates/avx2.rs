//! The gate nonlinearities with AVX2 and FMA: 8 values per step, the tail
//! through a whole register (masked stores are slow on AMD).

use super::{TANH_POLY, TANH_SMALL};
use crate::kernels::simd::avx2::exp;
use std::arch::x86_64::*;

/// `1/(1 + e^−x)` lane by lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sigmoid8(x: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), x))))
}

/// `tanh(x)` lane by lane (Cephes' `tanhf`, see the module docs).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tanh8(x: __m256) -> __m256 {
    // Both branches on |x|, then the sign of x (so tanh(−0) = −0).
    let sign_bit = _mm256_set1_ps(-0.0);
    let ax = _mm256_andnot_ps(sign_bit, x);
    // |x| < 0.625: |x| + |x|·x²·P(x²).
    let s = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(TANH_POLY[0]);
    for c in TANH_POLY[1..].iter().copied() {
        p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(c));
    }
    let small = _mm256_fmadd_ps(_mm256_mul_ps(p, s), ax, ax);
    // Otherwise 1 − 2/(e^{2|x|} + 1).
    let one = _mm256_set1_ps(1.0);
    let e = exp(_mm256_add_ps(ax, ax));
    let large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(e, one)));
    // NaN compares false: it takes the large branch, where it stays NaN.
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(ax, _mm256_set1_ps(TANH_SMALL));
    _mm256_or_ps(_mm256_blendv_ps(large, small, is_small), _mm256_and_ps(x, sign_bit))
}

/// `f` over `v` in place, 8 lanes at a time, the tail copied through a whole register.
#[inline(always)]
fn map8(v: &mut [f32], f: impl Fn(__m256) -> __m256) {
    let (chunks, tail) = v.as_chunks_mut::<8>();
    for c in chunks {
        // SAFETY: 8 values, one whole register; the caller has AVX (its AVX2 target feature).
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), f(_mm256_loadu_ps(c.as_ptr()))) };
    }
    if !tail.is_empty() {
        let mut lanes = [0.0f32; 8];
        lanes[..tail.len()].copy_from_slice(tail);
        // SAFETY: 8 values, one whole register, as above.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), f(_mm256_loadu_ps(lanes.as_ptr()))) };
        let len = tail.len();
        tail.copy_from_slice(&lanes[..len]);
    }
}

/// [`super::sigmoid`] with AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sigmoid(v: &mut [f32]) {
    map8(v, |x| sigmoid8(x))
}

/// [`super::tanh`] with AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tanh(v: &mut [f32]) {
    map8(v, |x| tanh8(x))
}

/// [`super::lstm_cell_backward`] compiled for AVX2: the portable loop,
/// vectorised by the compiler for this level's registers (the same bits).
///
/// # Safety
/// The CPU supports AVX2 and FMA; the lengths agree as [`super::lstm_cell_backward`] asserts.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn lstm_cell_backward(
    gates: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dy: &[f32],
    dh_next: &[f32],
    dc: &mut [f32],
    dz: &mut [f32],
) {
    super::portable::lstm_cell_backward(gates, c_prev, tanh_c, dy, dh_next, dc, dz)
}
