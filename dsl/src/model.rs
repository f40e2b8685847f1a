//! The checked network: every layer resolved, named and shaped. Produced by
//! [`crate::check`], consumed by [`crate::expand`].

use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};
use std::fmt;
use syn::{Attribute, Ident, Visibility};

pub struct Model {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// The network's const generic parameters (`const HIDDEN: usize = 128`), as written.
    pub generics: Vec<syn::ConstParam>,
    pub input: Shape,
    pub layers: Vec<Layer>,
    /// The trainable scalars, not counting nested networks'.
    pub param_count: Count,
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
    /// Values per output position; saturating, though the checker has refused any that overflow.
    pub fn patch(&self) -> usize {
        self.in_channels.saturating_mul(self.kernel[0]).saturating_mul(self.kernel[1])
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

/// Sizes of a convolution over the steps of a `[steps, features]` input (the
/// features are its channels): mirrors `staticnet::layers::Conv1dGeometry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dGeometry {
    pub steps: usize,
    pub in_features: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero padding at both ends.
    pub padding: usize,
    pub dilation: usize,
    pub out_steps: usize,
}

/// Sizes of a pooling window over the steps of a `[steps, features]` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool1dGeometry {
    pub steps: usize,
    pub features: usize,
    pub kernel: usize,
    pub stride: usize,
    pub out_steps: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Dense {
        inputs: Size,
        outputs: Size,
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
        channels: Size,
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
    /// A type used as a layer: a network made by `network!`, or a layer of
    /// the user's (`CustomLayer`), built by `Type::new(args)` when `args` are
    /// written and by `Default::default()` otherwise.
    Nested {
        path: syn::Path,
        args: Option<syn::punctuated::Punctuated<syn::Expr, syn::Token![,]>>,
    },
    /// A rank-1 layer (`dense`, `layer_norm`, `softmax`) applied to every step
    /// of a `[steps, inputs]` input, giving `[steps, outputs]`.
    PerStep {
        steps: usize,
        inputs: usize,
        outputs: usize,
        inner: Box<LayerKind>,
    },
    /// `conv1d`: over the steps, the features as channels.
    Conv1d {
        geometry: Conv1dGeometry,
        bias: bool,
        same: bool,
    },
    MaxPool1d(Pool1dGeometry),
    AvgPool1d(Pool1dGeometry),
    /// The mean over the steps: `[steps, features]` to `[features]`.
    GlobalAvgPool1d {
        steps: usize,
        features: usize,
    },
    /// The last step: `[steps, features]` to `[features]`.
    Last {
        steps: usize,
        features: usize,
    },
    /// `lstm(H)`, `gru(H)`: `[steps, inputs]` to `[steps, hidden]`, every step's hidden state.
    Recurrent {
        cell: Cell,
        steps: usize,
        inputs: usize,
        hidden: usize,
    },
    /// Multi-head self-attention, `[steps, dim]` to `[steps, dim]`.
    Attention {
        steps: usize,
        dim: usize,
        heads: usize,
        causal: bool,
    },
    /// `embedding(V -> D)`: `tokens[steps]` to `[steps, dim]`.
    Embedding {
        steps: usize,
        vocab: usize,
        dim: usize,
    },
    /// A learned `[steps, dim]` table added to the input.
    Positional {
        steps: usize,
        dim: usize,
    },
}

/// The cell of a recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    /// The name written in `network!`.
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Gates per hidden unit: PyTorch stacks them in its weights (`[4H, F]`, `[3H, F]`).
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
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
    Silu,
    Elu(f64),
    Selu,
    Softplus,
    Mish,
    LogSoftmax,
}

impl Activation {
    /// Whether He initialisation suits a layer that feeds this activation.
    pub fn is_relu_like(self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu(_))
    }
}

