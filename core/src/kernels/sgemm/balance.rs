//! Where the two parts of a product split between two threads meet, learnt
//! per shape so both finish together.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// How a product split between two threads divides its units (tiles of rows
/// or columns): the caller's share, learnt per shape from how long each part
/// took, so both parts finish together even when one core runs slower than
/// the other (a busy hyperthread sibling, a neighbour on a shared host), where
/// a fixed half-and-half split would leave the faster core idle. Where the split falls never changes
/// the results: every element of `C` is computed by the same kernel with the
/// same arithmetic whichever part it lands in.
#[derive(Clone, Copy)]
pub(super) struct Balance(pub(super) &'static AtomicU32);

/// The caller's share per shape slot, in 1/1024; 0: not measured yet.
pub(super) static SHARES: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

impl Balance {
    /// The slot of a product shape (shapes may share one: it only steers speed).
    pub(super) fn of(m: usize, k: usize, n: usize, split_n: bool) -> Self {
        let h = [m, k, n, split_n as usize]
            .iter()
            .fold(0u64, |h, &x| (h ^ x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Balance(&SHARES[(h >> 58) as usize])
    }

    /// How many of `units` the caller takes: a quarter to three quarters (at
    /// least one each); before any measurement, the smaller half.
    pub(super) fn caller_units(self, units: usize) -> usize {
        let share = self.0.load(Relaxed) as usize;
        let first = if share == 0 { units / 2 } else { (units * share + 512) / 1024 };
        first.clamp((units / 4).max(1), (units - units / 4).min(units - 1))
    }

    /// Moves the share a quarter of the way to the one that would have made
    /// both parts (`first` units on the caller, the rest on the other thread)
    /// take equally long; a part that took no measurable time teaches nothing.
    pub(super) fn learn(self, first: usize, units: usize, [t0, t1]: [u64; 2]) {
        if t0 == 0 || t1 == 0 {
            return;
        }
        // Units per nanosecond on each side; the share that equalises the times.
        let (v0, v1) = (first as f64 / t0 as f64, (units - first) as f64 / t1 as f64);
        let target = 1024.0 * v0 / (v0 + v1);
        let now = match self.0.load(Relaxed) {
            0 => 1024.0 * first as f64 / units as f64,
            // Not what was used (whole units) but what was learnt, so small steps add up.
            share => share as f64,
        };
        let share = (now + (target - now) / 4.0).clamp(1.0, 1023.0);
        self.0.store(share as u32, Relaxed);
    }
}
