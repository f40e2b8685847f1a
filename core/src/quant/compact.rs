//! [`Compact`]: one layer's weight in int8 with per-row scales, or in bfloat16,
//! and the products that read it (`kernels::quant`).

use crate::kernels::{quant, Isa};
use half::bf16;
use std::cell::RefCell;
use std::fmt;

/// How a [`Compact`] weight is stored.
#[derive(Clone)]
enum Store {
    /// `w[o, i] ≈ scales[o] · q[o, i]`, `scales[o] = max_i |w[o, i]| / 127`.
    Int8 { q: Vec<i8>, scales: Vec<f32> },
    /// `w[o, i]` rounded to bfloat16 (nearest, ties to even), as bits.
    Bf16(Vec<u16>),
}

/// A layer's weight in a compact form: `rows` output rows (channels) of `cols`
/// inputs each, PyTorch's `[out, in…]` flattened to `[out, cols]`.
#[derive(Clone)]
pub struct Compact {
    rows: usize,
    cols: usize,
    store: Store,
}

/// Up to this many f32 values of weight are widened at once for a batch (1 MB):
/// the batched products run the f32 kernel on panels of widened rows.
const PANEL_VALUES: usize = 1 << 18;

/// The f32 product of a batched pass: `(panel, first row, rows, y)`.
pub(crate) type PanelProduct<'a> = dyn Fn(&[f32], usize, usize, &mut [f32]) + 'a;

