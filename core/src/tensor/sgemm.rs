//! The f32 matrix product: packed GEMM with AVX-512 / AVX2 micro-kernels chosen
//! at run time, matrix-vector and rank-1 paths for batch 1, and no allocation
//! per call (packing buffers are per thread and reused).
//!
//! Why not matrixmultiply for f32: it allocates its packing buffers on every
//! call (so a training step could never be allocation-free), it packs even when
//! one side is a single column (batch-1 inference spent most of its time there),
//! and its threading cannot be told which products are worth splitting.
//!
//! Structure (BLIS): for each `KC`-deep slice of the inner dimension, `B` is
//! packed into `NR`-wide panels and `A` into `MR`-tall panels (zero-padded), and
//! an `MR×NR` register tile of `C` is accumulated by the micro-kernel (the AVX2
//! kernel reads a `B` whose columns are contiguous, a batch of samples, where it
//! lies instead: [`Kernel::run_in_place`], the same bits). Results
//! depend only on the shapes and on the kernel the CPU selects, never on the
//! thread count: threads split `C` by columns (or rows), not the inner sum.

use super::threads;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Work on a finished block of `C` (its rows, its columns), run right after
/// the block is computed by the thread that computed it: a split product's
/// epilogue (bias, activation) is split the same way, on data still in that
/// core's cache, and runs once over all of `C` when the product is not split.
pub(crate) type Then<'a> = &'a (dyn Fn(Range<usize>, Range<usize>) + Sync);

/// The deepest packed slice of the inner dimension any kernel uses
/// ([`Kernel::KC`]), for sizing the packing buffers.
const KC_MAX: usize = 400;
/// Rows of `A` packed at once (kept in L2).
const MC: usize = 192;
/// Columns of `B` packed at once.
const NC: usize = 1024;

