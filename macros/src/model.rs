//! The checked network: every layer resolved, named and shaped. Produced by
//! [`crate::check`], consumed by [`crate::expand`].

use std::fmt;
use syn::{Attribute, Ident, Visibility};

pub struct Model {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub input: Shape,
    pub layers: Vec<Layer>,
    /// The total number of trainable scalars.
    pub param_count: usize,
}

impl Model {
    pub fn output(&self) -> &Shape {
        self.layers.last().map_or(&self.input, |l| &l.output)
    }
}

pub struct Layer {
    /// The struct field and trace buffer name, as written (`r#type` stays raw):
    /// the user's name, or `{kind}_{position}`.
    pub ident: Ident,
    /// The same name as text, without `r#`: for messages and `LayerInfo`.
    pub name: String,
    /// The `state_dict` prefix: the user's name, or the 0-based position (as in `nn.Sequential`).
    pub param_name: String,
    pub kind: LayerKind,
    pub input: Shape,
    pub output: Shape,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Dense { inputs: usize, outputs: usize, bias: bool },
    Activation(Activation),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f64),
    Sigmoid,
    Tanh,
    Gelu,
    Softmax,
    Identity,
}

impl Activation {
    /// Whether He initialisation suits a layer that feeds this activation.
    pub fn is_relu_like(self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu(_))
    }
}

impl LayerKind {
    pub fn param_count(&self) -> Option<usize> {
        match *self {
            LayerKind::Dense { inputs, outputs, bias } => {
                inputs.checked_mul(outputs)?.checked_add(if bias { outputs } else { 0 })
            }
            LayerKind::Activation(_) => Some(0),
        }
    }
}

/// How the layer reads in summaries and errors: `dense(784 -> 256)`, `leaky_relu(0.1)`.
impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerKind::Dense { inputs, outputs, bias: true } => write!(f, "dense({inputs} -> {outputs})"),
            LayerKind::Dense { inputs, outputs, bias: false } => {
                write!(f, "dense({inputs} -> {outputs}, bias = false)")
            }
            LayerKind::Activation(Activation::LeakyRelu(a)) => write!(f, "leaky_relu({a})"),
            LayerKind::Activation(a) => {
                let name = format!("{a:?}").to_lowercase();
                f.write_str(&name)
            }
        }
    }
}

/// A shape, `[784]`; `Unknown` after an error, so that one mistake is reported once
/// and not again by every layer after it.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Known(Vec<usize>),
    Unknown,
}

impl Shape {
    pub fn features(&self) -> Option<usize> {
        match self {
            Shape::Known(d) if d.len() == 1 => Some(d[0]),
            _ => None,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Known(dims) => {
                let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                write!(f, "[{}]", dims.join(", "))
            }
            Shape::Unknown => f.write_str("[?]"),
        }
    }
}
