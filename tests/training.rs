//! Training end to end: real MNIST digits, reproducibility, and clear errors.

use staticnet::prelude::*;
use std::path::Path;

network! {
    struct Mlp { input: [784], fc1: dense(64), relu, head: dense(10) }
}

network! {
    struct Tiny { input: [4], dense(16), relu, dense(16), relu, dense(3) }
}

fn digits() -> mnist::Mnist<f32> {
    mnist::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")).expect("bundled data")
}

#[test]
fn learns_real_digits_from_a_slice_of_mnist() {
    let data = digits();
    let train = data.train.take(3000);
    let mut net = Mlp::new(7);
    let before = evaluate(&net, &SoftmaxCrossEntropy, &data.test, 256).unwrap();
    let history = Trainer::new(Adam::new(2e-3))
        .epochs(5)
        .batch_size(64)
        .seed(7)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &train, Some(&data.test))
        .unwrap();
    let after = evaluate(&net, &SoftmaxCrossEntropy, &data.test, 256).unwrap();
    assert_eq!(history.epochs.len(), 5);
    assert!(before.accuracy.unwrap() < 0.3, "{before:?}");
    assert!(after.accuracy.unwrap() > 0.90, "{after:?}");
    // The history's last validation is the same evaluation.
    assert_eq!(history.last().unwrap().validation, Some(after));
    // Training loss falls epoch over epoch at the start.
    assert!(history.epochs[1].train.loss < history.epochs[0].train.loss);

    // Prediction: probabilities per sample, and the most likely class.
    let x = data.test.features().columns(0, 20).into_owned();
    let probabilities = net.predict(&x);
    for column in probabilities.column_iter() {
        assert!((column.sum() - 1.0).abs() < 1e-5 && column.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
    let predictions = net.classify(&x);
    let right = predictions.iter().zip(data.test.targets()).filter(|(p, &l)| p.class == l).count();
    assert!(right >= 16, "{right}/20");
    assert_eq!(predictions[0].probability, probabilities[(predictions[0].class, 0)]);
}

#[test]
fn a_cnn_learns_real_digits_from_a_slice_of_mnist() {
    network! {
        struct Cnn {
            input: [1, 28, 28],
            conv2d(8, kernel = 3), relu, max_pool(2),
            conv2d(16, kernel = 3, padding = same), batch_norm, relu, max_pool(2) => [16, 6, 6],
            flatten, dropout(0.1),
            dense(10),
        }
    }
    let data = digits();
    let mut net = Cnn::new(3);
    let history = Trainer::new(Adam::new(3e-3))
        .epochs(2)
        .batch_size(32)
        .seed(3)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data.train.take(2000), Some(&data.test))
        .unwrap();
    let accuracy = history.last().unwrap().validation.unwrap().accuracy.unwrap();
    assert!(accuracy > 0.9, "{accuracy}");
}

fn weights<N: Params<f32>>(net: &N) -> Vec<f32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend_from_slice(p.value));
    all
}

fn iris() -> Dataset<f32, 4, Labels> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv")).unwrap();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        features.extend(fields[..4].iter().map(|f| f.parse::<f32>().unwrap()));
        labels.push(fields[4].trim().parse::<usize>().unwrap());
    }
    Dataset::new(Batch::from_column_slice(&features), labels).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let data = iris();
    let train = |seed| {
        let mut net = Tiny::new(seed);
        Trainer::new(Sgd::new(0.05).momentum(0.9))
            .epochs(3)
            .batch_size(16)
            .seed(seed)
            .verbose(false)
            .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
            .unwrap();
        weights(&net)
    };
    assert_eq!(train(3), train(3));
    assert_ne!(train(3), train(4));
}

#[test]
fn iris_is_learned_with_every_optimizer() {
    let data = iris();
    for (name, accuracy) in [
        ("sgd", fit_iris(&data, Sgd::new(0.05).momentum(0.9).nesterov(true))),
        ("adam", fit_iris(&data, Adam::new(0.01))),
        ("adamw", fit_iris(&data, AdamW::new(0.01, 0.01))),
    ] {
        assert!(accuracy > 0.9, "{name}: {accuracy}");
    }
}

fn fit_iris<O: Optimizer<f32>>(data: &Dataset<f32, 4, Labels>, opt: O) -> f64 {
    let mut net = Tiny::new(1);
    let h = Trainer::new(opt).epochs(60).batch_size(16).seed(1).verbose(false);
    h.schedule(Schedule::Cosine { min_factor: 0.1 }).fit(&mut net, &SoftmaxCrossEntropy, data, None).unwrap();
    evaluate(&net, &SoftmaxCrossEntropy, data, 64).unwrap().accuracy.unwrap()
}

#[test]
fn bad_targets_and_settings_are_errors() {
    let x = Batch::<f32, 4>::zeros(2);
    let data = Dataset::new(x.clone(), vec![0, 7]).unwrap();
    let mut net = Tiny::new(0);
    let mut trainer = Trainer::new(Sgd::new(0.1)).verbose(false);
    let err = trainer.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 7, sample: 1, classes: 3 }), "{err}");
    assert_eq!(err.to_string(), "label 7 of sample 1 is out of range: the network has 3 classes");

    let ok = Dataset::new(x, vec![0, 1]).unwrap();
    let err = Trainer::new(Sgd::new(0.1)).batch_size(0).fit(&mut net, &SoftmaxCrossEntropy, &ok, None);
    assert!(matches!(err, Err(Error::InvalidConfig(_))));
    assert!(Dataset::new(Batch::<f32, 4>::zeros(2), vec![0usize]).is_err());
}

#[test]
fn a_nan_in_the_data_stops_training_with_an_error_and_keeps_the_weights() {
    let mut x = Batch::<f32, 4>::from_element(4, 0.5);
    x[(2, 3)] = f32::NAN;
    let data = Dataset::new(x, vec![0, 1, 2, 0]).unwrap();
    let mut net = Tiny::new(0);
    let before = weights(&net);
    let err = Trainer::new(Sgd::new(0.1))
        .batch_size(4)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { epoch: 1, batch: 0, .. }), "{err}");
    assert_eq!(weights(&net), before, "no step was taken with a NaN loss");
}

#[test]
fn a_784_4096_4096_10_network_builds_trains_and_moves() {
    network! { struct Big { input: [784], dense(4096), relu, dense(4096), relu, dense(10) } }
    // Built, moved and boxed without ever holding a 64 MiB matrix on the stack.
    let mut net = Big::new(1);
    assert_eq!(Big::PARAM_COUNT, 784 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10);
    let moved = std::thread::spawn(move || {
        let x = Batch::<f32, 784>::from_element(8, 0.1);
        let data = Dataset::new(x, vec![1; 8]).unwrap();
        let loss_before = evaluate(&net, &SoftmaxCrossEntropy, &data, 8).unwrap().loss;
        Trainer::new(Sgd::new(0.01))
            .epochs(2)
            .batch_size(8)
            .verbose(false)
            .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
            .unwrap();
        let loss_after = evaluate(&net, &SoftmaxCrossEntropy, &data, 8).unwrap().loss;
        assert!(loss_after < loss_before);
        Box::new(net)
    })
    .join()
    .unwrap();
    assert_eq!(moved.clone().forward(&Batch::zeros(1)).ncols(), 1);
}
