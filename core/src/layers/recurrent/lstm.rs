//! Long short-term memory: PyTorch's `nn.LSTM(F, H, batch_first=True)`, one
//! layer, `h_0 = c_0 = 0`, every step's `h_t` out.

use super::{
    col, column, ensure_len, input_gradients, per_sample, product, project_input, share, sigmoid_in_place,
    step, step_mut, tanh_in_place, transposed, view, view_mut, InputSide, Recurrent, RecurrentInput,
    RecurrentWeights,
};
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::kernels::sgemm::PackedA;
use crate::kernels::{gates, Isa};
use crate::params::{ParamMut, ParamPath};
use crate::tensor::{gemm_packed_a, pack_a, Batch, MatRef};

/// The number of gates: i, f, g, o.
const GATES: usize = 4;

/// An LSTM layer over `STEPS` steps of `F` features with `H` hidden units:
/// `[STEPS, F] -> [STEPS, H]`, every step's hidden state (the equations
/// below). Implements [`Layer`](crate::layers::Layer) for `IN = STEPS·F`, `OUT = STEPS·H`.
///
/// At step `t`, with the gates in PyTorch's order i, f, g, o:
///
/// ```text
/// i = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)
/// f = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)
/// g = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)
/// o = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)
/// c_t = f ⊙ c_{t−1} + i ⊙ g
/// h_t = o ⊙ tanh(c_t)
/// ```
#[derive(Clone)]
pub struct Lstm<T: Float, const STEPS: usize, const F: usize, const H: usize> {
    /// `weight_ih_l0` `[4H, F]`, `weight_hh_l0` `[4H, H]`, `bias_ih_l0` `[4H]`,
    /// `bias_hh_l0` `[4H]` (gate blocks i, f, g, o), row-major like PyTorch.
    pub weights: RecurrentWeights<T>,
}

/// What an [`Lstm`] pass keeps: every step's gates, cell states and previous
/// hidden state, for backpropagation through time, and the backward pass's
/// gradients. Every sequence buffer holds `rows` values per step of every
/// sample, step `t` of sample `b` in column `b·STEPS + t`, like the batches;
/// all are resized only when the batch size changes.
pub struct LstmWorkspace<T: Float> {
    batch: usize,
    /// b_ih + b_hh.
    bias: Vec<T>,
    /// `H` zeros: `c_{−1}`.
    zeros: Vec<T>,
    /// i, f, g, o after their nonlinearities (`4H` rows).
    gates: Vec<T>,
    /// `c_t`.
    cells: Vec<T>,
    /// `tanh(c_t)`.
    tanh_cells: Vec<T>,
    /// `h_{t−1}` in column `(b, t)` (zero at `t = 0`), from the output, for the backward pass.
    h_prev: Vec<T>,
    /// The loss's gradient with respect to the gates' pre-activations (`4H` rows).
    d_gates: Vec<T>,
    /// `W_hhᵀ · dG_{t+1}`: what reaches `h_t` through step `t + 1` (`H × B`).
    dh_next: Vec<T>,
    /// What reaches `c_t` through step `t + 1` (`H × B`).
    dc_next: Vec<T>,
    /// `W_hh` packed once per forward pass for its product at every step (f32).
    w_hh: PackedA,
    /// `W_hhᵀ`, likewise for the backward pass.
    w_hh_t: PackedA,
    /// [`InputSide::by_token`].
    by_token: Vec<T>,
}

impl<T: Float, const STEPS: usize, const F: usize, const H: usize> Lstm<T, STEPS, F, H> {
    /// A layer with every parameter zero, to be filled by loading.
    pub fn zeros() -> Self {
        Lstm { weights: RecurrentWeights::zeros(GATES, F, H) }
    }

    /// A layer initialised like PyTorch's: every weight and bias from
    /// U(−1/√H, 1/√H). `init` is ignored (PyTorch has one rule for recurrent
    /// layers); it is taken so every layer is built alike.
    pub fn new(init: Init, rng: &mut SeededRng) -> Self {
        let _ = init;
        Lstm { weights: RecurrentWeights::uniform(GATES, F, H, rng) }
    }

