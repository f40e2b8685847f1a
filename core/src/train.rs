//! Training in the spirit of Keras' `fit`: epochs of shuffled mini-batches,
//! per-epoch loss and accuracy, validation, a progress bar and a history.
//!
//! With [`Trainer::checkpoint`] the trainer saves a checkpoint (network,
//! optimizer state, epoch, step and every generator) after each epoch;
//! [`Trainer::resume`] restores one, and the next [`Trainer::fit`] continues
//! with the following epoch, ending with exactly the weights of an
//! uninterrupted run.

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::Optimizer;
use crate::params::Params;
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
    /// A trainer with 10 epochs, batches of 32, seed 0, shuffling, and per-epoch lines on stderr.
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
        let settings = BTreeMap::from([
            ("epochs".to_string(), self.epochs.to_string()),
            ("batch_size".to_string(), self.batch_size.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("shuffle".to_string(), self.shuffle.to_string()),
            ("schedule".to_string(), format!("{:?}", self.schedule)),
        ]);
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
    /// Errors: a zero batch size, targets the loss rejects (labels out of range,
    /// mismatched lengths), a loss that turns NaN/Inf, or a checkpoint that
    /// cannot be written.
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
        loss.validate(train.targets())?;
        if let Some(v) = validation {
            loss.validate(v.targets())?;
        }
        if self.checkpoint.is_some() {
            // Fail now rather than after the first epoch.
            self.optimizer.state()?;
        }
        let (first_epoch, mut rng) = match self.resumed.take() {
            Some(r) => (r.epoch + 1, r.rng),
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
        let batches = train.len().div_ceil(self.batch_size);
        let base_lr = self.optimizer.learning_rate();

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
                batch.fill_from(train, indices);
                let out = net.forward_train(&batch.features, &mut trace);
                let value = loss.loss_and_grad(out, &batch.targets, &mut d_out)?.as_f64();
                if !value.is_finite() {
                    bar.abandon();
                    return Err(Error::NonFinite { epoch, batch: b, value });
                }
                if let Some((r, n)) = loss.correct(out, &batch.targets) {
                    right += r;
                    judged += n;
                }
                net.backward(&batch.features, &mut trace, &d_out, &mut grads, None);
                self.optimizer.step(net, &grads)?;
                self.step += 1;
                loss_sum += value * indices.len() as f64;
                bar.inc(1);
                if b % 16 == 0 {
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
            if let Some(path) = self.checkpoint.clone() {
                self.save_checkpoint(net, &rng, base_lr, &path)?;
            }
        }
        // Leave the optimizer as it came, so a second `fit` starts from the same rate.
        self.optimizer.set_learning_rate(base_lr);
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
