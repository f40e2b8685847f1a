//! Tensors: nalgebra matrices with static feature sizes and a dynamic batch.
//!
//! A batch is column-major with one sample per column, so the feature size is a
//! static row count and the batch size a `Dyn` column count. Parameters are
//! statically shaped matrices kept on the heap (`Box<SMatrix>`), allocated
//! zeroed in place so that even a 4096×4096 weight never touches the stack.

use crate::float::Float;
use nalgebra::{Const, Dim, Dyn, Matrix, OMatrix, RawStorage, RawStorageMut, SMatrix};

pub(crate) mod threads;

use std::ops::Range;
pub(crate) use threads::SharedSlice;
pub use threads::{set_threads, threads};

/// A batch of samples with `N` features each: one sample per column.
pub type Batch<T, const N: usize> = OMatrix<T, Const<N>, Dyn>;

/// A statically shaped `R×C` matrix on the heap.
pub type HeapMatrix<T, const R: usize, const C: usize> = Box<SMatrix<T, R, C>>;

/// Allocates a zero-filled `R×C` matrix directly on the heap.
pub fn heap_zeros<T: Float, const R: usize, const C: usize>() -> HeapMatrix<T, R, C> {
    // `Box::new(SMatrix::zeros())` would build the matrix on the stack first and
    // overflow it for large layers; allocate zeroed memory in place instead.
    let boxed = Box::<SMatrix<T, R, C>>::new_zeroed();
    // SAFETY: `SMatrix<T, R, C>` is a plain array of `T`, and `Float` is sealed
    // to f32/f64, for which all-zero bits are the value 0.0.
    unsafe { boxed.assume_init() }
}

/// Copies a heap matrix without building a temporary on the stack.
pub fn heap_clone<T: Float, const R: usize, const C: usize>(m: &HeapMatrix<T, R, C>) -> HeapMatrix<T, R, C> {
    let mut out: HeapMatrix<T, R, C> = heap_zeros();
    out.copy_from(&**m);
    out
}

/// A batch of `n` zeroed samples.
pub fn batch_zeros<T: Float, const N: usize>(n: usize) -> Batch<T, N> {
    Batch::zeros(n)
}

/// Makes `m` hold `n` samples, reallocating only when the batch size changes.
///
/// The contents are unspecified afterwards; callers overwrite them.
#[inline]
pub fn ensure_batch<T: Float, const N: usize>(m: &mut Batch<T, N>, n: usize) {
    if m.ncols() != n {
        *m = Batch::zeros(n);
    }
}

/// A read-only strided view handed to the matrix kernel.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a, T: Float> MatRef<'a, T> {
    pub(crate) fn of<R: Dim, C: Dim, S: RawStorage<T, R, C>>(m: &'a Matrix<T, R, C, S>) -> Self {
        let (rows, cols) = m.shape();
        let (rs, cs) = m.strides();
        // SAFETY: nalgebra guarantees the storage spans `len` elements from `ptr`
        // for a contiguous matrix; every matrix we pass is an owned, contiguous one.
        let data = unsafe { std::slice::from_raw_parts(m.data.ptr(), span(rows, cols, rs, cs)) };
        MatRef { data, rows, cols, rs: rs as isize, cs: cs as isize }
    }

    /// The transpose: the same memory with the strides swapped, no copy.
    pub(crate) fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
}

/// The number of elements a strided matrix spans.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// `Σ f(a, b)` over the values of paired runs (a dot product: one pair; a
/// channel of two batches: one pair per sample), in 8 interleaved partial sums
/// added pairwise, then the runs' tails: the compiler vectorises it, where one
/// running sum waits on every add's latency.
#[inline]
pub(crate) fn lane_sum<'a, T: Float>(
    runs: impl Iterator<Item = (&'a [T], &'a [T])>,
    f: impl Fn(T, T) -> T,
) -> T {
    let (mut acc, mut tail) = ([T::zero(); 8], T::zero());
    for (a, b) in runs {
        let ((ac, at), (bc, bt)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
        for (x, y) in ac.iter().zip(bc) {
            for l in 0..8 {
                acc[l] += f(x[l], y[l]);
            }
        }
        tail = at.iter().zip(bt).fold(tail, |s, (&x, &y)| s + f(x, y));
    }
    let h = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (h[0] + h[2]) + (h[1] + h[3]) + tail
}

/// `c = alpha * a * b + beta * c` through the f32 kernels (`sgemm`) or matrixmultiply (f64).
///
/// Panics only if the shapes disagree, which the static types of every caller
/// rule out; the check guards the unsafe call, it is not a run-time shape check
/// of user data.
pub(crate) fn gemm<T: Float, R: Dim, C: Dim, S: RawStorageMut<T, R, C>>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut Matrix<T, R, C, S>,
) {
    let (rs, cs) = c.strides();
    let shape = (c.nrows(), c.ncols(), rs as isize, cs as isize);
    // SAFETY: the shape and strides are `c`'s, which `c`'s borrow keeps apart from `a` and `b`.
    unsafe { product(alpha, a, b, beta, c.data.ptr_mut(), shape, None) }
}

