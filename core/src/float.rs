//! The scalar types a network can be built over.

use nalgebra::RealField;
use std::ops::Range;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar a network computes in: `f32` (the default) or `f64`.
///
/// `f64` networks exist so gradients can be checked by finite differences with
/// tight tolerances; `f32` is what you train and ship. The trait is sealed
/// because [`crate::tensor::heap_zeros`] relies on all-zero bits being `0.0`.
pub trait Float:
    RealField + Copy + Default + Send + Sync + std::fmt::Display + sealed::Sealed + 'static
{
    /// The safetensors / numpy name of this type (`"F32"` or `"F64"`).
    const DTYPE: &'static str;

    /// Converts from `f64`, rounding to nearest.
    fn cast(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
    /// The error function, for the exact GELU.
    fn erf(self) -> Self;

    /// `s` as f32 values when `Self` is `f32`: how generic layer code hands data
    /// to the f32-only vector kernels (`None` for f64, which takes the portable path).
    #[doc(hidden)]
    fn f32s(s: &[Self]) -> Option<&[f32]>;
    /// [`Float::f32s`] for a mutable slice.
    #[doc(hidden)]
    fn f32s_mut(s: &mut [Self]) -> Option<&mut [f32]>;

    /// `C = alpha * A * B + beta * C` on raw strided storage (matrixmultiply's contract),
    /// then `then(rows, cols)` on each finished block of `C`, on the thread that computed it.
    ///
    /// # Safety
    /// The pointers must address `m×k`, `k×n` and `m×n` matrices with the given
    /// element strides, `c` must not alias `a` or `b`, and when `beta` is zero `c`
    /// may be uninitialised.
    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        then: Option<&(dyn Fn(Range<usize>, Range<usize>) + Sync)>,
    );
}

macro_rules! impl_float {
    ($t:ty, $dtype:literal, $erf:path, $gemm:path, |$s:ident| $f32s:expr) => {
        impl Float for $t {
            const DTYPE: &'static str = $dtype;
            #[inline]
            fn cast(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn as_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn f32s($s: &[Self]) -> Option<&[f32]> {
                $f32s
            }
            #[inline(always)]
            fn f32s_mut($s: &mut [Self]) -> Option<&mut [f32]> {
                $f32s
            }
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
                then: Option<&(dyn Fn(Range<usize>, Range<usize>) + Sync)>,
            ) {
                // SAFETY: forwarded verbatim; the caller upholds matrixmultiply's contract.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, then) }
            }
        }
    };
}

// f32 goes through our own kernels (no allocation per call, batch-1 paths, threads);
// f64, used for gradient checks and references, through matrixmultiply.
impl_float!(f32, "F32", libm::erff, crate::kernels::sgemm::sgemm, |s| Some(s));
impl_float!(f64, "F64", libm::erf, dgemm, |s| {
    let _ = s;
    None
});

/// matrixmultiply's f64 product (one thread), then the epilogue over all of `C`.
#[allow(clippy::too_many_arguments)]
unsafe fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    beta: f64,
    c: *mut f64,
    rsc: isize,
    csc: isize,
    then: Option<&(dyn Fn(Range<usize>, Range<usize>) + Sync)>,
) {
    // SAFETY: the caller upholds matrixmultiply's contract.
    unsafe { matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) };
    if let Some(f) = then {
        f(0..m, 0..n)
    }
}
