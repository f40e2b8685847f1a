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

#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The struct field and buffer name, as written (`r#type` stays raw):
    /// the user's name, or `{kind}_{position}`.
    pub ident: Ident,
    /// The same name as text, without `r#`: for messages and `LayerInfo`.
    pub name: String,
    /// The `state_dict` prefix: the user's name, or the 0-based position (as in `nn.Sequential`).
    pub param_name: String,
    /// 0-based position among the layers.
    pub position: usize,
    pub kind: LayerKind,
    pub input: Shape,
    pub output: Shape,
}

/// Sizes of a convolution, all resolved: mirrors `staticnet::layers::Conv2dGeometry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding at the top and left; bottom and right follow from the output size.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub out_height: usize,
    pub out_width: usize,
}

impl ConvGeometry {
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    pub fn patch_checked(&self) -> Option<usize> {
        self.in_channels.checked_mul(self.kernel[0])?.checked_mul(self.kernel[1])
    }
}

/// Sizes of a pooling window, all resolved: mirrors `staticnet::layers::PoolGeometry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub out_height: usize,
    pub out_width: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Dense {
        inputs: usize,
        outputs: usize,
        bias: bool,
    },
    Conv2d {
        geometry: ConvGeometry,
        bias: bool,
        same: bool,
    },
    MaxPool(PoolGeometry),
    AvgPool(PoolGeometry),
    GlobalAvgPool {
        channels: usize,
        spatial: usize,
    },
    Flatten,
    BatchNorm {
        channels: usize,
        eps: f64,
        momentum: f64,
    },
    LayerNorm {
        eps: f64,
    },
    Dropout {
        p: f64,
    },
    Activation(Activation),
    /// `body(x) + x`, or `body(x) + projection(x)` (a dense or 1×1 strided conv layer).
    Residual {
        body: Vec<Layer>,
        projection: Option<Box<LayerKind>>,
    },
    /// Branches over the same input, joined.
    Parallel {
        join: Join,
        branches: Vec<Vec<Layer>>,
    },
    /// A network made by `network!`, used as a layer.
    Nested {
        path: syn::Path,
    },
}

/// How `parallel` joins its branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Along channels (rank 3) or features (rank 1), in branch order.
    Concat,
    /// Element-wise sum; the branches' shapes are equal.
    Add,
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
    /// Trainable scalars; `None` on overflow.
    pub fn param_count(&self, features: usize) -> Option<usize> {
        match *self {
            LayerKind::Dense { inputs, outputs, bias } => {
                inputs.checked_mul(outputs)?.checked_add(if bias { outputs } else { 0 })
            }
            LayerKind::Conv2d { geometry: g, bias, .. } => {
                g.patch().checked_mul(g.out_channels)?.checked_add(if bias { g.out_channels } else { 0 })
            }
            LayerKind::BatchNorm { channels, .. } => channels.checked_mul(2),
            LayerKind::LayerNorm { .. } => features.checked_mul(2),
            LayerKind::Residual { ref body, ref projection } => {
                let proj = match projection {
                    Some(p) => p.param_count(0)?,
                    None => 0,
                };
                sequence_params(body)?.checked_add(proj)
            }
            LayerKind::Parallel { ref branches, .. } => {
                branches.iter().try_fold(0usize, |acc, b| acc.checked_add(sequence_params(b)?))
            }
            _ => Some(0),
        }
    }

    /// Whether the layer holds parameters (and is visited by `Params`).
    pub fn has_params(&self) -> bool {
        matches!(
            self,
            LayerKind::Dense { .. }
                | LayerKind::Conv2d { .. }
                | LayerKind::BatchNorm { .. }
                | LayerKind::LayerNorm { .. }
                | LayerKind::Residual { .. }
                | LayerKind::Parallel { .. }
                | LayerKind::Nested { .. }
        )
    }

    /// Whether the layer is a field of the network struct: it has parameters or state.
    pub fn is_field(&self) -> bool {
        self.has_params() || matches!(self, LayerKind::Dropout { .. })
    }
}

