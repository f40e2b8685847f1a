//! The rank-2 layers of core against PyTorch: `tools/gen_seq_fixtures.py`
//! wrote `tests/fixtures/seq_*.json` (inputs `[B][T][F]`, parameters in
//! PyTorch's shapes, `r`, the output `y`, the gradients of `loss = Σ y ⊙ r`
//! and `dx`, in f64). No Python is needed to run these tests.
//!
//! Layers are driven through `staticnet::layers` directly (no `network!`):
//! `Conv1d` alone, `PerStep<LayerNorm>`, and the conv net of
//! `seq_conv_net.json` (conv1d, tanh, max pooling and mean over steps, dense)
//! chained by hand. f64 agrees to 1e-10 (only the summation order differs),
//! f32 to 1e-4.

use serde_json::Value;
use staticnet::gradcheck::assert_close;
use staticnet::layers::{
    Conv1d, Conv1dGeometry, Dense, GlobalAvgPool1d, Layer, LayerNorm, MaxPool1d, PerStep, Tanh,
};
use staticnet::params::{ParamPath, Params};
use staticnet::tensor::Batch;
use staticnet::Float;
use std::path::Path;

struct Fixture(Value);

impl Fixture {
    fn load(name: &str) -> Fixture {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture(serde_json::from_str(&text).expect("valid JSON"))
    }

    fn config(&self, key: &str) -> usize {
        self.0["config"][key].as_u64().unwrap_or_else(|| panic!("config.{key}")) as usize
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
        Batch::from_iterator(self.0[key].as_array().unwrap().len(), self.values(key).into_iter().map(T::cast))
    }

    /// Sets every parameter from `params`, checking names (in visiting order) and shapes.
    fn load_params<T: Float>(&self, layer: &mut impl Params<T>) {
        let expected = self.0["params"].as_object().expect("params");
        let mut names = expected.iter();
        layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            let (name, value) = names.next().expect("more parameters than the fixture");
            let (shape, data) = Self::tensor(value);
            assert_eq!((p.name.to_string().as_str(), p.shape), (name.as_str(), shape.as_slice()));
            p.value.iter_mut().zip(&data).for_each(|(v, &d)| *v = T::cast(d));
        });
        assert!(names.next().is_none(), "fewer parameters than the fixture");
    }

    /// Compares the gradients in visiting order with `grads`.
    fn check_grads<T: Float, P: Params<T>>(&self, grads: &P::Gradients, tol: f64) {
        let expected = self.0["grads"].as_object().expect("grads");
        let mut names = expected.iter();
        P::visit_grads(grads, &mut |g| {
            let (name, value) = names.next().expect("more gradients than the fixture");
            assert_close(g, &Self::tensor(value).1, tol, &format!("gradient of {name}"));
        });
        assert!(names.next().is_none(), "fewer gradients than the fixture");
    }

    fn loss(&self) -> f64 {
        self.0["loss"].as_f64().expect("loss")
    }
}

/// Forward, `loss = Σ y ⊙ r`, backward with `dy = r`, against the fixture.
fn check_layer<T, L, const IN: usize, const OUT: usize>(fixture: &Fixture, mut layer: L, tol: f64)
where
    T: Float,
    L: Layer<T, IN, OUT> + Params<T, Gradients = <L as Layer<T, IN, OUT>>::Gradients>,
{
    fixture.load_params(&mut layer);
    let (x, r) = (fixture.batch::<T, IN>("x"), fixture.batch::<T, OUT>("r"));
    let (mut y, mut ws) = (Batch::zeros(0), L::Workspace::default());
    layer.forward_train(&x, &mut y, &mut ws);
    assert_close(y.as_slice(), &fixture.values("y"), tol, "output");
    let loss = y.iter().zip(r.iter()).fold(0.0, |s, (a, b)| s + a.as_f64() * b.as_f64());
    assert_close(&[loss], &[fixture.loss()], tol, "loss");
    let mut inference = Batch::zeros(0);
    layer.forward(&x, &mut inference);
    assert_eq!(inference, y, "inference and training agree exactly");

    let (mut grads, mut dx) = (Params::zero_gradients(&layer), Batch::zeros(0));
    layer.backward(&x, &y, &r, &mut ws, &mut grads, Some(&mut dx));
    fixture.check_grads::<T, L>(&grads, tol);
    assert_close(dx.as_slice(), &fixture.values("dx"), tol, "input gradient");
}

/// The geometry of a conv1d fixture, after checking its sizes.
fn geometry(fixture: &Fixture, steps: usize, out_steps: usize) -> (Conv1dGeometry, bool) {
    let g = Conv1dGeometry::new(
        fixture.config("steps"),
        fixture.config("kernel"),
        fixture.config("stride"),
        fixture.config("padding"),
        fixture.config("dilation"),
    )
    .unwrap();
    assert_eq!((g.steps, g.out_steps), (steps, out_steps));
    assert_eq!(out_steps, fixture.config("out_steps"));
    (g, fixture.0["config"]["bias"].as_bool().unwrap())
}

fn conv1d<T: Float>(tol: f64) {
    let fixture = Fixture::load("seq_conv1d.json");
    let (g, bias) = geometry(&fixture, 7, 5);
    let layer = Conv1d::<T, 7, 3, 5, 4, 3>::zeros(g, bias).unwrap();
    check_layer::<T, _, 21, 20>(&fixture, layer, tol);
}

fn conv1d_stride_pad_dil<T: Float>(tol: f64) {
    let fixture = Fixture::load("seq_conv1d_stride_pad_dil.json");
    let (g, bias) = geometry(&fixture, 7, 4);
    assert!(!bias);
    let layer = Conv1d::<T, 7, 3, 4, 4, 3>::zeros(g, bias).unwrap();
    check_layer::<T, _, 21, 16>(&fixture, layer, tol);
}