    /// The recurrence over a batch ([`Recurrent::recur`]), the input projection
    /// `W_ih · x_t` of every step where `input` says; `y` is `H × (B·STEPS)`.
    fn run(&self, y: &mut [T], batch: usize, ws: &mut LstmWorkspace<T>, input: RecurrentInput<'_>) {
        if batch == 0 {
            return;
        }
        let g = GATES * H;
        let w = &self.weights;
        let w_hh_t = transposed(w.weight_hh(), g, H);
        ws.bias.iter_mut().zip(w.bias_ih().iter().zip(w.bias_hh())).for_each(|(s, (&a, &b))| *s = a + b);

        // W_hh is the same at every step: packed once for the blocked product.
        pack_a(&mut ws.w_hh, MatRef::of(&w_hh_t).t());
        // G_t = W_ih · x_t (already there, or added from the table by the cell) + W_hh · h_{t−1}.
        let beta = if let RecurrentInput::Projected = input { T::one() } else { T::zero() };
        for t in 0..STEPS {
            if t > 0 {
                // The recurrent part, for the whole batch: h_{t−1} read from the output.
                let h_prev = step(y, H, STEPS, batch, t - 1);
                let mut g_t = step_mut(&mut ws.gates, g, STEPS, batch, t);
                gemm_packed_a(&ws.w_hh, MatRef::of(&w_hh_t).t(), MatRef::of(&h_prev), beta, &mut g_t);
            }
            let (gates, cells, tanh_cells) =
                (share(&mut ws.gates), share(&mut ws.cells), share(&mut ws.tanh_cells));
            let (h_out, bias, zeros) = (share(y), &ws.bias[..], &ws.zeros[..]);
            let table = &ws.by_token[..];
            per_sample(batch, g, &|b| {
                let c = col(STEPS, b, t);
                // SAFETY: columns of sample `b` (steps t − 1, t and t + 1 of it), which
                // `per_sample` hands to this call alone; the buffers outlive the loop.
                let [c_now, tanh_c, h] =
                    [&cells, &tanh_cells, &h_out].map(|buf| unsafe { column(buf, H, c) });
                // SAFETY: as above.
                let c_prev = if t == 0 { zeros } else { unsafe { column(&cells, H, c - 1) } };
                // SAFETY: as above.
                let z = unsafe { column(&gates, g, c) };
                let projection = match input {
                    RecurrentInput::Projected => None,
                    RecurrentInput::ByToken(id) => {
                        if t == 0 {
                            z.fill(T::zero()); // no recurrent part yet
                        }
                        match id(c) {
                            Some(v) => Some(&table[v * g..(v + 1) * g]),
                            None => {
                                z.fill(T::cast(f64::NAN)); // and NaN plus the bias stays NaN
                                None
                            }
                        }
                    }
                };
                cell_forward(z, projection, bias, c_prev, c_now, tanh_c, h);
            });
        }
    }

    /// Backpropagation through time after [`Lstm::run`] with `ws`
    /// ([`Recurrent::backprop_to_input`]): every gradient but `weight_ih`'s,
    /// and `ws.d_gates`, the input projection's.
    fn backprop(
        &self,
        y: &[T],
        dy: &[T],
        batch: usize,
        ws: &mut LstmWorkspace<T>,
        grads: &mut RecurrentWeights<T>,
    ) {
        assert_eq!(ws.batch, batch, "Lstm::backward needs the workspace of forward_train on this batch");
        if batch == 0 {
            grads.tensors_mut().into_iter().for_each(|t| t.fill(T::zero()));
            return;
        }
        let (n, g) = (batch * STEPS, GATES * H);
        let w = &self.weights;
        let w_hh_t = transposed(w.weight_hh(), g, H);
        ws.dh_next.fill(T::zero());
        ws.dc_next.fill(T::zero());
        pack_a(&mut ws.w_hh_t, MatRef::of(&w_hh_t));
        for t in (0..STEPS).rev() {
            if t + 1 < STEPS {
                // What reaches h_t through step t + 1: W_hhᵀ · dG_{t+1}.
                let d_next = step(&ws.d_gates, g, STEPS, batch, t + 1);
                let mut dh = view_mut(&mut ws.dh_next, H, batch, H);
                gemm_packed_a(&ws.w_hh_t, MatRef::of(&w_hh_t), MatRef::of(&d_next), T::zero(), &mut dh);
            }
            let (d_gates, dc_next) = (share(&mut ws.d_gates), share(&mut ws.dc_next));
            let (gates, cells, tanh_cells, dh_next, zeros) =
                (&ws.gates, &ws.cells, &ws.tanh_cells, &ws.dh_next, &ws.zeros);
            per_sample(batch, g, &|b| {
                let c = col(STEPS, b, t);
                let c_prev = if t == 0 { &zeros[..] } else { &cells[(c - 1) * H..c * H] };
                cell_backward(
                    &gates[c * g..(c + 1) * g],
                    c_prev,
                    &tanh_cells[c * H..(c + 1) * H],
                    &dy[c * H..(c + 1) * H],
                    &dh_next[b * H..(b + 1) * H],
                    // SAFETY: sample `b`'s own columns, which `per_sample` hands to this call alone.
                    unsafe { column(&dc_next, H, b) },
                    // SAFETY: as above.
                    unsafe { column(&d_gates, g, c) },
                );
            });
        }

        // For the weight gradient's one product: `h_{t−1}` in column (b, t), the
        // output `y` moved by one column in one copy, zero at every sample's `t = 0`.
        ws.h_prev[H..n * H].copy_from_slice(&y[..(n - 1) * H]);
        for b in 0..batch {
            ws.h_prev[col(STEPS, b, 0) * H..(col(STEPS, b, 0) + 1) * H].fill(T::zero());
        }
        // Every step of every sample at once: dW_hh = H_prev · dGᵀ (dW_ih, dX and
        // both biases come from dG on the input side: `Layer::backward`, or a fused pass).
        let (d_gates, h_prev) = (view(&ws.d_gates, g, n, g), view(&ws.h_prev, H, n, H));
        let dg_t = MatRef::of(&d_gates).t();
        product(MatRef::of(&h_prev), dg_t, T::zero(), &mut view_mut(grads.weight_hh_mut(), H, g, H));
    }

