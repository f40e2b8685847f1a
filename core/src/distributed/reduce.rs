//! The gradient exchange: one flat buffer of every gradient (then every
//! buffer, such as batch norm's running statistics) per rank, summed with
//! `MPI_Allreduce` in buckets, checked to be the same bits on every rank, and
//! handed to the optimizer through [`Reduced`], a view of the network whose
//! gradients are the summed ones.
//!
//! The gradients are copied out ([`Params`] visits them read-only): one pass
//! over `PARAM_COUNT` values per step, small next to the all-reduce itself.

use super::buckets::{plan, DistributedOptions, Inflight};
use super::{rank_failed, rank_size, Communication};
use crate::error::Result;
use crate::float::Float;
use crate::init::SeededRng;
use crate::network::Network;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::Batch;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::traits::*;
use std::ops::Range;
use std::time::Instant;

/// Summed gradients, flat in visiting order: `lens` are the parameters'
/// lengths; `values` holds them, then the buffers' values.
pub(crate) struct FlatGrads<T> {
    values: Vec<T>,
    lens: Vec<usize>,
}

/// Per-rank exchange state: the outgoing buffer, the summed one, the
/// buckets (in the order they are sent) and the costs.
pub(crate) struct Reducer<T> {
    send: Vec<T>,
    summed: FlatGrads<T>,
    params: usize,
    buckets: Vec<Range<usize>>,
    overlap: bool,
    pub(crate) stats: Communication,
}

/// What a rank's backward pass reads and writes (the trainer's buffers).
pub(crate) struct Pass<'w, T: Float, N: Network<T, IN, OUT>, const IN: usize, const OUT: usize> {
    pub(crate) x: &'w Batch<T, IN>,
    pub(crate) trace: &'w mut N::Trace,
    pub(crate) d_out: &'w Batch<T, OUT>,
    pub(crate) grads: &'w mut N::Gradients,
}

impl<T: Float + Equivalence> Reducer<T> {
    /// Buffers sized for `net`'s parameters and buffers, cut into buckets as `options` say.
    pub(crate) fn new<N: Params<T>>(net: &N, options: &DistributedOptions) -> Self {
        let mut lens = Vec::new();
        net.visit_params(&ParamPath::ROOT, &mut |p| lens.push(p.value.len()));
        let params: usize = lens.iter().sum();
        let mut buffers = 0;
        net.visit_buffers(&ParamPath::ROOT, &mut |b| buffers += b.value.len());
        let total = params + buffers;
        let buckets = plan(total, std::mem::size_of::<T>(), options);
        let stats = Communication {
            bytes_per_step: total * std::mem::size_of::<T>(),
            buckets: buckets.len(),
            ..Communication::default()
        };
        Reducer {
            send: vec![T::zero(); total],
            summed: FlatGrads { values: vec![T::zero(); total], lens },
            params,
            buckets,
            overlap: options.overlap,
            stats,
        }
    }

