//! The front end of `network!`, as plain functions over `proc_macro2::TokenStream`.
//!
//! A pipeline in three stages, each testable on its own:
//! 1. `parse`: tokens to the plain syntax tree of `ast`;
//! 2. `check`: resolves layers and infers and checks every shape, giving a `model::Model`;
//! 3. `expand`: the model to Rust code.
//!
//! Errors are collected in a `ctxt::Ctxt` so one compile reports every
//! independent mistake, each spanned on the tokens at fault. The proc-macro
//! crate `staticnet-macros` calls [`expand`]; fuzzers and tests call it too.

mod ast;
mod check;
mod ctxt;
mod expand;
mod model;
mod nesting;
mod parse;

/// The whole pipeline: the generated code, or every error found as
/// `compile_error!` invocations. Never panics on any input.
pub fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    run(input)
}

/// Whether the input is a valid network; the error messages otherwise.
pub fn check(input: proc_macro2::TokenStream) -> Result<(), Vec<String>> {
    let cx = ctxt::Ctxt::new();
    let model = parse::parse(input, &cx).and_then(|def| check::check(def, &cx));
    match model {
        Some(_) if !cx.has_errors() => Ok(()),
        _ => Err(cx.into_messages()),
    }
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

#[cfg(test)]
mod generate;
#[cfg(test)]
mod property;
