//! f32 kernels for [`super::small`]'s products with AVX-512: 16 output
//! positions per vector, a block of rows kept in registers, fused
//! multiply-adds. Rows and positions past the end are handled without a
//! scalar tail: positions by masked loads and stores, rows by repeating the
//! last real row (computed, never stored).
//!
//! They sum in another order than the portable loops (and with fused
//! multiply-adds), so results depend on the kernel the CPU selects, as for
//! the f32 matrix product (`tensor::sgemm`).

use std::arch::x86_64::*;

/// The lowest `n` bits set (`n ≤ 16`).
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Rows of the output kept in registers by [`product`].
const PRODUCT_ROWS: usize = 8;

/// `out[r·n + p] = init[r] + Σ_j a[r·inner + j] · b[j·n + p]`, as
/// `super::small::product`.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn product(
    out: &mut [f32],
    n: usize,
    a: &[f32],
    inner: usize,
    b: &[f32],
    init: Option<&[f32]>,
) {
    let rows = out.len() / n.max(1);
    assert!(a.len() >= rows * inner && b.len() >= inner * n && init.is_none_or(|i| i.len() >= rows));
    for r0 in (0..rows).step_by(PRODUCT_ROWS) {
        let real = (rows - r0).min(PRODUCT_ROWS);
        let row = |i: usize| r0 + i.min(real - 1);
        let start: [__m512; PRODUCT_ROWS] =
            std::array::from_fn(|i| _mm512_set1_ps(init.map_or(0.0, |v| v[row(i)])));
        let a_rows: [&[f32]; PRODUCT_ROWS] =
            std::array::from_fn(|i| &a[row(i) * inner..(row(i) + 1) * inner]);
        for p0 in (0..n).step_by(16) {
            let m = mask((n - p0).min(16));
            let mut acc = start;
            for j in 0..inner {
                // SAFETY: `j·n + p0 < inner·n ≤ b.len()`; masked-off lanes are not read.
                let x = unsafe { _mm512_maskz_loadu_ps(m, b.as_ptr().add(j * n + p0)) };
                for (acc, ar) in acc.iter_mut().zip(&a_rows) {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(ar[j]), x, *acc);
                }
            }
            for (i, acc) in acc.iter().enumerate().take(real) {
                // SAFETY: `(r0 + i)·n + p0 < rows·n = out.len()`; masked-off lanes are not written.
                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add((r0 + i) * n + p0), m, *acc) };
            }
        }
    }
}

/// Rows of `a` and of `b` whose dot products [`gram_add`] accumulates at once.
const GRAM_ROWS: usize = 8;
const GRAM_COLS: usize = 3;

/// `out[r·cols + c] += Σ_p a[r·n + p] · b[c·n + p]`, as `super::small::gram_add`.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gram_add(out: &mut [f32], n: usize, a: &[f32], b: &[f32]) {
    let (rows, cols) = (a.len() / n.max(1), b.len() / n.max(1));
    assert!(out.len() >= rows * cols);
    for r0 in (0..rows).step_by(GRAM_ROWS) {
        let real_rows = (rows - r0).min(GRAM_ROWS);
        let a_rows: [*const f32; GRAM_ROWS] =
            std::array::from_fn(|i| a[(r0 + i.min(real_rows - 1)) * n..].as_ptr());
        for c0 in (0..cols).step_by(GRAM_COLS) {
            let real_cols = (cols - c0).min(GRAM_COLS);
            let b_rows: [*const f32; GRAM_COLS] =
                std::array::from_fn(|j| b[(c0 + j.min(real_cols - 1)) * n..].as_ptr());
            let mut acc = [[_mm512_setzero_ps(); GRAM_COLS]; GRAM_ROWS];
            for p0 in (0..n).step_by(16) {
                let m = mask((n - p0).min(16));
                // SAFETY: every row pointer starts a row of `n` values and `p0 < n`;
                // masked-off lanes are not read.
                let bv: [__m512; GRAM_COLS] =
                    std::array::from_fn(|j| unsafe { _mm512_maskz_loadu_ps(m, b_rows[j].add(p0)) });
                for (acc, &ar) in acc.iter_mut().zip(&a_rows) {
                    let av = unsafe { _mm512_maskz_loadu_ps(m, ar.add(p0)) };
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(av, bv, *acc);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(real_rows) {
                for (j, acc) in acc.iter().enumerate().take(real_cols) {
                    out[(r0 + i) * cols + c0 + j] += _mm512_reduce_add_ps(*acc);
                }
            }
        }
    }
}
