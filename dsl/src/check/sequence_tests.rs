//! Rank-2 shapes `[steps, features]` and the sequence layers: shapes,
//! parameter counts, and one spanned message per mistake.

use super::*;
use crate::model::{Activation, Cell, Count, Size};
use crate::parse::parse;
use proc_macro2::TokenStream;
use quote::quote;

fn run(tokens: TokenStream) -> (Option<Model>, Vec<String>) {
    let cx = Ctxt::new();
    let model = parse(tokens, &cx).and_then(|def| check(def, &cx));
    let msgs = cx.messages();
    (model, msgs)
}

fn model(tokens: TokenStream) -> Model {
    let (model, errs) = run(tokens);
    assert!(errs.is_empty(), "{errs:?}");
    model.expect("a model")
}

fn errors(tokens: TokenStream) -> Vec<String> {
    run(tokens).1
}

fn shapes(m: &Model) -> Vec<String> {
    m.layers.iter().map(|l| l.output.to_string()).collect()
}

#[test]
fn rows_conv1d_lstm_gru_last_dense() {
    let m = model(quote! {
        pub struct Rows {
            input: [28, 28],
            conv: conv1d(32, kernel = 3, padding = 1), relu,
            rnn: lstm(64),
            gru1: gru(32),
            last,
            head: dense(10),
            output: [10],
        }
    });
    assert_eq!(shapes(&m), ["[28, 32]", "[28, 32]", "[28, 64]", "[28, 32]", "[32]", "[10]"]);
    let kinds: Vec<String> = m.layers.iter().map(|l| l.kind.to_string()).collect();
    assert_eq!(
        kinds,
        [
            "conv1d(28 -> 32, kernel = 3, padding = 1)",
            "relu",
            "lstm(32 -> 64)",
            "gru(64 -> 32)",
            "last",
            "dense(32 -> 10)"
        ]
    );
    assert_eq!(
        m.layers[2].kind,
        LayerKind::Recurrent { cell: Cell::Lstm, steps: 28, inputs: 32, hidden: 64 }
    );
    let LayerKind::Conv1d { geometry: g, bias: true, same: false } = m.layers[0].kind else { panic!() };
    assert_eq!(
        (g.steps, g.in_features, g.out_channels, g.kernel, g.padding, g.out_steps),
        (28, 28, 32, 3, 1, 28)
    );
    // conv 32·28·3 + 32; lstm 4·64·(32 + 64 + 2); gru 3·32·(64 + 32 + 2); dense 32·10 + 10.
    let expected = 32 * 28 * 3 + 32 + 4 * 64 * (32 + 64 + 2) + 3 * 32 * (64 + 32 + 2) + 330;
    assert!(matches!(m.param_count, Count::Lit(n) if n == expected), "{:?}", m.param_count);
}

#[test]
fn a_transformer_block_acts_at_every_step() {
    let m = model(quote! {
        struct Block {
            input: [16, 32],
            att: residual { layer_norm, attention(heads = 4, causal) },
            ff: residual { layer_norm, fc1: dense(64), gelu, fc2: dense(32) },
            norm: layer_norm,
            head: dense(10) => [16, 10],
            output: [16, 10],
        }
    });
    assert_eq!(shapes(&m), ["[16, 32]", "[16, 32]", "[16, 32]", "[16, 10]"]);
    let LayerKind::Residual { body, projection: None } = &m.layers[0].kind else { panic!() };
    assert_eq!(body[1].kind, LayerKind::Attention { steps: 16, dim: 32, heads: 4, causal: true });
    assert_eq!(body[1].kind.to_string(), "attention(heads = 4, causal)");
    let LayerKind::Residual { body, .. } = &m.layers[1].kind else { panic!() };
    let dense = |i, o| LayerKind::Dense { inputs: Size::Lit(i), outputs: Size::Lit(o), bias: true };
    assert_eq!(
        body[1].kind,
        LayerKind::PerStep { steps: 16, inputs: 32, outputs: 64, inner: Box::new(dense(32, 64)) }
    );
    assert_eq!(body[1].kind.to_string(), "dense(32 -> 64)");
    assert_eq!((body[1].param_name.as_str(), body[3].param_name.as_str()), ("fc1", "fc2"));
    let norm = LayerKind::PerStep {
        steps: 16,
        inputs: 32,
        outputs: 32,
        inner: Box::new(LayerKind::LayerNorm { eps: 1e-5 }),
    };
    assert_eq!(m.layers[2].kind, norm);
    // Parameters do not depend on the steps: layer norms 2·32, attention 4·32·33, the MLP, the head.
    let expected = 3 * 64 + 4 * 32 * 33 + (32 * 64 + 64) + (64 * 32 + 32) + 330;
    assert!(matches!(m.param_count, Count::Lit(n) if n == expected), "{:?}", m.param_count);
}

