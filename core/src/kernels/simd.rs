//! The vector math the kernels share: `exp` and `ln` for each level's
//! registers, and AVX2's `first_lanes` mask.

/// The polynomials and constants the vector `exp` and `ln` of every width share.
#[cfg(target_arch = "x86_64")]
mod cephes {
    /// ln 2 in two parts (Cody–Waite): `LN2_HI` has few significant bits, so `n·LN2_HI` is exact.
    pub(super) const LN2_HI: f32 = 0.693_359_4;
    pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
    /// Cephes' `expf` polynomial for e^r on |r| ≤ ln 2 / 2, highest degree first.
    pub(super) const EXP_POLY: [f32; 6] =
        [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
    /// Cephes' `logf` polynomial for ln(1 + z) on √½ ≤ 1 + z < √2, highest degree first.
    pub(super) const LN_POLY: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
}

/// Vector `exp` and `ln` for f32 with AVX-512, for the softmax cross-entropy
/// in place of libm's scalar `expf` and `logf`. Within 2 ulp of the exact
/// values (Cephes' polynomials, the exponent handled by `vscalefps` /
/// `vgetexpps`), NaN passing through.
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
        // r = x − n·ln 2, |r| ≤ ln 2 / 2.
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(super::cephes::LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(super::cephes::LN2_LO), r);
        let mut p = _mm512_set1_ps(super::cephes::EXP_POLY[0]);
        for c in super::cephes::EXP_POLY[1..].iter().copied() {
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
        let mut p = _mm512_set1_ps(super::cephes::LN_POLY[0]);
        for c in super::cephes::LN_POLY[1..].iter().copied() {
            p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(c));
        }
        let z2 = _mm512_mul_ps(z, z);
        // ln m = z − z²/2 + z³·P(z), plus e·ln 2 in two parts.
        let mut y = _mm512_mul_ps(_mm512_mul_ps(z2, z), p);
        y = _mm512_fmadd_ps(e, _mm512_set1_ps(super::cephes::LN2_LO), y);
        y = _mm512_fnmadd_ps(z2, _mm512_set1_ps(0.5), y);
        let lnm = _mm512_add_ps(z, y);
        let out = _mm512_fmadd_ps(e, _mm512_set1_ps(super::cephes::LN2_HI), lnm);
        // getexp/getmant give −∞ for 0 and ∞ for ∞ through e; x < 0 is NaN via getmant.
        let zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_setzero_ps());
        let inf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_set1_ps(f32::INFINITY));
        let out = _mm512_mask_mov_ps(out, zero, _mm512_set1_ps(f32::NEG_INFINITY));
        _mm512_mask_mov_ps(out, inf, _mm512_set1_ps(f32::INFINITY))
    }
}