thread_local! {
    /// The widened panel of the batched products, per thread, grown once.
    static PANEL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Compact {
    /// `w` (`rows` rows) in int8 with one symmetric scale per row: the row's
    /// largest magnitude maps to ±127. A NaN or infinite weight makes its row's
    /// scale, hence its outputs, NaN.
    pub(crate) fn int8(w: &[f32], rows: usize) -> Self {
        let cols = w.len() / rows.max(1);
        let mut q = vec![0i8; w.len()];
        let mut scales = vec![0.0f32; rows];
        for ((row, q), s) in w.chunks_exact(cols.max(1)).zip(q.chunks_exact_mut(cols.max(1))).zip(&mut scales)
        {
            let finite = row.iter().all(|v| v.is_finite());
            let max = if finite { row.iter().fold(0.0f32, |m, &v| m.max(v.abs())) } else { f32::NAN };
            *s = max / 127.0;
            if max > 0.0 {
                let inv = 127.0 / max;
                // `as` saturates; the rounded values lie in [-127, 127] anyway.
                q.iter_mut().zip(row).for_each(|(q, &v)| *q = (v * inv).round() as i8);
            }
        }
        Compact { rows, cols, store: Store::Int8 { q, scales } }
    }

    /// `w` (`rows` rows) rounded to bfloat16.
    pub(crate) fn bf16(w: &[f32], rows: usize) -> Self {
        let bits = w.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        Compact { rows, cols: w.len() / rows.max(1), store: Store::Bf16(bits) }
    }

    /// `rows` rows of int8 values with one scale each; `None` unless `q` holds
    /// `rows` whole rows and `scales` one value per row.
    pub(crate) fn from_int8(q: Vec<i8>, scales: Vec<f32>, rows: usize) -> Option<Self> {
        let cols = q.len().checked_div(rows)?;
        (scales.len() == rows && cols * rows == q.len()).then_some(Compact {
            rows,
            cols,
            store: Store::Int8 { q, scales },
        })
    }

    /// `rows` rows of bfloat16 values (as bits); `None` unless `bits` holds whole rows.
    pub(crate) fn from_bf16(bits: Vec<u16>, rows: usize) -> Option<Self> {
        let cols = bits.len().checked_div(rows)?;
        (cols * rows == bits.len()).then_some(Compact { rows, cols, store: Store::Bf16(bits) })
    }

    /// The bfloat16 values as bits, for the bf16 form.
    pub fn bf16_bits(&self) -> Option<&[u16]> {
        match &self.store {
            Store::Int8 { .. } => None,
            Store::Bf16(w) => Some(w),
        }
    }

    /// The number of output rows (channels).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of inputs per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The bytes the weight occupies (int8 values and f32 scales, or bf16 values).
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Int8 { q, scales } => q.len() + 4 * scales.len(),
            Store::Bf16(w) => 2 * w.len(),
        }
    }

    /// The int8 values and per-row scales, for the int8 form.
    pub fn int8_parts(&self) -> Option<(&[i8], &[f32])> {
        match &self.store {
            Store::Int8 { q, scales } => Some((q, scales)),
            Store::Bf16(_) => None,
        }
    }

    /// Rows `first..first + out.len() / cols` widened to f32 into `out`.
    fn widen_rows(&self, first: usize, out: &mut [f32]) {
        let (from, to) = (first * self.cols, first * self.cols + out.len());
        match &self.store {
            Store::Int8 { q, scales } => {
                let rows = out.len() / self.cols.max(1);
                quant::dequantize_int8(&q[from..to], &scales[first..first + rows], self.cols, out)
            }
            Store::Bf16(w) => quant::bf16_to_f32(&w[from..to], out),
        }
    }

    /// The weight as f32 values (`rows × cols`, row-major).
    pub fn dequantized(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        self.widen_rows(0, &mut out);
        out
    }

    /// `f` of the whole weight widened to f32 (`rows × cols`, into the per-thread
    /// buffer, grown once): how a convolution, whose weight is small, runs its products.
    pub(crate) fn with_f32(&self, f: &mut dyn FnMut(&[f32])) {
        PANEL.with_borrow_mut(|panel| {
            let len = self.rows * self.cols;
            if panel.len() < len {
                panel.resize(len, 0.0);
            }
            self.widen_rows(0, &mut panel[..len]);
            f(&panel[..len]);
        });
    }

    /// `y = W·x + bias` for one sample (`x`: `cols` values, `y`: `rows`).
    pub(crate) fn gemv(&self, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        match &self.store {
            Store::Int8 { q, scales } => quant::int8_gemv(Isa::active(), q, scales, x, bias, y),
            Store::Bf16(w) => quant::bf16_gemv(Isa::active(), w, x, bias, y),
        }
    }

    /// `y = W·x + bias` for a batch, samples contiguous (`x`: `n·cols`, `y`: `n·rows`):
    /// sample by sample for a few samples, else panels of rows widened to f32 once
    /// (into a per-thread buffer, grown once) and multiplied by the whole batch
    /// with `f(panel, first_row, rows, y)`, the caller's f32 product.
    pub(crate) fn forward_batch(
        &self,
        x: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        product: &PanelProduct<'_>,
    ) {
        let n = y.len() / self.rows.max(1);
        if n < 4 {
            let samples = x.chunks_exact(self.cols.max(1)).zip(y.chunks_exact_mut(self.rows.max(1)));
            samples.for_each(|(x, y)| self.gemv(x, bias, y));
            return;
        }
        let panel_rows = (PANEL_VALUES / self.cols.max(1)).clamp(1, self.rows.max(1));
        PANEL.with_borrow_mut(|panel| {
            if panel.len() < panel_rows * self.cols {
                panel.resize(panel_rows * self.cols, 0.0);
            }
            let mut first = 0;
            while first < self.rows {
                let rows = panel_rows.min(self.rows - first);
                let panel = &mut panel[..rows * self.cols];
                self.widen_rows(first, panel);
                product(panel, first, rows, y);
                first += rows;
            }
        });
        if let Some(b) = bias {
            y.chunks_exact_mut(self.rows).for_each(|y| y.iter_mut().zip(b).for_each(|(y, &b)| *y += b));
        }
    }
}

impl fmt::Debug for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.store {
            Store::Int8 { .. } => "int8",
            Store::Bf16(_) => "bf16",
        };
        write!(f, "Compact({kind}, {} × {})", self.rows, self.cols)
    }
}
