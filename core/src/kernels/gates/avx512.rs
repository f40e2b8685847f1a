//! The gate nonlinearities with AVX-512: 16 values per step, the tail masked.

use super::{TANH_POLY, TANH_SMALL};
use crate::kernels::simd::avx512::exp;
use std::arch::x86_64::*;

/// `1/(1 + e^−x)` lane by lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn sigmoid16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    _mm512_div_ps(one, _mm512_add_ps(one, exp(_mm512_sub_ps(_mm512_setzero_ps(), x))))
}

/// `tanh(x)` lane by lane (Cephes' `tanhf`, see the module docs).
#[inline]
#[target_feature(enable = "avx512f")]
fn tanh16(x: __m512) -> __m512 {
    // Both branches on |x|, then the sign of x (so tanh(−0) = −0).
    let ax = _mm512_abs_ps(x);
    // |x| < 0.625: |x| + |x|·x²·P(x²).
    let s = _mm512_mul_ps(x, x);
    let mut p = _mm512_set1_ps(TANH_POLY[0]);
    for c in TANH_POLY[1..].iter().copied() {
        p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(c));
    }
    let small = _mm512_fmadd_ps(_mm512_mul_ps(p, s), ax, ax);
    // Otherwise 1 − 2/(e^{2|x|} + 1).
    let one = _mm512_set1_ps(1.0);
    let e = exp(_mm512_add_ps(ax, ax));
    let large = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, one)));
    // NaN compares false: it takes the large branch, where it stays NaN.
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, _mm512_set1_ps(TANH_SMALL));
    let magnitude = _mm512_castps_si512(_mm512_mask_blend_ps(is_small, large, small));
    let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
    _mm512_castsi512_ps(_mm512_or_si512(magnitude, sign))
}

/// `f` over `v` in place, 16 lanes at a time, the tail through a masked load and store.
#[inline(always)]
fn map16(v: &mut [f32], f: impl Fn(__m512) -> __m512) {
    let (chunks, tail) = v.as_chunks_mut::<16>();
    for c in chunks {
        // SAFETY: 16 values, one whole register; the caller has AVX-512F (its target feature).
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), f(_mm512_loadu_ps(c.as_ptr()))) };
    }
    if !tail.is_empty() {
        let m = ((1u32 << tail.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first `tail.len()` lanes, so the load and
        // the store touch exactly `tail`; the caller has AVX-512F.
        unsafe { _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, f(_mm512_maskz_loadu_ps(m, tail.as_ptr()))) };
    }
}

/// [`super::sigmoid`] with AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sigmoid(v: &mut [f32]) {
    map16(v, |x| sigmoid16(x))
}

/// [`super::tanh`] with AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tanh(v: &mut [f32]) {
    map16(v, |x| tanh16(x))
}

/// [`super::lstm_cell_backward`] compiled for AVX-512: the portable loop,
/// vectorised by the compiler for this level's registers (the same bits).
///
/// # Safety
/// The CPU supports AVX-512F; the lengths agree as [`super::lstm_cell_backward`] asserts.
#[target_feature(enable = "avx512f")]
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
