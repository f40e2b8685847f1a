//! The gate nonlinearities in plain Rust, for every float type: what the
//! portable level runs and what f64 layers call.

use crate::float::Float;

/// `v = 1/(1 + e^−v)`: branch-free, 0 (not NaN) where `e^−v` overflows.
pub(crate) fn sigmoid<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = T::one() / (T::one() + (-*x).exp()));
}

/// `v = tanh(v)`.
pub(crate) fn tanh<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = x.tanh());
}
