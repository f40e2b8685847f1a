//! The user's own data end to end: Iris from its CSV file (split, standardised, trained, reported
//! class by class), rows in memory, and losses that are not classification reporting no accuracy.

use staticnet::data::CsvReader;
use staticnet::metrics::{confusion_matrix, top_k_accuracy};
use staticnet::prelude::*;
use staticnet::train::format_report;

network! {
    struct Iris { input: [4], fc1: dense(16), relu, head: dense(3) }
}

network! {
    struct AutoEncoder { input: [8], enc: dense(3), tanh, dec: dense(8) }
}

network! {
    struct Binary { input: [2], fc1: dense(8), relu, out: dense(1) }
}

fn iris_path() -> String {
    format!("{}/data/iris.csv", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn iris_from_csv_reaches_a_real_accuracy() {
    let (data, classes) = CsvReader::new(iris_path()).target("species").classification::<f32, 4>().unwrap();
    let (mut train, mut test) = data.split(0.8, 42).unwrap();
    assert_eq!((train.len(), test.len()), (120, 30));
    let scaler = train.standardize();
    scaler.apply(&mut test);
    let mut net = Iris::new(42);
    let history = Trainer::new(Adam::new(1e-2))
        .epochs(60)
        .batch_size(16)
        .seed(42)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &train, Some(&test))
        .unwrap();
    let last = history.last().unwrap();
    assert!(last.validation.unwrap().accuracy.unwrap() >= 0.9, "{last:?}");

    let matrix = confusion_matrix(&net, &test, 7).unwrap();
    assert_eq!(matrix.total(), 30);
    assert_eq!(matrix.accuracy(), last.validation.unwrap().accuracy.unwrap());
    let report = matrix.report().named(&classes);
    assert_eq!(report.classes.iter().map(|c| c.support).sum::<usize>(), 30);
    // Setosa is linearly separable from the others: every one is found.
    assert_eq!(report.classes[0].recall, 1.0, "{report}");
    assert!(report.to_string().contains("weighted avg"));

    let logits = net.forward(test.features());
    let top2 = top_k_accuracy(&logits, test.targets(), 2).unwrap();
    assert!(top2 >= matrix.accuracy() && top2 <= 1.0);
    assert_eq!(top_k_accuracy(&logits, test.targets(), 3).unwrap(), 1.0);
}

#[test]
fn confusion_matrix_refuses_labels_the_network_lacks() {
    let data = Dataset::from_rows(&[[0.0f32; 4], [1.0; 4]], vec![0, 3]).unwrap();
    let err = confusion_matrix(&Iris::new(0), &data, 8).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 3, sample: 1, classes: 3 }), "{err}");
    assert!(matches!(confusion_matrix(&Iris::new(0), &data, 0), Err(Error::InvalidConfig(_))));
}

/// Eight-value patterns for an autoencoder, in [0, 1].
fn patterns() -> Vec<[f32; 8]> {
    (0..32).map(|i| std::array::from_fn(|j| ((i * 7 + j * 3) % 5) as f32 / 4.0)).collect()
}

#[test]
fn reconstruction_losses_report_no_accuracy() {
    let rows = patterns();
    let data = Dataset::regression(&rows, &rows).unwrap();
    for (name, history) in [
        ("mse", fit_autoencoder(&MeanSquaredError, &data)),
        ("bce", fit_autoencoder(&BinaryCrossEntropy, &data)),
    ] {
        let report = history.last().unwrap();
        assert_eq!(report.train.accuracy, None, "{name}");
        assert_eq!(report.validation.unwrap().accuracy, None, "{name}");
        let line = format_report(report, 2);
        assert!(!line.contains("accuracy"), "{name}: {line}");
    }
    let net = AutoEncoder::new(0);
    assert_eq!(evaluate(&net, &BinaryCrossEntropy, &data, 8).unwrap().accuracy, None);
}

fn fit_autoencoder<L: Loss<f32, 8, Target = Batch<f32, 8>>>(
    loss: &L,
    data: &Dataset<f32, 8, Batch<f32, 8>>,
) -> History {
    let mut net = AutoEncoder::new(1);
    Trainer::new(Adam::new(1e-2))
        .epochs(2)
        .batch_size(8)
        .verbose(false)
        .fit(&mut net, loss, data, Some(data))
        .unwrap()
}

#[test]
fn a_binary_classifier_keeps_its_accuracy() {
    // Class 1 when x + y > 1.
    let rows: Vec<[f32; 2]> = (0..64).map(|i| [(i % 8) as f32 / 7.0, (i / 8) as f32 / 7.0]).collect();
    let values: Vec<f32> = rows.iter().map(|[x, y]| f32::from(u8::from(x + y > 1.0))).collect();
    let data = Dataset::regression_values(&rows, values).unwrap();
    let mut net = Binary::new(3);
    let history = Trainer::new(Adam::new(3e-2))
        .epochs(40)
        .batch_size(16)
        .verbose(false)
        .fit(&mut net, &BinaryCrossEntropy, &data, None)
        .unwrap();
    let accuracy = history.last().unwrap().train.accuracy.unwrap();
    assert!(accuracy > 0.9, "{accuracy}");
    assert!(format_report(history.last().unwrap(), 40).contains("accuracy"));
}
