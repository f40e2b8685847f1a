//! The micro-kernels of the blocked product: each accumulates one register
//! tile of `C` from a packed `A` panel and a packed (or, for AVX2 and
//! AVX-512, in-place) `B` panel, with the same arithmetic per element whichever way `B` is read.

/// A micro-kernel: `out[i + j·ld] (+)= Σ_p a[p·MR + i]·b[p·NR + j]` for an
/// `MR×NR` tile whose columns are `ld` apart (rows contiguous): either a scratch
/// tile, or `C` itself when the tile is whole and needs no scaling, which saves
/// a pass through memory per tile.
pub(super) trait Kernel {
    const MR: usize;
    const NR: usize;
    /// Depth of one packed slice of the inner dimension (at most [`KC_MAX`](super::packed::KC_MAX)).
    const KC: usize;
    /// Whether AVX is available, so packing may transpose 8×8 blocks in registers.
    const AVX: bool;
    /// # Safety
    /// `a` holds `kc·MR`, `b` `kc·NR` elements; `out` addresses an `MR×NR`
    /// tile with column stride `ld`, read only when `accumulate`. The CPU
    /// supports the kernel's level (every kernel method is reached only through
    /// its level's `packed_*` entry point).
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool);
    /// Whether [`Kernel::run_in_place`] exists: the kernel can read `NR`
    /// columns of `B` where they lie when each is contiguous along the inner
    /// dimension, so such a `B` (a batch of samples) is never packed.
    const B_IN_PLACE: bool = false;
    /// [`Kernel::run`] with column `j` of the `B` panel read from
    /// `b + j·ldb .. + kc` rather than from a packed panel, with the same
    /// arithmetic in the same order: the results are the same bits.
    ///
    /// # Safety
    /// As [`Kernel::run`], with `NR` columns of `kc` values at `b + j·ldb`;
    /// only called when [`Kernel::B_IN_PLACE`].
    unsafe fn run_in_place(
        _kc: usize,
        _a: *const f32,
        _b: *const f32,
        _ldb: usize,
        _out: *mut f32,
        _ld: usize,
        _accumulate: bool,
    ) {
        unreachable!("only kernels with B_IN_PLACE read B in place")
    }
    /// Whether [`Kernel::run_narrow`] exists.
    const NARROW: bool = false;
    /// The first two columns of a packed `B` panel against two `A` panels
    /// (`2·MR` rows) into `out` (column stride `ld`, overwritten), with the
    /// same arithmetic per element as [`Kernel::run`]: for a last panel of at
    /// most two columns, where `run` would spend most of its multiply-adds on
    /// the zero padding.
    ///
    /// # Safety
    /// `a0` and `a1` hold `kc·MR` elements, `b` `kc·NR`; `out` addresses a
    /// `2·MR × 2` tile; only called when [`Kernel::NARROW`].
    unsafe fn run_narrow(
        _kc: usize,
        _a0: *const f32,
        _a1: *const f32,
        _b: *const f32,
        _out: *mut f32,
        _ld: usize,
    ) {
        unreachable!("only kernels with NARROW have a narrow tile")
    }
}

/// 32×8 tiles in 16 ZMM accumulators (10 loads per 16 FMAs).
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx512Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512Kernel {
    const MR: usize = 32;
    const NR: usize = 8;
    const KC: usize = 256;
    const AVX: bool = true;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
        // SAFETY: `run`'s contract: the packed panel's column `j` is at `b + j`, step 8.
        unsafe { avx512_tile::<8>(kc, a, b, 1, out, ld, accumulate) }
    }
    const B_IN_PLACE: bool = true;
    #[inline(always)]
    unsafe fn run_in_place(
        kc: usize,
        a: *const f32,
        b: *const f32,
        ldb: usize,
        out: *mut f32,
        ld: usize,
        accumulate: bool,
    ) {
        // SAFETY: `run_in_place`'s contract: column `j` is `kc` values at `b + j·ldb`.
        unsafe { avx512_tile::<1>(kc, a, b, ldb, out, ld, accumulate) }
    }
}

/// The body of [`Avx512Kernel`]: element `p` of the B panel's column `j` at
/// `b + j·ldb + p·STEP` (packed: `STEP` 8, `ldb` 1; in place: `STEP` 1).
///
/// # Safety
/// As [`Kernel::run`], with the B panel laid out as above; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx512_tile<const STEP: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    out: *mut f32,
    ld: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: reads `kc` steps of 32 values of `a` and 8 of B's columns, and the
    // 32×8 tile at `out`, as the caller promises; AVX-512F too.
    unsafe {
        let mut c0 = [_mm512_setzero_ps(); 8];
        let mut c1 = [_mm512_setzero_ps(); 8];
        let cols: [*const f32; 8] = std::array::from_fn(|j| b.add(j * ldb));
        let mut a = a;
        for p in 0..kc {
            let a0 = _mm512_loadu_ps(a);
            let a1 = _mm512_loadu_ps(a.add(16));
            for j in 0..8 {
                let bj = _mm512_set1_ps(*cols[j].add(p * STEP));
                c0[j] = _mm512_fmadd_ps(a0, bj, c0[j]);
                c1[j] = _mm512_fmadd_ps(a1, bj, c1[j]);
            }
            a = a.add(32);
        }
        for j in 0..8 {
            let (p0, p1) = (out.add(j * ld), out.add(j * ld + 16));
            if accumulate {
                c0[j] = _mm512_add_ps(c0[j], _mm512_loadu_ps(p0));
                c1[j] = _mm512_add_ps(c1[j], _mm512_loadu_ps(p1));
            }
            _mm512_storeu_ps(p0, c0[j]);
            _mm512_storeu_ps(p1, c1[j]);
        }
    }
}

