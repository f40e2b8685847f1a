//! `A` packed once for many products: a recurrent layer multiplies the same
//! `W_hh` by every step's hidden state, and packing it (a transposing copy of
//! all of `A`) cost a large part of each of those short products (`n` = the
//! batch). [`PackedA`] holds the panels `packed.rs` would pack on every call,
//! laid out for the whole of `A`; the blocked product reads them instead of
//! packing (`Mat::pre`), with the same kernel and blocking: the same bits.
//!
//! Layout: for each slice of the inner dimension (`kc_max` deep, the last one
//! shorter), the `MR`-tall panels of every row of `A` (the last zero-padded),
//! `panel[p][i]`, exactly as `pack_a` writes them.

#[cfg(target_arch = "x86_64")]
use super::micro::{Avx2Kernel, Avx512Kernel};
use super::micro::{GenericKernel, Kernel};
use super::packed::pack_a;
use super::{Isa, Mat};

/// Where the panels of a prepacked `A` lie, as the blocked product reads them.
#[derive(Clone, Copy)]
pub(super) struct Panels {
    base: *const f32,
    /// The panels' height (the kernel's `MR`).
    pub(super) mr: usize,
    /// The slices' depth (the kernel's `kc_max` for this `k`).
    pub(super) kc_max: usize,
    /// Values per whole slice: `kc_max` × the rows rounded up to `mr`.
    slice: usize,
    /// The panel of the first row of the (part of the) product.
    first: usize,
}

impl Panels {
    /// The panels of the rows from `start` on, for a part of a product split
    /// by rows (`None` unless `start` begins a panel: the part then packs).
    pub(super) fn from_row(self, start: usize) -> Option<Panels> {
        start.is_multiple_of(self.mr).then_some(Panels { first: self.first + start / self.mr, ..self })
    }

    /// The first panel of rows `ic..` (a multiple of `mr`) in the slice of
    /// columns `pc..pc + kc` (`pc` a multiple of `kc_max`).
    ///
    /// # Safety
    /// The rows and the slice lie in the packed `A` (the blocked product's loops
    /// over a part of the matrix these panels were packed from).
    pub(super) unsafe fn at(self, pc: usize, kc: usize, ic: usize) -> *const f32 {
        // SAFETY: the caller's promise: inside the packed buffer.
        unsafe { self.base.add((pc / self.kc_max) * self.slice + (self.first + ic / self.mr) * kc * self.mr) }
    }
}

// SAFETY: `Panels` points into a `PackedA` that the product's caller keeps
// alive and unchanged for the whole product; its threads only read it.
unsafe impl Send for Panels {}
// SAFETY: as for `Send`.
unsafe impl Sync for Panels {}

/// An `m×k` matrix packed for the blocked product at one level: pack it
/// once ([`PackedA::pack`]), then multiply by it many times
/// ([`sgemm_packed_a`](super::sgemm_packed_a)). Packing again with the same
/// sizes reuses the memory, so a pass allocates nothing once sized.
#[derive(Default)]
pub(crate) struct PackedA {
    data: Vec<f32>,
    /// Values before the first panel, for 64-byte alignment.
    off: usize,
    /// What was packed: the level, `m`, `k` (`None` before the first packing).
    packed: Option<(Isa, usize, usize)>,
    mr: usize,
    kc_max: usize,
}

/// The panels' height and slice depth of `Plan::Packed(isa)`'s kernel for inner dimension `k`.
fn blocking(isa: Isa, k: usize) -> (usize, usize, bool) {
    let (mr, kc, avx) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (Avx512Kernel::MR, Avx512Kernel::KC, Avx512Kernel::AVX),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (Avx2Kernel::MR, Avx2Kernel::KC, Avx2Kernel::AVX),
        _ => (GenericKernel::MR, GenericKernel::KC, GenericKernel::AVX),
    };
    // As `packed`: slices of equal depth.
    (mr, k.div_ceil(k.div_ceil(kc).max(1)), avx)
}

impl PackedA {
    /// Packs the `m×k` matrix at `a` (element strides `rs`, `cs`) for products
    /// at level `isa`.
    ///
    /// # Safety
    /// `a` addresses an `m×k` matrix with those strides; the CPU supports `isa`.
    pub(crate) unsafe fn pack(&mut self, isa: Isa, m: usize, k: usize, a: *const f32, rs: isize, cs: isize) {
        let (mr, kc_max, avx) = blocking(isa, k);
        let rows = m.div_ceil(mr) * mr;
        let need = rows * k + 16;
        if self.data.len() < need {
            self.data.resize(need, 0.0);
        }
        self.off = self.data.as_ptr().align_offset(64).min(16);
        let base = self.data[self.off..].as_mut_ptr();
        let a = Mat { ptr: a, rs, cs, pre: None };
        // SAFETY: `a` is the caller's `m×k` matrix; each slice's panels (`rows·kc`
        // values) start at `pc·rows`, so all of them fit in the `rows·k` values
        // from `base`; AVX (for the transposing copy) is part of the AVX2 and
        // AVX-512 levels, which the caller promises the CPU supports.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            if avx {
                pack_slices_avx(m, k, mr, kc_max, a, base, rows);
                self.packed = Some((isa, m, k));
                (self.mr, self.kc_max) = (mr, kc_max);
                return;
            }
            pack_slices(m, k, mr, kc_max, a, base, rows, avx);
        }
        self.packed = Some((isa, m, k));
        (self.mr, self.kc_max) = (mr, kc_max);
    }

    /// The panels, if this holds an `m×k` matrix packed at level `isa`.
    pub(super) fn panels(&self, isa: Isa, m: usize, k: usize) -> Option<Panels> {
        (self.packed == Some((isa, m, k))).then(|| Panels {
            base: self.data[self.off..].as_ptr(),
            mr: self.mr,
            kc_max: self.kc_max,
            slice: m.div_ceil(self.mr) * self.mr * self.kc_max,
            first: 0,
        })
    }
}

/// Every slice's panels.
///
/// # Safety
/// As in [`PackedA::pack`]; with `avx`, the CPU supports AVX.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_slices(
    m: usize,
    k: usize,
    mr: usize,
    kc_max: usize,
    a: Mat,
    base: *mut f32,
    rows: usize,
    avx: bool,
) {
    let mut pc = 0;
    while pc < k {
        let kc = (k - pc).min(kc_max);
        // SAFETY: the caller's promise: rows `0..m` by columns `pc..pc + kc` of
        // A, into the `rows·kc` values from `base + pc·rows`.
        unsafe { pack_a(m, kc, mr, a, 0, pc, base.add(pc * rows), avx) };
        pc += kc;
    }
}

/// [`pack_slices`] compiled with AVX2, so the transposing copy is inlined.
///
/// # Safety
/// As [`pack_slices`]; the CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_slices_avx(m: usize, k: usize, mr: usize, kc_max: usize, a: Mat, base: *mut f32, rows: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { pack_slices(m, k, mr, kc_max, a, base, rows, true) }
}
