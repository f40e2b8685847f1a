//! [`Schedule`]: how the learning rate changes from epoch to epoch or from step to step,
//! with PyTorch's formulas (`torch.optim.lr_scheduler`).

use super::plateau::Plateau;
use crate::error::{Error, Result};
use std::f64::consts::PI;

/// How the learning rate changes from epoch to epoch ([`Schedule::Cosine`],
/// [`Schedule::Step`], [`Schedule::Exponential`], [`Schedule::ReduceOnPlateau`]) or from
/// optimizer step to step ([`Schedule::LinearWarmup`], [`Schedule::WarmupCosine`],
/// [`Schedule::OneCycle`]), from the optimizer's learning rate (`base`). Counts run over the
/// whole run, across repeated calls to `fit`.
///
/// ```
/// use staticnet::prelude::*;
/// // 100 warm-up steps from 0.1·lr, then cosine down to 0.01·lr at step 2000.
/// let schedule = Schedule::WarmupCosine { warmup_steps: 100, total_steps: 2000, start_factor: 0.1, min_factor: 0.01 };
/// let trainer = Trainer::new(AdamW::<f32>::new(3e-4, 0.1)).schedule(schedule);
/// assert!((schedule.learning_rate_at(3e-4, 0) - 3e-5).abs() < 1e-15);
/// # let _ = trainer;
/// ```
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
    /// `base · gammaᵉ` in 0-based epoch `e` (`ExponentialLR`, stepped per epoch).
    Exponential {
        /// The multiplier per epoch.
        gamma: f64,
    },
    /// Per step: from `start_factor · base` up to `base` linearly over `steps` optimizer
    /// steps, then `base` (`LinearLR(start_factor, 1.0, total_iters = steps)` stepped per batch).
    LinearWarmup {
        /// Warm-up steps.
        steps: u64,
        /// The first step's rate as a fraction of `base`.
        start_factor: f64,
    },
    /// Per step: [`Schedule::LinearWarmup`] over `warmup_steps`, then cosine annealing from
    /// `base` to `min_factor · base` at `total_steps` and after (`SequentialLR` of `LinearLR`
    /// and `CosineAnnealingLR(T_max = total_steps − warmup_steps, eta_min)`).
    WarmupCosine {
        /// Warm-up steps.
        warmup_steps: u64,
        /// Steps of the whole schedule, warm-up included.
        total_steps: u64,
        /// The first step's rate as a fraction of `base`.
        start_factor: f64,
        /// The final rate as a fraction of `base`.
        min_factor: f64,
    },
    /// Per step: the one-cycle policy (Smith) with `base` as the peak, as `OneCycleLR` with
    /// cosine annealing and two phases (the momentum is not cycled): from `base / div_factor`
    /// up to `base` over the first `pct_start` of `total_steps`, then down to
    /// `base / (div_factor · final_div_factor)`, held after `total_steps`. PyTorch's defaults
    /// are `pct_start` 0.3, `div_factor` 25 and `final_div_factor` 1e4.
    OneCycle {
        /// Steps of the whole cycle.
        total_steps: u64,
        /// The fraction of the steps spent rising.
        pct_start: f64,
        /// `base` over the starting rate.
        div_factor: f64,
        /// The starting rate over the final one.
        final_div_factor: f64,
    },
    /// Per epoch: multiplies the rate by a factor when a monitored metric stops improving
    /// (`ReduceLROnPlateau`); see [`Plateau`].
    ReduceOnPlateau(Plateau),
}

