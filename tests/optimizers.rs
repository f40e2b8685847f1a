//! RMSprop, Adagrad and Adadelta, and parameter groups for every optimizer, against PyTorch:
//! `tools/gen_optim_fixtures.py` ran `torch.optim` in float64 on a dense layer's two parameters
//! and recorded each step's gradients and the parameters after it; both of staticnet's paths
//! (`step_if_finite`, which the trainer takes, and `begin_step` + `update`) replay them to 1e-10.

use serde_json::Value;
use staticnet::optim::{Adadelta, Adagrad, Adam, AdamW, Optimizer, ParamGroup, RmsProp, Sgd};
use staticnet::params::{Param, ParamMut, ParamPath, Params};
use std::path::Path;

/// A dense layer's parameters: `fc.weight` [2, 3] and `fc.bias` [2].
#[derive(Clone)]
struct Fc {
    weight: Vec<f64>,
    bias: Vec<f64>,
}

impl Params<f64> for Fc {
    type Gradients = (Vec<f64>, Vec<f64>);
    const PARAM_COUNT: usize = 8;

    fn zero_gradients(&self) -> Self::Gradients {
        (vec![0.0; 6], vec![0.0; 2])
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, f64>)) {
        let fc = path.join("fc");
        f(Param { name: fc.join("weight"), shape: &[2, 3], value: &self.weight });
        f(Param { name: fc.join("bias"), shape: &[2], value: &self.bias });
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, f64>)) {
        let fc = path.join("fc");
        f(ParamMut { name: fc.join("weight"), shape: &[2, 3], value: &mut self.weight });
        f(ParamMut { name: fc.join("bias"), shape: &[2], value: &mut self.bias });
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, f64>, &[f64]),
    ) {
        let fc = path.join("fc");
        f(ParamMut { name: fc.join("weight"), shape: &[2, 3], value: &mut self.weight }, &grads.0);
        f(ParamMut { name: fc.join("bias"), shape: &[2], value: &mut self.bias }, &grads.1);
    }
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[f64])) {
        f(&grads.0);
        f(&grads.1);
    }
}

fn fixtures() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/optim.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn pair(v: &Value) -> (Vec<f64>, Vec<f64>) {
    (floats(&v["fc.weight"]), floats(&v["fc.bias"]))
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-10 * w.abs().max(1.0), "{what}[{i}]: {g} vs torch {w}");
    }
}

/// Replays the case's gradients through both paths and compares weights and state with torch's.
fn replay<O: Optimizer<f64> + Clone>(name: &str, case: &Value, opt: O) {
    let (weight, bias) = pair(&case["initial"]);
    let start = Fc { weight, bias };
    let (mut checked, mut net_checked) = (opt.clone(), start.clone());
    let (mut plain, mut net_plain) = (opt, start);
    let mut undo = Vec::new();
    for (k, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let grads = pair(&step["grads"]);
        assert_eq!(checked.step_if_finite(&mut net_checked, &grads, &mut undo).unwrap(), None);
        plain.step(&mut net_plain, &grads).unwrap();
        let (weight, bias) = pair(&step["params"]);
        for (path, net) in [("step_if_finite", &net_checked), ("update", &net_plain)] {
            close(&format!("{name} {path} step {} fc.weight", k + 1), &net.weight, &weight);
            close(&format!("{name} {path} step {} fc.bias", k + 1), &net.bias, &bias);
        }
    }
    let state = checked.state().unwrap();
    assert_eq!(state, plain.state().unwrap(), "{name}: both paths keep the same state");
    let torch = case["state"].as_object().unwrap();
    assert!(!torch.is_empty());
    for (slot, vectors) in torch {
        let ours = &state.slots.iter().find(|(s, _)| s == slot).unwrap_or_else(|| panic!("{name}: {slot}")).1;
        for (k, v) in vectors.as_array().unwrap().iter().enumerate() {
            close(&format!("{name} state {slot}[{k}]"), &ours[k], &floats(v));
        }
    }
    assert_eq!(state.slots.len(), torch.len(), "{name}: no slots torch does not have");
}

fn setting(case: &Value, key: &str) -> Option<f64> {
    case["settings"][key].as_f64().or_else(|| case["settings"][key].as_bool().map(f64::from))
}

#[test]
fn rmsprop_adagrad_and_adadelta_follow_torch() {
    let all = fixtures();
    let mut ran = 0;
    for (name, case) in all.as_object().unwrap() {
        if !case["lr_scale"].is_null() {
            continue;
        }
        let s = |key: &str, default: f64| setting(case, key).unwrap_or(default);
        let lr = s("lr", f64::NAN);
        match case["optimizer"].as_str().unwrap() {
            "RMSprop" => replay(
                name,
                case,
                RmsProp::new(lr)
                    .alpha(s("alpha", 0.99))
                    .eps(s("eps", 1e-8))
                    .weight_decay(s("weight_decay", 0.0))
                    .momentum(s("momentum", 0.0))
                    .centered(s("centered", 0.0) != 0.0),
            ),
            "Adagrad" => replay(
                name,
                case,
                Adagrad::new(lr)
                    .lr_decay(s("lr_decay", 0.0))
                    .weight_decay(s("weight_decay", 0.0))
                    .initial_accumulator_value(s("initial_accumulator_value", 0.0))
                    .eps(s("eps", 1e-10)),
            ),
            "Adadelta" => replay(
                name,
                case,
                Adadelta::new(lr).rho(s("rho", 0.9)).eps(s("eps", 1e-6)).weight_decay(s("weight_decay", 0.0)),
            ),
            other => panic!("{other}"),
        }
        ran += 1;
    }
    assert_eq!(ran, 8);
}

#[test]
fn parameter_groups_follow_torchs_param_groups_for_every_optimizer() {
    // torch: `fc.bias` in a group of its own with weight_decay 0 and lr · lr_scale.
    let all = fixtures();
    let mut ran = 0;
    for (name, case) in all.as_object().unwrap() {
        let Some(scale) = case["lr_scale"].as_f64() else { continue };
        let s = |key: &str| setting(case, key).unwrap_or(0.0);
        let (lr, wd) = (s("lr"), s("weight_decay"));
        let group = || ParamGroup::vectors().weight_decay(0.0).lr_scale(scale);
        match case["optimizer"].as_str().unwrap() {
            "SGD" => replay(name, case, Sgd::new(lr).momentum(s("momentum")).weight_decay(wd).group(group())),
            "Adam" => replay(name, case, Adam::new(lr).weight_decay(wd).group(group())),
            "AdamW" => replay(name, case, AdamW::new(lr, wd).group(group())),
            "RMSprop" => {
                replay(name, case, RmsProp::new(lr).momentum(s("momentum")).weight_decay(wd).group(group()))
            }
            "Adagrad" => replay(name, case, Adagrad::new(lr).weight_decay(wd).group(group())),
            "Adadelta" => replay(name, case, Adadelta::new(lr).weight_decay(wd).group(group())),
            other => panic!("{other}"),
        }
        ran += 1;
    }
    assert_eq!(ran, 6);
    // The same group by name, and by prefix, select the bias alike.
    let case = &all["adamw_groups"];
    let by_name = ParamGroup::matching(|n| n.ends_with(".bias")).weight_decay(0.0).lr_scale(0.5);
    replay("adamw by name", case, AdamW::new(0.01, 0.1).group(by_name));
    let by_prefix = ParamGroup::prefix("fc.bias").weight_decay(0.0).lr_scale(0.5);
    replay("adamw by prefix", case, AdamW::new(0.01, 0.1).group(by_prefix));
}
