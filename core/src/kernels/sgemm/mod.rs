//! The f32 matrix product: packed GEMM with AVX-512 / AVX2 micro-kernels chosen
//! at run time, matrix-vector and rank-1 paths for batch 1, and no allocation
//! per call (packing buffers are per thread and reused).
//!
//! Why not matrixmultiply for f32: it allocates its packing buffers on every
//! call (so a training step could never be allocation-free), it packs even when
//! one side is a single column (batch-1 inference), and its threading cannot
//! be told which products are worth splitting.
//!
//! This module is the entry (`sgemm`, `sgemm_with`, `small_affine`), the
//! choice of a routine per shape and level (`plan`, `single`) and the split of
//! a product between threads (`dispatch`; `balance.rs` learns where two
//! threads' parts should meet). The routines: `small` (tiny layers, `A` in
//! registers, `C` in register tiles), `vector` (batch 1 and rank 1, no
//! packing) and `packed` (the BLIS-blocked product with its micro-kernels).
//! Results depend only on the shapes and on the level, never on the thread
//! count: threads split `C` by columns (or rows), not the inner sum.

mod balance;
mod micro;
mod packed;
mod plan;
mod prepacked;
mod small;
#[cfg(test)]
mod tests;
mod vector;

use super::Isa;
use crate::tensor::threads;
use balance::Balance;
use packed::reserve_pack_buffer;
use plan::{plan, single};
pub(crate) use prepacked::PackedA;
use prepacked::Panels;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;
use std::time::Instant;
#[cfg(target_arch = "x86_64")]
use vector::small_affine_avx2;

/// Work on a finished block of `C` (its rows, its columns), run right after
/// the block is computed by the thread that computed it: a split product's
/// epilogue (bias, activation) is split the same way, on data still in that
/// core's cache, and runs once over all of `C` when the product is not split.
pub(crate) type Then<'a> = &'a (dyn Fn(Range<usize>, Range<usize>) + Sync);

/// Products below this many multiply-adds stay on one thread.
const PAR_MIN_MACS: usize = 1 << 20;
/// Products of fewer than [`FEW_COLUMNS`] columns (a sequence of one sample:
/// batch-1 inference and generation of a language model) below this many
/// multiply-adds stay on one thread: each part would do a few tens of
/// microseconds of work, about what moving its operands and results between
/// the cores costs (the character GPT's batch-1 pass ran 0.90× as fast on 2
/// threads with every product over [`PAR_MIN_MACS`] split). An LSTM's step
/// product, 1024×256 by a batch of 32, is just at this size and still splits.
const PAR_MIN_NARROW_MACS: usize = 1 << 23;
/// See [`PAR_MIN_NARROW_MACS`].
const FEW_COLUMNS: usize = 128;
/// Matrix-vector products (batch 1) below this many stay on one thread.
const PAR_MIN_MV_MACS: usize = 1 << 16;

/// A raw strided matrix operand.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
    /// The same matrix packed ahead, when the caller has it (`A` only).
    pre: Option<Panels>,
}

#[derive(Clone, Copy)]
struct MatMut {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

// SAFETY: a `Mat` is a read-only view of f32 data; `sgemm`'s caller keeps that
// data alive and unwritten for the whole product, the threads of which are the
// only ones it is sent to.
unsafe impl Send for Mat {}
// SAFETY: as for `Send`: the threads of one product only read through it.
unsafe impl Sync for Mat {}
// SAFETY: sent only to the threads of one product, during which `sgemm`'s
// caller lends `C` to it alone; each part writes only its own rows or columns.
unsafe impl Send for MatMut {}
// SAFETY: as for `Send`: shared by the parts of one product, whose blocks of
// `C` are disjoint.
unsafe impl Sync for MatMut {}

/// `C = alpha·A·B + beta·C` (matrixmultiply's contract: `A` is `m×k`, `B` `k×n`,
/// `C` `m×n`, arbitrary element strides; `C` is not read when `beta` is 0), then
/// `then` on every finished block of `C`, at the [active](Isa::active) level.
///
/// # Safety
/// The pointers must address matrices of those shapes and strides, and `C`
/// must not alias `A` or `B`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    then: Option<Then<'_>>,
) {
    let isa = Isa::active();
    // SAFETY: the caller's promise, passed on; the active level is one the CPU supports.
    unsafe { sgemm_with(isa, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, then) }
}

