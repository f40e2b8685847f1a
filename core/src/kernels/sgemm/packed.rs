//! The blocked product (BLIS) for everything larger than a tiny layer: for
//! each `KC`-deep slice of the inner dimension, `B` is packed into `NR`-wide
//! panels and `A` into `MR`-tall panels (zero-padded, per thread, into a reused
//! buffer), and an `MR×NR` register tile of `C` is accumulated by the
//! micro-kernel (`micro.rs`: AVX-512, AVX2, or portable). The AVX-512 and AVX2 kernels read
//! a `B` whose columns are contiguous (a batch of samples) where it lies
//! instead: `Kernel::run_in_place`, the same bits.

#[cfg(target_arch = "x86_64")]
use super::micro::{Avx2Kernel, Avx512Kernel};
use super::micro::{GenericKernel, Kernel};
use super::{transpose8x8, Mat, MatMut};
use std::cell::RefCell;

/// The deepest packed slice of the inner dimension any kernel uses
/// ([`Kernel::KC`]), for sizing the packing buffers.
pub(super) const KC_MAX: usize = 400;
/// Rows of `A` packed at once (kept in L2).
const MC: usize = 192;
/// Columns of `B` packed at once.
const NC: usize = 1024;

/// The most any product packs at once (A and B panels, any kernel's MR, NR ≤ 32,
/// alignment slack): about 1.3 MB.
const PACK_CAPACITY: usize = (MC + 32) * KC_MAX + (NC + 32) * KC_MAX + 32;

thread_local! {
    /// This thread's packing buffer: sized for any product on first use, then
    /// reused, so which thread runs which part of a split product never makes
    /// a later step allocate.
    static PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Gives this thread its packing buffer now (worker threads, when they start,
/// and a dispatching thread before it splits a product).
pub(crate) fn reserve_pack_buffer() {
    let _ = pack_buffer(PACK_CAPACITY);
}

/// The blocked product with AVX-512's kernel.
///
/// # Safety
/// As [`sgemm`](super::sgemm); the CPU supports AVX-512 F and VL, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn packed_avx512(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    // SAFETY: the caller's promise, passed on; the CPU has the kernel's features.
    unsafe { packed::<Avx512Kernel>(m, k, n, alpha, a, b, beta, c) }
}

/// The blocked product with AVX2's kernel.
///
/// # Safety
/// As [`sgemm`](super::sgemm); the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn packed_avx2(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    // SAFETY: the caller's promise, passed on; the CPU has the kernel's features.
    unsafe { packed::<Avx2Kernel>(m, k, n, alpha, a, b, beta, c) }
}

/// The blocked product on processors without AVX2.
///
/// # Safety
/// As [`sgemm`](super::sgemm).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn packed_portable(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    // SAFETY: the caller's promise, passed on; the kernel is plain Rust.
    unsafe { packed::<GenericKernel>(m, k, n, alpha, a, b, beta, c) }
}

