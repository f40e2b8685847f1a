//! The training progress bar: indicatif's with the `progress` feature (on by
//! default), otherwise a bar that draws nothing, so the trainer reads the same.

/// One epoch's bar; hidden when not verbose or when stderr is not a terminal.
pub(super) struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar over `batches` steps for epoch `epoch` of `last_epoch`.
    pub(super) fn new(verbose: bool, batches: u64, epoch: usize, last_epoch: usize) -> Self {
        #[cfg(feature = "progress")]
        {
            use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
            if !verbose {
                return Progress { bar: ProgressBar::hidden() };
            }
            // stderr() draws nothing when stderr is not a terminal (CI, pipes, tests).
            let bar = ProgressBar::with_draw_target(Some(batches), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("{epoch}/{last_epoch}"));
            Progress { bar }
        }
        #[cfg(not(feature = "progress"))]
        {
            let _ = (verbose, batches, epoch, last_epoch);
            Progress {}
        }
    }

    /// Whether nothing is drawn (so callers skip formatting messages).
    pub(super) fn is_hidden(&self) -> bool {
        #[cfg(feature = "progress")]
        return self.bar.is_hidden();
        #[cfg(not(feature = "progress"))]
        true
    }

    /// One more step done.
    pub(super) fn inc(&self, steps: u64) {
        #[cfg(feature = "progress")]
        self.bar.inc(steps);
        #[cfg(not(feature = "progress"))]
        let _ = steps;
    }

    /// The text after the bar (the running loss).
    pub(super) fn set_message(&self, message: String) {
        #[cfg(feature = "progress")]
        self.bar.set_message(message);
        #[cfg(not(feature = "progress"))]
        let _ = message;
    }

    /// Leaves the bar as it is (the epoch stopped with an error).
    pub(super) fn abandon(&self) {
        #[cfg(feature = "progress")]
        self.bar.abandon();
    }

    /// Removes the bar (the epoch ended).
    pub(super) fn finish_and_clear(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}