impl LayerKind {
    /// Trainable scalars of a layer whose output has `features` values.
    pub fn param_count(&self, features: &Size) -> Count {
        let dense = |inputs: &Size, outputs: &Size, bias: bool| {
            let weights = Count::of(inputs).mul(&Count::of(outputs));
            if bias {
                weights.add(&Count::of(outputs))
            } else {
                weights
            }
        };
        match self {
            LayerKind::Dense { inputs, outputs, bias } => dense(inputs, outputs, *bias),
            LayerKind::Conv2d { geometry: g, bias, .. } => {
                let weights = Count::Lit(g.patch()).mul(&Count::Lit(g.out_channels));
                weights.add(&Count::Lit(if *bias { g.out_channels } else { 0 }))
            }
            LayerKind::BatchNorm { channels, .. } => Count::Lit(2).mul(&Count::of(channels)),
            LayerKind::LayerNorm { .. } => Count::Lit(2).mul(&Count::of(features)),
            LayerKind::Residual { body, projection } => {
                let proj = projection.as_ref().map_or(Count::Lit(0), |p| p.param_count(features));
                sequence_params(body).add(&proj)
            }
            LayerKind::Parallel { branches, .. } => {
                branches.iter().fold(Count::Lit(0), |acc, b| acc.add(&sequence_params(b)))
            }
            LayerKind::PerStep { outputs, inner, .. } => inner.param_count(&Size::Lit(*outputs)),
            LayerKind::Conv1d { geometry: g, bias, .. } => {
                let weights =
                    Count::Lit(g.in_features).mul(&Count::Lit(g.kernel)).mul(&Count::Lit(g.out_channels));
                weights.add(&Count::Lit(if *bias { g.out_channels } else { 0 }))
            }
            LayerKind::Recurrent { cell, inputs, hidden, .. } => {
                // weight_ih [gH, F], weight_hh [gH, H], bias_ih and bias_hh [gH].
                let rows = Count::Lit(cell.gates()).mul(&Count::Lit(*hidden));
                let per_row = Count::Lit(*inputs).add(&Count::Lit(*hidden)).add(&Count::Lit(2));
                rows.mul(&per_row)
            }
            LayerKind::Attention { dim, .. } => {
                // in_proj [3D, D] + [3D], out_proj [D, D] + [D]: 4·D·(D + 1).
                Count::Lit(4).mul(&Count::Lit(*dim)).mul(&Count::Lit(*dim).add(&Count::Lit(1)))
            }
            LayerKind::Positional { steps, dim } => Count::Lit(*steps).mul(&Count::Lit(*dim)),
            LayerKind::Embedding { vocab, dim, .. } => Count::Lit(*vocab).mul(&Count::Lit(*dim)),
            _ => Count::Lit(0),
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
                | LayerKind::Conv1d { .. }
                | LayerKind::Recurrent { .. }
                | LayerKind::Attention { .. }
                | LayerKind::Positional { .. }
                | LayerKind::Embedding { .. }
        ) || matches!(self, LayerKind::PerStep { inner, .. } if inner.has_params())
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
            LayerKind::Activation(Activation::Elu(a)) => write!(f, "elu({a})"),
            LayerKind::Activation(Activation::LogSoftmax) => f.write_str("log_softmax"),
            LayerKind::Residual { projection: None, .. } => f.write_str("residual"),
            LayerKind::Residual { projection: Some(_), .. } => f.write_str("residual(projection)"),
            LayerKind::Parallel { join: Join::Concat, .. } => f.write_str("parallel(concat)"),
            LayerKind::Parallel { join: Join::Add, .. } => f.write_str("parallel(add)"),
            LayerKind::Nested { path, .. } => {
                let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
                f.write_str(&names.join("::"))
            }
            LayerKind::Activation(a) => f.write_str(&format!("{a:?}").to_lowercase()),
            LayerKind::PerStep { inner, .. } => inner.fmt(f),
            LayerKind::Conv1d { geometry: g, bias, same } => {
                write!(f, "conv1d({} -> {}, kernel = {}", g.in_features, g.out_channels, g.kernel)?;
                if g.stride != 1 {
                    write!(f, ", stride = {}", g.stride)?;
                }
                if *same {
                    write!(f, ", padding = same")?;
                } else if g.padding != 0 {
                    write!(f, ", padding = {}", g.padding)?;
                }
                if g.dilation != 1 {
                    write!(f, ", dilation = {}", g.dilation)?;
                }
                if !bias {
                    write!(f, ", bias = false")?;
                }
                f.write_str(")")
            }
            LayerKind::MaxPool1d(g) | LayerKind::AvgPool1d(g) => {
                let name = if matches!(self, LayerKind::MaxPool1d(_)) { "max_pool" } else { "avg_pool" };
                write!(f, "{name}({}", g.kernel)?;
                if g.stride != g.kernel {
                    write!(f, ", stride = {}", g.stride)?;
                }
                f.write_str(")")
            }
            LayerKind::GlobalAvgPool1d { .. } => f.write_str("global_avg_pool"),
            LayerKind::Last { .. } => f.write_str("last"),
            LayerKind::Recurrent { cell, inputs, hidden, .. } => {
                write!(f, "{}({inputs} -> {hidden})", cell.name())
            }
            LayerKind::Attention { heads, causal, .. } => {
                write!(f, "attention(heads = {heads}{})", if *causal { ", causal" } else { "" })
            }
            LayerKind::Positional { .. } => f.write_str("positional"),
            LayerKind::Embedding { vocab, dim, .. } => write!(f, "embedding({vocab} -> {dim})"),
        }
    }
}

