//! The attention tile with AVX-512: 32 (or 16) rows in two (one) registers
//! by 8 columns, each column's value of `B` broadcast.

use super::COLS;
use std::arch::x86_64::*;
use std::ops::Range;

/// [`super::Tile`] with AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F; for every `p` in `p`, the `rows` (16 or 32)
/// values at `a + p·lda` and the values at `b + p·bp + j·bj` (`j < COLS`) are
/// readable, and the `rows` values at `c + j·ldc` are writable and alias neither.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile(
    rows: usize,
    p: Range<usize>,
    a: *const f32,
    lda: usize,
    b: *const f32,
    bp: usize,
    bj: usize,
    alpha: f32,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: the caller's promise, passed on (`rows` picks the register count).
    unsafe {
        if rows == 32 {
            tile_rows::<2>(p, a, lda, b, bp, bj, alpha, c, ldc)
        } else {
            tile_rows::<1>(p, a, lda, b, bp, bj, alpha, c, ldc)
        }
    }
}

/// [`tile`] with `16·R` rows.
///
/// # Safety
/// As [`tile`] with `rows = 16·R`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<const R: usize>(
    p: Range<usize>,
    a: *const f32,
    lda: usize,
    b: *const f32,
    bp: usize,
    bj: usize,
    alpha: f32,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: reads `16·R` values at `a + p·lda` and one at `b + p·bp + j·bj`
    // per step and column, writes `16·R` at `c + j·ldc`: the caller's promise;
    // AVX-512F is its promise too.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); R]; COLS];
        for p in p {
            let (ap, bp) = (a.add(p * lda), b.add(p * bp));
            let mut av = [_mm512_setzero_ps(); R];
            for (r, v) in av.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(ap.add(16 * r));
            }
            for (j, acc) in acc.iter_mut().enumerate() {
                let bv = _mm512_set1_ps(*bp.add(j * bj));
                for (s, &x) in acc.iter_mut().zip(&av) {
                    *s = _mm512_fmadd_ps(x, bv, *s);
                }
            }
        }
        let alpha = _mm512_set1_ps(alpha);
        for (j, acc) in acc.iter().enumerate() {
            for (r, &s) in acc.iter().enumerate() {
                _mm512_storeu_ps(c.add(j * ldc + 16 * r), _mm512_mul_ps(s, alpha));
            }
        }
    }
}