    /// Both biases add to the same pre-activations: `db_hh = db_ih` ([`Recurrent::complete_bias_gradients`]).
    fn shared_bias_gradient(grads: &mut RecurrentWeights<T>) {
        let [_, _, db_ih, db_hh] = grads.tensors_mut();
        db_hh.copy_from_slice(db_ih);
    }
}

/// One step of one sample: the gates' pre-activations `z` (without the biases
/// `bias`, and without the input projection if it comes as `projection`) become
/// i, f, g, o in place; `c = f⊙c_prev + i⊙g`, `h = o⊙tanh(c)`.
#[inline]
fn cell_forward<T: Float>(
    z: &mut [T],
    projection: Option<&[T]>,
    bias: &[T],
    c_prev: &[T],
    c: &mut [T],
    tanh_c: &mut [T],
    h: &mut [T],
) {
    let n = c.len();
    match projection {
        Some(p) => z.iter_mut().zip(p.iter().zip(bias)).for_each(|(z, (&p, &b))| *z += p + b),
        None => z.iter_mut().zip(bias).for_each(|(z, &b)| *z += b),
    }
    let (i_f, z) = z.split_at_mut(2 * n);
    let (g, o) = z.split_at_mut(n);
    sigmoid_in_place(i_f);
    tanh_in_place(g);
    sigmoid_in_place(o);
    let (i, f) = i_f.split_at(n);
    let (f, g, c_prev) = (&f[..n], &g[..n], &c_prev[..n]);
    for j in 0..n {
        c[j] = f[j] * c_prev[j] + i[j] * g[j];
        tanh_c[j] = c[j];
    }
    tanh_in_place(tanh_c);
    h.iter_mut().zip(o.iter().zip(tanh_c.iter())).for_each(|(h, (&o, &t))| *h = o * t);
}

/// One step of one sample backwards ([`gates::lstm_cell_backward`]: in f32 at
/// the active level, vectorised; in f64 its portable loop). In: the gates
/// i, f, g, o, `c_{t−1}`, `tanh(c_t)`, the output's gradient `dy` and
/// `dh_next` (what reaches `h_t` through step `t + 1`), `dc` (what reaches
/// `c_t` through step `t + 1`). Out: `dz`, the gradient of the gates'
/// pre-activations, and `dc` becomes what reaches `c_{t−1}`.
#[inline]
fn cell_backward<T: Float>(
    gates: &[T],
    c_prev: &[T],
    tanh_c: &[T],
    dy: &[T],
    dh_next: &[T],
    dc: &mut [T],
    dz: &mut [T],
) {
    let ins = [gates, c_prev, tanh_c, dy, dh_next].map(T::f32s);
    if let ([Some(g), Some(c), Some(t), Some(d), Some(h)], Some(dc32)) = (ins, T::f32s_mut(dc)) {
        if let Some(dz32) = T::f32s_mut(dz) {
            return gates::lstm_cell_backward(Isa::active(), g, c, t, d, h, dc32, dz32);
        }
        return;
    }
    gates::portable::lstm_cell_backward(gates, c_prev, tanh_c, dy, dh_next, dc, dz)
}

impl<T: Float> LstmWorkspace<T> {
    /// The input side: the gates' buffer (the projection, then the gates) and `dG`.
    fn input_side(&mut self) -> InputSide<'_, T> {
        InputSide { projection: &mut self.gates, gradient: &self.d_gates, by_token: &mut self.by_token }
    }

    /// Sizes every buffer for `batch` samples (allocating only when it changes).
    fn resize(&mut self, batch: usize, steps: usize, hidden: usize) {
        let (n, g) = (batch * steps, GATES * hidden);
        if self.batch != batch || self.zeros.len() != hidden {
            for (buf, rows) in [(&mut self.gates, g), (&mut self.d_gates, g)] {
                ensure_len(buf, rows * n);
            }
            for buf in [&mut self.cells, &mut self.tanh_cells, &mut self.h_prev] {
                ensure_len(buf, hidden * n);
            }
            ensure_len(&mut self.dh_next, hidden * batch);
            ensure_len(&mut self.dc_next, hidden * batch);
            ensure_len(&mut self.bias, g);
            ensure_len(&mut self.zeros, hidden);
            self.batch = batch;
        }
    }
}

impl<T: Float> Default for LstmWorkspace<T> {
    fn default() -> Self {
        let empty = Vec::new;
        LstmWorkspace {
            batch: 0,
            bias: empty(),
            zeros: empty(),
            gates: empty(),
            cells: empty(),
            tanh_cells: empty(),
            h_prev: empty(),
            d_gates: empty(),
            dh_next: empty(),
            dc_next: empty(),
            w_hh: PackedA::default(),
            w_hh_t: PackedA::default(),
            by_token: empty(),
        }
    }
}

recurrent_impls!(Lstm, LstmWorkspace, "an Lstm");
