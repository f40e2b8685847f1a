//! The one error type of the library.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong with input a user controls: files, data,
/// targets and configuration. Library code returns it instead of panicking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written, or is not a regular file
    /// (a directory, FIFO, socket or device, refused without opening it).
    #[error("{}: {source}", ShowPath(path))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are not what its format requires.
    #[error("{}: {reason}", ShowPath(path))]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// Data of the wrong shape was given, e.g. images of 32×32 to a network of 28×28.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What was being checked.
        what: String,
        /// The shape required.
        expected: String,
        /// The shape given.
        found: String,
    },
    /// A class label is not below the number of classes the network outputs.
    #[error("label {label} of sample {sample} is out of range: the network has {classes} classes")]
    LabelOutOfRange {
        /// The offending label.
        label: usize,
        /// Its position in the batch or dataset.
        sample: usize,
        /// How many classes there are.
        classes: usize,
    },
    /// A class label at one step of a sequence is not below the number of classes.
    #[error(
        "label {label} of sample {sample} at step {step} is out of range: the network has {classes} classes"
    )]
    StepLabelOutOfRange {
        /// The offending label.
        label: usize,
        /// The sample's position in the batch or dataset.
        sample: usize,
        /// The step within the sample.
        step: usize,
        /// How many classes there are.
        classes: usize,
    },
    /// A token id in a network's input is not a whole number below the vocabulary's size.
    #[error("token id {token} of sample {sample} at step {step} is not in the vocabulary: ids are whole numbers below {vocab}")]
    TokenOutOfRange {
        /// The offending value.
        token: f64,
        /// The sample's position in the batch or dataset.
        sample: usize,
        /// The step within the sample.
        step: usize,
        /// How many tokens the embedding knows.
        vocab: usize,
    },
    /// A text holds a character its vocabulary does not know.
    #[error("character {character:?} at line {line}, column {column} is not in the vocabulary (the characters of the training text)")]
    UnknownCharacter {
        /// The character.
        character: char,
        /// Its line, from 1.
        line: usize,
        /// Its column in characters, from 1.
        column: usize,
    },
    /// Two collections that must be equally long are not.
    #[error("{what}: {left} vs {right} samples")]
    LengthMismatch {
        /// What was being paired.
        what: String,
        /// Length of the first.
        left: usize,
        /// Length of the second.
        right: usize,
    },
    /// Training met a NaN or an infinity and stopped before the optimizer step
    /// of that batch, so the parameters are those after the last finite step
    /// and no checkpoint was written for the epoch. A non-finite loss is always
    /// checked; with [`crate::train::Trainer::check_finite`] (on by default in
    /// debug builds) the input batch, every layer's output and every gradient
    /// are checked too, and [`NonFiniteAt`] names the first place the value
    /// appeared. The usual causes: a learning rate that is too high (lower it,
    /// or clip gradients with [`crate::train::Trainer::clip_grad_norm`]), or
    /// NaN/Inf in the data.
    #[error("{}", non_finite_message(*epoch, *batch, *value, at))]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// The first non-finite value found (NaN, inf or -inf).
        value: f64,
        /// Where it was found.
        at: NonFiniteAt,
    },
    /// The network ends in the activation the loss applies itself (`softmax`
    /// then [`crate::loss::SoftmaxCrossEntropy`], `sigmoid` then
    /// [`crate::loss::BinaryCrossEntropy`]), which would apply it twice.
    #[error(
        "the network ends in `{activation}` and {loss} applies {activation} itself, so training would apply it \
         twice (and learn badly): remove the final `{activation}` from the network (its outputs become logits; \
         `predict` still gives probabilities){}",
        if *activation == "softmax" { ", or train it with `CrossEntropyOnProbabilities`" } else { "" }
    )]
    ActivationTwice {
        /// The network's final activation.
        activation: &'static str,
        /// The loss, e.g. `SoftmaxCrossEntropy`.
        loss: String,
    },
    /// A row of features or targets given in memory (`Dataset::from_rows`…)
    /// does not hold as many values as a sample has.
    #[error("{what} row {row} holds {found} values, expected {expected}")]
    RowLength {
        /// Which rows: `"feature"` or `"target"`.
        what: &'static str,
        /// The row's position, from 0.
        row: usize,
        /// The values a row must hold.
        expected: usize,
        /// The values it holds.
        found: usize,
    },
    /// A cell of a CSV file could not be read as the value its column holds.
    #[error("{}: line {line}, column {column}: {value:?} {reason}", ShowPath(path))]
    Cell {
        /// The file involved.
        path: PathBuf,
        /// The cell's line in the file, from 1 (the header, if any, is line 1).
        line: u64,
        /// The column: its header name and 1-based position (`` `petal_width` (4) ``), or the position alone.
        column: String,
        /// The cell's text.
        value: String,
        /// What is wrong with it, e.g. "is not a number".
        reason: String,
    },
    /// In a distributed run (`Trainer::fit_distributed`, feature `mpi`), another
    /// rank failed (that rank returned, and printed, its own error), so every rank
    /// stopped at the same step instead of waiting for it.
    #[error(
        "rank {rank} of {size} failed {during}; every rank stopped there (that rank reports its own error)"
    )]
    RankFailed {
        /// The rank that failed (the highest, if several did).
        rank: usize,
        /// How many ranks the run has.
        size: usize,
        /// When: `in epoch 2, batch 17`, `while validating after epoch 1`…
        during: String,
    },
    /// A setting is outside its valid range (a zero batch size, a negative learning rate…).
    #[error("invalid setting: {0}")]
    InvalidConfig(String),
    /// A network holds a layer that ONNX export does not handle (yet): nothing was written.
    #[error("cannot export `{layer}` to ONNX: {reason}")]
    OnnxExport {
        /// The layer, by its name in the network (`block1.body.0`).
        layer: String,
        /// Why, in words.
        reason: String,
    },
    /// A weights or checkpoint file is well formed but does not fit the network:
    /// every tensor that is missing, unexpected, or of the wrong dtype or shape,
    /// each by name. Nothing was loaded.
    #[error("{}", mismatch_message(path, problems))]
    Mismatch {
        /// The file involved (`<memory>` for bytes).
        path: PathBuf,
        /// Every problem found, expected tensors first in visiting order, then
        /// unexpected ones by name.
        problems: Vec<TensorProblem>,
    },
}