    /// Gives every rank rank 0's parameters and buffers.
    pub(crate) fn broadcast_model<C: Communicator, N: Params<T>>(&mut self, comm: &C, net: &mut N) {
        let mut at = 0;
        let send = &mut self.send;
        net.visit_params(&ParamPath::ROOT, &mut |p| copy_at(send, &mut at, p.value, None));
        net.visit_buffers(&ParamPath::ROOT, &mut |b| copy_at(send, &mut at, b.value, None));
        comm.process_at_rank(0).broadcast_into(&mut self.send[..]);
        let mut at = 0;
        let send = &self.send;
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| read_at(send, &mut at, p.value));
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| read_at(send, &mut at, b.value));
    }

    /// Copies this rank's gradients and buffers, times `weight`, into the
    /// outgoing buffer; `None` (an empty share or a failed step) sends zeros.
    fn gather<N: Params<T>>(&mut self, net: &N, grads: &N::Gradients, weight: Option<f64>) {
        let Some(weight) = weight else {
            self.send.iter_mut().for_each(|v| *v = T::zero());
            return;
        };
        let (send, w, mut at) = (&mut self.send, Some(T::cast(weight)), 0);
        N::visit_grads(grads, &mut |g| copy_at(send, &mut at, g, w));
        net.visit_buffers(&ParamPath::ROOT, &mut |b| copy_at(send, &mut at, b.value, w));
    }

    /// This rank's backward pass when `weight` is some (then its gradients
    /// and buffers times `weight` are sent; `None`, an empty share or a failed
    /// forward pass, sends zeros), and the sum of every rank's flat buffer,
    /// bucket by bucket: started during the pass with overlap, after it without.
    pub(crate) fn backward_and_sum<C, N, const IN: usize, const OUT: usize>(
        &mut self,
        comm: &C,
        net: &N,
        pass: Pass<'_, T, N, IN, OUT>,
        weight: Option<f64>,
    ) where
        C: Communicator,
        N: Network<T, IN, OUT>,
    {
        if self.overlap {
            return self.overlapped(comm, net, pass, weight);
        }
        if weight.is_some() {
            net.backward(pass.x, pass.trace, pass.d_out, pass.grads, None);
        }
        self.gather(net, pass.grads, weight);
        let start = Instant::now();
        for bucket in &self.buckets {
            let (send, summed) = (&self.send[bucket.clone()], &mut self.summed.values[bucket.clone()]);
            comm.all_reduce_into(send, summed, SystemOperation::sum());
        }
        self.stats.seconds += start.elapsed().as_secs_f64();
    }

    /// [`Reducer::backward_and_sum`] with each bucket's all-reduce started as
    /// soon as the backward pass has made its values final.
    fn overlapped<C, N, const IN: usize, const OUT: usize>(
        &mut self,
        comm: &C,
        net: &N,
        pass: Pass<'_, T, N, IN, OUT>,
        weight: Option<f64>,
    ) where
        C: Communicator,
        N: Network<T, IN, OUT>,
    {
        let (params, buckets) = (self.params, &self.buckets);
        let (send, summed) = (&mut self.send[..], &mut self.summed.values[..]);
        let (seconds, early) = mpi::request::scope(|scope| {
            let mut flight = Inflight::new(comm, scope, buckets, send, summed);
            let Some(weight) = weight.map(T::cast) else {
                flight.pending().iter_mut().for_each(|v| *v = T::zero());
                return flight.finish();
            };
            // The buffers (running statistics) are final since the forward pass.
            let mut at = params;
            net.visit_buffers(&ParamPath::ROOT, &mut |b| {
                copy_at(flight.pending(), &mut at, b.value, Some(weight))
            });
            flight.ready(params);
            net.backward_with(pass.x, pass.trace, pass.d_out, pass.grads, None, &mut |range, grads| {
                // Only a range adjacent to the final values extends them (the generated pass's are).
                if range.end >= flight.ready_from() && range.start < flight.ready_from() {
                    let from = range.start..flight.ready_from();
                    copy_range::<T, N>(grads, from.clone(), flight.pending(), weight);
                    flight.ready(from.start);
                }
            });
            let rest = 0..flight.ready_from();
            copy_range::<T, N>(pass.grads, rest, flight.pending(), weight);
            flight.finish()
        });
        self.stats.seconds += seconds;
        self.stats.early_buckets += early;
    }

    /// Agrees on whether a rank `failed` (returning that rank's error on the
    /// others) and on the fingerprint of the sum (broadcasting rank 0's sum if
    /// they differ), and writes the summed buffers into `net`. `during` names
    /// the step for the error.
    pub(crate) fn agree_on_sum<C: Communicator, N: Params<T>>(
        &mut self,
        comm: &C,
        net: &mut N,
        failed: bool,
        during: impl FnOnce() -> String,
    ) -> Result<()> {
        let start = Instant::now();
        let print = fingerprint(&self.summed.values);
        let (rank, size) = rank_size(comm);
        let mine = [if failed { rank as u64 + 1 } else { 0 }, print, !print];
        let mut all = [0u64; 3];
        comm.all_reduce_into(&mine[..], &mut all[..], SystemOperation::max());
        if all[0] > 0 {
            self.stats.seconds += start.elapsed().as_secs_f64();
            return Err(rank_failed((all[0] - 1) as usize, size, during()));
        }
        if all[1] != !all[2] {
            comm.process_at_rank(0).broadcast_into(&mut self.summed.values[..]);
            self.stats.fallbacks += 1;
        }
        self.stats.seconds += start.elapsed().as_secs_f64();
        self.stats.steps += 1;
        let mut at = self.params;
        let summed = &self.summed.values;
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| read_at(summed, &mut at, b.value));
        Ok(())
    }

    /// `net` seen with the summed gradients, and those gradients, for the optimizer.
    pub(crate) fn reduced<'a, N: Params<T>>(&'a self, net: &'a mut N) -> (Reduced<'a, N>, &'a FlatGrads<T>) {
        (Reduced(net), &self.summed)
    }
}