/// The blocked product; inlined into each ISA's entry point so the packing and
/// the tile stores are compiled for that ISA too.
///
/// # Safety
/// As [`sgemm`](super::sgemm); the CPU supports `K`'s level.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn packed<K: Kernel>(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    let (mr, nr) = (K::MR, K::NR);
    // Blocks of equal size: `k = 784` is three slices of 262, not 256, 256,
    // 256 and a 16-deep one that would cost a full pass over `C` for little work.
    const { assert!(K::KC <= KC_MAX, "the packing buffers are sized for KC_MAX") };
    let kc_max = k.div_ceil(k.div_ceil(K::KC));
    let mc_max = m.div_ceil(m.div_ceil(MC)).div_ceil(mr) * mr;
    let nc_max = n.div_ceil(n.div_ceil(NC)).div_ceil(nr) * nr;
    let a_len = mc_max * kc_max;
    let b_len = nc_max * kc_max;
    // 64-byte alignment for the packed panels.
    let need = a_len + b_len + 32;
    // The closure only hands out the buffer: code inside a closure would not be
    // compiled with this function's target features.
    let (base, _local) = pack_buffer(need);
    let off = base.align_offset(64).min(16);
    // SAFETY: the buffer holds `need = a_len + b_len + 32` values and `off ≤ 16`,
    // so the A panels (`a_len`) and then the B panels (`b_len`) fit in it.
    let (ap, bp) = unsafe {
        let ap = base.add(off);
        (ap, ap.add(a_len))
    };
    let mut tile = [0.0f32; 32 * 16];
    let in_place = K::B_IN_PLACE && b.rs == 1 && b.cs > 0;
    // A packed ahead (`prepacked.rs`) for this kernel and blocking is read where it lies.
    let pre = a.pre.filter(|p| p.mr == mr && p.kc_max == kc_max);
    let mut jc = 0;
    while jc < n {
        let nc = (n - jc).min(nc_max);
        let mut pc = 0;
        while pc < k {
            let kc = (k - pc).min(kc_max);
            // Later slices accumulate onto the first.
            let beta = if pc == 0 { beta } else { 1.0 };
            // Whole tiles go straight into C when it is column-major and unscaled.
            let direct = c.rs == 1 && c.cs > 0 && alpha == 1.0 && (beta == 0.0 || beta == 1.0);
            // Whole panels of a B whose columns are contiguous are read where they
            // lie (each part of a product split by rows would otherwise pack all
            // of it); a last, narrower panel is packed, zero-padded, at `bp`.
            let in_place_cols = if in_place { nc / nr * nr } else { 0 };
            // SAFETY: rows `pc..pc + kc` of columns `jc + in_place_cols..jc + nc` are
            // inside B; their panels, `nc` rounded up to `nr` by `kc`, fit in the
            // `nc_max·kc_max` values at `bp` (`nc_max` is a multiple of `nr`).
            unsafe { pack_b(kc, nc - in_place_cols, nr, b, pc, jc + in_place_cols, bp, K::AVX) };
            let mut ic = 0;
            while ic < m {
                let mc = (m - ic).min(mc_max);
                // SAFETY: as for B: rows `ic..ic + mc` of A by `kc` columns, into
                // the `mc_max·kc_max` values at `ap`; or, packed ahead, the same
                // panels in the whole packed A (`ic` is a multiple of `mc_max`,
                // itself of `mr`; `pc` of `kc_max`).
                let ap: *const f32 = match pre {
                    // SAFETY: rows `ic..ic + mc` and the slice at `pc` lie in the packed A.
                    Some(p) => unsafe { p.at(pc, kc, ic) },
                    None => {
                        // SAFETY: as said above.
                        unsafe { pack_a(mc, kc, mr, a, ic, pc, ap, K::AVX) };
                        ap
                    }
                };
                let mut jr = 0;
                while jr < nc {
                    let nr_ = (nc - jr).min(nr);
                    let in_place_panel = jr < in_place_cols;
                    // SAFETY: a panel read in place is `nr` whole columns of B
                    // (`jr < in_place_cols`, whole panels only) from row `pc`;
                    // a packed one starts inside the panels `pack_b` wrote.
                    let bpanel = unsafe {
                        if in_place_panel {
                            b.ptr.offset(pc as isize + (jc + jr) as isize * b.cs)
                        } else {
                            bp.add((jr - in_place_cols) * kc)
                        }
                    };
                    let mut ir = 0;
                    while ir < mc {
                        let mr_ = (mc - ir).min(mr);
                        // SAFETY: `ir < mc`: a panel `pack_a` wrote.
                        let apanel = unsafe { ap.add(ir * kc) };
                        // SAFETY: `cp` is C's element (ic + ir, jc + jr). The narrow
                        // tile reads two whole A panels (`mc - ir ≥ 2·mr`) and one
                        // packed B panel, and writes `2·mr × 2` values into `tile`
                        // (512 values, more than any tile); `store_tile` writes the
                        // `mr_ × nr_` block of C at `cp`, inside C. A whole tile is
                        // written straight into column-major C (`ld = c.cs`); any
                        // other into `tile`. An in-place panel is `nr` whole
                        // columns of B. The CPU supports `K`'s level (the caller's
                        // promise).
                        unsafe {
                            let cp = c.ptr.offset((ic + ir) as isize * c.rs + (jc + jr) as isize * c.cs);
                            // A last panel of one or two columns: two row panels at a time.
                            if K::NARROW && !in_place_panel && nr_ <= 2 && mc - ir >= 2 * mr {
                                K::run_narrow(
                                    kc,
                                    apanel,
                                    apanel.add(mr * kc),
                                    bpanel,
                                    tile.as_mut_ptr(),
                                    2 * mr,
                                );
                                store_tile(&tile, 2 * mr, 2 * mr, nr_, alpha, beta, cp, c.rs, c.cs);
                                ir += 2 * mr;
                                continue;
                            }
                            let whole = direct && mr_ == mr && nr_ == nr;
                            let (out, ld) = if whole { (cp, c.cs as usize) } else { (tile.as_mut_ptr(), mr) };
                            let accumulate = whole && beta != 0.0;
                            if in_place_panel {
                                K::run_in_place(kc, apanel, bpanel, b.cs as usize, out, ld, accumulate);
                            } else {
                                K::run(kc, apanel, bpanel, out, ld, accumulate);
                            }
                            if !whole {
                                store_tile(&tile, mr, mr_, nr_, alpha, beta, cp, c.rs, c.cs);
                            }
                        }
                        ir += mr;
                    }
                    jr += nr;
                }
                ic += mc;
            }
            pc += kc;
        }
        jc += nc;
    }
}

/// This thread's packing buffer with room for `need` elements, as a raw
/// pointer valid until the next call on this thread (products never nest).
/// Should the buffer be in use anyway, a fresh one is returned with its owner.
fn pack_buffer(need: usize) -> (*mut f32, Option<Vec<f32>>) {
    PACK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < need {
                buf.resize(need.max(PACK_CAPACITY), 0.0);
            }
            (buf.as_mut_ptr(), None)
        }
        Err(_) => {
            let mut local = vec![0.0; need];
            (local.as_mut_ptr(), Some(local))
        }
    })
}

