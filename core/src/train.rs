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
//! Checkpoints are written only after a completed epoch, so the last one
//! written stays as it was.
//!
//! [`Trainer::clip_grad_norm`] and [`Trainer::clip_grad_value`] clip the
//! gradients between the backward pass and the optimizer step, like
//! `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, NonFiniteAt, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::Optimizer;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::persist::{self, TrainingState};
use crate::tensor::Batch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Loss and accuracy of a network on a dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// The mean loss per sample.
    pub loss: f64,
    /// The fraction classified correctly, for losses where that means something.
    pub accuracy: Option<f64>,
}

/// What one epoch of training achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weights changing as it goes, as in Keras).
    pub train: Metrics,
    /// Loss and accuracy on the validation set after the epoch, if one was given.
    pub validation: Option<Metrics>,
    /// Wall-clock seconds the epoch took, validation included.
    pub seconds: f64,
}

/// Every epoch's report, in order: what `fit` returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One report per epoch.
    pub epochs: Vec<EpochReport>,
}

impl History {
    /// The last epoch's report.
    pub fn last(&self) -> Option<&EpochReport> {
        self.epochs.last()
    }

    /// Writes the loss and accuracy curves (train and validation) to an SVG file.
    pub fn plot_svg(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::plot::plot_history(self, path)
    }
}

/// How the learning rate changes from epoch to epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Schedule {
    /// The optimizer's learning rate throughout.
    #[default]
    Constant,
    /// Cosine annealing from the optimizer's learning rate down to `min_factor`
    /// times it over the run (Loshchilov & Hutter's SGDR without restarts).
    Cosine {
        /// The final learning rate as a fraction of the initial one.
        min_factor: f64,
    },
    /// Multiplies the learning rate by `factor` every `every` epochs.
    Step {
        /// Epochs between drops.
        every: usize,
        /// The multiplier at each drop.
        factor: f64,
    },
}

impl Schedule {
    /// The learning rate for 0-based `epoch` of `epochs`, from the initial `base`.
    pub fn learning_rate(self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine { min_factor } => {
                let progress = epoch as f64 / epochs.max(1) as f64;
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                base * (min_factor + (1.0 - min_factor) * cos)
            }
            Schedule::Step { every, factor } => base * factor.powi((epoch / every.max(1)) as i32),
        }
    }
}

/// Trains a network with an optimizer: `Trainer::new(Adam::new(1e-3)).epochs(5).fit(...)`.
///
/// Each epoch visits the samples in an order drawn afresh from the trainer's
/// generator (seeded by [`Trainer::seed`]), so an epoch's order depends only on
/// the generator's state, which checkpoints save.
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
}

/// The progress a resumed checkpoint hands to the next `fit`.
struct Resumed {
    epoch: usize,
    rng: SeededRng,
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

    /// Restores a checkpoint written by [`Trainer::checkpoint`]: `net`'s
    /// parameters, buffers and dropout generators, the optimizer's state and
    /// hyper-parameters (its base learning rate, before any schedule), the
    /// completed epochs and steps, and the shuffling generator. The next
    /// [`Trainer::fit`] continues with the following epoch up to
    /// [`Trainer::epochs`], and its history holds only the epochs it ran.
    ///
    /// Resuming gives exactly (bit for bit) the weights of an uninterrupted run
    /// when the trainer is configured as it was (batch size, shuffling, schedule,
    /// epochs for a cosine schedule) and fits the same data with the same loss.
    ///
    /// Errors: those of [`persist::load_checkpoint`] ([`Error::Io`],
    /// [`Error::Format`], [`Error::Mismatch`]), or [`Error::InvalidConfig`] if the
    /// checkpoint was made with another kind of optimizer. On any error `net`,
    /// the optimizer and the trainer are unchanged.
    pub fn resume<T, N>(&mut self, net: &mut N, path: impl AsRef<Path>) -> Result<()>
    where
        T: Float,
        N: Params<T>,
        O: Optimizer<T>,
    {
        let path = path.as_ref();
        let bytes = persist::read_file(path)?;
        self.resume_at(net, &bytes, path)
    }

    /// [`Trainer::resume`] from checkpoint bytes in memory ([`persist::checkpoint_to_bytes`]).
    pub fn resume_from_bytes<T, N>(&mut self, net: &mut N, bytes: &[u8]) -> Result<()>
    where
        T: Float,
        N: Params<T>,
        O: Optimizer<T>,
    {
        self.resume_at(net, bytes, Path::new("<memory>"))
    }