/// Products below this many multiply-adds stay on one thread.
const PAR_MIN_MACS: usize = 1 << 20;
/// Matrix-vector products (batch 1) below this many stay on one thread.
const PAR_MIN_MV_MACS: usize = 1 << 16;

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
    if m == 0 || k == 0 || m * k >= PAR_MIN_MV_MACS || !super::simd::has_avx2() {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Generic,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Generic
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
    let plan = plan(isa(), m, k, n);
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
            _ => packed::<GenericKernel>(m, k, n, alpha, a, b, beta, c),
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
// Small products (tiny layers): one copy of A, no panels.
// ---------------------------------------------------------------------------

/// Rows and inner size up to which [`small`] holds `A` on the stack.
const SMALL_DIM: usize = 32;
/// Rows per block of [`small`]: one AVX-512 register of f32.
const SMALL_ROWS: usize = 16;

/// Whether a product is small enough that packing panels costs more than it saves.
fn is_small(m: usize, k: usize, n: usize) -> bool {
    m <= SMALL_DIM && k <= SMALL_DIM && m * k * n <= 1 << 15
}

/// Entry points that compile an `#[inline(always)]` product routine for AVX-512
/// and for AVX2 (the CPU is checked once, in `isa`, before either is called).
macro_rules! isa_entry_points {
    ($($routine:ident => $avx512:ident, $avx2:ident;)*) => {$(
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx512(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
            unsafe { $routine(m, k, n, alpha, a, b, beta, c) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
            unsafe { $routine(m, k, n, alpha, a, b, beta, c) }
        }
    )*};
}

isa_entry_points! {
    simple => simple_avx512, simple_avx2;
}

/// `c = alpha·A·b + beta·c` for a matrix `A` whose rows are contiguous (a dense
/// layer's forward pass at batch 1: `Wᵀ·x`). Bound by reading `A` (from L2 when
/// it fits), so eight rows are read side by side, 32 elements of each per step
/// with fused multiply-adds into sixteen accumulators: ~20% more bandwidth than
/// the portable four-row loop.
///
/// # Safety
/// As [`sgemm`] with `n = 1`, `a.cs = 1`, `b` contiguous; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn matrix_vector_avx512(m: usize, k: usize, alpha: f32, a: Mat, b: *const f32, beta: f32, c: MatMut) {
    let mut i = 0;
    while i + 8 <= m {
        unsafe { matrix_vector_rows::<8>(i, k, alpha, a, b, beta, c) };
        i += 8;
    }
    while i < m {
        unsafe { matrix_vector_rows::<1>(i, k, alpha, a, b, beta, c) };
        i += 1;
    }
}

/// Rows `i..i + R` of [`matrix_vector_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn matrix_vector_rows<const R: usize>(
    i: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: *const f32,
    beta: f32,
    c: MatMut,
) {
    use std::arch::x86_64::*;
    let row = |r: usize| unsafe { a.ptr.offset((i + r) as isize * a.rs) };
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut p = 0;
    while p + 32 <= k {
        let x = unsafe { [_mm512_loadu_ps(b.add(p)), _mm512_loadu_ps(b.add(p + 16))] };
        for (r, acc) in acc.iter_mut().enumerate() {
            for (u, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(unsafe { _mm512_loadu_ps(row(r).add(p + 16 * u)) }, x[u], *acc);
            }
        }
        p += 32;
    }
    while p < k {
        let mask = (u32::MAX >> (32 - (k - p).min(16))) as __mmask16;
        let x = unsafe { _mm512_maskz_loadu_ps(mask, b.add(p)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            acc[0] = _mm512_fmadd_ps(unsafe { _mm512_maskz_loadu_ps(mask, row(r).add(p)) }, x, acc[0]);
        }
        p += 16;
    }
    for (r, acc) in acc.iter().enumerate() {
        let v = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        let out = unsafe { &mut *c.ptr.offset((i + r) as isize * c.rs) };
        *out = if beta == 0.0 { alpha * v } else { alpha * v + beta * *out };
    }
}

/// [`matrix_vector_avx512`] for AVX2 CPUs: four rows side by side, 16
/// elements of each per step, fused multiply-adds into eight accumulators
/// (the portable loop, compiled for AVX2, rounds every product before adding
/// it and spills its sixteen 32-lane sums out of the sixteen YMM registers).
///
/// # Safety
/// As [`sgemm`] with `n = 1`, `a.cs = 1`, `b` contiguous; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matrix_vector_avx2(m: usize, k: usize, alpha: f32, a: Mat, b: *const f32, beta: f32, c: MatMut) {
    let mut i = 0;
    while i + 4 <= m {
        unsafe { matrix_vector_rows_avx2::<4>(i, k, alpha, a, b, beta, c) };
        i += 4;
    }
    while i < m {
        unsafe { matrix_vector_rows_avx2::<1>(i, k, alpha, a, b, beta, c) };
        i += 1;
    }
}

/// Rows `i..i + R` of [`matrix_vector_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn matrix_vector_rows_avx2<const R: usize>(
    i: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: *const f32,
    beta: f32,
    c: MatMut,
) {
    use std::arch::x86_64::*;
    let rows = std::array::from_fn(|r| unsafe { a.ptr.offset((i + r) as isize * a.rs) });
    let sums = unsafe { row_sums_avx2::<R>(rows, k, b) };
    let out = |r: usize, v: f32| {
        let out = unsafe { &mut *c.ptr.offset((i + r) as isize * c.rs) };
        *out = if beta == 0.0 { alpha * v } else { alpha * v + beta * *out };
    };
    if let Ok(four) = sums[..].try_into() {
        let mut lanes = [0.0f32; 4];
        unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), four_sums_avx2(four)) };
        lanes.iter().enumerate().for_each(|(r, &v)| out(r, v));
    } else {
        for (r, &sum) in sums.iter().enumerate() {
            let mut lanes = [0.0f32; 8];
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
            out(r, lanes.iter().sum());
        }
    }
}

