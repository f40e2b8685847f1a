//! The sequence layers and networks, declared with `network!`, against PyTorch: fixtures written by
//! `tools/gen_seq_fixtures.py` (torch, float64) hold parameters, inputs,
//! outputs, the loss and every gradient. No Python is needed to run these tests.
//!
//! Tensors are nested arrays in PyTorch's shapes: `[B, T, F]` row-major is
//! exactly a column-per-sample batch of `[T, F]` samples. Tolerances as in
//! `tests/reference.rs`: 1e-10 in f64 (summation order only), 1e-4 in f32.

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::prelude::*;
use std::path::Path;

network! { struct LstmOnly { input: [4, 3], rnn: lstm(5) } }
network! { struct GruOnly { input: [4, 3], rnn: gru(5) } }
network! { struct Conv1dOnly { input: [7, 3], conv: conv1d(4, kernel = 3) } }
network! {
    struct Conv1dStridePadDil {
        input: [7, 3],
        conv: conv1d(4, kernel = 3, stride = 2, padding = 2, dilation = 2, bias = false),
    }
}
network! { struct AttentionOnly { input: [5, 6], att: attention(heads = 2) } }
network! { struct CausalAttentionOnly { input: [5, 6], att: attention(heads = 2, causal) } }
network! { struct LayerNormOnly { input: [4, 5], ln: layer_norm } }

network! {
    struct SeqBlock {
        input: [5, 8],
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(16), gelu, dense(8) },
        layer_norm,
        head: dense(7),
    }
}

network! {
    struct SeqTokenBlock {
        input: tokens[5],
        embed: embedding(11 -> 8),
        pos: positional,
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(16), gelu, dense(8) },
        layer_norm,
        head: dense(11),
    }
}

network! { struct SeqLstmNet { input: [6, 4], rnn: lstm(5), gru1: gru(3), last, head: dense(2) } }

network! {
    struct SeqConvNet {
        input: [8, 3],
        conv: conv1d(4, kernel = 3, padding = 1),
        tanh,
        max_pool(2),
        global_avg_pool,
        head: dense(3),
    }
}

struct Fixture(Value);

impl Fixture {
    fn load(name: &str) -> Fixture {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture(serde_json::from_str(&text).expect("valid JSON"))
    }

    /// A nested array's numbers, row-major.
    fn flat(v: &Value) -> Vec<f64> {
        match v {
            Value::Array(items) => items.iter().flat_map(Self::flat).collect(),
            number => vec![number.as_f64().expect("a number")],
        }
    }

    /// A nested array's shape.
    fn shape(v: &Value) -> Vec<usize> {
        match v {
            Value::Array(items) => [vec![items.len()], items.first().map_or(vec![], Self::shape)].concat(),
            _ => vec![],
        }
    }

    fn batch<T: Float, const N: usize>(&self, key: &str) -> Batch<T, N> {
        Batch::from_column_slice(&Self::flat(&self.0[key]).into_iter().map(T::cast).collect::<Vec<_>>())
    }

    fn tensor(&self, group: &str, name: &str) -> &Value {
        self.0[group].get(name).unwrap_or_else(|| panic!("no {group} named {name}"))
    }

    fn targets<const STEPS: usize>(&self) -> StepLabels<STEPS> {
        let rows = self.0["targets"].as_array().expect("targets");
        let row = |r: &Value| std::array::from_fn(|t| r[t].as_u64().expect("a class") as usize);
        rows.iter().map(row).collect()
    }
}

/// Loads every parameter by name (the network's names are the fixture's
/// after `prefix`), checking that both hold the same names and shapes.
fn load_params<T: Float, N: Params<T>>(net: &mut N, f: &Fixture, prefix: &str) {
    let mut seen = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let name = p.name.to_string();
        let v = f.tensor("params", name.strip_prefix(prefix).expect("the prefix"));
        assert_eq!(p.shape, Fixture::shape(v).as_slice(), "{name}");
        p.value.iter_mut().zip(Fixture::flat(v)).for_each(|(p, v)| *p = T::cast(v));
        seen += 1;
    });
    assert_eq!(seen, f.0["params"].as_object().unwrap().len(), "parameter count");
}

/// The fixture's loss: `sum(y · r)` with its `r` (the gradient is `r`).
fn weighted<T: Float, const OUT: usize>(f: &Fixture, y: &Batch<T, OUT>) -> (T, Batch<T, OUT>) {
    let r: Batch<T, OUT> = f.batch("r");
    (y.iter().zip(r.iter()).fold(T::zero(), |s, (&y, &r)| s + y * r), r)
}

