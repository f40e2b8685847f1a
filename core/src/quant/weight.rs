//! [`Weight`]: the weight of a dense or conv2d layer, held either as a full
//! f32/f64 matrix (for training, loading, saving) or only in a [`Compact`]
//! form (a [`Quantized`](super::Quantized) network), never both.

use super::Compact;
use crate::float::Float;
use crate::tensor::{heap_clone, heap_zeros, HeapMatrix};
use nalgebra::SMatrix;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

/// A layer's `R×C` weight matrix on the heap, or only its compact form.
///
/// It dereferences to the matrix (`layer.weight.as_slice()`,
/// `layer.weight[(i, o)]`), so a network you train uses it as a plain matrix.
/// Quantization ([`Quantize::into_quantized`](super::Quantize::into_quantized))
/// replaces the matrix by its [`Compact`] form and frees it: the inference
/// passes read only [`Weight::compact`]. Reading a compact weight as a matrix
/// still gives the right values (the dequantized ones, widened once and kept
/// beside the compact form, which costs the matrix's memory again; nothing in a
/// quantized network's inference pass does it: `tests/quantized_memory.rs`),
/// and writing it turns it back into a full matrix.
pub struct Weight<T: Float, const R: usize, const C: usize> {
    form: Form<T, R, C>,
}

enum Form<T: Float, const R: usize, const C: usize> {
    /// The full matrix.
    Full(HeapMatrix<T, R, C>),
    /// Only the compact form; `widened` is filled on the first read as a matrix.
    Compact { compact: Box<Compact>, widened: OnceLock<HeapMatrix<T, R, C>> },
}

impl<T: Float, const R: usize, const C: usize> Weight<T, R, C> {
    /// A zero matrix, allocated on the heap in place.
    pub fn zeros() -> Self {
        Weight { form: Form::Full(heap_zeros()) }
    }

    /// The compact form, if this weight holds one (then it holds no full matrix).
    pub fn compact(&self) -> Option<&Compact> {
        match &self.form {
            Form::Full(_) => None,
            Form::Compact { compact, .. } => Some(compact),
        }
    }

    /// The heap bytes this weight holds: the matrix's `R·C` values, or the
    /// compact form's bytes (plus the matrix's if it was read as one).
    pub fn bytes(&self) -> usize {
        let full = R * C * std::mem::size_of::<T>();
        match &self.form {
            Form::Full(_) => full,
            Form::Compact { compact, widened } => compact.bytes() + widened.get().map_or(0, |_| full),
        }
    }

    /// Replaces the matrix by `compact`, freeing the matrix.
    pub(crate) fn set_compact(&mut self, compact: Compact) {
        self.form = Form::Compact { compact: Box::new(compact), widened: OnceLock::new() };
    }

    /// Drops the compact form for a zero matrix (allocated zeroed, so untouched
    /// pages of a large one are never resident): a scratch copy being saved.
    pub(crate) fn clear(&mut self) {
        self.form = Form::Full(heap_zeros());
    }

    /// The compact form's values as a matrix.
    fn widen(compact: &Compact) -> HeapMatrix<T, R, C> {
        let mut m: HeapMatrix<T, R, C> = heap_zeros();
        // The compact rows are the matrix's columns: the same memory order.
        let values = compact.dequantized();
        m.as_mut_slice().iter_mut().zip(values).for_each(|(m, v)| *m = T::cast(f64::from(v)));
        m
    }
}

impl<T: Float, const R: usize, const C: usize> From<HeapMatrix<T, R, C>> for Weight<T, R, C> {
    fn from(m: HeapMatrix<T, R, C>) -> Self {
        Weight { form: Form::Full(m) }
    }
}

impl<T: Float, const R: usize, const C: usize> Deref for Weight<T, R, C> {
    type Target = SMatrix<T, R, C>;

    fn deref(&self) -> &SMatrix<T, R, C> {
        match &self.form {
            Form::Full(m) => m,
            Form::Compact { compact, widened } => widened.get_or_init(|| Self::widen(compact)),
        }
    }
}

impl<T: Float, const R: usize, const C: usize> DerefMut for Weight<T, R, C> {
    fn deref_mut(&mut self) -> &mut SMatrix<T, R, C> {
        if let Form::Compact { compact, widened } = &mut self.form {
            let m = widened.take().unwrap_or_else(|| Self::widen(compact));
            self.form = Form::Full(m);
        }
        match &mut self.form {
            Form::Full(m) => m,
            // Made full just above.
            Form::Compact { .. } => unreachable!("a compact weight is widened before it is written"),
        }
    }
}

impl<T: Float, const R: usize, const C: usize> Clone for Weight<T, R, C> {
    fn clone(&self) -> Self {
        let form = match &self.form {
            Form::Full(m) => Form::Full(heap_clone(m)),
            Form::Compact { compact, .. } => {
                Form::Compact { compact: compact.clone(), widened: OnceLock::new() }
            }
        };
        Weight { form }
    }
}

impl<T: Float, const R: usize, const C: usize> std::fmt::Debug for Weight<T, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.form {
            Form::Full(_) => write!(f, "Weight({R} × {C})"),
            Form::Compact { compact, .. } => write!(f, "Weight({R} × {C}, {compact:?})"),
        }
    }
}
