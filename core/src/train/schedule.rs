//! [`Schedule`]: how the learning rate changes from epoch to epoch.

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
                let progress = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                base * (min_factor + (1.0 - min_factor) * cos)
            }
            Schedule::Step { every, factor } => base * factor.powi((epoch / every.max(1)) as i32),
        }
    }
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