/// The fixture's loss: the mean cross-entropy at every step against its `targets`.
fn cross_entropy<T: Float, const OUT: usize, const S: usize, const C: usize>(
    f: &Fixture,
    y: &Batch<T, OUT>,
) -> (T, Batch<T, OUT>) {
    let mut d_out = Batch::zeros(0);
    (SequenceCrossEntropy::<S, C>.loss_and_grad(y, &f.targets::<S>(), &mut d_out).unwrap(), d_out)
}

/// Training pass, loss, backward: the output, loss, every gradient and the
/// input gradient against the fixture; inference agrees with training.
fn check<T, N, const IN: usize, const OUT: usize>(
    mut net: N,
    f: &Fixture,
    prefix: &str,
    loss: fn(&Fixture, &Batch<T, OUT>) -> (T, Batch<T, OUT>),
    tol: f64,
) where
    T: Float,
    N: Network<T, IN, OUT>,
{
    load_params(&mut net, f, prefix);
    let x: Batch<T, IN> = f.batch("x");
    let mut trace = N::Trace::default();
    let y = net.forward_train(&x, &mut trace).clone();
    assert_close(y.as_slice(), &Fixture::flat(&f.0["y"]), tol, "output");
    assert_close(net.forward(&x).as_slice(), &Fixture::flat(&f.0["y"]), tol, "inference");
    let (loss, d_out) = loss(f, &y);
    assert_close(&[loss], &[f.0["loss"].as_f64().unwrap()], tol, "loss");
    let mut grads = net.zero_gradients();
    let mut dx = Batch::zeros(0);
    net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut dx));
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    let mut k = 0;
    N::visit_grads(&grads, &mut |g| {
        let name = names[k].strip_prefix(prefix).unwrap();
        assert_close(g, &Fixture::flat(f.tensor("grads", name)), tol, &format!("gradient of {name}"));
        k += 1;
    });
    if f.0.get("dx").is_some() {
        assert_close(dx.as_slice(), &Fixture::flat(&f.0["dx"]), tol, "input gradient");
    }
}

const F64_TOL: f64 = 1e-10;
const F32_TOL: f64 = 1e-4;

/// Both precisions of a network under the weighted-sum loss; the fixture's
/// names are the network's after `prefix`.
macro_rules! weighted {
    ($net:ident, $file:literal, $prefix:literal, $in:literal, $out:literal) => {{
        let f = Fixture::load($file);
        check::<f64, _, $in, $out>($net::zeros(), &f, $prefix, weighted, F64_TOL);
        check::<f32, _, $in, $out>($net::zeros(), &f, $prefix, weighted, F32_TOL);
    }};
}

#[test]
fn lstm_and_gru_match_pytorch() {
    weighted!(LstmOnly, "seq_lstm.json", "rnn.", 12, 20);
    weighted!(GruOnly, "seq_gru.json", "rnn.", 12, 20);
}

#[test]
fn conv1d_matches_pytorch() {
    weighted!(Conv1dOnly, "seq_conv1d.json", "conv.", 21, 20);
    weighted!(Conv1dStridePadDil, "seq_conv1d_stride_pad_dil.json", "conv.", 21, 16);
}

#[test]
fn attention_matches_pytorch() {
    weighted!(AttentionOnly, "seq_attention.json", "att.", 30, 30);
    weighted!(CausalAttentionOnly, "seq_attention_causal.json", "att.", 30, 30);
}

#[test]
fn layer_norm_at_every_step_matches_pytorch() {
    weighted!(LayerNormOnly, "seq_layer_norm.json", "ln.", 20, 20);
}

/// The network fixtures were written for these very declarations.
#[test]
fn the_fixtures_declare_these_networks() {
    for (file, name) in [
        ("seq_block.json", "SeqBlock"),
        ("seq_token_block.json", "SeqTokenBlock"),
        ("seq_lstm_net.json", "SeqLstmNet"),
        ("seq_conv_net.json", "SeqConvNet"),
    ] {
        let source = Fixture::load(file).0["config"]["staticnet"].as_str().expect("the source").to_string();
        assert!(source.contains(&format!("struct {name} {{")), "{file}: {source}");
    }
}

#[test]
fn recurrent_network_matches_pytorch() {
    let f = Fixture::load("seq_lstm_net.json");
    check::<f64, _, 24, 2>(SeqLstmNet::zeros(), &f, "", weighted, F64_TOL);
    check::<f32, _, 24, 2>(SeqLstmNet::zeros(), &f, "", weighted, F32_TOL);
}

