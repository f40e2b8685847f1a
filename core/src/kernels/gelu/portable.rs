//! The GELU in plain Rust, one value at a time: the vector levels' algorithm
//! (see the module docs) without FMA, `z²` split exactly through f64.

use super::{INV_SQRT_2PI, LIMIT, MID, P, R, SMALL, T};

/// `Σ c_k·x^k` by Horner, `c` highest degree first.
fn poly(c: &[f32], x: f32) -> f32 {
    c.iter().fold(0.0, |p, &c| p * x + c)
}

/// `(Φ(x), φ(x))` for `x` clamped to ±[`LIMIT`] (NaN gives NaN).
fn cdf_and_density(x: f32) -> (f32, f32) {
    let z = x.abs();
    // z² = hi + lo exactly (a 24-bit square fits f64), then e^{−hi/2}·(1 − lo/2).
    let square = x as f64 * x as f64;
    let hi = square as f32;
    let lo = (square - hi as f64) as f32;
    let e = (-0.5 * hi).exp();
    let e = e - e * (0.5 * lo);
    let cdf = if z < SMALL {
        0.5 + x * poly(&T, hi)
    } else {
        let q = e * poly(if z < MID { &P } else { &R }, 1.0 / hi) / z;
        if x < 0.0 {
            q
        } else {
            1.0 - q
        }
    };
    (cdf, e * INV_SQRT_2PI)
}

/// [`super::gelu`] at the portable level.
pub(super) fn gelu(v: &mut [f32]) {
    for x in v {
        let (cdf, _) = cdf_and_density(x.clamp(-LIMIT, LIMIT));
        // Below −LIMIT, gelu is −0: multiplying −∞ by Φ = 0 would give NaN.
        *x = x.max(-LIMIT) * cdf;
    }
}

/// [`super::gelu_backward`] at the portable level.
pub(super) fn gelu_backward(x: &[f32], g: &mut [f32]) {
    for (g, &x) in g.iter_mut().zip(x) {
        let x = x.clamp(-LIMIT, LIMIT);
        let (cdf, density) = cdf_and_density(x);
        *g *= cdf + x * density;
    }
}

/// [`super::gelu_and_derivative`] at the portable level.
pub(super) fn gelu_and_derivative(x: &[f32], y: &mut [f32], d: &mut [f32]) {
    for ((&x, y), d) in x.iter().zip(y).zip(d) {
        let clamped = x.clamp(-LIMIT, LIMIT);
        let (cdf, density) = cdf_and_density(clamped);
        *y = x.max(-LIMIT) * cdf;
        *d = cdf + clamped * density;
    }
}
