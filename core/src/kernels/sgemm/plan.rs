//! Which routine computes a product, chosen once from the whole product's
//! shape and the level (`plan`), and running it on one thread's part (`single`).

use super::packed::packed_portable;
#[cfg(target_arch = "x86_64")]
use super::packed::{packed_avx2, packed_avx512};
use super::small::{is_small, small, SMALL_DIM, SMALL_ROWS};
#[cfg(target_arch = "x86_64")]
use super::small::{small_avx2, small_avx512};
use super::vector::simple;
#[cfg(target_arch = "x86_64")]
use super::vector::{matrix_vector_avx2, matrix_vector_avx512, simple_avx2, simple_avx512};
use super::{Isa, Mat, MatMut};

/// Which kernel computes a product. Chosen once from the whole product's
/// shape, so every part of a split product runs the same kernel (and the same
/// arithmetic per element) as the unsplit product would.
#[derive(Clone, Copy)]
pub(super) enum Plan {
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
    pub(super) fn row_unit(self) -> usize {
        match self {
            Plan::Packed(Isa::Avx2) => 16,
            _ => 32,
        }
    }

    /// Columns per unit when a split divides `C` by columns: whole tiles of
    /// the kernel (AVX2's are 6 wide, AVX-512's 8).
    pub(super) fn col_unit(self) -> usize {
        match self {
            Plan::Packed(Isa::Avx2) => 12,
            _ => 16,
        }
    }
}

pub(super) fn plan(isa: Isa, m: usize, k: usize, n: usize) -> Plan {
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
///
/// # Safety
/// As [`sgemm`](super::sgemm) for these operands; the CPU supports the plan's level.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn single(
    plan: Plan,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: MatMut,
) {
    // SAFETY: every routine's contract is `sgemm`'s (the caller's promise) plus
    // its level's CPU features, which the caller promises for the plan's level;
    // the guarded matrix-vector kernels also need `n = 1`, contiguous rows of
    // `A` and a contiguous `b`, which their arms check; the transposed plans
    // pass the same matrices with strides swapped; the small routines need
    // `m, k ≤ SMALL_DIM`, which `plan` checked (`is_small`) on the shape they get.
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
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn transposed(m: usize, n: usize, a: Mat, b: Mat, c: MatMut) -> (usize, usize, Mat, Mat, MatMut) {
    let t = |x: Mat| Mat { ptr: x.ptr, rs: x.cs, cs: x.rs, pre: None };
    (n, m, t(b), t(a), MatMut { ptr: c.ptr, rs: c.cs, cs: c.rs })
}
