//! UI tests of `network!`: the macro's error messages are part of the product.
//!
//! `tests/ui/fail/*.rs` must fail to compile with exactly the checked-in
//! `.stderr`; `tests/ui/pass/*.rs` must compile and run. To regenerate the
//! expected output after an intended change to a message:
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! and read every changed `.stderr` before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
