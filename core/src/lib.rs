//! The runtime of staticnet: statically shaped tensors on nalgebra, layers with
//! their forward and backward passes, losses, optimizers, data and training.
//!
//! Most users depend on the `staticnet` facade crate and write `network!`;
//! this crate holds everything the generated code calls. See `ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod float;
pub mod gradcheck;
pub mod init;
pub mod inspect;
pub mod layers;
pub mod loss;
pub mod network;
pub mod optim;
pub mod params;
pub mod persist;
pub mod plot;
pub mod prelude;
pub mod tensor;
pub mod train;

pub use error::{Error, Result, TensorProblem};
pub use float::Float;
pub use network::Network;
pub use params::Params;
pub use tensor::Batch;
pub use tensor::{set_threads, threads};

/// Re-exports the generated code relies on, so user crates need no direct
/// dependency on nalgebra or rand. Not part of the stable API.
#[doc(hidden)]
pub mod __private {
    pub use nalgebra;
}
