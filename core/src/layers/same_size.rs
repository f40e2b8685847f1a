//! A batch handed over between two const sizes that a check elsewhere has
//! proved equal: `parallel`'s branches write into the joined output through it.

use crate::float::Float;
use crate::tensor::Batch;
use std::any::Any;

/// `x` as a batch of `B` features: the same batch, for `A == B`, which the
/// caller has checked (`parallel`'s sizes are the ones `network!` computed).
pub fn same_size<T: Float, const A: usize, const B: usize>(x: &Batch<T, A>) -> &Batch<T, B> {
    match (x as &dyn Any).downcast_ref::<Batch<T, B>>() {
        Some(x) => x,
        None => unreachable_sizes(A, B),
    }
}

/// [`same_size`] for a batch to write.
pub fn same_size_mut<T: Float, const A: usize, const B: usize>(x: &mut Batch<T, A>) -> &mut Batch<T, B> {
    match (x as &mut dyn Any).downcast_mut::<Batch<T, B>>() {
        Some(x) => x,
        None => unreachable_sizes(A, B),
    }
}

#[allow(clippy::panic)]
#[cold]
fn unreachable_sizes(a: usize, b: usize) -> ! {
    panic!("a batch of {b} features got {a}: the size check should have refused this")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_hands_the_batch_over_unchanged() {
        let x = Batch::<f64, 3>::from_fn(2, |i, j| (i + 3 * j) as f64);
        let y: &Batch<f64, 3> = same_size::<f64, 3, 3>(&x);
        assert!(std::ptr::eq(y, &x));
    }

    #[test]
    #[should_panic(expected = "should have refused this")]
    fn different_sizes_are_refused() {
        let x = Batch::<f64, 3>::zeros(1);
        let _ = same_size::<f64, 3, 4>(&x);
    }
}
