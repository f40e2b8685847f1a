//! Products without packing: batch 1 (matrix-vector, and one sample through
//! a small dense layer with its bias and ReLU) and rank 1 (outer products).

use super::{Mat, MatMut};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx2::first_lanes;

/// Entry points that compile an `#[inline(always)]` product routine for AVX-512
/// and for AVX2 (the level is chosen once, by the product's plan).
macro_rules! isa_entry_points {
    ($($routine:ident => $avx512:ident, $avx2:ident;)*) => {$(
        /// The routine compiled for AVX-512.
        ///
        /// # Safety
        /// As the routine; the CPU supports AVX-512 F and VL, AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn $avx512(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
            // SAFETY: the caller's promise, passed on.
            unsafe { $routine(m, k, n, alpha, a, b, beta, c) }
        }

        /// The routine compiled for AVX2.
        ///
        /// # Safety
        /// As the routine; the CPU supports AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn $avx2(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
            // SAFETY: the caller's promise, passed on.
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
/// with fused multiply-adds into sixteen accumulators.
///
/// # Safety
/// As [`sgemm`](super::sgemm) with `n = 1`, `a.cs = 1`, `b` contiguous; the CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
pub(super) unsafe fn matrix_vector_avx512(
    m: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: *const f32,
    beta: f32,
    c: MatMut,
) {
    let mut i = 0;
    while i + 8 <= m {
        // SAFETY: rows `i..i + 8 ≤ m`; the rest is the caller's promise.
        unsafe { matrix_vector_rows::<8>(i, k, alpha, a, b, beta, c) };
        i += 8;
    }
    while i < m {
        // SAFETY: row `i < m`; the rest is the caller's promise.
        unsafe { matrix_vector_rows::<1>(i, k, alpha, a, b, beta, c) };
        i += 1;
    }
}

/// Rows `i..i + R` of [`matrix_vector_avx512`].
///
/// # Safety
/// As [`matrix_vector_avx512`], with `i + R ≤ m`.
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
    // SAFETY: row `i + r < m` of A (every `r` used is below `R`).
    let row = |r: usize| unsafe { a.ptr.offset((i + r) as isize * a.rs) };
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut p = 0;
    while p + 32 <= k {
        // SAFETY: values `p..p + 32 ≤ k` of `b`, which holds `k`.
        let x = unsafe { [_mm512_loadu_ps(b.add(p)), _mm512_loadu_ps(b.add(p + 16))] };
        for (r, acc) in acc.iter_mut().enumerate() {
            for (u, acc) in acc.iter_mut().enumerate() {
                // SAFETY: values `p + 16u..+ 16`, below `k`, of a row of `k` contiguous values.
                let v = unsafe { _mm512_loadu_ps(row(r).add(p + 16 * u)) };
                *acc = _mm512_fmadd_ps(v, x[u], *acc);
            }
        }
        p += 32;
    }
    while p < k {
        let mask = (u32::MAX >> (32 - (k - p).min(16))) as __mmask16;
        // SAFETY: the mask keeps to values `p..min(p + 16, k)`.
        let x = unsafe { _mm512_maskz_loadu_ps(mask, b.add(p)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as for `x`, in row `r`.
            let v = unsafe { _mm512_maskz_loadu_ps(mask, row(r).add(p)) };
            acc[0] = _mm512_fmadd_ps(v, x, acc[0]);
        }
        p += 16;
    }
    for (r, acc) in acc.iter().enumerate() {
        let v = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        // SAFETY: element `i + r < m` of the column `c`, which nothing else reaches meanwhile.
        let out = unsafe { &mut *c.ptr.offset((i + r) as isize * c.rs) };
        *out = if beta == 0.0 { alpha * v } else { alpha * v + beta * *out };
    }
}

/// [`matrix_vector_avx512`] for AVX2 CPUs: four rows side by side, 16
/// elements of each per step, fused multiply-adds into eight accumulators
/// (the portable loop, compiled for AVX2, rounds every product before adding
/// it and spills its sums out of the sixteen YMM registers).
///
/// # Safety
/// As [`sgemm`](super::sgemm) with `n = 1`, `a.cs = 1`, `b` contiguous; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn matrix_vector_avx2(
    m: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: *const f32,
    beta: f32,
    c: MatMut,
) {
    let mut i = 0;
    while i + 4 <= m {
        // SAFETY: rows `i..i + 4 ≤ m`; the rest is the caller's promise.
        unsafe { matrix_vector_rows_avx2::<4>(i, k, alpha, a, b, beta, c) };
        i += 4;
    }
    while i < m {
        // SAFETY: row `i < m`; the rest is the caller's promise.
        unsafe { matrix_vector_rows_avx2::<1>(i, k, alpha, a, b, beta, c) };
        i += 1;
    }
}

/// Rows `i..i + R` of [`matrix_vector_avx2`].
///
/// # Safety
/// As [`matrix_vector_avx2`], with `i + R ≤ m`.
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
    // SAFETY: row `i + r < m` of A.
    let rows = std::array::from_fn(|r| unsafe { a.ptr.offset((i + r) as isize * a.rs) });
    // SAFETY: each row and `b` hold `k` contiguous values (the caller's promise).
    let sums = unsafe { row_sums_avx2::<R>(rows, k, b) };
    let out = |r: usize, v: f32| {
        // SAFETY: element `i + r < m` of the column `c`, which nothing else reaches meanwhile.
        let out = unsafe { &mut *c.ptr.offset((i + r) as isize * c.rs) };
        *out = if beta == 0.0 { alpha * v } else { alpha * v + beta * *out };
    };
    if let Ok(four) = sums[..].try_into() {
        let mut lanes = [0.0f32; 4];
        // SAFETY: `lanes` holds a whole 128-bit register.
        unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), four_sums_avx2(four)) };
        lanes.iter().enumerate().for_each(|(r, &v)| out(r, v));
    } else {
        for (r, &sum) in sums.iter().enumerate() {
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` holds a whole 256-bit register.
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
        // SAFETY: values `p..p + 16 ≤ k` of `x`.
        let xv = unsafe { [_mm256_loadu_ps(x.add(p)), _mm256_loadu_ps(x.add(p + 8))] };
        for (acc, row) in acc.iter_mut().zip(rows) {
            for (u, acc) in acc.iter_mut().enumerate() {
                // SAFETY: values `p + 8u..+ 8`, below `k`, of the row.
                let v = unsafe { _mm256_loadu_ps(row.add(p + 8 * u)) };
                *acc = _mm256_fmadd_ps(v, xv[u], *acc);
            }
        }
        p += 16;
    }
    if p < k {
        // The last 1 to 15 values: a whole or masked register, and a masked one.
        // SAFETY: every call below passes a pointer to value `q` of a run of `k`
        // and `n = k − q` values left: 8 whole lanes when `n ≥ 8`, else the first `n`.
        let load = |ptr: *const f32, n: usize| unsafe {
            if n >= 8 {
                _mm256_loadu_ps(ptr)
            } else {
                _mm256_maskload_ps(ptr, first_lanes(n))
            }
        };
        // SAFETY: `p < k`: inside `x`, and below, inside each row; likewise `p + 8 < k`.
        unsafe {
            let xv = load(x.add(p), k - p);
            for (acc, row) in acc.iter_mut().zip(rows) {
                acc[0] = _mm256_fmadd_ps(load(row.add(p), k - p), xv, acc[0]);
            }
            if k - p > 8 {
                let xv = load(x.add(p + 8), k - p - 8);
                for (acc, row) in acc.iter_mut().zip(rows) {
                    acc[1] = _mm256_fmadd_ps(load(row.add(p + 8), k - p - 8), xv, acc[1]);
                }
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

/// [`small_affine`](super::small_affine): blocks of four rows summed as [`matrix_vector_avx2`]
/// sums them, the four sums gathered into one register, then bias and ReLU
/// on that register. A last block of fewer than four rows repeats the last
/// row in the missing ones and keeps only its real sums.
///
/// # Safety
/// `a` holds `m` rows of `k` values, `x` `k` values, `y` `m`, `bias` and
/// `relu` `m` or are null; the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn small_affine_avx2(
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
        // SAFETY: row `min(i + r, m − 1) < m` of A.
        let rows = std::array::from_fn(|r| unsafe { a.add((i + r).min(m - 1) * k) });
        // SAFETY: each row and `x` hold `k` values.
        let sums = four_sums_avx2(unsafe { row_sums_avx2::<4>(rows, k, x) });
        // A last block of fewer than four rows goes through memory rather than
        // masked loads and stores (a masked store is slow on AMD).
        let n = (m - i).min(4);
        let v = if bias.is_null() {
            sums
        } else if n == 4 {
            // SAFETY: values `i..i + 4 ≤ m` of `bias`.
            _mm_add_ps(sums, unsafe { _mm_loadu_ps(bias.add(i)) })
        } else {
            let mut lanes = [0.0f32; 4];
            // SAFETY: values `i..i + n = m` of `bias` into `lanes`, which holds 4 ≥ n.
            unsafe { std::ptr::copy_nonoverlapping(bias.add(i), lanes.as_mut_ptr(), n) };
            // SAFETY: `lanes` holds a whole register.
            _mm_add_ps(sums, unsafe { _mm_loadu_ps(lanes.as_ptr()) })
        };
        // SAFETY: called below with `y + i` or `relu + i`, which hold values
        // `i..i + n ≤ m`: a whole register when `n` is 4, else `n` values
        // through `lanes`.
        let store = |dst: *mut f32, v: __m128| unsafe {
            if n == 4 {
                _mm_storeu_ps(dst, v);
            } else {
                let mut lanes = [0.0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, n);
            }
        };
        // SAFETY: `i < m`, inside `y`.
        store(unsafe { y.add(i) }, v);
        if !relu.is_null() {
            // `max` returns its second operand for NaN and for ±0, as `Relu::value` does.
            // SAFETY: `i < m`, inside `relu`.
            store(unsafe { relu.add(i) }, _mm_max_ps(_mm_setzero_ps(), v));
        }
        i += 4;
    }
}

/// `n == 1` (matrix-vector) or `k == 1` (outer product), without packing.
///
/// # Safety
/// As [`sgemm`](super::sgemm), with `n = 1` or `k = 1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn simple(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    // SAFETY: every element reached is (i < m, p < k) of A, (p, j < n) of B or
    // (i, j) of C; the slices are made only of runs with unit stride (`a.rs`,
    // `c.rs`, `a.cs` or `b.rs` checked to be 1), and C's are the only mutable
    // ones, over memory that aliases neither A nor B.
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
