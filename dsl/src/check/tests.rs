use super::table::{closest, LAYERS};
use super::*;
use crate::model::{Activation, Count, Size};
use crate::parse::parse;
use proc_macro2::TokenStream;
use quote::quote;

fn run(tokens: TokenStream) -> (Option<Model>, Vec<String>) {
    let cx = Ctxt::new();
    let model = parse(tokens, &cx).and_then(|def| check(def, &cx));
    let msgs = cx.messages();
    (model, msgs)
}

fn errors(tokens: TokenStream) -> Vec<String> {
    run(tokens).1
}

#[test]
fn infers_shapes_names_and_parameter_counts() {
    let (model, errs) = run(quote! {
        pub struct Mlp {
            input: [784],
            fc1: dense(256), relu,
            dense(256 -> 128, bias = false) => [128], leaky_relu(0.2),
            head: dense(10),
            output: [10],
        }
    });
    assert!(errs.is_empty(), "{errs:?}");
    let m = model.unwrap();
    let names: Vec<String> = m.layers.iter().map(|l| l.ident.to_string()).collect();
    assert_eq!(names, ["fc1", "relu_1", "dense_2", "leaky_relu_3", "head"]);
    let params: Vec<&str> = m.layers.iter().map(|l| l.param_name.as_str()).collect();
    assert_eq!(params, ["fc1", "1", "2", "3", "head"]);
    assert_eq!(
        m.layers[2].kind,
        LayerKind::Dense { inputs: Size::Lit(256), outputs: Size::Lit(128), bias: false }
    );
    assert_eq!(m.layers[2].input, Shape::Known(vec![256]));
    assert_eq!(m.layers[3].kind, LayerKind::Activation(Activation::LeakyRelu(0.2)));
    assert!(matches!(m.param_count, Count::Lit(n) if n == 784 * 256 + 256 + 256 * 128 + 128 * 10 + 10));
    assert_eq!(*m.output(), Shape::Known(vec![10]));
}

#[test]
fn size_parameters_stand_for_rank_1_shapes_and_count_symbolically() {
    let (model, errs) = run(quote! {
        pub struct Mlp<const IN: usize, const HIDDEN: usize = 64> {
            input: [IN],
            fc1: dense(HIDDEN) => [HIDDEN], relu,
            block: residual { dense(HIDDEN -> 16), dense(HIDDEN) },
            head: dense(10),
        }
    });
    assert!(errs.is_empty(), "{errs:?}");
    let m = model.unwrap();
    let param = |name: &str| Size::Param(syn::Ident::new(name, Span::call_site()));
    assert_eq!(m.generics.len(), 2);
    assert_eq!(m.input, Shape::Generic(syn::Ident::new("IN", Span::call_site())));
    assert_eq!(
        m.layers[0].kind,
        LayerKind::Dense { inputs: param("IN"), outputs: param("HIDDEN"), bias: true }
    );
    assert_eq!(m.layers[2].output.to_string(), "[HIDDEN]");
    assert_eq!(m.layers[3].kind.to_string(), "dense(HIDDEN -> 10)");
    // The count is code for the compiler: IN·HIDDEN + HIDDEN + … (saturating).
    let Count::Code(code) = &m.param_count else { panic!("a symbolic count") };
    let code = code.to_string();
    assert!(code.contains("saturating_mul") && code.contains("IN") && code.contains("HIDDEN"), "{code}");

    let errs = errors(quote! {
        struct Bad<const H: usize> { input: [H], residual { dense(16) }, dense(H) => [8] }
    });
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("turns [H] into [16]"), "{errs:?}");
    assert!(errs[1].contains("expects [8] but `dense(16 -> H)` at position 1 gives [H]"), "{errs:?}");
}

#[test]
fn a_dense_input_mismatch_names_the_layer_and_both_shapes() {
    let errs = errors(quote! { struct N { input: [784], fc1: dense(256), relu, fc2: dense(128 -> 10) } });
    assert_eq!(errs, ["`fc2: dense(128 -> 10)` expects [128] but `fc1` gives [256]"]);
    let errs = errors(quote! { struct N { input: [784], dense(256), dense(128 -> 10) } });
    assert_eq!(errs, ["`dense(128 -> 10)` expects [128] but `dense(784 -> 256)` at position 0 gives [256]"]);
    let errs = errors(quote! { struct N { input: [784], dense(100 -> 10) } });
    assert_eq!(errs, ["`dense(100 -> 10)` expects [100] but `input` gives [784]"]);
}

