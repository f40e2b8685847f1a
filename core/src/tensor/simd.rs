//! What hand-written vector kernels in generic layer code need: a way to see
//! `&[T]` as `&[f32]` (the kernels are f32 only) and the CPU check.
//!
//! Generic layer code is monomorphised in the user's crate, compiled for the
//! x86-64 baseline (SSE2) unless the user sets `target-cpu`; kernels behind a
//! `#[target_feature]` and a run-time check let the same binary use AVX-512
//! where the CPU has it and still run on older ones.

/// `s` as `&[f32]` when `T` is `f32`: lets generic layer code hand f32 data to
/// hand-written vector kernels.
#[inline(always)]
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: `T` is `f32`, checked by its type id.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// Whether the CPU has the AVX-512 subset the hand-written kernels use.
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
