#![doc = include_str!("../README.md")]

pub use staticnet_core::*;

/// Declares a statically shaped network and generates its code.
///
/// The body lists the input shape, then the layers in order, then optionally
/// the output shape; every entry is described in [the language](crate#the-language).
/// The macro computes every layer's shape while compiling and generates:
///
/// - the struct (`Net<T: Float = f32>`, one field per layer with parameters or
///   state, named after the entry: `fc1: dense(256)` gives `fc1` and the
///   parameters `fc1.weight`, `fc1.bias` in PyTorch's layout);
/// - `Net::new(seed)`, `Net::init(init, seed)`, `Net::zeros()`, `save`/`load`
///   (safetensors under PyTorch `state_dict` names), `summary()`, `to_dot()`;
/// - the constants `INPUT_SHAPE`, `OUTPUT_SHAPE`, `INPUT_SIZE`, `OUTPUT_SIZE`,
///   `PARAM_COUNT` and `LAYERS`;
/// - the batch aliases `NetInput`/`NetOutput`, the reusable `NetTrace`, and the
///   impls of [`Network`] (inference, training and backward passes written
///   out layer by layer) and [`Params`] (the parameter visitor optimizers and
///   persistence use).
///
/// # Examples
///
/// ```
/// use staticnet::prelude::*;
///
/// network! {
///     /// A classifier of 4 features into 3 classes.
///     pub struct Iris {
///         input: [4],
///         fc1: dense(16), relu,
///         head: dense(3),
///         output: [3],
///     }
/// }
///
/// let net = Iris::new(7);
/// assert_eq!(Iris::<f32>::PARAM_COUNT, 4 * 16 + 16 + 16 * 3 + 3);
/// let x = IrisInput::<f32>::from_element(2, 0.5);
/// let probabilities = net.predict(&x); // softmax over each sample's logits
/// assert_eq!(probabilities.ncols(), 2);
/// let sum: f32 = probabilities.column(0).sum();
/// assert!((sum - 1.0).abs() < 1e-5);
/// ```
///
/// A layer that does not fit the one before it is a compile error on that
/// layer, naming both shapes:
///
/// ```compile_fail
/// use staticnet::prelude::*;
///
/// network! {
///     struct Broken {
///         input: [1, 28, 28],
///         dense(10),
///         conv2d(8, kernel = 3), // error: conv2d needs [C, H, W], gets [10]
///     }
/// }
/// ```
pub use staticnet_macros::network;

/// Everything a typical program needs, including the [`network!`] macro.
pub mod prelude {
    pub use staticnet_core::prelude::*;
    pub use staticnet_macros::network;
}
