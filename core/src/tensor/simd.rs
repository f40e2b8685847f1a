//! What hand-written vector kernels in generic layer code need: a way to see
//! `&[T]` as `&[f32]` (the kernels are f32 only) and the CPU check.
//!
//! Generic layer code is monomorphised in the user's crate, compiled for the
//! x86-64 baseline (SSE2) unless the user sets `target-cpu`; kernels behind a
//! `#[target_feature]` and a run-time check let the same binary use AVX-512
//! where the CPU has it and still run on older ones.

/// `s` as `&[f32]` when `T` is `f32`: lets generic layer code hand f32 data to
/// hand-written vector kernels.
#[inline(always)]
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: `T` is `f32`, checked by its type id.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// Whether the CPU has the AVX-512 subset the hand-written kernels use.
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Vector `exp` and `ln` for f32 with AVX-512: the softmax cross-entropy of a
/// small network spent a tenth of its training step in libm's scalar `expf`
/// and `logf`. Within 2 ulp of the exact values (Cephes' polynomials, the
/// exponent handled by `vscalefps` / `vgetexpps`), NaN passing through.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// `exp(x)` lane by lane: 0 below about −103.9 (and for −∞), ∞ above 88.7.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn exp(x: __m512) -> __m512 {
        // Below −104, e^x is 0 in f32 anyway; clamping keeps `r` exact. `max`
        // returns its second operand when one is NaN, so NaN stays NaN.
        let x = _mm512_max_ps(_mm512_set1_ps(-104.0), x);
        let x = _mm512_min_ps(_mm512_set1_ps(89.0), x);
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        // r = x − n·ln 2 in two parts (Cody–Waite), |r| ≤ ln 2 / 2.
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        // e^r = 1 + r + r²·P(r), then scaled by 2^n.
        let er = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(er, n)
    }

    /// `ln(x)` lane by lane for positive `x` (−∞ at 0, NaN below 0 or for NaN, ∞ at ∞).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn ln(x: __m512) -> __m512 {
        // x = m·2^e with m in [1, 2); then m in [√½, √2) by halving the large ones.
        let mut e = _mm512_getexp_ps(x);
        let mut m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_NAN>(x);
        let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, _mm512_set1_ps(std::f32::consts::SQRT_2));
        m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5));
        e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0));
        let z = _mm512_sub_ps(m, _mm512_set1_ps(1.0));
        let mut p = _mm512_set1_ps(7.037_683_6e-2);
        for c in [
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ] {
            p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(c));
        }
        let z2 = _mm512_mul_ps(z, z);
        // ln m = z − z²/2 + z³·P(z), plus e·ln 2 in two parts.
        let mut y = _mm512_mul_ps(_mm512_mul_ps(z2, z), p);
        y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.121_944_4e-4), y);
        y = _mm512_fnmadd_ps(z2, _mm512_set1_ps(0.5), y);
        let lnm = _mm512_add_ps(z, y);
        let out = _mm512_fmadd_ps(e, _mm512_set1_ps(0.693_359_4), lnm);
        // getexp/getmant give −∞ for 0 and ∞ for ∞ through e; x < 0 is NaN via getmant.
        let zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_setzero_ps());
        let inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_set1_ps(f32::INFINITY));
        let out = _mm512_mask_mov_ps(out, zero, _mm512_set1_ps(f32::NEG_INFINITY));
        _mm512_mask_mov_ps(out, inf, _mm512_set1_ps(f32::INFINITY))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn lanes(f: impl Fn(__m512) -> __m512, xs: &[f32]) -> Vec<f32> {
            xs.chunks(16)
                .flat_map(|c| {
                    let mut v = [0.0f32; 16];
                    v[..c.len()].copy_from_slice(c);
                    let mut out = [0.0f32; 16];
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_loadu_ps(v.as_ptr()))) };
                    out[..c.len()].to_vec()
                })
                .collect()
        }

        fn check(name: &str, got: &[f32], xs: &[f32], exact: impl Fn(f64) -> f64) {
            for (&g, &x) in got.iter().zip(xs) {
                // The exact value rounded to f32 (so beyond f32::MAX, ∞).
                let want = exact(x as f64) as f32 as f64;
                let ok = if want.is_nan() {
                    g.is_nan()
                } else if want.is_infinite() || want == 0.0 || (want.abs() < f32::MIN_POSITIVE as f64) {
                    (g as f64 - want).abs() <= f32::MIN_POSITIVE as f64 || g as f64 == want
                } else {
                    ((g as f64 - want) / want).abs() <= 2.5e-7
                };
                assert!(ok, "{name}({x}) = {g}, want {want}");
            }
        }

        #[test]
        fn exp_and_ln_are_within_2_ulp_and_keep_special_values() {
            if !crate::tensor::simd::has_avx512() {
                return;
            }
            let mut xs: Vec<f32> = (-2080..=1780).map(|i| i as f32 * 0.05 + 0.013).collect();
            xs.extend([0.0, -0.0, 1.0, -1.0, 88.7, 89.5, -103.0, -150.0, -1e30, 1e30]);
            xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-7, -1e-7]);
            let got = lanes(|v| unsafe { exp(v) }, &xs);
            check("exp", &got, &xs, f64::exp);
            let mut ys: Vec<f32> = (-300..=300).map(|i| 10f32.powf(i as f32 * 0.1) * 1.37).collect();
            ys.extend((1..2000).map(|i| i as f32 * 1e-3));
            ys.extend([1.0, 2.0, 0.5, std::f32::consts::SQRT_2, 1.4142134, f32::MIN_POSITIVE, 0.0, -1.0]);
            ys.extend([f32::INFINITY, f32::NAN, f32::MAX, 1e-40]);
            let got = lanes(|v| unsafe { ln(v) }, &ys);
            check("ln", &got, &ys, f64::ln);
        }
    }
}
