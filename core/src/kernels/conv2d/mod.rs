//! The convolutions' small products: row-major matrix products for the small
//! shapes a convolution produces (a weight of `COUT × PATCH` against one
//! sample's im2col columns), and, with AVX-512, kernels that read the input
//! directly instead of its columns ([`Direct`]).
//!
//! Each entry point takes the [`Isa`] to run at and f32 slices; the portable
//! loops ([`portable`]) are generic, so layers computing in f64 call them
//! directly. The vector kernels sum in another order than the portable loops
//! (and with fused multiply-adds), so results depend on the level, never on
//! anything else; the AVX2 and AVX-512 `product` give the same bits.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod direct;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

pub(crate) use direct::Direct;

use super::Isa;

/// `out[r·n + p] = init[r] + Σ_j a[r·inner + j] · b[j·n + p]` (`init` zero if
/// absent): `out` is `rows × n`, `a` is `rows × inner`, `b` is `inner × n`.
pub(crate) fn product(
    isa: Isa,
    out: &mut [f32],
    n: usize,
    a: &[f32],
    inner: usize,
    b: &[f32],
    init: Option<&[f32]>,
) {
    let rows = out.len() / n.max(1);
    assert!(
        isa.supported()
            && a.len() >= rows * inner
            && b.len() >= inner * n
            && init.is_none_or(|i| i.len() >= rows),
        "conv2d::product: operands too short, or a level this CPU lacks"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.supported()` checked the level's CPU features; lengths asserted above.
        Isa::Avx512 => unsafe { avx512::product(out, n, a, inner, b, init) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { avx2::product(out, n, a, inner, b, init) },
        _ => portable::product(out, n, a, inner, b, init),
    }
}

/// `out[r·cols + c] += Σ_p a[r·n + p] · b[c·n + p]`: the dot products of every
/// row of `a` (`rows × n`) with every row of `b` (`cols × n`).
pub(crate) fn gram_add(isa: Isa, out: &mut [f32], n: usize, a: &[f32], b: &[f32]) {
    let (rows, cols) = (a.len() / n.max(1), b.len() / n.max(1));
    assert!(
        isa.supported() && out.len() >= rows * cols,
        "conv2d::gram_add: output too short, or a level this CPU lacks"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level's CPU features were checked when `isa` was chosen; length asserted above.
        Isa::Avx512 => unsafe { avx512::gram_add(out, n, a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { avx2::gram_add(out, n, a, b) },
        _ => portable::gram_add(out, n, a, b),
    }
}
