//! The small products with AVX2 and FMA (CPUs without AVX-512): the blocking
//! of [`super::avx512`] with 8 output positions per register. A block of
//! output rows by a few registers of positions stays in registers over the
//! whole inner sum, so every load of `b` serves several rows.
//!
//! `product` sums in the order of the AVX-512 kernel, with the same fused
//! multiply-adds, so the two give the same bits; `gram_add` sums 8 lanes
//! rather than 16, so its bits differ from the AVX-512 kernel's.

use crate::kernels::simd::avx2::first_lanes;
use std::arch::x86_64::*;

/// Output rows × registers of 8 positions that [`product`] keeps in registers:
/// 12 sums, and per term 3 loads of `b` and 4 broadcasts of `a`.
const PRODUCT_ROWS: usize = 4;
const PRODUCT_REGISTERS: usize = 3;

/// [`super::product`].
///
/// # Safety
/// The CPU supports AVX2 and FMA; the lengths are those `super::product` asserts.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn product(
    out: &mut [f32],
    n: usize,
    a: &[f32],
    inner: usize,
    b: &[f32],
    init: Option<&[f32]>,
) {
    let rows = out.len() / n.max(1);
    for r0 in (0..rows).step_by(PRODUCT_ROWS) {
        // Rows past the end repeat the last real one (computed, never stored).
        let real = (rows - r0).min(PRODUCT_ROWS);
        let row = |i: usize| r0 + i.min(real - 1);
        let block = RowBlock {
            start: std::array::from_fn(|i| _mm256_set1_ps(init.map_or(0.0, |v| v[row(i)]))),
            a: std::array::from_fn(|i| a[row(i) * inner..].as_ptr()),
            out: out[r0 * n..].as_mut_ptr(),
            real,
        };
        let mut p0 = 0;
        while p0 + 8 * PRODUCT_REGISTERS <= n {
            // SAFETY: positions `p0..p0 + 24` are in every row; `block` points into `a` and `out`.
            unsafe { product_tile::<PRODUCT_REGISTERS>(&block, b.as_ptr(), n, inner, p0, 8) };
            p0 += 8 * PRODUCT_REGISTERS;
        }
        while p0 < n {
            // SAFETY: as above, for the `(n - p0).min(8)` positions from `p0`.
            unsafe { product_tile::<1>(&block, b.as_ptr(), n, inner, p0, (n - p0).min(8)) };
            p0 += 8;
        }
    }
}

/// One block of [`product`]'s output rows: their starting sums, their rows of
/// `a`, where the first one's output starts, and how many are real.
struct RowBlock {
    start: [__m256; PRODUCT_ROWS],
    a: [*const f32; PRODUCT_ROWS],
    out: *mut f32,
    real: usize,
}

/// Positions `p0..p0 + 8·R` of a [`RowBlock`] (`R = 1` with `width < 8`: the
/// first `width` positions of one register, through masked loads and stores).
///
/// # Safety
/// As [`product`]; the positions are in range.
#[inline(always)]
unsafe fn product_tile<const R: usize>(
    block: &RowBlock,
    b: *const f32,
    n: usize,
    inner: usize,
    p0: usize,
    width: usize,
) {
    // SAFETY: the caller's CPU has AVX2.
    let mask = unsafe { first_lanes(width) };
    let mut acc = block.start.map(|s| [s; R]);
    for j in 0..inner {
        // SAFETY: row `j < inner` of `b` (`inner·n` values) at position `p0 < n`.
        let at = unsafe { b.add(j * n + p0) };
        // SAFETY: positions `p0..p0 + width` (`8·R` when `width` is 8) lie in the row;
        // masked-off lanes are not read.
        let x: [__m256; R] = std::array::from_fn(|u| unsafe {
            if width == 8 {
                _mm256_loadu_ps(at.add(8 * u))
            } else {
                _mm256_maskload_ps(at, mask)
            }
        });
        for (acc, &ar) in acc.iter_mut().zip(&block.a) {
            // SAFETY: every row pointer starts a row of `inner` values of `a`, and `j < inner`.
            let w = _mm256_set1_ps(unsafe { *ar.add(j) });
            for (acc, &x) in acc.iter_mut().zip(&x) {
                *acc = _mm256_fmadd_ps(w, x, *acc);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(block.real) {
        // SAFETY: real row `i` of the block, position `p0 < n`.
        let at = unsafe { block.out.add(i * n + p0) };
        for (u, &v) in acc.iter().enumerate() {
            // SAFETY: as for the loads of `b`, in a row of `out`.
            unsafe {
                if width == 8 {
                    _mm256_storeu_ps(at.add(8 * u), v);
                } else {
                    _mm256_maskstore_ps(at, mask, v);
                }
            }
        }
    }
}

/// Rows of `a` and of `b` whose dot products [`gram_add`] accumulates at once:
/// 6 sums, and per step 2 + 3 loads (with 12 sums the 16 registers spill).
const GRAM_ROWS: usize = 2;
const GRAM_COLS: usize = 3;

/// [`super::gram_add`].
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gram_add(out: &mut [f32], n: usize, a: &[f32], b: &[f32]) {
    let (rows, cols) = (a.len() / n.max(1), b.len() / n.max(1));
    let tail = first_lanes(n % 8);
    for r0 in (0..rows).step_by(GRAM_ROWS) {
        let real_rows = (rows - r0).min(GRAM_ROWS);
        let a_rows: [*const f32; GRAM_ROWS] =
            std::array::from_fn(|i| a[(r0 + i.min(real_rows - 1)) * n..].as_ptr());
        for c0 in (0..cols).step_by(GRAM_COLS) {
            let real_cols = (cols - c0).min(GRAM_COLS);
            let b_rows: [*const f32; GRAM_COLS] =
                std::array::from_fn(|j| b[(c0 + j.min(real_cols - 1)) * n..].as_ptr());
            let mut acc = [[_mm256_setzero_ps(); GRAM_COLS]; GRAM_ROWS];
            let mut step = |p0: usize, full: bool| {
                // SAFETY: every row pointer starts a row of `n` values and `p0 < n`;
                // a partial step reads only the lanes below `n`.
                let load = |row: *const f32| unsafe {
                    if full {
                        _mm256_loadu_ps(row.add(p0))
                    } else {
                        _mm256_maskload_ps(row.add(p0), tail)
                    }
                };
                let bv = b_rows.map(load);
                for (acc, &ar) in acc.iter_mut().zip(&a_rows) {
                    let av = load(ar);
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm256_fmadd_ps(av, bv, *acc);
                    }
                }
            };
            let mut p0 = 0;
            while p0 + 8 <= n {
                step(p0, true);
                p0 += 8;
            }
            if p0 < n {
                step(p0, false);
            }
            for (i, acc) in acc.iter().enumerate().take(real_rows) {
                for (j, &acc) in acc.iter().enumerate().take(real_cols) {
                    out[(r0 + i) * cols + c0 + j] += sum_lanes(acc);
                }
            }
        }
    }
}

/// The sum of a register's 8 lanes: the halves added, then pairs, then the two left.
#[inline]
#[target_feature(enable = "avx2")]
fn sum_lanes(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
}
