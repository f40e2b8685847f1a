//! Layers: one file per kind, each with its forward pass, backward pass and tests.
//!
//! Layers are statically shaped building blocks the `network!` macro wires
//! together. They write into buffers the caller owns (see [`crate::tensor::ensure_batch`]),
//! so a training step reuses memory instead of allocating.

mod activation;
mod dense;
mod softmax;

pub use activation::{Activation, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Tanh};
pub use dense::{Dense, DenseGrad};
pub use softmax::Softmax;

pub(crate) use activation::sigmoid;
pub(crate) use softmax::softmax_into;
