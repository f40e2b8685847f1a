//! Pooling over `[C, H, W]` samples: max (`max.rs`), average and global
//! average (`avg.rs`).
//!
//! PyTorch's semantics: `MaxPool2d`/`AvgPool2d` in floor mode without padding
//! (so every window lies inside the image and an average always divides by
//! `kh·kw`), and `AdaptiveAvgPool2d(1)` + flatten for [`GlobalAvgPool`]. The
//! pass fused with the ReLU before it is in `layers/fused.rs`.

mod avg;
mod max;
#[cfg(test)]
pub(in crate::layers) mod tests;

pub use crate::geometry::PoolGeometry;
pub use avg::{AvgPool2d, GlobalAvgPool};
pub use max::{MaxPool2d, MaxPoolWorkspace};

pub(in crate::layers) use max::{max_pool_2x2, max_pool_2x2_backward};
