//! The sizes of convolutions and poolings: plain data that `network!` computes
//! while compiling, shared by the layers and the kernels (a leaf module, so the
//! kernels need not reach into `layers`). The macro's checker computes the same
//! sizes; `dsl/src/check/geometry.rs` tests that the two agree.

mod conv1d;
mod conv2d;
mod pool;

pub use conv1d::Conv1dGeometry;
pub(crate) use conv2d::for_each_tap;
pub use conv2d::Conv2dGeometry;
pub use pool::PoolGeometry;
