//! The front end must answer every input with code or spanned errors, never a
//! panic: thousands of malformed and mutated inputs, and of generated networks
//! with huge sizes, deep blocks and huge projections, from fixed seeds, each
//! within a time budget.

use proc_macro2::{Delimiter, Group, Literal, Punct, Spacing, TokenStream, TokenTree};

/// A small xorshift generator: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: [&str; 5] = [
    "pub struct Mlp { input: [784], fc1: dense(256), relu, fc2: dense(256 -> 128, bias = false) => [128], \
     leaky_relu(0.1), head: dense(10), output: [10] }",
    "struct Cnn { input: [1, 28, 28], c: conv2d(16, kernel = [3, 3], stride = 2, padding = same, dilation = 1), \
     batch_norm(eps = 1e-5, momentum = 0.1), relu, max_pool(2, stride = 2), avg_pool(1), flatten, dropout(0.25), \
     layer_norm, dense(10) }",
    "struct Res { input: [2, 8, 8], b: residual { conv2d(2, kernel = 3, padding = 1), relu }, \
     d: residual(projection) { conv2d(4, kernel = 3, stride = 2, padding = 1) }, \
     p: parallel(concat) { branch { conv2d(1, kernel = 1) } branch { max_pool(1) } }, global_avg_pool, \
     s: parallel(add) { branch { dense(3) } branch { dense(3), tanh } }, e: Encoder => [3] }",
    "struct Huge { input: [18446744073709551615], dense(18446744073709551615), conv2d(0), max_pool(99999999999) }",
    "struct Seq { input: [28, 32], c: conv1d(32, kernel = 3, stride = 1, padding = same, dilation = 1, bias = true), \
     relu, max_pool(2), rnn: lstm(32 -> 64), gru(32), pos: positional, \
     att: residual { layer_norm, attention(heads = 4, causal) }, ff: residual { layer_norm, dense(64), gelu, dense(32) }, \
     softmax, avg_pool(2, stride = 1), last, dense(10), output: [10] }",
];

/// A random token that the language uses somewhere, or garbage, spanned
/// like a token the user wrote (at `span`).
fn token(rng: &mut Rng, span: proc_macro2::Span) -> TokenTree {
    let mut tree = match rng.below(9) {
        0 => TokenTree::Literal(Literal::usize_unsuffixed([0, 1, 3, 28, usize::MAX][rng.below(5)])),
        1 => TokenTree::Literal(Literal::f64_unsuffixed([0.0, 0.5, 1.0, 1e300][rng.below(4)])),
        2 => TokenTree::Literal(Literal::string("same")),
        3 => TokenTree::Punct(Punct::new([',', ':', '=', '>', '-', '#', '<'][rng.below(7)], Spacing::Alone)),
        4 => TokenTree::Group(Group::new(
            [Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace][rng.below(3)],
            TokenStream::new(),
        )),
        _ => {
            let words = [
                "dense",
                "conv2d",
                "relu",
                "input",
                "output",
                "residual",
                "parallel",
                "branch",
                "kernel",
                "stride",
                "padding",
                "same",
                "bias",
                "true",
                "struct",
                "type",
                "Encoder",
                "flatten",
                "x",
                "conv1d",
                "lstm",
                "gru",
                "attention",
                "heads",
                "causal",
                "positional",
                "last",
            ];
            TokenTree::Ident(proc_macro2::Ident::new(
                words[rng.below(words.len())],
                proc_macro2::Span::call_site(),
            ))
        }
    };
    tree.set_span(span);
    tree
}

/// One random edit at any depth: delete, insert, swap, duplicate or truncate.
/// New tokens take the span of the token they replace or precede (or `span`).
fn mutate(tokens: TokenStream, span: proc_macro2::Span, rng: &mut Rng) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if trees.is_empty() {
        return std::iter::once(token(rng, span)).collect();
    }
    let at = rng.below(trees.len());
    let span = trees[at].span();
    match rng.below(6) {
        0 => {
            trees.remove(at);
        }
        1 => trees.insert(at, token(rng, span)),
        2 => {
            let other = rng.below(trees.len());
            trees.swap(at, other);
        }
        3 => trees.truncate(at),
        4 => {
            let copy = trees[at].clone();
            trees.insert(at, copy);
        }
        _ => {
            if let TokenTree::Group(g) = &trees[at] {
                let mut inner = Group::new(g.delimiter(), mutate(g.stream(), g.span_open(), rng));
                inner.set_span(g.span());
                trees[at] = TokenTree::Group(inner);
            } else {
                trees[at] = token(rng, span);
            }
        }
    }
    trees.into_iter().collect()
}

