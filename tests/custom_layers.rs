//! Layers of the user's own inside `network!`: a SiLU without parameters and
//! a gated layer with parameters and a constructor argument. They train,
//! their gradients agree with finite differences (alone and through a
//! network), their parameters are saved and loaded under their field names,
//! and they sit beside a nested network.

use staticnet::gradcheck::{check_layer, check_network};
use staticnet::params::{Param, ParamMut};
use staticnet::prelude::*;
use std::marker::PhantomData;
use std::path::Path;

/// `x·σ(x)` at every size.
#[derive(Clone, Debug, Default)]
pub struct MySilu<T = f32>(PhantomData<T>);
staticnet::no_params!(MySilu<T>);

fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

impl<T: Float, const N: usize> CustomLayer<T, N, N> for MySilu<T> {
    type Workspace = ();

    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        y.zip_apply(x, |y, x| *y = x * sigmoid(x));
    }

    fn backward(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        _ws: &mut (),
        _grads: &mut (),
        dx: Option<&mut Batch<T, N>>,
    ) {
        if let Some(dx) = dx {
            dx.zip_zip_apply(x, dy, |dx, x, dy| {
                let s = sigmoid(x);
                *dx = dy * s * (T::one() + x * (T::one() - s));
            });
        }
    }
}

/// `y = x · σ(w ⊙ x + b)` per feature, `b` starting at the constructor's value
/// and `w` drawn by `init_params`; the training pass keeps the gate.
#[derive(Clone, Debug)]
pub struct MyGate<const N: usize, T = f32> {
    weight: Vec<T>,
    bias: Vec<T>,
}

impl<const N: usize, T: Float> MyGate<N, T> {
    /// A gate whose biases start at `bias` (open: positive).
    pub fn new(bias: f64) -> Self {
        MyGate { weight: vec![T::zero(); N], bias: vec![T::cast(bias); N] }
    }

    fn gate(&self, x: &Batch<T, N>, g: &mut Batch<T, N>) {
        *g = Batch::from_fn(x.ncols(), |i, j| sigmoid(self.weight[i] * x[(i, j)] + self.bias[i]));
    }
}

impl<const N: usize, T: Float> Params<T> for MyGate<N, T> {
    type Gradients = [Vec<T>; 2];
    const PARAM_COUNT: usize = 2 * N;

    fn zero_gradients(&self) -> [Vec<T>; 2] {
        [vec![T::zero(); N], vec![T::zero(); N]]
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &[N], value: &self.weight });
        f(Param { name: path.join("bias"), shape: &[N], value: &self.bias });
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &[N], value: &mut self.weight });
        f(ParamMut { name: path.join("bias"), shape: &[N], value: &mut self.bias });
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &[Vec<T>; 2],
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        f(ParamMut { name: path.join("weight"), shape: &[N], value: &mut self.weight }, &grads[0]);
        f(ParamMut { name: path.join("bias"), shape: &[N], value: &mut self.bias }, &grads[1]);
    }
    fn visit_grads(grads: &[Vec<T>; 2], f: &mut dyn FnMut(&[T])) {
        f(&grads[0]);
        f(&grads[1]);
    }
}

impl<const N: usize, T: Float> CustomLayer<T, N, N> for MyGate<N, T> {
    /// The gate of the last training pass.
    type Workspace = Batch<T, N>;

    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        let mut g = Batch::zeros(0);
        self.gate(x, &mut g);
        y.zip_zip_apply(x, &g, |y, x, g| *y = x * g);
    }

    fn forward_train(&mut self, x: &Batch<T, N>, y: &mut Batch<T, N>, g: &mut Batch<T, N>) {
        self.gate(x, g);
        y.zip_zip_apply(x, g, |y, x, g| *y = x * g);
    }

    fn backward(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        g: &mut Batch<T, N>,
        grads: &mut [Vec<T>; 2],
        dx: Option<&mut Batch<T, N>>,
    ) {
        // y = x·g, g = σ(z), z = w·x + b: dy/dz = x·g·(1 - g).
        let dz = Batch::<T, N>::from_fn(x.ncols(), |i, j| {
            let (x, g) = (x[(i, j)], g[(i, j)]);
            dy[(i, j)] * x * g * (T::one() - g)
        });
        for i in 0..N {
            grads[0][i] = (0..x.ncols()).fold(T::zero(), |s, j| s + dz[(i, j)] * x[(i, j)]);
            grads[1][i] = (0..x.ncols()).fold(T::zero(), |s, j| s + dz[(i, j)]);
        }
        if let Some(dx) = dx {
            for j in 0..x.ncols() {
                for i in 0..N {
                    dx[(i, j)] = dy[(i, j)] * g[(i, j)] + dz[(i, j)] * self.weight[i];
                }
            }
        }
    }

    fn init_params(&mut self, init: Init, rng: &mut staticnet::init::SeededRng) {
        // Each weight scales one feature: fan-in and fan-out 1.
        init.resolve(false).fill(&mut self.weight, 1, 1, rng);
    }
}

