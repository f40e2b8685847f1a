//! The f32 matrix product: packed GEMM with AVX-512 / AVX2 micro-kernels chosen
//! at run time, matrix-vector and rank-1 paths for batch 1, and no allocation
//! per call (packing buffers are per thread and reused).
//!
//! Why not matrixmultiply for f32: it allocates its packing buffers on every
//! call (so a training step could never be allocation-free), it packs even when
//! one side is a single column (batch-1 inference spent most of its time there),
//! and its threading cannot be told which products are worth splitting.
//!
//! This module is the entry (`sgemm`, `small_affine`), the choice of a routine
//! per shape and CPU (`plan`, `single`) and the split of a product between
//! threads (`dispatch`, `Balance`). The routines: `small` (tiny layers, `A` in
//! registers, `C` in register tiles), `vector` (batch 1 and rank 1, no
//! packing) and `packed` (the BLIS-blocked product with its micro-kernels).
//! Results depend only on the shapes and on the kernel the CPU selects, never
//! on the thread count: threads split `C` by columns (or rows), not the inner sum.

mod packed;
mod small;
mod vector;

use super::Isa;
use crate::tensor::threads;
pub(crate) use packed::reserve_pack_buffer;
use packed::{packed_avx2, packed_avx512, packed_portable};
use small::{is_small, small, small_avx2, small_avx512, SMALL_DIM, SMALL_ROWS};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use vector::{
    matrix_vector_avx2, matrix_vector_avx512, simple, simple_avx2, simple_avx512, small_affine_avx2,
};

/// Work on a finished block of `C` (its rows, its columns), run right after
/// the block is computed by the thread that computed it: a split product's
/// epilogue (bias, activation) is split the same way, on data still in that
/// core's cache, and runs once over all of `C` when the product is not split.
pub(crate) type Then<'a> = &'a (dyn Fn(Range<usize>, Range<usize>) + Sync);

/// Products below this many multiply-adds stay on one thread.
const PAR_MIN_MACS: usize = 1 << 20;
/// Matrix-vector products (batch 1) below this many stay on one thread.
const PAR_MIN_MV_MACS: usize = 1 << 16;

/// A raw strided matrix operand.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

#[derive(Clone, Copy)]
struct MatMut {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

// SAFETY: only shared between the threads of one product, which write disjoint parts of `C`.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}
unsafe impl Send for MatMut {}
unsafe impl Sync for MatMut {}

/// `C = alpha·A·B + beta·C` (matrixmultiply's contract: `A` is `m×k`, `B` `k×n`,
/// `C` `m×n`, arbitrary element strides; `C` is not read when `beta` is 0), then
/// `then` on every finished block of `C`.
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
        let (a, b) = (Mat { ptr: b, rs: csb, cs: rsb }, Mat { ptr: a, rs: csa, cs: rsa });
        let c = MatMut { ptr: c, rs: csc, cs: rsc };
        let then = then.map(|_| &swapped as Then<'_>);
        return unsafe { dispatch(n, k, m, alpha, a, b, beta, c, then) };
    }
    let (a, b) = (Mat { ptr: a, rs: rsa, cs: csa }, Mat { ptr: b, rs: rsb, cs: csb });
    let c = MatMut { ptr: c, rs: rsc, cs: csc };
    unsafe { dispatch(m, k, n, alpha, a, b, beta, c, then) }
}

/// `y = A·x + bias` and, when `relu` is given, `relu = max(y, 0)`: one sample
/// through a small dense layer (`A` is `y.len()` rows of `x.len()` contiguous
/// values, fewer than [`PAR_MIN_MV_MACS`] multiply-adds, so never split).
///
/// One pass that keeps each block's sums in registers for the bias and the
/// ReLU; the general path (plan, dispatch, an epilogue called per block) took
/// two thirds of a tiny network's batch-1 inference around products of 64–256
/// multiply-adds. Returns `false`, having written nothing, for a larger or
/// empty layer or on a CPU without AVX2 and FMA: the caller takes the general path.
pub(crate) fn small_affine(
    a: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    relu: Option<&mut [f32]>,
) -> bool {
    let (m, k) = (y.len(), x.len());
    if m == 0 || k == 0 || m * k >= PAR_MIN_MV_MACS || !crate::kernels::simd::has_avx2() {
        return false;
    }
    assert!(
        a.len() >= m * k && bias.is_none_or(|b| b.len() == m) && relu.as_ref().is_none_or(|r| r.len() == m),
        "small_affine: operands of the wrong length"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let bias = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        let relu = relu.map_or(std::ptr::null_mut(), <[f32]>::as_mut_ptr);
        // SAFETY: AVX2 and FMA checked above, lengths asserted.
        unsafe { small_affine_avx2(m, k, a.as_ptr(), x.as_ptr(), bias, y.as_mut_ptr(), relu) };
    }
    true
}

