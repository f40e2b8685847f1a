//! Every hand-written vector kernel of the crate, and the one way they are
//! chosen: an [`Isa`] level detected once, passed to a family's safe entry point,
//! which matches on it.

pub(crate) mod conv2d;
mod isa;
pub(crate) mod pool;
pub(crate) mod sgemm;
pub(crate) mod simd;

pub use isa::Isa;