/// [`sgemm`] with the kernels of level `isa` (tests run each level the CPU
/// supports).
///
/// # Safety
/// As [`sgemm`]. Panics if the CPU lacks `isa`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_with(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    then: Option<Then<'_>>,
) {
    // SAFETY: the caller's promise, passed on.
    unsafe { entry(isa, None, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, then) }
}

/// [`sgemm_with`], with `A`'s panels packed ahead when `pre` has them.
///
/// # Safety
/// As [`sgemm`]; `pre` is `A` packed at level `isa`.
#[allow(clippy::too_many_arguments)]
unsafe fn entry(
    isa: Isa,
    pre: Option<Panels>,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    then: Option<Then<'_>>,
) {
    let isa = isa.checked();
    // Worker threads size their packing buffers before their first part.
    static WORKER_HOOK: Once = Once::new();
    WORKER_HOOK.call_once(|| threads::on_worker_start(reserve_pack_buffer));
    if m == 0 || n == 0 {
        return;
    }
    // A single output row: transpose the product (Cᵀ = Bᵀ·Aᵀ) so it is a single column.
    if m == 1 && n > 1 {
        let swapped = |rows, cols| {
            if let Some(f) = then {
                f(cols, rows)
            }
        };
        let (a, b) =
            (Mat { ptr: b, rs: csb, cs: rsb, pre: None }, Mat { ptr: a, rs: csa, cs: rsa, pre: None });
        let c = MatMut { ptr: c, rs: csc, cs: rsc };
        let then = then.map(|_| &swapped as Then<'_>);
        // SAFETY: the same matrices (the caller's promise), transposed by swapping strides.
        return unsafe { dispatch(isa, n, k, m, alpha, a, b, beta, c, then) };
    }
    let (a, b) = (Mat { ptr: a, rs: rsa, cs: csa, pre }, Mat { ptr: b, rs: rsb, cs: csb, pre: None });
    let c = MatMut { ptr: c, rs: rsc, cs: csc };
    // SAFETY: the caller's promise, passed on.
    unsafe { dispatch(isa, m, k, n, alpha, a, b, beta, c, then) }
}

/// [`sgemm`] where `packed` holds `A` packed ahead ([`PackedA::pack`] of the
/// same matrix at the active level, not changed since): the blocked product
/// reads its panels instead of packing `A` again, with the same results, bit
/// for bit. A `packed` of another level or shape is ignored (`A` is packed
/// as usual).
///
/// # Safety
/// As [`sgemm`]; `packed` holds this `A`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_packed_a(
    packed: &PackedA,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let isa = Isa::active();
    let pre = packed.panels(isa, m, k);
    // SAFETY: the caller's promise, passed on; the active level is one the CPU supports.
    unsafe { entry(isa, pre, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, None) }
}