/// Packs `a` into `packed` for [`gemm_packed_a`] (f32, at the active level;
/// nothing for f64): once, for many products by the same matrix.
pub(crate) fn pack_a<T: Float>(packed: &mut crate::kernels::sgemm::PackedA, a: MatRef<'_, T>) {
    if let Some(data) = T::f32s(a.data) {
        // SAFETY: `data` spans the `rows×cols` matrix with `a`'s strides (`MatRef::of`);
        // the active level is one the CPU supports.
        unsafe { packed.pack(crate::kernels::Isa::active(), a.rows, a.cols, data.as_ptr(), a.rs, a.cs) }
    }
}

/// [`gemm`] with `alpha = 1` where `packed` holds `a` ([`pack_a`] of the same
/// matrix, unchanged since): the f32 product reads the packed panels instead
/// of packing `a` again, with the same results; f64 takes [`gemm`].
pub(crate) fn gemm_packed_a<T: Float, R: Dim, C: Dim, S: RawStorageMut<T, R, C>>(
    packed: &crate::kernels::sgemm::PackedA,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut Matrix<T, R, C, S>,
) {
    let ((m, n), (rs, cs)) = (c.shape(), c.strides());
    assert!(a.rows == m && b.cols == n && a.cols == b.rows, "gemm shape mismatch");
    let f32s = (T::f32s(a.data), T::f32s(b.data), T::f32s(std::slice::from_ref(&beta)));
    let (Some(ad), Some(bd), Some(&[beta32])) = f32s else {
        return gemm(T::one(), a, b, beta, c);
    };
    let cp = c.data.ptr_mut().cast::<f32>();
    // SAFETY: `T` is f32 (its slices converted), so `cp` is C's f32 storage; the
    // shapes are checked above and the strides are each matrix's own, `c`'s
    // borrow keeps it apart from `a` and `b`; `packed` is `a` (the caller's promise).
    unsafe {
        crate::kernels::sgemm::sgemm_packed_a(
            packed,
            m,
            a.cols,
            n,
            1.0,
            ad.as_ptr(),
            a.rs,
            a.cs,
            bd.as_ptr(),
            b.rs,
            b.cs,
            beta32,
            cp,
            rs as isize,
            cs as isize,
        )
    }
}

/// A block of a product's column-major output that one thread has finished:
/// rows `rows` of columns `cols`. Blocks of one product never overlap.
pub(crate) struct Block<'a, T> {
    c: &'a SharedSlice<T>,
    ld: usize,
    pub(crate) rows: Range<usize>,
    pub(crate) cols: Range<usize>,
}

impl<T> Block<'_, T> {
    /// The whole block as one slice, when it holds whole columns (a product
    /// not split, or split by columns): one pass over it beats a loop per column.
    pub(crate) fn whole_columns(&mut self) -> Option<&mut [T]> {
        (self.rows.len() == self.ld).then(|| {
            // SAFETY: as in `column`: the block's columns, which only its thread touches.
            unsafe { self.c.range(self.cols.start * self.ld..self.cols.end * self.ld) }
        })
    }

    /// The block's part (`rows`) of column `j`, one of `cols`.
    pub(crate) fn column(&mut self, j: usize) -> &mut [T] {
        assert!(self.cols.contains(&j), "column outside the block");
        // SAFETY: inside C (the product checked its shape), and only this block's
        // thread touches these elements while the product runs.
        unsafe { self.c.range(j * self.ld + self.rows.start..j * self.ld + self.rows.end) }
    }
}

