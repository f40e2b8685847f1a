//! The `network!` front end (parse, shape check, code generation) on arbitrary
//! text: it must return code or spanned errors, never panic, and answer each
//! input within a time and memory budget.
//!
//! An input starting with the byte 0xFF (never valid UTF-8, so never text) is
//! instead a list of choices for the network generator that the dsl property
//! tests use (`dsl/src/generate.rs`): huge sizes inside blocks, blocks
//! thousands deep, huge spatial sizes under projections.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../../dsl/src/generate.rs"]
mod generate;

/// The most time one input may take, ASan included.
const TIME_BUDGET: Duration = Duration::from_secs(1);
/// The most memory one input may hold at once beyond what was live before it.
const MEMORY_BUDGET: usize = 256 << 20;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let text = match data.split_first() {
        Some((0xFF, choices)) => {
            let mut choices = choices.iter();
            generate::network(&mut |n| choices.next().map_or(0, |&b| usize::from(b) % n.max(1)))
        }
        _ => match std::str::from_utf8(data) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
    };
    // Only token streams reach a proc macro; text that does not lex is not an input.
    let Ok(tokens) = proc_macro2::TokenStream::from_str(&text) else { return };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = Instant::now();
    let checked = staticnet_dsl::check(tokens.clone());
    let expanded = staticnet_dsl::expand(tokens).to_string();
    let (elapsed, peak) = (start.elapsed(), PEAK.load(Ordering::Relaxed) - before);
    // The two entry points agree: errors exactly when the expansion is errors.
    assert_eq!(checked.is_err(), expanded.contains("compile_error"), "{expanded}");
    assert!(elapsed < TIME_BUDGET, "{elapsed:?} on {} bytes of input", text.len());
    assert!(peak < MEMORY_BUDGET, "{peak} bytes at once on {} bytes of input", text.len());
});
