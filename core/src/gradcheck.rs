//! Finite-difference gradient checking, for tests of layers and whole networks.
//!
//! Central differences in `f64` with step `1e-6`: truncation error is O(h²)
//! and rounding error about `1e-16·|f| / h`, so analytic and numeric gradients
//! of smooth functions agree to about 1e-8 relative.

use crate::float::Float;
use crate::layers::CustomLayer;
use crate::loss::Loss;
use crate::network::Network;
use crate::params::ParamPath;
use crate::tensor::Batch;

/// The finite-difference step.
pub const STEP: f64 = 1e-6;

/// The numeric gradient of `f` at `at`, by central differences.
pub fn numeric_grad(at: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = at.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + STEP;
            let plus = f(&x);
            x[i] = orig - STEP;
            let minus = f(&x);
            x[i] = orig;
            (plus - minus) / (2.0 * STEP)
        })
        .collect()
}

/// Whether `a` and `b` agree within `tol`, relative to the larger magnitude (or absolute below 1).
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// Asserts that two slices agree element-wise within `tol` (see [`close`]).
#[track_caller]
pub fn assert_close<T: Float>(actual: &[T], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let a = a.as_f64();
        assert!(close(a, *e, tol), "{what}[{i}]: got {a}, expected {e} (tolerance {tol})");
    }
}

/// Checks every parameter gradient of a whole network under a loss against
/// finite differences of the training pass; returns the largest relative error seen.
/// Networks with dropout draw a new mask on every pass: check those layer by layer.
///
/// Panics (it is a test helper) naming the first parameter entry that is off by more than `tol`.
#[track_caller]
pub fn check_network<N, L, const IN: usize, const OUT: usize>(
    net: &mut N,
    loss: &L,
    x: &Batch<f64, IN>,
    target: &L::Target,
    tol: f64,
) -> f64
where
    N: Network<f64, IN, OUT>,
    L: Loss<f64, OUT>,
{
    let mut trace = N::Trace::default();
    let mut d_out = Batch::zeros(0);
    let mut grads = net.zero_gradients();
    let out = net.forward_train(x, &mut trace);
    loss.loss_and_grad(out, target, &mut d_out).expect("valid targets");
    net.backward(x, &mut trace, &d_out, &mut grads, None);

    let mut analytic = Vec::new();
    N::visit_grads(&grads, &mut |g| analytic.push(g.to_vec()));

    let mut names = Vec::new();
    let mut values = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        names.push(p.name.to_string());
        values.push(p.value.to_vec());
    });
    let mut worst = 0.0f64;
    for k in 0..values.len() {
        let numeric = numeric_grad(&values[k], |v| {
            let mut idx = 0;
            net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
                if idx == k {
                    p.value.copy_from_slice(v);
                }
                idx += 1;
            });
            // Training mode, as the analytic gradient: batch norm uses batch statistics.
            let mut probe = N::Trace::default();
            loss.loss(net.forward_train(x, &mut probe), target).expect("valid targets")
        });
        // Restore the unperturbed values.
        let mut idx = 0;
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            if idx == k {
                p.value.copy_from_slice(&values[k]);
            }
            idx += 1;
        });
        for (i, (a, n)) in analytic[k].iter().zip(&numeric).enumerate() {
            let err = (a - n).abs() / a.abs().max(n.abs()).max(1.0);
            worst = worst.max(err);
            assert!(err <= tol, "{}[{i}]: analytic {a}, numeric {n}", names[k]);
        }
    }
    worst
}

