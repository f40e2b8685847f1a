//! Gated recurrent unit: PyTorch's `nn.GRU(F, H, batch_first=True)`, one
//! layer, `h_0 = 0`, every step's `h_t` out.

use super::{
    col, column, ensure_len, input_gradients, per_sample, product, project_input, share, sigmoid_in_place,
    step, sum_columns, tanh_in_place, transposed, view, view_mut, InputSide, Recurrent, RecurrentInput,
    RecurrentWeights,
};
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::kernels::sgemm::PackedA;
use crate::params::{ParamMut, ParamPath};
use crate::tensor::{gemm_packed_a, pack_a, Batch, MatRef};

/// The number of gates: r, z, n.
const GATES: usize = 3;

/// A GRU layer over `STEPS` steps of `F` features with `H` hidden units:
/// `[STEPS, F] -> [STEPS, H]`, every step's hidden state (the equations
/// below). Implements [`Layer`](crate::layers::Layer) for `IN = STEPS·F`, `OUT = STEPS·H`.
///
/// At step `t`, with the gates in PyTorch's order r, z, n:
///
/// ```text
/// r = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
/// z = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
/// n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn))
/// h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
/// ```
#[derive(Clone)]
pub struct Gru<T: Float, const STEPS: usize, const F: usize, const H: usize> {
    /// `weight_ih_l0` `[3H, F]`, `weight_hh_l0` `[3H, H]`, `bias_ih_l0` `[3H]`,
    /// `bias_hh_l0` `[3H]` (gate blocks r, z, n), row-major like PyTorch.
    pub weights: RecurrentWeights<T>,
}

/// What a [`Gru`] pass keeps: every step's gates, `W_hn h_{t−1} + b_hn` and
/// previous hidden state, for backpropagation through time, and the backward
/// pass's gradients. Every sequence buffer holds `rows` values per step of
/// every sample, step `t` of sample `b` in column `b·STEPS + t`, like the
/// batches; all are resized only when the batch size changes.
pub struct GruWorkspace<T: Float> {
    batch: usize,
    /// r, z, n after their nonlinearities (`3H` rows).
    gates: Vec<T>,
    /// `W_hh · h_{t−1}` of the current step (`3H × B`).
    recurrent: Vec<T>,
    /// `W_hn h_{t−1} + b_hn`, which `r` scales.
    hn: Vec<T>,
    /// `h_{t−1}` in column `(b, t)` (zero at `t = 0`).
    h_prev: Vec<T>,
    /// The gradient of the input side's pre-activations, `W_i· x + b_i·` (`3H` rows).
    d_input: Vec<T>,
    /// The gradient of the recurrent side's, `W_h· h_{t−1} + b_h·` (`3H` rows).
    d_recurrent: Vec<T>,
    /// What reaches `h_t` through step `t + 1` (`H × B`).
    dh_next: Vec<T>,
    /// `W_hh` packed once per forward pass for its product at every step (f32).
    w_hh: PackedA,
    /// `W_hhᵀ`, likewise for the backward pass.
    w_hh_t: PackedA,
    /// [`InputSide::by_token`].
    by_token: Vec<T>,
}

impl<T: Float, const STEPS: usize, const F: usize, const H: usize> Gru<T, STEPS, F, H> {
    /// A layer with every parameter zero, to be filled by loading.
    pub fn zeros() -> Self {
        Gru { weights: RecurrentWeights::zeros(GATES, F, H) }
    }

    /// A layer initialised like PyTorch's: every weight and bias from
    /// U(−1/√H, 1/√H). `init` is ignored (PyTorch has one rule for recurrent
    /// layers); it is taken so every layer is built alike.
    pub fn new(init: Init, rng: &mut SeededRng) -> Self {
        let _ = init;
        Gru { weights: RecurrentWeights::uniform(GATES, F, H, rng) }
    }

