//! Error collection across the pipeline, in the manner of serde_derive's `Ctxt`:
//! every stage records each independent mistake and carries on, so one
//! compile reports all of them.

use proc_macro2::TokenStream;
use std::cell::RefCell;
use std::fmt::Display;

/// Collects spanned errors.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt::default()
    }

    /// Records an error spanned on the tokens of `obj`.
    pub fn error_spanned_by<O: quote::ToTokens, M: Display>(&self, obj: O, msg: M) {
        self.errors.borrow_mut().push(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// Records an error at `span`.
    pub fn error_at<M: Display>(&self, span: proc_macro2::Span, msg: M) {
        self.errors.borrow_mut().push(syn::Error::new(span, msg));
    }

    /// Records an error produced by syn.
    pub fn syn_error(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    /// The errors recorded so far, as messages (for tests).
    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.errors.borrow().iter().map(|e| e.to_string()).collect()
    }

    /// Each error's span (its first) and message (for tests).
    #[cfg(test)]
    pub fn spanned_messages(&self) -> Vec<(proc_macro2::Span, String)> {
        self.errors.borrow().iter().map(|e| (e.span(), e.to_string())).collect()
    }

    /// The errors' messages, for callers outside the compiler.
    pub fn into_messages(self) -> Vec<String> {
        self.errors.into_inner().iter().map(|e| e.to_string()).collect()
    }

    /// Every error as a `compile_error!` invocation, each at its own span.
    pub fn into_compile_errors(self) -> TokenStream {
        self.errors.into_inner().iter().map(syn::Error::to_compile_error).collect()
    }
}
