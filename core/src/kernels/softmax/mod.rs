//! The softmax of the first `seen` values of a run, in place, the rest zeroed:
//! one query's attention probabilities over the keys it sees
//! (`layers::Attention`, a causal mask seeing a prefix), with the vector `exp`
//! of [`simd`](super::simd) instead of libm's scalar `expf`.
//!
//! The portable version ([`portable`]) is generic, so f64 layers run it too.
//! Levels differ only in the order of the sums and in `exp`'s last bits.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

use super::Isa;
use crate::float::Float;

/// `v[..seen] = softmax(v[..seen])` (shifted by its maximum, so `exp` never
/// overflows; a NaN makes every probability NaN) and `v[seen..] = 0`, at level
/// `isa` for f32 and portably for f64. Panics if the CPU lacks `isa` or if
/// `seen > v.len()`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn softmax_prefix<T: Float>(isa: Isa, v: &mut [T], seen: usize) {
    assert!(seen <= v.len(), "softmax_prefix: {seen} values seen of {}", v.len());
    let (live, masked) = v.split_at_mut(seen);
    masked.fill(T::zero());
    let Some(live32) = T::f32s_mut(live) else {
        return portable::softmax(live);
    };
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted that the CPU has the level's features (AVX-512F
        // among them), the kernel's only requirement: it reaches memory through the slice.
        Isa::Avx512 => unsafe { avx512::softmax(live32) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { avx2::softmax(live32) },
        _ => portable::softmax(live32),
    }
}
