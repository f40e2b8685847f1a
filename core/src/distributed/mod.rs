//! Data-parallel training over MPI (cargo feature `mpi`): every rank holds the
//! whole network, trains on its share of each global mini-batch, and the ranks
//! sum their gradients with MPI all-reduce before taking the same optimizer
//! step, so every rank holds **bit-identical weights** after every step.
//! The entry point is [`crate::train::Trainer::fit_distributed`]; MPI itself is
//! the [`mpi`] crate (rsmpi), re-exported here, over the system's MPI library.
//!
//! ```no_run
//! use staticnet_core::distributed::{self, mpi};
//! use staticnet_core::loss::{Labels, SoftmaxCrossEntropy};
//! use staticnet_core::{data::Dataset, network::Network, optim::Adam, train::Trainer, Error, Result};
//!
//! /// Trains `net` (built from the same seed on every rank, or not: rank 0's weights are broadcast).
//! fn train<N: Network<f32, 784, 10>>(net: &mut N, data: &Dataset<f32, 784, Labels>) -> Result<()> {
//!     let universe = mpi::initialize().ok_or(Error::InvalidConfig("MPI is initialised already".into()))?;
//!     let world = universe.world();
//!     distributed::abort_on_panic(); // a panicking rank takes the job down instead of hanging it
//!     let mut trainer = Trainer::new(Adam::new(1e-3)).batch_size(128).epochs(3);
//!     let run = trainer.fit_distributed(&world, net, &SoftmaxCrossEntropy, data, None)?;
//!     println!("{}", distributed::weights_line(&world, &*net)); // rank R/N weights sha256 HEX
//!     Ok(())
//! }
//! ```
//! Run it with `mpirun -np 4 target/release/examples/…`; every rank loads the
//! same data (a shared file system, or its own copy).
//!
//! # What each rank does
//!
//! - **Batches.** Every rank shuffles with the same seeded generator, so all
//!   ranks see the same order; each global batch of [`Trainer::batch_size`]
//!   samples is cut into `size` contiguous shares ([`shard`]: the first
//!   `len % size` ranks take one sample more), and rank `r` trains on share
//!   `r`. The shares are exactly the global batch, including an uneven last
//!   batch; a rank whose share is empty contributes zeros.
//! - **Gradients.** Rank `r`'s gradient of its mean loss is weighted by
//!   `n_r / n` (its share of the `n` samples) and the weighted gradients are
//!   summed with `MPI_Allreduce` over one flat buffer of every parameter in
//!   visiting order (then the buffers): the gradient of the mean loss over the
//!   global batch, as one process would compute it up to the order of the sums.
//!   The buffer is cut from its end down into buckets, a first of
//!   [`FIRST_BUCKET_BYTES`] and then of at most [`BUCKET_BYTES`], and each
//!   bucket's `MPI_Iallreduce` starts while the backward pass still runs, as
//!   soon as its gradients are final (PyTorch DDP's scheme; [`DistributedOptions`]
//!   sets the sizes, or blocking all-reduces after the pass). With one rank the weight is 1 and training is bit for bit
//!   [`crate::train::Trainer::fit`]'s (without dropout, whose generators are
//!   reseeded as below).
//! - **Identical weights.** After the all-reduce the ranks agree (one small
//!   all-reduce of three integers) on whether any rank failed and on a 64-bit
//!   fingerprint of the summed buffer; if the fingerprints differ (an MPI
//!   library may sum in a different order on different ranks) rank 0's sum is
//!   broadcast, so every rank hands the optimizer the same bits and takes the
//!   same step ([`Communication::fallbacks`] counts those broadcasts). At the start
//!   rank 0's parameters and buffers are broadcast, like PyTorch DDP does.
//! - **Batch norm.** Batch statistics are per rank: each rank normalises its
//!   share with its share's mean and variance (PyTorch DDP without
//!   `SyncBatchNorm`). The running statistics (buffers) are averaged across
//!   ranks after every step, weighted like the gradients, so every rank holds
//!   the same running mean and variance and evaluates like the others.
//! - **Dropout and generators.** At the start of each epoch every dropout
//!   layer's generator on rank `r` is reseeded from the trainer's seed, the
//!   epoch, `r` and the layer's position, so ranks draw independent masks and a
//!   resumed run draws the masks an uninterrupted one would. The shuffling
//!   generator is the trainer's, the same on every rank.
//! - **Validation** is split like a batch ([`shard`] of the whole set); the
//!   loss sums and correct counts are summed across ranks.
//! - **Rank 0** alone prints (when verbose), writes checkpoints, and is the
//!   one that should plot; [`DistributedHistory::history`] is the same on every rank.
//! - **Checkpoints** are [`crate::train::Trainer::checkpoint`]'s files, written by rank 0.
//!   Every rank [`crate::train::Trainer::resume`]s the same file: with the same
//!   number of ranks the run ends with exactly the weights of an uninterrupted one;
//!   a single process resumes it with [`crate::train::Trainer::fit`] (same global batch) to the
//!   same weights up to the order of sums (and other dropout masks).
//! - **Faults.** Every step and every epoch end the ranks agree on whether one
//!   failed; a rank whose step fails (bad data, a NaN) returns its own error and
//!   every other rank returns [`Error::RankFailed`] at the same step, so the job
//!   ends instead of hanging. A rank that dies is noticed by `mpirun`, which ends
//!   the others; [`abort_on_panic`] turns a panic into `MPI_Abort`. The last
//!   checkpoint stays intact (it is written atomically).
//!
//! [`Trainer::batch_size`]: crate::train::Trainer::batch_size

