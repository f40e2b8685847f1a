//! Products with compact weights (weight-only quantization, `crate::quant`):
//! `y = s ⊙ (Q·x) + b` with `Q` int8 and one scale per row, and `y = W·x + b`
//! with `W` in bfloat16, for one f32 sample (batch 1: the weights are read once,
//! converted to f32 in registers on the fly), and the conversions to f32 that
//! larger batches use before the f32 product.
//!
//! `q`/`w` hold `y.len()` rows of `x.len()` values, row-major (PyTorch's
//! `[out, in]`). Each level sums in f32 in its own order, so levels differ in
//! the last bits; none depends on the thread count. The exception: AVX2's int8
//! product takes the input in 16-bit fixed point (its largest magnitude as 2¹⁴)
//! and sums exactly in integers, which differs from f32 by up to 2⁻¹⁵ of the
//! largest input per product, far below the int8 weights' own rounding (2⁻⁸ of
//! each row's largest weight).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

use super::Isa;

/// Checks the operands' sizes; the kernels rely on them.
fn check(len: usize, x: &[f32], y: &[f32], scales: Option<&[f32]>, bias: Option<&[f32]>) {
    assert!(len == x.len() * y.len(), "weights are {len} values, not {} × {}", y.len(), x.len());
    assert!(scales.is_none_or(|s| s.len() == y.len()), "one scale per row");
    assert!(bias.is_none_or(|b| b.len() == y.len()), "one bias per row");
}

/// `y[o] = scales[o] · Σ_i q[o, i]·x[i] + bias[o]` at level `isa`.
///
/// Panics if the CPU lacks `isa` or the sizes disagree (`q`: `y.len()` rows of `x.len()`).
pub(crate) fn int8_gemv(isa: Isa, q: &[i8], scales: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    check(q.len(), x, y, Some(scales), bias);
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted AVX-512F (and the level's other features); `check`
        // asserted the sizes the kernel reads and writes within.
        Isa::Avx512 => unsafe { avx512::int8_gemv(q, scales, x, bias, y) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA, and the sizes agree.
        Isa::Avx2 => unsafe { avx2::int8_gemv(q, scales, x, bias, y) },
        _ => portable::int8_gemv(q, scales, x, bias, y),
    }
}

/// `y[o] = Σ_i w[o, i]·x[i] + bias[o]` with `w` bfloat16 bits, at level `isa`.
///
/// Panics if the CPU lacks `isa` or the sizes disagree.
pub(crate) fn bf16_gemv(isa: Isa, w: &[u16], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    check(w.len(), x, y, None, bias);
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted AVX-512F; `check` asserted the sizes.
        Isa::Avx512 => unsafe { avx512::bf16_gemv(w, x, bias, y) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA, and the sizes agree.
        Isa::Avx2 => unsafe { avx2::bf16_gemv(w, x, bias, y) },
        _ => portable::bf16_gemv(w, x, bias, y),
    }
}

/// The scale of the 16-bit fixed point: the largest |x| maps to 2¹⁴, so a sum of
/// [`FLUSH`] products `q·xq` (|q| ≤ 127) stays below 2³¹ in 32-bit integers.
#[cfg(target_arch = "x86_64")]
const FIXED_ONE: f32 = 16384.0;

/// Columns summed in 32-bit integers before the sum is added to an f32 one:
/// `FLUSH/8` products per lane of at most 2·127·2¹⁴ each stay below 2³¹.
#[cfg(target_arch = "x86_64")]
const FLUSH: usize = 4096;

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// The input in fixed point, per thread, grown once.
    static FIXED: std::cell::RefCell<Vec<i16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f(Some((xq, unit)))` with `x ≈ unit·xq`, `xq` in 16-bit fixed point (the
/// largest |x| maps to ±2¹⁴: rounding errs by at most 2⁻¹⁵ of it), or `f(None)`
/// when `x` holds a NaN or an infinity. `convert(x, xq)` writes `xq` and returns
/// the largest |x|, or `None` for a non-finite `x`.
#[cfg(target_arch = "x86_64")]
fn with_fixed_point<R>(
    x: &[f32],
    convert: impl FnOnce(&[f32], &mut [i16]) -> Option<f32>,
    f: impl FnOnce(Option<(&[i16], f32)>) -> R,
) -> R {
    FIXED.with_borrow_mut(|xq| {
        if xq.len() != x.len() {
            xq.resize(x.len(), 0);
        }
        match convert(x, xq) {
            None => f(None),
            Some(max) => f(Some((xq, max / FIXED_ONE))),
        }
    })
}

/// `out[o, i] = scales[o] · q[o, i]`, for rows of `cols` values (the compiler vectorises it).
pub(crate) fn dequantize_int8(q: &[i8], scales: &[f32], cols: usize, out: &mut [f32]) {
    for ((q, o), &s) in q.chunks_exact(cols).zip(out.chunks_exact_mut(cols)).zip(scales) {
        o.iter_mut().zip(q).for_each(|(o, &q)| *o = f32::from(q) * s);
    }
}

/// `out[k] = w[k]` widened from bfloat16 (exact: the bits shifted up by 16).
pub(crate) fn bf16_to_f32(w: &[u16], out: &mut [f32]) {
    out.iter_mut().zip(w).for_each(|(o, &w)| *o = f32::from_bits(u32::from(w) << 16));
}
