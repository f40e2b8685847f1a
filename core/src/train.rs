//! Training in the spirit of Keras' `fit`: epochs of shuffled mini-batches,
//! per-epoch loss and accuracy, validation, a progress bar and a history.

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::seeded_rng;
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::Optimizer;
use crate::tensor::Batch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
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
pub struct Trainer<O> {
    optimizer: O,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    verbose: bool,
    schedule: Schedule,
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

    /// The optimizer, e.g. to read its learning rate.
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, e.g. to change the learning rate between calls to `fit`.
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// Trains `net` on `train`, evaluating on `validation` after each epoch.
    ///
    /// Errors: a zero batch size, targets the loss rejects (labels out of range,
    /// mismatched lengths), or a loss that turns NaN/Inf.
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
        let mut rng = seeded_rng(self.seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut batch = MiniBatch::new();
        let mut trace = N::Trace::default();
        let mut grads = net.zero_gradients();
        let mut d_out = Batch::<T, OUT>::zeros(0);
        let mut history = History::default();
        let batches = train.len().div_ceil(self.batch_size);
        let base_lr = self.optimizer.learning_rate();

        for epoch in 1..=self.epochs {
            let start = Instant::now();
            self.optimizer.set_learning_rate(self.schedule.learning_rate(base_lr, epoch - 1, self.epochs));
            if self.shuffle {
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