    fn resume_at<T, N>(&mut self, net: &mut N, bytes: &[u8], path: &Path) -> Result<()>
    where
        T: Float,
        N: Params<T>,
        O: Optimizer<T>,
    {
        let loaded = persist::read_checkpoint::<T, N>(net, bytes, path)?;
        let state = loaded.state;
        // The optimizer checks its state before taking it; the network part was checked already.
        self.optimizer.load_state(state.optimizer)?;
        loaded.restore.apply(net);
        self.epoch = state.epoch;
        self.step = state.step;
        self.resumed = Some(Resumed { epoch: state.epoch, rng: state.rng });
        Ok(())
    }

    /// Saves a checkpoint of the run after `epoch` epochs, with the optimizer at
    /// its base learning rate (the schedule is recomputed on resume).
    fn save_checkpoint<T, N>(&mut self, net: &mut N, rng: &SeededRng, base_lr: f64, path: &Path) -> Result<()>
    where
        T: Float,
        N: Params<T>,
        O: Optimizer<T>,
    {
        let current_lr = self.optimizer.learning_rate();
        self.optimizer.set_learning_rate(base_lr);
        let optimizer = self.optimizer.state();
        self.optimizer.set_learning_rate(current_lr);
        let mut settings = BTreeMap::from([
            ("epochs".to_string(), self.epochs.to_string()),
            ("batch_size".to_string(), self.batch_size.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("shuffle".to_string(), self.shuffle.to_string()),
            ("schedule".to_string(), format!("{:?}", self.schedule)),
        ]);
        // Clipping changes the weights a resumed run reaches: recorded when set.
        for (key, limit) in [("clip_grad_norm", self.clip_norm), ("clip_grad_value", self.clip_value)] {
            if let Some(limit) = limit {
                settings.insert(key.to_string(), format!("{limit:?}"));
            }
        }
        let state = TrainingState {
            epoch: self.epoch,
            step: self.step,
            rng: rng.clone(),
            optimizer: optimizer?,
            settings,
        };
        persist::save_checkpoint(net, &state, path)
    }

    /// Trains `net` on `train`, evaluating on `validation` after each epoch.
    ///
    /// A fresh trainer runs epochs 1 to [`Trainer::epochs`]; after
    /// [`Trainer::resume`] it continues from the checkpoint's epoch. With
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
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig("batch size must be at least 1".into()));
        }
        for (what, limit) in [("clip_grad_norm", self.clip_norm), ("clip_grad_value", self.clip_value)] {
            if let Some(limit) = limit.filter(|l| l.is_nan() || *l <= 0.0) {
                return Err(Error::InvalidConfig(format!("{what} must be positive, got {limit}")));
            }
        }
        loss.validate(train.targets())?;
        if let Some(v) = validation {
            loss.validate(v.targets())?;
        }
        if self.checkpoint.is_some() {
            // Fail now rather than after the first epoch.
            self.optimizer.state()?;
        }
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
        let (first_epoch, mut rng) = match self.resumed.take() {
            // Saturating: a checkpoint's epoch is bounded by persist, but a count never panics.
            Some(r) => (r.epoch.saturating_add(1), r.rng),
            None => {
                self.epoch = 0;
                self.step = 0;
                (1, seeded_rng(self.seed))
            }
        };
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut batch = MiniBatch::new();
        let mut trace = N::Trace::default();
        let mut grads = net.zero_gradients();
        let mut d_out = Batch::<T, OUT>::zeros(0);
        let mut history = History::default();
        let mut scratch = Vec::new();
        let batches = train.len().div_ceil(self.batch_size);

        for epoch in first_epoch..=self.epochs {
            let start = Instant::now();
            self.optimizer.set_learning_rate(self.schedule.learning_rate(base_lr, epoch - 1, self.epochs));
            if self.shuffle {
                // From the identity each epoch, so the order depends on the generator alone.
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut rng);
            }
            let bar = self.progress_bar(batches as u64, epoch);
            let (mut loss_sum, mut right, mut judged) = (0.0, 0usize, 0usize);
            for (b, indices) in order.chunks(self.batch_size).enumerate() {
                let stop = |value: f64, at: NonFiniteAt| {
                    bar.abandon();
                    Error::NonFinite { epoch, batch: b, value, at }
                };
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
                if self.clip_norm.is_some() || self.clip_value.is_some() {
                    let value = self.clip_value;
                    let scale = match self.clip_norm {
                        Some(max) => norm_scale(clipped_norm::<T, N>(&grads, value), max),
                        None => 1.0,
                    };
                    let mut clipped = Clipped { net: &mut *net, value, scale, scratch: &mut scratch };
                    self.optimizer.step(&mut clipped, &grads)?;
                } else {
                    self.optimizer.step(net, &grads)?;
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
            let report = EpochReport {
                epoch,
                train: train_metrics,
                validation,
                seconds: start.elapsed().as_secs_f64(),
            };
            if self.verbose {
                eprintln!("{}", format_report(&report, self.epochs));
            }
            history.epochs.push(report);
            self.epoch = epoch;
            // Only after a completed epoch: a failed one leaves the last checkpoint as it was.
            if let Some(path) = self.checkpoint.clone() {
                self.save_checkpoint(net, &rng, base_lr, &path)?;
            }
        }
        Ok(history)
    }

    fn progress_bar(&self, batches: u64, epoch: usize) -> ProgressBar {
        if !self.verbose {
            return ProgressBar::hidden();
        }
        // stderr() draws nothing when stderr is not a terminal (CI, pipes, tests).
        let bar = ProgressBar::with_draw_target(Some(batches), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        bar
    }
}