#[test]
fn conv1d_matches_pytorch() {
    conv1d::<f64>(1e-10);
    conv1d::<f32>(1e-4);
}

#[test]
fn conv1d_with_stride_padding_and_dilation_matches_pytorch() {
    conv1d_stride_pad_dil::<f64>(1e-10);
    conv1d_stride_pad_dil::<f32>(1e-4);
}

#[test]
fn layer_norm_at_every_step_matches_pytorch() {
    let fixture = Fixture::load("seq_layer_norm.json");
    assert_eq!((fixture.config("steps"), fixture.config("features")), (4, 5));
    let norm = LayerNorm::<f64, 5>::new(&[5], 1e-5).unwrap();
    check_layer::<f64, _, 20, 20>(&fixture, PerStep::<_, 4, 5, 5>::new(norm), 1e-10);
    let norm = LayerNorm::<f32, 5>::new(&[5], 1e-5).unwrap();
    check_layer::<f32, _, 20, 20>(&fixture, PerStep::<_, 4, 5, 5>::new(norm), 1e-4);
}

/// Sets a layer's parameters from `params[prefix.name]`, checking their shapes.
fn load_prefixed<T: Float>(
    params: &serde_json::Map<String, Value>,
    layer: &mut impl Params<T>,
    prefix: &str,
) {
    layer.visit_params_mut(&ParamPath::ROOT.join(prefix), &mut |p| {
        let name = p.name.to_string();
        let (shape, data) = Fixture::tensor(params.get(&name).unwrap_or_else(|| panic!("{name}")));
        assert_eq!(p.shape, shape.as_slice(), "{name}");
        p.value.iter_mut().zip(&data).for_each(|(v, &d)| *v = T::cast(d));
    });
}

/// `Conv1d(3, 4, 3, padding = 1)` on 8 steps, tanh, `MaxPool1d(2)` over steps,
/// the mean over steps, `Linear(4, 3)`: the layers chained by hand.
fn conv_net<T: Float>(tol: f64) {
    let fixture = Fixture::load("seq_conv_net.json");
    let mut conv =
        Conv1d::<T, 8, 3, 8, 4, 3>::zeros(Conv1dGeometry::new(8, 3, 1, 1, 1).unwrap(), true).unwrap();
    let mut head = Dense::<T, 4, 3>::zeros(true);
    let params = fixture.0["params"].as_object().unwrap();
    load_prefixed(params, &mut conv, "conv");
    load_prefixed(params, &mut head, "head");
    let (mut tanh, mut pool) = (Tanh, MaxPool1d::<8, 4, 4>::new(2, 2).unwrap());
    let mut mean = GlobalAvgPool1d::<4, 4>::new();

    let x = fixture.batch::<T, 24>("x");
    let (mut a, mut b, mut c, mut d, mut y) = (
        Batch::<T, 32>::zeros(0),
        Batch::<T, 32>::zeros(0),
        Batch::<T, 16>::zeros(0),
        Batch::<T, 4>::zeros(0),
        Batch::<T, 3>::zeros(0),
    );
    let (mut conv_ws, mut pool_ws) = (Default::default(), Default::default());
    conv.forward_train(&x, &mut a, &mut conv_ws);
    Layer::<T, 32, 32>::forward_train(&mut tanh, &a, &mut b, &mut ());
    pool.forward_train(&b, &mut c, &mut pool_ws);
    mean.forward_train(&c, &mut d, &mut ());
    Layer::forward_train(&mut head, &d, &mut y, &mut ());
    assert_close(y.as_slice(), &fixture.values("y"), tol, "output");

    let r = fixture.batch::<T, 3>("r");
    let (mut dd, mut dc, mut db, mut da, mut dx) =
        (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
    let (mut head_grads, mut conv_grads) = (head.zero_gradients(), conv.zero_gradients());
    Layer::backward(&head, &d, &y, &r, &mut (), &mut head_grads, Some(&mut dd));
    mean.backward(&c, &d, &dd, &mut (), &mut (), Some(&mut dc));
    pool.backward(&b, &c, &dc, &mut pool_ws, &mut (), Some(&mut db));
    Layer::<T, 32, 32>::backward(&tanh, &a, &b, &db, &mut (), &mut (), Some(&mut da));
    conv.backward(&x, &a, &da, &mut conv_ws, &mut conv_grads, Some(&mut dx));

    let grads = fixture.0["grads"].as_object().unwrap();
    let expect = |name: &str| Fixture::tensor(&grads[name]).1;
    let mut conv_g = Vec::new();
    <Conv1d<T, 8, 3, 8, 4, 3> as Params<T>>::visit_grads(&conv_grads, &mut |g| conv_g.push(g.to_vec()));
    let mut head_g = Vec::new();
    <Dense<T, 4, 3> as Params<T>>::visit_grads(&head_grads, &mut |g| head_g.push(g.to_vec()));
    assert_close(&conv_g[0], &expect("conv.weight"), tol, "conv.weight gradient");
    assert_close(&conv_g[1], &expect("conv.bias"), tol, "conv.bias gradient");
    assert_close(&head_g[0], &expect("head.weight"), tol, "head.weight gradient");
    assert_close(&head_g[1], &expect("head.bias"), tol, "head.bias gradient");
    assert_close(dx.as_slice(), &fixture.values("dx"), tol, "input gradient");
}

#[test]
fn conv1d_tanh_max_pool_mean_dense_matches_pytorch() {
    conv_net::<f64>(1e-10);
    conv_net::<f32>(1e-4);
}
