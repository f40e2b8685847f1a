//! The buckets of the gradient all-reduce and their overlap with the backward
//! pass, as PyTorch DDP does it: the flat buffer (every gradient in visiting
//! order, then the buffers) is cut from its end down, in the order backward
//! produces it, into a small first bucket and then buckets of at most
//! [`DistributedOptions::bucket_bytes`]. With overlap, a bucket's
//! `MPI_Iallreduce` starts as soon as the generated backward pass reports
//! ([`crate::network::Network::backward_with`]) that all its gradients are
//! final, and every report tests the oldest request, since Open MPI progresses
//! a non-blocking collective only inside MPI calls; the rest is waited for
//! after the pass. Each element is summed by the same reduction as the
//! blocking path's, so the sums are the same bits.

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::request::{LocalScope, Request};
use mpi::traits::*;
use std::collections::VecDeque;
use std::ops::Range;
use std::time::Instant;

/// The largest bucket of the gradient all-reduce by default: 25 MiB, PyTorch
/// DDP's `bucket_cap_mb=25`.
pub const BUCKET_BYTES: usize = 25 << 20;

/// The first bucket by default (the last parameters, whose gradients backward
/// produces first): 1 MiB, DDP's first bucket, so the exchange starts early.
pub const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// How the gradient exchange of [`crate::train::Trainer::fit_distributed`] is
/// cut into buckets and when they are sent (set with
/// [`crate::train::Trainer::distributed`]). None of it changes the result: the
/// summed gradients are the same bits whatever the buckets and the overlap.
///
/// ```
/// use staticnet_core::distributed::DistributedOptions;
/// let small = DistributedOptions { bucket_bytes: 4 << 20, ..DistributedOptions::default() };
/// assert_eq!((small.first_bucket_bytes, small.overlap), (1 << 20, true));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistributedOptions {
    /// The largest bucket, in bytes ([`BUCKET_BYTES`] by default).
    pub bucket_bytes: usize,
    /// The first bucket, in bytes ([`FIRST_BUCKET_BYTES`] by default).
    pub first_bucket_bytes: usize,
    /// Whether each bucket's all-reduce starts (`MPI_Iallreduce`) while the
    /// backward pass still runs, as soon as its gradients are final (the
    /// default), or after the whole pass (`MPI_Allreduce`, one bucket after another).
    pub overlap: bool,
}

impl Default for DistributedOptions {
    fn default() -> Self {
        DistributedOptions {
            bucket_bytes: BUCKET_BYTES,
            first_bucket_bytes: FIRST_BUCKET_BYTES,
            overlap: true,
        }
    }
}

/// The buckets of a flat buffer of `total` values of `size` bytes each, in the
/// order they are sent: ranges from the end of the buffer down, the first of
/// `first_bucket_bytes`, the others of at most `bucket_bytes` (at least one value each).
pub(crate) fn plan(total: usize, size: usize, options: &DistributedOptions) -> Vec<Range<usize>> {
    let size = size.max(1);
    let (mut len, cap) = ((options.first_bucket_bytes / size).max(1), (options.bucket_bytes / size).max(1));
    let (mut end, mut buckets) = (total, Vec::new());
    while end > 0 {
        let start = end.saturating_sub(len);
        buckets.push(start..end);
        (end, len) = (start, cap);
    }
    buckets
}

/// The buckets of one step in flight: those not started yet are the prefix
/// `send[..]`/`recv[..]` still held here; `ready_from` is where the values
/// that are final (copied into `send`) begin.
pub(crate) struct Inflight<'a, 'b, T: Equivalence, C> {
    comm: &'b C,
    scope: &'b LocalScope<'a>,
    buckets: &'b [Range<usize>],
    next: usize,
    send: &'a mut [T],
    recv: &'a mut [T],
    ready_from: usize,
    requests: VecDeque<Request<'a, [T], &'b LocalScope<'a>>>,
    /// Seconds spent in MPI calls (starting, testing, waiting).
    pub(crate) seconds: f64,
    /// Buckets started while some values were not final yet.
    pub(crate) early: u64,
}

impl<'a, 'b, T: Equivalence, C: Communicator> Inflight<'a, 'b, T, C> {
    /// Nothing sent yet; `send` and `recv` are the whole flat buffers.
    pub(crate) fn new(
        comm: &'b C,
        scope: &'b LocalScope<'a>,
        buckets: &'b [Range<usize>],
        send: &'a mut [T],
        recv: &'a mut [T],
    ) -> Self {
        let ready_from = send.len();
        Inflight {
            comm,
            scope,
            buckets,
            next: 0,
            send,
            recv,
            ready_from,
            requests: VecDeque::new(),
            seconds: 0.0,
            early: 0,
        }
    }

    /// The part of the outgoing buffer not sent yet, to copy final values into.
    pub(crate) fn pending(&mut self) -> &mut [T] {
        self.send
    }

    /// Where the final values begin.
    pub(crate) fn ready_from(&self) -> usize {
        self.ready_from
    }

    /// The values from `from` on are final in [`Inflight::pending`]: starts
    /// every bucket they complete, in order, and lets MPI progress the others.
    pub(crate) fn ready(&mut self, from: usize) {
        let start = Instant::now();
        self.ready_from = self.ready_from.min(from);
        let buckets = self.buckets;
        while let Some(bucket) = buckets.get(self.next).filter(|b| b.start >= self.ready_from) {
            let send = std::mem::take(&mut self.send);
            let recv = std::mem::take(&mut self.recv);
            let (send_rest, send_bucket) = send.split_at_mut(bucket.start.min(send.len()));
            let (recv_rest, recv_bucket) = recv.split_at_mut(bucket.start.min(recv.len()));
            (self.send, self.recv) = (send_rest, recv_rest);
            let request = self.comm.immediate_all_reduce_into(
                self.scope,
                &*send_bucket,
                recv_bucket,
                SystemOperation::sum(),
            );
            self.requests.push_back(request);
            self.next += 1;
            self.early += u64::from(self.ready_from > 0);
        }
        // One test drives Open MPI's progress engine for every pending request.
        while let Some(oldest) = self.requests.pop_front() {
            if let Err(pending) = oldest.test() {
                self.requests.push_front(pending);
                break;
            }
        }
        self.seconds += start.elapsed().as_secs_f64();
    }

    /// Starts whatever is left (every value must be final by now) and waits
    /// for every bucket: the sums are in `recv`. Returns the seconds spent in
    /// MPI and the buckets started early.
    pub(crate) fn finish(mut self) -> (f64, u64) {
        self.ready(0);
        let start = Instant::now();
        while let Some(request) = self.requests.pop_front() {
            request.wait();
        }
        (self.seconds + start.elapsed().as_secs_f64(), self.early)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_from_the_end_down_with_a_small_first_one() {
        let options = DistributedOptions { bucket_bytes: 40, first_bucket_bytes: 8, overlap: true };
        assert_eq!(plan(25, 4, &options), vec![23..25, 13..23, 3..13, 0..3]);
        assert_eq!(plan(2, 4, &options), vec![0..2]);
        assert!(plan(0, 4, &options).is_empty());
        let tiny = DistributedOptions { bucket_bytes: 1, first_bucket_bytes: 0, overlap: false };
        assert_eq!(plan(3, 4, &tiny), vec![2..3, 1..2, 0..1]);
    }
}