#[test]
fn pools_flatten_softmax_and_blocks_on_rank_2() {
    let shape = |tokens: TokenStream| model(tokens).output().to_string();
    assert_eq!(shape(quote! { struct A { input: [7, 3], max_pool(2) } }), "[3, 3]");
    assert_eq!(shape(quote! { struct B { input: [7, 3], avg_pool(3, stride = 2) } }), "[3, 3]");
    assert_eq!(shape(quote! { struct C { input: [7, 3], global_avg_pool } }), "[3]");
    assert_eq!(shape(quote! { struct D { input: [7, 3], flatten => [21], dense(2) } }), "[2]");
    assert_eq!(shape(quote! { struct E { input: [7, 3], dropout(0.1), tanh, positional } }), "[7, 3]");
    assert_eq!(
        shape(
            quote! { struct F { input: [10, 3], conv1d(4, kernel = 3, stride = 2, padding = 1, dilation = 2) } }
        ),
        "[4, 4]"
    );
    assert_eq!(
        shape(quote! { struct G { input: [10, 3], conv1d(3 -> 4, kernel = 5, padding = same) } }),
        "[10, 4]"
    );
    assert_eq!(
        shape(quote! { struct H { input: [10, 3], conv1d(4, kernel = 4, padding = valid) } }),
        "[7, 4]"
    );
    let m = model(quote! { struct S { input: [5, 4], softmax } });
    assert_eq!(
        m.layers[0].kind,
        LayerKind::PerStep {
            steps: 5,
            inputs: 4,
            outputs: 4,
            inner: Box::new(LayerKind::Activation(Activation::Softmax))
        }
    );
    assert!(!m.layers[0].kind.is_field());
    let m = model(quote! { struct P { input: [7, 3], max_pool(2, stride = 1) } });
    assert_eq!(m.layers[0].kind.to_string(), "max_pool(2, stride = 1)");
    assert_eq!(m.output().to_string(), "[6, 3]");
    // Blocks: add, a projection at every step, nested networks.
    let m = model(quote! {
        struct Q {
            input: [6, 4],
            parallel(add) { branch { dense(5) } branch { lstm(5) } },
            r: residual(projection) { gru(8) },
            enc: Encoder => [6, 2],
        }
    });
    assert_eq!(shapes(&m), ["[6, 5]", "[6, 8]", "[6, 2]"]);
    let LayerKind::Residual { projection: Some(p), .. } = &m.layers[1].kind else { panic!() };
    assert!(matches!(**p, LayerKind::PerStep { steps: 6, inputs: 5, outputs: 8, .. }));
}