/// How the layer reads in summaries and errors: `dense(784 -> 256)`, `leaky_relu(0.1)`.
impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pair =
            |v: [usize; 2]| if v[0] == v[1] { v[0].to_string() } else { format!("[{}, {}]", v[0], v[1]) };
        match self {
            LayerKind::Dense { inputs, outputs, bias: true } => write!(f, "dense({inputs} -> {outputs})"),
            LayerKind::Dense { inputs, outputs, bias: false } => {
                write!(f, "dense({inputs} -> {outputs}, bias = false)")
            }
            LayerKind::Conv2d { geometry: g, bias, same } => {
                write!(f, "conv2d({} -> {}, kernel = {}", g.in_channels, g.out_channels, pair(g.kernel))?;
                if g.stride != [1, 1] {
                    write!(f, ", stride = {}", pair(g.stride))?;
                }
                if *same {
                    write!(f, ", padding = same")?;
                } else if g.padding != [0, 0] {
                    write!(f, ", padding = {}", pair(g.padding))?;
                }
                if g.dilation != [1, 1] {
                    write!(f, ", dilation = {}", pair(g.dilation))?;
                }
                if !bias {
                    write!(f, ", bias = false")?;
                }
                f.write_str(")")
            }
            LayerKind::MaxPool(g) | LayerKind::AvgPool(g) => {
                let name = if matches!(self, LayerKind::MaxPool(_)) { "max_pool" } else { "avg_pool" };
                write!(f, "{name}({}", pair(g.kernel))?;
                if g.stride != g.kernel {
                    write!(f, ", stride = {}", pair(g.stride))?;
                }
                f.write_str(")")
            }
            LayerKind::GlobalAvgPool { .. } => f.write_str("global_avg_pool"),
            LayerKind::Flatten => f.write_str("flatten"),
            LayerKind::BatchNorm { .. } => f.write_str("batch_norm"),
            LayerKind::LayerNorm { .. } => f.write_str("layer_norm"),
            LayerKind::Dropout { p } => write!(f, "dropout({p})"),
            LayerKind::Activation(Activation::LeakyRelu(a)) => write!(f, "leaky_relu({a})"),
            LayerKind::Residual { projection: None, .. } => f.write_str("residual"),
            LayerKind::Residual { projection: Some(_), .. } => f.write_str("residual(projection)"),
            LayerKind::Parallel { join: Join::Concat, .. } => f.write_str("parallel(concat)"),
            LayerKind::Parallel { join: Join::Add, .. } => f.write_str("parallel(add)"),
            LayerKind::Nested { path } => {
                let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
                f.write_str(&names.join("::"))
            }
            LayerKind::Activation(a) => f.write_str(&format!("{a:?}").to_lowercase()),
        }
    }
}

/// The networks nested anywhere in `layers` (their parameters are counted by the compiler).
pub fn nested_paths(layers: &[Layer]) -> Vec<&syn::Path> {
    let mut out = Vec::new();
    for l in layers {
        match &l.kind {
            LayerKind::Nested { path } => out.push(path),
            LayerKind::Residual { body, .. } => out.extend(nested_paths(body)),
            LayerKind::Parallel { branches, .. } => branches.iter().for_each(|b| out.extend(nested_paths(b))),
            _ => {}
        }
    }
    out
}

/// The non-trainable scalars (batch-norm running statistics) in `layers`, blocks included.
pub fn buffer_count(layers: &[Layer]) -> usize {
    layers
        .iter()
        .map(|l| match &l.kind {
            LayerKind::BatchNorm { channels, .. } => 2 * channels,
            LayerKind::Residual { body, .. } => buffer_count(body),
            LayerKind::Parallel { branches, .. } => branches.iter().map(|b| buffer_count(b)).sum(),
            _ => 0,
        })
        .sum()
}

/// The trainable scalars of a sequence of layers, not counting nested networks; `None` on overflow.
pub fn sequence_params(layers: &[Layer]) -> Option<usize> {
    layers.iter().try_fold(0usize, |acc, l| acc.checked_add(l.kind.param_count(l.output.size())?))
}

/// A shape, `[784]` or `[C, H, W]`; `Unknown` after an error, so that one
/// mistake is reported once and not again by every layer after it.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Known(Vec<usize>),
    Unknown,
}

impl Shape {
    /// The features of a rank-1 shape.
    pub fn features(&self) -> Option<usize> {
        match self {
            Shape::Known(d) if d.len() == 1 => Some(d[0]),
            _ => None,
        }
    }

    /// `[C, H, W]` of a rank-3 shape.
    pub fn chw(&self) -> Option<[usize; 3]> {
        match self {
            Shape::Known(d) if d.len() == 3 => Some([d[0], d[1], d[2]]),
            _ => None,
        }
    }

    /// The number of scalars per sample (the batch's row count); the checker
    /// has made sure it does not overflow.
    pub fn size(&self) -> usize {
        match self {
            Shape::Known(d) => d.iter().product(),
            Shape::Unknown => 0,
        }
    }

    /// The number of scalars per sample, `None` on overflow.
    pub fn size_checked(&self) -> Option<usize> {
        match self {
            Shape::Known(d) => d.iter().try_fold(1usize, |a, &b| a.checked_mul(b)),
            Shape::Unknown => None,
        }
    }

    pub fn rank(&self) -> Option<usize> {
        match self {
            Shape::Known(d) => Some(d.len()),
            Shape::Unknown => None,
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
