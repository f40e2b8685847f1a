//! Finite-difference checks shared by the tests of the sequence layers, for
//! the loss `L = Σ c ⊙ y` with fixed `c` (so `dL/dy = c`).

use crate::gradcheck::{assert_close, numeric_grad};
use crate::layers::Layer;
use crate::params::{ParamPath, Params};
use crate::tensor::Batch;

/// A batch of smooth, distinct-looking values.
pub(crate) fn wavy<const N: usize>(batch: usize, seed: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| (((i * 7 + j * 13 + seed) as f64) * 0.37).sin())
}

/// `L = Σ c ⊙ y` after a training pass of a copy of `layer`.
fn loss<L: Layer<f64, IN, OUT> + Clone, const IN: usize, const OUT: usize>(
    layer: &L,
    x: &Batch<f64, IN>,
    c: &Batch<f64, OUT>,
) -> f64 {
    let (mut y, mut l) = (Batch::zeros(0), layer.clone());
    l.forward_train(x, &mut y, &mut Default::default());
    y.component_mul(c).sum()
}

/// Runs a training pass and the backward pass on `x`; checks that inference
/// gives the training output and that the input gradient (overwritten, not
/// accumulated) matches finite differences. Returns the parameter gradients.
pub(crate) fn check_input<L, const IN: usize, const OUT: usize>(
    layer: &mut L,
    x: &Batch<f64, IN>,
    grads: &mut L::Gradients,
    what: &str,
) where
    L: Layer<f64, IN, OUT> + Clone,
{
    let c = wavy::<OUT>(x.ncols(), 5).map(|v| v * 2.0 - 0.3);
    let (mut y, mut ws) = (Batch::zeros(0), L::Workspace::default());
    layer.forward_train(x, &mut y, &mut ws);
    let mut y_inf = Batch::zeros(0);
    layer.forward(x, &mut y_inf);
    assert_eq!(y, y_inf, "{what}: inference and training differ");
    let mut dx = Batch::from_element(x.ncols(), f64::NAN);
    layer.backward(x, &y, &c, &mut ws, grads, Some(&mut dx));
    let num = numeric_grad(x.as_slice(), |xs| loss(layer, &Batch::from_column_slice(xs), &c));
    assert_close(dx.as_slice(), &num, 1e-7, &format!("{what}: input gradient"));
}

/// [`check_input`], then every parameter gradient against finite differences.
pub(crate) fn check_gradients<L, const IN: usize, const OUT: usize>(
    layer: &mut L,
    x: &Batch<f64, IN>,
    what: &str,
) where
    L: Layer<f64, IN, OUT> + Params<f64, Gradients = <L as Layer<f64, IN, OUT>>::Gradients> + Clone,
{
    let mut grads = Params::zero_gradients(layer);
    check_input(layer, x, &mut grads, what);
    let c = wavy::<OUT>(x.ncols(), 5).map(|v| v * 2.0 - 0.3);
    let mut analytic = Vec::new();
    L::visit_grads(&grads, &mut |g| analytic.push(g.to_vec()));
    let mut values = Vec::new();
    layer.visit_params(&ParamPath::ROOT, &mut |p| values.push(p.value.to_vec()));
    assert!(!values.is_empty() && values.len() == analytic.len(), "{what}: parameters and gradients differ");
    for (k, (v, a)) in values.iter().zip(&analytic).enumerate() {
        let num = numeric_grad(v, |v| {
            let mut l = layer.clone();
            let mut i = 0;
            l.visit_params_mut(&ParamPath::ROOT, &mut |p| {
                if i == k {
                    p.value.copy_from_slice(v);
                }
                i += 1;
            });
            loss(&l, x, &c)
        });
        assert_close(a, &num, 1e-7, &format!("{what}: parameter {k}"));
    }
}
