//! [`Plateau`]: lowering the learning rate when a metric stops improving, as PyTorch's
//! `ReduceLROnPlateau` (relative threshold), and the state the trainer keeps for it.

use super::callbacks::Monitor;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The settings of [`super::Schedule::ReduceOnPlateau`], PyTorch's defaults from
/// [`Plateau::new`]: after `patience` epochs in a row without improving `monitor` by more than
/// `threshold` (relative), the rate is multiplied by `factor` (not below `min_lr`), then
/// `cooldown` epochs pass before counting again. Whether higher is better comes from the monitor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    /// The metric watched at the end of each epoch.
    pub monitor: Monitor,
    /// The multiplier of each reduction, in [0, 1) (PyTorch: 0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated before reducing (PyTorch: 10).
    pub patience: usize,
    /// The relative improvement that counts (PyTorch: 1e-4).
    pub threshold: f64,
    /// Epochs after a reduction before bad epochs count again (PyTorch: 0).
    pub cooldown: usize,
    /// The lowest rate (PyTorch: 0).
    pub min_lr: f64,
}

impl Plateau {
    /// PyTorch's defaults on `monitor`: factor 0.1, patience 10, threshold 1e-4, no cooldown, no floor.
    pub fn new(monitor: Monitor) -> Self {
        Plateau { monitor, factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, min_lr: 0.0 }
    }

    /// The same with `patience`.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The same with `factor`.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    pub(super) fn check(self) -> Result<()> {
        let bad = |what: &str, v: f64, rule: &str| {
            Err(Error::InvalidConfig(format!("ReduceOnPlateau: {what} must be {rule}, got {v}")))
        };
        if !(0.0..1.0).contains(&self.factor) {
            return bad("factor", self.factor, "in [0, 1)");
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return bad("threshold", self.threshold, "finite and non-negative");
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return bad("min_lr", self.min_lr, "finite and non-negative");
        }
        Ok(())
    }
}

/// Where a [`Plateau`] stands: the rate it set, the best value seen, and its counters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauState {
    /// The learning rate now, `None` before the first reduction (the optimizer's own).
    pub lr: Option<f64>,
    /// The best value of the metric so far (±∞ before the first epoch).
    pub best: f64,
    /// Epochs in a row without improvement.
    pub bad_epochs: usize,
    /// Epochs of cooldown left.
    pub cooldown_left: usize,
}

impl PlateauState {
    /// The state before the first epoch.
    pub fn new(plateau: &Plateau) -> Self {
        let best = if plateau.monitor.higher_is_better() { f64::NEG_INFINITY } else { f64::INFINITY };
        PlateauState { lr: None, best, bad_epochs: 0, cooldown_left: 0 }
    }

    /// Takes the end of an epoch whose metric was `value`, with `lr` the rate it ran at; returns
    /// the rate of the next epoch (`ReduceLROnPlateau.step(value)`).
    pub fn observe(&mut self, plateau: &Plateau, value: f64, lr: f64) -> f64 {
        let better = if plateau.monitor.higher_is_better() {
            value > self.best * (1.0 + plateau.threshold)
        } else {
            value < self.best * (1.0 - plateau.threshold)
        };
        if better {
            self.best = value;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > plateau.patience {
            let new = (lr * plateau.factor).max(plateau.min_lr);
            // PyTorch's eps: changes smaller than 1e-8 are not made.
            if lr - new > 1e-8 {
                self.lr = Some(new);
            }
            self.cooldown_left = plateau.cooldown;
            self.bad_epochs = 0;
        }
        self.lr.unwrap_or(lr)
    }

    /// The state as checkpoint settings (`plateau.lr`…), every number exactly.
    pub(super) fn to_settings(self, settings: &mut BTreeMap<String, String>) {
        if let Some(lr) = self.lr {
            settings.insert("plateau.lr".into(), format!("{lr:?}"));
        }
        settings.insert("plateau.best".into(), format!("{:?}", self.best));
        settings.insert("plateau.bad_epochs".into(), self.bad_epochs.to_string());
        settings.insert("plateau.cooldown_left".into(), self.cooldown_left.to_string());
    }

    /// The state from checkpoint settings, `None` if they hold none.
    pub(super) fn from_settings(settings: &BTreeMap<String, String>, path: &Path) -> Result<Option<Self>> {
        let Some(best) = settings.get("plateau.best") else { return Ok(None) };
        let bad = |key: &str| Error::Format {
            path: path.to_path_buf(),
            reason: format!("checkpoint metadata `trainer.{key}` is not valid"),
        };
        let lr = match settings.get("plateau.lr") {
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| bad("plateau.lr"))?,
            ),
            None => None,
        };
        let best = best.parse::<f64>().ok().filter(|v| !v.is_nan()).ok_or_else(|| bad("plateau.best"))?;
        let count =
            |key: &str| settings.get(key).and_then(|v| v.parse::<usize>().ok()).ok_or_else(|| bad(key));
        let (bad_epochs, cooldown_left) = (count("plateau.bad_epochs")?, count("plateau.cooldown_left")?);
        Ok(Some(PlateauState { lr, best, bad_epochs, cooldown_left }))
    }
}