/// The position and value of the first NaN or infinity in `values`.
fn first_non_finite<T: Float>(values: &[T]) -> Option<(usize, f64)> {
    values.iter().position(|v| !v.is_finite()).and_then(|i| values.get(i).map(|v| (i, v.as_f64())))
}

/// The first layer output in `trace` holding a NaN or infinity: the layer's
/// name, the position in its output, the output's length, and the value.
fn first_non_finite_output<T, N, const IN: usize, const OUT: usize>(
    trace: &N::Trace,
) -> Option<(String, usize, usize, f64)>
where
    T: Float,
    N: Network<T, IN, OUT>,
{
    let mut found = None;
    N::visit_outputs(trace, &mut |name, values| {
        if found.is_none() {
            if let Some((i, value)) = first_non_finite(values) {
                found = Some((name.to_string(), i, values.len(), value));
            }
        }
    });
    found
}

/// The first parameter (by visiting index) whose gradient holds a NaN or
/// infinity, the element's position in it, and its value.
fn first_non_finite_grad<T: Float, N: Params<T>>(grads: &N::Gradients) -> Option<(usize, usize, f64)> {
    let (mut param, mut found) = (0, None);
    N::visit_grads(grads, &mut |g| {
        if found.is_none() {
            if let Some((i, value)) = first_non_finite(g) {
                found = Some((param, i, value));
            }
        }
        param += 1;
    });
    found
}

/// The `state_dict` name of the `index`-th parameter in visiting order.
fn param_name<T: Float, N: Params<T>>(net: &N, index: usize) -> String {
    let (mut k, mut name) = (0, None);
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        if k == index {
            name = Some(p.name.to_string());
        }
        k += 1;
    });
    name.unwrap_or_else(|| format!("parameter {index}"))
}

// ---------------------------------------------------------------------------
// Gradient clipping

/// `g` clipped to `[-max, max]`; NaN stays NaN, as with `torch.clamp`.
fn clip_to<T: Float>(g: T, max: T) -> T {
    if g > max {
        max
    } else if g < -max {
        -max
    } else {
        g
    }
}

/// The factor `torch.nn.utils.clip_grad_norm_` scales gradients of global
/// norm `norm` by: `max_norm / (norm + 1e-6)`, at most 1. As in PyTorch, an
/// infinite norm gives 0 and a NaN norm gives NaN (every gradient becomes NaN).
fn norm_scale(norm: f64, max_norm: f64) -> f64 {
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 || scale.is_nan() {
        scale
    } else {
        1.0
    }
}

/// The global L2 norm of the gradients, after clipping their values to
/// `value` if given, accumulated in f64.
fn clipped_norm<T: Float, N: Params<T>>(grads: &N::Gradients, value: Option<f64>) -> f64 {
    let mut sum = 0.0;
    N::visit_grads(grads, &mut |g| {
        sum += match value {
            Some(v) => {
                let v = T::cast(v);
                g.iter().map(|&x| clip_to(x, v).as_f64().powi(2)).sum::<f64>()
            }
            None => g.iter().map(|x| x.as_f64().powi(2)).sum::<f64>(),
        };
    });
    sum.sqrt()
}

/// The global L2 norm of gradient slices taken as one vector (accumulated in
/// f64), as `torch.nn.utils.clip_grad_norm_` computes it.
pub fn grad_norm<T: Float>(grads: &[&[T]]) -> f64 {
    grads.iter().flat_map(|g| g.iter()).map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt()
}

