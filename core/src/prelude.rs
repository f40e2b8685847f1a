//! Everything a typical program needs: `use staticnet::prelude::*;`.

pub use crate::data::{mnist, Dataset, MiniBatch};
pub use crate::error::{Error, Result, TensorProblem};
pub use crate::float::Float;
pub use crate::generate::{generate, Sampling};
pub use crate::history::{History, Metrics};
pub use crate::init::{seeded_rng, Init};
pub use crate::layers::{Activation, Dense, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Softmax, Tanh};
pub use crate::loss::{
    BinaryCrossEntropy, Labels, Loss, MeanSquaredError, SequenceCrossEntropy, SoftmaxCrossEntropy,
    StepLabels, Targets,
};
pub use crate::network::{Chain, LayerInfo, Network, Prediction};
#[cfg(feature = "onnx")]
pub use crate::onnx::SaveOnnx;
pub use crate::optim::{Adam, AdamW, Optimizer, OptimizerState, Sgd};
pub use crate::params::{Param, ParamMut, ParamPath, Params};
pub use crate::persist;
pub use crate::tensor::Batch;
pub use crate::train::{evaluate, Schedule, Trainer};