/// 16×6 tiles in 12 YMM accumulators.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2Kernel {
    const MR: usize = 16;
    const NR: usize = 6;
    // Deeper than AVX-512's: a 784-deep product in 2 slices, not 4, so C's tiles
    // are loaded and stored half as often (a 32 KiB L1 still holds a 6-wide B
    // panel of that depth).
    const KC: usize = 400;
    const AVX: bool = true;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
        // SAFETY: `run`'s contract: the packed panel's column `j` is at `b + j`, step 6.
        unsafe { avx2_tile::<6>(kc, a, b, 1, out, ld, accumulate) }
    }
    const B_IN_PLACE: bool = true;
    #[inline(always)]
    unsafe fn run_in_place(
        kc: usize,
        a: *const f32,
        b: *const f32,
        ldb: usize,
        out: *mut f32,
        ld: usize,
        accumulate: bool,
    ) {
        // SAFETY: `run_in_place`'s contract: column `j` is `kc` values at `b + j·ldb`.
        unsafe { avx2_tile::<1>(kc, a, b, ldb, out, ld, accumulate) }
    }
    const NARROW: bool = true;
    /// 32×2 in eight YMM accumulators: as many independent sums as the 16×6
    /// tile's multiply-adds need in flight, at a third of its padding's cost.
    #[inline(always)]
    unsafe fn run_narrow(kc: usize, a0: *const f32, a1: *const f32, b: *const f32, out: *mut f32, ld: usize) {
        use std::arch::x86_64::*;
        // SAFETY: reads `kc` steps of 16 values of `a0` and `a1` and the first 2
        // of each 6 of `b`, writes the 32×2 tile at `out`: `run_narrow`'s contract.
        unsafe {
            let mut c = [[_mm256_setzero_ps(); 4]; 2];
            for p in 0..kc {
                let a = [
                    _mm256_loadu_ps(a0.add(p * 16)),
                    _mm256_loadu_ps(a0.add(p * 16 + 8)),
                    _mm256_loadu_ps(a1.add(p * 16)),
                    _mm256_loadu_ps(a1.add(p * 16 + 8)),
                ];
                for (j, c) in c.iter_mut().enumerate() {
                    let bj = _mm256_broadcast_ss(&*b.add(p * 6 + j));
                    for (c, &a) in c.iter_mut().zip(&a) {
                        *c = _mm256_fmadd_ps(a, bj, *c);
                    }
                }
            }
            for (j, c) in c.iter().enumerate() {
                for (i, &c) in c.iter().enumerate() {
                    _mm256_storeu_ps(out.add(j * ld + i * 8), c);
                }
            }
        }
    }
}

/// The body of [`Avx2Kernel`]: element `p` of the B panel's column `j` at
/// `b + j·ldb + p·STEP` (packed: `STEP` 6, `ldb` 1; in place: `STEP` 1).
///
/// # Safety
/// As [`Kernel::run`], with the B panel laid out as above.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx2_tile<const STEP: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    out: *mut f32,
    ld: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: reads `kc` steps of 16 values of `a` and 6 of B's columns, and the
    // 16×6 tile at `out`, as the caller promises; AVX2 and FMA too.
    unsafe {
        let mut c0 = [_mm256_setzero_ps(); 6];
        let mut c1 = [_mm256_setzero_ps(); 6];
        let cols: [*const f32; 6] = std::array::from_fn(|j| b.add(j * ldb));
        let mut a = a;
        for p in 0..kc {
            let a0 = _mm256_loadu_ps(a);
            let a1 = _mm256_loadu_ps(a.add(8));
            for j in 0..6 {
                let bj = _mm256_broadcast_ss(&*cols[j].add(p * STEP));
                c0[j] = _mm256_fmadd_ps(a0, bj, c0[j]);
                c1[j] = _mm256_fmadd_ps(a1, bj, c1[j]);
            }
            a = a.add(16);
        }
        for j in 0..6 {
            let (p0, p1) = (out.add(j * ld), out.add(j * ld + 8));
            if accumulate {
                c0[j] = _mm256_add_ps(c0[j], _mm256_loadu_ps(p0));
                c1[j] = _mm256_add_ps(c1[j], _mm256_loadu_ps(p1));
            }
            _mm256_storeu_ps(p0, c0[j]);
            _mm256_storeu_ps(p1, c1[j]);
        }
    }
}

/// Portable 8×4 tiles for processors without AVX2.
pub(super) struct GenericKernel;

impl Kernel for GenericKernel {
    const MR: usize = 8;
    const NR: usize = 4;
    const KC: usize = 256;
    const AVX: bool = false;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
        let mut acc = [[0.0f32; 8]; 4];
        for p in 0..kc {
            // SAFETY: `p < kc`, so 8 values of `a` and 4 of `b` from step `p` are
            // in the panels (`run`'s contract); f32 arrays need only f32 alignment.
            let (ap, bp) =
                unsafe { (&*(a.add(p * 8) as *const [f32; 8]), &*(b.add(p * 4) as *const [f32; 4])) };
            for j in 0..4 {
                for i in 0..8 {
                    acc[j][i] += ap[i] * bp[j];
                }
            }
        }
        for (j, col) in acc.iter().enumerate() {
            for (i, &v) in col.iter().enumerate() {
                // SAFETY: element (i, j) of the 8×4 tile at `out` (`run`'s contract).
                unsafe {
                    let p = out.add(j * ld + i);
                    *p = if accumulate { *p + v } else { v };
                }
            }
        }
    }
}
