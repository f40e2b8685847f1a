#![doc = include_str!("../README.md")]

pub use staticnet_core::*;
pub use staticnet_macros::network;

/// Everything a typical program needs, including the [`network!`] macro.
pub mod prelude {
    pub use staticnet_core::prelude::*;
    pub use staticnet_macros::network;
}
