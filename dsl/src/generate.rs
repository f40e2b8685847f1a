//! Random networks in the macro's language, for the property tests
//! (`property.rs`) and the `dsl` fuzz target (which includes this file by
//! path): valid-looking layers with sizes from tiny to `usize::MAX`, blocks
//! inside blocks (sometimes thousands deep), huge spatial sizes under
//! projections, sequences `[steps, features]` and their layers. Every choice comes from `pick(n)`, a number below `n`, so a
//! seeded generator and a fuzzer's bytes drive it alike.

/// Sizes that are ordinary, at the edges, or past what any shape can hold.
const SIZES: [&str; 10] = [
    "1",
    "2",
    "3",
    "4",
    "28",
    "1000000000000",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "0",
];

/// A whole network: `struct N { input: [..], layers.. }`.
pub fn network(pick: &mut dyn FnMut(usize) -> usize) -> String {
    let input = match pick(3) {
        0 => format!("[{}]", size(pick)),
        1 => format!("[{}, {}]", size(pick), size(pick)),
        _ => format!("[{}, {}, {}]", size(pick), size(pick), size(pick)),
    };
    let mut body = String::new();
    for _ in 0..1 + pick(4) {
        body.push_str(&layer(pick, 0));
        body.push_str(", ");
    }
    format!("struct N {{ input: {input}, {body} }}")
}

fn size(pick: &mut dyn FnMut(usize) -> usize) -> &'static str {
    SIZES[pick(SIZES.len())]
}

/// One layer; blocks hold layers of their own, `depth` levels down.
fn layer(pick: &mut dyn FnMut(usize) -> usize, depth: usize) -> String {
    // Past a few levels, only plain layers, so that generated inputs stay small
    // (`deep` makes the deeply nested ones, without recursion).
    let choice = if depth > 4 { pick(8) } else { pick(21) };
    match choice {
        13 => format!(
            "conv1d({}, kernel = {}, stride = {}, padding = {}, dilation = {})",
            size(pick),
            size(pick),
            size(pick),
            ["0", "1", "same", "18446744073709551615"][pick(4)],
            size(pick)
        ),
        14 => format!("{}({})", ["lstm", "gru"][pick(2)], size(pick)),
        15 => format!("attention(heads = {}{})", size(pick), ["", ", causal"][pick(2)]),
        16 => ["positional", "last", "layer_norm", "softmax"][pick(4)].into(),
        17 => format!("{}({}, stride = {})", ["max_pool", "avg_pool"][pick(2)], size(pick), size(pick)),
        18 => format!("dense({} -> {})", size(pick), size(pick)),
        19 => format!("residual {{ layer_norm, attention(heads = {}) }}", size(pick)),
        0 => format!("dense({})", size(pick)),
        1 => format!("conv2d({}, kernel = {}, stride = {})", size(pick), size(pick), size(pick)),
        2 => format!("conv2d({}, kernel = [{}, 1], padding = same)", size(pick), size(pick)),
        3 => format!("max_pool({})", size(pick)),
        4 => "flatten".into(),
        5 => "global_avg_pool".into(),
        6 => "relu".into(),
        7 => format!("batch_norm, dense({} -> {})", size(pick), size(pick)),
        8 => deep(pick),
        9 => format!("residual {{ {} }}", layer(pick, depth + 1)),
        10 => format!("residual(projection) {{ {} }}", layer(pick, depth + 1)),
        _ => {
            let join = if pick(2) == 0 { "concat" } else { "add" };
            let (a, b) = (layer(pick, depth + 1), layer(pick, depth + 1));
            format!("parallel({join}) {{ branch {{ {a} }} branch {{ {b} }} }}")
        }
    }
}

/// Blocks nested from a few to thousands of levels, built without recursion.
fn deep(pick: &mut dyn FnMut(usize) -> usize) -> String {
    let levels = [2, 31, 32, 33, 200, 5000][pick(6)];
    let (open, close) = match pick(3) {
        0 => ("residual { ", " }"),
        1 => ("residual(projection) { ", ", conv2d(2, kernel = 1) }"),
        _ => ("parallel(add) { branch { ", " } branch { identity } }"),
    };
    format!("{}dense({}){}", open.repeat(levels), size(pick), close.repeat(levels))
}
