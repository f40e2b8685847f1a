//! The gate nonlinearities of the recurrent layers, in place over f32 slices:
//! the logistic sigmoid `1/(1 + e^−x)` and `tanh`, with the vector `exp` of
//! [`simd`](super::simd) instead of libm's scalar `expf`/`tanhf` (which an LSTM
//! step would otherwise spend a fifth of its time in).
//!
//! `tanh` is Cephes' `tanhf`: an odd polynomial below |x| = 0.625, else
//! `1 − 2/(e^{2|x|} + 1)` with the sign of `x`. Every level is within a few ulp
//! of the exact values; NaN passes through, `sigmoid(±∞)` is 1 or 0 and
//! `tanh(±∞)` is ±1. The portable loops ([`portable`]) are generic, so layers
//! computing in f64 call them directly.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

use super::Isa;

/// `v = 1/(1 + e^−v)`, element by element, at level `isa`.
///
/// Panics if the CPU lacks `isa`.
pub(crate) fn sigmoid(isa: Isa, v: &mut [f32]) {
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through `v`'s bounds.
        Isa::Avx512 => unsafe { avx512::sigmoid(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { avx2::sigmoid(v) },
        _ => portable::sigmoid(v),
    }
}

/// `v = tanh(v)`, element by element, at level `isa`.
///
/// Panics if the CPU lacks `isa`.
pub(crate) fn tanh(isa: Isa, v: &mut [f32]) {
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through `v`'s bounds.
        Isa::Avx512 => unsafe { avx512::tanh(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { avx2::tanh(v) },
        _ => portable::tanh(v),
    }
}

/// One step of one sample of an LSTM backwards (`layers::Lstm`), at level
/// `isa`. In: the gates i, f, g, o after their nonlinearities (`4n` values),
/// `c_{t−1}`, `tanh(c_t)`, the output's gradient `dy` and `dh_next` (what
/// reaches `h_t` through step `t + 1`), `dc` (what reaches `c_t` through step
/// `t + 1`), `n` values each. Out: `dz`, the gradient of the gates'
/// pre-activations (`4n`), and `dc` becomes what reaches `c_{t−1}`. Every
/// level gives the same bits.
///
/// Panics if the lengths disagree or the CPU lacks `isa`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_cell_backward(
    isa: Isa,
    gates: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dy: &[f32],
    dh_next: &[f32],
    dc: &mut [f32],
    dz: &mut [f32],
) {
    let n = dc.len();
    assert!(
        gates.len() == 4 * n
            && dz.len() == 4 * n
            && [c_prev, tanh_c, dy, dh_next].iter().all(|s| s.len() == n),
        "lstm_cell_backward: misshaped operands"
    );
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the loop reaches memory only through the slices, whose lengths agree (asserted).
        Isa::Avx512 => unsafe { avx512::lstm_cell_backward(gates, c_prev, tanh_c, dy, dh_next, dc, dz) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA; the lengths agree.
        Isa::Avx2 => unsafe { avx2::lstm_cell_backward(gates, c_prev, tanh_c, dy, dh_next, dc, dz) },
        _ => portable::lstm_cell_backward(gates, c_prev, tanh_c, dy, dh_next, dc, dz),
    }
}

/// Cephes' `tanhf` polynomial `P(x²)` for |x| < 0.625 (`tanh x ≈ x + x·x²·P(x²)`), highest degree first.
#[cfg(target_arch = "x86_64")]
const TANH_POLY: [f32; 5] = [-5.704_988_7e-3, 2.063_908_8e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1];

/// Below this |x|, `tanh` takes the polynomial.
#[cfg(target_arch = "x86_64")]
const TANH_SMALL: f32 = 0.625;