#[test]
fn assertions_and_output_are_checked() {
    let errs =
        errors(quote! { struct N { input: [4], fc1: dense(8) => [9], relu => [7], dense(2), output: [3] } });
    assert_eq!(
        errs,
        [
            "shape assertion expects [9] but `fc1` gives [8]",
            "shape assertion expects [7] but `relu` after `fc1` gives [8]",
            "output expects [3] but `dense(8 -> 2)` at position 2 gives [2]",
        ]
    );
}

#[test]
fn independent_mistakes_are_each_reported_once() {
    let errs = errors(quote! {
        struct N { input: [4], dense(3 -> 5), relu, dense(9 -> 2), relu(1), output: [2] }
    });
    // The first mismatch does not spill into the later layers: the second
    // dense is checked against the first one's declared output.
    assert_eq!(
        errs,
        [
            "`dense(3 -> 5)` expects [3] but `input` gives [4]",
            "`dense(9 -> 2)` expects [9] but `dense(3 -> 5)` at position 0 gives [5]",
            "`relu` takes no arguments",
        ]
    );
}

#[test]
fn malformed_layers_are_spanned_errors() {
    let cases: Vec<(TokenStream, &str)> = vec![
        (quote! { struct N { dense(2) } }, "missing `input: [..]`"),
        (quote! { struct N { input: [2] } }, "at least one layer"),
        (quote! { struct N { input: [2], dense } }, "`dense` needs its output size"),
        (quote! { struct N { input: [2], dense(x) } }, "expected a size"),
        (quote! { struct N { input: [2], dense(-3) } }, "positive whole number"),
        (quote! { struct N { input: [2], dense(3, 4) } }, "write `dense(3 -> 4)`"),
        (quote! { struct N { input: [2], dense(3, 4, 5) } }, "takes one size"),
        (quote! { struct N { input: [2], dense(3, biass = false) } }, "unknown argument `biass` for `dense`"),
        (quote! { struct N { input: [2], dense(3, bias = 1) } }, "expected `true` or `false`"),
        (quote! { struct N { input: [2], dense(3, bias = true, bias = false) } }, "`bias` is given twice"),
        (quote! { struct N { input: [2], dense(3), relu(2) } }, "`relu` takes no arguments"),
        (quote! { struct N { input: [2], dense(3), leaky_relu(x) } }, "expected a number"),
        (quote! { struct N { input: [2], dense(3), leaky_relu(0.1, 0.2) } }, "takes one slope"),
        (quote! { struct N { input: [2], dense(3), leaky_relu(slope = 0.1) } }, "unknown argument `slope`"),
        (
            quote! { struct N { input: [2], desne(3) } },
            "unknown layer `desne`; expected one of dense, conv2d",
        ),
        (quote! { struct N { input: [2], desne(3) } }, "did you mean `dense`?"),
        (quote! { struct N { input: [2], a: dense(3), a: dense(3) } }, "duplicate layer name `a`"),
        (quote! { struct N { input: [0], dense(3) } }, "at least 1"),
        (quote! { struct N { input: [1, 28, 28], dense(3) } }, "add `flatten` before it"),
        (
            quote! { struct N { input: [2, 28, 28, 1], dense(3) } },
            "an input is `[features]`, `[steps, features]` or `[channels, height, width]`",
        ),
        (
            quote! { struct N { input: [4], conv2d(3, kernel = 3) } },
            "`conv2d` needs a rank-3 input [C, H, W], but `input` gives [4]",
        ),
        (quote! { struct N { input: [4], max_pool(2) } }, "`max_pool` needs a rank-3 input"),
        (quote! { struct N { input: [4], flatten, dense(2) } }, "`flatten` needs a rank-3 input"),
        (quote! { struct N { input: [1, 4, 4], conv2d(3) } }, "`conv2d` needs a kernel size"),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(kernel = 3) } },
            "`conv2d` needs its number of filters",
        ),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 5) } },
            "kernel 5×5 does not fit the padded input 4×4",
        ),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, dilation = 2) } }, "(dilated to 5×5)"),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, stride = 2, padding = same) } },
            "needs stride 1",
        ),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = full) } },
            "unknown padding `full`",
        ),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = [3, 3, 3]) } }, "one size or two"),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 0) } }, "at least 1"),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 2, stride = 0) } }, "at least 1"),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 2, groups = 2) } },
            "unknown argument `groups` for `conv2d`",
        ),
        (
            quote! { struct N { input: [2, 4, 4], conv2d(3 -> 8, kernel = 3) } },
            "expects 3 channels but `input` gives [2, 4, 4]",
        ),
        (
            quote! { struct N { input: [2, 4, 4], max_pool(5) } },
            "`max_pool` window 5×5 does not fit the input [2, 4, 4]",
        ),
        (quote! { struct N { input: [2, 4, 4], avg_pool(2, stride = 0) } }, "at least 1"),
        (quote! { struct N { input: [2, 4, 4], max_pool } }, "`max_pool` needs a window size"),
        (quote! { struct N { input: [4], global_avg_pool } }, "`global_avg_pool` needs a rank-3 input"),
        (
            quote! { struct N { input: [4], dropout(1.0) } },
            "a dropout probability must be in [0, 1), found 1",
        ),
        (quote! { struct N { input: [4], dropout } }, "`dropout` takes one probability"),
        (quote! { struct N { input: [4], dropout(0.1, 0.2) } }, "`dropout` takes one probability"),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernal = 3) } }, "did you mean `kernel`?"),
        (
            quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = 1.5) } },
            "expected a padding",
        ),
        (quote! { struct N { input: [1, 4, 4], conv2d(3, kernel = 3, padding = "same") } }, "without quotes"),
        (quote! { struct N { input: [4], batch_norm(momentum = 2.0) } }, "`momentum` must be in [0, 1]"),
        (quote! { struct N { input: [4], batch_norm(0.1) } }, "`batch_norm` takes only"),
        (quote! { struct N { input: [4], layer_norm(eps = 0) } }, "`eps` must be greater than 0"),
        (quote! { struct N { input: [4], flatten } }, "at least one layer besides `flatten`"),
        (quote! { struct N { dense(3), input: [2] } }, "`input:` must come first"),
        (quote! { struct N { input: [2], input: [2], dense(3) } }, "duplicate `input:`"),
        (quote! { struct N { input: [2], output: [3], dense(3) } }, "`output:` must be the last entry"),
        (quote! { struct N { input: [2], dense(3), output: [3], output: [3] } }, "duplicate `output:`"),
        (quote! { struct N { input: [2], input } }, "expected `input: [..]` with a colon"),
        (
            quote! { struct N { input: [4294967296], dense(4294967296), dense(4294967296) } },
            "too many parameters",
        ),
        (
            quote! { struct N { input: [1, 1, 1], parallel(concat) {
                branch { conv2d(18446744073709551615, kernel = 1) }
                branch { conv2d(18446744073709551615, kernel = 1) }
            } } },
            "the joined shape has more elements than fit in usize",
        ),
    ];
    for (tokens, expected) in cases {
        let errs = errors(tokens.clone());
        assert!(errs.iter().any(|e| e.contains(expected)), "{tokens}: expected {expected:?}, got {errs:?}");
    }
}

