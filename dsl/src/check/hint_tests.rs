//! The Keras and PyTorch habits of `hints.rs`: each is one error with the form `network!` takes.

use super::*;
use crate::parse::parse;
use proc_macro2::TokenStream;
use quote::quote;

fn errors(tokens: TokenStream) -> Vec<String> {
    let cx = Ctxt::new();
    let _ = parse(tokens, &cx).and_then(|def| check(def, &cx));
    cx.messages()
}

#[test]
fn keras_and_pytorch_keywords_say_what_to_write() {
    let conv = "unknown argument `kernel_size` for `conv2d`; expected `kernel`, `stride`, `padding`, `dilation`, `bias`";
    assert_eq!(
        errors(quote!(struct N { input: [1, 8, 8], conv2d(4, kernel_size = 3) })),
        [format!("{conv}; did you mean `kernel`? write `kernel = 3`")]
    );
    assert_eq!(
        errors(quote!(struct N { input: [1, 8, 8], max_pool(2, strides = [2, 1]) })),
        ["unknown argument `strides` for `max_pool`; expected `stride`; did you mean `stride`? write `stride = [2, 1]`"]
    );
    // The size given by keyword: one error, not also "needs its size".
    assert_eq!(
        errors(quote!(struct N { input: [1, 8, 8], max_pool(pool_size = 2) })),
        ["unknown argument `pool_size` for `max_pool`; expected `stride`; the window comes first, without a keyword: write `max_pool(2)`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [4], dense(units = 128) })),
        ["unknown argument `units` for `dense`; expected `bias`; the size comes first, without a keyword: write `dense(128)`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [4, 3], lstm(hidden_size = 8) })),
        ["unknown argument `hidden_size` for `lstm`; it takes no keyword arguments; the hidden size comes first, without a keyword: write `lstm(8)`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [4], leaky_relu(negative_slope = 0.2) })),
        ["unknown argument `negative_slope` for `leaky_relu`; expected `alpha`; did you mean `alpha`? write `alpha = 0.2`"]
    );
}

#[test]
fn an_activation_argument_says_to_write_the_activation_after_the_layer() {
    let errs =
        errors(quote!(struct N { input: [4], dense(128, activation = "relu"), dense(2, activation = tanh) }));
    let hint = "an activation is a layer of its own: remove `activation = ..` and write";
    assert_eq!(
        errs,
        [
            format!("unknown argument `activation` for `dense`; expected `bias`; {hint} `, relu` after this layer"),
            format!("unknown argument `activation` for `dense`; expected `bias`; {hint} `, tanh` after this layer"),
        ]
    );
}

#[test]
fn positional_sizes_in_pytorch_or_keras_order_show_the_keyword_form() {
    assert_eq!(
        errors(quote!(struct N { input: [1, 28, 28], conv2d(1, 32, 3, bias = false) })),
        ["`conv2d` does not take PyTorch's positional arguments; write `conv2d(1 -> 32, kernel = 3, bias = false)`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [1, 28, 28], conv2d(32, [3, 3]) })),
        ["`conv2d` does not take Keras' positional arguments; write `conv2d(32, kernel = [3, 3])`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [784], dense(784, 128) })),
        ["`dense` does not take PyTorch's positional arguments; write `dense(784 -> 128)`"]
    );
    assert_eq!(
        errors(quote!(struct N { input: [1, 8, 8], max_pool(2, 2) })),
        ["`max_pool` does not take PyTorch's positional arguments; write `max_pool(2, stride = 2)`"]
    );
    // An arrow is `network!`'s own form: the ordinary message.
    let errs = errors(quote!(struct N { input: [1, 8, 8], conv2d(1 -> 4, 3) }));
    assert_eq!(errs, ["`conv2d` takes the filters first, then keyword arguments such as `kernel = 3`"]);
}

#[test]
fn capitalised_builtins_suggest_the_layer() {
    let errs =
        errors(quote!(struct N { input: [1, 8, 8], Conv2D(4, 3), Flatten, MaxPooling2D, Dense(10), ReLU }));
    let read = "is read as a nested network: built-in layers are written in lowercase, e.g.";
    assert_eq!(
        errs,
        [
            format!("`Conv2D` {read} `conv2d(32, kernel = 3)`"),
            format!("`Flatten` {read} `flatten`"),
            format!("`MaxPooling2D` {read} `max_pool(2)`"),
            format!("`Dense` {read} `dense(10)`"),
            format!("`ReLU` {read} `relu`"),
        ]
    );
    let errs =
        errors(quote!(struct N { input: [4], BatchNormalization, LogSoftmax, GlobalAveragePooling2D }));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].ends_with("`batch_norm`") && errs[1].ends_with("`log_softmax`"), "{errs:?}");
    assert!(errs[2].ends_with("`global_avg_pool`"), "{errs:?}");
}

#[test]
fn capitalised_names_that_are_not_builtins_or_have_a_shape_stay_nested_networks() {
    // With `=> [..]` it is a nested network (or a layer type of the user's), whatever its name.
    assert!(errors(quote!(struct N { input: [4], att: Attention => [4], Encoder => [2] })).is_empty());
    let errs = errors(quote!(struct N { input: [4], MyGate }));
    assert_eq!(errs, ["a nested network needs its output shape: write `net: MyGate => [..]`"]);
}

#[test]
fn a_channels_last_input_says_samples_are_channels_first() {
    let hint =
        "; samples are channels-first [channels, height, width], as in PyTorch: [1, 28, 28], not [28, 28, 1]";
    assert_eq!(
        errors(quote!(struct N { input: [28, 28, 1], conv2d(32, kernel = 3) })),
        [format!("`conv2d` kernel 3×3 does not fit the padded input 28×1: `input` gives [28, 28, 1]{hint}")]
    );
    // Declared channels: one error, not also the kernel's.
    assert_eq!(
        errors(quote!(struct N { input: [28, 28, 1], conv2d(1 -> 32, kernel = 3) })),
        [format!("`conv2d` expects 1 channel but `input` gives [28, 28, 1]{hint}")]
    );
    assert_eq!(
        errors(quote!(struct N { input: [28, 28, 1], max_pool(2) })),
        [format!("`max_pool` window 2×2 does not fit the input [28, 28, 1] from `input`{hint}")]
    );
    // A channels-first input that is too small gets no such hint.
    let errs = errors(quote!(struct N { input: [3, 2, 2], conv2d(4, kernel = 3) }));
    assert!(errs.len() == 1 && !errs[0].contains("channels-first"), "{errs:?}");
}

#[test]
fn every_hint_names_a_real_keyword_or_layer() {
    use super::table::lookup;
    for (layers, key, hint) in hints::KEYWORDS {
        for layer in *layers {
            let entry = lookup(layer).unwrap_or_else(|| panic!("{layer}"));
            assert!(!entry.keywords.contains(key), "`{key}` is a keyword of `{layer}`");
        }
        if let Some(rest) = hint.strip_prefix("did you mean `") {
            let ours = rest.split('`').next().unwrap();
            assert!(super::table::LAYERS.iter().any(|e| e.keywords.contains(&ours)), "{ours}");
        }
    }
    for (layers, _, _) in hints::POSITIONAL {
        assert!(layers.iter().all(|l| lookup(l).is_some()), "{layers:?}");
    }
}