/// Whether a span is the macro's call site rather than a token of the input.
fn at_call_site(span: proc_macro2::Span) -> bool {
    span.byte_range() == proc_macro2::Span::call_site().byte_range()
}

/// Every error points at the user's tokens, never at the whole macro call
/// (unless there are no tokens).
#[test]
fn mutated_inputs_are_never_reported_at_the_call_site() {
    let mut rng = Rng(0xca11_517e_0000_0001);
    let mut found = Vec::new();
    for case in 0..4000 {
        let mut tokens: TokenStream = SEEDS[case % SEEDS.len()].parse().expect("seed parses");
        let span = tokens.clone().into_iter().next().map(|t| t.span()).expect("a seed has tokens");
        for _ in 0..1 + rng.below(4) {
            tokens = mutate(tokens, span, &mut rng);
        }
        if tokens.is_empty() {
            continue; // Nothing to point at but the call.
        }
        let input = tokens.to_string();
        let cx = crate::ctxt::Ctxt::new();
        let _ = crate::parse::parse(tokens, &cx).and_then(|def| crate::check::check(def, &cx));
        for (span, message) in cx.spanned_messages() {
            if at_call_site(span) {
                found.push(format!("{message}   in: {input}"));
            }
        }
    }
    assert!(found.is_empty(), "{} at the call site:\n{}", found.len(), found.join("\n"));
}

#[test]
fn mutated_inputs_give_errors_or_code_never_a_panic() {
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    let mut errors = 0;
    for case in 0..4000 {
        let seed: TokenStream = SEEDS[case % SEEDS.len()].parse().expect("seed parses");
        let mut tokens = seed;
        let span = tokens.clone().into_iter().next().map(|t| t.span()).expect("a seed has tokens");
        for _ in 0..1 + rng.below(4) {
            tokens = mutate(tokens, span, &mut rng);
        }
        let input = tokens.to_string();
        let out = std::panic::catch_unwind(|| crate::run(tokens))
            .unwrap_or_else(|_| panic!("panicked on: {input}"));
        if out.to_string().contains("compile_error") {
            errors += 1;
        }
    }
    // Most mutations break something, and each is reported rather than ignored.
    assert!(errors > 2000, "{errors}");
}

/// The most time one input may take to check and expand (a debug build).
const BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Generated networks (`generate.rs`): huge sizes inside blocks, blocks
/// thousands deep, huge spatial sizes under projections. Each is checked and
/// expanded without a panic, within the budget, and the two entry points agree;
/// the expansion stays proportional to the input.
#[test]
fn generated_networks_are_answered_quickly_and_never_panic() {
    let mut rng = Rng(0x0dd_ba11_5eed);
    let (mut valid, mut refused, mut valid_rank2) = (0, 0, 0);
    for _ in 0..1500 {
        let source = crate::generate::network(&mut |n| rng.below(n));
        let tokens: TokenStream = source.parse().expect("generated networks lex");
        let start = std::time::Instant::now();
        let checked = std::panic::catch_unwind(|| crate::check(tokens.clone()))
            .unwrap_or_else(|_| panic!("check panicked on: {source}"));
        let expanded = std::panic::catch_unwind(|| crate::run(tokens))
            .unwrap_or_else(|_| panic!("expand panicked on: {source}"))
            .to_string();
        assert!(start.elapsed() < BUDGET, "{:?} on: {source}", start.elapsed());
        assert_eq!(checked.is_err(), expanded.contains("compile_error"), "{source}");
        assert!(expanded.len() < 2000 * source.len() + 200_000, "{} bytes from: {source}", expanded.len());
        if checked.is_ok() {
            valid += 1;
            let rank2 = source.split(']').next().is_some_and(|input| input.matches(',').count() == 1);
            valid_rank2 += usize::from(rank2);
        } else {
            refused += 1;
        }
    }
    // Both sides are exercised: some networks are valid, most are refused.
    assert!(valid > 20 && refused > 500, "{valid} valid, {refused} refused");
    // Sequences among them: valid networks on a rank-2 input.
    assert!(valid_rank2 > 10, "{valid_rank2} valid on rank 2 of {valid}");
}
