//! The small products and the direct convolution with AVX-512: 16 output
//! positions per vector, a block of rows kept in registers, fused
//! multiply-adds. Rows and positions past the end are handled without a
//! scalar tail: positions by masked loads and stores, rows by repeating the
//! last real row (computed, never stored).

use super::direct::Padded;
use crate::geometry::Conv2dGeometry;
use std::arch::x86_64::*;

/// The lowest `n` bits set (`n ≤ 16`).
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Rows of the output kept in registers by [`product`].
const PRODUCT_ROWS: usize = 8;

/// The block of rows `r0..` of a product with `rows` rows: how many are real,
/// their starting sums (`init`, or zero) and their rows of `a` (`inner` wide).
/// Rows past the end repeat the last real one (computed, never stored).
#[inline]
#[target_feature(enable = "avx512f")]
fn row_block<'a>(
    a: &'a [f32],
    inner: usize,
    init: Option<&[f32]>,
    r0: usize,
    rows: usize,
) -> (usize, [__m512; PRODUCT_ROWS], [&'a [f32]; PRODUCT_ROWS]) {
    let real = (rows - r0).min(PRODUCT_ROWS);
    let row = |i: usize| r0 + i.min(real - 1);
    let start = std::array::from_fn(|i| _mm512_set1_ps(init.map_or(0.0, |v| v[row(i)])));
    (real, start, std::array::from_fn(|i| &a[row(i) * inner..(row(i) + 1) * inner]))
}

/// [`super::product`].
///
/// # Safety
/// The CPU supports AVX-512F; the lengths are those `super::product` asserts.
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
    for r0 in (0..rows).step_by(PRODUCT_ROWS) {
        let (real, start, a_rows) = row_block(a, inner, init, r0, rows);
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

/// [`super::gram_add`].
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gram_add(out: &mut [f32], n: usize, a: &[f32], b: &[f32]) {
    let (rows, cols) = (a.len() / n.max(1), b.len() / n.max(1));
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
                    // SAFETY: as for `b`'s rows.
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

/// The offset of kernel tap `k` (`(c·kh + i)·kw + j`) from an output's first input.
#[inline(always)]
fn tap_offset(g: &Conv2dGeometry, k: usize, (row, plane): (usize, usize)) -> usize {
    let [kh, kw] = g.kernel;
    let (c, i, j) = (k / (kh * kw), k / kw % kh, k % kw);
    c * plane + i * g.dilation[0] * row + j * g.dilation[1]
}

/// The convolution of one sample straight from its (padded) input `x`, without
/// unfolding it: `y[o][oh][ow] = bias[o] + Σ_k w[o·patch + k] · x[..]`, the
/// arithmetic of [`product`] over the im2col columns, in another order. `input`
/// says whether `x` is the sample itself or its copy by [`Padded::fill`].
///
/// # Safety
/// The CPU supports AVX-512F; `g.stride[1]` is 1.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn direct_forward(
    g: &Conv2dGeometry,
    w: &[f32],
    bias: Option<&[f32]>,
    (x, input): (&[f32], bool),
    y: &mut [f32],
) {
    let (rows, patch, ow_n, ohw) = (g.out_channels, g.patch(), g.out_width, g.out_spatial());
    let [kh, kw] = g.kernel;
    let strides = Padded::of(g).strides(g, input);
    assert!(x.len() >= g.in_channels * strides.1 && y.len() >= rows * ohw && w.len() >= rows * patch);
    assert!(bias.is_none_or(|b| b.len() >= rows) && g.stride[1] == 1);
    for r0 in (0..rows).step_by(PRODUCT_ROWS) {
        let (real, start, w_rows) = row_block(w, patch, bias, r0, rows);
        for oh in 0..g.out_height {
            for ow0 in (0..ow_n).step_by(16) {
                let n = (ow_n - ow0).min(16);
                let first = oh * g.stride[0] * strides.0 + ow0;
                let mut acc = start;
                let mut k = 0;
                for c in 0..g.in_channels {
                    for i in 0..kh {
                        let row_at = first + c * strides.1 + i * g.dilation[0] * strides.0;
                        for j in 0..kw {
                            let at = row_at + j * g.dilation[1];
                            debug_assert!(at + n <= x.len() && k < patch);
                            // SAFETY: every tap of every output lies inside `x` (`Padded`).
                            let v = unsafe { _mm512_maskz_loadu_ps(mask(n), x.as_ptr().add(at)) };
                            for (acc, wr) in acc.iter_mut().zip(&w_rows) {
                                // SAFETY: `k < patch = wr.len()`.
                                *acc =
                                    _mm512_fmadd_ps(_mm512_set1_ps(unsafe { *wr.get_unchecked(k) }), v, *acc);
                            }
                            k += 1;
                        }
                    }
                }
                let out = oh * ow_n + ow0;
                for (i, acc) in acc.iter().enumerate().take(real) {
                    let yr = &mut y[(r0 + i) * ohw..][out..out + n];
                    // SAFETY: `yr` holds the `n` lanes written.
                    unsafe { _mm512_mask_storeu_ps(yr.as_mut_ptr(), mask(n), *acc) };
                }
            }
        }
    }
}

/// Loads `n ≤ 16` values at `x[at..]`, zeros in the other lanes.
///
/// # Safety
/// `at + n ≤ x.len()` (checked in debug builds: callers derive it from the geometry).
#[inline(always)]
unsafe fn load(x: &[f32], at: usize, n: usize) -> __m512 {
    debug_assert!(at + n <= x.len());
    // SAFETY: the caller's bound; masked-off lanes are not read.
    unsafe { _mm512_maskz_loadu_ps(mask(n), x.as_ptr().add(at)) }
}

/// The weight (and bias) gradient of one sample straight from its (padded)
/// input: `dw[o·patch + k] += Σ_p dy[o][p] · x[..]` and `db[o] += Σ_p dy[o][p]`,
/// what [`gram_add`] computes from the im2col columns, in another order.
///
/// # Safety
/// The CPU supports AVX-512F; `g.stride[1]` is 1.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn direct_weight_grad(
    g: &Conv2dGeometry,
    (x, input): (&[f32], bool),
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    let (rows, patch, ow_n, ohw) = (g.out_channels, g.patch(), g.out_width, g.out_spatial());
    let strides = Padded::of(g).strides(g, input);
    assert!(x.len() >= g.in_channels * strides.1 && dy.len() >= rows * ohw && dw.len() >= rows * patch);
    assert!(db.as_ref().is_none_or(|b| b.len() >= rows) && g.stride[1] == 1);
    for r0 in (0..rows).step_by(GRAM_ROWS) {
        let real_rows = (rows - r0).min(GRAM_ROWS);
        let dy_rows: [&[f32]; GRAM_ROWS] =
            std::array::from_fn(|i| &dy[(r0 + i.min(real_rows - 1)) * ohw..][..ohw]);
        for k0 in (0..patch).step_by(GRAM_COLS) {
            let real_cols = (patch - k0).min(GRAM_COLS);
            let taps: [usize; GRAM_COLS] =
                std::array::from_fn(|t| tap_offset(g, k0 + t.min(real_cols - 1), strides));
            let mut acc = [[_mm512_setzero_ps(); GRAM_COLS]; GRAM_ROWS];
            for oh in 0..g.out_height {
                for ow0 in (0..ow_n).step_by(16) {
                    let n = (ow_n - ow0).min(16);
                    let first = oh * g.stride[0] * strides.0 + ow0;
                    let xv: [__m512; GRAM_COLS] = std::array::from_fn(
                        #[inline(always)]
                        // SAFETY: every tap of every output lies inside `x` (`Padded`).
                        |t| unsafe { load(x, first + taps[t], n) },
                    );
                    for (acc, dr) in acc.iter_mut().zip(&dy_rows) {
                        // SAFETY: positions `oh·ow_n + ow0 ..+ n` lie in the row of `ohw` values.
                        let dv = unsafe { load(dr, oh * ow_n + ow0, n) };
                        for (acc, &xv) in acc.iter_mut().zip(&xv) {
                            *acc = _mm512_fmadd_ps(dv, xv, *acc);
                        }
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(real_rows) {
                for (t, acc) in acc.iter().enumerate().take(real_cols) {
                    dw[(r0 + i) * patch + k0 + t] += _mm512_reduce_add_ps(*acc);
                }
            }
        }
    }
    // The bias gradient while this sample's `dy` is still in cache.
    if let Some(db) = db {
        for (db, d) in db.iter_mut().zip(dy.chunks_exact(ohw)) {
            let mut sum = _mm512_setzero_ps();
            for p0 in (0..ohw).step_by(16) {
                // SAFETY: `p0 + (ohw − p0).min(16) ≤ ohw = d.len()`.
                sum = _mm512_add_ps(sum, unsafe { load(d, p0, (ohw - p0).min(16)) });
            }
            *db += _mm512_reduce_add_ps(sum);
        }
    }
}
