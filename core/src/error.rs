//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong with input a user controls: files, data,
/// targets and configuration. Library code returns it instead of panicking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are not what its format requires.
    #[error("{}: {reason}", path.display())]
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
    /// Training produced a NaN or infinite loss: the learning rate is usually
    /// too high, or the data holds NaN/Inf. The parameters are left as they were
    /// after the last finite step.
    #[error("the loss became {value} at epoch {epoch}, batch {batch}: lower the learning rate or check the data for NaN/Inf")]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// The non-finite loss value.
        value: f64,
    },
    /// A setting is outside its valid range (a zero batch size, a negative learning rate…).
    #[error("invalid setting: {0}")]
    InvalidConfig(String),
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
