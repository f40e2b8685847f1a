//! Training in the spirit of Keras' `fit`: epochs of shuffled mini-batches,
//! per-epoch loss and accuracy, validation, a progress bar and a history.
//!
//! With [`Trainer::checkpoint`] the trainer saves a checkpoint (network,
//! optimizer state, epoch, step and every generator) after each epoch;
//! [`Trainer::resume`] restores one, and the next [`Trainer::fit`] continues
//! with the following epoch, ending with exactly the weights of an
//! uninterrupted run.
//!
//! # Numerics
//!
//! A NaN or infinite loss always stops training with [`Error::NonFinite`]
//! before the optimizer step of that batch. With [`Trainer::check_finite`]
//! (on by default in debug builds, off in release builds) the trainer also
//! checks the input batch, every layer's output and every gradient, and the
//! error names the first place the value appeared ([`NonFiniteAt`]): a
//! training sample and feature, a layer, or a parameter such as `fc1.weight`.
//! Whatever that setting, a step that would make any parameter non-finite is
//! not taken and is reported ([`NonFiniteAt::Parameter`]; see
//! [`Optimizer::step_if_finite`]): with [`crate::optim::Sgd`], [`crate::optim::Adam`]
//! and [`crate::optim::AdamW`] neither the weights nor the optimizer's state
//! change, and a step that would make only that state non-finite is refused too
//! ([`NonFiniteAt::OptimizerState`]). A non-finite loss on the validation data
//! is an error ([`NonFiniteAt::Validation`]).
//! Checkpoints are written only after a completed epoch, so the last one
//! written stays as it was and never holds a non-finite weight.
//!
//! [`Trainer::clip_grad_norm`] and [`Trainer::clip_grad_value`] clip the
//! gradients between the backward pass and the optimizer step, like
//! `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
//!
//! A trainer is reusable: each [`Trainer::fit`] continues the run (epoch and
//! step counts, shuffling generator, schedule). [`Trainer::callback`] and
//! [`Trainer::on_epoch_end`] add hooks that see each epoch's report and may stop
//! training ([`EarlyStopping`], [`SaveBest`]); [`Trainer::freeze`] keeps
//! parameters out of the optimizer's reach.
//!
//! This file holds the [`Trainer`] and its epochs; files of their own hold the
//! checkpoints (saving, [`Trainer::resume`]), the learning-rate [`Schedule`],
//! gradient clipping ([`clip_grad_norm`], [`clip_grad_value`]), [`evaluate`]
//! and the non-finite checks. What a run achieved, [`History`], lives in
//! [`crate::history`] and is re-exported here.

mod callbacks;
mod checkpoint;
mod clip;
// `Trainer::fit_distributed` (feature `mpi`): the epochs over MPI ranks.
#[cfg(feature = "mpi")]
mod distributed;
mod evaluate;
mod finite;
mod freeze;
mod plateau;
mod progress;
mod schedule;

pub use crate::history::{format_report, EpochReport, History, Metrics};
pub use callbacks::{Callback, EarlyStopping, EpochEnd, Flow, Monitor, SaveBest, Snapshot, Weights};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm};
pub use evaluate::evaluate;
pub use plateau::{Plateau, PlateauState};
pub use schedule::Schedule;

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, NonFiniteAt, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::{NonFiniteUpdate, Optimizer};
use crate::params::Params;
use crate::tensor::Batch;
use checkpoint::Resumed;
use finite::{first_non_finite, first_non_finite_grad, first_non_finite_output, param_name};
use progress::Progress;
use rand::seq::SliceRandom;
use std::path::PathBuf;
use std::time::Instant;

