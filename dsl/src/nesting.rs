//! The nesting limit, checked over the raw tokens before anything recurses.
//!
//! Every later stage walks the input recursively: syn's token buffer, the
//! parser (`parse_block`, `parse_value`), the checker (`check_sequence` on a
//! block's body), the expansion, and the compiler over the generated types.
//! So the depth is bounded first, by one iterative pass over the token tree,
//! and an input past the limit is refused with a spanned error before any of
//! them sees it. Each later stage then recurses at most a few dozen levels and
//! stays linear in the input's size.

use crate::ctxt::Ctxt;
use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The most block bodies one inside another: `residual { .. }`,
/// `parallel(..) { .. }` and each `branch { .. }` count one level each (so a
/// `parallel` block is two). Real networks nest a handful of levels (an
/// inception block's branch holding a residual block is three); 32 leaves
/// room for any design while keeping every recursion over the blocks, and the
/// nested generic types the compiler must resolve, shallow.
pub const MAX_BLOCK_DEPTH: usize = 32;

/// The most brackets of any kind one inside another, blocks included: a
/// safety net for lists (`[[[..]]]`) and stray groups, generous enough that a
/// network within [`MAX_BLOCK_DEPTH`] never meets it.
pub const MAX_BRACKET_DEPTH: usize = 2 * MAX_BLOCK_DEPTH;

/// Whether the input nests within the limits; otherwise the first group too
/// deep is reported at its opening bracket. The network's own `{ .. }` is not
/// a block.
pub fn within_limits(input: &TokenStream, cx: &Ctxt) -> bool {
    // The groups being walked, each with the blocks and brackets around its contents.
    let mut stack = vec![(input.clone().into_iter(), 0usize, 0usize)];
    while let Some((tokens, blocks, brackets)) = stack.last_mut() {
        let (blocks, brackets) = (*blocks, *brackets);
        let Some(tt) = tokens.next() else {
            stack.pop();
            continue;
        };
        let TokenTree::Group(group) = tt else { continue };
        let braced = group.delimiter() == Delimiter::Brace;
        // The first brace at the top level is the network's body, not a block.
        let is_block = braced && stack.len() > 1;
        let (blocks, brackets) = (blocks + usize::from(is_block), brackets + 1);
        if blocks > MAX_BLOCK_DEPTH {
            cx.error_at(
                group.span_open(),
                format!(
                    "blocks nested too deeply: `network!` allows at most {MAX_BLOCK_DEPTH} levels of \
                     `residual {{ .. }}`, `parallel(..) {{ .. }}` and `branch {{ .. }}` bodies, one inside another"
                ),
            );
            return false;
        }
        if brackets > MAX_BRACKET_DEPTH {
            cx.error_at(
                group.span_open(),
                format!("brackets nested too deeply: `network!` allows at most {MAX_BRACKET_DEPTH} levels"),
            );
            return false;
        }
        stack.push((group.stream().into_iter(), blocks, brackets));
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// `levels` blocks made by `open`, one inside another, around `dense(4)`.
    fn nested(open: &str, close: &str, levels: usize) -> String {
        let body = format!("{}dense(4){}", open.repeat(levels), close.repeat(levels));
        format!("struct N {{ input: [4], {body} }}")
    }

    fn check_quickly(source: &str) -> Result<(), Vec<String>> {
        let tokens: proc_macro2::TokenStream = source.parse().expect("tokens");
        let start = Instant::now();
        let result = crate::check(tokens);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        result
    }

    #[test]
    fn ten_thousand_nested_blocks_are_refused_at_once() {
        for (open, close) in [("residual { ", " }"), ("parallel(add) { branch { ", " } branch { relu } }")] {
            let errs = check_quickly(&nested(open, close, 10_000)).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains("blocks nested too deeply"), "{errs:?}");
        }
        let errs = check_quickly(&format!(
            "struct N {{ input: [4], dense({}4{}) }}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ))
        .unwrap_err();
        assert!(errs[0].contains("brackets nested too deeply"), "{errs:?}");
    }

    #[test]
    fn the_limit_is_exact() {
        let at = |levels| check_quickly(&nested("residual { ", " }", levels));
        assert_eq!(at(super::MAX_BLOCK_DEPTH), Ok(()));
        assert!(at(super::MAX_BLOCK_DEPTH + 1).unwrap_err()[0].contains("blocks nested too deeply"));
        // A parallel block is two levels: its body and a branch.
        let parallel =
            |levels| check_quickly(&nested("parallel(add) { branch { ", " } branch { relu } }", levels));
        assert_eq!(parallel(super::MAX_BLOCK_DEPTH / 2), Ok(()));
        assert!(parallel(super::MAX_BLOCK_DEPTH / 2 + 1).is_err());
    }
}