/// [`gemm`] into a column-major `c`, then `then` on each finished block of `c`,
/// on the thread that computed it (an epilogue: bias, activation, a reduction
/// over the block's rows). With one thread, `then` sees all of `c` at once.
pub(crate) fn gemm_then<T: Float, R: Dim, C: Dim, S: RawStorageMut<T, R, C>>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut Matrix<T, R, C, S>,
    then: &(dyn Fn(Block<'_, T>) + Sync),
) {
    let (m, n) = c.shape();
    let (rs, ld) = c.strides();
    assert!(rs == 1, "gemm_then needs a column-major output");
    let ptr = c.data.ptr_mut();
    // SAFETY: the storage spans `span(..)` elements from its pointer (as in `MatRef::of`).
    let shared = SharedSlice::new(unsafe { std::slice::from_raw_parts_mut(ptr, span(m, n, 1, ld)) });
    let blocks = |rows: Range<usize>, cols: Range<usize>| then(Block { c: &shared, ld, rows, cols });
    // SAFETY: as in `gemm`; the epilogue reaches `c` only through blocks the product has finished.
    unsafe { product(alpha, a, b, beta, ptr, (m, n, 1, ld as isize), Some(&blocks)) }
}

/// `y = A·x + bias`, and `relu = max(y, 0)` when given, for one sample of a
/// small f32 dense layer (`A`: `y.len()` rows of `x.len()` contiguous values)
/// in one fused kernel ([`small_affine`](crate::kernels::sgemm::small_affine))
/// at the [active](crate::kernels::Isa::active) level. Returns `false`, having
/// written nothing, where that kernel does not apply (f64, a larger layer, the
/// portable level): the caller then takes [`gemm_then`].
pub(crate) fn small_affine<T: Float>(
    a: &[T],
    x: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    relu: Option<&mut [T]>,
) -> bool {
    let (Some(a), Some(x), Some(y)) = (T::f32s(a), T::f32s(x), T::f32s_mut(y)) else {
        return false;
    };
    // `T` is f32 here, so these cannot fail.
    let bias = bias.and_then(T::f32s);
    let relu = relu.and_then(T::f32s_mut);
    crate::kernels::sgemm::small_affine(crate::kernels::Isa::active(), a, x, bias, y, relu)
}

/// # Safety
/// `c` addresses an `m×n` matrix with strides `rsc`, `csc` that does not alias `a` or `b`.
unsafe fn product<T: Float>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: *mut T,
    (m, n, rsc, csc): (usize, usize, isize, isize),
    then: Option<&(dyn Fn(Range<usize>, Range<usize>) + Sync)>,
) {
    assert!(a.rows == m && b.cols == n && a.cols == b.rows, "gemm shape mismatch");
    let k = a.cols;
    // SAFETY: shapes checked above, the rest is the caller's promise.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs,
            a.cs,
            b.data.as_ptr(),
            b.rs,
            b.cs,
            beta,
            c,
            rsc,
            csc,
            then,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn gemm_matches_nalgebra_for_every_transpose() {
        let a = DMatrix::<f64>::from_fn(3, 4, |i, j| (i * 4 + j) as f64 * 0.5 - 1.0);
        let b = DMatrix::<f64>::from_fn(4, 2, |i, j| (i + 3 * j) as f64 - 2.0);
        let mut c = DMatrix::<f64>::from_element(3, 2, 7.0);
        gemm(2.0, MatRef::of(&a), MatRef::of(&b), 0.5, &mut c);
        let expected = &a * &b * 2.0 + DMatrix::from_element(3, 2, 3.5);
        assert_eq!(c, expected);

        let at = a.transpose();
        let bt = b.transpose();
        let mut c2 = DMatrix::<f64>::zeros(3, 2);
        gemm(1.0, MatRef::of(&at).t(), MatRef::of(&bt).t(), 0.0, &mut c2);
        assert_eq!(c2, &a * &b);
    }

    #[test]
    fn heap_zeros_builds_large_matrices_off_the_stack() {
        // 4096×4096 f32 is 64 MiB: far more than a thread's stack.
        let m = heap_zeros::<f32, 4096, 4096>();
        assert_eq!(m[(4095, 4095)], 0.0);
        let moved = m;
        let copy = heap_clone(&moved);
        assert_eq!(copy.shape(), (4096, 4096));
    }
}