/// Trains a network with an optimizer: `Trainer::new(Adam::new(1e-3)).epochs(5).fit(...)`.
///
/// Each epoch visits the samples in an order drawn afresh from the trainer's
/// generator (seeded by [`Trainer::seed`]), so an epoch's order depends only on
/// the generator's state, which checkpoints save.
///
/// # Examples
///
/// ```
/// use staticnet::prelude::*;
///
/// network! { struct Xor { input: [2], fc: dense(16), tanh, head: dense(2) } }
///
/// let rows = vec![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let data = Dataset::from_rows(&rows, vec![0, 1, 1, 0])?;
/// let mut net = Xor::new(1);
/// let mut trainer = Trainer::new(Adam::new(0.05)).epochs(200).batch_size(4).verbose(false);
/// let history = trainer.fit(&mut net, &SoftmaxCrossEntropy, &data, None)?;
/// assert_eq!(history.epochs.len(), 200);
/// assert_eq!(history.last().unwrap().train.accuracy, Some(1.0));
/// // A later `fit` continues the same run: epochs 201 to 210.
/// trainer = trainer.epochs(10);
/// trainer.fit(&mut net, &SoftmaxCrossEntropy, &data, None)?;
/// assert_eq!(trainer.completed_epochs(), 210);
/// # Ok::<(), staticnet::Error>(())
/// ```
pub struct Trainer<O> {
    optimizer: O,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    verbose: bool,
    schedule: Schedule,
    checkpoint: Option<PathBuf>,
    /// Whether to check inputs, layer outputs and gradients for NaN/Inf.
    check_finite: bool,
    /// The largest global L2 norm of the gradients, if clipped.
    clip_norm: Option<f64>,
    /// The largest absolute value of a gradient element, if clipped.
    clip_value: Option<f64>,
    /// Where the next `fit` starts, when a checkpoint was resumed.
    resumed: Option<Resumed>,
    /// Epochs completed in the current run.
    epoch: usize,
    /// Optimizer steps taken in the current run.
    step: u64,
    /// The shuffling generator after the last completed epoch, which the next `fit` continues.
    rng: Option<SeededRng>,
    /// Name prefixes of the parameters the optimizer leaves alone ([`Trainer::freeze`]).
    frozen: Vec<String>,
    /// Which parameters (by visiting index) `frozen` holds, found when `fit` starts.
    frozen_mask: Vec<bool>,
    /// Called at the end of each epoch ([`Trainer::callback`]).
    callbacks: Vec<Box<dyn Callback + Send>>,
    /// Where [`Schedule::ReduceOnPlateau`] stands in the run.
    plateau: Option<PlateauState>,
    /// The gradient exchange's buckets and overlap (`Trainer::distributed`).
    #[cfg(feature = "mpi")]
    distributed: crate::distributed::DistributedOptions,
}

impl<O> Trainer<O> {
    /// A trainer with 10 epochs, batches of 32, seed 0, shuffling, per-epoch
    /// lines on stderr, no gradient clipping, and [`Trainer::check_finite`] on
    /// in debug builds only.
    pub fn new(optimizer: O) -> Self {
        Trainer {
            optimizer,
            epochs: 10,
            batch_size: 32,
            seed: 0,
            shuffle: true,
            verbose: true,
            schedule: Schedule::Constant,
            checkpoint: None,
            check_finite: cfg!(debug_assertions),
            clip_norm: None,
            clip_value: None,
            resumed: None,
            epoch: 0,
            step: 0,
            rng: None,
            frozen: Vec::new(),
            frozen_mask: Vec::new(),
            callbacks: Vec::new(),
            plateau: None,
            #[cfg(feature = "mpi")]
            distributed: Default::default(),
        }
    }

    /// How many passes over the training data.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Samples per mini-batch; the last batch of an epoch may be smaller.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The seed of the shuffling order: the same seed and initial weights give the same trained weights.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to shuffle the samples each epoch (on by default).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// How the learning rate changes over the epochs of a `fit` (constant by default).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Whether to print a line per epoch on stderr (the progress bar shows only on a terminal).
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Whether to check every input batch, layer output and gradient for NaN
    /// and Inf (on by default in debug builds, where `cfg!(debug_assertions)`
    /// holds, and off in release builds). The first non-finite value stops
    /// training with [`Error::NonFinite`] naming the epoch, the batch and where
    /// it appeared ([`NonFiniteAt`]), before the optimizer step, so the
    /// parameters keep the values of the last finite step and the last
    /// checkpoint is left as it was. The loss is checked either way.
    ///
    /// Costs one pass over the batch's activations and the gradients per step.
    pub fn check_finite(mut self, check: bool) -> Self {
        self.check_finite = check;
        self
    }

    /// Clips gradients by their global L2 norm before each optimizer step, as
    /// `torch.nn.utils.clip_grad_norm_(params, max_norm)` does: the norm is taken
    /// over all parameters' gradients as one vector, and when it exceeds
    /// `max_norm` every gradient is scaled by `max_norm / (norm + 1e-6)`.
    /// `max_norm` must be positive (`fit` says so otherwise); infinity clips nothing.
    /// With [`Trainer::clip_grad_value`] too, values are clipped first.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// Clips every gradient element to `[-max_value, max_value]` before each
    /// optimizer step, as `torch.nn.utils.clip_grad_value_` does. `max_value`
    /// must be positive (`fit` says so otherwise). NaN stays NaN.
    pub fn clip_grad_value(mut self, max_value: f64) -> Self {
        self.clip_value = Some(max_value);
        self
    }

