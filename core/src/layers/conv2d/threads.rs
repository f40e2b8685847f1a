//! How a convolution's passes share the threads: samples split between them,
//! and weight gradients summed over fixed chunks of samples so the result does
//! not depend on the thread count.

use super::{Conv2d, Conv2dGrad, Conv2dWorkspace};
use crate::float::Float;
use crate::layers::ensure_len;
use crate::tensor::threads::{self, SharedSlice};
use std::ops::Range;

/// Samples per partial sum of the weight gradient when the kernels read the
/// input directly: the partial sums are added in order at the end, so threads
/// can share the chunks and the result does not depend on how many there are.
pub(super) const GRAD_CHUNK: usize = 8;

/// The fewest samples worth a thread of their own in the sample-by-sample passes.
const MIN_SAMPLES_PER_THREAD: usize = 4;

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// How many threads a sample-by-sample pass over `n` samples uses.
    fn sample_parts(n: usize) -> usize {
        threads::threads().min(n / MIN_SAMPLES_PER_THREAD).max(1)
    }

    /// Runs `part(samples, scratch)` over a batch of `n` samples split between
    /// threads, each part with its own `per_part` values of `scratch` (resized
    /// to that many per thread).
    pub(in crate::layers) fn by_samples(
        n: usize,
        scratch: &mut Vec<T>,
        per_part: usize,
        part: &(dyn Fn(Range<usize>, &mut [T]) + Sync),
    ) {
        let parts = Self::sample_parts(n);
        ensure_len(scratch, parts * per_part);
        let scratch = SharedSlice::new(scratch);
        threads::run(parts, &|t| {
            // SAFETY: every part has its own scratch.
            let scratch = unsafe { scratch.range(t * per_part..(t + 1) * per_part) };
            part(t * n / parts..(t + 1) * n / parts, scratch)
        });
    }

    /// The weight and bias gradients into `grad` (overwritten): `chunk(samples, dw, db, scratch)`
    /// adds the gradients of `samples` (at most [`GRAD_CHUNK`], a fixed chunk of
    /// the batch) to a zeroed partial sum; chunks run on the threads, and their
    /// partial sums are added in order, so the result does not depend on the
    /// thread count. The fused pass computes the output gradient inside `chunk`.
    #[allow(clippy::type_complexity)]
    pub(in crate::layers) fn weight_grads_by_chunks(
        &self,
        n: usize,
        ws: &mut Conv2dWorkspace<T>,
        grad: &mut Conv2dGrad<T, PATCH, COUT>,
        chunk: &(dyn Fn(Range<usize>, &mut [T], Option<&mut [T]>, &mut [T]) + Sync),
    ) {
        Self::zero_partials(ws, n);
        let chunks = n.div_ceil(GRAD_CHUNK);
        let (parts, pad) = (Self::sample_parts(n).min(chunks), self.padded_len());
        ensure_len(&mut ws.padded, parts * pad);
        let (partials, scratch) = (SharedSlice::new(&mut ws.partials), SharedSlice::new(&mut ws.padded));
        threads::run(parts, &|t| {
            // SAFETY: every part has its own chunks, and its own scratch.
            let scratch = unsafe { scratch.range(t * pad..(t + 1) * pad) };
            for c in t * chunks / parts..(t + 1) * chunks / parts {
                // SAFETY: chunk `c` belongs to this part only.
                let partial = unsafe { partials.range(c * Self::PARTIAL..(c + 1) * Self::PARTIAL) };
                let (dw, db) = self.split_partial(partial);
                chunk(c * GRAD_CHUNK..((c + 1) * GRAD_CHUNK).min(n), dw, db, scratch);
            }
        });
        self.sum_partials(&ws.partials, grad);
    }

    /// Values per chunk of [`Conv2dWorkspace::partials`]: a weight and a bias gradient.
    const PARTIAL: usize = PATCH * COUT + COUT;

    /// Sizes `ws.partials` for a batch of `n` and zeroes it: one partial
    /// gradient per [`GRAD_CHUNK`] samples.
    fn zero_partials(ws: &mut Conv2dWorkspace<T>, n: usize) {
        ensure_len(&mut ws.partials, n.div_ceil(GRAD_CHUNK) * Self::PARTIAL);
        ws.partials.fill(T::zero());
    }

    /// The weight and bias gradients: the chunks' partial gradients summed in order.
    pub(super) fn sum_partials(&self, partials: &[T], grad: &mut Conv2dGrad<T, PATCH, COUT>) {
        let dw = grad.weight.as_mut_slice();
        dw.fill(T::zero());
        let mut db = grad.bias.as_mut().map(|b| b.as_mut_slice());
        if let Some(db) = db.as_deref_mut() {
            db.fill(T::zero());
        }
        for chunk in partials.chunks_exact(Self::PARTIAL) {
            let (w, b) = chunk.split_at(PATCH * COUT);
            dw.iter_mut().zip(w).for_each(|(d, &v)| *d += v);
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().zip(b).for_each(|(d, &v)| *d += v);
            }
        }
    }

    /// One chunk's partial (`PARTIAL` values) as (weight, bias if the layer has one).
    fn split_partial<'p>(&self, chunk: &'p mut [T]) -> (&'p mut [T], Option<&'p mut [T]>) {
        let (w, b) = chunk.split_at_mut(PATCH * COUT);
        (w, self.bias.is_some().then_some(b))
    }
}
