//! [`Trainer::fit_distributed`]: the trainer's epochs over MPI ranks, each on
//! its share of every global batch (see [`crate::distributed`] for what each
//! rank does). The step's pieces (finite checks, clipping and freezing with the
//! optimizer's checked step, schedules, callbacks, checkpoints, the progress
//! bar) are the trainer's own; a later call continues the run as `fit` does.

use super::callbacks::{Flow, NetWeights};
use super::finite::{first_non_finite, first_non_finite_grad, first_non_finite_output, param_name};
use super::freeze;
use super::progress::Progress;
use super::{EpochReport, History, Metrics, Trainer};
use crate::data::{Dataset, MiniBatch};
use crate::distributed::{
    agree, rank_size, same_everywhere, shard, Communication, DistributedHistory, DistributedOptions, Pass,
    Reducer,
};
use crate::error::{Error, NonFiniteAt, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::{NonFiniteUpdate, Optimizer};
use crate::params::{ParamPath, Params};
use crate::tensor::Batch;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::traits::*;
use rand::seq::SliceRandom;
use std::time::Instant;

/// One rank's reusable buffers for its share of a batch.
struct Work<T: Float, N: Network<T, IN, OUT>, Y, const IN: usize, const OUT: usize> {
    batch: MiniBatch<T, IN, Y>,
    trace: N::Trace,
    grads: N::Gradients,
    d_out: Batch<T, OUT>,
}

impl<O> Trainer<O> {
    /// [`Trainer::fit`] on every rank of `world` together, data-parallel:
    /// each rank trains on its share of every global batch of
    /// [`Trainer::batch_size`] samples and the gradients are summed over MPI
    /// ([`crate::distributed`] says how, and what each rank does). Every rank
    /// calls it with the same settings and data; afterwards every rank holds the
    /// same weights, bit for bit. Only rank 0 prints and writes checkpoints.
    ///
    /// Errors: those of [`Trainer::fit`], on the rank where they happen, and
    /// [`Error::RankFailed`] on every other rank at the same step; data sets of
    /// different lengths on different ranks ([`Error::InvalidConfig`]).
    pub fn fit_distributed<C, T, N, L, const IN: usize, const OUT: usize>(
        &mut self,
        world: &C,
        net: &mut N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        validation: Option<&Dataset<T, IN, L::Target>>,
    ) -> Result<DistributedHistory>
    where
        C: Communicator,
        T: Float + Equivalence,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
        O: Optimizer<T>,
    {
        let checked = self.check_fit::<T, N, L, IN, OUT>(&*net, loss, train, validation);
        agree(world, checked, || "while checking its settings and data".into())?;
        same_everywhere(world, "the number of training samples", train.len() as u64)?;
        same_everywhere(world, "the number of validation samples", validation.map_or(0, |v| v.len()) as u64)?;
        let verbose = self.verbose;
        self.verbose &= world.rank() == 0;
        let base_lr = self.optimizer.learning_rate();
        let result = self.run_distributed(world, net, loss, train, validation, base_lr);
        self.optimizer.set_learning_rate(base_lr);
        self.verbose = verbose;
        result
    }

    fn run_distributed<C, T, N, L, const IN: usize, const OUT: usize>(
        &mut self,
        world: &C,
        net: &mut N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        validation: Option<&Dataset<T, IN, L::Target>>,
        base_lr: f64,
    ) -> Result<DistributedHistory>
    where
        C: Communicator,
        T: Float + Equivalence,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
        O: Optimizer<T>,
    {
        let (rank, size) = rank_size(world);
        // As `fit`: after a resume up to `epochs`; a later call continues the run for `epochs` more.
        let (first_epoch, last_epoch, mut rng) = match (self.resumed.take(), self.rng.clone()) {
            (Some(r), _) => (r.epoch.saturating_add(1), self.epochs, r.rng),
            (None, Some(rng)) => (self.epoch.saturating_add(1), self.epoch.saturating_add(self.epochs), rng),
            (None, None) => {
                self.epoch = 0;
                self.step = 0;
                self.plateau = None;
                (1, self.epochs, seeded_rng(self.seed))
            }
        };
        self.callbacks.iter_mut().for_each(|c| c.on_train_begin());
        let mut reducer = Reducer::new(&*net, &self.distributed);
        reducer.broadcast_model(world, net);
        let validation = match validation {
            Some(v) => Some(v.select(&shard(v.len(), rank, size).collect::<Vec<_>>())?),
            None => None,
        };
        let mut work: Work<T, N, L::Target, IN, OUT> = Work {
            batch: MiniBatch::new(),
            trace: N::Trace::default(),
            grads: net.zero_gradients(),
            d_out: Batch::zeros(0),
        };
        let mut order: Vec<usize> = (0..train.len()).collect();
        let (mut history, mut scratch, mut undo) = (History::default(), Vec::new(), Vec::new());
        let batches = train.len().div_ceil(self.batch_size);

        for epoch in first_epoch..=last_epoch {
            let start = Instant::now();
            let lr = match self.plateau.and_then(|p| p.lr) {
                Some(lr) => lr,
                None => self.schedule.learning_rate(base_lr, epoch - 1, self.epochs),
            };
            self.optimizer.set_learning_rate(lr);
            if self.shuffle {
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut rng);
            }
            reseed_dropout(net, self.seed, epoch, rank);
            let bar = Progress::new(self.verbose, batches as u64, epoch, last_epoch);
            let mut sums = [0.0f64; 3];
            for (b, global) in order.chunks(self.batch_size).enumerate() {
                if self.schedule.per_step() {
                    self.optimizer.set_learning_rate(self.schedule.learning_rate_at(base_lr, self.step));
                }
                let mine = global.get(shard(global.len(), rank, size)).unwrap_or(&[]);
                let forward = if mine.is_empty() {
                    Ok(None)
                } else {
                    self.local_forward(net, loss, train, mine, &mut work, epoch, b).map(Some)
                };
                let weight = match &forward {
                    Ok(Some(_)) => Some(mine.len() as f64 / global.len() as f64),
                    _ => None,
                };
                // Backward (when the forward pass succeeded) and the gradients' sum, overlapped as set.
                let pass = Pass {
                    x: &work.batch.features,
                    trace: &mut work.trace,
                    d_out: &work.d_out,
                    grads: &mut work.grads,
                };
                reducer.backward_and_sum(world, &*net, pass, weight);
                let local = match forward {
                    Ok(Some(step)) => self.check_grads(&*net, &work.grads, epoch, b).map(|()| Some(step)),
                    other => other,
                };
                let reduced = reducer
                    .agree_on_sum(world, net, local.is_err(), || format!("in epoch {epoch}, batch {b}"));
                let (value, judged) = match local.and_then(|l| reduced.map(|()| l)) {
                    Ok(step) => step.unwrap_or((0.0, None)),
                    Err(e) => {
                        bar.abandon();
                        return Err(e);
                    }
                };
                sums[0] += value * mine.len() as f64;
                if let Some((r, n)) = judged {
                    sums[1] += r as f64;
                    sums[2] += n as f64;
                }
                if let Some(e) = self.reduced_step(net, &reducer, &mut scratch, &mut undo, epoch, b)? {
                    bar.abandon();
                    return Err(e);
                }
                self.step = self.step.saturating_add(1);
                bar.inc(1);
            }
            bar.finish_and_clear();
            let mut total = [0.0f64; 3];
            world.all_reduce_into(&sums[..], &mut total[..], SystemOperation::sum());
            let train_metrics = metrics(total, train.len());
            let validation = match &validation {
                Some(v) => Some(self.validate(world, net, loss, v, epoch, batches)?),
                None => None,
            };
            let report = EpochReport {
                epoch,
                train: train_metrics,
                validation,
                seconds: start.elapsed().as_secs_f64(),
            };
            self.record_epoch::<T>(&mut history, report, last_epoch, &rng)?;
            if let Some(path) = self.checkpoint.clone() {
                let saved = if rank == 0 { self.save_checkpoint(net, &rng, base_lr, &path) } else { Ok(()) };
                agree(world, saved, || format!("to save the checkpoint after epoch {epoch}"))?;
            }
            // Callbacks run on every rank; a rank whose callback stops (or fails) stops them all.
            let flow = agree(world, self.end_epoch::<T, N>(net, &history), || {
                format!("in a callback after epoch {epoch}")
            })?;
            let (stop, mut any) = (u8::from(flow == Flow::Stop), 0u8);
            world.all_reduce_into(&stop, &mut any, SystemOperation::max());
            if any > 0 {
                break;
            }
        }
        let mut weights = NetWeights(&mut *net, std::marker::PhantomData::<T>);
        for callback in &mut self.callbacks {
            callback.on_train_end(&mut weights)?;
        }
        let communication = Communication { ..reducer.stats };
        Ok(DistributedHistory { history, communication })
    }

    /// How [`Trainer::fit_distributed`] cuts the gradient exchange into
    /// buckets and whether it starts them while the backward pass runs
    /// ([`DistributedOptions`]; by default PyTorch DDP's 25 MiB buckets after a
    /// 1 MiB first one, overlapped). The weights are the same bits either way.
    pub fn distributed(mut self, options: DistributedOptions) -> Self {
        self.distributed = options;
        self
    }

    /// The forward pass and loss on this rank's share `mine` of batch `b`: its
    /// mean loss and correct count, the loss gradient left in `work.d_out`.
    #[allow(clippy::too_many_arguments)]
    fn local_forward<T, N, L, const IN: usize, const OUT: usize>(
        &self,
        net: &mut N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        mine: &[usize],
        work: &mut Work<T, N, L::Target, IN, OUT>,
        epoch: usize,
        batch: usize,
    ) -> Result<(f64, Option<(usize, usize)>)>
    where
        T: Float,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
    {
        let stop = |value: f64, at: NonFiniteAt| Error::NonFinite { epoch, batch, value, at };
        work.batch.fill_from(train, mine);
        if self.check_finite {
            if let Some((i, value)) = first_non_finite(work.batch.features.as_slice()) {
                let sample = mine.get(i / IN).copied().unwrap_or(i / IN);
                return Err(stop(value, NonFiniteAt::Input { sample, feature: i % IN }));
            }
        }
        net.forward_train(&work.batch.features, &mut work.trace);
        if self.check_finite {
            if let Some((name, i, len, value)) = first_non_finite_output::<T, N, IN, OUT>(&work.trace) {
                let per_sample = (len / mine.len().max(1)).max(1);
                let sample = mine.get(i / per_sample).copied().unwrap_or(i / per_sample);
                return Err(stop(value, NonFiniteAt::Layer { name, sample }));
            }
        }
        let out = N::trace_output(&work.trace);
        let value = loss.loss_and_grad(out, &work.batch.targets, &mut work.d_out)?.as_f64();
        if !value.is_finite() {
            return Err(stop(value, NonFiniteAt::Loss));
        }
        let judged = loss.correct(out, &work.batch.targets);
        Ok((value, judged))
    }

    /// With [`Trainer::check_finite`], fails on this rank's first non-finite gradient.
    fn check_grads<T: Float, N: Params<T>>(
        &self,
        net: &N,
        grads: &N::Gradients,
        epoch: usize,
        batch: usize,
    ) -> Result<()> {
        if self.check_finite {
            if let Some((param, index, value)) = first_non_finite_grad::<T, N>(grads) {
                let name = param_name(net, param);
                return Err(Error::NonFinite {
                    epoch,
                    batch,
                    value,
                    at: NonFiniteAt::Gradient { name, index },
                });
            }
        }
        Ok(())
    }

    /// The optimizer's checked step on the summed gradients (clipped and frozen as set):
    /// the same on every rank. `Some` error if it was refused.
    fn reduced_step<T, N>(
        &mut self,
        net: &mut N,
        reducer: &Reducer<T>,
        scratch: &mut Vec<T>,
        undo: &mut Vec<T>,
        epoch: usize,
        batch: usize,
    ) -> Result<Option<Error>>
    where
        T: Float + Equivalence,
        N: Params<T>,
        O: Optimizer<T>,
    {
        let (mut view, grads) = reducer.reduced(net);
        let (clip_value, clip_norm, mask) = (self.clip_value, self.clip_norm, &self.frozen_mask);
        let refused =
            freeze::step(&mut self.optimizer, &mut view, grads, clip_value, clip_norm, mask, scratch, undo)?;
        Ok(refused.map(|NonFiniteUpdate { name, index, value, slot }| {
            let at = match slot {
                None => NonFiniteAt::Parameter { name, index },
                Some(slot) => NonFiniteAt::OptimizerState { name, slot, index },
            };
            Error::NonFinite { epoch, batch, value, at }
        }))
    }

    /// The validation metrics over every rank's share `mine` of the set.
    fn validate<C, T, N, L, const IN: usize, const OUT: usize>(
        &self,
        world: &C,
        net: &N,
        loss: &L,
        mine: &Dataset<T, IN, L::Target>,
        epoch: usize,
        batches: usize,
    ) -> Result<Metrics>
    where
        C: Communicator,
        T: Float,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
    {
        let local = local_sums(net, loss, mine, self.batch_size.max(256));
        let sums = agree(world, local, || format!("while validating after epoch {epoch}"))?;
        let mut total = [0.0f64; 4];
        world.all_reduce_into(&sums[..], &mut total[..], SystemOperation::sum());
        let [loss_sum, right, judged, len] = total;
        let metrics = metrics([loss_sum, right, judged], len as usize);
        if !metrics.loss.is_finite() {
            let batch = batches.saturating_sub(1);
            return Err(Error::NonFinite { epoch, batch, value: metrics.loss, at: NonFiniteAt::Validation });
        }
        Ok(metrics)
    }
}

