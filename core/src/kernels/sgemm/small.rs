//! Small products (a tiny network's layers, `m, k ≤ 32`): `A` copied once into
//! whole registers (or read in place), no panels; `C` in register tiles.

use super::{transpose8x8, Mat, MatMut};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx2::first_lanes;

/// Rows and inner size up to which [`small`] holds `A` on the stack.
pub(super) const SMALL_DIM: usize = 32;
/// Rows per block of [`small`]: one AVX-512 register of f32.
pub(super) const SMALL_ROWS: usize = 16;

/// Whether a product is small enough that packing panels costs more than it saves.
pub(super) fn is_small(m: usize, k: usize, n: usize) -> bool {
    m <= SMALL_DIM && k <= SMALL_DIM && m * k * n <= 1 << 15
}

/// [`small`] with AVX2 intrinsics: the portable loop compiled for AVX2 keeps
/// its eight 16-lane sums in all sixteen YMM registers, spills, and rounds
/// every product before adding it. `C` is computed in register tiles
/// ([`small_tile_avx2`]) of two row blocks of eight by four columns, or one
/// block by eight columns for a last odd block: eight independent sums in
/// either, so a product with only 3 or 4 columns (a 3-class layer's weight
/// gradient) does not wait on the multiply-add's latency with one sum per column.
///
/// # Safety
/// As [`sgemm`](super::sgemm), with `m, k ≤ SMALL_DIM`; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn small_avx2(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    use std::arch::x86_64::*;
    debug_assert!(m <= SMALL_DIM && k <= SMALL_DIM);
    const LANES: usize = 8;
    // A's columns, padded to whole registers: in place when contiguous.
    let mut buf = [std::mem::MaybeUninit::<__m256>::uninit(); SMALL_DIM * SMALL_DIM / LANES];
    let blocks = m.div_ceil(LANES);
    // Read in place when A's columns are contiguous and fill whole blocks.
    let in_place = a.rs == 1 && a.cs > 0 && m.is_multiple_of(LANES);
    if !in_place {
        // Rows contiguous (a dense layer's weights in the forward pass): whole
        // 8-deep stretches of each block of rows by 8×8 register transposes,
        // which write every lane (zeros past the last row); the rest element by
        // element over zeros.
        let whole = if a.cs == 1 { k / LANES * LANES } else { 0 };
        buf[whole * blocks..k * blocks].iter_mut().for_each(|v| {
            v.write(_mm256_setzero_ps());
        });
        let b32 = buf.as_mut_ptr() as *mut f32;
        for blk in 0..blocks {
            let i0 = blk * LANES;
            for p0 in (0..whole).step_by(LANES) {
                // SAFETY: rows `i0..min(i0 + 8, m)` of A, 8 contiguous values
                // (`a.cs = 1` when `whole > 0`) from column `p0 + 8 ≤ k`; the eight
                // runs written, `blocks·LANES` apart from block `blk` of column
                // `p0`, end within the `k·blocks` registers of `buf` (`k ≤ 32`,
                // `blocks ≤ 4`); AVX is this function's.
                unsafe {
                    let src = a.ptr.offset(i0 as isize * a.rs + p0 as isize);
                    let dst = b32.add((p0 * blocks + blk) * LANES);
                    transpose8x8(src, a.rs, (m - i0).min(LANES), dst, blocks * LANES);
                }
            }
        }
        for p in whole..k {
            for i in 0..m {
                // SAFETY: element (i, p) of A; lane `i` of column `p`'s blocks in `buf`.
                unsafe {
                    *b32.add(p * blocks * LANES + i) = *a.ptr.offset(p as isize * a.cs + i as isize * a.rs)
                };
            }
        }
    }
    // Column `p` of row block `blk` at `cols + p·step + blk·LANES`.
    let (cols, step) =
        if in_place { (a.ptr, a.cs as usize) } else { (buf.as_ptr() as *const f32, blocks * LANES) };
    let mut blk = 0;
    while blk < blocks {
        // SAFETY: row block `blk < blocks` of column 0: in A (in place, `m` a
        // multiple of 8) or in `buf`.
        let a = unsafe { cols.add(blk * LANES) };
        // Two row blocks by four columns: eight independent sums (enough to
        // hide the multiply-add's latency) even when `C` has only 3 or 4 columns.
        let (r, w_max) = if blocks - blk >= 2 { (2, 4) } else { (1, 8) };
        let mut j = 0;
        while j < n {
            let w = (n - j).min(w_max);
            let mut sums = [_mm256_setzero_ps(); 8];
            // Whole blocks of an unscaled column-major C: stored by the tile itself.
            // (An `if`, not `bool::then`: its closure would not be inlined here.)
            let direct = if c.rs == 1 && alpha == 1.0 && beta == 0.0 && m >= (blk + r) * LANES {
                // SAFETY: element (blk·8, j) of C (`j < n`), whose tile of
                // `r·8 ≤ m − blk·8` rows by `w` columns lies in C.
                Some((unsafe { c.ptr.offset((blk * LANES) as isize + j as isize * c.cs) }, c.cs))
            } else {
                None
            };
            let tile = SmallTile { k, a, step, b, j, direct };
            // SAFETY: `tile` reads `k` columns of `r` row blocks of A (in place or
            // in `buf`, `step` apart), rows `0..k` of B's columns `j..j + w`
            // (`j + w ≤ n`), and stores only into C's tile when `direct`; AVX2 and
            // FMA are this function's.
            unsafe {
                match (r, w) {
                    (2, 4) => small_tile_avx2::<2, 4>(tile, &mut sums),
                    (2, 3) => small_tile_avx2::<2, 3>(tile, &mut sums),
                    (2, 2) => small_tile_avx2::<2, 2>(tile, &mut sums),
                    (2, 1) => small_tile_avx2::<2, 1>(tile, &mut sums),
                    (_, 8) => small_tile_avx2::<1, 8>(tile, &mut sums),
                    (_, 7) => small_tile_avx2::<1, 7>(tile, &mut sums),
                    (_, 6) => small_tile_avx2::<1, 6>(tile, &mut sums),
                    (_, 5) => small_tile_avx2::<1, 5>(tile, &mut sums),
                    (_, 4) => small_tile_avx2::<1, 4>(tile, &mut sums),
                    (_, 3) => small_tile_avx2::<1, 3>(tile, &mut sums),
                    (_, 2) => small_tile_avx2::<1, 2>(tile, &mut sums),
                    _ => small_tile_avx2::<1, 1>(tile, &mut sums),
                }
            }
            if direct.is_some() {
                j += w;
                continue;
            }
            // One copy of the general stores for every tile shape (inlined into
            // each, they made this routine larger than the L1 instruction cache).
            for (idx, &sum) in sums[..r * w].iter().enumerate() {
                // Row block `idx % r` of column `j + idx / r`, without a division.
                let (q, i) =
                    if r == 2 { (j + idx / 2, (blk + idx % 2) * LANES) } else { (j + idx, blk * LANES) };
                let h = (m - i).min(LANES);
                // SAFETY: the `h` rows of C's column `q < n` from row `i < m`: as
                // whole or masked (`first_lanes(h)`) registers when contiguous,
                // else element by element; AVX2 and FMA are this function's.
                unsafe {
                    let cj = c.ptr.offset(i as isize * c.rs + q as isize * c.cs);
                    if c.rs == 1 {
                        let old = || {
                            if h == LANES {
                                _mm256_loadu_ps(cj)
                            } else {
                                _mm256_maskload_ps(cj, first_lanes(h))
                            }
                        };
                        let v = match (alpha, beta) {
                            (1.0, 0.0) => sum,
                            (_, 0.0) => _mm256_mul_ps(_mm256_set1_ps(alpha), sum),
                            _ => _mm256_fmadd_ps(
                                _mm256_set1_ps(alpha),
                                sum,
                                _mm256_mul_ps(_mm256_set1_ps(beta), old()),
                            ),
                        };
                        // A masked store is slow on AMD: only for partial blocks.
                        if h == LANES {
                            _mm256_storeu_ps(cj, v);
                        } else {
                            _mm256_maskstore_ps(cj, first_lanes(h), v);
                        }
                    } else {
                        let mut t = [0.0f32; LANES];
                        _mm256_storeu_ps(t.as_mut_ptr(), sum);
                        for (i, &s) in t[..h].iter().enumerate() {
                            let e = cj.offset(i as isize * c.rs);
                            *e = if beta == 0.0 { alpha * s } else { alpha * s + beta * *e };
                        }
                    }
                }
            }
            j += w;
        }
        blk += r;
    }
}

