//! Everything a typical program needs: `use staticnet::prelude::*;`.

#[cfg(feature = "csv")]
pub use crate::data::CsvReader;
pub use crate::data::{mnist, Classes, Dataset, MiniBatch, Standardizer};
pub use crate::error::{Error, Result, TensorProblem};
pub use crate::float::Float;
pub use crate::generate::{generate, Sampling};
pub use crate::history::{History, Metrics};
pub use crate::init::{seeded_rng, Init};
pub use crate::layers::{
    Activation, CustomLayer, Dense, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Softmax, Tanh,
};
pub use crate::layers::{Elu, LogSoftmax, Mish, Selu, Silu, Softplus};
pub use crate::loss::{
    BinaryCrossEntropy, CrossEntropyOnProbabilities, Labels, Loss, MeanSquaredError, SequenceCrossEntropy,
    SoftmaxCrossEntropy, StepLabels, Targets,
};
pub use crate::metrics::{
    classification_report, confusion_matrix, top_k_accuracy, ClassificationReport, ConfusionMatrix,
};
pub use crate::network::Build;
pub use crate::network::{Chain, LayerInfo, Network, Prediction};
#[cfg(feature = "onnx")]
pub use crate::onnx::SaveOnnx;
pub use crate::optim::{Adadelta, Adagrad, ParamGroup, RmsProp};
pub use crate::optim::{Adam, AdamW, Optimizer, OptimizerState, Sgd};
pub use crate::params::{Param, ParamMut, ParamPath, Params};
pub use crate::persist;
pub use crate::quant::{Bf16, Int8, Quantize};
pub use crate::tensor::Batch;
pub use crate::train::{evaluate, Schedule, Trainer};
pub use crate::train::{EarlyStopping, Monitor, Plateau, SaveBest};