/// One exact message per mistake.
#[test]
fn each_mistake_is_one_message_naming_the_layer_the_shape_and_the_fix() {
    let cases: Vec<(TokenStream, &str)> = vec![
        (
            quote! { struct N { input: [16, 30], att: attention(heads = 4) } },
            "`att: attention(heads = 4)` splits the features among its heads, but `input` gives [16, 30]: \
             30 features do not divide into 4 heads; choose a head count that divides 30",
        ),
        (
            quote! { struct N { input: [8], rnn: lstm(4) } },
            "`rnn: lstm` needs a rank-2 input [steps, features], but `input` gives [8]; sequence layers go before the \
             layer that ends the steps (`last`, `global_avg_pool`, `flatten`), in a network whose `input:` is \
             `[steps, features]`",
        ),
        (
            quote! { struct N { input: [1, 8, 8], gru(4) } },
            "`gru` needs a rank-2 input [steps, features], but `input` gives [1, 8, 8]; an image is not a sequence: \
             declare the input as `[steps, features]` (e.g. `[28, 28]`, rows of pixels)",
        ),
        (
            quote! { struct N { input: [8], dense(4), conv1d(2, kernel = 3) } },
            "`conv1d` needs a rank-2 input [steps, features], but `dense(8 -> 4)` at position 0 gives [4]",
        ),
        (quote! { struct N { input: [8], last } }, "`last` needs a rank-2 input [steps, features], but `input` gives [8]"),
        (
            quote! { struct N { input: [8], attention(heads = 2, causal) } },
            "`attention(heads = 2, causal)` needs a rank-2 input [steps, features], but `input` gives [8]",
        ),
        (
            quote! { struct N { input: [1, 2, 2], positional } },
            "`positional` needs a rank-2 input [steps, features], but `input` gives [1, 2, 2]",
        ),
        (
            quote! { struct N { input: [4, 3], c: conv1d(2, kernel = 5) } },
            "`c: conv1d` kernel 5 is longer than the 4 padded steps: `input` gives [4, 3]",
        ),
        (
            quote! { struct N { input: [4, 3], conv1d(2, kernel = 3, dilation = 2) } },
            "`conv1d` kernel 3 (dilated to 5) is longer than the 4 padded steps: `input` gives [4, 3]",
        ),
        (
            quote! { struct N { input: [28, 28], conv2d(4, kernel = 3) } },
            "`conv2d` needs a rank-3 input [C, H, W], but `input` gives [28, 28]; over the steps of a sequence \
             [steps, features], use `conv1d`",
        ),
        (
            quote! { struct N { input: [28, 28], bn: batch_norm } },
            "`bn: batch_norm` does not take a rank-2 input [steps, features], but `input` gives [28, 28]; \
             normalise each step over its features with `layer_norm`",
        ),
        (
            quote! { struct N { input: [16, 32], fc: dense(30 -> 64) } },
            "`fc: dense(30 -> 64)` expects 30 features at each step but `input` gives [16, 32]",
        ),
        (
            quote! { struct N { input: [16, 32], lstm(30 -> 64) } },
            "`lstm(30 -> 64)` expects 30 features at each step but `input` gives [16, 32]",
        ),
        (
            quote! { struct N { input: [16, 32], conv1d(30 -> 8, kernel = 1) } },
            "`conv1d` expects 30 features at each step but `input` gives [16, 32]",
        ),
        (
            quote! { struct N { input: [4, 3], max_pool(5) } },
            "`max_pool` window 5 is longer than the 4 steps of the input [4, 3] from `input`",
        ),
        (
            quote! { struct N { input: [4, 3], avg_pool([2, 1]) } },
            "`avg_pool` on a rank-2 input pools over the steps: its window and stride are one size each, but \
             `input` gives [4, 3] and the layer asks for a 2-d window",
        ),
        (
            quote! { struct N { input: [4, 3], p: parallel(concat) { branch { dense(2) } branch { dense(2) } } } },
            "the branches of `p` cannot be concatenated: branch 0 gives [4, 2], branch 1 gives [4, 2]; \
             `parallel(concat)` does not join rank-2 [steps, features] shapes (stacking a sample's values would \
             join the steps, not the features); use `parallel(add)`, or `flatten` each branch first",
        ),
        (
            quote! { struct N { input: [4, 3], residual(projection) { max_pool(2) } } },
            "no projection takes [4, 3] to [2, 3]: the body of a rank-2 block must end in [steps, features] \
             with its input's steps (the projection is a dense layer at every step)",
        ),
        (
            quote! { struct N { input: [4, 3], residual(projection) { last } } },
            "no projection takes [4, 3] to [3]: the body of a rank-2 block must end in [steps, features]",
        ),
        (
            quote! { struct N<const H: usize> { input: [4, 3], dense(H) } },
            "the size parameter `H` cannot be used in a `dense` on a rank-2 input",
        ),
        (quote! { struct N { input: [4, 3], attention } }, "`attention` needs its number of heads, e.g. `attention(heads = 4)`"),
        (quote! { struct N { input: [4, 3], attention(heads = 0) } }, "a size must be at least 1"),
        (
            quote! { struct N { input: [4, 3], attention(4) } },
            "`attention` takes `heads = ..` and optionally `causal`, e.g. `attention(heads = 4, causal)`",
        ),
        (quote! { struct N { input: [4, 3], attention(heads = 1, causal, causal) } }, "`causal` is given twice"),
        (quote! { struct N { input: [4, 3], attention(head = 1) } }, "did you mean `heads`?"),
        (quote! { struct N { input: [4, 3], lstm } }, "`lstm` needs its hidden size, e.g. `lstm(64)` or `lstm(28 -> 64)`"),
        (
            quote! { struct N { input: [4, 3], gru(4, bias = false) } },
            "unknown argument `bias` for `gru`; it takes no keyword arguments",
        ),
        (quote! { struct N { input: [4, 3], last(1) } }, "`last` takes no arguments"),
        (quote! { struct N { input: [4, 3], conv1d(2) } }, "`conv1d` needs a kernel size, e.g. `conv1d(32, kernel = 3)`"),
        (
            quote! { struct N { input: [4, 3], conv1d(2, kernel = [3, 3]) } },
            "expected one size: a layer over steps slides along one axis",
        ),
        (
            quote! { struct N { input: [8, 3], conv1d(2, kernel = 4, padding = same) } },
            "`padding = same` on `conv1d` needs an odd kernel span, but kernel 4 spans 4 steps; use an odd kernel \
             or an explicit `padding = ..`",
        ),
        (
            quote! { struct N { input: [8, 3], conv1d(2, kernel = 3, stride = 2, padding = same) } },
            "`padding = same` needs stride 1, as in PyTorch",
        ),
        (quote! { struct N { input: [8, 3], conv1d(2, kernel = 3, padding = full) } }, "unknown padding `full`"),
        (quote! { struct N { input: [8, 3], conv1d(2, kernal = 3) } }, "did you mean `kernel`?"),
        (quote! { struct N { input: [8, 3], conv1d(2, kernel = 3, padding = "same") } }, "without quotes"),
        (quote! { struct N { input: [8, 3], conv1d(2, kernel = 3, padding = "full") } }, "expected a size"),
        (
            quote! { struct N { input: [8, 3], enc: Encoder => [2, 3, 4, 5] } },
            "a shape is `[features]`, `[steps, features]` or `[channels, height, width]`, found [2, 3, 4, 5]",
        ),
    ];
    for (tokens, expected) in cases {
        let errs = errors(tokens.clone());
        assert_eq!(errs.len(), 1, "{tokens}: {errs:?}");
        assert!(errs[0].contains(expected), "{tokens}:\n expected {expected:?}\n got {:?}", errs[0]);
    }
}

