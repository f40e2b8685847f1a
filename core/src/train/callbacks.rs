//! Callbacks at the end of each epoch ([`Callback`], [`Trainer::callback`],
//! [`Trainer::on_epoch_end`]) and the built-ins: [`EarlyStopping`] and [`SaveBest`].
//!
//! A callback sees the epoch's report, the history of the current `fit` and the network's
//! weights through [`Weights`] (copy, restore, save: whatever the float type), and answers
//! [`Flow::Stop`] to end training after this epoch.

use super::Trainer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::history::{EpochReport, History};
use crate::params::{ParamPath, Params};
use crate::persist;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A metric of an epoch: the training or validation loss or accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// The mean training loss of the epoch.
    Loss,
    /// The training accuracy of the epoch.
    Accuracy,
    /// The loss on the validation data after the epoch.
    ValLoss,
    /// The accuracy on the validation data after the epoch.
    ValAccuracy,
}

impl Monitor {
    /// Whether a higher value is better (accuracies) or a lower one (losses).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Monitor::Accuracy | Monitor::ValAccuracy)
    }

    /// The metric's value in `report`, or an error saying why there is none (no validation
    /// data, or a loss with no accuracy).
    pub fn value(self, report: &EpochReport) -> Result<f64> {
        let metrics = match self {
            Monitor::Loss | Monitor::Accuracy => Some(report.train),
            Monitor::ValLoss | Monitor::ValAccuracy => report.validation,
        };
        let value = metrics.and_then(|m| match self {
            Monitor::Loss | Monitor::ValLoss => Some(m.loss),
            Monitor::Accuracy | Monitor::ValAccuracy => m.accuracy,
        });
        value.ok_or_else(|| {
            let why = if metrics.is_none() {
                "fit was given no validation data"
            } else {
                "the loss reports no accuracy"
            };
            Error::InvalidConfig(format!("cannot monitor {self:?}: {why}"))
        })
    }

    /// Whether `value` improves on `best` by more than `min_delta`.
    fn improves(self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        match best {
            None => true,
            Some(best) if self.higher_is_better() => value - min_delta > best,
            Some(best) => value + min_delta < best,
        }
    }
}

/// What training does after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next epoch.
    Continue,
    /// End training after this epoch: `fit` returns the history so far.
    Stop,
}

/// A copy of a network's parameters and buffers ([`Weights::snapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot(Vec<f64>);

impl Snapshot {
    /// Every parameter, then every buffer, in visiting order.
    pub fn values(&self) -> &[f64] {
        &self.0
    }
}

/// The network a callback may copy, restore and save, whatever its type and float type.
pub trait Weights {
    /// Every parameter and buffer, in visiting order (f32 values are held exactly).
    fn snapshot(&self) -> Snapshot;
    /// Writes back a [`Weights::snapshot`] of the same network.
    fn restore(&mut self, snapshot: &Snapshot);
    /// Saves the weights as [`persist::save`] does (atomically).
    fn save(&self, path: &Path) -> Result<()>;
}

/// [`Weights`] over a network of type `N` in `T`.
pub(super) struct NetWeights<'a, T, N>(pub(super) &'a mut N, pub(super) PhantomData<T>);

impl<T: Float, N: Params<T>> Weights for NetWeights<'_, T, N> {
    fn snapshot(&self) -> Snapshot {
        let mut all = Vec::new();
        self.0.visit_params(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| v.as_f64())));
        self.0.visit_buffers(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| v.as_f64())));
        Snapshot(all)
    }

    fn restore(&mut self, snapshot: &Snapshot) {
        let mut values = snapshot.0.iter();
        let mut write = |p: crate::params::ParamMut<'_, T>| {
            for (v, s) in p.value.iter_mut().zip(&mut values) {
                *v = T::cast(*s);
            }
        };
        self.0.visit_params_mut(&ParamPath::ROOT, &mut write);
        self.0.visit_buffers_mut(&ParamPath::ROOT, &mut write);
    }

    fn save(&self, path: &Path) -> Result<()> {
        persist::save(&*self.0, path)
    }
}

/// What a callback sees at the end of an epoch.
pub struct EpochEnd<'a> {
    /// The epoch's report (also the last of `history`).
    pub report: &'a EpochReport,
    /// The epochs of the current `fit` so far.
    pub history: &'a History,
    /// The network being trained.
    pub weights: &'a mut dyn Weights,
    /// The optimizer's learning rate at the epoch's last step.
    pub learning_rate: f64,
}

/// A hook the trainer calls at the start of each `fit` and the end of each epoch and of
/// training ([`Trainer::callback`]).
pub trait Callback {
    /// Called when `fit` starts, e.g. to reset counters (nothing by default).
    fn on_train_begin(&mut self) {}
    /// Called after each epoch (validation and checkpoint included); [`Flow::Stop`] ends training.
    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<Flow>;
    /// Called when training ends, stopped or not, without error (nothing by default).
    fn on_train_end(&mut self, weights: &mut dyn Weights) -> Result<()> {
        let _ = weights;
        Ok(())
    }
}

