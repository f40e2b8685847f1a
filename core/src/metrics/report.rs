//! [`ClassificationReport`]: per-class precision, recall, F1 and support with
//! their averages, printed in scikit-learn's `classification_report` layout.

use super::ConfusionMatrix;
use crate::data::Classes;
use std::fmt;

/// One class's line of a [`ClassificationReport`] (or an average's).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassScores {
    /// The class's name (its number unless named), or `macro avg`/`weighted avg`.
    pub name: String,
    /// Of the samples predicted as the class, the fraction that are.
    pub precision: f64,
    /// Of the samples of the class, the fraction predicted as such.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// The samples of the class (all samples, for the averages).
    pub support: usize,
}

/// Per-class precision, recall, F1 and support, the accuracy, and the macro
/// (unweighted) and weighted (by support) averages, as scikit-learn computes
/// them (0 where a ratio has no samples). `Display` prints sklearn's table:
///
/// ```text
///               precision    recall  f1-score   support
///
///       setosa       1.00      1.00      1.00        10
///   versicolor       0.90      1.00      0.95         9
///    virginica       1.00      0.91      0.95        11
///
///     accuracy                           0.97        30
///    macro avg       0.97      0.97      0.97        30
/// weighted avg       0.97      0.97      0.97        30
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// One line per class, by index.
    pub classes: Vec<ClassScores>,
    /// The fraction of all samples classified correctly.
    pub accuracy: f64,
    /// The unweighted mean over classes.
    pub macro_avg: ClassScores,
    /// The mean over classes weighted by their support.
    pub weighted_avg: ClassScores,
}

impl ClassificationReport {
    /// The report of a confusion matrix.
    pub fn from_matrix(m: &ConfusionMatrix) -> Self {
        let classes: Vec<ClassScores> = (0..m.classes())
            .map(|c| ClassScores {
                name: c.to_string(),
                precision: m.precision(c),
                recall: m.recall(c),
                f1: m.f1(c),
                support: m.support(c),
            })
            .collect();
        let total = m.total();
        let average = |name: &str, weight: &dyn Fn(&ClassScores) -> f64| {
            let sum: f64 = classes.iter().map(weight).sum();
            let mean = |score: fn(&ClassScores) -> f64| match sum > 0.0 {
                true => classes.iter().map(|c| weight(c) * score(c)).sum::<f64>() / sum,
                false => 0.0,
            };
            ClassScores {
                name: name.to_string(),
                precision: mean(|c| c.precision),
                recall: mean(|c| c.recall),
                f1: mean(|c| c.f1),
                support: total,
            }
        };
        let macro_avg = average("macro avg", &|_| 1.0);
        let weighted_avg = average("weighted avg", &|c| c.support as f64);
        ClassificationReport { accuracy: m.accuracy(), classes, macro_avg, weighted_avg }
    }

    /// Names the classes (as a CSV file's labels did, see [`Classes`]); classes
    /// beyond those named keep their numbers.
    pub fn named(mut self, names: &Classes) -> Self {
        for (scores, name) in self.classes.iter_mut().zip(names.names()) {
            scores.name.clone_from(name);
        }
        self
    }
}

impl fmt::Display for ClassificationReport {
    /// scikit-learn's layout with 2 digits (`{:.4}` gives 4): names right-aligned,
    /// columns of 9 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = f.precision().unwrap_or(2);
        let width = self.classes.iter().map(|c| c.name.chars().count()).chain([12]).max().unwrap_or(12);
        let total = self.macro_avg.support;
        writeln!(f, "{:>width$}  {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "f1-score", "support")?;
        writeln!(f)?;
        let line = |f: &mut fmt::Formatter<'_>, s: &ClassScores| {
            writeln!(
                f,
                "{:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}",
                s.name, s.precision, s.recall, s.f1, s.support
            )
        };
        for scores in &self.classes {
            line(f, scores)?;
        }
        writeln!(f)?;
        writeln!(f, "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}", "accuracy", "", "", self.accuracy, total)?;
        line(f, &self.macro_avg)?;
        line(f, &self.weighted_avg)
    }
}
