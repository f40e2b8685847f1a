//! The `network!` front end (parse, shape check, code generation) on arbitrary
//! text: it must return code or spanned errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::str::FromStr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Only token streams reach a proc macro; text that does not lex is not an input.
    let Ok(tokens) = proc_macro2::TokenStream::from_str(text) else { return };
    let checked = staticnet_dsl::check(tokens.clone());
    let expanded = staticnet_dsl::expand(tokens).to_string();
    // The two entry points agree: errors exactly when the expansion is errors.
    assert_eq!(checked.is_err(), expanded.contains("compile_error"), "{expanded}");
});