/// The products of `R` rows of `k` values with `x`, each row's in the eight
/// lanes of one register (to be summed across): 16 values of each row per
/// step into two registers, so four rows keep eight independent FMA chains.
///
/// # Safety
/// Each of `rows` and `x` holds `k` values; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn row_sums_avx2<const R: usize>(
    rows: [*const f32; R],
    k: usize,
    x: *const f32,
) -> [std::arch::x86_64::__m256; R] {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut p = 0;
    while p + 16 <= k {
        let xv = unsafe { [_mm256_loadu_ps(x.add(p)), _mm256_loadu_ps(x.add(p + 8))] };
        for (acc, row) in acc.iter_mut().zip(rows) {
            for (u, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(row.add(p + 8 * u)) }, xv[u], *acc);
            }
        }
        p += 16;
    }
    if p < k {
        // The last 1 to 15 values: a whole or masked register, and a masked one.
        let load = |ptr: *const f32, n: usize| unsafe {
            if n >= 8 {
                _mm256_loadu_ps(ptr)
            } else {
                _mm256_maskload_ps(ptr, first_lanes(n))
            }
        };
        let xv = load(unsafe { x.add(p) }, k - p);
        for (acc, row) in acc.iter_mut().zip(rows) {
            acc[0] = _mm256_fmadd_ps(load(unsafe { row.add(p) }, k - p), xv, acc[0]);
        }
        if k - p > 8 {
            let xv = load(unsafe { x.add(p + 8) }, k - p - 8);
            for (acc, row) in acc.iter_mut().zip(rows) {
                acc[1] = _mm256_fmadd_ps(load(unsafe { row.add(p + 8) }, k - p - 8), xv, acc[1]);
            }
        }
    }
    acc.map(|[a0, a1]| _mm256_add_ps(a0, a1))
}

/// `[Σ s0, Σ s1, Σ s2, Σ s3]`: the lanes of four registers summed, pairs by
/// horizontal adds, then quads within each 128-bit half, then the halves.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn four_sums_avx2(s: [std::arch::x86_64::__m256; 4]) -> std::arch::x86_64::__m128 {
    use std::arch::x86_64::*;
    let h = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
    _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))
}

/// [`small_affine`]: blocks of four rows summed as [`matrix_vector_avx2`]
/// sums them, the four sums gathered into one register, then bias and ReLU
/// on that register. A last block of fewer than four rows repeats the last
/// row in the missing ones and keeps only its real sums.
///
/// # Safety
/// `a` holds `m` rows of `k` values, `x` `k` values, `y` `m`, `bias` and
/// `relu` `m` or are null; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn small_affine_avx2(
    m: usize,
    k: usize,
    a: *const f32,
    x: *const f32,
    bias: *const f32,
    y: *mut f32,
    relu: *mut f32,
) {
    use std::arch::x86_64::*;
    let mut i = 0;
    while i < m {
        let rows = std::array::from_fn(|r| unsafe { a.add((i + r).min(m - 1) * k) });
        let sums = four_sums_avx2(unsafe { row_sums_avx2::<4>(rows, k, x) });
        // A last block of fewer than four rows goes through memory rather than
        // masked loads and stores (a masked store costs a dozen cycles on AMD).
        let n = (m - i).min(4);
        let v = if bias.is_null() {
            sums
        } else if n == 4 {
            _mm_add_ps(sums, unsafe { _mm_loadu_ps(bias.add(i)) })
        } else {
            let mut lanes = [0.0f32; 4];
            unsafe { std::ptr::copy_nonoverlapping(bias.add(i), lanes.as_mut_ptr(), n) };
            _mm_add_ps(sums, unsafe { _mm_loadu_ps(lanes.as_ptr()) })
        };
        let store = |dst: *mut f32, v: __m128| unsafe {
            if n == 4 {
                _mm_storeu_ps(dst, v);
            } else {
                let mut lanes = [0.0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, n);
            }
        };
        store(unsafe { y.add(i) }, v);
        if !relu.is_null() {
            // `max` returns its second operand for NaN and for ±0, as `Relu::value` does.
            store(unsafe { relu.add(i) }, _mm_max_ps(_mm_setzero_ps(), v));
        }
        i += 4;
    }
}

/// The first `n ≤ 8` lanes of a register, as AVX2's masked loads and stores take them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn first_lanes(n: usize) -> std::arch::x86_64::__m256i {
    static ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    debug_assert!(n <= 8);
    unsafe { std::arch::x86_64::_mm256_loadu_si256(ONES_THEN_ZEROS.as_ptr().add(8 - n).cast()) }
}