network! {
    struct Encoder { input: [4], dense(6), tanh }
}

network! {
    /// Iris through both custom layers and a nested network.
    struct Gated {
        input: [4],
        encoder: Encoder => [6],
        fc1: dense(16),
        act: MySilu => [16],
        gate: MyGate<16>(0.5) => [16],
        head: dense(3),
    }
}

fn iris() -> Dataset<f32, 4, Labels> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv")).unwrap();
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        features.extend(fields[..4].iter().map(|f| f.parse::<f32>().unwrap()));
        labels.push(fields[4].trim().parse::<usize>().unwrap());
    }
    Dataset::new(Batch::from_column_slice(&features), labels).unwrap()
}

fn inputs<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| ((i * 7 + j * 3) as f64 * 0.713).sin() * 1.5)
}

#[test]
fn the_layers_alone_agree_with_finite_differences() {
    assert!(check_layer(&mut MySilu::<f64>::default(), &inputs::<5>(4), 1e-6) < 1e-6);
    let mut gate = MyGate::<5, f64>::new(0.3);
    gate.init_params(Init::Auto, &mut staticnet::init::seeded_rng(2));
    assert!(check_layer(&mut gate, &inputs::<5>(4), 1e-6) < 1e-6);
}

#[test]
fn gradients_through_the_network_agree_with_finite_differences() {
    let mut net = Gated::<f64>::init(Init::Glorot, 5);
    let labels = vec![0, 1, 2, 1, 0, 2];
    assert!(check_network(&mut net, &SoftmaxCrossEntropy, &inputs(6), &labels, 1e-6) < 1e-6);
}

#[test]
fn parameters_are_named_after_the_fields() {
    let net = Gated::new(1);
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push((p.name.to_string(), p.shape.to_vec())));
    let names: Vec<(&str, &[usize])> = names.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    assert_eq!(
        names,
        [
            ("encoder.0.weight", &[6, 4][..]),
            ("encoder.0.bias", &[6]),
            ("fc1.weight", &[16, 6]),
            ("fc1.bias", &[16]),
            ("gate.weight", &[16]),
            ("gate.bias", &[16]),
            ("head.weight", &[3, 16]),
            ("head.bias", &[3]),
        ]
    );
    assert_eq!(Gated::PARAM_COUNT, 30 + 112 + 32 + 51);
    // The constructor's argument reached the layer, and `init` drew the weights.
    assert!(net.gate.layer.bias.iter().all(|&b| b == 0.5));
    assert!(net.gate.layer.weight.iter().any(|&w| w != 0.0));
    assert!(Gated::summary().contains("MyGate"), "{}", Gated::summary());
}

#[test]
fn a_network_with_custom_layers_trains_and_is_saved_and_loaded_by_name() {
    let data = iris();
    let mut net = Gated::new(3);
    let before = evaluate(&net, &SoftmaxCrossEntropy, &data, 64).unwrap();
    Trainer::new(Adam::new(0.01))
        .epochs(40)
        .batch_size(16)
        .seed(1)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
    let after = evaluate(&net, &SoftmaxCrossEntropy, &data, 64).unwrap();
    assert!(after.loss < before.loss * 0.5, "{} -> {}", before.loss, after.loss);
    assert!(after.accuracy.unwrap() > 0.9, "{:?}", after.accuracy);

    let dir = std::env::temp_dir().join(format!("staticnet-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gated.safetensors");
    net.save(&path).unwrap();
    let loaded = Gated::load(&path).unwrap();
    assert_eq!(loaded.gate.layer.weight, net.gate.layer.weight);
    assert_eq!(loaded.gate.layer.bias, net.gate.layer.bias);
    let x = data.features().columns(0, 10).into_owned();
    assert_eq!(loaded.forward(&x), net.forward(&x));
    std::fs::remove_dir_all(&dir).unwrap();
}