/// One tile of a small product for [`small_tile_avx2`].
#[derive(Clone, Copy)]
struct SmallTile {
    /// The inner size.
    k: usize,
    /// Column `p` of the tile's first row block of `A` at `a + p·step`, the next block 8 further.
    a: *const f32,
    step: usize,
    b: Mat,
    /// The tile's first column.
    j: usize,
    /// Where the tile stores itself (column `q` at `to + q·ld`), when `C` is
    /// column-major, unscaled and the tile's rows all inside it.
    direct: Option<(*mut f32, isize)>,
}

/// The sums of `8·R` rows (zero-padded past `m`) by `W` columns of a small
/// product, `R·W` in registers over the `k` columns of `A`: stored into `C`
/// when `direct`, else into `sums[q·R + r]` (row block `r`, column `j + q`)
/// for the caller to store.
///
/// # Safety
/// `a + p·step` holds `8·R` values for each `p < k`; B's rows `0..k` of
/// columns `j..j + W` exist; `direct`, if given, addresses an `8·R × W` tile
/// (column stride `ld`); the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn small_tile_avx2<const R: usize, const W: usize>(
    SmallTile { k, a, step, b, j, direct }: SmallTile,
    sums: &mut [std::arch::x86_64::__m256; 8],
) {
    use std::arch::x86_64::*;
    const LANES: usize = 8;
    // SAFETY: only the memory the caller's contract names is reached.
    unsafe {
        let bcols: [*const f32; W] = std::array::from_fn(|q| b.ptr.offset((j + q) as isize * b.cs));
        let mut acc = [[_mm256_setzero_ps(); R]; W];
        let mut ap = a;
        for p in 0..k {
            let av: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(ap.add(r * LANES)));
            for (q, acc) in acc.iter_mut().enumerate() {
                let bq = _mm256_broadcast_ss(&*bcols[q].offset(p as isize * b.rs));
                for (acc, &av) in acc.iter_mut().zip(&av) {
                    *acc = _mm256_fmadd_ps(av, bq, *acc);
                }
            }
            ap = ap.add(step);
        }
        if let Some((to, ld)) = direct {
            for (q, acc) in acc.iter().enumerate() {
                for (r, &acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(to.offset(q as isize * ld + (r * LANES) as isize), acc);
                }
            }
        } else {
            sums[..R * W].copy_from_slice(acc.as_flattened());
        }
    }
}

