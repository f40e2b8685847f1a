//! What training achieved, epoch by epoch: [`Metrics`], [`EpochReport`] and the
//! [`History`] that [`crate::train::Trainer::fit`] returns.
//!
//! Plain data, so both the trainer (which fills it) and [`crate::plot`] (which
//! draws it) depend on this module and not on each other.

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
///
/// [`History::plot_svg`] (in [`crate::plot`]) draws it.
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
