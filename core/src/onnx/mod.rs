//! ONNX export of a network's inference pass: `net.save_onnx("model.onnx")`.
//!
//! Every network `network!` generates implements [`Export`]: the macro knows
//! each layer and its sizes, and writes one call per layer into
//! [`Export::onnx_layers`] (`ops.rs` for the plain layers and the joins of
//! blocks, `seq.rs` for the sequence layers), blocks and nested networks
//! recursing into their own `onnx_layers`. [`build`] turns that into a
//! [`Model`], a [`Graph`] of plain Rust values; with the `onnx` feature (on by
//! default in the facade) [`SaveOnnx`] encodes it as protobuf (prost, with the
//! types generated once from ONNX's schema into `proto.rs` by
//! `tools/gen_onnx_proto.sh`) and writes it.
//!
//! The file: opset 17, one input `input` `[batch, ..input shape]` and one output
//! `output` `[batch, ..output shape]` (`batch` dynamic), f32 (an f64 network is
//! written in f32), the parameters and batch-norm statistics as initializers
//! under their `state_dict` names and PyTorch layouts (LSTM/GRU weights and the
//! attention projections are stored as reordered or split copies, since ONNX's
//! operators want other layouts). Dropout is the identity, batch norm uses its
//! running statistics: the file computes what `Network::forward` does.
//! A network with `input: tokens[T]` takes the ids as floats, like staticnet.
//!
//! With the `staticnet` facade (`onnx-tests/` runs this for every kind of layer):
//! ```ignore
//! use staticnet::prelude::*;
//!
//! network! {
//!     struct Tiny { input: [4], fc: dense(3), relu, head: dense(2), output: [2] }
//! }
//!
//! # fn main() -> staticnet::Result<()> {
//! let net = Tiny::<f32>::init(Init::Auto, 0);
//! let bytes = net.to_onnx_bytes()?;
//! assert!(bytes.len() > (4 * 3 + 3 * 2) * 4);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "onnx")]
mod encode;
mod graph;
pub mod ops;
#[cfg(feature = "onnx")]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod proto;
pub mod seq;
#[cfg(test)]
mod tests;

pub use graph::{Attr, Data, Graph, Initializer, Node, Tensor};

use crate::error::Result;
use crate::float::Float;

/// The ONNX operator set the exports use.
pub const OPSET: i64 = 17;

/// A network whose inference pass can be written as an ONNX graph; `network!`
/// implements it for every network it generates.
pub trait Export<T: Float> {
    /// The network's name (the graph's name in the file).
    fn onnx_name(&self) -> &'static str;
    /// A sample's shape at the input: `[784]`, `[1, 28, 28]`, `[T]` for tokens.
    fn onnx_input_dims(&self) -> Vec<usize>;
    /// A sample's shape at the output.
    fn onnx_output_dims(&self) -> Vec<usize>;
    /// Adds the nodes of the inference pass reading the value `x` (`[N, ..input]`)
    /// to `g`, named under `g`'s current scope; returns the output value's name.
    ///
    /// # Errors
    /// [`crate::Error::OnnxExport`] naming the first layer that cannot be exported.
    fn onnx_layers(&self, g: &mut Graph, x: &str) -> Result<String>;
}

/// A network's inference pass as an ONNX graph, ready to encode.
#[derive(Debug)]
pub struct Model {
    /// The graph's name.
    pub name: String,
    /// The nodes and initializers.
    pub graph: Graph,
    /// The input value's name and a sample's shape.
    pub input: (String, Vec<usize>),
    /// The output value's name and a sample's shape.
    pub output: (String, Vec<usize>),
}

/// The ONNX graph of `net`'s inference pass, input `input`, output `output`.
///
/// # Errors
/// [`crate::Error::OnnxExport`] naming a layer that cannot be exported.
pub fn build<T: Float, N: Export<T> + ?Sized>(net: &N) -> Result<Model> {
    let mut graph = Graph::new();
    let (input, output) = (graph.fresh("input"), graph.fresh("output"));
    let y = net.onnx_layers(&mut graph, &input)?;
    graph.nodes.push(Node {
        op: "Identity",
        name: "output".into(),
        inputs: vec![y],
        outputs: vec![output.clone()],
        attrs: vec![],
    });
    Ok(Model {
        name: net.onnx_name().to_string(),
        graph,
        input: (input, net.onnx_input_dims()),
        output: (output, net.onnx_output_dims()),
    })
}

/// Writing a network as an ONNX file: every [`Export`] network has these
/// methods (in the prelude).
#[cfg(feature = "onnx")]
pub trait SaveOnnx<T: Float>: Export<T> {
    /// The `.onnx` file's bytes.
    ///
    /// # Errors
    /// [`crate::Error::OnnxExport`] naming a layer that cannot be exported.
    fn to_onnx_bytes(&self) -> Result<Vec<u8>> {
        Ok(encode::to_bytes(&build(self)?))
    }

    /// Writes the `.onnx` file atomically (nothing is written when a layer cannot be exported).
    ///
    /// # Errors
    /// [`crate::Error::OnnxExport`], or [`crate::Error::Io`] if the file cannot be written.
    fn save_onnx(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let bytes = self.to_onnx_bytes()?;
        crate::persist::write_atomic(path, &bytes)
    }
}

#[cfg(feature = "onnx")]
impl<T: Float, N: Export<T> + ?Sized> SaveOnnx<T> for N {}