/// Vector `exp` and `ln` for f32 with AVX2 and FMA, for CPUs without AVX-512
/// (AMD before Zen 4): [`avx512`]'s polynomials, with the exponent handled by
/// integer arithmetic on the float's bits instead of `vscalefps` /
/// `vgetexpps`. Within 2 ulp of the exact values, NaN passing through.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// The first `n ≤ 8` lanes of a register, as AVX2's masked loads and stores take them.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn first_lanes(n: usize) -> __m256i {
        static ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        debug_assert!(n <= 8);
        let lanes = &ONES_THEN_ZEROS[8 - n.min(8)..][..8];
        // SAFETY: `lanes` holds 8 i32s, one 256-bit register (an unaligned load);
        // the CPU has AVX, part of this function's AVX2.
        unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
    }

    /// `2^n` for integral `n` in −126..=127, built from its exponent bits.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn pow2(n: __m256) -> __m256 {
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
        _mm256_castsi256_ps(bits)
    }

    /// `exp(x)` lane by lane: 0 below about −103.9 (and for −∞), ∞ above 88.7.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn exp(x: __m256) -> __m256 {
        // As in `avx512::exp`; `max`/`min` return their second operand for NaN.
        let x = _mm256_max_ps(_mm256_set1_ps(-104.0), x);
        let x = _mm256_min_ps(_mm256_set1_ps(89.0), x);
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(super::cephes::LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(super::cephes::LN2_LO), r);
        let mut p = _mm256_set1_ps(super::cephes::EXP_POLY[0]);
        for c in super::cephes::EXP_POLY[1..].iter().copied() {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let er = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r), _mm256_set1_ps(1.0));
        // n is in −150..=129: scale by 2^⌊n/2⌋ then 2^(n − ⌊n/2⌋), both normal
        // powers of two, so the one rounding is the last (into subnormals or ∞).
        let half = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5)));
        let y = _mm256_mul_ps(_mm256_mul_ps(er, pow2(half)), pow2(_mm256_sub_ps(n, half)));
        // NaN lanes: the integer route above would give garbage.
        _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
    }

    /// `ln(x)` lane by lane for positive `x` (−∞ at 0, NaN below 0 or for NaN, ∞ at ∞).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn ln(x: __m256) -> __m256 {
        // Subnormals: scaled by 2^23 into the normal range first.
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(f32::MIN_POSITIVE));
        let xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8_388_608.0)), tiny);
        let bits = _mm256_castps_si256(xs);
        // x = m·2^e with m in [1, 2); then m in [√½, √2) by halving the large ones.
        let mut e =
            _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(127)));
        e = _mm256_sub_ps(e, _mm256_and_ps(tiny, _mm256_set1_ps(23.0)));
        let mant = _mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x3f80_0000),
        );
        let mut m = _mm256_castsi256_ps(mant);
        let big = _mm256_cmp_ps::<_CMP_GT_OQ>(m, _mm256_set1_ps(std::f32::consts::SQRT_2));
        m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5)), big);
        e = _mm256_add_ps(e, _mm256_and_ps(big, _mm256_set1_ps(1.0)));
        let z = _mm256_sub_ps(m, _mm256_set1_ps(1.0));
        let mut p = _mm256_set1_ps(super::cephes::LN_POLY[0]);
        for c in super::cephes::LN_POLY[1..].iter().copied() {
            p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(c));
        }
        let z2 = _mm256_mul_ps(z, z);
        let mut y = _mm256_mul_ps(_mm256_mul_ps(z2, z), p);
        y = _mm256_fmadd_ps(e, _mm256_set1_ps(super::cephes::LN2_LO), y);
        y = _mm256_fnmadd_ps(z2, _mm256_set1_ps(0.5), y);
        let out = _mm256_fmadd_ps(e, _mm256_set1_ps(super::cephes::LN2_HI), _mm256_add_ps(z, y));
        // The special values: 0 → −∞, ∞ → ∞, below 0 or NaN → NaN.
        let special = |cond: __m256, v: f32, out: __m256| _mm256_blendv_ps(out, _mm256_set1_ps(v), cond);
        let out = special(_mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_setzero_ps()), f32::NEG_INFINITY, out);
        let out = special(_mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_set1_ps(f32::INFINITY)), f32::INFINITY, out);
        special(_mm256_cmp_ps::<_CMP_NGE_UQ>(x, _mm256_setzero_ps()), f32::NAN, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::{tested_levels, Isa};

    /// Inputs for `exp`: a fine grid over the whole range and the edges.
    fn exp_inputs() -> Vec<f32> {
        let mut xs: Vec<f32> = (-2080..=1780).map(|i| i as f32 * 0.05 + 0.013).collect();
        xs.extend([0.0, -0.0, 1.0, -1.0, 88.7, 89.5, -103.0, -150.0, -1e30, 1e30]);
        xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-7, -1e-7]);
        xs
    }

    /// Inputs for `ln`: 60 decades, a fine grid near 1 and the edges.
    fn ln_inputs() -> Vec<f32> {
        let mut ys: Vec<f32> = (-300..=300).map(|i| 10f32.powf(i as f32 * 0.1) * 1.37).collect();
        ys.extend((1..2000).map(|i| i as f32 * 1e-3));
        ys.extend([1.0, 2.0, 0.5, std::f32::consts::SQRT_2, 1.4142134, f32::MIN_POSITIVE, 0.0, -1.0]);
        ys.extend([f32::INFINITY, f32::NAN, f32::MAX, 1e-40]);
        ys
    }

    /// Whether every result is within 2 ulp of the exact value (special values exactly).
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

    /// `exp` (or `ln`) of each of `xs` at level `isa`, a register at a time (the
    /// portable level: the standard library's scalar functions).
    fn at_level(isa: Isa, xs: &[f32], ln: bool) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        fn lanes<const L: usize>(xs: &[f32], f: impl Fn(&mut [f32; L])) -> Vec<f32> {
            let mut out = Vec::new();
            for c in xs.chunks(L) {
                let mut v = [0.0f32; L];
                v[..c.len()].copy_from_slice(c);
                f(&mut v);
                out.extend_from_slice(&v[..c.len()]);
            }
            out
        }
        match isa.checked() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => lanes::<16>(xs, |v| {
                use std::arch::x86_64::*;
                #[target_feature(enable = "avx512f")]
                fn apply(v: &mut [f32; 16], ln: bool) {
                    // SAFETY: 16 values, one whole register; AVX-512F is this function's.
                    let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
                    let y = if ln { super::avx512::ln(x) } else { super::avx512::exp(x) };
                    // SAFETY: as for the load.
                    unsafe { _mm512_storeu_ps(v.as_mut_ptr(), y) };
                }
                // SAFETY: `checked` asserted that the CPU has the level's features.
                unsafe { apply(v, ln) }
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => lanes::<8>(xs, |v| {
                use std::arch::x86_64::*;
                #[target_feature(enable = "avx2,fma")]
                fn apply(v: &mut [f32; 8], ln: bool) {
                    // SAFETY: 8 values, one whole register; AVX2 is this function's.
                    let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
                    let y = if ln { super::avx2::ln(x) } else { super::avx2::exp(x) };
                    // SAFETY: as for the load.
                    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), y) };
                }
                // SAFETY: `checked` asserted that the CPU has the level's features.
                unsafe { apply(v, ln) }
            }),
            _ => xs.iter().map(|&x| if ln { x.ln() } else { x.exp() }).collect(),
        }
    }

    #[test]
    fn exp_and_ln_are_within_2_ulp_and_keep_special_values_at_every_level() {
        let (xs, ys) = (exp_inputs(), ln_inputs());
        for isa in tested_levels("vector exp and ln") {
            check(&format!("{isa:?} exp"), &at_level(isa, &xs, false), &xs, f64::exp);
            check(&format!("{isa:?} ln"), &at_level(isa, &ys, true), &ys, f64::ln);
        }
    }
}