#[allow(clippy::too_many_arguments)]
unsafe fn dispatch(
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
    let plan = plan(Isa::active(), m, k, n);
    let then = |rows: Range<usize>, cols: Range<usize>| {
        if let Some(f) = then {
            f(rows, cols)
        }
    };
    if k == 0 {
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
    if threads > 1 && (matrix_vector || outer || (macs >= PAR_MIN_MACS && n != 1)) {
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
                // SAFETY: every part writes its own columns (rows) of C.
                unsafe {
                    if split_n {
                        let b = Mat { ptr: b.ptr.offset(start as isize * b.cs), ..b };
                        let c = MatMut { ptr: c.ptr.offset(start as isize * c.cs), ..c };
                        single(plan, m, k, size, alpha, a, b, beta, c);
                        then(0..m, start..start + size)
                    } else {
                        let a = Mat { ptr: a.ptr.offset(start as isize * a.rs), ..a };
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
    unsafe { single(plan, m, k, n, alpha, a, b, beta, c) };
    then(0..m, 0..n)
}

/// How a product split between two threads divides its units (tiles of rows
/// or columns): the caller's share, learnt per shape from how long each part
/// took, so both parts finish together even when one core runs slower than
/// the other (a busy hyperthread sibling, a neighbour on a shared host: on the
/// 2-vCPU machines this was written on, one vCPU often ran at 70% of the
/// other's speed for seconds at a time, and a fixed half-and-half split left the
/// faster core idle for that difference). Where the split falls never changes
/// the results: every element of `C` is computed by the same kernel with the
/// same arithmetic whichever part it lands in.
#[derive(Clone, Copy)]
struct Balance(&'static AtomicU32);

/// The caller's share per shape slot, in 1/1024; 0: not measured yet.
static SHARES: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

impl Balance {
    /// The slot of a product shape (shapes may share one: it only steers speed).
    fn of(m: usize, k: usize, n: usize, split_n: bool) -> Self {
        let h = [m, k, n, split_n as usize]
            .iter()
            .fold(0u64, |h, &x| (h ^ x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Balance(&SHARES[(h >> 58) as usize])
    }

    /// How many of `units` the caller takes: a quarter to three quarters (at
    /// least one each); before any measurement, the smaller half.
    fn caller_units(self, units: usize) -> usize {
        let share = self.0.load(Relaxed) as usize;
        let first = if share == 0 { units / 2 } else { (units * share + 512) / 1024 };
        first.clamp((units / 4).max(1), (units - units / 4).min(units - 1))
    }

    /// Moves the share a quarter of the way to the one that would have made
    /// both parts (`first` units on the caller, the rest on the other thread)
    /// take equally long; a part that took no measurable time teaches nothing.
    fn learn(self, first: usize, units: usize, [t0, t1]: [u64; 2]) {
        if t0 == 0 || t1 == 0 {
            return;
        }
        // Units per nanosecond on each side; the share that equalises the times.
        let (v0, v1) = (first as f64 / t0 as f64, (units - first) as f64 / t1 as f64);
        let target = 1024.0 * v0 / (v0 + v1);
        let now = match self.0.load(Relaxed) {
            0 => 1024.0 * first as f64 / units as f64,
            // Not what was used (whole units) but what was learnt, so small steps add up.
            share => share as f64,
        };
        let share = (now + (target - now) / 4.0).clamp(1.0, 1023.0);
        self.0.store(share as u32, Relaxed);
    }
}

/// Which kernel computes a product. Chosen once from the whole product's
/// shape, so every part of a split product runs the same kernel (and the same
/// arithmetic per element) as the unsplit product would.
#[derive(Clone, Copy)]
enum Plan {
    /// Matrix-vector or outer products.
    Simple(Isa),
    /// Tiny products: one copy of A, no panels.
    Small(Isa),
    /// A tiny product with fewer rows than a register holds, run as `Cᵀ = Bᵀ·Aᵀ`.
    SmallTransposed(Isa),
    /// The blocked product with packed panels.
    Packed(Isa),
    /// Few rows and many columns: a 32-row tile would be mostly padding, so
    /// compute `Cᵀ = Bᵀ·Aᵀ`, whose rows are C's many columns (a dense forward
    /// pass with few outputs: 10 × 64 becomes 64 × 10).
    PackedTransposed,
}

impl Plan {
    /// Rows per unit when a split divides `C` by rows: whole register tiles
    /// of the kernel, and small enough that the balance between two cores
    /// can move in steps of 1/16 of a 256-row product.
    fn row_unit(self) -> usize {
        match self {
            Plan::Packed(Isa::Avx2) => 16,
            _ => 32,
        }
    }

    /// Columns per unit when a split divides `C` by columns: whole tiles of
    /// the kernel (AVX2's are 6 wide, AVX-512's 8).
    fn col_unit(self) -> usize {
        match self {
            Plan::Packed(Isa::Avx2) => 12,
            _ => 16,
        }
    }
}

fn plan(isa: Isa, m: usize, k: usize, n: usize) -> Plan {
    let simple = n == 1 || k == 1;
    match isa {
        Isa::Avx512 if simple => Plan::Simple(isa),
        // Rows are padded to a register of 16: Cᵀ has more of them.
        Isa::Avx512 if is_small(m, k, n) && m < SMALL_ROWS && n > m && n <= SMALL_DIM => {
            Plan::SmallTransposed(isa)
        }
        Isa::Avx512 if is_small(m, k, n) => Plan::Small(isa),
        Isa::Avx512 if m <= 16 && n >= 32 => Plan::PackedTransposed,
        // A 32-row tile would be mostly padding.
        Isa::Avx512 if m <= 16 => Plan::Packed(Isa::Avx2),
        _ if simple => Plan::Simple(isa),
        // Likewise for AVX2's registers of 8.
        Isa::Avx2 if is_small(m, k, n) && m < 8 && n > m && n <= SMALL_DIM => Plan::SmallTransposed(isa),
        _ if is_small(m, k, n) => Plan::Small(isa),
        _ => Plan::Packed(isa),
    }
}

/// One thread's product (or part of one) with the kernel `plan` chose.
#[allow(clippy::too_many_arguments)]
unsafe fn single(plan: Plan, m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    unsafe {
        match plan {
            #[cfg(target_arch = "x86_64")]
            Plan::Simple(Isa::Avx512) if n == 1 && a.cs == 1 && b.rs == 1 => {
                matrix_vector_avx512(m, k, alpha, a, b.ptr, beta, c)
            }
            #[cfg(target_arch = "x86_64")]
            Plan::Simple(Isa::Avx512) => simple_avx512(m, k, n, alpha, a, b, beta, c),
            #[cfg(target_arch = "x86_64")]
            Plan::Simple(Isa::Avx2) if n == 1 && a.cs == 1 && b.rs == 1 => {
                matrix_vector_avx2(m, k, alpha, a, b.ptr, beta, c)
            }
            #[cfg(target_arch = "x86_64")]
            Plan::Simple(Isa::Avx2) => simple_avx2(m, k, n, alpha, a, b, beta, c),
            Plan::Simple(_) => simple(m, k, n, alpha, a, b, beta, c),
            #[cfg(target_arch = "x86_64")]
            Plan::Small(Isa::Avx512) => small_avx512(m, k, n, alpha, a, b, beta, c),
            #[cfg(target_arch = "x86_64")]
            Plan::SmallTransposed(Isa::Avx512) => {
                let (m, n, a, b, c) = transposed(m, n, a, b, c);
                small_avx512(m, k, n, alpha, a, b, beta, c)
            }
            #[cfg(target_arch = "x86_64")]
            Plan::SmallTransposed(_) => {
                let (m, n, a, b, c) = transposed(m, n, a, b, c);
                small_avx2(m, k, n, alpha, a, b, beta, c)
            }
            #[cfg(target_arch = "x86_64")]
            Plan::Small(Isa::Avx2) => small_avx2(m, k, n, alpha, a, b, beta, c),
            #[cfg(target_arch = "x86_64")]
            Plan::Packed(Isa::Avx512) => packed_avx512(m, k, n, alpha, a, b, beta, c),
            #[cfg(target_arch = "x86_64")]
            Plan::PackedTransposed => {
                let (m, n, a, b, c) = transposed(m, n, a, b, c);
                packed_avx512(m, k, n, alpha, a, b, beta, c)
            }
            #[cfg(target_arch = "x86_64")]
            Plan::Packed(Isa::Avx2) => packed_avx2(m, k, n, alpha, a, b, beta, c),
            Plan::Small(_) => small(m, k, n, alpha, a, b, beta, c),
            _ => packed_portable(m, k, n, alpha, a, b, beta, c),
        }
    }
}

/// The product `Cᵀ = Bᵀ·Aᵀ` of `C = A·B` (`m×n`): (`n`, `m`, `Bᵀ`, `Aᵀ`, `Cᵀ`),
/// the same memory with strides swapped.
fn transposed(m: usize, n: usize, a: Mat, b: Mat, c: MatMut) -> (usize, usize, Mat, Mat, MatMut) {
    let t = |x: Mat| Mat { ptr: x.ptr, rs: x.cs, cs: x.rs };
    (n, m, t(b), t(a), MatMut { ptr: c.ptr, rs: c.cs, cs: c.rs })
}

/// `C = beta·C` (an empty inner dimension).
unsafe fn scale(m: usize, n: usize, beta: f32, c: MatMut) {
    for j in 0..n {
        for i in 0..m {
            let p = unsafe { c.ptr.offset(i as isize * c.rs + j as isize * c.cs) };
            unsafe { *p = if beta == 0.0 { 0.0 } else { beta * *p } };
        }
    }
}

// ---------------------------------------------------------------------------
// Register helpers shared by the routines.
// ---------------------------------------------------------------------------

/// Transposes an 8×8 block: row `r` of the source (8 contiguous values at
/// `src + r·stride`) becomes the values at `dst + c·dst_stride + r` for `c` in
/// 0..8. Only the first `rows` source rows are read; the others count as zeros.
/// Only called where the kernel in use has checked for AVX.
#[inline(always)]
unsafe fn transpose8x8(src: *const f32, stride: isize, rows: usize, dst: *mut f32, dst_stride: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i + j * m] =
                    (0..k).map(|p| a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64).sum();
            }
        }
        c
    }

    fn check(m: usize, k: usize, n: usize, a_row_major: bool, b_row_major: bool, alpha: f32, beta: f32) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5).collect();
        let sa = if a_row_major { (k, 1) } else { (1, m) };
        let sb = if b_row_major { (n, 1) } else { (1, k) };
        let expected = naive(m, k, n, &a, sa, &b, sb);
        for threads in [1, 2] {
            threads::set_threads(threads);
            // C column-major, with a NaN that beta = 0 must not read.
            let mut c = vec![if beta == 0.0 { f32::NAN } else { 1.0 }; m * n];
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    alpha,
                    a.as_ptr(),
                    sa.0 as isize,
                    sa.1 as isize,
                    b.as_ptr(),
                    sb.0 as isize,
                    sb.1 as isize,
                    beta,
                    c.as_mut_ptr(),
                    1,
                    m as isize,
                    None,
                )
            };
            for (idx, (&got, &want)) in c.iter().zip(&expected).enumerate() {
                let want = alpha as f64 * want + if beta == 0.0 { 0.0 } else { beta as f64 };
                assert!(
                    (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{m}×{k}×{n} (a row-major {a_row_major}, b row-major {b_row_major}) at {idx}: {got} vs {want}"
                );
            }
        }
        threads::set_threads(1);
    }

    /// `C = A·B` (column-major A and C, row-major B) on `threads` threads.
    fn product(m: usize, k: usize, n: usize, threads: usize) -> Vec<f32> {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
        let mut c = vec![0.0; m * n];
        threads::set_threads(threads);
        unsafe {
            sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                1,
                m as isize,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                1,
                m as isize,
                None,
            )
        };
        threads::set_threads(1);
        c
    }

    #[test]
    fn where_a_split_falls_never_changes_a_bit() {
        // Rows split, columns split (a gradient-shaped product), and few rows with
        // many columns, whose parts alone would have picked another kernel.
        for (m, k, n) in [(256, 784, 128), (784, 128, 256), (16, 4096, 48)] {
            let whole = product(m, k, n, 1);
            for share in [1, 200, 512, 900, 1023] {
                SHARES.iter().for_each(|s| s.store(share, Relaxed));
                assert!(product(m, k, n, 2) == whole, "{m}×{k}×{n}, caller's share {share}/1024");
            }
        }
    }

    #[test]
    fn the_balance_learns_the_share_that_evens_the_parts_out() {
        let balance = Balance(Box::leak(Box::new(AtomicU32::new(0))));
        assert_eq!(balance.caller_units(9), 4, "unmeasured: the caller takes the smaller half");
        // The other thread is twice as fast: the caller should take a third.
        for _ in 0..40 {
            let first = balance.caller_units(12);
            balance.learn(first, 12, [first as u64 * 200, (12 - first) as u64 * 100]);
        }
        assert_eq!(balance.caller_units(12), 4);
        assert!((balance.0.load(Relaxed) as i32 - 341).abs() <= 8, "{}", balance.0.load(Relaxed));
        // Never less than a quarter, nor a part left empty.
        for _ in 0..40 {
            balance.learn(3, 12, [3_000_000, 9]);
        }
        assert_eq!(balance.caller_units(12), 3);
        assert_eq!(balance.caller_units(2), 1);
        // A part too quick to time teaches nothing.
        let before = balance.0.load(Relaxed);
        balance.learn(3, 12, [0, 100]);
        assert_eq!(balance.0.load(Relaxed), before);
    }

    #[test]
    fn a_b_read_in_place_gives_the_bits_of_a_packed_one() {
        // The same values of B column-major (contiguous columns, read in place
        // by kernels that can) and row-major (always packed), on 1 and 2 threads;
        // n = 128 leaves a last panel narrower than AVX2's 6 columns.
        for (m, k, n) in [(256, 784, 128), (64, 50, 13), (16, 900, 12)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
            let b_cols: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
            let b_rows: Vec<f32> = (0..k * n).map(|i| b_cols[(i % n) * k + i / n]).collect();
            for threads in [1, 2] {
                threads::set_threads(threads);
                let run = |b: &[f32], (rs, cs): (isize, isize), beta: f32| {
                    let mut c = vec![0.5; m * n];
                    let (a, b, ldc) = (a.as_ptr(), b.as_ptr(), m as isize);
                    unsafe { sgemm(m, k, n, 1.0, a, 1, ldc, b, rs, cs, beta, c.as_mut_ptr(), 1, ldc, None) };
                    c
                };
                for beta in [0.0, 1.0] {
                    let in_place = run(&b_cols, (1, k as isize), beta);
                    let packed = run(&b_rows, (n as isize, 1), beta);
                    assert!(
                        in_place.iter().zip(&packed).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{m}×{k}×{n}, {threads} threads, beta {beta}"
                    );
                }
            }
            threads::set_threads(1);
        }
    }

    #[test]
    fn a_narrow_last_panel_gives_the_bits_of_a_full_one() {
        // Columns 6 and 7 of an 8-column product are a last panel of two (the
        // AVX2 kernel's narrow tile); of a 12-column product, part of a whole
        // panel. The same bits, with B read in place or packed, and with a
        // row count that leaves one 16-row panel without a partner.
        let (k, n) = (300, 8);
        for m in [64, 80] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
            let wide: Vec<f32> = (0..k * 12).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
            for b_rows in [false, true] {
                let run = |cols: usize| {
                    let mut c = vec![0.0; m * cols];
                    let (rs, cs) = if b_rows { (12, 1) } else { (1, k as isize) };
                    let (a, b, ldc) = (a.as_ptr(), wide.as_ptr(), m as isize);
                    unsafe {
                        sgemm(m, k, cols, 1.0, a, 1, ldc, b, rs, cs, 0.0, c.as_mut_ptr(), 1, ldc, None)
                    };
                    c
                };
                let (narrow, full) = (run(n), run(12));
                assert!(
                    narrow.iter().zip(&full).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "m {m}, B row-major {b_rows}"
                );
            }
        }
    }

    #[test]
    fn matches_the_definition_for_every_shape_path_and_layout() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 1),
            (37, 300, 1),
            (37, 60, 1),
            (16, 16, 1),
            (5, 9, 1),
            (300, 300, 1),
            (1, 40, 9),
            (13, 1, 7),
            (784, 1, 256),
            (16, 4, 32),
            (3, 16, 32),
            (32, 32, 8),
            (20, 7, 9),
            (16, 32, 3),
            (4, 32, 16),
            (31, 32, 30),
            (12, 20, 5),
            (8, 12, 21),
            (24, 9, 7),
            (10, 1352, 64),
            (10, 128, 128),
            (33, 17, 13),
            (70, 600, 45),
            (256, 784, 128),
            (300, 40, 1100),
        ] {
            for (ar, br) in [(false, false), (true, false), (false, true), (true, true)] {
                // Scaled products go through a scratch tile; unscaled ones
                // (alpha 1, beta 0 or 1) write whole tiles straight into C.
                for (alpha, beta) in [(2.0, 0.0), (2.0, 0.5), (1.0, 0.0), (1.0, 1.0)] {
                    check(m, k, n, ar, br, alpha, beta);
                }
            }
        }
    }

    #[test]
    fn small_affine_is_the_product_plus_bias_and_its_relu() {
        if !crate::kernels::simd::has_avx2() {
            return; // the caller's general path; nothing else to test
        }
        // Rows in whole blocks of four and not; depths in whole registers, masked tails and both.
        for (m, k) in [(1, 1), (3, 16), (8, 8), (9, 4), (16, 4), (16, 16), (17, 33), (130, 250)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
            let x: Vec<f32> = (0..k).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5).collect();
            let bias: Vec<f32> = (0..m).map(|i| (i as f32 * 0.7).sin()).collect();
            let product = naive(m, k, 1, &a, (k, 1), &x, (1, k));
            for with_bias in [false, true] {
                let (mut y, mut r) = (vec![f32::NAN; m], vec![f32::NAN; m]);
                assert!(small_affine(&a, &x, with_bias.then_some(&bias[..]), &mut y, Some(&mut r)));
                for i in 0..m {
                    let want = product[i] + if with_bias { bias[i] as f64 } else { 0.0 };
                    assert!(
                        (y[i] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{m}×{k} row {i}: {} vs {want}",
                        y[i]
                    );
                    let relu = if y[i] < 0.0 { 0.0 } else { y[i] };
                    assert_eq!(r[i].to_bits(), relu.to_bits(), "{m}×{k} row {i}");
                }
                let mut y2 = vec![0.0; m];
                assert!(small_affine(&a, &x, with_bias.then_some(&bias[..]), &mut y2, None));
                assert_eq!(y2, y, "without the ReLU output, {m}×{k}");
            }
        }
        // A NaN passes the ReLU, as `Relu::value` lets it, in whole blocks and in the last one.
        let (a, x) = ([1.0f32; 9], [1.0f32]);
        let bias = [f32::NAN, -3.0, -2.0, 3.0, f32::NAN, 0.0, 0.5, -1.0, f32::NAN];
        let (mut y, mut r) = ([0.0; 9], [0.0; 9]);
        assert!(small_affine(&a, &x, Some(&bias), &mut y, Some(&mut r)));
        for ((&y, &r), &b) in y.iter().zip(&r).zip(&bias) {
            assert_eq!(y.to_bits(), (1.0 + b).to_bits());
            assert_eq!(r.to_bits(), if y < 0.0 { 0.0f32 } else { y }.to_bits(), "relu({y})");
        }
        assert!(r[0].is_nan() && r[4].is_nan() && r[8].is_nan());
        // Larger layers are split across threads by the general path instead.
        let big = vec![0.0f32; PAR_MIN_MV_MACS];
        assert!(!small_affine(&big, &big[..256], None, &mut [0.0; 256], None));
    }
}