    /// The recurrence over a batch ([`Recurrent::recur`]), the input side
    /// `W_ih · x_t` of every step (no bias) where `input` says; `y` is `H × (B·STEPS)`.
    fn run(&self, y: &mut [T], batch: usize, ws: &mut GruWorkspace<T>, input: RecurrentInput<'_>) {
        if batch == 0 {
            return;
        }
        let g = GATES * H;
        let w = &self.weights;
        let w_hh_t = transposed(w.weight_hh(), g, H);

        // W_hh is the same at every step: packed once for the blocked product.
        pack_a(&mut ws.w_hh, MatRef::of(&w_hh_t).t());
        for t in 0..STEPS {
            if t == 0 {
                ws.recurrent.fill(T::zero());
            } else {
                // The recurrent side, W_hh · h_{t−1}, for the whole batch.
                let h_prev = step(&ws.h_prev, H, STEPS, batch, t);
                let mut r = view_mut(&mut ws.recurrent, g, batch, g);
                gemm_packed_a(&ws.w_hh, MatRef::of(&w_hh_t).t(), MatRef::of(&h_prev), T::zero(), &mut r);
            }
            let (gates, hn, h_out, h_prev) =
                (share(&mut ws.gates), share(&mut ws.hn), share(y), share(&mut ws.h_prev));
            let (recurrent, table) = (&ws.recurrent, &ws.by_token[..]);
            per_sample(batch, g, &|b| {
                let c = col(STEPS, b, t);
                // SAFETY: columns of sample `b` (steps t and t + 1 of it), which
                // `per_sample` hands to this call alone; the buffers outlive the loop.
                let [hn, h, h_before] =
                    [(&hn, c), (&h_out, c), (&h_prev, c)].map(|(buf, j)| unsafe { column(buf, H, j) });
                let (b_ih, b_hh) = (w.bias_ih(), w.bias_hh());
                // SAFETY: as above.
                let gi = unsafe { column(&gates, g, c) };
                if let RecurrentInput::ByToken(id) = input {
                    match id(c) {
                        Some(v) => gi.copy_from_slice(&table[v * g..(v + 1) * g]),
                        None => gi.fill(T::cast(f64::NAN)),
                    }
                }
                cell_forward(gi, &recurrent[b * g..(b + 1) * g], b_ih, b_hh, h_before, hn, h);
                if t + 1 < STEPS {
                    // SAFETY: as above.
                    unsafe { column(&h_prev, H, c + 1) }.copy_from_slice(h);
                }
            });
        }
    }

    /// Backpropagation through time after [`Gru::run`] with `ws`
    /// ([`Recurrent::backprop_to_input`]): every gradient but `weight_ih`'s,
    /// and `ws.d_input`, the input side's.
    fn backprop(
        &self,
        _y: &[T],
        dy: &[T],
        batch: usize,
        ws: &mut GruWorkspace<T>,
        grads: &mut RecurrentWeights<T>,
    ) {
        assert_eq!(ws.batch, batch, "Gru::backward needs the workspace of forward_train on this batch");
        if batch == 0 {
            grads.tensors_mut().into_iter().for_each(|t| t.fill(T::zero()));
            return;
        }
        let (n, g) = (batch * STEPS, GATES * H);
        let w = &self.weights;
        let w_hh_t = transposed(w.weight_hh(), g, H);
        ws.dh_next.fill(T::zero());
        pack_a(&mut ws.w_hh_t, MatRef::of(&w_hh_t));
        for t in (0..STEPS).rev() {
            if t + 1 < STEPS {
                // dh_next (z_{t+1} ⊙ dh_{t+1} so far) += W_hhᵀ · dG^h_{t+1}.
                let d_next = step(&ws.d_recurrent, g, STEPS, batch, t + 1);
                let mut dh = view_mut(&mut ws.dh_next, H, batch, H);
                gemm_packed_a(&ws.w_hh_t, MatRef::of(&w_hh_t), MatRef::of(&d_next), T::one(), &mut dh);
            }
            let (dh_next, d_input, d_recurrent) =
                (share(&mut ws.dh_next), share(&mut ws.d_input), share(&mut ws.d_recurrent));
            let (gates, hn, h_prev) = (&ws.gates, &ws.hn, &ws.h_prev);
            per_sample(batch, g, &|b| {
                let c = col(STEPS, b, t);
                cell_backward(
                    &gates[c * g..(c + 1) * g],
                    &hn[c * H..(c + 1) * H],
                    &h_prev[c * H..(c + 1) * H],
                    &dy[c * H..(c + 1) * H],
                    // SAFETY: sample `b`'s own columns, which `per_sample` hands to this call alone.
                    unsafe { column(&dh_next, H, b) },
                    // SAFETY: as above.
                    unsafe { column(&d_input, g, c) },
                    // SAFETY: as above.
                    unsafe { column(&d_recurrent, g, c) },
                );
            });
        }

        // Every step of every sample at once: dW_hh = H_prev · dG^hᵀ, db_hh = Σ dG^h
        // (dW_ih, db_ih and dX come from dG^i: `Layer::backward`, or a fused pass).
        let (h_prev, d_rec) = (view(&ws.h_prev, H, n, H), view(&ws.d_recurrent, g, n, g));
        let dw_hh = &mut view_mut(grads.weight_hh_mut(), H, g, H);
        product(MatRef::of(&h_prev), MatRef::of(&d_rec).t(), T::zero(), dw_hh);
        sum_columns(grads.bias_hh_mut(), &ws.d_recurrent);
    }

    /// `bias_hh` has its own gradient (`r` scales `b_hn`), from [`Gru::backprop`]:
    /// nothing to share ([`Recurrent::complete_bias_gradients`]).
    fn shared_bias_gradient(_: &mut RecurrentWeights<T>) {}
}

