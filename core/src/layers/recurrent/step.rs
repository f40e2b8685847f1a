//! One step of an [`Lstm`] or [`Gru`] at a time, for incremental decoding: the
//! cache is the state the next step starts from (`h`, and `c` for the LSTM),
//! so a step costs the two gate products of one step. Step 0 starts from
//! `h = c = 0`, as the full pass does.

use super::{sigmoid_in_place, tanh_in_place, Gru, Lstm, RecurrentWeights};
use crate::decode::StepLayer;
use crate::float::Float;
use crate::tensor::{ensure_batch, gemm, Batch, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};

/// What an [`Lstm`] or a [`Gru`] keeps between steps: the last hidden state
/// `h` (`H` values), the LSTM's cell state `c`, and one step's gate scratch.
pub struct RecurrentCache<T: Float> {
    h: Vec<T>,
    c: Vec<T>,
    /// `W_ih x + b_ih` (and, for the LSTM, the rest of the pre-activations): `G·H`.
    gi: Vec<T>,
    /// `W_hh h + b_hh`: `G·H` (the GRU's `n` gate needs it apart).
    gh: Vec<T>,
}

impl<T: Float> RecurrentCache<T> {
    fn new(gates: usize, hidden: usize) -> Self {
        let zeros = |n| vec![T::zero(); n];
        RecurrentCache {
            h: zeros(hidden),
            c: zeros(hidden),
            gi: zeros(gates * hidden),
            gh: zeros(gates * hidden),
        }
    }

    /// `gi = W_ih x + b_ih` and `gh = W_hh h + b_hh` (with `h = c = 0` at step 0).
    fn products(&mut self, w: &RecurrentWeights<T>, x: &[T], pos: usize) {
        if pos == 0 {
            self.h.fill(T::zero());
            self.c.fill(T::zero());
        }
        let (rows, f, hidden) = (self.gi.len(), x.len(), self.h.len());
        let matvec = |weight: &[T], cols: usize, v: &[T], bias: &[T], out: &mut [T]| {
            // A row-major [rows, cols] weight is a column-major cols × rows matrix: its transpose.
            let wt = DMatrixView::from_slice(weight, cols, rows);
            let v = DMatrixView::from_slice(v, cols, 1);
            gemm(
                T::one(),
                MatRef::of(&wt).t(),
                MatRef::of(&v),
                T::zero(),
                &mut DMatrixViewMut::from_slice(out, rows, 1),
            );
            out.iter_mut().zip(bias).for_each(|(o, &b)| *o += b);
        };
        matvec(w.weight_ih(), f, x, w.bias_ih(), &mut self.gi);
        matvec(w.weight_hh(), hidden, &self.h, w.bias_hh(), &mut self.gh);
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const H: usize> StepLayer<T, F, H>
    for Lstm<T, STEPS, F, H>
{
    type Cache = RecurrentCache<T>;

    fn step_cache(&self) -> RecurrentCache<T> {
        RecurrentCache::new(4, H)
    }

    /// `c = f ⊙ c + i ⊙ g`, `h = o ⊙ tanh(c)`, the gates from `x` and the last `h`.
    fn step(&self, x: &Batch<T, F>, pos: usize, y: &mut Batch<T, H>, cache: &mut RecurrentCache<T>) {
        cache.products(&self.weights, x.as_slice(), pos);
        let RecurrentCache { h, c, gi, gh } = cache;
        gi.iter_mut().zip(gh.iter()).for_each(|(a, &b)| *a += b);
        let (ifg, o) = gi.split_at_mut(3 * H);
        let (i_f, g) = ifg.split_at_mut(2 * H);
        sigmoid_in_place(i_f);
        tanh_in_place(g);
        sigmoid_in_place(o);
        let (i, f) = i_f.split_at(H);
        for (((c, &f), &i), &g) in c.iter_mut().zip(f).zip(i).zip(g.iter()) {
            *c = f * *c + i * g;
        }
        h.copy_from_slice(c);
        tanh_in_place(h);
        h.iter_mut().zip(o.iter()).for_each(|(h, &o)| *h *= o);
        ensure_batch(y, 1);
        y.as_mut_slice().copy_from_slice(h);
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const H: usize> StepLayer<T, F, H>
    for Gru<T, STEPS, F, H>
{
    type Cache = RecurrentCache<T>;

    fn step_cache(&self) -> RecurrentCache<T> {
        RecurrentCache::new(3, H)
    }

    /// `n = tanh(gi_n + r ⊙ gh_n)`, `h = (1 − z) ⊙ n + z ⊙ h`, `r`, `z` from `gi + gh`.
    fn step(&self, x: &Batch<T, F>, pos: usize, y: &mut Batch<T, H>, cache: &mut RecurrentCache<T>) {
        cache.products(&self.weights, x.as_slice(), pos);
        let RecurrentCache { h, gi, gh, .. } = cache;
        let (rz, n) = gi.split_at_mut(2 * H);
        rz.iter_mut().zip(gh.iter()).for_each(|(a, &b)| *a += b);
        sigmoid_in_place(rz);
        let (r, z) = rz.split_at(H);
        n.iter_mut().zip(r).zip(&gh[2 * H..]).for_each(|((n, &r), &ghn)| *n += r * ghn);
        tanh_in_place(n);
        for ((h, &z), &n) in h.iter_mut().zip(z).zip(n.iter()) {
            *h = (T::one() - z) * n + z * *h;
        }
        ensure_batch(y, 1);
        y.as_mut_slice().copy_from_slice(h);
    }
}