/// A mistake does not spill: the layers after it are checked from the shape it was meant to give.
#[test]
fn after_a_mistake_the_rest_is_still_checked_once() {
    let errs = errors(quote! {
        struct N { input: [16, 30], attention(heads = 4), dense(10 -> 2), last, lstm(3) }
    });
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("do not divide"), "{errs:?}");
    assert!(errs[1].contains("expects 10 features at each step"), "{errs:?}");
    assert!(errs[2].contains("`lstm` needs a rank-2 input"), "{errs:?}");
}

/// Sizes past `usize` are refused with a message, never a panic or a wrap.
#[test]
fn huge_sizes_are_refused_with_checked_arithmetic() {
    let max = "18446744073709551615";
    let cases = [
        (format!("input: [{max}, 2], dense(2)"), "more elements than fit in usize"),
        (format!("input: [2, 3], dense({max})"), "overflow usize"),
        (format!("input: [2, 3], lstm({max})"), "overflow usize"),
        ("input: [2, 3], gru(9223372036854775807)".to_string(), "too many parameters"),
        (format!("input: [2, 3], conv1d(2, kernel = 1, padding = {max})"), "padded input size overflows"),
        (
            format!("input: [2, 3], conv1d(2, kernel = 3, dilation = {max})"),
            "kernel size times dilation overflows",
        ),
        (format!("input: [2, 3], conv1d({max}, kernel = 1)"), "overflow usize"),
        (format!("input: [{max}, 1], conv1d(2, kernel = 1)"), "overflow usize"),
        ("input: [4, 4294967296], lstm(4294967296)".to_string(), "too many parameters"),
        ("input: [4, 4294967296], attention(heads = 1)".to_string(), "too many parameters"),
        ("input: [4294967296, 1073741824], positional".to_string(), "too many parameters"),
        (format!("input: [{max}, 1], dense(2)"), "overflow usize"),
    ];
    for (body, expected) in cases {
        let tokens: TokenStream = format!("struct N {{ {body} }}").parse().unwrap();
        let errs = errors(tokens);
        assert!(errs.iter().any(|e| e.contains(expected)), "{body}: expected {expected:?}, got {errs:?}");
    }
    // Valid but large: the sizes are literals the compiler takes.
    let m = model(quote! { struct L { input: [1000000, 3], max_pool(1000000), last } });
    assert_eq!(m.output().to_string(), "[3]");
    let m = model(quote! { struct K { input: [1000000000000, 1], conv1d(1, kernel = 1000000000000) } });
    assert_eq!(m.output().to_string(), "[1, 1]");
}