/// `C = alpha·A·B + beta·C` for `m, k ≤ SMALL_DIM`: `A` copied once into a
/// column-major stack buffer (rows padded with zeros to blocks of
/// `SMALL_ROWS`), then each block of a column of `C` is a sum of `k` columns
/// of `A`, accumulated in one register.
///
/// # Safety
/// As [`sgemm`](super::sgemm), with `m, k ≤ SMALL_DIM`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn small(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    let mp = m.div_ceil(SMALL_ROWS) * SMALL_ROWS;
    // Only the `mp × k` part is written (padding rows as zeros) and read:
    // zeroing all 4 KiB on every call would cost as much as a tiny product.
    let mut buf = [std::mem::MaybeUninit::<f32>::uninit(); SMALL_DIM * SMALL_DIM];
    for p in 0..k {
        let (rows, pad) = buf[p * mp..(p + 1) * mp].split_at_mut(m);
        for (i, v) in rows.iter_mut().enumerate() {
            // SAFETY: element (i, p) of A (`i < m`, `p < k`).
            v.write(unsafe { *a.ptr.offset(p as isize * a.cs + i as isize * a.rs) });
        }
        pad.iter_mut().for_each(|v| {
            v.write(0.0);
        });
    }
    let ac = buf.as_ptr() as *const f32;
    // Eight columns of C at a time: eight independent sums hide the adds'
    // latency and share each load of A's column.
    const NJ: usize = 8;
    for i0 in (0..m).step_by(SMALL_ROWS) {
        let h = (m - i0).min(SMALL_ROWS);
        let mut j = 0;
        while j < n {
            let w = (n - j).min(NJ);
            let mut acc = [[0.0f32; SMALL_ROWS]; NJ];
            for p in 0..k {
                // SAFETY: `i0 + 16 ≤ mp`, so the 16 values are in the part of
                // `buf` written above (column `p < k`, rows and padding); an f32
                // array needs only f32 alignment.
                let col: &[f32; SMALL_ROWS] = unsafe { &*(ac.add(p * mp + i0) as *const [f32; SMALL_ROWS]) };
                // SAFETY: element (p, j) of B (`p < k`, `j < n`).
                let bp = unsafe { b.ptr.offset(p as isize * b.rs + j as isize * b.cs) };
                if w == NJ {
                    // A fixed trip count keeps the sums in registers.
                    for (q, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: element (p, j + q) of B, `j + q < j + w ≤ n`.
                        let bv = unsafe { *bp.offset(q as isize * b.cs) };
                        for l in 0..SMALL_ROWS {
                            acc[l] += col[l] * bv;
                        }
                    }
                } else {
                    for (q, acc) in acc.iter_mut().enumerate().take(w) {
                        // SAFETY: as above, `q < w`.
                        let bv = unsafe { *bp.offset(q as isize * b.cs) };
                        for l in 0..SMALL_ROWS {
                            acc[l] += col[l] * bv;
                        }
                    }
                }
            }
            for (q, acc) in acc.iter().enumerate().take(w) {
                // SAFETY: element (i0, j + q) of C.
                let cj = unsafe { c.ptr.offset(i0 as isize * c.rs + (j + q) as isize * c.cs) };
                if c.rs == 1 {
                    // A contiguous column block: slice loops the compiler vectorises.
                    // SAFETY: rows `i0..i0 + h ≤ m` of that column, contiguous,
                    // reached by nothing else meanwhile (C aliases neither A nor B).
                    let cc = unsafe { std::slice::from_raw_parts_mut(cj, h) };
                    if beta == 0.0 {
                        cc.iter_mut().zip(acc).for_each(|(c, &s)| *c = alpha * s);
                    } else {
                        cc.iter_mut().zip(acc).for_each(|(c, &s)| *c = alpha * s + beta * *c);
                    }
                    continue;
                }
                for (i, &s) in acc[..h].iter().enumerate() {
                    // SAFETY: element (i0 + i, j + q) of C, `i < h`.
                    unsafe {
                        let q = cj.offset(i as isize * c.rs);
                        *q = if beta == 0.0 { alpha * s } else { alpha * s + beta * *q };
                    }
                }
            }
            j += w;
        }
    }
}

