//! Checkpoints of a training run: [`Trainer::resume`] and the save after each epoch.

use super::Trainer;
use crate::error::Result;
use crate::float::Float;
use crate::init::SeededRng;
use crate::optim::Optimizer;
use crate::params::Params;
use crate::persist::{self, TrainingState};
use std::collections::BTreeMap;
use std::path::Path;

#[cfg(doc)]
use crate::error::Error;

/// The progress a resumed checkpoint hands to the next `fit`.
pub(super) struct Resumed {
    pub(super) epoch: usize,
    pub(super) rng: SeededRng,
}

impl<O> Trainer<O> {
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
    /// [`Error::Format`], [`Error::Mismatch`]; [`Error::Format`] also for optimizer state
    /// that is not finite, out of range or missing a slot its step needs, naming the
    /// field), or [`Error::InvalidConfig`] if the
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
        let plateau = super::plateau::PlateauState::from_settings(&state.settings, path)?;
        // The optimizer checks its state before taking it; the network part was checked already.
        self.optimizer.load_state(state.optimizer)?;
        loaded.restore.apply(net);
        self.epoch = state.epoch;
        self.step = state.step;
        self.rng = Some(state.rng.clone());
        self.plateau = plateau;
        self.resumed = Some(Resumed { epoch: state.epoch, rng: state.rng });
        Ok(())
    }

    /// Saves a checkpoint of the run after `epoch` epochs, with the optimizer at
    /// its base learning rate (the schedule is recomputed on resume).
    pub(super) fn save_checkpoint<T, N>(
        &mut self,
        net: &mut N,
        rng: &SeededRng,
        base_lr: f64,
        path: &Path,
    ) -> Result<()>
    where
        T: Float,
        N: Params<T>,
        O: Optimizer<T>,
    {
        let current_lr = self.optimizer.learning_rate();
        self.optimizer.set_learning_rate(base_lr);
        let mut optimizer = self.optimizer.state();
        self.optimizer.set_learning_rate(current_lr);
        if let Ok(state) = &mut optimizer {
            // Parameters frozen from the start have no state; a checkpoint holds every one's.
            super::freeze::pad_state(state, &*net);
        }
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
        if let Some(plateau) = self.plateau {
            plateau.to_settings(&mut settings);
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
}