mod buckets;
mod reduce;

pub use buckets::{DistributedOptions, BUCKET_BYTES, FIRST_BUCKET_BYTES};
pub use mpi;
pub(crate) use reduce::{agree, Pass, Reducer};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::history::History;
use crate::params::{ParamPath, Params};
use mpi::traits::*;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// What a distributed `fit` reports: the history (the same on every rank) and
/// this rank's communication.
#[derive(Clone, Debug, Default)]
pub struct DistributedHistory {
    /// Per-epoch losses and accuracies over the whole global data.
    pub history: History,
    /// What the gradient exchange cost this rank.
    pub communication: Communication,
}

/// The cost of the gradient exchange on one rank over a `fit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Communication {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Seconds spent in the per-step all-reduces and agreement (waiting for a
    /// slower rank included).
    pub seconds: f64,
    /// Bytes each rank contributes to the all-reduce per step (gradients and buffers).
    pub bytes_per_step: usize,
    /// All-reduce calls per step (buckets).
    pub buckets: usize,
    /// Buckets whose all-reduce started while the backward pass still had
    /// gradients to compute, over all steps (0 without overlap, or when the
    /// whole exchange fits the first bucket).
    pub early_buckets: u64,
    /// Steps whose summed gradients differed between ranks and were broadcast from rank 0.
    pub fallbacks: u64,
}

impl Communication {
    /// Mean seconds of communication per step.
    pub fn seconds_per_step(&self) -> f64 {
        self.seconds / self.steps.max(1) as f64
    }
}

/// The contiguous share of `len` items (samples of a batch, or a validation
/// set) that rank `rank` of `size` takes: the first `len % size` ranks take one
/// more. The shares of all ranks, in rank order, are `0..len`.
///
/// ```
/// use staticnet_core::distributed::shard;
/// assert_eq!([shard(7, 0, 3), shard(7, 1, 3), shard(7, 2, 3)], [0..3, 3..5, 5..7]);
/// assert_eq!(shard(1, 1, 2), 1..1); // an empty share
/// ```
pub fn shard(len: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    let end = start + base + usize::from(rank < extra);
    start.min(len)..end.min(len)
}

/// The SHA-256 of `net`'s parameters in visiting order, each value's
/// little-endian bytes (4 for `f32`, 8 for `f64`), as lowercase hex.
pub fn weights_sha256<T: Float, N: Params<T>>(net: &N) -> String {
    let mut hasher = Sha256::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| match T::f32s(p.value) {
        Some(v) => v.iter().for_each(|x| hasher.update(x.to_le_bytes())),
        None => p.value.iter().for_each(|x| hasher.update(x.as_f64().to_le_bytes())),
    });
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `rank R/N weights sha256 HEX`: the line each rank of the examples prints
/// after training, so a user sees that the ranks agree.
pub fn weights_line<C: Communicator, T: Float, N: Params<T>>(world: &C, net: &N) -> String {
    format!("rank {}/{} weights sha256 {}", world.rank(), world.size(), weights_sha256(net))
}

/// Makes a panic on any rank end the whole job: the panic's message is printed
/// as usual, then `MPI_Abort` on the world communicator stops every rank
/// (otherwise the others would wait for the dead rank in their next all-reduce).
/// Call it once after `mpi::initialize`.
pub fn abort_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let world = mpi::topology::SimpleCommunicator::world();
        eprintln!("rank {}: panicked; aborting the MPI job", world.rank());
        world.abort(70)
    }));
}

/// This rank's index and the number of ranks, as `usize`.
pub(crate) fn rank_size<C: Communicator>(comm: &C) -> (usize, usize) {
    (usize::try_from(comm.rank()).unwrap_or(0), usize::try_from(comm.size()).unwrap_or(1).max(1))
}

/// The error a rank returns when rank `rank` failed `during` something.
pub(crate) fn rank_failed(rank: usize, size: usize, during: String) -> Error {
    Error::RankFailed { rank, size, during }
}

/// Fails on every rank unless all ranks hold the same `value` (sizes of data sets).
pub(crate) fn same_everywhere<C: Communicator>(comm: &C, what: &str, value: u64) -> Result<()> {
    let mut seen = [0u64; 2];
    comm.all_reduce_into(&[value, !value][..], &mut seen[..], mpi::collective::SystemOperation::max());
    let (max, min) = (seen[0], !seen[1]);
    if max != min {
        return Err(Error::InvalidConfig(format!(
            "{what} differs between ranks (from {min} to {max}); every rank must load the same data"
        )));
    }
    Ok(())
}