/// Packs `B[pc.., jc..]` (`kc × nc`) into `NR`-wide panels, `bp[panel][p][j]`,
/// zero-padded: the packing of `A` applied to `Bᵀ` (the same layout, rows for columns).
///
/// # Safety
/// As [`pack_a`] for `Bᵀ`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b(kc: usize, nc: usize, nr: usize, b: Mat, pc: usize, jc: usize, bp: *mut f32, avx: bool) {
    let bt = Mat { ptr: b.ptr, rs: b.cs, cs: b.rs, pre: None };
    // SAFETY: the caller's promise for B is `pack_a`'s for `Bᵀ`, the same memory.
    unsafe { pack_a(nc, kc, nr, bt, jc, pc, bp, avx) }
}

/// Packs `A[ic.., pc..]` (`mc × kc`) into `MR`-tall panels, `ap[panel][p][i]`, zero-padded.
///
/// # Safety
/// Rows `ic..ic + mc` by columns `pc..pc + kc` lie in `A`; `ap` has room for
/// `mc` rounded up to `mr`, by `kc`; with `avx`, the CPU supports AVX.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_a(
    mc: usize,
    kc: usize,
    mr: usize,
    a: Mat,
    ic: usize,
    pc: usize,
    ap: *mut f32,
    avx: bool,
) {
    let mut i0 = 0;
    let mut dst = ap;
    while i0 < mc {
        let h = (mc - i0).min(mr);
        // SAFETY: element (ic + i0, pc), inside A (`i0 < mc`).
        let src = unsafe { a.ptr.offset((ic + i0) as isize * a.rs + pc as isize * a.cs) };
        // SAFETY: each branch reads the panel's `h` rows (whole 8×8 blocks only
        // when `h = mr`, with AVX only when `avx`) by `kc` columns, all inside
        // A, and writes `kc·mr` values at `dst`, inside the room the caller gave.
        unsafe {
            if a.rs == 1 && h == mr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * a.cs), dst.add(p * mr), mr);
                }
            } else if avx && a.cs == 1 && h == mr && mr.is_multiple_of(8) {
                // Rows contiguous along p: transpose 8×8 blocks in registers.
                let mut p = 0;
                while p + 8 <= kc {
                    for i in (0..mr).step_by(8) {
                        transpose8x8(
                            src.offset(i as isize * a.rs + p as isize),
                            a.rs,
                            8,
                            dst.add(p * mr + i),
                            mr,
                        );
                    }
                    p += 8;
                }
                for p in p..kc {
                    for i in 0..mr {
                        *dst.add(p * mr + i) = *src.offset(i as isize * a.rs + p as isize);
                    }
                }
            } else if a.cs == 1 {
                // Rows contiguous along p: a transposing copy.
                for i in 0..mr {
                    if i < h {
                        let s = src.offset(i as isize * a.rs);
                        for p in 0..kc {
                            *dst.add(p * mr + i) = *s.add(p);
                        }
                    } else {
                        for p in 0..kc {
                            *dst.add(p * mr + i) = 0.0;
                        }
                    }
                }
            } else {
                for p in 0..kc {
                    for i in 0..mr {
                        *dst.add(p * mr + i) =
                            if i < h { *src.offset(i as isize * a.rs + p as isize * a.cs) } else { 0.0 };
                    }
                }
            }
            dst = dst.add(kc * mr);
        }
        i0 += mr;
    }
}

/// `C[0..mr_, 0..nr_] = alpha·tile + beta·C` (C not read when beta is 0).
///
/// # Safety
/// `c` addresses an `mr_ × nr_` block with strides `rsc`, `csc`, `mr_ ≤ mr`,
/// and `tile` holds `nr_` columns of `mr`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn store_tile(
    tile: &[f32],
    mr: usize,
    mr_: usize,
    nr_: usize,
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: only elements of the caller's `mr_ × nr_` block are reached
    // (as contiguous columns when `rsc` is 1); `tile` is indexed with bounds checks.
    unsafe {
        if rsc == 1 {
            for j in 0..nr_ {
                let t = &tile[j * mr..j * mr + mr_];
                let cc = std::slice::from_raw_parts_mut(c.offset(j as isize * csc), mr_);
                if beta == 0.0 {
                    if alpha == 1.0 {
                        cc.copy_from_slice(t);
                    } else {
                        cc.iter_mut().zip(t).for_each(|(c, &t)| *c = alpha * t);
                    }
                } else if alpha == 1.0 && beta == 1.0 {
                    cc.iter_mut().zip(t).for_each(|(c, &t)| *c += t);
                } else {
                    cc.iter_mut().zip(t).for_each(|(c, &t)| *c = alpha * t + beta * *c);
                }
            }
        } else {
            for i in 0..mr_ {
                for j in 0..nr_ {
                    let p = c.offset(i as isize * rsc + j as isize * csc);
                    let t = tile[j * mr + i];
                    *p = if beta == 0.0 { alpha * t } else { alpha * t + beta * *p };
                }
            }
        }
    }
}
