//! The `network!` macro of staticnet.
//!
//! A pipeline in three stages, each testable on its own over
//! `proc_macro2::TokenStream`:
//! 1. [`parse`]: tokens to the plain syntax tree of [`ast`];
//! 2. [`check`]: resolves layers and infers and checks every shape, giving a [`model::Model`];
//! 3. [`expand`]: the model to Rust code.
//!
//! Errors are collected in a [`ctxt::Ctxt`] so one compile reports every
//! independent mistake, each spanned on the tokens at fault.

mod ast;
mod check;
mod ctxt;
mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Declares a statically shaped network. See the staticnet crate's documentation.
///
/// ```ignore
/// network! {
///     pub struct Mlp {
///         input: [784],
///         fc1: dense(256), relu,
///         fc2: dense(128), relu,
///         head: dense(10),
///     }
/// }
/// ```
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    run(input.into()).into()
}

/// The whole pipeline over `proc_macro2` tokens: generated code, or every error found.
fn run(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let cx = ctxt::Ctxt::new();
    let model = parse::parse(input, &cx).and_then(|def| check::check(def, &cx));
    match model {
        Some(model) if !cx.has_errors() => expand::expand(&model),
        _ => cx.into_compile_errors(),
    }
}