#[test]
fn conv1d_network_with_pools_matches_pytorch() {
    let f = Fixture::load("seq_conv_net.json");
    check::<f64, _, 24, 3>(SeqConvNet::zeros(), &f, "", weighted, F64_TOL);
    check::<f32, _, 24, 3>(SeqConvNet::zeros(), &f, "", weighted, F32_TOL);
}

#[test]
fn pre_ln_transformer_block_with_cross_entropy_matches_pytorch() {
    let f = Fixture::load("seq_block.json");
    check::<f64, _, 40, 35>(SeqBlock::zeros(), &f, "", cross_entropy::<_, 35, 5, 7>, F64_TOL);
    check::<f32, _, 40, 35>(SeqBlock::zeros(), &f, "", cross_entropy::<_, 35, 5, 7>, F32_TOL);
}

#[test]
fn token_embedding_transformer_matches_pytorch() {
    let f = Fixture::load("seq_token_block.json");
    check::<f64, _, 5, 55>(SeqTokenBlock::zeros(), &f, "", cross_entropy::<_, 55, 5, 11>, F64_TOL);
    check::<f32, _, 5, 55>(SeqTokenBlock::zeros(), &f, "", cross_entropy::<_, 55, 5, 11>, F32_TOL);
    // The ids are checked before a pass: 11 is not among the 11 tokens.
    let mut ids: Batch<f64, 5> = f.batch("x");
    assert!(SeqTokenBlock::<f64>::check_input(&ids).is_ok());
    ids[(3, 2)] = 11.0;
    let err = SeqTokenBlock::<f64>::check_input(&ids).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token id 11 of sample 2 at step 3 is not in the vocabulary: ids are whole numbers below 11"
    );
}

/// `staticnet_seq_<kind>.{safetensors,json}`: a model saved by staticnet, with
/// an input and staticnet's output, which `tools/gen_seq_fixtures.py
/// --check-load` loads into `nn.LSTM` / `nn.GRU` / `nn.MultiheadAttention` by
/// name and runs. `STATICNET_WRITE_FIXTURES=1` rewrites them; otherwise the
/// committed model must load and give the committed outputs again.
fn saved_for_pytorch<N, const IN: usize, const OUT: usize>(kind: &str, net: N, extra: Value)
where
    N: Network<f32, IN, OUT>,
    N: Clone,
{
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (weights, json_path) = (
        fixtures.join(format!("staticnet_seq_{kind}.safetensors")),
        fixtures.join(format!("staticnet_seq_{kind}.json")),
    );
    let x = Batch::<f32, IN>::from_fn(2, |i, j| ((i * 7 + j * 13) as f32 * 0.37).sin());
    if std::env::var_os("STATICNET_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        staticnet::persist::save(&net, &weights).unwrap();
        let y = net.forward(&x);
        let steps = |b: &[f32], width: usize| -> Vec<Vec<Vec<f64>>> {
            b.chunks(b.len() / 2)
                .map(|s| s.chunks(width).map(|r| r.iter().map(|&v| f64::from(v)).collect()).collect())
                .collect()
        };
        let mut json = serde_json::json!({
            "generator": "tests/reference_seq.rs (STATICNET_WRITE_FIXTURES=1 cargo test --test reference_seq)",
            "module": kind,
            "prefix": extra["prefix"],
            "x": steps(x.as_slice(), extra["features"].as_u64().unwrap() as usize),
            "y": steps(y.as_slice(), extra["out_features"].as_u64().unwrap() as usize),
        });
        if kind == "attention" {
            json["heads"] = extra["heads"].clone();
            json["causal"] = extra["causal"].clone();
        }
        std::fs::write(&json_path, serde_json::to_string(&json).unwrap() + "\n").unwrap();
    }
    let committed = Fixture::load(json_path.file_name().unwrap().to_str().unwrap());
    let mut loaded = net.clone();
    staticnet::persist::load_into(&mut loaded, &weights).unwrap();
    assert_close(loaded.forward(&x).as_slice(), &Fixture::flat(&committed.0["y"]), 1e-5, kind);
}

#[test]
fn models_saved_for_pytorch_give_their_committed_outputs() {
    let rnn = serde_json::json!({"prefix": "rnn.", "features": 3, "out_features": 5});
    saved_for_pytorch("lstm", LstmOnly::new(7), rnn.clone());
    saved_for_pytorch("gru", GruOnly::new(7), rnn);
    let att =
        serde_json::json!({"prefix": "att.", "features": 6, "out_features": 6, "heads": 2, "causal": true});
    saved_for_pytorch("attention", CausalAttentionOnly::new(7), att);
}