/// Copies `from` (times `weight`) into `to` at `*at`, advancing it.
fn copy_at<T: Float>(to: &mut [T], at: &mut usize, from: &[T], weight: Option<T>) {
    if let Some(to) = to.get_mut(*at..*at + from.len()) {
        match weight {
            Some(w) => to.iter_mut().zip(from).for_each(|(t, &f)| *t = f * w),
            None => to.copy_from_slice(from),
        }
    }
    *at += from.len();
}

/// Copies the values of `range` (flat visiting order) of `grads`, times
/// `weight`, to the same places of `to`.
fn copy_range<T: Float, N: Params<T>>(grads: &N::Gradients, range: Range<usize>, to: &mut [T], weight: T) {
    let mut at = 0;
    N::visit_grads(grads, &mut |g| {
        let (lo, hi) = (range.start.max(at), range.end.min(at + g.len()));
        if let (Some(to), Some(from)) = (to.get_mut(lo..hi), g.get(lo.wrapping_sub(at)..hi.wrapping_sub(at)))
        {
            to.iter_mut().zip(from).for_each(|(t, &f)| *t = f * weight);
        }
        at += g.len();
    });
}

/// Fills `to` from `from` at `*at`, advancing it.
fn read_at<T: Float>(from: &[T], at: &mut usize, to: &mut [T]) {
    if let Some(from) = from.get(*at..*at + to.len()) {
        to.copy_from_slice(from);
    }
    *at += to.len();
}

/// A 64-bit FNV-1a fingerprint of the values' bits (exact: `f32` widens to `f64` exactly).
fn fingerprint<T: Float>(values: &[T]) -> u64 {
    values
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, v| (h ^ v.as_f64().to_bits()).wrapping_mul(0x0100_0000_01b3))
}

/// Whether any rank failed: each rank says whether `local` is an error; a
/// rank that failed returns its own error, the others [`crate::Error::RankFailed`].
pub(crate) fn agree<C: Communicator, X>(
    comm: &C,
    local: Result<X>,
    during: impl FnOnce() -> String,
) -> Result<X> {
    let (rank, size) = rank_size(comm);
    let mine = if local.is_err() { rank as u64 + 1 } else { 0 };
    let mut worst = 0u64;
    comm.all_reduce_into(&mine, &mut worst, SystemOperation::max());
    match local {
        Ok(_) if worst > 0 => Err(rank_failed((worst - 1) as usize, size, during())),
        other => other,
    }
}

/// A network seen by the optimizer with the summed gradients ([`FlatGrads`])
/// in place of its own.
pub(crate) struct Reduced<'a, N>(&'a mut N);

impl<T: Float, N: Params<T>> Params<T> for Reduced<'_, N> {
    type Gradients = FlatGrads<T>;
    const PARAM_COUNT: usize = N::PARAM_COUNT;

    fn zero_gradients(&self) -> FlatGrads<T> {
        let mut lens = Vec::new();
        self.0.visit_params(&ParamPath::ROOT, &mut |p| lens.push(p.value.len()));
        FlatGrads { values: vec![T::zero(); lens.iter().sum()], lens }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.0.visit_params(path, f)
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.0.visit_params_mut(path, f)
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &FlatGrads<T>,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let mut at = 0;
        self.0.visit_params_mut(path, &mut |p| {
            let g = grads.values.get(at..at + p.value.len()).unwrap_or(&[]);
            at += p.value.len();
            f(p, g)
        })
    }

    fn visit_grads(grads: &FlatGrads<T>, f: &mut dyn FnMut(&[T])) {
        let mut at = 0;
        for &len in &grads.lens {
            f(grads.values.get(at..at + len).unwrap_or(&[]));
            at += len;
        }
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.0.visit_buffers(path, f)
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.0.visit_buffers_mut(path, f)
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.0.visit_rngs(path, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_advance_and_weight() {
        let mut to = vec![0.0f32; 5];
        let mut at = 0;
        copy_at(&mut to, &mut at, &[1.0, 2.0], Some(0.5));
        copy_at(&mut to, &mut at, &[3.0, 4.0, 5.0], None);
        assert_eq!((to.clone(), at), (vec![0.5, 1.0, 3.0, 4.0, 5.0], 5));
        let (mut back, mut at) = ([0.0f32; 3], 2);
        read_at(&to, &mut at, &mut back);
        assert_eq!(back, [3.0, 4.0, 5.0]);
    }

    #[test]
    fn fingerprints_see_every_bit() {
        let a = [1.0f32, 2.0, 3.0];
        let b = [1.0f32, 2.0, f32::from_bits(3.0f32.to_bits() + 1)];
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&[1.0f32, 2.0]), fingerprint(&[2.0f32, 1.0]));
    }
}
