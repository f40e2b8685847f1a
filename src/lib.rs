//! # staticnet
//!
//! Neural networks declared once with [`network!`], shape-checked while
//! compiling, and compiled to straight-line forward and backward passes over
//! nalgebra. See the README for a tour and `ARCHITECTURE.md` for the map.

pub use staticnet_core::*;
pub use staticnet_macros::network;

/// Everything a typical program needs, including the [`network!`] macro.
pub mod prelude {
    pub use staticnet_core::prelude::*;
    pub use staticnet_macros::network;
}