/// Checks a layer of your own ([`CustomLayer`]) against finite differences:
/// the gradient of every parameter and of the input, under the loss
/// `Σ r·y` with fixed weights `r` (so every output entry matters), at `x`.
/// Returns the largest relative error seen.
///
/// Panics (it is a test helper) naming the first entry that is off by more
/// than `tol` (`1e-6` suits smooth layers in `f64`), or when the layer leaves
/// the output's size or a gradient's length wrong.
///
/// # Examples
///
/// ```
/// use staticnet_core::gradcheck::check_layer;
/// use staticnet_core::layers::CustomLayer;
/// use staticnet_core::{Batch, Float};
///
/// #[derive(Clone, Debug, Default)]
/// struct Square<T = f32>(std::marker::PhantomData<T>);
/// staticnet_core::no_params!(Square<T>);
///
/// impl<T: Float, const N: usize> CustomLayer<T, N, N> for Square<T> {
///     type Workspace = ();
///     fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
///         y.zip_apply(x, |y, x| *y = x * x);
///     }
///     fn backward(&self, x: &Batch<T, N>, _: &Batch<T, N>, dy: &Batch<T, N>, _: &mut (), _: &mut (),
///                 dx: Option<&mut Batch<T, N>>) {
///         if let Some(dx) = dx {
///             dx.zip_zip_apply(x, dy, |dx, x, dy| *dx = (x + x) * dy);
///         }
///     }
/// }
///
/// let x = Batch::<f64, 3>::from_fn(2, |i, j| i as f64 - j as f64 * 0.5);
/// let worst = check_layer(&mut Square::<f64>::default(), &x, 1e-6);
/// assert!(worst < 1e-6);
/// ```
#[track_caller]
pub fn check_layer<L, const IN: usize, const OUT: usize>(layer: &mut L, x: &Batch<f64, IN>, tol: f64) -> f64
where
    L: CustomLayer<f64, IN, OUT>,
{
    let n = x.ncols();
    let r = Batch::<f64, OUT>::from_fn(n, |i, j| ((i * 7 + j * 3) as f64 * 0.61).sin() + 0.3);
    let loss_at = |layer: &mut L, x: &Batch<f64, IN>| {
        let (mut y, mut ws) = (Batch::<f64, OUT>::zeros(n), L::Workspace::default());
        layer.forward_train(x, &mut y, &mut ws);
        assert_eq!(y.ncols(), n, "the layer changed the output's batch size");
        y.dot(&r)
    };
    let (mut y, mut ws) = (Batch::<f64, OUT>::zeros(n), L::Workspace::default());
    layer.forward_train(x, &mut y, &mut ws);
    let mut grads = layer.zero_gradients();
    let mut dx = Batch::<f64, IN>::zeros(n);
    layer.backward(x, &y, &r, &mut ws, &mut grads, Some(&mut dx));

    let mut worst = 0.0f64;
    let mut compare = |what: &str, analytic: &[f64], numeric: &[f64]| {
        assert_eq!(analytic.len(), numeric.len(), "{what}: the gradient has the wrong length");
        for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
            let err = (a - n).abs() / a.abs().max(n.abs()).max(1.0);
            worst = worst.max(err);
            assert!(err <= tol, "{what}[{i}]: analytic {a}, numeric {n}");
        }
    };
    let numeric = numeric_grad(x.as_slice(), |v| loss_at(layer, &Batch::from_column_slice(v)));
    compare("input", dx.as_slice(), &numeric);

    let mut analytic = Vec::new();
    L::visit_grads(&grads, &mut |g| analytic.push(g.to_vec()));
    let mut params = Vec::new();
    layer.visit_params(&ParamPath::ROOT, &mut |p| params.push((p.name.to_string(), p.value.to_vec())));
    assert_eq!(analytic.len(), params.len(), "visit_grads and visit_params list different parameters");
    let set = |layer: &mut L, k: usize, v: &[f64]| {
        let mut idx = 0;
        layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            if idx == k {
                p.value.copy_from_slice(v);
            }
            idx += 1;
        });
    };
    for (k, (name, values)) in params.iter().enumerate() {
        let numeric = numeric_grad(values, |v| {
            set(layer, k, v);
            loss_at(layer, x)
        });
        set(layer, k, values);
        compare(name, &analytic[k], &numeric);
    }
    worst
}