/// Scales gradient slices in place so their global L2 norm is at most
/// `max_norm`, exactly as `torch.nn.utils.clip_grad_norm_` does (factor
/// `max_norm / (norm + 1e-6)` when below 1); returns the norm before clipping.
/// [`Trainer::clip_grad_norm`] applies the same rule to a network's gradients.
pub fn clip_grad_norm<T: Float>(grads: &mut [&mut [T]], max_norm: f64) -> f64 {
    let norm = grads.iter().flat_map(|g| g.iter()).map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt();
    let scale = norm_scale(norm, max_norm);
    if scale < 1.0 || scale.is_nan() {
        let scale = T::cast(scale);
        grads.iter_mut().flat_map(|g| g.iter_mut()).for_each(|x| *x *= scale);
    }
    norm
}

/// Clips every element of the gradient slices to `[-max_value, max_value]` in
/// place, as `torch.nn.utils.clip_grad_value_` does. NaN stays NaN.
pub fn clip_grad_value<T: Float>(grads: &mut [&mut [T]], max_value: f64) {
    let max = T::cast(max_value);
    grads.iter_mut().flat_map(|g| g.iter_mut()).for_each(|x| *x = clip_to(*x, max));
}

/// A network seen by the optimizer with clipped gradients: every gradient the
/// optimizer visits is clipped to `value` (if given), then scaled by `scale`,
/// into `scratch`. The network's gradient structure itself is not changed
/// ([`Params`] visits gradients read-only), so this costs a copy of each
/// gradient slice, reusing one buffer.
struct Clipped<'a, N, T> {
    net: &'a mut N,
    value: Option<f64>,
    scale: f64,
    scratch: &'a mut Vec<T>,
}

impl<T: Float, N: Params<T>> Params<T> for Clipped<'_, N, T> {
    type Gradients = N::Gradients;
    const PARAM_COUNT: usize = N::PARAM_COUNT;

    fn zero_gradients(&self) -> Self::Gradients {
        self.net.zero_gradients()
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_params(path, f)
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_params_mut(path, f)
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let (value, scale, scratch) = (self.value.map(T::cast), T::cast(self.scale), &mut *self.scratch);
        self.net.visit_params_with_grads(grads, path, &mut |p, g| {
            scratch.clear();
            match value {
                Some(v) => scratch.extend(g.iter().map(|&x| clip_to(x, v) * scale)),
                None => scratch.extend(g.iter().map(|&x| x * scale)),
            }
            f(p, scratch)
        })
    }

    /// Unclipped: an associated function cannot see the clipping settings.
    /// Optimizers read gradients through [`Params::visit_params_with_grads`].
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        N::visit_grads(grads, f)
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_buffers(path, f)
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_buffers_mut(path, f)
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.net.visit_rngs(path, f)
    }
}

/// One line per epoch, Keras style.
pub fn format_report(r: &EpochReport, epochs: usize) -> String {
    let mut line = format!("epoch {}/{epochs}: loss {:.4}", r.epoch, r.train.loss);
    if let Some(a) = r.train.accuracy {
        line += &format!(", accuracy {:.2}%", 100.0 * a);
    }
    if let Some(v) = r.validation {
        line += &format!(" | val loss {:.4}", v.loss);
        if let Some(a) = v.accuracy {
            line += &format!(", val accuracy {:.2}%", 100.0 * a);
        }
    }
    line + &format!(" ({:.1} s)", r.seconds)
}

