//! The `network!` macro of staticnet: a thin wrapper over `staticnet-dsl`,
//! which holds the pipeline (parse, check, expand) as plain functions over
//! `proc_macro2::TokenStream` so it can be tested and fuzzed outside the compiler.

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
    staticnet_dsl::expand(input.into()).into()
}
