//! Which instruction set the kernels run: detected once, checking every
//! feature any kernel of a level is compiled with.

use std::sync::OnceLock;

/// An instruction-set level of the hand-written kernels, lowest first.
///
/// Every kernel family has a portable version, so a binary runs on any CPU;
/// the x86-64 levels are used only where the CPU has **every** feature their
/// kernels are compiled with ([`Isa::features`]).
///
/// ```
/// use staticnet_core::kernels::Isa;
///
/// // The level the library runs on this machine, and every level it could run.
/// let active = Isa::active();
/// assert!(Isa::available().contains(&active));
/// assert_eq!(Isa::available()[0], Isa::Portable);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, on any CPU (what the compiler vectorises for its target).
    Portable,
    /// x86-64 AVX2 with FMA (Intel Haswell, AMD Zen and later).
    Avx2,
    /// x86-64 AVX-512 F and VL, with AVX2 and FMA (Intel Skylake-SP, AMD Zen 4 and later).
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The CPU features a level's kernels are compiled with (`#[target_feature]`):
    /// all of them are checked before the level is used.
    pub const fn features(self) -> &'static [&'static str] {
        match self {
            Isa::Portable => &[],
            Isa::Avx2 => &["avx2", "fma"],
            Isa::Avx512 => &["avx512f", "avx512vl", "avx2", "fma"],
        }
    }

    /// The level's name as `STATICNET_ISA` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU has every feature of the level.
    #[inline]
    pub fn supported(self) -> bool {
        // Each level needs every feature of the levels below it (a test checks
        // the lists), so the supported ones are those up to the best.
        self <= Isa::best()
    }

    /// The highest level whose every feature this CPU has, detected once.
    #[inline]
    fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .filter(|isa| isa.features().iter().all(|f| cpu_has(f)))
                .max()
                .unwrap_or(Isa::Portable)
        })
    }

    /// This level, after asserting that the CPU supports it: what a kernel
    /// family's safe entry point matches on, so a level a caller names (a test
    /// forcing one) can never reach instructions the CPU lacks.
    #[inline]
    #[track_caller]
    pub(crate) fn checked(self) -> Isa {
        assert!(self.supported(), "this CPU lacks {:?} ({:?})", self, self.features());
        self
    }

    /// The levels this CPU can run, lowest first (always starts with [`Isa::Portable`]).
    /// Kernel tests run every kernel at each of them.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.supported()).collect()
    }

    /// The level the library's kernels run at: the highest one the CPU supports,
    /// or lower if the `STATICNET_ISA` environment variable (`portable`, `avx2`,
    /// `avx512`) asks for it. A request above what the CPU supports, or an
    /// unknown name, is ignored. Read once per process.
    #[inline]
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let requested = std::env::var("STATICNET_ISA").ok().and_then(|v| Isa::parse(v.trim()));
            requested.map_or(Isa::best(), |r| r.min(Isa::best()))
        })
    }

    /// A level from its [`name`](Isa::name).
    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name().eq_ignore_ascii_case(name))
    }
}

/// Whether the CPU has one feature (as `is_x86_feature_detected!` names it).
fn cpu_has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_need_every_feature_of_the_levels_below() {
        for pair in Isa::ALL.windows(2) {
            for f in pair[0].features() {
                assert!(pair[1].features().contains(f), "{:?} lacks {f}", pair[1]);
            }
        }
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
            for f in isa.features() {
                // Every named feature is one `cpu_has` knows (an unknown one would read as absent).
                assert!(["avx2", "fma", "avx512f", "avx512vl"].contains(f));
            }
        }
    }

    #[test]
    fn the_active_level_is_available_and_says_what_runs() {
        // Says which levels this machine cannot test, rather than pass silently.
        let available = crate::kernels::tested_levels("every kernel");
        assert_eq!(available[0], Isa::Portable);
        assert!(available.contains(&Isa::active()));
        for isa in Isa::ALL {
            assert_eq!(isa.supported(), isa.features().iter().all(|f| cpu_has(f)), "{isa:?}");
            assert_eq!(isa.supported(), available.contains(&isa), "{isa:?}");
        }
    }

    #[test]
    fn a_level_the_cpu_lacks_is_refused() {
        for isa in Isa::ALL {
            assert_eq!(std::panic::catch_unwind(|| isa.checked()).is_ok(), isa.supported(), "{isa:?}");
        }
    }
}