/// One step of one sample: the input side `gi` (`W_ih x_t`, without bias)
/// becomes r, z, n in place; `gh` is `W_hh h_{t−1}`; `hn` receives
/// `W_hn h_{t−1} + b_hn` and `h` the new hidden state.
#[inline]
fn cell_forward<T: Float>(
    gi: &mut [T],
    gh: &[T],
    b_ih: &[T],
    b_hh: &[T],
    h_prev: &[T],
    hn: &mut [T],
    h: &mut [T],
) {
    let n = h.len();
    let (rz, nn) = gi.split_at_mut(2 * n);
    // r and z: σ(W_i· x + b_i· + W_h· h + b_h·).
    for (k, v) in rz.iter_mut().enumerate() {
        *v = *v + b_ih[k] + gh[k] + b_hh[k];
    }
    sigmoid_in_place(rz);
    let (r, z) = rz.split_at(n);
    // n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
    let (ghn, bin, bhn) = (&gh[2 * n..3 * n], &b_ih[2 * n..3 * n], &b_hh[2 * n..3 * n]);
    let (nn, hn, z, h_prev) = (&mut nn[..n], &mut hn[..n], &z[..n], &h_prev[..n]);
    for j in 0..n {
        hn[j] = ghn[j] + bhn[j];
        nn[j] = nn[j] + bin[j] + r[j] * hn[j];
    }
    tanh_in_place(nn);
    let one = T::one();
    for j in 0..n {
        h[j] = (one - z[j]) * nn[j] + z[j] * h_prev[j];
    }
}

/// One step of one sample backwards. In: the gates r, z, n, `hn`, `h_{t−1}`,
/// the output's gradient `dy` and `dh` (what reaches `h_t` through step
/// `t + 1`). Out: the gradients of the input side's pre-activations `di` and
/// of the recurrent side's `dr` (they differ in n, which `r` scales), and `dh`
/// becomes the direct part of what reaches `h_{t−1}`, `z ⊙ dh_t`.
#[inline]
fn cell_backward<T: Float>(
    gates: &[T],
    hn: &[T],
    h_prev: &[T],
    dy: &[T],
    dh: &mut [T],
    di: &mut [T],
    dr: &mut [T],
) {
    let n = dh.len();
    let (r, z, nn) = (&gates[..n], &gates[n..2 * n], &gates[2 * n..3 * n]);
    let (di_r, di) = di.split_at_mut(n);
    let (di_z, di_n) = di.split_at_mut(n);
    let (dr_r, dr) = dr.split_at_mut(n);
    let (dr_z, dr_n) = dr.split_at_mut(n);
    let (di_n, dr_n, hn, h_prev, dy) = (&mut di_n[..n], &mut dr_n[..n], &hn[..n], &h_prev[..n], &dy[..n]);
    let one = T::one();
    for j in 0..n {
        let dh_t = dy[j] + dh[j];
        let dn = dh_t * (one - z[j]) * (one - nn[j] * nn[j]);
        let dz = dh_t * (h_prev[j] - nn[j]) * z[j] * (one - z[j]);
        let d_r = dn * hn[j] * r[j] * (one - r[j]);
        (di_r[j], di_z[j], di_n[j]) = (d_r, dz, dn);
        (dr_r[j], dr_z[j], dr_n[j]) = (d_r, dz, dn * r[j]);
        dh[j] = dh_t * z[j];
    }
}

impl<T: Float> GruWorkspace<T> {
    /// The input side: the gates' buffer (the projection, then the gates) and `dG^i`.
    fn input_side(&mut self) -> InputSide<'_, T> {
        InputSide { projection: &mut self.gates, gradient: &self.d_input, by_token: &mut self.by_token }
    }

    /// Sizes every buffer for `batch` samples (allocating only when it changes)
    /// and zeroes `h_{−1}`.
    fn resize(&mut self, batch: usize, steps: usize, hidden: usize) {
        let (n, g) = (batch * steps, GATES * hidden);
        if self.batch != batch || self.dh_next.len() != hidden * batch {
            for buf in [&mut self.gates, &mut self.d_input, &mut self.d_recurrent] {
                ensure_len(buf, g * n);
            }
            ensure_len(&mut self.hn, hidden * n);
            ensure_len(&mut self.h_prev, hidden * n);
            ensure_len(&mut self.recurrent, g * batch);
            ensure_len(&mut self.dh_next, hidden * batch);
            self.batch = batch;
        }
        for b in 0..batch {
            let c = col(steps, b, 0);
            self.h_prev[c * hidden..(c + 1) * hidden].fill(T::zero());
        }
    }
}

impl<T: Float> Default for GruWorkspace<T> {
    fn default() -> Self {
        let empty = Vec::new;
        GruWorkspace {
            batch: 0,
            gates: empty(),
            recurrent: empty(),
            hn: empty(),
            h_prev: empty(),
            d_input: empty(),
            d_recurrent: empty(),
            dh_next: empty(),
            w_hh: PackedA::default(),
            w_hh_t: PackedA::default(),
            by_token: empty(),
        }
    }
}

recurrent_impls!(Gru, GruWorkspace, "a Gru");