/// `y = A·x + bias` and, when `relu` is given, `relu = max(y, 0)`: one sample
/// through a small dense layer (`A` is `y.len()` rows of `x.len()` contiguous
/// values, fewer than [`PAR_MIN_MV_MACS`] multiply-adds, so never split), at
/// level `isa`.
///
/// One pass that keeps each block's sums in registers for the bias and the
/// ReLU, where the general path would plan, dispatch and call an epilogue for
/// a product of a few hundred multiply-adds. Returns `false`, having written
/// nothing, for a larger or empty layer or at the portable level (the kernel
/// is AVX2's, which AVX-512 CPUs run too): the caller takes the general path.
/// Panics if the CPU lacks `isa`.
pub(crate) fn small_affine(
    isa: Isa,
    a: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    relu: Option<&mut [f32]>,
) -> bool {
    let (m, k) = (y.len(), x.len());
    if m == 0 || k == 0 || m * k >= PAR_MIN_MV_MACS {
        return false;
    }
    assert!(
        a.len() >= m * k && bias.is_none_or(|b| b.len() == m) && relu.as_ref().is_none_or(|r| r.len() == m),
        "small_affine: operands of the wrong length"
    );
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => {
            let bias = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
            let relu = relu.map_or(std::ptr::null_mut(), <[f32]>::as_mut_ptr);
            // SAFETY: the CPU has AVX2 and FMA (both levels include them, and
            // `checked` asserted the level); the lengths are asserted above.
            unsafe { small_affine_avx2(m, k, a.as_ptr(), x.as_ptr(), bias, y.as_mut_ptr(), relu) };
            true
        }
        _ => false,
    }
}

/// [`sgemm_with`] after the single-row transposition: the plan, then the
/// product on one thread or split between several.
///
/// # Safety
/// As [`sgemm`]; the CPU supports `isa`.
#[allow(clippy::too_many_arguments)]
unsafe fn dispatch(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
    then: Option<Then<'_>>,
) {
    let plan = plan(isa, m, k, n);
    let then = |rows: Range<usize>, cols: Range<usize>| {
        if let Some(f) = then {
            f(rows, cols)
        }
    };
    if k == 0 {
        // SAFETY: `c` is the caller's `m×n` matrix.
        unsafe { scale(m, n, beta, c) };
        return then(0..m, 0..n);
    }
    let macs = m * n * k;
    let threads = threads::threads();
    // A matrix-vector product is bound by reading A, not by arithmetic: split
    // its rows once A is large enough, so each core streams its own half (and,
    // since part 0 always runs on the caller, keeps it in its own cache).
    let matrix_vector = n == 1 && k > 1 && m >= 32 * threads && macs >= PAR_MIN_MV_MACS;
    // Likewise an outer product (a weight gradient at batch 1) is bound by
    // writing C: split its columns, the blocks the optimizer's split update
    // reads next on the same cores.
    let outer = k == 1 && n >= 16 * threads && macs >= PAR_MIN_MV_MACS;
    let worth_splitting = macs >= PAR_MIN_MACS && n != 1 && (n >= FEW_COLUMNS || macs >= PAR_MIN_NARROW_MACS);
    if threads > 1 && (matrix_vector || outer || worth_splitting) {
        // Each part packs its own share of one operand and all of the other:
        // splitting C's columns repeats the packing of A (m×k), splitting its
        // rows repeats B's (k×n, unless the kernel reads B in place). Split
        // the side that repeats less, if it is long enough to give every
        // thread whole tiles.
        // A product whose inner dimension is the shortest (a weight gradient,
        // summed over the batch) is split by columns even when that packs more:
        // each thread then writes one contiguous block of `C`, the block the
        // optimizer's split update gives that thread next (and the forward
        // product's split reads), so the weights stay in that core's cache.
        let gradient_like = k <= m.min(n) && c.rs == 1;
        let by_columns = n >= 16 * threads && (m < n || m < 32 * threads || gradient_like || outer);
        let (split_n, len, unit) =
            if by_columns { (true, n, plan.col_unit()) } else { (false, m, plan.row_unit()) };
        let parts = threads.min(len.div_ceil(unit));
        if parts > 1 {
            reserve_pack_buffer();
            let units = len.div_ceil(unit);
            let balance = (parts == 2).then(|| Balance::of(m, k, n, split_n));
            // Whole units per part. Two parts divide them as the balance learnt;
            // otherwise the units left over go to the last parts, so the caller
            // (part 0, which also runs the serial work between products) never
            // gets the larger share: 784 rows are 384 + 400.
            let first = balance.map_or(0, |b| b.caller_units(units));
            let bound = |t: usize| match (t, balance) {
                (1, Some(_)) => first * unit,
                _ => ((units / parts) * t + t.saturating_sub(parts - units % parts)) * unit,
            };
            let times = [AtomicU64::new(0), AtomicU64::new(0)];
            threads::run(parts, &|t| {
                let clock = Instant::now();
                // Capture the operands whole (they are Sync), not their raw-pointer fields.
                let (a, b, c) = (a, b, c);
                let start = bound(t).min(len);
                let size = bound(t + 1).min(len) - start;
                // SAFETY: `start + size` is at most `n` (`m`), so the offset
                // operands are the caller's matrices' columns (rows) from
                // `start`, and every part writes its own columns (rows) of C;
                // the plan's kernels are of `isa`, which the CPU supports.
                unsafe {
                    if split_n {
                        let b = Mat { ptr: b.ptr.offset(start as isize * b.cs), ..b };
                        let c = MatMut { ptr: c.ptr.offset(start as isize * c.cs), ..c };
                        single(plan, m, k, size, alpha, a, b, beta, c);
                        then(0..m, start..start + size)
                    } else {
                        let pre = a.pre.and_then(|p| p.from_row(start));
                        let a = Mat { ptr: a.ptr.offset(start as isize * a.rs), pre, ..a };
                        let c = MatMut { ptr: c.ptr.offset(start as isize * c.rs), ..c };
                        single(plan, size, k, n, alpha, a, b, beta, c);
                        then(start..start + size, 0..n)
                    }
                }
                if let Some(time) = times.get(t) {
                    time.store(clock.elapsed().as_nanos() as u64, Relaxed);
                }
            });
            if let Some(balance) = balance {
                balance.learn(first, units, [times[0].load(Relaxed), times[1].load(Relaxed)]);
            }
            return;
        }
    }
    // SAFETY: the caller's matrices, whole; the plan's kernels are of `isa`, which the CPU supports.
    unsafe { single(plan, m, k, n, alpha, a, b, beta, c) };
    then(0..m, 0..n)
}