/// The loss and accuracy of `net` on `data`, computed in batches of `batch_size`.
pub fn evaluate<T, N, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN, L::Target>,
    batch_size: usize,
) -> Result<Metrics>
where
    T: Float,
    N: Network<T, IN, OUT>,
    L: Loss<T, OUT>,
{
    if batch_size == 0 {
        return Err(Error::InvalidConfig("batch size must be at least 1".into()));
    }
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut batch = MiniBatch::new();
    let (mut loss_sum, mut right, mut judged) = (0.0, 0usize, 0usize);
    for chunk in indices.chunks(batch_size) {
        batch.fill_from(data, chunk);
        let out = net.forward(&batch.features);
        loss_sum += loss.loss(&out, &batch.targets)?.as_f64() * chunk.len() as f64;
        if let Some((r, n)) = loss.correct(&out, &batch.targets) {
            right += r;
            judged += n;
        }
    }
    Ok(Metrics {
        loss: loss_sum / data.len().max(1) as f64,
        accuracy: (judged > 0).then(|| right as f64 / judged as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layers::Dense;
    use crate::optim::Sgd;

    #[test]
    fn clipping_slices_follows_pytorch() {
        let (mut a, mut b) = ([3.0f64, 0.0], [4.0f64]);
        let norm = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0);
        assert_eq!(norm, 5.0);
        let scale = 1.0 / (5.0 + 1e-6);
        assert_eq!((a, b), ([3.0 * scale, 0.0], [4.0 * scale]));
        // Below the threshold nothing changes; the norm is still reported.
        let mut c = [0.3f32, -0.4];
        assert!((clip_grad_norm(&mut [&mut c[..]], 1.0) - 0.5).abs() < 1e-7);
        assert_eq!(c, [0.3, -0.4]);
        assert_eq!(grad_norm(&[&[3.0f64][..], &[4.0][..]]), 5.0);
        // An infinite norm zeroes the finite values, as torch does.
        let mut d = [f64::INFINITY, 2.0];
        clip_grad_norm(&mut [&mut d[..]], 1.0);
        assert!(d[0].is_nan() && d[1] == 0.0);

        let mut v = [-3.0f32, 0.5, 2.0, f32::NAN, f32::NEG_INFINITY];
        clip_grad_value(&mut [&mut v[..]], 1.0);
        assert_eq!(v[..3], [-1.0, 0.5, 1.0]);
        assert!(v[3].is_nan());
        assert_eq!(v[4], -1.0);
    }

    #[test]
    fn norm_scale_is_torchs_clip_coefficient() {
        assert_eq!(norm_scale(0.5, 1.0), 1.0);
        assert_eq!(norm_scale(4.0, 2.0), 2.0 / (4.0 + 1e-6));
        assert_eq!(norm_scale(f64::INFINITY, 2.0), 0.0);
        assert!(norm_scale(f64::NAN, 2.0).is_nan());
        assert_eq!(norm_scale(1e9, f64::INFINITY), 1.0);
    }

    /// One SGD step (lr 1) on a 2→1 dense layer with the given weight
    /// gradient, through the clipping view: the weight change is minus the clipped gradient.
    fn clipped_step(grad: [f64; 2], value: Option<f64>, max_norm: Option<f64>) -> Vec<f64> {
        let mut layer = Dense::<f64, 2, 1>::zeros(true);
        let mut grads = layer.zero_gradients();
        grads.weight.as_mut_slice().copy_from_slice(&grad);
        let scale =
            max_norm.map_or(1.0, |m| norm_scale(clipped_norm::<f64, Dense<f64, 2, 1>>(&grads, value), m));
        let mut scratch = Vec::new();
        let mut view = Clipped { net: &mut layer, value, scale, scratch: &mut scratch };
        let mut sgd = Sgd::new(1.0);
        sgd.step(&mut view, &grads).unwrap();
        assert_eq!(grads.weight.as_slice(), &grad, "the gradients themselves are untouched");
        let mut w = Vec::new();
        layer.visit_params(&ParamPath::ROOT, &mut |p| w.extend(p.value.iter().map(|v| -v)));
        w
    }

    #[test]
    fn the_optimizer_sees_clipped_gradients() {
        assert_eq!(clipped_step([3.0, 4.0], None, None), [3.0, 4.0, 0.0]);
        let s = 1.0 / (5.0 + 1e-6);
        assert_eq!(clipped_step([3.0, 4.0], None, Some(1.0)), [3.0 * s, 4.0 * s, 0.0]);
        assert_eq!(clipped_step([3.0, -4.0], Some(2.0), None), [2.0, -2.0, 0.0]);
        // Values first, then the norm of the clipped values (√8).
        let s = 1.0 / (8f64.sqrt() + 1e-6);
        let both = clipped_step([3.0, -4.0], Some(2.0), Some(1.0));
        assert_eq!(both, [2.0 * s, -2.0 * s, 0.0]);
    }

    #[test]
    fn schedules_by_hand() {
        assert_eq!(Schedule::Constant.learning_rate(0.1, 5, 10), 0.1);
        let cos = Schedule::Cosine { min_factor: 0.0 };
        assert_eq!(cos.learning_rate(0.1, 0, 10), 0.1);
        assert!((cos.learning_rate(0.1, 5, 10) - 0.05).abs() < 1e-15);
        let floor = Schedule::Cosine { min_factor: 0.1 };
        assert!((floor.learning_rate(1.0, 10, 10) - 0.1).abs() < 1e-15);
        let step = Schedule::Step { every: 3, factor: 0.5 };
        assert_eq!(step.learning_rate(1.0, 2, 10), 1.0);
        assert_eq!(step.learning_rate(1.0, 3, 10), 0.5);
        assert_eq!(step.learning_rate(1.0, 7, 10), 0.25);
    }
}