/// A closure as a [`Callback`] ([`Trainer::on_epoch_end`]).
struct OnEpochEnd<F>(F);

impl<F: FnMut(&mut EpochEnd<'_>) -> Flow> Callback for OnEpochEnd<F> {
    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<Flow> {
        Ok((self.0)(end))
    }
}

impl<O> Trainer<O> {
    /// Adds a callback; callbacks run in the order added, and training stops after an epoch
    /// if any of them says [`Flow::Stop`]. They stay with the trainer across calls to `fit`.
    pub fn callback(mut self, callback: impl Callback + Send + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Adds a closure called at the end of each epoch (a [`Callback`]).
    ///
    /// ```
    /// use staticnet::prelude::*;
    /// use staticnet::train::Flow;
    /// // Stop once the training loss is below 0.1.
    /// let trainer = Trainer::new(Adam::<f32>::new(1e-3)).on_epoch_end(|end| {
    ///     if end.report.train.loss < 0.1 { Flow::Stop } else { Flow::Continue }
    /// });
    /// # let _ = trainer;
    /// ```
    pub fn on_epoch_end(self, f: impl FnMut(&mut EpochEnd<'_>) -> Flow + Send + 'static) -> Self {
        self.callback(OnEpochEnd(f))
    }
}

/// Stops training when a metric has not improved for `patience` epochs, as Keras'
/// `EarlyStopping`; with [`EarlyStopping::restore_best_weights`], the network ends training
/// with the weights of its best epoch.
///
/// ```
/// use staticnet::prelude::*;
/// use staticnet::train::{EarlyStopping, Monitor};
/// let stop = EarlyStopping::new(Monitor::ValLoss).patience(3).min_delta(1e-4).restore_best_weights(true);
/// let trainer = Trainer::new(Adam::<f32>::new(1e-3)).epochs(100).callback(stop);
/// # let _ = trainer;
/// ```
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    monitor: Monitor,
    min_delta: f64,
    patience: usize,
    restore: bool,
    best: Option<f64>,
    best_epoch: Option<usize>,
    best_weights: Option<Snapshot>,
    wait: usize,
    stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor`, with no minimum change, a patience of 0 epochs and no restoring.
    pub fn new(monitor: Monitor) -> Self {
        EarlyStopping {
            monitor,
            min_delta: 0.0,
            patience: 0,
            restore: false,
            best: None,
            best_epoch: None,
            best_weights: None,
            wait: 0,
            stopped_epoch: None,
        }
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// How many epochs in a row without improvement stop training (Keras' meaning: 1 stops at
    /// the first epoch that does not improve; 0 acts as 1).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether to end training with the weights (and buffers) of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore = restore;
        self
    }

    /// The best epoch of the last `fit` and its value.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best_epoch.zip(self.best)
    }

    /// The epoch after which the last `fit` stopped, if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self) {
        (self.best, self.best_epoch, self.best_weights, self.wait, self.stopped_epoch) =
            (None, None, None, 0, None);
    }

    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<Flow> {
        let value = self.monitor.value(end.report)?;
        if self.monitor.improves(value, self.best, self.min_delta) {
            (self.best, self.best_epoch, self.wait) = (Some(value), Some(end.report.epoch), 0);
            if self.restore {
                self.best_weights = Some(end.weights.snapshot());
            }
            return Ok(Flow::Continue);
        }
        self.wait += 1;
        // Keras: `patience` epochs in a row without improvement stop (patience 0 acts as 1).
        if self.wait >= self.patience.max(1) {
            self.stopped_epoch = Some(end.report.epoch);
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    fn on_train_end(&mut self, weights: &mut dyn Weights) -> Result<()> {
        if let Some(best) = self.best_weights.take() {
            weights.restore(&best);
        }
        Ok(())
    }
}

/// Saves the network's weights to a file whenever a metric improves on its best value, as
/// Keras' `ModelCheckpoint(save_best_only=True)`: the file always holds the best epoch's
/// weights, written atomically ([`persist::save`]), loadable with the network's `load`.
#[derive(Clone, Debug)]
pub struct SaveBest {
    path: PathBuf,
    monitor: Monitor,
    best: Option<f64>,
    saved: Vec<usize>,
}

impl SaveBest {
    /// Saves to `path` each time `monitor` improves.
    pub fn new(path: impl Into<PathBuf>, monitor: Monitor) -> Self {
        SaveBest { path: path.into(), monitor, best: None, saved: Vec::new() }
    }

    /// The epochs whose weights were saved, in order (the last is in the file).
    pub fn saved_epochs(&self) -> &[usize] {
        &self.saved
    }
}

impl Callback for SaveBest {
    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<Flow> {
        let value = self.monitor.value(end.report)?;
        if self.monitor.improves(value, self.best, 0.0) {
            end.weights.save(&self.path)?;
            self.best = Some(value);
            self.saved.push(end.report.epoch);
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Metrics;

    /// Weights that are just the epoch they were taken at, restored by number.
    struct Epochs {
        now: f64,
        saved: std::cell::RefCell<Vec<PathBuf>>,
    }

    impl Weights for Epochs {
        fn snapshot(&self) -> Snapshot {
            Snapshot(vec![self.now])
        }
        fn restore(&mut self, snapshot: &Snapshot) {
            self.now = snapshot.0[0];
        }
        fn save(&self, path: &Path) -> Result<()> {
            self.saved.borrow_mut().push(path.to_path_buf());
            Ok(())
        }
    }

    /// Feeds `values` of `monitor` (val loss, or val accuracy) epoch by epoch until a callback stops.
    fn drive(callback: &mut dyn Callback, values: &[f64]) -> (usize, Epochs) {
        let mut history = History::default();
        let mut weights = Epochs { now: 0.0, saved: Default::default() };
        callback.on_train_begin();
        let mut last = 0;
        for (i, &v) in values.iter().enumerate() {
            let metrics = Metrics { loss: v, accuracy: Some(v) };
            history.epochs.push(EpochReport {
                epoch: i + 1,
                train: metrics,
                validation: Some(metrics),
                seconds: 0.0,
            });
            weights.now = (i + 1) as f64;
            last = i + 1;
            let report = history.epochs.last().unwrap().clone();
            let mut end =
                EpochEnd { report: &report, history: &history, weights: &mut weights, learning_rate: 0.1 };
            if callback.on_epoch_end(&mut end).unwrap() == Flow::Stop {
                break;
            }
        }
        callback.on_train_end(&mut weights).unwrap();
        (last, weights)
    }

    #[test]
    fn early_stopping_waits_patience_epochs_and_restores_the_best() {
        let losses = [1.0, 0.8, 0.7, 0.75, 0.69995, 0.72, 0.6, 0.5];
        // Patience 1 (Keras): the first epoch without improvement, 4, stops.
        let mut stop = EarlyStopping::new(Monitor::ValLoss).patience(1).restore_best_weights(true);
        let (last, weights) = drive(&mut stop, &losses);
        assert_eq!((last, stop.stopped_epoch(), stop.best()), (4, Some(4), Some((3, 0.7))));
        assert_eq!(weights.now, 3.0, "the best epoch's weights");
        // Patience 2: epochs 4 and 5 do not improve on 0.7 by min_delta 1e-3, so 5 stops.
        let mut stop =
            EarlyStopping::new(Monitor::ValLoss).patience(2).min_delta(1e-3).restore_best_weights(true);
        let (last, weights) = drive(&mut stop, &losses);
        assert_eq!((last, stop.stopped_epoch(), stop.best(), weights.now), (5, Some(5), Some((3, 0.7)), 3.0));
        // Without min_delta epoch 5 improves, and the run goes to its end; nothing to restore.
        let mut stop = EarlyStopping::new(Monitor::ValLoss).patience(2);
        let (last, weights) = drive(&mut stop, &losses);
        assert_eq!((last, stop.stopped_epoch(), stop.best(), weights.now), (8, None, Some((8, 0.5)), 8.0));
        // Patience 0 on accuracy (higher is better), and a second fit starts afresh.
        let mut stop = EarlyStopping::new(Monitor::ValAccuracy).restore_best_weights(true);
        assert_eq!(drive(&mut stop, &[0.5, 0.6, 0.6]).0, 3);
        let (last, weights) = drive(&mut stop, &[0.1, 0.2, 0.3, 0.25]);
        assert_eq!((last, weights.now, stop.best()), (4, 3.0, Some((3, 0.3))));
        // Never worse: runs to the end and keeps the last (best) weights.
        let mut stop = EarlyStopping::new(Monitor::ValLoss).patience(2).restore_best_weights(true);
        assert_eq!(drive(&mut stop, &[3.0, 2.0, 1.0]).1.now, 3.0);
    }

    #[test]
    fn save_best_saves_on_improvement_only() {
        let mut best = SaveBest::new("best.safetensors", Monitor::ValLoss);
        let (_, weights) = drive(&mut best, &[1.0, 0.8, 0.9, 0.8, 0.5]);
        assert_eq!(best.saved_epochs(), [1, 2, 5]);
        assert_eq!(weights.saved.borrow().len(), 3);
    }

    #[test]
    fn a_metric_that_is_not_there_is_an_error() {
        let report = EpochReport {
            epoch: 1,
            train: Metrics { loss: 1.0, accuracy: None },
            validation: None,
            seconds: 0.0,
        };
        let no_val = Monitor::ValLoss.value(&report).unwrap_err().to_string();
        assert_eq!(no_val, "invalid setting: cannot monitor ValLoss: fit was given no validation data");
        let no_acc = Monitor::Accuracy.value(&report).unwrap_err().to_string();
        assert_eq!(no_acc, "invalid setting: cannot monitor Accuracy: the loss reports no accuracy");
    }
}