/// The networks nested anywhere in `layers` (their parameters are counted by the compiler).
pub fn nested_paths(layers: &[Layer]) -> Vec<&syn::Path> {
    let mut out = Vec::new();
    for l in layers {
        match &l.kind {
            LayerKind::Nested { path, .. } => out.push(path),
            LayerKind::Residual { body, .. } => out.extend(nested_paths(body)),
            LayerKind::Parallel { branches, .. } => branches.iter().for_each(|b| out.extend(nested_paths(b))),
            _ => {}
        }
    }
    out
}

/// The non-trainable scalars (batch-norm running statistics) in `layers`, blocks included.
pub fn buffer_count(layers: &[Layer]) -> Count {
    layers
        .iter()
        .map(|l| match &l.kind {
            LayerKind::BatchNorm { channels, .. } => Count::Lit(2).mul(&Count::of(channels)),
            LayerKind::Residual { body, .. } => buffer_count(body),
            LayerKind::Parallel { branches, .. } => {
                branches.iter().fold(Count::Lit(0), |acc, b| acc.add(&buffer_count(b)))
            }
            _ => Count::Lit(0),
        })
        .fold(Count::Lit(0), |acc, c| acc.add(&c))
}

/// The trainable scalars of a sequence of layers, not counting nested networks.
pub fn sequence_params(layers: &[Layer]) -> Count {
    layers.iter().fold(Count::Lit(0), |acc, l| acc.add(&l.kind.param_count(&l.output.size())))
}

/// The most trainable scalars a network may have: each is held at least once
/// as f64 (8 bytes), and rustc refuses types larger than 2^61 bytes on 64-bit
/// targets, so beyond this the user would meet "too big for the target
/// architecture" deep inside nalgebra instead of this crate's message.
pub const MAX_PARAMS: usize = 1 << 58;

/// A size: a number, or a const generic parameter of the network (`HIDDEN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    Lit(usize),
    Param(Ident),
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Lit(n) => write!(f, "{n}"),
            Size::Param(p) => write!(f, "{p}"),
        }
    }
}

/// As a const generic argument: `784` or `HIDDEN`.
impl ToTokens for Size {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Size::Lit(n) => Literal::usize_unsuffixed(*n).to_tokens(tokens),
            Size::Param(p) => p.to_tokens(tokens),
        }
    }
}

/// A count of scalars: a number (saturating at `usize::MAX`), or, when it
/// depends on const generic parameters, a constant expression that the
/// compiler evaluates per instantiation (also saturating, so that an
/// instantiation too large to exist fails a readable assertion instead of
/// overflowing).
#[derive(Clone, Debug)]
pub enum Count {
    Lit(usize),
    Code(TokenStream),
}

