//! `Build`: the constructors of a `network!` network in any float type.

use crate::error::Result;
use crate::float::Float;
use std::path::Path;

/// `new` and `load` for a network computing in `T`: `Net::<f64>::new(seed)`,
/// `Net::<f64>::load(path)`, or `N::new(seed)` in code generic over the float type.
///
/// `network!` implements it for every float type, and also gives the `f32`
/// network the same two functions as inherent ones, which Rust picks first:
/// so `Net::new(seed)` and `Net::load(path)` are `f32` networks without a
/// `Net::<f32>` annotation. The trait is in the prelude.
///
/// # Examples
///
/// ```
/// use staticnet::prelude::*;
///
/// network! { struct Mlp { input: [4], dense(8), relu, dense(2) } }
///
/// let fast = Mlp::new(7); // f32: the inherent `new`
/// let exact = Mlp::<f64>::new(7); // f64: this trait's
/// let x = Batch::<f64, 4>::from_element(1, 0.5);
/// assert_eq!(exact.forward(&x).ncols(), 1);
/// assert_eq!(fast.forward(&Batch::from_element(1, 0.5)).nrows(), 2);
/// ```
pub trait Build<T: Float>: Sized {
    /// A network initialised from `seed`: He before ReLU-family activations,
    /// Glorot elsewhere, zero biases (the network's `init(Init::Auto, seed)`).
    fn new(seed: u64) -> Self;

    /// Loads a network saved by its `save`, or a PyTorch `state_dict` of the
    /// same architecture; every name, dtype and shape is checked first.
    fn load(path: impl AsRef<Path>) -> Result<Self>;
}