    /// Saves a checkpoint to `path` after every epoch, atomically (the previous
    /// one stays intact if the process dies while saving): the network's
    /// parameters, buffers and dropout generators, the optimizer's state, the
    /// epoch, the step and the shuffling generator. See [`crate::persist`] for
    /// the format and [`Trainer::resume`] to continue from it.
    ///
    /// `fit` fails before training if the optimizer cannot export its state.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Epochs completed in the current (or resumed) run: the next `fit` after
    /// [`Trainer::resume`] starts with epoch `completed_epochs() + 1`.
    pub fn completed_epochs(&self) -> usize {
        self.epoch
    }

    /// Optimizer steps (mini-batches) taken in the current (or resumed) run.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The optimizer, e.g. to read its learning rate.
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, e.g. to change the learning rate between calls to `fit`.
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// Starts a new run: the next `fit` begins with epoch 1, step 0 and the
    /// shuffling order of [`Trainer::seed`] again, as a fresh trainer would
    /// (the optimizer's state is kept: replace it with [`Trainer::optimizer_mut`]).
    pub fn restart(&mut self) {
        self.epoch = 0;
        self.step = 0;
        self.rng = None;
        self.resumed = None;
        self.plateau = None;
    }

    /// Trains `net` on `train`, evaluating on `validation` after each epoch.
    ///
    /// A fresh trainer runs epochs 1 to [`Trainer::epochs`]; after
    /// [`Trainer::resume`] it continues from the checkpoint's epoch up to
    /// [`Trainer::epochs`]. Each later `fit` continues the run for
    /// [`Trainer::epochs`] more epochs: the epoch count, the step count, the
    /// shuffling generator and the schedule go on where the last completed
    /// epoch left them, so two fits of one epoch give exactly the weights of
    /// one fit of two ([`Trainer::restart`] starts over). With
    /// [`Trainer::checkpoint`] set, a checkpoint is saved after every epoch.
    ///
    /// Errors: a zero batch size or a clipping threshold that is not positive
    /// ([`Error::InvalidConfig`]), targets the loss rejects (labels out of
    /// range, mismatched lengths), a NaN or Inf in training
    /// ([`Error::NonFinite`]; see [`Trainer::check_finite`]), or a checkpoint
    /// that cannot be written. After an error the optimizer's learning rate is
    /// back at its base value.
    pub fn fit<T, N, L, const IN: usize, const OUT: usize>(
        &mut self,
        net: &mut N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        validation: Option<&Dataset<T, IN, L::Target>>,
    ) -> Result<History>
    where
        T: Float,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
        O: Optimizer<T>,
    {
        self.check_fit::<T, N, L, IN, OUT>(&*net, loss, train, validation)?;
        let base_lr = self.optimizer.learning_rate();
        let result = self.run(net, loss, train, validation, base_lr);
        // Leave the optimizer as it came, so a second `fit` starts from the same rate.
        self.optimizer.set_learning_rate(base_lr);
        result
    }