impl Count {
    pub fn of(size: &Size) -> Count {
        match size {
            Size::Lit(n) => Count::Lit(*n),
            Size::Param(p) => Count::Code(quote!(#p)),
        }
    }

    pub fn add(&self, other: &Count) -> Count {
        match (self, other) {
            (Count::Lit(a), Count::Lit(b)) => Count::Lit(a.saturating_add(*b)),
            (Count::Lit(0), c) | (c, Count::Lit(0)) => c.clone(),
            (a, b) => {
                let (a, b) = (a.typed(), b.typed());
                Count::Code(quote!(#a.saturating_add(#b)))
            }
        }
    }

    pub fn mul(&self, other: &Count) -> Count {
        match (self, other) {
            (Count::Lit(a), Count::Lit(b)) => Count::Lit(a.saturating_mul(*b)),
            (Count::Lit(1), c) | (c, Count::Lit(1)) => c.clone(),
            (a, b) => {
                let (a, b) = (a.typed(), b.typed());
                Count::Code(quote!(#a.saturating_mul(#b)))
            }
        }
    }

    /// As the receiver or argument of a method call: `784usize`, `(HIDDEN)`.
    fn typed(&self) -> TokenStream {
        match self {
            Count::Lit(n) => Literal::usize_suffixed(*n).to_token_stream(),
            Count::Code(code) => quote!((#code)),
        }
    }
}

impl ToTokens for Count {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Count::Lit(n) => Literal::usize_unsuffixed(*n).to_tokens(tokens),
            Count::Code(code) => quote!((#code)).to_tokens(tokens),
        }
    }
}

/// A shape, `[784]`, `[steps, features]` or `[C, H, W]`, or `[HIDDEN]` for a const generic feature
/// count; `Unknown` after an error, so that one mistake is reported once and
/// not again by every layer after it.
///
/// A generic size only ever stands alone as the features of a rank-1 shape:
/// a type argument on stable Rust may be a const parameter or a literal, not
/// arithmetic on a parameter, so `[C, 28, 28]` (which needs `C·784`) cannot
/// be generated.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Known(Vec<usize>),
    Generic(Ident),
    /// `tokens[T]`: `T` token ids per sample, which only `embedding` takes.
    Tokens(usize),
    Unknown,
}

impl Shape {
    /// Whether the shape is known (not `Unknown` after an error).
    pub fn is_known(&self) -> bool {
        !matches!(self, Shape::Unknown)
    }

    /// The features of a rank-1 shape.
    pub fn features(&self) -> Option<Size> {
        match self {
            Shape::Known(d) if d.len() == 1 => Some(Size::Lit(d[0])),
            Shape::Generic(p) => Some(Size::Param(p.clone())),
            _ => None,
        }
    }

    /// `[steps, features]` of a rank-2 shape.
    pub fn steps_features(&self) -> Option<[usize; 2]> {
        match self {
            Shape::Known(d) if d.len() == 2 => Some([d[0], d[1]]),
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
    pub fn size(&self) -> Size {
        match self {
            Shape::Known(d) => Size::Lit(d.iter().fold(1, |a, &b| a.saturating_mul(b))),
            Shape::Generic(p) => Size::Param(p.clone()),
            Shape::Tokens(t) => Size::Lit(*t),
            Shape::Unknown => Size::Lit(0),
        }
    }

    /// The number of scalars per sample, `None` on overflow or when unknown.
    pub fn size_checked(&self) -> Option<Size> {
        match self {
            Shape::Known(d) => d.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).map(Size::Lit),
            Shape::Generic(p) => Some(Size::Param(p.clone())),
            Shape::Tokens(t) => Some(Size::Lit(*t)),
            Shape::Unknown => None,
        }
    }

    pub fn rank(&self) -> Option<usize> {
        match self {
            Shape::Known(d) => Some(d.len()),
            Shape::Generic(_) | Shape::Tokens(_) => Some(1),
            Shape::Unknown => None,
        }
    }

    /// The sizes, as const generic arguments or values: `[784]`, `[HIDDEN]`.
    pub fn dims(&self) -> Vec<Size> {
        match self {
            Shape::Known(d) => d.iter().map(|&n| Size::Lit(n)).collect(),
            Shape::Generic(p) => vec![Size::Param(p.clone())],
            Shape::Tokens(t) => vec![Size::Lit(*t)],
            Shape::Unknown => Vec::new(),
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
            Shape::Generic(p) => write!(f, "[{p}]"),
            Shape::Tokens(t) => write!(f, "tokens[{t}]"),
            Shape::Unknown => f.write_str("[?]"),
        }
    }
}