#[test]
fn a_broken_entry_causes_no_follow_up_errors() {
    // Each network has exactly one mistake: its parse error.
    for tokens in [
        quote! { struct A { input: [4], dense(8) junk, dense(8 -> 2) } },
        quote! { struct B { input: [4], fc1: dense(8 ->), fc2: dense(8 -> 2), output: [2] } },
        quote! { struct C { input: [4] extra, dense(8) } },
        quote! { struct D { input: [4], dense(3) => [3] extra, output: [3] } },
        quote! { struct E { input: [4], dense(8) junk } },
    ] {
        let errs = errors(tokens.clone());
        assert_eq!(errs.len(), 1, "{tokens}: {errs:?}");
    }
}

#[test]
fn names_are_checked() {
    let errs = errors(quote! { struct N { input: [2], relu, relu_0: dense(2) } });
    assert_eq!(errs, ["layer name `relu_0` is also the automatic name of the unnamed layer at position 0; choose another name"]);
    let errs = errors(quote! { struct N { input: [2], a: dense(2), a: relu } });
    assert_eq!(errs, ["duplicate layer name `a` (first used at position 0)"]);
    let errs = errors(quote! { struct N { input: [2], __x: dense(2) } });
    assert!(errs[0].contains("reserved"));
    let (m, _) = run(quote! { struct N { input: [2], r#type: dense(2) } });
    let m = m.unwrap();
    assert_eq!((m.layers[0].param_name.as_str(), m.layers[0].name.as_str()), ("type", "type"));
    assert_eq!(m.layers[0].ident.to_string(), "r#type");
    let errs = errors(quote! { #[derive(Clone, PartialEq)] struct N { input: [2], dense(2) } });
    assert_eq!(errs, ["`network!` already implements `Clone`; remove it from the derive"]);
}

#[test]
fn convolution_shapes_follow_pytorch() {
    let (m, errs) = run(quote! {
        struct Digits {
            input: [1, 28, 28],
            conv1: conv2d(16, kernel = 3), relu => [16, 26, 26],
            max_pool(2) => [16, 13, 13],
            conv2: conv2d(16 -> 32, kernel = 3, padding = 1), batch_norm, relu,
            max_pool(2) => [32, 6, 6],
            flatten => [1152],
            dropout(0.25),
            fc: dense(128), relu,
            head: dense(10),
        }
    });
    assert!(errs.is_empty(), "{errs:?}");
    let m = m.unwrap();
    let LayerKind::Conv2d { geometry: g, .. } = m.layers[3].kind else { panic!() };
    assert_eq!((g.out_height, g.out_width, g.patch()), (13, 13, 16 * 9));
    assert_eq!(m.layers[4].kind, LayerKind::BatchNorm { channels: Size::Lit(32), eps: 1e-5, momentum: 0.1 });
    let conv = 16 * 9 + 16 + 32 * 16 * 9 + 32;
    assert!(matches!(m.param_count, Count::Lit(n) if n == conv + 2 * 32 + 1152 * 128 + 128 + 1290));

    let shape = |tokens: TokenStream| run(tokens).0.map(|m| m.output().clone());
    // stride, padding and dilation: floor((H + 2p − d(k−1) − 1)/s) + 1
    let s = shape(quote! { struct A { input: [2, 7, 7], conv2d(3, kernel = 3, stride = 2, padding = 1) } });
    assert_eq!(s, Some(Shape::Known(vec![3, 4, 4])));
    let s = shape(
        quote! { struct B { input: [2, 8, 7], conv2d(3, kernel = [3, 2], stride = [1, 2], padding = [2, 1], dilation = 2) } },
    );
    assert_eq!(s, Some(Shape::Known(vec![3, 8, 4])));
    // `same` keeps the size, also for even kernels (padded more at the bottom/right, as in PyTorch).
    let (m, _) = run(quote! { struct C { input: [1, 5, 6], conv2d(2, kernel = 4, padding = same) } });
    let LayerKind::Conv2d { geometry: g, same: true, .. } = m.unwrap().layers[0].kind else { panic!() };
    assert_eq!((g.out_height, g.out_width, g.padding), (5, 6, [1, 1]));
    let s = shape(quote! { struct D { input: [3, 7, 7], avg_pool(3, stride = 2), global_avg_pool } });
    assert_eq!(s, Some(Shape::Known(vec![3])));
    let s = shape(quote! { struct E { input: [3, 4, 4], layer_norm, flatten } });
    assert_eq!(s, Some(Shape::Known(vec![48])));
}

#[test]
fn one_mistake_in_conv_arguments_is_one_error() {
    assert_eq!(errors(quote! { struct N { input: [1, 4, 4], conv2d(3, kernal = 3) } }).len(), 1);
    assert_eq!(errors(quote! { struct N { input: [1, 4, 4], conv2d() } }).len(), 1);
    let (m, _) = run(quote! { struct N { input: [4], dropout(p = 0.5) } });
    assert_eq!(m.unwrap().layers[0].kind, LayerKind::Dropout { p: 0.5 });
}

#[test]
fn rank3_assertions_and_flatten_hints() {
    let errs =
        errors(quote! { struct N { input: [1, 8, 8], c: conv2d(4, kernel = 3) => [4, 8, 8], dense(2) } });
    assert_eq!(
        errs,
        [
            "shape assertion expects [4, 8, 8] but `c` gives [4, 6, 6]",
            "`dense` needs a rank-1 input [features], but `c` gives [4, 6, 6]; add `flatten` before it",
        ]
    );
}

#[test]
fn leaky_relu_defaults_to_pytorchs_slope() {
    let (m, _) = run(quote! { struct N { input: [2], leaky_relu, leaky_relu(alpha = -0.5) } });
    let m = m.unwrap();
    assert_eq!(m.layers[0].kind, LayerKind::Activation(Activation::LeakyRelu(0.01)));
    assert_eq!(m.layers[1].kind, LayerKind::Activation(Activation::LeakyRelu(-0.5)));
}

#[test]
fn elu_defaults_to_alpha_1_and_log_softmax_works_per_step() {
    let (m, errs) = run(quote! { struct N { input: [3, 2], elu, elu(alpha = 0.5), swish, log_softmax } });
    assert!(errs.is_empty(), "{errs:?}");
    let m = m.unwrap();
    assert_eq!(m.layers[0].kind, LayerKind::Activation(Activation::Elu(1.0)));
    assert_eq!(m.layers[1].kind.to_string(), "elu(0.5)");
    assert_eq!(m.layers[2].kind, LayerKind::Activation(Activation::Silu));
    let LayerKind::PerStep { steps: 3, inputs: 2, inner, .. } = &m.layers[3].kind else { panic!("per step") };
    assert_eq!(**inner, LayerKind::Activation(Activation::LogSoftmax));
    assert_eq!(m.layers[3].kind.to_string(), "log_softmax");
    let errs = errors(quote! { struct N { input: [2], elu(0.5, 2.0), selu(1) } });
    assert_eq!(errs, ["`elu` takes one `alpha`, e.g. `elu(0.5)`", "`selu` takes no arguments"]);
}

#[test]
fn edit_distance_suggests_close_names_only() {
    let names: Vec<&str> = LAYERS.iter().map(|e| e.name).collect();
    assert_eq!(closest("rlu", &names), Some("relu"));
    assert_eq!(closest("convolution", &names), None);
}

#[test]
fn every_table_entry_resolves_and_shapes_an_example() {
    // One use of every kind: its resolver's `Spec` reaches its own shape rule
    // (a mismatched pair would hit the rule's `unreachable!`).
    let examples = [
        ("dense", "[4]", "dense(3)"),
        ("conv2d", "[1, 4, 4]", "conv2d(2, kernel = 3)"),
        ("max_pool", "[1, 4, 4]", "max_pool(2)"),
        ("avg_pool", "[1, 4, 4]", "avg_pool(2)"),
        ("global_avg_pool", "[1, 4, 4]", "global_avg_pool"),
        ("flatten", "[1, 4, 4]", "flatten, dense(2)"),
        ("batch_norm", "[4]", "batch_norm"),
        ("layer_norm", "[4]", "layer_norm"),
        ("dropout", "[4]", "dropout(0.5)"),
        ("relu", "[4]", "relu"),
        ("leaky_relu", "[4]", "leaky_relu(0.2)"),
        ("sigmoid", "[4]", "sigmoid"),
        ("tanh", "[4]", "tanh"),
        ("gelu", "[4]", "gelu"),
        ("softmax", "[4]", "softmax"),
        ("log_softmax", "[4]", "log_softmax"),
        ("silu", "[4]", "silu"),
        ("swish", "[4]", "swish"),
        ("elu", "[4]", "elu(0.5)"),
        ("selu", "[4]", "selu"),
        ("softplus", "[4]", "softplus"),
        ("mish", "[4]", "mish"),
        ("identity", "[4]", "identity"),
        ("conv1d", "[5, 4]", "conv1d(2, kernel = 3)"),
        ("lstm", "[5, 4]", "lstm(3)"),
        ("gru", "[5, 4]", "gru(3)"),
        ("attention", "[5, 4]", "attention(heads = 2)"),
        ("positional", "[5, 4]", "positional"),
        ("embedding", "tokens[5]", "embedding(7 -> 4)"),
        ("last", "[5, 4]", "last"),
        ("residual", "[4]", "residual { dense(4) }"),
        ("parallel", "[4]", "parallel(add) { branch { dense(2) } branch { dense(2) } }"),
    ];
    let names: Vec<&str> = LAYERS.iter().map(|e| e.name).collect();
    assert_eq!(names, examples.map(|(name, _, _)| name));
    for (name, input, layers) in examples {
        let tokens: TokenStream = format!("struct N {{ input: {input}, {layers} }}").parse().unwrap();
        let (model, errs) = run(tokens);
        assert!(errs.is_empty(), "{name}: {errs:?}");
        // `swish` is another name of `silu`, and shows as it.
        let shown = if name == "swish" { "silu" } else { name };
        assert_eq!(model.unwrap().layers[0].kind.to_string().split('(').next(), Some(shown), "{name}");
    }
}

/// A projection over a huge height is found (or refused) at once, not by
/// trying every stride up to the height.
#[test]
fn a_projection_over_a_huge_input_is_computed_at_once() {
    let start = std::time::Instant::now();
    let errs = errors(quote! {
        struct N { input: [1, 1000000000000, 1], r: residual(projection) { conv2d(2, kernel = [3, 1]) } }
    });
    assert!(errs.iter().any(|e| e.contains("no projection takes [1, 1000000000000, 1]")), "{errs:?}");
    let (model, errs) = run(quote! {
        struct N { input: [1, 1000000000000, 1], r: residual(projection) { conv2d(2, kernel = 1, stride = [1000, 1]) } }
    });
    assert!(errs.is_empty(), "{errs:?}");
    let LayerKind::Residual { projection: Some(p), .. } = &model.unwrap().layers[0].kind else { panic!() };
    let LayerKind::Conv2d { geometry, .. } = &**p else { panic!() };
    assert_eq!(geometry.stride, [1000, 1]);
    assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
}

/// The messages and the columns they point at, for a one-line input.
fn error_columns(source: &str) -> Vec<(String, usize)> {
    let cx = Ctxt::new();
    let tokens: TokenStream = source.parse().expect("tokens");
    let _ = parse(tokens, &cx).and_then(|def| check(def, &cx));
    cx.spanned_messages().into_iter().map(|(span, message)| (message, span.start().column)).collect()
}

/// A broken `output:` entry before a layer is misplaced: said on the entry, not at the call site.
#[test]
fn a_misplaced_broken_output_is_reported_on_the_entry() {
    let source = "struct N { input: [4], output: (3), dense(3) }";
    let errs = error_columns(source);
    let at = source.find("output").unwrap();
    assert!(errs.iter().any(|(m, c)| m.contains("`output:` must be the last entry") && *c == at), "{errs:?}");
}

/// An entry that ends too early is reported on its last token, not at the call site.
#[test]
fn an_entry_cut_short_is_reported_on_its_last_token() {
    for (source, last) in [
        ("struct N { input: [4], dense(3) => }", "=>"),
        ("struct N { input: [4], fc: residual { dense(4) } => }", "=>"),
        ("struct N", "N"),
        ("pub struct", "struct"),
    ] {
        let errs = error_columns(source);
        let at = source.rfind(last).unwrap();
        assert!(errs.iter().any(|(_, c)| (at..at + last.len()).contains(c)), "{source}: {errs:?}");
    }
}

/// `flatten` emits no code, so a block body of nothing else is refused (it panicked the expansion).
#[test]
fn a_block_of_only_flatten_is_refused() {
    for body in [
        "parallel(concat) { branch { flatten } branch { flatten } }",
        "parallel(add) { branch { flatten, flatten } branch { flatten } }",
        "residual(projection) { flatten }",
    ] {
        let source = format!("struct N {{ input: [2, 3, 4], {body} }}");
        let tokens: TokenStream = source.parse().unwrap();
        let errs = errors(tokens.clone());
        assert!(errs.iter().any(|e| e.contains("besides `flatten`")), "{source}: {errs:?}");
        assert!(crate::expand(tokens).to_string().contains("compile_error"));
    }
}
