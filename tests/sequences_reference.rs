//! Whole sequence networks declared with `network!` against PyTorch: the
//! network fixtures of `tools/gen_seq_fixtures.py` (`tests/fixtures/seq_block.json`,
//! `seq_lstm_net.json`, `seq_conv_net.json`) give each network's source, its
//! parameters under PyTorch's names, inputs `[B][T][F]`, outputs, the loss, every
//! parameter gradient and the input gradient, in f64. The generated networks
//! load the parameters by name and shape and agree to 1e-10 in f64 and 1e-4 in
//! f32. No Python is needed to run these tests.

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::prelude::*;
use std::path::Path;

network! {
    /// `seq_block.json`: a pre-LN transformer block with a head at every step.
    struct SeqBlock {
        input: [5, 8],
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(16), gelu, dense(8) },
        layer_norm,
        head: dense(7),
    }
}

network! {
    /// `seq_lstm_net.json`.
    struct SeqLstmNet {
        input: [6, 4],
        rnn: lstm(5),
        gru1: gru(3),
        last,
        head: dense(2),
    }
}

network! {
    /// `seq_conv_net.json`.
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

    /// A nested array, flattened row-major, and its shape.
    fn tensor(v: &Value) -> (Vec<usize>, Vec<f64>) {
        fn walk(v: &Value, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<f64>) {
            match v {
                Value::Array(items) => {
                    if shape.len() == depth {
                        shape.push(items.len());
                    }
                    items.iter().for_each(|item| walk(item, depth + 1, shape, out));
                }
                v => out.push(v.as_f64().expect("a number")),
            }
        }
        let (mut shape, mut out) = (Vec::new(), Vec::new());
        walk(v, 0, &mut shape, &mut out);
        (shape, out)
    }

    fn values(&self, key: &str) -> Vec<f64> {
        Self::tensor(&self.0[key]).1
    }

    /// `[B][T][F]` row-major is exactly a batch of `B` columns of `T·F` values.
    fn batch<T: Float, const N: usize>(&self, key: &str) -> Batch<T, N> {
        let columns = self.0[key].as_array().expect("a batch").len();
        Batch::from_iterator(columns, self.values(key).into_iter().map(T::cast))
    }

    /// The network's source, as the fixture's generator wrote it.
    fn source(&self) -> &str {
        self.0["config"]["staticnet"].as_str().expect("config.staticnet")
    }

    /// Sets every parameter by name, checking names (in visiting order) and shapes.
    fn load_params<T: Float>(&self, net: &mut impl Params<T>) {
        let expected = self.0["params"].as_object().expect("params");
        let mut names = expected.iter();
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            let (name, value) = names.next().expect("more parameters than the fixture");
            let (shape, data) = Self::tensor(value);
            assert_eq!((p.name.to_string().as_str(), p.shape), (name.as_str(), shape.as_slice()));
            p.value.iter_mut().zip(&data).for_each(|(v, &d)| *v = T::cast(d));
        });
        assert!(names.next().is_none(), "fewer parameters than the fixture");
    }

    /// Compares the gradients, in visiting order, with `grads`.
    fn check_grads<T: Float, P: Params<T>>(&self, grads: &P::Gradients, tol: f64) {
        let expected = self.0["grads"].as_object().expect("grads");
        let mut names = expected.iter();
        P::visit_grads(grads, &mut |g| {
            let (name, value) = names.next().expect("more gradients than the fixture");
            assert_close(g, &Self::tensor(value).1, tol, &format!("gradient of {name}"));
        });
        assert!(names.next().is_none(), "fewer gradients than the fixture");
    }
}

/// The loss and its gradient with respect to the output: `Σ y ⊙ r`, or the mean
/// cross-entropy over every step (PyTorch's `F.cross_entropy` on the flattened logits).
type LossFn<T, const OUT: usize> = fn(&Fixture, &Batch<T, OUT>) -> (f64, Batch<T, OUT>);

/// `loss = Σ y ⊙ r`, `dy = r`.
fn dot_r<T: Float, const OUT: usize>(fixture: &Fixture, y: &Batch<T, OUT>) -> (f64, Batch<T, OUT>) {
    let r = fixture.batch::<T, OUT>("r");
    let loss = y.iter().zip(r.iter()).map(|(a, b)| a.as_f64() * b.as_f64()).sum();
    (loss, r)
}

