//! The GELU with AVX-512: 16 values per step, the tail masked.

use super::{INV_SQRT_2PI, LIMIT, MID, P, R, SMALL, T};
use crate::kernels::simd::avx512::exp;
use std::arch::x86_64::*;

/// `x` clamped to ±[`LIMIT`], NaN kept (`max`/`min` return their second operand for NaN).
#[inline]
#[target_feature(enable = "avx512f")]
fn clamp(x: __m512) -> __m512 {
    _mm512_max_ps(_mm512_set1_ps(-LIMIT), _mm512_min_ps(_mm512_set1_ps(LIMIT), x))
}

/// `(Φ(x), φ(x))` lane by lane for `x` within ±[`LIMIT`] (see the module docs).
#[inline]
#[target_feature(enable = "avx512f")]
fn cdf_and_density(x: __m512) -> (__m512, __m512) {
    let z = _mm512_abs_ps(x);
    // x² = hi + lo exactly, then e^{−x²/2} ≈ e^{−hi/2}·(1 − lo/2).
    let hi = _mm512_mul_ps(x, x);
    let lo = _mm512_fmsub_ps(x, x, hi);
    let half = _mm512_set1_ps(0.5);
    let e = exp(_mm512_mul_ps(_mm512_set1_ps(-0.5), hi));
    let e = _mm512_fnmadd_ps(e, _mm512_mul_ps(half, lo), e);
    // |x| < √2: ½ + x·T(x²).
    let mut t = _mm512_set1_ps(T[0]);
    for c in T[1..].iter().copied() {
        t = _mm512_fmadd_ps(t, hi, _mm512_set1_ps(c));
    }
    let small = _mm512_fmadd_ps(x, t, half);
    // Otherwise the tail Q = e·P(1/x²)/|x|, P or R picked coefficient by coefficient.
    let w = _mm512_div_ps(_mm512_set1_ps(1.0), hi);
    let mid = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(z, _mm512_set1_ps(MID));
    let mut p = _mm512_mask_blend_ps(mid, _mm512_set1_ps(R[0]), _mm512_set1_ps(P[0]));
    for (r, c) in R[1..].iter().zip(&P[1..]) {
        p = _mm512_fmadd_ps(p, w, _mm512_mask_blend_ps(mid, _mm512_set1_ps(*r), _mm512_set1_ps(*c)));
    }
    let q = _mm512_div_ps(_mm512_mul_ps(e, p), z);
    let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
    let large = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0), q), q);
    // NaN compares false: it takes the tail, NaN through `e`.
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(z, _mm512_set1_ps(SMALL));
    (_mm512_mask_blend_ps(is_small, large, small), _mm512_mul_ps(e, _mm512_set1_ps(INV_SQRT_2PI)))
}

/// `gelu(x)` lane by lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn gelu16(x: __m512) -> __m512 {
    let (cdf, _) = cdf_and_density(clamp(x));
    // Below −LIMIT, gelu is −0: −∞·(Φ = 0) would give NaN.
    _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-LIMIT), x), cdf)
}

/// `(gelu(x), gelu'(x))` lane by lane, from one `Φ` and `φ`.
#[inline]
#[target_feature(enable = "avx512f")]
fn gelu_and_derivative16(x: __m512) -> (__m512, __m512) {
    let clamped = clamp(x);
    let (cdf, density) = cdf_and_density(clamped);
    let y = _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-LIMIT), x), cdf);
    (y, _mm512_fmadd_ps(clamped, density, cdf))
}

/// `g·gelu'(x)` lane by lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn gelu_backward16(x: __m512, g: __m512) -> __m512 {
    let x = clamp(x);
    let (cdf, density) = cdf_and_density(x);
    _mm512_mul_ps(g, _mm512_fmadd_ps(x, density, cdf))
}

/// [`super::gelu`] with AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gelu(v: &mut [f32]) {
    let (chunks, tail) = v.as_chunks_mut::<16>();
    for c in chunks {
        // SAFETY: 16 values, one whole register; the CPU has AVX-512F (this function's contract).
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), gelu16(_mm512_loadu_ps(c.as_ptr()))) };
    }
    if !tail.is_empty() {
        let m = ((1u32 << tail.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first `tail.len()` lanes, so the load and
        // the store touch exactly `tail`; the CPU has AVX-512F.
        unsafe {
            _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, gelu16(_mm512_maskz_loadu_ps(m, tail.as_ptr())))
        };
    }
}

/// [`super::gelu_backward`] with AVX-512; `x` and `g` have equal lengths.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gelu_backward(x: &[f32], g: &mut [f32]) {
    debug_assert_eq!(x.len(), g.len());
    let (g_chunks, g_tail) = g.as_chunks_mut::<16>();
    let (x_chunks, x_tail) = x.as_chunks::<16>();
    for (g, x) in g_chunks.iter_mut().zip(x_chunks) {
        // SAFETY: 16 values each, one whole register; the CPU has AVX-512F.
        unsafe {
            _mm512_storeu_ps(
                g.as_mut_ptr(),
                gelu_backward16(_mm512_loadu_ps(x.as_ptr()), _mm512_loadu_ps(g.as_ptr())),
            )
        };
    }
    if !g_tail.is_empty() {
        let m = ((1u32 << g_tail.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first `g_tail.len()` lanes, so the loads and
        // the store touch exactly `x_tail` and `g_tail` (equal lengths: the caller
        // asserted `x.len() == g.len()`); the CPU has AVX-512F.
        unsafe {
            let got = gelu_backward16(
                _mm512_maskz_loadu_ps(m, x_tail.as_ptr()),
                _mm512_maskz_loadu_ps(m, g_tail.as_ptr()),
            );
            _mm512_mask_storeu_ps(g_tail.as_mut_ptr(), m, got)
        };
    }
}

/// [`super::gelu_and_derivative`] with AVX-512; the three slices have equal lengths.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gelu_and_derivative(x: &[f32], y: &mut [f32], d: &mut [f32]) {
    debug_assert!(x.len() == y.len() && x.len() == d.len());
    let (x_chunks, x_tail) = x.as_chunks::<16>();
    let (y_chunks, y_tail) = y.as_chunks_mut::<16>();
    let (d_chunks, d_tail) = d.as_chunks_mut::<16>();
    for ((x, y), d) in x_chunks.iter().zip(y_chunks).zip(d_chunks) {
        // SAFETY: 16 values each, one whole register; the CPU has AVX-512F.
        unsafe {
            let (value, slope) = gelu_and_derivative16(_mm512_loadu_ps(x.as_ptr()));
            _mm512_storeu_ps(y.as_mut_ptr(), value);
            _mm512_storeu_ps(d.as_mut_ptr(), slope);
        }
    }
    if !x_tail.is_empty() {
        let m = ((1u32 << x_tail.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first `x_tail.len()` lanes, so the load and
        // the stores touch exactly `x_tail`, `y_tail` and `d_tail` (equal lengths:
        // the caller asserted it); the CPU has AVX-512F.
        unsafe {
            let (value, slope) = gelu_and_derivative16(_mm512_maskz_loadu_ps(m, x_tail.as_ptr()));
            _mm512_mask_storeu_ps(y_tail.as_mut_ptr(), m, value);
            _mm512_mask_storeu_ps(d_tail.as_mut_ptr(), m, slope);
        }
    }
}