/// One way a stored tensor does not fit the network it is loaded into
/// (see [`Error::Mismatch`]). Dtypes are safetensors names (`"F32"`, `"I64"`…).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorProblem {
    /// The network has this tensor but the file does not.
    Missing {
        /// Its `state_dict` name.
        name: String,
        /// The dtype the network expects.
        dtype: String,
        /// The shape the network expects.
        shape: Vec<usize>,
    },
    /// The file has a tensor the network does not.
    Unexpected {
        /// Its name in the file.
        name: String,
        /// Its dtype in the file.
        dtype: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// The tensor is stored with another element type.
    WrongDtype {
        /// Its `state_dict` name.
        name: String,
        /// The dtype the network expects.
        expected: String,
        /// The dtype in the file.
        found: String,
    },
    /// The tensor is stored with another shape.
    WrongShape {
        /// Its `state_dict` name.
        name: String,
        /// The shape the network expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
}

impl TensorProblem {
    /// The name of the tensor concerned.
    pub fn name(&self) -> &str {
        match self {
            TensorProblem::Missing { name, .. }
            | TensorProblem::Unexpected { name, .. }
            | TensorProblem::WrongDtype { name, .. }
            | TensorProblem::WrongShape { name, .. } => name,
        }
    }
}

/// Where training first met a non-finite value (see [`Error::NonFinite`]),
/// in the order a step computes them: input, layer outputs, loss, gradients.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonFiniteAt {
    /// The input batch: the data holds NaN or Inf.
    Input {
        /// The sample's index in the training dataset.
        sample: usize,
        /// The feature (row) of the sample, 0-based.
        feature: usize,
    },
    /// The output of a layer (its name in `network!`, e.g. `fc1` or `relu_1`),
    /// the first layer in the forward pass whose output is not finite.
    Layer {
        /// The layer's name.
        name: String,
        /// The sample's index in the training dataset.
        sample: usize,
    },
    /// The loss of the batch.
    Loss,
    /// The gradient of a parameter (its `state_dict` name, e.g. `fc1.weight`),
    /// the first parameter in visiting order with a non-finite gradient.
    Gradient {
        /// The parameter's name.
        name: String,
        /// The element, row-major over the parameter's PyTorch shape.
        index: usize,
    },
    /// A parameter after the optimizer step (its `state_dict` name), the first
    /// in visiting order; the step was undone.
    Parameter {
        /// The parameter's name.
        name: String,
        /// The element, row-major over the parameter's PyTorch shape.
        index: usize,
    },
    /// A value of the optimizer's state for an element of a parameter (its
    /// `state_dict` name), which the step would have made non-finite while the
    /// weight stayed finite, e.g. Adam's `exp_avg_sq` overflowing; the step was
    /// not taken.
    OptimizerState {
        /// The parameter's name.
        name: String,
        /// The state slot: `momentum_buffer`, `exp_avg` or `exp_avg_sq`.
        slot: String,
        /// The element, row-major over the parameter's PyTorch shape.
        index: usize,
    },
    /// The loss on the validation data after the epoch (`batch` is the last one).
    Validation,
}

