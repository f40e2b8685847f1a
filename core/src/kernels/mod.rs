//! Every hand-written vector kernel of the crate, and the one way they are
//! chosen.
//!
//! Every intrinsic lives under this module. The instruction-set level is an
//! [`Isa`], detected once (checking every CPU feature a level's kernels are
//! compiled with) and capped by `STATICNET_ISA`. Each kernel family has a safe
//! entry point over slices that takes the level (callers pass
//! [`Isa::active`]), checks its operands' bounds at the edge and `match`es on
//! the level; `unsafe` lives only inside, each block with the reason it is
//! sound. Every family has a portable version, and its tests run at every
//! level the machine supports ([`Isa::available`]), comparing bits wherever
//! the design promises equal bits.
//!
//! Testing a level the machine lacks: a CPU without AVX-512 prints a note
//! naming the untested level. Debian packages no AVX-512 emulator (Intel SDE is
//! not in the registries; qemu-user's emulation stops at AVX2); where SDE is
//! installed, `sde64 -spr -- cargo test -p staticnet-core --lib kernels::` runs
//! the AVX-512 kernels. The other way round, `STATICNET_ISA=portable` or `avx2`
//! runs everything, layers included, as a CPU with only that level would (CI
//! does both).

#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod attention;
pub(crate) mod conv2d;
pub(crate) mod cross_entropy;
pub(crate) mod gates;
pub(crate) mod gelu;
mod isa;
pub(crate) mod layer_norm;
pub(crate) mod pool;
pub(crate) mod quant;
pub(crate) mod sgemm;
pub(crate) mod simd;
pub(crate) mod softmax;

pub use isa::Isa;

/// The levels a kernel test runs at: every one this CPU supports, with a note
/// on the test output for each it lacks (so a missing level never passes silently).
/// Written to the process's standard error directly, past the test harness's
/// capture, so the note shows in every test run.
#[cfg(test)]
pub(crate) fn tested_levels(what: &str) -> Vec<Isa> {
    use std::io::Write;
    let available = Isa::available();
    for isa in Isa::ALL.into_iter().filter(|isa| !available.contains(isa)) {
        let features = isa.features();
        let note = format!(
            "note: {what}: this CPU lacks {isa:?} ({features:?}), so its kernels are not tested here\n"
        );
        let _ = std::io::stderr().write_all(note.as_bytes());
    }
    available
}
