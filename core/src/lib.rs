//! The runtime of staticnet: statically shaped tensors on nalgebra, layers with
//! their forward and backward passes, losses, optimizers, data and training.
//!
//! Most users depend on the `staticnet` facade crate and write `network!`;
//! this crate holds everything the generated code calls. See `ARCHITECTURE.md`.

#![warn(missing_docs)]
// Every `unsafe` block says why it is sound (kernels/ denies it too, where most of them are).
#![deny(clippy::undocumented_unsafe_blocks)]
// User-controlled input never panics the library (ARCHITECTURE.md): no
// `unwrap`, `expect` or `panic!` outside tests. Files, data, labels and settings
// give `Error`s. Invariant asserts that guard `unsafe` code or const-generic
// consistency established by `network!` are not covered by these lints.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod data;
pub mod decode;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
pub mod float;
mod fs;
pub mod generate;
pub mod geometry;
// Finite-difference checks for tests: failing loudly (assert, expect) is their purpose.
#[allow(clippy::expect_used)]
pub mod gradcheck;
pub mod history;
// `Init::fill` builds its distributions from a standard deviation and a range
// that are finite and ordered for every fan-in and fan-out (`max(1)`), so its
// two `expect`s cannot fire; they are not reachable from user input.
#[allow(clippy::expect_used)]
pub mod init;
pub mod inspect;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod network;
pub mod onnx;
pub mod optim;
pub mod params;
pub mod persist;
#[cfg(feature = "plot")]
pub mod plot;
pub mod prelude;
pub mod quant;
pub mod tensor;
pub mod train;

pub use error::{Error, NonFiniteAt, Result, TensorProblem};
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

    /// Unwraps a layer constructor whose arguments `network!` has already
    /// checked while compiling, so the error arm cannot be reached.
    #[allow(clippy::panic)]
    pub fn checked<L>(layer: crate::Result<L>) -> L {
        match layer {
            Ok(layer) => layer,
            Err(e) => panic!("network! let an invalid layer setting through: {e}"),
        }
    }
}
