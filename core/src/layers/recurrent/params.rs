//! The four tensors of a one-layer recurrent network, under PyTorch's names
//! and in its layouts, shared by [`Lstm`](super::Lstm) and [`Gru`](super::Gru)
//! for their parameters and for their gradients.

use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath};
use rand_distr::{Distribution, Uniform};
use std::fmt;

/// PyTorch's `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0` and `bias_hh_l0` of a
/// recurrent layer with `G` gates (LSTM 4: i, f, g, o; GRU 3: r, z, n), `F`
/// input features and `H` hidden units, each a flat row-major slice:
/// `weight_ih` is `[G·H, F]`, `weight_hh` `[G·H, H]`, the biases `[G·H]`.
///
/// The same type holds a layer's gradients. The slices can be read and written
/// but never resized, so a layer's products always see the sizes they expect.
#[derive(Clone, PartialEq)]
pub struct RecurrentWeights<T: Float> {
    weight_ih: Box<[T]>,
    weight_hh: Box<[T]>,
    bias_ih: Box<[T]>,
    bias_hh: Box<[T]>,
    inputs: usize,
    hidden: usize,
}

impl<T: Float> RecurrentWeights<T> {
    /// Zero tensors for `gates` gates of `hidden` units over `inputs` features.
    pub(super) fn zeros(gates: usize, inputs: usize, hidden: usize) -> Self {
        let rows = gates * hidden;
        RecurrentWeights {
            weight_ih: vec![T::zero(); rows * inputs].into(),
            weight_hh: vec![T::zero(); rows * hidden].into(),
            bias_ih: vec![T::zero(); rows].into(),
            bias_hh: vec![T::zero(); rows].into(),
            inputs,
            hidden,
        }
    }

    /// PyTorch's initialisation: every value from U(−1/√H, 1/√H), the four
    /// tensors in `state_dict` order.
    pub(super) fn uniform(gates: usize, inputs: usize, hidden: usize, rng: &mut SeededRng) -> Self {
        let mut w = Self::zeros(gates, inputs, hidden);
        let k = 1.0 / (hidden.max(1) as f64).sqrt();
        if let Ok(u) = Uniform::new_inclusive(-k, k) {
            w.tensors_mut().into_iter().flatten().for_each(|v| *v = T::cast(u.sample(rng)));
        }
        w
    }

    /// `weight_ih_l0`: `[G·H, F]`, row-major (gate blocks of `H` rows in PyTorch's order).
    pub fn weight_ih(&self) -> &[T] {
        &self.weight_ih
    }
    /// `weight_hh_l0`: `[G·H, H]`, row-major.
    pub fn weight_hh(&self) -> &[T] {
        &self.weight_hh
    }
    /// `bias_ih_l0`: `[G·H]`.
    pub fn bias_ih(&self) -> &[T] {
        &self.bias_ih
    }
    /// `bias_hh_l0`: `[G·H]`.
    pub fn bias_hh(&self) -> &[T] {
        &self.bias_hh
    }
    /// [`RecurrentWeights::weight_ih`], writable.
    pub fn weight_ih_mut(&mut self) -> &mut [T] {
        &mut self.weight_ih
    }
    /// [`RecurrentWeights::weight_hh`], writable.
    pub fn weight_hh_mut(&mut self) -> &mut [T] {
        &mut self.weight_hh
    }
    /// [`RecurrentWeights::bias_ih`], writable.
    pub fn bias_ih_mut(&mut self) -> &mut [T] {
        &mut self.bias_ih
    }
    /// [`RecurrentWeights::bias_hh`], writable.
    pub fn bias_hh_mut(&mut self) -> &mut [T] {
        &mut self.bias_hh
    }

    /// The four tensors in `state_dict` order, writable (for loops over all values).
    pub(super) fn tensors_mut(&mut self) -> [&mut [T]; 4] {
        [&mut self.weight_ih, &mut self.weight_hh, &mut self.bias_ih, &mut self.bias_hh]
    }

    /// The PyTorch shapes, in `state_dict` order.
    fn shapes(&self) -> [[usize; 2]; 4] {
        let rows = self.bias_ih.len();
        [[rows, self.inputs], [rows, self.hidden], [rows, 0], [rows, 0]]
    }

    /// The shape of tensor `k` as a slice (the biases are rank 1).
    fn shape(shapes: &[[usize; 2]; 4], k: usize) -> &[usize] {
        if k < 2 {
            &shapes[k]
        } else {
            &shapes[k][..1]
        }
    }

    /// [`Params::visit_params`](crate::params::Params::visit_params) for a layer holding these tensors.
    pub(super) fn visit(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let shapes = self.shapes();
        let values: [&[T]; 4] = [&self.weight_ih, &self.weight_hh, &self.bias_ih, &self.bias_hh];
        for (k, (name, value)) in NAMES.iter().zip(values).enumerate() {
            f(Param { name: path.join(name), shape: Self::shape(&shapes, k), value });
        }
    }

    /// [`Params::visit_params_mut`](crate::params::Params::visit_params_mut).
    pub(super) fn visit_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let shapes = self.shapes();
        for (k, (name, value)) in NAMES.iter().zip(self.tensors_mut()).enumerate() {
            f(ParamMut { name: path.join(name), shape: Self::shape(&shapes, k), value });
        }
    }

    /// [`Params::visit_params_with_grads`](crate::params::Params::visit_params_with_grads).
    pub(super) fn visit_with_grads(
        &mut self,
        grads: &Self,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let shapes = self.shapes();
        let grads: [&[T]; 4] = [&grads.weight_ih, &grads.weight_hh, &grads.bias_ih, &grads.bias_hh];
        for (k, ((name, value), g)) in NAMES.iter().zip(self.tensors_mut()).zip(grads).enumerate() {
            f(ParamMut { name: path.join(name), shape: Self::shape(&shapes, k), value }, g);
        }
    }

    /// [`Params::visit_grads`](crate::params::Params::visit_grads).
    pub(super) fn visit_values(&self, f: &mut dyn FnMut(&[T])) {
        [&self.weight_ih, &self.weight_hh, &self.bias_ih, &self.bias_hh].into_iter().for_each(|v| f(v));
    }
}

/// PyTorch's names of the four tensors (one layer: `_l0`), in `state_dict` order.
const NAMES: [&str; 4] = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];

impl<T: Float> fmt::Debug for RecurrentWeights<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gates = self.bias_ih.len() / self.hidden.max(1);
        write!(f, "RecurrentWeights({gates} gates, {} -> {})", self.inputs, self.hidden)
    }
}
