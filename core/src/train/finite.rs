//! Where a NaN or infinity first appeared in a training step (for [`crate::train::Trainer::check_finite`]).
//! A step that would make the weights non-finite is refused by the optimizer
//! ([`crate::optim::Optimizer::step_if_finite`]).

use crate::float::Float;
use crate::network::Network;
use crate::params::{ParamPath, Params};

/// The position and value of the first NaN or infinity in `values`.
pub(super) fn first_non_finite<T: Float>(values: &[T]) -> Option<(usize, f64)> {
    values.iter().position(|v| !v.is_finite()).and_then(|i| values.get(i).map(|v| (i, v.as_f64())))
}

/// The first layer output in `trace` holding a NaN or infinity: the layer's
/// name, the position in its output, the output's length, and the value.
pub(super) fn first_non_finite_output<T, N, const IN: usize, const OUT: usize>(
    trace: &N::Trace,
) -> Option<(String, usize, usize, f64)>
where
    T: Float,
    N: Network<T, IN, OUT>,
{
    let mut found = None;
    N::visit_outputs(trace, &mut |name, values| {
        if found.is_none() {
            if let Some((i, value)) = first_non_finite(values) {
                found = Some((name.to_string(), i, values.len(), value));
            }
        }
    });
    found
}

/// The first parameter (by visiting index) whose gradient holds a NaN or
/// infinity, the element's position in it, and its value.
pub(super) fn first_non_finite_grad<T: Float, N: Params<T>>(
    grads: &N::Gradients,
) -> Option<(usize, usize, f64)> {
    let (mut param, mut found) = (0, None);
    N::visit_grads(grads, &mut |g| {
        if found.is_none() {
            if let Some((i, value)) = first_non_finite(g) {
                found = Some((param, i, value));
            }
        }
        param += 1;
    });
    found
}

/// The `state_dict` name of the `index`-th parameter in visiting order.
pub(super) fn param_name<T: Float, N: Params<T>>(net: &N, index: usize) -> String {
    let (mut k, mut name) = (0, None);
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        if k == index {
            name = Some(p.name.to_string());
        }
        k += 1;
    });
    name.unwrap_or_else(|| format!("parameter {index}"))
}
