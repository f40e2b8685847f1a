use super::*;

/// Labels and predictions of 10 samples over 3 classes, counted by hand:
///
/// ```text
/// actual \ predicted   0  1  2
///        0             3  1  0    support 4
///        1             0  2  1    support 3
///        2             1  0  2    support 3
/// ```
fn matrix() -> ConfusionMatrix {
    let labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
    let predicted = [0, 0, 0, 1, 1, 1, 2, 0, 2, 2];
    ConfusionMatrix::from_labels(&labels, &predicted, 3).unwrap()
}

#[test]
fn counts_and_scores_by_hand() {
    let m = matrix();
    assert_eq!((m.count(0, 0), m.count(0, 1), m.count(2, 0), m.count(1, 2)), (3, 1, 1, 1));
    assert_eq!((m.total(), m.support(0), m.predicted(0)), (10, 4, 4));
    assert_eq!(m.accuracy(), 0.7);
    // Class 0: 3 of 4 predicted are right, 3 of 4 found; class 1: 2/3 and 2/3; class 2: 2/3 and 2/3.
    assert_eq!((m.precision(0), m.recall(0), m.f1(0)), (0.75, 0.75, 0.75));
    assert_eq!((m.precision(1), m.recall(1)), (2.0 / 3.0, 2.0 / 3.0));
    assert!((m.f1(2) - 2.0 / 3.0).abs() < 1e-15);
    let r = m.report();
    assert_eq!(r.accuracy, 0.7);
    assert!((r.macro_avg.precision - (0.75 + 4.0 / 3.0) / 3.0).abs() < 1e-15);
    assert!((r.weighted_avg.recall - (4.0 * 0.75 + 3.0 * 2.0 / 3.0 * 2.0) / 10.0).abs() < 1e-15);
    assert_eq!(r.weighted_avg.support, 10);
}

#[test]
fn report_prints_like_sklearn() {
    // sklearn.metrics.classification_report(labels, predicted, target_names=["setosa", "versicolor", "virginica"])
    let names = crate::data::Classes::new(vec!["setosa".into(), "versicolor".into(), "virginica".into()]);
    let expected = "              precision    recall  f1-score   support

      setosa       0.75      0.75      0.75         4
  versicolor       0.67      0.67      0.67         3
   virginica       0.67      0.67      0.67         3

    accuracy                           0.70        10
   macro avg       0.69      0.69      0.69        10
weighted avg       0.70      0.70      0.70        10
";
    assert_eq!(matrix().report().named(&names).to_string(), expected);
    assert!(format!("{:.4}", matrix().report()).contains("           0     0.7500    0.7500"));
}

#[test]
fn zero_division_gives_zero() {
    // Class 2 is never predicted and has no samples.
    let m = ConfusionMatrix::from_labels(&[0, 1], &[1, 1], 3).unwrap();
    assert_eq!((m.precision(0), m.recall(0), m.f1(0)), (0.0, 0.0, 0.0));
    assert_eq!((m.precision(1), m.recall(1)), (0.5, 1.0));
    assert_eq!((m.precision(2), m.recall(2), m.f1(2)), (0.0, 0.0, 0.0));
    assert_eq!(ConfusionMatrix::new(2).accuracy(), 0.0);
}

#[test]
fn from_outputs_takes_the_first_highest() {
    let out = Batch::<f64, 3>::from_column_slice(&[0.1, 0.7, 0.2, 0.5, 0.5, 0.0, -1.0, -3.0, -2.0]);
    let m = ConfusionMatrix::from_outputs(&out, &[1, 1, 2]).unwrap();
    assert_eq!((m.count(1, 1), m.count(1, 0), m.count(2, 0)), (1, 1, 1));
    let err = ConfusionMatrix::from_outputs(&out, &[1, 3, 0]).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 3, sample: 1, classes: 3 }), "{err}");
    assert!(matches!(ConfusionMatrix::from_outputs(&out, &[1]), Err(Error::LengthMismatch { .. })));
    assert!(matches!(
        ConfusionMatrix::from_labels(&[0, 1], &[0, 5], 2),
        Err(Error::LabelOutOfRange { label: 5, sample: 1, .. })
    ));
}

#[test]
fn top_k_by_hand() {
    // Scores per sample: [0.1, 0.5, 0.3, 0.1], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25].
    let out =
        Batch::<f32, 4>::from_column_slice(&[0.1, 0.5, 0.3, 0.1, 0.4, 0.3, 0.2, 0.1, 0.25, 0.25, 0.25, 0.25]);
    let labels = [2, 3, 1];
    // Sample 0's class 2 is second, sample 1's class 3 last; sample 2 ties everywhere (counts).
    assert_eq!(top_k_accuracy(&out, &labels, 1).unwrap(), 1.0 / 3.0);
    assert_eq!(top_k_accuracy(&out, &labels, 2).unwrap(), 2.0 / 3.0);
    assert_eq!(top_k_accuracy(&out, &labels, 3).unwrap(), 2.0 / 3.0);
    assert_eq!(top_k_accuracy(&out, &labels, 4).unwrap(), 1.0);
    for k in [0, 5] {
        assert!(matches!(top_k_accuracy(&out, &labels, k), Err(Error::InvalidConfig(_))), "{k}");
    }
    assert!(matches!(top_k_accuracy(&out, &[0, 0, 4], 1), Err(Error::LabelOutOfRange { sample: 2, .. })));
    let nan = Batch::<f32, 2>::from_column_slice(&[f32::NAN, 0.0]);
    assert_eq!(top_k_accuracy(&nan, &[0], 2).unwrap(), 0.0);
}

#[test]
fn binary_accuracy_by_hand() {
    let logits = Batch::<f32, 3>::from_column_slice(&[2.0, -1.0, 0.5, -0.5, 3.0, -2.0]);
    let targets = Batch::<f32, 3>::from_column_slice(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    // Right: 2>0↔1, −1↔0, 0.5 vs 0 wrong, −0.5 vs 1 wrong, 3↔1, −2↔0: 4 of 6.
    assert_eq!(binary_accuracy(&logits, &targets, 0.0).unwrap(), 4.0 / 6.0);
    assert_eq!(binary_accuracy(&logits, &targets, 0.6).unwrap(), 5.0 / 6.0);
}
