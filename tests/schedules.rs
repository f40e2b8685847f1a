//! Learning-rate schedules against `torch.optim.lr_scheduler`: fixtures written by
//! `tools/gen_schedule_fixtures.py` hold the rate of every step (or epoch), compared to 1e-12.

use serde_json::Value;
use staticnet::prelude::*;
use staticnet::train::{Monitor, Plateau, PlateauState};
use std::path::Path;

fn fixtures() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1e-3), "{what} at {i}: {g} vs torch {w}\n{got:?}");
    }
}

#[test]
fn schedules_give_torchs_rates() {
    let all = fixtures();
    let lr = all["lr"].as_f64().unwrap();
    let c = &all["cases"];
    let f = |case: &str, key: &str| c[case][key].as_f64().unwrap();
    let u = |case: &str, key: &str| c[case][key].as_u64().unwrap();
    let want = |case: &str| floats(&c[case]["rates"]);
    let per_epoch = |s: Schedule, n: usize| (0..n).map(|e| s.learning_rate(lr, e, n)).collect::<Vec<_>>();
    let per_step = |s: Schedule, n: usize| {
        assert!(s.per_step());
        (0..n as u64).map(|t| s.learning_rate_at(lr, t)).collect::<Vec<_>>()
    };

    let step = Schedule::Step { every: u("step", "every") as usize, factor: f("step", "factor") };
    close("step", &per_epoch(step, 10), &want("step"));
    close(
        "exponential",
        &per_epoch(Schedule::Exponential { gamma: f("exponential", "gamma") }, 10),
        &want("exponential"),
    );
    let warm = Schedule::LinearWarmup {
        steps: u("linear_warmup", "steps"),
        start_factor: f("linear_warmup", "start_factor"),
    };
    close("linear_warmup", &per_step(warm, 9), &want("linear_warmup"));
    let cosine = Schedule::WarmupCosine {
        warmup_steps: u("warmup_cosine", "warmup_steps"),
        total_steps: u("warmup_cosine", "total_steps"),
        start_factor: f("warmup_cosine", "start_factor"),
        min_factor: f("warmup_cosine", "min_factor"),
    };
    close("warmup_cosine", &per_step(cosine, 14), &want("warmup_cosine"));
    for case in ["one_cycle", "one_cycle_custom"] {
        let s = Schedule::OneCycle {
            total_steps: u(case, "total_steps"),
            pct_start: f(case, "pct_start"),
            div_factor: f(case, "div_factor"),
            final_div_factor: f(case, "final_div_factor"),
        };
        let n = u(case, "total_steps") as usize;
        close(case, &per_step(s, n), &want(case));
        // Held at the end after the cycle.
        assert_eq!(s.learning_rate_at(lr, n as u64 + 5), s.learning_rate_at(lr, n as u64 - 1));
    }
}

#[test]
fn reduce_on_plateau_gives_torchs_rates() {
    let all = fixtures();
    let lr = all["lr"].as_f64().unwrap();
    for (case, monitor) in [("plateau_min", Monitor::ValLoss), ("plateau_max", Monitor::ValAccuracy)] {
        let c = &all["cases"][case];
        let plateau = Plateau {
            monitor,
            factor: c["factor"].as_f64().unwrap(),
            patience: c["patience"].as_u64().unwrap() as usize,
            threshold: c["threshold"].as_f64().unwrap(),
            cooldown: c["cooldown"].as_u64().unwrap() as usize,
            min_lr: c["min_lr"].as_f64().unwrap(),
        };
        let mut state = PlateauState::new(&plateau);
        let mut rate = lr;
        let got: Vec<f64> = floats(&c["metrics"])
            .into_iter()
            .map(|m| {
                rate = state.observe(&plateau, m, rate);
                rate
            })
            .collect();
        close(case, &got, &floats(&c["rates"]));
    }
}

#[test]
fn bad_schedules_are_errors_before_training() {
    network! { struct Tiny { input: [2], dense(2) } }
    let data = Dataset::new(Batch::<f32, 2>::from_column_slice(&[0.0, 1.0, 1.0, 0.0]), vec![0, 1]).unwrap();
    let fit = |s: Schedule| {
        let mut t = Trainer::new(Sgd::new(0.1)).epochs(1).verbose(false).schedule(s);
        t.fit(&mut Tiny::new(0), &SoftmaxCrossEntropy, &data, None).unwrap_err().to_string()
    };
    let cycle =
        Schedule::OneCycle { total_steps: 10, pct_start: 0.05, div_factor: 25.0, final_div_factor: 1e4 };
    assert_eq!(
        fit(cycle),
        "invalid setting: schedule: pct_start must be such that 1 < pct_start · 10 < 10, got 0.05"
    );
    assert_eq!(
        fit(Schedule::Exponential { gamma: -1.0 }),
        "invalid setting: schedule: gamma must be finite and non-negative, got -1"
    );
    let plateau = Schedule::ReduceOnPlateau(Plateau::new(Monitor::ValLoss).factor(1.5));
    assert_eq!(fit(plateau), "invalid setting: ReduceOnPlateau: factor must be in [0, 1), got 1.5");
    let no_validation = Schedule::ReduceOnPlateau(Plateau::new(Monitor::ValLoss));
    assert_eq!(
        fit(no_validation),
        "invalid setting: cannot monitor ValLoss: fit was given no validation data"
    );
}