    /// The epochs of [`Trainer::fit`], once its settings are checked.
    fn run<T, N, L, const IN: usize, const OUT: usize>(
        &mut self,
        net: &mut N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        validation: Option<&Dataset<T, IN, L::Target>>,
        base_lr: f64,
    ) -> Result<History>
    where
        T: Float,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
        O: Optimizer<T>,
    {
        // Saturating: a checkpoint's epoch is bounded by persist, but a count never panics.
        let (first_epoch, last_epoch, mut rng) = match (self.resumed.take(), self.rng.clone()) {
            (Some(r), _) => (r.epoch.saturating_add(1), self.epochs, r.rng),
            // A later `fit` continues the run: `epochs` more epochs, the shuffle and the schedule go on.
            (None, Some(rng)) => (self.epoch.saturating_add(1), self.epoch.saturating_add(self.epochs), rng),
            (None, None) => {
                self.epoch = 0;
                self.step = 0;
                self.plateau = None;
                (1, self.epochs, seeded_rng(self.seed))
            }
        };
        self.callbacks.iter_mut().for_each(|c| c.on_train_begin());
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut batch = MiniBatch::new();
        let mut trace = N::Trace::default();
        let mut grads = net.zero_gradients();
        let mut d_out = Batch::<T, OUT>::zeros(0);
        let mut history = History::default();
        let mut scratch = Vec::new();
        // The weights' copy for optimizers that undo a step rather than check it first.
        let mut undo = Vec::new();
        let batches = train.len().div_ceil(self.batch_size);

        for epoch in first_epoch..=last_epoch {
            let start = Instant::now();
            let lr = match self.plateau.and_then(|p| p.lr) {
                Some(lr) => lr,
                None => self.schedule.learning_rate(base_lr, epoch - 1, self.epochs),
            };
            self.optimizer.set_learning_rate(lr);
            if self.shuffle {
                // From the identity each epoch, so the order depends on the generator alone.
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut rng);
            }
            let bar = Progress::new(self.verbose, batches as u64, epoch, last_epoch);
            let (mut loss_sum, mut right, mut judged) = (0.0, 0usize, 0usize);
            for (b, indices) in order.chunks(self.batch_size).enumerate() {
                let stop = |value: f64, at: NonFiniteAt| {
                    bar.abandon();
                    Error::NonFinite { epoch, batch: b, value, at }
                };
                if self.schedule.per_step() {
                    self.optimizer.set_learning_rate(self.schedule.learning_rate_at(base_lr, self.step));
                }
                batch.fill_from(train, indices);
                if self.check_finite {
                    if let Some((i, value)) = first_non_finite(batch.features.as_slice()) {
                        let sample = indices.get(i / IN).copied().unwrap_or(i / IN);
                        return Err(stop(value, NonFiniteAt::Input { sample, feature: i % IN }));
                    }
                }
                net.forward_train(&batch.features, &mut trace);
                if self.check_finite {
                    if let Some((name, i, len, value)) = first_non_finite_output::<T, N, IN, OUT>(&trace) {
                        // Outputs are column-major: one sample's `len / batch` values after another.
                        let per_sample = (len / indices.len().max(1)).max(1);
                        let sample = indices.get(i / per_sample).copied().unwrap_or(i / per_sample);
                        return Err(stop(value, NonFiniteAt::Layer { name, sample }));
                    }
                }
                let out = N::trace_output(&trace);
                let value = loss.loss_and_grad(out, &batch.targets, &mut d_out)?.as_f64();
                if !value.is_finite() {
                    return Err(stop(value, NonFiniteAt::Loss));
                }
                if let Some((r, n)) = loss.correct(out, &batch.targets) {
                    right += r;
                    judged += n;
                }
                net.backward(&batch.features, &mut trace, &d_out, &mut grads, None);
                if self.check_finite {
                    if let Some((param, index, value)) = first_non_finite_grad::<T, N>(&grads) {
                        let name = param_name(&*net, param);
                        return Err(stop(value, NonFiniteAt::Gradient { name, index }));
                    }
                }
                // Taken only if every new weight (and, for the built-in optimizers, state value) is finite.
                let (clip_value, clip_norm, mask) = (self.clip_value, self.clip_norm, &self.frozen_mask);
                let optimizer = &mut self.optimizer;
                let refused = freeze::step(
                    optimizer,
                    net,
                    &grads,
                    clip_value,
                    clip_norm,
                    mask,
                    &mut scratch,
                    &mut undo,
                )?;
                if let Some(NonFiniteUpdate { name, index, value, slot }) = refused {
                    let at = match slot {
                        None => NonFiniteAt::Parameter { name, index },
                        Some(slot) => NonFiniteAt::OptimizerState { name, slot, index },
                    };
                    return Err(stop(value, at));
                }
                self.step = self.step.saturating_add(1);
                loss_sum += value * indices.len() as f64;
                bar.inc(1);
                // Formatting allocates: only for a bar that is drawn (a terminal), not per step in CI.
                if b % 16 == 0 && !bar.is_hidden() {
                    bar.set_message(format!(
                        "loss {:.4}",
                        loss_sum / ((b * self.batch_size + indices.len()) as f64)
                    ));
                }
            }
            bar.finish_and_clear();
            let train_metrics = Metrics {
                loss: loss_sum / train.len().max(1) as f64,
                accuracy: (judged > 0).then(|| right as f64 / judged as f64),
            };
            let validation =
                validation.map(|v| evaluate(net, loss, v, self.batch_size.max(256))).transpose()?;
            if let Some(value) = validation.as_ref().map(|m| m.loss).filter(|l| !l.is_finite()) {
                let batch = batches.saturating_sub(1);
                return Err(Error::NonFinite { epoch, batch, value, at: NonFiniteAt::Validation });
            }
            let report = EpochReport {
                epoch,
                train: train_metrics,
                validation,
                seconds: start.elapsed().as_secs_f64(),
            };
            self.record_epoch::<T>(&mut history, report, last_epoch, &rng)?;
            // Only after a completed epoch: a failed one leaves the last checkpoint as it was.
            if let Some(path) = self.checkpoint.clone() {
                self.save_checkpoint(net, &rng, base_lr, &path)?;
            }
            if self.end_epoch::<T, N>(net, &history)? == Flow::Stop {
                break;
            }
        }
        let mut weights = callbacks::NetWeights(&mut *net, std::marker::PhantomData::<T>);
        for callback in &mut self.callbacks {
            callback.on_train_end(&mut weights)?;
        }
        Ok(history)
    }

    /// The checks `fit` and `fit_distributed` make before training (settings, the loss against the network,
    /// the data), and the frozen parameters' mask.
    fn check_fit<T, N, L, const IN: usize, const OUT: usize>(
        &mut self,
        net: &N,
        loss: &L,
        train: &Dataset<T, IN, L::Target>,
        validation: Option<&Dataset<T, IN, L::Target>>,
    ) -> Result<()>
    where
        T: Float,
        N: Network<T, IN, OUT>,
        L: Loss<T, OUT>,
        O: Optimizer<T>,
    {
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig("batch size must be at least 1".into()));
        }
        for (what, limit) in [("clip_grad_norm", self.clip_norm), ("clip_grad_value", self.clip_value)] {
            if let Some(limit) = limit.filter(|l| l.is_nan() || *l <= 0.0) {
                return Err(Error::InvalidConfig(format!("{what} must be positive, got {limit}")));
            }
        }
        crate::loss::check_pairing::<T, N, L, IN, OUT>()?;
        loss.validate(train.targets())?;
        N::check_input(train.features())?;
        if let Some(v) = validation {
            loss.validate(v.targets())?;
            N::check_input(v.features())?;
        }
        self.schedule.check()?;
        if let (Schedule::ReduceOnPlateau(p), None) = (self.schedule, validation) {
            if matches!(p.monitor, Monitor::ValLoss | Monitor::ValAccuracy) {
                let why = "fit was given no validation data";
                return Err(Error::InvalidConfig(format!("cannot monitor {:?}: {why}", p.monitor)));
            }
        }
        self.frozen_mask = self.frozen_mask(net)?;
        if self.checkpoint.is_some() {
            // Fail now rather than after the first epoch.
            self.optimizer.state()?;
        }
        Ok(())
    }

    /// Closes epoch `report.epoch` (in `fit` and `fit_distributed`): prints its line, records it, keeps the
    /// shuffling generator for the next `fit`, and lets a plateau schedule see it.
    fn record_epoch<T: Float>(
        &mut self,
        history: &mut History,
        report: EpochReport,
        last_epoch: usize,
        rng: &SeededRng,
    ) -> Result<()>
    where
        O: Optimizer<T>,
    {
        if self.verbose {
            eprintln!("{}", format_report(&report, last_epoch));
        }
        self.epoch = report.epoch;
        history.epochs.push(report);
        self.rng = Some(rng.clone());
        if let Schedule::ReduceOnPlateau(plateau) = self.schedule {
            // In a distributed run the history is the same on every rank, so is every rank's decision.
            let value = history.epochs.last().map(|r| plateau.monitor.value(r)).transpose()?;
            let state = self.plateau.get_or_insert_with(|| PlateauState::new(&plateau));
            if let Some(value) = value {
                state.observe(&plateau, value, self.optimizer.learning_rate());
            }
        }
        Ok(())
    }

    /// Runs every callback at the end of an epoch: [`Flow::Stop`] if any says so.
    fn end_epoch<T: Float, N: Params<T>>(&mut self, net: &mut N, history: &History) -> Result<Flow>
    where
        O: Optimizer<T>,
    {
        let mut flow = Flow::Continue;
        let mut weights = callbacks::NetWeights(net, std::marker::PhantomData::<T>);
        for callback in &mut self.callbacks {
            let Some(report) = history.epochs.last() else { break };
            let learning_rate = self.optimizer.learning_rate();
            let mut end = EpochEnd { report, history, weights: &mut weights, learning_rate };
            if callback.on_epoch_end(&mut end)? == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        Ok(flow)
    }
}
