//! The training loop of issue 20: `fit` continuing a run, callbacks (early stopping, saving the best
//! model), per-step schedules in the trainer, and freezing parameters.

use staticnet::prelude::*;

network! { struct Net { input: [4], backbone: dense(8), relu, dropout(0.2), head: dense(3) } }

/// `n` samples of 4 features in 3 classes, a deterministic function of `seed`.
fn dataset(seed: u64, n: usize) -> Dataset<f32, 4, Labels> {
    let mut features = Vec::with_capacity(4 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i as u64 * 7 + seed) as usize % 3;
        for f in 0..4 {
            let x = ((i * 13 + f * 5) as f32 * 0.37 + seed as f32).sin();
            features.push(x + if f == class { 1.5 } else { 0.0 });
        }
        labels.push(class);
    }
    Dataset::new(Batch::from_column_slice(&features), labels).unwrap()
}

fn bits<N: Params<f32>>(net: &N) -> Vec<u32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| v.to_bits())));
    all
}

fn trainer<O>(optimizer: O, epochs: usize) -> Trainer<O> {
    Trainer::new(optimizer).epochs(epochs).batch_size(8).seed(5).verbose(false)
}

#[test]
fn two_fits_of_one_epoch_equal_one_fit_of_two() {
    let data = dataset(1, 40);
    let schedule = Schedule::Step { every: 1, factor: 0.5 };
    let mut straight = Net::new(3);
    let mut one = trainer(Adam::new(0.01), 2).schedule(schedule);
    let full = one.fit(&mut straight, &SoftmaxCrossEntropy, &data, Some(&data)).unwrap();

    let mut twice = Net::new(3);
    let mut two = trainer(Adam::new(0.01), 1).schedule(schedule);
    let first = two.fit(&mut twice, &SoftmaxCrossEntropy, &data, Some(&data)).unwrap();
    assert_ne!(bits(&twice), bits(&straight));
    let second = two.fit(&mut twice, &SoftmaxCrossEntropy, &data, Some(&data)).unwrap();
    assert_eq!(bits(&twice), bits(&straight), "the second fit continues the shuffle and the schedule");
    assert_eq!((first.epochs[0].epoch, second.epochs[0].epoch), (1, 2));
    assert_eq!(second.epochs[0].train, full.epochs[1].train);
    assert_eq!((two.completed_epochs(), two.steps()), (2, 10));

    // A restart replays the first epoch's order (the optimizer keeps its state, so compare SGD).
    let mut a = Net::new(3);
    let mut sgd = trainer(Sgd::new(0.1), 1);
    sgd.fit(&mut a, &SoftmaxCrossEntropy, &data, None).unwrap();
    let mut b = Net::new(3);
    sgd.restart();
    sgd.fit(&mut b, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(sgd.completed_epochs(), 1);
}

#[test]
fn a_continued_run_resumes_from_its_checkpoint_exactly() {
    let dir = std::env::temp_dir().join(format!("staticnet-training-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("continued.safetensors");
    let data = dataset(2, 24);
    let mut straight = Net::new(4);
    trainer(Adam::new(0.01), 3).fit(&mut straight, &SoftmaxCrossEntropy, &data, None).unwrap();

    let mut net = Net::new(4);
    let mut t = trainer(Adam::new(0.01), 1).checkpoint(&path);
    t.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
    t.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
    // The checkpoint after epoch 2 of the continued run, resumed for its third epoch.
    let mut resumed = Net::zeros();
    let mut r = trainer(Adam::new(0.01), 3);
    r.resume(&mut resumed, &path).unwrap();
    let rest = r.fit(&mut resumed, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(rest.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [3]);
    assert_eq!(bits(&resumed), bits(&straight));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn param_bits<N: Params<f32>>(net: &N, prefix: &str) -> Vec<u32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        if p.name.to_string().starts_with(prefix) {
            all.extend(p.value.iter().map(|v| v.to_bits()));
        }
    });
    all
}

fn state_size<O: Optimizer<f32>>(opt: &O) -> usize {
    opt.state().unwrap().slots.iter().flat_map(|(_, v)| v).map(Vec::len).sum()
}

#[test]
fn frozen_parameters_stay_bit_identical_and_get_no_optimizer_state() {
    let data = dataset(3, 32);
    let mut net = Net::new(6);
    let backbone = param_bits(&net, "backbone");
    let head = param_bits(&net, "head");
    let mut t = trainer(Adam::new(0.01), 2);
    t.freeze("backbone");
    assert_eq!(t.frozen(), ["backbone"]);
    t.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(param_bits(&net, "backbone"), backbone, "frozen: not one bit changed");
    assert_ne!(param_bits(&net, "head"), head);
    // Adam keeps two moments for the head's 3·8 + 3 values only, none for the backbone's 8·4 + 8.
    assert_eq!(state_size(t.optimizer()), 2 * (3 * 8 + 3));
    let mut everything = trainer(Adam::<f32>::new(0.01), 1);
    everything.fit(&mut Net::new(6), &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(state_size(everything.optimizer()), 2 * (3 * 8 + 3 + 8 * 4 + 8));

    // Unfrozen, the backbone trains and gets its state.
    t.unfreeze("backbone");
    assert!(t.frozen().is_empty());
    t.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_ne!(param_bits(&net, "backbone"), backbone);
    assert_eq!(state_size(t.optimizer()), state_size(everything.optimizer()));

    // A single parameter by its full name; a name that matches nothing is an error.
    let mut one = Net::new(6);
    let bias = param_bits(&one, "head.bias");
    let mut t = trainer(Sgd::new(0.1).momentum(0.9), 1);
    t.freeze("head.bias").freeze("backbone.weight");
    t.clip_grad_norm(0.5).fit(&mut one, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(param_bits(&one, "head.bias"), bias);
    let mut typo = trainer(Sgd::<f32>::new(0.1), 1);
    typo.freeze("backbone").freeze("head.baias");
    let err = typo.fit(&mut Net::new(6), &SoftmaxCrossEntropy, &data, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid setting: freeze(\"head.baias\"): no parameter is named `head.baias` or starts with `head.baias.`"
    );
}

#[test]
fn a_run_with_frozen_parameters_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("staticnet-training-loop-frozen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frozen.safetensors");
    let data = dataset(4, 24);
    let run = |epochs| {
        let mut t = trainer(RmsProp::new(0.01).momentum(0.5), epochs);
        t.freeze("backbone");
        t
    };
    let mut straight = Net::new(8);
    run(2).fit(&mut straight, &SoftmaxCrossEntropy, &data, None).unwrap();
    let mut first = Net::new(8);
    run(1).checkpoint(&path).fit(&mut first, &SoftmaxCrossEntropy, &data, None).unwrap();
    let (mut resumed, mut t) = (Net::zeros(), run(2));
    t.resume(&mut resumed, &path).unwrap();
    t.fit(&mut resumed, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_eq!(bits(&resumed), bits(&straight));
    std::fs::remove_dir_all(&dir).unwrap();
}

use staticnet::train::{EarlyStopping, Flow, Monitor, Plateau, PlateauState, SaveBest, Snapshot};
use std::sync::{Arc, Mutex};

fn values<N: Params<f32>>(net: &N) -> Vec<f64> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| f64::from(*v))));
    all
}

/// Every epoch's weights and learning rate, recorded by a closure callback.
type Record = Arc<Mutex<Vec<(Snapshot, f64)>>>;

fn recording<O>(t: Trainer<O>) -> (Trainer<O>, Record) {
    let record = Record::default();
    let r = record.clone();
    let t = t.on_epoch_end(move |end| {
        r.lock().unwrap().push((end.weights.snapshot(), end.learning_rate));
        Flow::Continue
    });
    (t, record)
}

#[test]
fn early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights() {
    let dir = std::env::temp_dir().join(format!("staticnet-training-loop-best-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let best_path = dir.join("best.safetensors");
    let (train, validation) = (dataset(5, 12), dataset(9, 60));
    let stop = EarlyStopping::new(Monitor::ValLoss).patience(2).restore_best_weights(true);
    let (t, record) = recording(trainer(Sgd::new(0.8).momentum(0.9), 40));
    let mut t = t.callback(stop).callback(SaveBest::new(&best_path, Monitor::ValLoss));
    let mut net = Net::new(1);
    let history = t.fit(&mut net, &SoftmaxCrossEntropy, &train, Some(&validation)).unwrap();

    // The expected stop, from the validation losses by Keras' rule.
    let losses: Vec<f64> = history.epochs.iter().map(|e| e.validation.unwrap().loss).collect();
    let (mut best, mut wait, mut stopped) = (0, 0, None);
    for (i, &l) in losses.iter().enumerate() {
        if l < losses[best] || i == 0 {
            (best, wait) = (i, 0);
        } else {
            wait += 1;
            if wait >= 2 {
                stopped = Some(i + 1);
                break;
            }
        }
    }
    assert!(history.epochs.len() < 40, "the validation loss must stop improving: {losses:?}");
    assert_eq!(stopped, Some(history.epochs.len()), "{losses:?}");
    let record = record.lock().unwrap();
    assert_eq!(values(&net), record[best].0.values(), "restored to the best epoch, {}", best + 1);
    assert_ne!(values(&net), record.last().unwrap().0.values());
    // The best model's file holds the same weights.
    let mut saved = Net::zeros();
    persist::load_into(&mut saved, &best_path).unwrap();
    assert_eq!(bits(&saved), bits(&net));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reduce_on_plateau_lowers_the_rate_and_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("staticnet-training-loop-plateau-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plateau.safetensors");
    let (train, validation) = (dataset(5, 12), dataset(9, 60));
    let plateau = Plateau::new(Monitor::ValLoss).patience(0).factor(0.5);
    let run = |epochs| {
        recording(trainer(Sgd::new(0.8).momentum(0.9), epochs).schedule(Schedule::ReduceOnPlateau(plateau)))
    };
    let (mut t, record) = run(8);
    let mut straight = Net::new(1);
    let history = t.fit(&mut straight, &SoftmaxCrossEntropy, &train, Some(&validation)).unwrap();
    // Replaying the validation losses through the plateau gives the rates each epoch ran at.
    let (mut state, mut lr, mut expected) = (PlateauState::new(&plateau), 0.8, Vec::new());
    for e in &history.epochs {
        expected.push(lr);
        lr = state.observe(&plateau, e.validation.unwrap().loss, lr);
    }
    let rates: Vec<f64> = record.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(rates, expected);
    assert!(rates.last() < rates.first(), "{rates:?}");

    let (t, _) = run(4);
    let mut first = Net::new(1);
    t.checkpoint(&path).fit(&mut first, &SoftmaxCrossEntropy, &train, Some(&validation)).unwrap();
    let (mut t, rest) = run(8);
    let mut resumed = Net::zeros();
    t.resume(&mut resumed, &path).unwrap();
    t.fit(&mut resumed, &SoftmaxCrossEntropy, &train, Some(&validation)).unwrap();
    assert_eq!(bits(&resumed), bits(&straight));
    assert_eq!(rest.lock().unwrap().iter().map(|r| r.1).collect::<Vec<_>>(), expected[4..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn per_step_schedules_run_over_the_whole_run() {
    let data = dataset(6, 40);
    // 5 batches an epoch, 3 epochs: the cycle ends with the run.
    let cycle =
        Schedule::OneCycle { total_steps: 15, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 };
    let (t, record) = recording(trainer(Adam::new(0.05), 3).schedule(cycle));
    let mut t = t;
    let mut straight = Net::new(2);
    t.fit(&mut straight, &SoftmaxCrossEntropy, &data, None).unwrap();
    let rates: Vec<f64> = record.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(rates, [4, 9, 14].map(|s| cycle.learning_rate_at(0.05, s)), "each epoch's last step");
    assert_eq!(t.optimizer().learning_rate(), 0.05, "the base rate after fit");
    let mut pieces = Net::new(2);
    let mut t = trainer(Adam::new(0.05), 1).schedule(cycle);
    for _ in 0..3 {
        t.fit(&mut pieces, &SoftmaxCrossEntropy, &data, None).unwrap();
    }
    assert_eq!(bits(&pieces), bits(&straight));
    let mut constant = Net::new(2);
    trainer(Adam::new(0.05), 3).fit(&mut constant, &SoftmaxCrossEntropy, &data, None).unwrap();
    assert_ne!(bits(&constant), bits(&straight));
}