impl fmt::Display for NonFiniteAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonFiniteAt::Input { sample, feature } => {
                write!(f, "the input (training sample {sample}, feature {feature})")
            }
            NonFiniteAt::Layer { name, sample } => {
                write!(f, "the output of layer `{name}` (training sample {sample})")
            }
            NonFiniteAt::Loss => f.write_str("the loss"),
            NonFiniteAt::Gradient { name, index } => write!(f, "the gradient of `{name}` (element {index})"),
            NonFiniteAt::Parameter { name, index } => write!(f, "the parameter `{name}` (element {index})"),
            NonFiniteAt::OptimizerState { name, slot, index } => {
                write!(f, "the optimizer's `{slot}` of `{name}` (element {index})")
            }
            NonFiniteAt::Validation => f.write_str("the validation loss"),
        }
    }
}

/// The message of [`Error::NonFinite`]: what, where, when, and what to do.
fn non_finite_message(epoch: usize, batch: usize, value: f64, at: &NonFiniteAt) -> String {
    let when = format!("at epoch {epoch}, batch {batch}");
    let tuning =
        "lower the learning rate, clip gradients (Trainer::clip_grad_norm) or check the data for NaN/Inf";
    match at {
        NonFiniteAt::Input { sample, feature } => format!(
            "the input holds {value} (training sample {sample}, feature {feature}) {when}: \
             check the data for NaN/Inf"
        ),
        NonFiniteAt::Layer { name, sample } => {
            format!("the output of layer `{name}` became {value} (training sample {sample}) {when}: {tuning}")
        }
        NonFiniteAt::Loss => {
            format!("the loss became {value} {when}: lower the learning rate or check the data for NaN/Inf")
        }
        NonFiniteAt::Gradient { name, index } => {
            format!("the gradient of `{name}` became {value} (element {index}) {when}: {tuning}")
        }
        NonFiniteAt::Parameter { name, index } => format!(
            "the optimizer step made parameter `{name}` {value} (element {index}) {when}; \
             the step was undone, the weights are those of the last finite step: {tuning}"
        ),
        NonFiniteAt::OptimizerState { name, slot, index } => format!(
            "the optimizer step would make the `{slot}` of parameter `{name}` {value} (element {index}) {when}; \
             the step was not taken, the weights and the optimizer's state are those of the last finite step: \
             {tuning}"
        ),
        NonFiniteAt::Validation => format!(
            "the validation loss became {value} after epoch {epoch} (the weights of its last batch, {batch}, \
             give non-finite outputs): lower the learning rate or clip gradients (Trainer::clip_grad_norm)"
        ),
    }
}

/// A path in a message: as it is, or `"" (empty path)` for the empty path,
/// which would otherwise show as nothing.
pub(crate) struct ShowPath<'a>(pub(crate) &'a Path);

impl fmt::Display for ShowPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_os_str().is_empty() {
            f.write_str("\"\" (empty path)")
        } else {
            self.0.display().fmt(f)
        }
    }
}

/// `[3, 64]`; `[]` for a scalar.
struct ShapeList<'a>(&'a [usize]);

impl fmt::Display for ShapeList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for TensorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorProblem::Missing { name, dtype, shape } => {
                write!(f, "missing tensor `{name}`: expected {dtype} {}", ShapeList(shape))
            }
            TensorProblem::Unexpected { name, dtype, shape } => {
                write!(
                    f,
                    "unexpected tensor `{name}` ({dtype} {}): the network has no such parameter",
                    ShapeList(shape)
                )
            }
            TensorProblem::WrongDtype { name, expected, found } => {
                write!(f, "`{name}` has dtype {found}, expected {expected}")
            }
            TensorProblem::WrongShape { name, expected, found } => {
                write!(f, "`{name}` has shape {}, expected {}", ShapeList(found), ShapeList(expected))
            }
        }
    }
}

/// The multi-line message of [`Error::Mismatch`]: a summary, then one indented line per problem.
fn mismatch_message(path: &Path, problems: &[TensorProblem]) -> String {
    let count = match problems.len() {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    let mut message = format!("{}: the stored tensors do not fit the network ({count}):", ShowPath(path));
    for problem in problems {
        message += &format!("\n  - {problem}");
    }
    message
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format { path: path.into(), reason: reason.into() }
    }
}