/// [`small`] with AVX-512 intrinsics: fused multiply-adds, the eight column
/// sums in registers (the portable loop keeps them in memory under AVX-512),
/// `A`'s columns read in place when they are contiguous, and masked stores.
///
/// # Safety
/// As [`sgemm`](super::sgemm), with `m, k ≤ SMALL_DIM`; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn small_avx512(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    use std::arch::x86_64::*;
    debug_assert!(m <= SMALL_DIM && k <= SMALL_DIM);
    let mask = |h: usize| ((1u32 << h) - 1) as __mmask16;
    // A's columns, padded to whole registers: in place when contiguous.
    let mut buf = [std::mem::MaybeUninit::<__m512>::uninit(); SMALL_DIM * SMALL_DIM / SMALL_ROWS];
    let blocks = m.div_ceil(SMALL_ROWS);
    let in_place = a.rs == 1;
    if !in_place {
        // Only the part read is written (padding lanes as zeros).
        buf[..k * blocks].iter_mut().for_each(|v| {
            v.write(_mm512_setzero_ps());
        });
        let b32 = buf.as_mut_ptr() as *mut f32;
        for p in 0..k {
            for i in 0..m {
                // SAFETY: element (i, p) of A; lane `i` of column `p`'s blocks, in
                // the `k·blocks ≤ 64` registers of `buf`.
                unsafe {
                    *b32.add(p * blocks * SMALL_ROWS + i) =
                        *a.ptr.offset(p as isize * a.cs + i as isize * a.rs)
                };
            }
        }
    }
    let (alpha_v, beta_v) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for blk in 0..blocks {
        let i0 = blk * SMALL_ROWS;
        let h = (m - i0).min(SMALL_ROWS);
        // SAFETY: in place, the first `h` rows of block `blk` of A's column
        // `p < k` (masked, `a.rs = 1`); else a register of `buf` written above.
        let col = |p: usize| unsafe {
            if in_place {
                _mm512_maskz_loadu_ps(mask(h), a.ptr.offset(p as isize * a.cs + i0 as isize))
            } else {
                // Written above for every `p < k`.
                buf[p * blocks + blk].assume_init()
            }
        };
        let mut j = 0;
        while j < n {
            const NJ: usize = 8;
            let w = (n - j).min(NJ);
            let mut acc = [_mm512_setzero_ps(); NJ];
            // SAFETY: element (0, j) of B, `j < n`.
            let bp = unsafe { b.ptr.offset(j as isize * b.cs) };
            for p in 0..k {
                let av = col(p);
                // SAFETY: element (p, j) of B, `p < k`.
                let row = unsafe { bp.offset(p as isize * b.rs) };
                if w == NJ {
                    for (q, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: element (p, j + q) of B, `j + q < j + w ≤ n`.
                        let bv = unsafe { *row.offset(q as isize * b.cs) };
                        *acc = _mm512_fmadd_ps(av, _mm512_set1_ps(bv), *acc);
                    }
                } else {
                    for (q, acc) in acc.iter_mut().enumerate().take(w) {
                        // SAFETY: as above, `q < w`.
                        let bv = unsafe { *row.offset(q as isize * b.cs) };
                        *acc = _mm512_fmadd_ps(av, _mm512_set1_ps(bv), *acc);
                    }
                }
            }
            for (q, &acc) in acc.iter().enumerate().take(w) {
                // SAFETY: element (i0, j + q) of C.
                let cj = unsafe { c.ptr.offset(i0 as isize * c.rs + (j + q) as isize * c.cs) };
                if c.rs == 1 {
                    let v = if beta == 0.0 {
                        _mm512_mul_ps(alpha_v, acc)
                    } else {
                        // SAFETY: the mask keeps to rows `i0..i0 + h ≤ m` of the column.
                        let old = unsafe { _mm512_maskz_loadu_ps(mask(h), cj) };
                        _mm512_fmadd_ps(alpha_v, acc, _mm512_mul_ps(beta_v, old))
                    };
                    // SAFETY: as for the load.
                    unsafe { _mm512_mask_storeu_ps(cj, mask(h), v) };
                    continue;
                }
                let mut t = [0.0f32; SMALL_ROWS];
                // SAFETY: `t` holds a whole register.
                unsafe { _mm512_storeu_ps(t.as_mut_ptr(), acc) };
                for (i, &s) in t[..h].iter().enumerate() {
                    // SAFETY: element (i0 + i, j + q) of C, `i < h`.
                    unsafe {
                        let q = cj.offset(i as isize * c.rs);
                        *q = if beta == 0.0 { alpha * s } else { alpha * s + beta * *q };
                    }
                }
            }
            j += w;
        }
    }
}
