//! `input: tokens[T]` and `embedding(V -> D)`: the issue's transformer, and
//! one spanned message per mistake with token ids.

use super::*;
use crate::model::{Count, Size};
use crate::parse::parse;
use proc_macro2::TokenStream;
use quote::quote;

fn run(tokens: TokenStream) -> (Option<Model>, Vec<String>) {
    let cx = Ctxt::new();
    let model = parse(tokens, &cx).and_then(|def| check(def, &cx));
    (model, cx.messages())
}

fn errors(tokens: TokenStream) -> Vec<String> {
    run(tokens).1
}

#[test]
fn char_gpt_from_the_issue() {
    let (model, errs) = run(quote! {
        pub struct CharGpt {
            input: tokens[64],
            embed: embedding(63 -> 128),
            pos: positional,
            att1: residual { layer_norm, attention(heads = 4, causal) },
            ff1: residual { layer_norm, dense(512), gelu, dense(128) },
            att2: residual { layer_norm, attention(heads = 4, causal) },
            ff2: residual { layer_norm, dense(512), gelu, dense(128) },
            layer_norm,
            head: dense(63),
            output: [64, 63],
        }
    });
    assert!(errs.is_empty(), "{errs:?}");
    let m = model.expect("a model");
    assert_eq!(m.input, Shape::Tokens(64));
    assert_eq!(m.input.to_string(), "tokens[64]");
    assert_eq!(m.layers[0].kind, LayerKind::Embedding { steps: 64, vocab: 63, dim: 128 });
    assert_eq!(m.layers[0].output.to_string(), "[64, 128]");
    assert_eq!(m.layers[0].kind.to_string(), "embedding(63 -> 128)");
    // The embedding's table, the position table, then the blocks.
    assert!(matches!(m.layers[0].kind.param_count(&Size::Lit(0)), Count::Lit(8064)));
    assert!(matches!(m.layers[1].kind.param_count(&Size::Lit(0)), Count::Lit(8192)));
}

#[test]
fn only_an_embedding_takes_token_ids() {
    let errs = errors(quote! { struct N { input: tokens[8], fc: dense(4) } });
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("`fc: dense` cannot take token ids (`input` gives tokens[8])"), "{errs:?}");
    assert!(errs[0].contains("embedding(V -> D)"), "{errs:?}");
    let errs = errors(quote! { struct N { input: tokens[8], relu, embedding(5 -> 2) } });
    assert_eq!(errs.len(), 1, "{errs:?}");
    let errs = errors(quote! { struct N { input: tokens[8], r: residual { embedding(5 -> 2) } } });
    assert_eq!(errs.len(), 1, "{errs:?}");
}

#[test]
fn an_embedding_needs_token_ids() {
    let errs = errors(quote! { struct N { input: [8], embed: embedding(5 -> 2) } });
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`embed: embedding(5 -> 2)` takes token ids, but `input` gives [8]; declare the input as `input: tokens[T]`"),
        "{errs:?}"
    );
}

#[test]
fn malformed_token_inputs_and_embeddings() {
    let cases = [
        (quote! { struct N { input: tokens[8, 2], embedding(5 -> 2) } }, "a token input is `tokens[T]`"),
        (quote! { struct N { input: tokens[0], embedding(5 -> 2) } }, "at least 1"),
        (quote! { struct N { input: tokens[8], embedding(5) } }, "e.g. `embedding(63 -> 128)`"),
        (quote! { struct N { input: tokens[8], embedding(0 -> 2) } }, "at least 1"),
        (quote! { struct N<const LEN: usize> { input: tokens[LEN], embedding(5 -> 2) } }, "`LEN`"),
        (quote! { struct N { input: tokens[8], embedding(5 -> 18446744073709551615) } }, "overflow"),
    ];
    for (tokens, expected) in cases {
        let errs = errors(tokens);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains(expected), "{errs:?} should contain {expected}");
    }
}