/// [`small`] with AVX2 intrinsics: the portable loop compiled for AVX2 keeps
/// its eight 16-lane sums in all sixteen YMM registers, spills, and rounds
/// every product before adding it (tiny_train_b32 spent two thirds of its step
/// there). `C` is computed in register tiles ([`small_tile_avx2`]) of two row
/// blocks of eight by four columns, or one block by eight columns for a last
/// odd block: eight independent sums in either, so a product with only 3 or 4
/// columns (a 3-class layer's weight gradient) no longer waits on the
/// multiply-add's latency with one sum per column (the tiny network's products
/// ran ~2× faster, interleaved).
///
/// # Safety
/// As [`sgemm`], with `m, k ≤ SMALL_DIM`; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn small_avx2(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
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
                unsafe {
                    let src = a.ptr.offset(i0 as isize * a.rs + p0 as isize);
                    let dst = b32.add((p0 * blocks + blk) * LANES);
                    transpose8x8(src, a.rs, (m - i0).min(LANES), dst, blocks * LANES);
                }
            }
        }
        for p in whole..k {
            for i in 0..m {
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
        let a = unsafe { cols.add(blk * LANES) };
        // Two row blocks by four columns: eight independent sums (enough to
        // hide the multiply-add's latency) even when `C` has only 3 or 4 columns.
        let (r, w_max) = if blocks - blk >= 2 { (2, 4) } else { (1, 8) };
        let mut j = 0;
        while j < n {
            let w = (n - j).min(w_max);
            let mut sums = [_mm256_setzero_ps(); 8];
            // Whole blocks of an unscaled column-major C: stored by the tile itself.
            let direct = c.rs == 1 && alpha == 1.0 && beta == 0.0 && m >= (blk + r) * LANES;
            let to = unsafe { c.ptr.offset((blk * LANES) as isize + j as isize * c.cs) };
            let tile = (SmallTile { k, a, step, b, j, direct: direct.then_some((to, c.cs)) }, &mut sums);
            unsafe {
                match (r, w) {
                    (2, 4) => small_tile_avx2::<2, 4>(tile),
                    (2, 3) => small_tile_avx2::<2, 3>(tile),
                    (2, 2) => small_tile_avx2::<2, 2>(tile),
                    (2, 1) => small_tile_avx2::<2, 1>(tile),
                    (_, 8) => small_tile_avx2::<1, 8>(tile),
                    (_, 7) => small_tile_avx2::<1, 7>(tile),
                    (_, 6) => small_tile_avx2::<1, 6>(tile),
                    (_, 5) => small_tile_avx2::<1, 5>(tile),
                    (_, 4) => small_tile_avx2::<1, 4>(tile),
                    (_, 3) => small_tile_avx2::<1, 3>(tile),
                    (_, 2) => small_tile_avx2::<1, 2>(tile),
                    _ => small_tile_avx2::<1, 1>(tile),
                }
            }
            if direct {
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
                        // A masked store costs a dozen cycles on AMD's Zen 3: only for partial blocks.
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
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn small_tile_avx2<const R: usize, const W: usize>(
    (SmallTile { k, a, step, b, j, direct }, sums): (SmallTile, &mut [std::arch::x86_64::__m256; 8]),
) {
    use std::arch::x86_64::*;
    const LANES: usize = 8;
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
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn small(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    let mp = m.div_ceil(SMALL_ROWS) * SMALL_ROWS;
    // Only the `mp × k` part is written (padding rows as zeros) and read:
    // zeroing all 4 KiB on every call would cost as much as a tiny product.
    let mut buf = [std::mem::MaybeUninit::<f32>::uninit(); SMALL_DIM * SMALL_DIM];
    for p in 0..k {
        let (rows, pad) = buf[p * mp..(p + 1) * mp].split_at_mut(m);
        let col = unsafe { a.ptr.offset(p as isize * a.cs) };
        for (i, v) in rows.iter_mut().enumerate() {
            v.write(unsafe { *col.offset(i as isize * a.rs) });
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
                let col: &[f32; SMALL_ROWS] = unsafe { &*(ac.add(p * mp + i0) as *const [f32; SMALL_ROWS]) };
                let bp = unsafe { b.ptr.offset(p as isize * b.rs + j as isize * b.cs) };
                if w == NJ {
                    // A fixed trip count keeps the sums in registers.
                    for (q, acc) in acc.iter_mut().enumerate() {
                        let bv = unsafe { *bp.offset(q as isize * b.cs) };
                        for l in 0..SMALL_ROWS {
                            acc[l] += col[l] * bv;
                        }
                    }
                } else {
                    for (q, acc) in acc.iter_mut().enumerate().take(w) {
                        let bv = unsafe { *bp.offset(q as isize * b.cs) };
                        for l in 0..SMALL_ROWS {
                            acc[l] += col[l] * bv;
                        }
                    }
                }
            }
            for (q, acc) in acc.iter().enumerate().take(w) {
                let cj = unsafe { c.ptr.offset(i0 as isize * c.rs + (j + q) as isize * c.cs) };
                if c.rs == 1 {
                    // A contiguous column block: slice loops the compiler vectorises.
                    let cc = unsafe { std::slice::from_raw_parts_mut(cj, h) };
                    if beta == 0.0 {
                        cc.iter_mut().zip(acc).for_each(|(c, &s)| *c = alpha * s);
                    } else {
                        cc.iter_mut().zip(acc).for_each(|(c, &s)| *c = alpha * s + beta * *c);
                    }
                    continue;
                }
                for (i, &s) in acc[..h].iter().enumerate() {
                    let q = unsafe { cj.offset(i as isize * c.rs) };
                    unsafe { *q = if beta == 0.0 { alpha * s } else { alpha * s + beta * *q } };
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
/// As [`sgemm`], with `m, k ≤ SMALL_DIM`; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn small_avx512(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
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
            let bp = unsafe { b.ptr.offset(j as isize * b.cs) };
            for p in 0..k {
                let av = col(p);
                let row = unsafe { bp.offset(p as isize * b.rs) };
                if w == NJ {
                    for (q, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(
                            av,
                            _mm512_set1_ps(unsafe { *row.offset(q as isize * b.cs) }),
                            *acc,
                        );
                    }
                } else {
                    for (q, acc) in acc.iter_mut().enumerate().take(w) {
                        *acc = _mm512_fmadd_ps(
                            av,
                            _mm512_set1_ps(unsafe { *row.offset(q as isize * b.cs) }),
                            *acc,
                        );
                    }
                }
            }
            for (q, &acc) in acc.iter().enumerate().take(w) {
                let cj = unsafe { c.ptr.offset(i0 as isize * c.rs + (j + q) as isize * c.cs) };
                if c.rs == 1 {
                    let v = if beta == 0.0 {
                        _mm512_mul_ps(alpha_v, acc)
                    } else {
                        let old = unsafe { _mm512_maskz_loadu_ps(mask(h), cj) };
                        _mm512_fmadd_ps(alpha_v, acc, _mm512_mul_ps(beta_v, old))
                    };
                    unsafe { _mm512_mask_storeu_ps(cj, mask(h), v) };
                    continue;
                }
                let mut t = [0.0f32; SMALL_ROWS];
                unsafe { _mm512_storeu_ps(t.as_mut_ptr(), acc) };
                for (i, &s) in t[..h].iter().enumerate() {
                    let q = unsafe { cj.offset(i as isize * c.rs) };
                    unsafe { *q = if beta == 0.0 { alpha * s } else { alpha * s + beta * *q } };
                }
            }
            j += w;
        }
    }
}

// ---------------------------------------------------------------------------
// Batch 1 and rank 1: no packing.
// ---------------------------------------------------------------------------

/// `n == 1` (matrix-vector) or `k == 1` (outer product), without packing.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn simple(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    unsafe {
        if k == 1 {
            // C[i, j] = alpha·a[i]·b[j] + beta·C[i, j]
            for j in 0..n {
                let bj = alpha * *b.ptr.offset(j as isize * b.cs);
                let cj = c.ptr.offset(j as isize * c.cs);
                if a.rs == 1 && c.rs == 1 {
                    let av = std::slice::from_raw_parts(a.ptr, m);
                    let cv = std::slice::from_raw_parts_mut(cj, m);
                    if beta == 0.0 {
                        cv.iter_mut().zip(av).for_each(|(c, &a)| *c = a * bj);
                    } else {
                        cv.iter_mut().zip(av).for_each(|(c, &a)| *c = a * bj + beta * *c);
                    }
                } else {
                    for i in 0..m {
                        let p = cj.offset(i as isize * c.rs);
                        let v = *a.ptr.offset(i as isize * a.rs) * bj;
                        *p = if beta == 0.0 { v } else { v + beta * *p };
                    }
                }
            }
            return;
        }
        // n == 1: c = alpha·A·b + beta·c
        if a.cs == 1 && b.rs == 1 {
            // Rows of A are contiguous: dot products, four rows at a time.
            let bv = std::slice::from_raw_parts(b.ptr, k);
            let row = |i: usize| std::slice::from_raw_parts(a.ptr.offset(i as isize * a.rs), k);
            let out = |i: usize, v: f32| {
                let p = c.ptr.offset(i as isize * c.rs);
                *p = if beta == 0.0 { alpha * v } else { alpha * v + beta * *p };
            };
            let mut i = 0;
            while i + 4 <= m {
                let d = dot4([row(i), row(i + 1), row(i + 2), row(i + 3)], bv);
                for (r, v) in d.into_iter().enumerate() {
                    out(i + r, v);
                }
                i += 4;
            }
            while i < m {
                out(i, dot4([row(i), row(i), row(i), row(i)], bv)[0]);
                i += 1;
            }
        } else if a.rs == 1 && c.rs == 1 {
            // Columns of A are contiguous: c += (alpha·b[p])·A[:, p], four columns at a time.
            let cv = std::slice::from_raw_parts_mut(c.ptr, m);
            if beta == 0.0 {
                cv.fill(0.0);
            } else if beta != 1.0 {
                cv.iter_mut().for_each(|v| *v *= beta);
            }
            let col = |p: usize| std::slice::from_raw_parts(a.ptr.offset(p as isize * a.cs), m);
            let coef = |p: usize| alpha * *b.ptr.offset(p as isize * b.rs);
            let mut p = 0;
            while p + 4 <= k {
                let (c0, c1, c2, c3) = (coef(p), coef(p + 1), coef(p + 2), coef(p + 3));
                let (a0, a1, a2, a3) = (col(p), col(p + 1), col(p + 2), col(p + 3));
                for i in 0..m {
                    cv[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i];
                }
                p += 4;
            }
            while p < k {
                let (c0, a0) = (coef(p), col(p));
                cv.iter_mut().zip(a0).for_each(|(v, &x)| *v += c0 * x);
                p += 1;
            }
        } else {
            for i in 0..m {
                let mut s = 0.0;
                for p in 0..k {
                    s += *a.ptr.offset(i as isize * a.rs + p as isize * a.cs)
                        * *b.ptr.offset(p as isize * b.rs);
                }
                let q = c.ptr.offset(i as isize * c.rs);
                *q = if beta == 0.0 { alpha * s } else { alpha * s + beta * *q };
            }
        }
    }
}

/// Four dot products with one vector, sharing the loads of `b`: 32 lanes each
/// for long rows (two registers per row, so eight independent sums hide the
/// adds' latency), fewer for short ones so that they are still vectorised.
#[inline(always)]
fn dot4(rows: [&[f32]; 4], b: &[f32]) -> [f32; 4] {
    match b.len() {
        32.. => dot4_lanes::<32>(rows, b),
        16.. => dot4_lanes::<16>(rows, b),
        8.. => dot4_lanes::<8>(rows, b),
        _ => dot4_lanes::<4>(rows, b),
    }
}

#[inline(always)]
fn dot4_lanes<const L: usize>(rows: [&[f32]; 4], b: &[f32]) -> [f32; 4] {
    let (bc, bt) = b.as_chunks::<L>();
    let (r0, _) = rows[0].as_chunks::<L>();
    let (r1, _) = rows[1].as_chunks::<L>();
    let (r2, _) = rows[2].as_chunks::<L>();
    let (r3, _) = rows[3].as_chunks::<L>();
    let (mut a0, mut a1, mut a2, mut a3) = ([0.0f32; L], [0.0f32; L], [0.0f32; L], [0.0f32; L]);
    for ((((bb, x0), x1), x2), x3) in bc.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        for l in 0..L {
            a0[l] += x0[l] * bb[l];
            a1[l] += x1[l] * bb[l];
            a2[l] += x2[l] * bb[l];
            a3[l] += x3[l] * bb[l];
        }
    }
    let full = bc.len() * L;
    let finish = |acc: [f32; L], row: &[f32]| {
        // Pairwise halving down to one sum (the same order as before for L = 32).
        let mut h = [0.0f32; 32];
        h[..L].copy_from_slice(&acc);
        let mut width = L;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                h[l] += h[l + width];
            }
        }
        row[full..].iter().zip(bt).fold(h[0], |s, (&x, &y)| s + x * y)
    };
    [finish(a0, rows[0]), finish(a1, rows[1]), finish(a2, rows[2]), finish(a3, rows[3])]
}

// ---------------------------------------------------------------------------
// Packed GEMM.
// ---------------------------------------------------------------------------

/// A micro-kernel: `out[i + j·ld] (+)= Σ_p a[p·MR + i]·b[p·NR + j]` for an
/// `MR×NR` tile whose columns are `ld` apart (rows contiguous): either a scratch
/// tile, or `C` itself when the tile is whole and needs no scaling, which saves
/// a pass through memory per tile.
trait Kernel {
    const MR: usize;
    const NR: usize;
    /// Depth of one packed slice of the inner dimension (at most [`KC_MAX`]).
    const KC: usize;
    /// Whether AVX is available, so packing may transpose 8×8 blocks in registers.
    const AVX: bool;
    /// # Safety
    /// `a` holds `kc·MR`, `b` `kc·NR` elements; `out` addresses an `MR×NR`
    /// tile with column stride `ld`, read only when `accumulate`.
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
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn packed_avx512(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    unsafe { packed::<Avx512Kernel>(m, k, n, alpha, a, b, beta, c) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn packed_avx2(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    unsafe { packed::<Avx2Kernel>(m, k, n, alpha, a, b, beta, c) }
}

/// The blocked product; inlined into each ISA's entry point so the packing and
/// the tile stores are compiled for that ISA too.
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
    let (ap, bp) = unsafe {
        let ap = base.add(off);
        (ap, ap.add(a_len))
    };
    let mut tile = [0.0f32; 32 * 16];
    let in_place = K::B_IN_PLACE && b.rs == 1 && b.cs > 0;
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
            unsafe { pack_b(kc, nc - in_place_cols, nr, b, pc, jc + in_place_cols, bp, K::AVX) };
            let mut ic = 0;
            while ic < m {
                let mc = (m - ic).min(mc_max);
                unsafe { pack_a(mc, kc, mr, a, ic, pc, ap, K::AVX) };
                let mut jr = 0;
                while jr < nc {
                    let nr_ = (nc - jr).min(nr);
                    let in_place_panel = jr < in_place_cols;
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
                        let apanel = unsafe { ap.add(ir * kc) };
                        unsafe {
                            let cp = c.ptr.offset((ic + ir) as isize * c.rs + (jc + jr) as isize * c.cs);
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

/// Packs `B[pc.., jc..]` (`kc × nc`) into `NR`-wide panels, `bp[panel][p][j]`, zero-padded.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b(kc: usize, nc: usize, nr: usize, b: Mat, pc: usize, jc: usize, bp: *mut f32, avx: bool) {
    let mut j0 = 0;
    let mut dst = bp;
    while j0 < nc {
        let w = (nc - j0).min(nr);
        let src = unsafe { b.ptr.offset(pc as isize * b.rs + (jc + j0) as isize * b.cs) };
        unsafe {
            if b.cs == 1 && w == nr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * b.rs), dst.add(p * nr), nr);
                }
            } else if avx && b.rs == 1 && w == nr && nr.is_multiple_of(8) {
                // Columns contiguous along p: transpose 8×8 blocks in registers.
                let mut p = 0;
                while p + 8 <= kc {
                    for j in (0..nr).step_by(8) {
                        transpose8x8(
                            src.offset(p as isize + j as isize * b.cs),
                            b.cs,
                            8,
                            dst.add(p * nr + j),
                            nr,
                        );
                    }
                    p += 8;
                }
                for p in p..kc {
                    for j in 0..nr {
                        *dst.add(p * nr + j) = *src.offset(p as isize + j as isize * b.cs);
                    }
                }
            } else {
                for j in 0..nr {
                    if j < w {
                        let s = src.offset(j as isize * b.cs);
                        for p in 0..kc {
                            *dst.add(p * nr + j) = *s.offset(p as isize * b.rs);
                        }
                    } else {
                        for p in 0..kc {
                            *dst.add(p * nr + j) = 0.0;
                        }
                    }
                }
            }
            dst = dst.add(kc * nr);
        }
        j0 += nr;
    }
}

/// Packs `A[ic.., pc..]` (`mc × kc`) into `MR`-tall panels, `ap[panel][p][i]`, zero-padded.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_a(mc: usize, kc: usize, mr: usize, a: Mat, ic: usize, pc: usize, ap: *mut f32, avx: bool) {
    let mut i0 = 0;
    let mut dst = ap;
    while i0 < mc {
        let h = (mc - i0).min(mr);
        let src = unsafe { a.ptr.offset((ic + i0) as isize * a.rs + pc as isize * a.cs) };
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

/// `C[0..mr_, 0..nr_] = alpha·tile + beta·C` (C not read when beta is 0).
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

/// 32×8 tiles in 16 ZMM accumulators (10 loads per 16 FMAs).
#[cfg(target_arch = "x86_64")]
struct Avx512Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512Kernel {
    const MR: usize = 32;
    const NR: usize = 8;
    const KC: usize = 256;
    const AVX: bool = true;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
        use std::arch::x86_64::*;
        unsafe {
            let mut c0 = [_mm512_setzero_ps(); 8];
            let mut c1 = [_mm512_setzero_ps(); 8];
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let a0 = _mm512_loadu_ps(a);
                let a1 = _mm512_loadu_ps(a.add(16));
                for j in 0..8 {
                    let bj = _mm512_set1_ps(*b.add(j));
                    c0[j] = _mm512_fmadd_ps(a0, bj, c0[j]);
                    c1[j] = _mm512_fmadd_ps(a1, bj, c1[j]);
                }
                a = a.add(32);
                b = b.add(8);
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
}

/// 16×6 tiles in 12 YMM accumulators.
#[cfg(target_arch = "x86_64")]
struct Avx2Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2Kernel {
    const MR: usize = 16;
    const NR: usize = 6;
    // Deeper than AVX-512's: the 784-deep products in 2 slices, not 4, so C's
    // tiles are loaded and stored half as often (mlp_train_b128 ~6% faster
    // on Zen 3, whose 32 KiB L1 still holds a 6-wide B panel of that depth).
    const KC: usize = 400;
    const AVX: bool = true;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
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
        unsafe { avx2_tile::<1>(kc, a, b, ldb, out, ld, accumulate) }
    }
}

/// The body of [`Avx2Kernel`]: element `p` of the B panel's column `j` at
/// `b + j·ldb + p·STEP` (packed: `STEP` 6, `ldb` 1; in place: `STEP` 1).
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
struct GenericKernel;

impl Kernel for GenericKernel {
    const MR: usize = 8;
    const NR: usize = 4;
    const KC: usize = 256;
    const AVX: bool = false;
    #[inline(always)]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, accumulate: bool) {
        let mut acc = [[0.0f32; 8]; 4];
        for p in 0..kc {
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
                let p = unsafe { out.add(j * ld + i) };
                unsafe { *p = if accumulate { *p + v } else { v } };
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
        if !crate::tensor::simd::has_avx2() {
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
