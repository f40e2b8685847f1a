//! The exact GELU `x·Φ(x) = ½·x·(1 + erf(x/√2))` and its derivative
//! `Φ(x) + x·φ(x)` over f32 slices, with the vector `exp` of
//! [`simd`](super::simd) in place of libm's scalar `erff` (a tenth of a
//! character-GPT training step otherwise).
//!
//! `Φ` is Cephes' `erff`/`erfcf`, rewritten in the normal variable `x` (its
//! constants folded in, so `x/√2` is never rounded):
//! - `|x| < √2`: `Φ(x) = ½ + x·T(x²)` (Cephes' `erf t = t·T(t²)`, `t < 1`);
//! - otherwise, with `z = |x|` and the upper tail `Q(z) = ½·erfc(z/√2)`:
//!   `Q(z) = e^{−z²/2}/z · P(1/z²)` (Cephes' `P` below `z = 2√2`, its `R`
//!   above), `Φ = Q` for negative `x` and `1 − Q` for positive.
//!
//! `e^{−z²/2}` takes `z²` exactly as `hi + lo` (an FMA), so the Gaussian's
//! steep tail keeps its relative accuracy: both outputs are within 6 ulp of
//! the exact values (the worst near x = −√2, where `½ + x·T(x²)` cancels; the
//! derivative relative to `Φ + |x·φ|`, as it crosses zero near −0.75), and
//! within a few subnormal steps where `Φ` underflows (x < −13). Inputs are
//! clamped to ±16 inside (both functions have reached their limits there):
//! NaN passes through, `gelu(∞) = ∞`, `gelu(−∞) = −0`, `gelu'(∞) = 1`,
//! `gelu'(−∞) = 0`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
#[cfg(test)]
mod tests;

use super::Isa;

/// `v = gelu(v) = v·Φ(v)`, element by element, at level `isa`.
///
/// Panics if the CPU lacks `isa`.
pub(crate) fn gelu(isa: Isa, v: &mut [f32]) {
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through `v`'s bounds.
        Isa::Avx512 => unsafe { avx512::gelu(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { avx2::gelu(v) },
        _ => portable::gelu(v),
    }
}

/// `g = g ⊙ gelu'(x)`, with `gelu'(x) = Φ(x) + x·φ(x)`, element by element, at level `isa`:
/// the input gradient from the output gradient `g`, in place.
///
/// Panics if the lengths differ or the CPU lacks `isa`.
pub(crate) fn gelu_backward(isa: Isa, x: &[f32], g: &mut [f32]) {
    assert_eq!(x.len(), g.len(), "gelu_backward: x and g differ in length");
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through `x` and `g`, of equal lengths (asserted).
        Isa::Avx512 => unsafe { avx512::gelu_backward(x, g) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA; equal lengths asserted.
        Isa::Avx2 => unsafe { avx2::gelu_backward(x, g) },
        _ => portable::gelu_backward(x, g),
    }
}

/// `y = gelu(x)` and `d = gelu'(x)` in one pass, element by element, at level
/// `isa`: a training pass keeps `d`, so its backward pass is one product
/// (`y` and `d` have the bits [`gelu`] and [`gelu_backward`] with `g = 1` give).
///
/// Panics if the lengths differ or the CPU lacks `isa`.
pub(crate) fn gelu_and_derivative(isa: Isa, x: &[f32], y: &mut [f32], d: &mut [f32]) {
    assert!(x.len() == y.len() && x.len() == d.len(), "gelu_and_derivative: x, y and d differ in length");
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through the three slices, of equal lengths (asserted).
        Isa::Avx512 => unsafe { avx512::gelu_and_derivative(x, y, d) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA; equal lengths asserted.
        Isa::Avx2 => unsafe { avx2::gelu_and_derivative(x, y, d) },
        _ => portable::gelu_and_derivative(x, y, d),
    }
}

/// Inputs are clamped to ±`LIMIT`: `e^{−LIMIT²/2}` is 0 in f32, so `gelu` and
/// its derivative have their limits there, and `LIMIT²` splits exactly.
const LIMIT: f32 = 16.0;

/// Below this |x| (√2, Cephes' `t < 1`), `Φ` takes the `erf` polynomial.
const SMALL: f32 = std::f32::consts::SQRT_2;

/// Below this |x| (2√2, Cephes' `t < 2`), the tail takes `P`, else `R`.
const MID: f32 = 2.0 * std::f32::consts::SQRT_2;

/// `1/√(2π)`: `φ(x) = e^{−x²/2}/√(2π)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `Φ(x) − ½ = x·T(x²)` for |x| < √2: Cephes' `erff` polynomial with
/// `T_k·2^{−k}/(2√2)` for its `T_k`, highest degree first.
const T: [f32; 7] =
    [4.338_686_5e-7, -8.850_097e-6, 1.146_469_3e-4, -1.186_782e-3, 9.973_374e-3, -6.649_036e-2, 3.989_423e-1];

/// `Q(z) = e^{−z²/2}/z · P(1/z²)` for √2 ≤ z < 2√2: Cephes' `erfcf` `P` with
/// `P_k·2^k/√2` for its `P_k`, highest degree first.
const P: [f32; 9] = [
    4.211_994,
    -12.554_048,
    16.687_38,
    -13.179_866,
    7.025_818_3,
    -2.797_040_2,
    9.630_455e-1,
    -3.876_539e-1,
    3.986_851_6e-1,
];

/// As [`P`] for z ≥ 2√2 (Cephes' `R`, one degree less: a leading 0 so the
/// levels can pick coefficients lane by lane).
const R: [f32; 9] = [
    0.0,
    -948.329_9,
    587.281,
    -169.604_23,
    33.047_558,
    -5.743_208,
    1.193_161_6,
    -3.989_167_5e-1,
    3.989_422_3e-1,
];
