//! The GELU with AVX2 and FMA: 8 values per step, the tail through a whole
//! register (masked stores are slow on AMD).

use super::{INV_SQRT_2PI, LIMIT, MID, P, R, SMALL, T};
use crate::kernels::simd::avx2::exp;
use std::arch::x86_64::*;

/// `x` clamped to ±[`LIMIT`], NaN kept (`max`/`min` return their second operand for NaN).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn clamp(x: __m256) -> __m256 {
    _mm256_max_ps(_mm256_set1_ps(-LIMIT), _mm256_min_ps(_mm256_set1_ps(LIMIT), x))
}

/// `(Φ(x), φ(x))` lane by lane for `x` within ±[`LIMIT`] (see the module docs).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cdf_and_density(x: __m256) -> (__m256, __m256) {
    let z = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
    // x² = hi + lo exactly, then e^{−x²/2} ≈ e^{−hi/2}·(1 − lo/2).
    let hi = _mm256_mul_ps(x, x);
    let lo = _mm256_fmsub_ps(x, x, hi);
    let half = _mm256_set1_ps(0.5);
    let e = exp(_mm256_mul_ps(_mm256_set1_ps(-0.5), hi));
    let e = _mm256_fnmadd_ps(e, _mm256_mul_ps(half, lo), e);
    // |x| < √2: ½ + x·T(x²).
    let mut t = _mm256_set1_ps(T[0]);
    for c in T[1..].iter().copied() {
        t = _mm256_fmadd_ps(t, hi, _mm256_set1_ps(c));
    }
    let small = _mm256_fmadd_ps(x, t, half);
    // Otherwise the tail Q = e·P(1/x²)/|x|, P or R picked coefficient by coefficient.
    let w = _mm256_div_ps(_mm256_set1_ps(1.0), hi);
    let mid = _mm256_cmp_ps::<_CMP_LT_OQ>(z, _mm256_set1_ps(MID));
    let mut p = _mm256_blendv_ps(_mm256_set1_ps(R[0]), _mm256_set1_ps(P[0]), mid);
    for (r, c) in R[1..].iter().zip(&P[1..]) {
        p = _mm256_fmadd_ps(p, w, _mm256_blendv_ps(_mm256_set1_ps(*r), _mm256_set1_ps(*c), mid));
    }
    let q = _mm256_div_ps(_mm256_mul_ps(e, p), z);
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
    let large = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0), q), q, negative);
    // NaN compares false: it takes the tail, NaN through `e`.
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(z, _mm256_set1_ps(SMALL));
    (_mm256_blendv_ps(large, small, is_small), _mm256_mul_ps(e, _mm256_set1_ps(INV_SQRT_2PI)))
}

/// `gelu(x)` lane by lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu8(x: __m256) -> __m256 {
    let (cdf, _) = cdf_and_density(clamp(x));
    // Below −LIMIT, gelu is −0: −∞·(Φ = 0) would give NaN.
    _mm256_mul_ps(_mm256_max_ps(_mm256_set1_ps(-LIMIT), x), cdf)
}

/// `(gelu(x), gelu'(x))` lane by lane, from one `Φ` and `φ`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu_and_derivative8(x: __m256) -> (__m256, __m256) {
    let clamped = clamp(x);
    let (cdf, density) = cdf_and_density(clamped);
    let y = _mm256_mul_ps(_mm256_max_ps(_mm256_set1_ps(-LIMIT), x), cdf);
    (y, _mm256_fmadd_ps(clamped, density, cdf))
}

/// `g·gelu'(x)` lane by lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu_backward8(x: __m256, g: __m256) -> __m256 {
    let x = clamp(x);
    let (cdf, density) = cdf_and_density(x);
    _mm256_mul_ps(g, _mm256_fmadd_ps(x, density, cdf))
}

/// `g = f(x, g)` over both slices, 8 lanes at a time, the tail copied through whole registers.
#[inline(always)]
fn zip8(x: &[f32], g: &mut [f32], f: impl Fn(__m256, __m256) -> __m256) {
    debug_assert_eq!(x.len(), g.len());
    let (g_chunks, g_tail) = g.as_chunks_mut::<8>();
    let (x_chunks, x_tail) = x.as_chunks::<8>();
    for (g, x) in g_chunks.iter_mut().zip(x_chunks) {
        // SAFETY: 8 values each, one whole register; the caller has AVX (its AVX2 target feature).
        unsafe {
            _mm256_storeu_ps(g.as_mut_ptr(), f(_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(g.as_ptr())))
        };
    }
    if !g_tail.is_empty() {
        let len = g_tail.len();
        let (mut xs, mut gs) = ([0.0f32; 8], [0.0f32; 8]);
        xs[..len].copy_from_slice(&x_tail[..len]);
        gs[..len].copy_from_slice(g_tail);
        // SAFETY: 8 values each, one whole register, as above.
        unsafe {
            _mm256_storeu_ps(gs.as_mut_ptr(), f(_mm256_loadu_ps(xs.as_ptr()), _mm256_loadu_ps(gs.as_ptr())))
        };
        g_tail.copy_from_slice(&gs[..len]);
    }
}

/// [`super::gelu`] with AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gelu(v: &mut [f32]) {
    let (chunks, tail) = v.as_chunks_mut::<8>();
    for c in chunks {
        // SAFETY: 8 values, one whole register; the CPU has AVX2 (this function's contract).
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), gelu8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    if !tail.is_empty() {
        let len = tail.len();
        let mut lanes = [0.0f32; 8];
        lanes[..len].copy_from_slice(tail);
        // SAFETY: 8 values, one whole register, as above.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), gelu8(_mm256_loadu_ps(lanes.as_ptr()))) };
        tail.copy_from_slice(&lanes[..len]);
    }
}

/// [`super::gelu_backward`] with AVX2; `x` and `g` have equal lengths.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gelu_backward(x: &[f32], g: &mut [f32]) {
    zip8(x, g, |x, g| gelu_backward8(x, g))
}

/// [`super::gelu_and_derivative`] with AVX2; the three slices have equal lengths.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gelu_and_derivative(x: &[f32], y: &mut [f32], d: &mut [f32]) {
    debug_assert!(x.len() == y.len() && x.len() == d.len());
    let (x_chunks, x_tail) = x.as_chunks::<8>();
    let (y_chunks, y_tail) = y.as_chunks_mut::<8>();
    let (d_chunks, d_tail) = d.as_chunks_mut::<8>();
    for ((x, y), d) in x_chunks.iter().zip(y_chunks).zip(d_chunks) {
        // SAFETY: 8 values each, one whole register; the CPU has AVX2 (this function's contract).
        unsafe {
            let (value, slope) = gelu_and_derivative8(_mm256_loadu_ps(x.as_ptr()));
            _mm256_storeu_ps(y.as_mut_ptr(), value);
            _mm256_storeu_ps(d.as_mut_ptr(), slope);
        }
    }
    if !x_tail.is_empty() {
        let len = x_tail.len();
        let (mut xs, mut ys, mut ds) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
        xs[..len].copy_from_slice(x_tail);
        // SAFETY: 8 values each, one whole register, as above.
        unsafe {
            let (value, slope) = gelu_and_derivative8(_mm256_loadu_ps(xs.as_ptr()));
            _mm256_storeu_ps(ys.as_mut_ptr(), value);
            _mm256_storeu_ps(ds.as_mut_ptr(), slope);
        }
        y_tail.copy_from_slice(&ys[..len]);
        d_tail.copy_from_slice(&ds[..len]);
    }
}