/// The mean over `B·T` steps of the cross-entropy of each step's `V` logits with its target class.
fn cross_entropy_per_step<T: Float, const OUT: usize>(
    fixture: &Fixture,
    y: &Batch<T, OUT>,
) -> (f64, Batch<T, OUT>) {
    let targets: Vec<usize> = Fixture::tensor(&fixture.0["targets"]).1.iter().map(|&t| t as usize).collect();
    let classes = OUT * y.ncols() / targets.len();
    let count = targets.len() as f64;
    let mut dy = y.clone();
    let mut loss = 0.0;
    for (step, (logits, &target)) in y.as_slice().chunks(classes).zip(&targets).enumerate() {
        let max = logits.iter().map(|v| v.as_f64()).fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = logits.iter().map(|v| (v.as_f64() - max).exp()).sum();
        loss += (max + total.ln() - logits[target].as_f64()) / count;
        let grad = &mut dy.as_mut_slice()[step * classes..(step + 1) * classes];
        for (c, g) in grad.iter_mut().enumerate() {
            let p = (logits[c].as_f64() - max).exp() / total;
            *g = T::cast((p - f64::from(u8::from(c == target))) / count);
        }
    }
    (loss, dy)
}

/// Loads the parameters into `net`; forward, loss, backward against the fixture.
fn check<T, N, const IN: usize, const OUT: usize>(
    fixture: &Fixture,
    mut net: N,
    loss_of: LossFn<T, OUT>,
    tol: f64,
) where
    T: Float,
    N: Network<T, IN, OUT>,
{
    fixture.load_params(&mut net);
    let x = fixture.batch::<T, IN>("x");
    let mut trace = N::Trace::default();
    let y = net.forward_train(&x, &mut trace).clone();
    assert_close(y.as_slice(), &fixture.values("y"), tol, "output");
    let (loss, dy) = loss_of(fixture, &y);
    assert_close(&[loss], &[fixture.0["loss"].as_f64().expect("loss")], tol, "loss");
    assert_eq!(net.forward(&x), y, "inference and training agree exactly");

    let (mut grads, mut dx) = (net.zero_gradients(), Batch::<T, IN>::zeros(0));
    net.backward(&x, &mut trace, &dy, &mut grads, Some(&mut dx));
    fixture.check_grads::<T, N>(&grads, tol);
    assert_close(dx.as_slice(), &fixture.values("dx"), tol, "input gradient");
}

/// The fixtures were written for these very declarations.
#[test]
fn the_fixtures_declare_these_networks() {
    for (file, name) in [
        ("seq_block.json", "SeqBlock"),
        ("seq_lstm_net.json", "SeqLstmNet"),
        ("seq_conv_net.json", "SeqConvNet"),
    ] {
        let source = Fixture::load(file).source().to_string();
        assert!(source.contains(&format!("struct {name} {{")), "{file}: {source}");
    }
    let block = Fixture::load("seq_block.json");
    assert!(block.source().contains("attention(heads = 2, causal)"));
    assert!(Fixture::load("seq_conv_net.json").source().contains("conv1d(4, kernel = 3, padding = 1)"));
}

#[test]
fn transformer_block_matches_pytorch() {
    let fixture = Fixture::load("seq_block.json");
    check::<f64, _, 40, 35>(&fixture, SeqBlock::<f64>::zeros(), cross_entropy_per_step, 1e-10);
    check::<f32, _, 40, 35>(&fixture, SeqBlock::<f32>::zeros(), cross_entropy_per_step, 1e-4);
}

#[test]
fn lstm_network_matches_pytorch() {
    let fixture = Fixture::load("seq_lstm_net.json");
    check::<f64, _, 24, 2>(&fixture, SeqLstmNet::<f64>::zeros(), dot_r, 1e-10);
    check::<f32, _, 24, 2>(&fixture, SeqLstmNet::<f32>::zeros(), dot_r, 1e-4);
}

#[test]
fn conv1d_network_matches_pytorch() {
    let fixture = Fixture::load("seq_conv_net.json");
    check::<f64, _, 24, 3>(&fixture, SeqConvNet::<f64>::zeros(), dot_r, 1e-10);
    check::<f32, _, 24, 3>(&fixture, SeqConvNet::<f32>::zeros(), dot_r, 1e-4);
}