/// Mean loss and accuracy from summed `[loss × samples, correct, judged]` over `len` samples.
fn metrics([loss_sum, right, judged]: [f64; 3], len: usize) -> Metrics {
    Metrics { loss: loss_sum / len.max(1) as f64, accuracy: (judged > 0.0).then(|| right / judged) }
}

/// `[loss × samples, correct, judged, samples]` of `net` on `data` in inference mode.
fn local_sums<T, N, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN, L::Target>,
    batch_size: usize,
) -> Result<[f64; 4]>
where
    T: Float,
    N: Network<T, IN, OUT>,
    L: Loss<T, OUT>,
{
    let indices: Vec<usize> = (0..data.len()).collect();
    let (mut batch, mut trace) = (MiniBatch::new(), N::Trace::default());
    let mut sums = [0.0, 0.0, 0.0, data.len() as f64];
    for chunk in indices.chunks(batch_size) {
        batch.fill_from(data, chunk);
        let out = net.infer(&batch.features, &mut trace);
        sums[0] += loss.loss(out, &batch.targets)?.as_f64() * chunk.len() as f64;
        if let Some((r, n)) = loss.correct(out, &batch.targets) {
            sums[1] += r as f64;
            sums[2] += n as f64;
        }
    }
    Ok(sums)
}

/// Reseeds every dropout generator of `net` for `epoch` on `rank` (see [`crate::distributed`]).
fn reseed_dropout<T: Float, N: Params<T>>(net: &mut N, seed: u64, epoch: usize, rank: usize) {
    let mut layer = 0u64;
    net.visit_rngs(&ParamPath::ROOT, &mut |_, rng: &mut SeededRng| {
        let mixed = [epoch as u64, rank as u64, layer].iter().fold(splitmix(seed), |h, &x| splitmix(h ^ x));
        *rng = seeded_rng(mixed);
        layer += 1;
    });
}

/// SplitMix64's finaliser: distinct inputs give unrelated outputs.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
