//! The softmax in plain Rust, for any [`Float`]: the portable level, and f64.

use crate::float::Float;

/// `v = softmax(v)` in place, shifted by the maximum so `exp` never overflows.
pub(crate) fn softmax<T: Float>(v: &mut [T]) {
    let max = v.iter().copied().fold(T::cast(f64::NEG_INFINITY), |a, b| a.max(b));
    let mut sum = T::zero();
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = T::one() / sum;
    v.iter_mut().for_each(|x| *x *= inv);
}
