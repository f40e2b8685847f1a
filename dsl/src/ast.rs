//! The plain syntax tree of the network language, as written, before any checking.

use crate::model::Size;
use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Ident, Lit, Visibility};

/// `network! { #[attrs] vis struct Name<const P: usize, ..> { items } }`
pub struct NetworkDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// Const generic parameters; the parser has resolved their uses to
    /// [`Size::Param`] and [`Value::Param`].
    pub generics: Vec<syn::ConstParam>,
    pub items: Vec<Item>,
}

/// One comma-separated entry of the body.
#[derive(Clone)]
pub enum Item {
    /// `input: [784]`, or `input: tokens[64]` (`tokens` set): token ids
    Input { key: Ident, shape: ShapeLit, tokens: bool },
    /// `output: [10]`
    Output { key: Ident, shape: ShapeLit },
    /// `fc1: dense(256) => [256]`
    Layer(LayerDef),
    /// An entry that failed to parse (already reported), meant as the given
    /// role; the span of its first token, for errors about where it stands.
    Invalid(Role, Span),
}

/// What a broken entry was meant to be, so checking can treat it as present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Input,
    Output,
    Layer,
}

/// A shape as written: `[784]` or `[1, 28, 28]`.
#[derive(Clone)]
pub struct ShapeLit {
    pub dims: Vec<SizeLit>,
    pub span: Span,
}

/// A size as written: a literal, or a const generic parameter of the network.
#[derive(Clone)]
pub struct SizeLit {
    pub size: Size,
    pub span: Span,
}

/// A layer as written.
#[derive(Clone)]
pub struct LayerDef {
    pub name: Option<Ident>,
    pub kind: Ident,
    pub args: Option<Args>,
    /// The `{ .. }` of `residual` and `parallel`.
    pub block: Option<Block>,
    /// The type of a nested network (`encoder: Encoder`); `kind` is its last segment.
    pub nested: Option<syn::Path>,
    /// The constructor's arguments after a type (`gate: MyGate(0.5)`): Rust
    /// expressions handed to `MyGate::new`.
    pub ctor_args: Option<syn::punctuated::Punctuated<syn::Expr, syn::Token![,]>>,
    pub assert: Option<ShapeLit>,
    /// The whole entry, for errors that concern the layer as a whole.
    pub tokens: TokenStream,
}

/// The layers inside a composite layer.
#[derive(Clone)]
pub enum Block {
    /// `residual { layers.. }`
    Layers(Vec<Item>, Span),
    /// `parallel(..) { branch { layers.. } branch { .. } }`
    Branches(Vec<(Vec<Item>, Span)>, Span),
}

/// A parenthesised argument list.
#[derive(Clone)]
pub struct Args {
    pub span: Span,
    pub list: Vec<Arg>,
}

/// One argument.
#[derive(Clone)]
pub enum Arg {
    /// `256`, `0.1`, `same`
    Positional(Value),
    /// `784 -> 256`
    Arrow { from: Value, to: Value },
    /// `bias = false`
    Keyword { key: Ident, value: Value },
}

/// An argument's value as written.
#[derive(Clone)]
pub enum Value {
    Lit(Lit),
    /// `-0.5`: a negated literal.
    Neg(syn::Token![-], Lit),
    Ident(Ident),
    /// `HIDDEN`: a const generic parameter of the network.
    Param(Ident),
    /// `[3, 2]`: a list of values, e.g. a kernel's height and width.
    List(Vec<Value>, Span),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Lit(l) => l.span(),
            Value::Neg(minus, _) => minus.span,
            Value::Ident(i) | Value::Param(i) => i.span(),
            Value::List(_, span) => *span,
        }
    }
}

impl Value {
    /// The value's tokens, so an error can underline all of `-0.5`, not just `-`.
    pub fn tokens(&self) -> proc_macro2::TokenStream {
        use quote::ToTokens;
        match self {
            Value::Lit(l) => l.to_token_stream(),
            Value::Neg(minus, l) => quote::quote!(#minus #l),
            Value::Ident(i) | Value::Param(i) => i.to_token_stream(),
            Value::List(_, span) => quote::quote_spanned!(*span=> list),
        }
    }
}

impl Arg {
    pub fn span(&self) -> Span {
        match self {
            Arg::Positional(v) => v.span(),
            Arg::Arrow { from, .. } => from.span(),
            Arg::Keyword { key, .. } => key.span(),
        }
    }
}