/// `C = beta·C` (an empty inner dimension).
///
/// # Safety
/// `c` addresses an `m×n` matrix with its strides.
unsafe fn scale(m: usize, n: usize, beta: f32, c: MatMut) {
    for j in 0..n {
        for i in 0..m {
            // SAFETY: element (i, j) of the caller's `m×n` matrix.
            unsafe {
                let p = c.ptr.offset(i as isize * c.rs + j as isize * c.cs);
                *p = if beta == 0.0 { 0.0 } else { beta * *p };
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Register helpers shared by the routines.
// ---------------------------------------------------------------------------

/// Transposes an 8×8 block: row `r` of the source (8 contiguous values at
/// `src + r·stride`) becomes the values at `dst + c·dst_stride + r` for `c` in
/// 0..8. Only the first `rows` source rows are read; the others count as zeros.
///
/// # Safety
/// The first `rows` source rows and the 8 destination runs of 8 lie in their
/// buffers; on x86-64 the CPU supports AVX (the caller is an AVX2 or AVX-512 kernel).
#[inline(always)]
unsafe fn transpose8x8(src: *const f32, stride: isize, rows: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: reads only the first `rows` source rows and writes the eight
    // destination runs, all in their buffers; AVX is the caller's promise.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        use std::arch::x86_64::*;
        let r = |i: isize| {
            if (i as usize) < rows {
                _mm256_loadu_ps(src.offset(i * stride))
            } else {
                _mm256_setzero_ps()
            }
        };
        let (r0, r1, r2, r3, r4, r5, r6, r7) = (r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7));
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
        let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
        let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
        let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (c, v) in out.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(c * dst_stride), v);
        }
    }
    // SAFETY: as above, without intrinsics.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe {
        for r in 0..8 {
            for c in 0..8 {
                *dst.add(c * dst_stride + r) =
                    if r < rows { *src.offset(r as isize * stride + c as isize) } else { 0.0 };
            }
        }
    }
}