impl Schedule {
    /// The learning rate for 0-based `epoch` of `epochs`, from the initial `base`, for the
    /// per-epoch schedules ([`Schedule::Cosine`] anneals over the `epochs` of the first `fit`
    /// and stays at its floor after). A per-step schedule gives its first step's rate and
    /// [`Schedule::ReduceOnPlateau`] `base`: the trainer asks [`Schedule::learning_rate_at`]
    /// and the plateau's state.
    pub fn learning_rate(self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant | Schedule::ReduceOnPlateau(_) => base,
            Schedule::Cosine { min_factor } => {
                let progress = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                let cos = 0.5 * (1.0 + (PI * progress).cos());
                base * (min_factor + (1.0 - min_factor) * cos)
            }
            Schedule::Step { every, factor } => base * powi(factor, (epoch / every.max(1)) as u64),
            Schedule::Exponential { gamma } => base * powi(gamma, epoch as u64),
            _ => self.learning_rate_at(base, 0),
        }
    }

    /// Whether the rate changes from optimizer step to step (rather than epoch to epoch).
    pub fn per_step(self) -> bool {
        matches!(
            self,
            Schedule::LinearWarmup { .. } | Schedule::WarmupCosine { .. } | Schedule::OneCycle { .. }
        )
    }

    /// The learning rate of the optimizer step with 0-based index `step` of the run, from the
    /// initial `base`, for the per-step schedules ([`Schedule::per_step`]); the others give
    /// their first epoch's rate.
    pub fn learning_rate_at(self, base: f64, step: u64) -> f64 {
        match self {
            Schedule::LinearWarmup { steps, start_factor } => base * warmup(step, steps, start_factor),
            Schedule::WarmupCosine { warmup_steps, total_steps, start_factor, min_factor } => {
                if step < warmup_steps {
                    return base * warmup(step, warmup_steps, start_factor);
                }
                let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                let progress = ((step - warmup_steps) as f64 / span).min(1.0);
                let min = min_factor * base;
                min + (base - min) * (1.0 + (PI * progress).cos()) / 2.0
            }
            Schedule::OneCycle { total_steps, pct_start, div_factor, final_div_factor } => {
                one_cycle(base, step, total_steps, pct_start, div_factor, final_div_factor)
            }
            other => other.learning_rate(base, 0, 1),
        }
    }

    /// Refuses settings that would give a negative, infinite or NaN rate, naming the field.
    pub(super) fn check(self) -> Result<()> {
        let bad = |what: &str, v: f64, rule: &str| {
            Err(Error::InvalidConfig(format!("schedule: {what} must be {rule}, got {v}")))
        };
        let non_negative = |what: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                bad(what, v, "finite and non-negative")
            }
        };
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Cosine { min_factor } => non_negative("min_factor", min_factor),
            Schedule::Step { factor, .. } => non_negative("factor", factor),
            Schedule::Exponential { gamma } => non_negative("gamma", gamma),
            Schedule::LinearWarmup { start_factor, .. } => non_negative("start_factor", start_factor),
            Schedule::WarmupCosine { start_factor, min_factor, .. } => {
                non_negative("start_factor", start_factor)?;
                non_negative("min_factor", min_factor)
            }
            Schedule::OneCycle { total_steps, pct_start, div_factor, final_div_factor } => {
                for (what, v) in [("div_factor", div_factor), ("final_div_factor", final_div_factor)] {
                    if !(v.is_finite() && v > 0.0) {
                        return bad(what, v, "positive and finite");
                    }
                }
                // Both phases must hold at least one step, as in PyTorch.
                let rise = pct_start * total_steps as f64 - 1.0;
                if !(rise > 0.0 && rise < total_steps as f64 - 1.0) {
                    return bad(
                        "pct_start",
                        pct_start,
                        &format!("such that 1 < pct_start · {total_steps} < {total_steps}"),
                    );
                }
                Ok(())
            }
            Schedule::ReduceOnPlateau(plateau) => plateau.check(),
        }
    }
}

/// `x` to the power `n`, exactly as repeated products for any count a run reaches.
fn powi(x: f64, n: u64) -> f64 {
    i32::try_from(n).map_or_else(|_| x.powf(n as f64), |n| x.powi(n))
}

/// `LinearLR`'s factor at `step`: from `start` to 1 over `steps` steps.
fn warmup(step: u64, steps: u64, start: f64) -> f64 {
    if steps == 0 {
        return 1.0;
    }
    start + (1.0 - start) * step.min(steps) as f64 / steps as f64
}

/// `OneCycleLR`'s rate at `step` (two phases, cosine annealing), held at the end after `total`.
fn one_cycle(max: f64, step: u64, total: u64, pct_start: f64, div: f64, final_div: f64) -> f64 {
    let initial = max / div;
    let min = initial / final_div;
    let step = step.min(total.saturating_sub(1)) as f64;
    let rise_end = pct_start * total as f64 - 1.0;
    let fall_end = total as f64 - 1.0;
    let anneal = |start: f64, end: f64, pct: f64| end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0);
    if step <= rise_end {
        anneal(initial, max, step / rise_end)
    } else {
        anneal(max, min, (step - rise_end) / (fall_end - rise_end))
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
