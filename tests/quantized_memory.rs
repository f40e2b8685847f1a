//! A quantized network holds only its compact weights: `into_quantized` frees the
//! f32 matrices of its dense and conv2d layers (the heap's live bytes, counted by
//! this binary's allocator, fall to about a quarter in int8 and a half in bf16),
//! and inference never widens them back. Also the dense layers inside a sequence
//! network (`PerStep`), whose outputs stay within 2% of the f32 ones. One `#[test]`, so nothing else in the binary allocates
//! while it measures.

use staticnet::prelude::*;
use staticnet::quant::{Quantized, Scheme};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting the bytes currently allocated.
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

fn live() -> isize {
    LIVE.load(Relaxed)
}

network! {
    /// The `mlp` reference model: 784 → 256 → 128 → 10 (938 KB of f32 weights).
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

network! {
    /// A conv network: its convolutions quantized too.
    struct Cnn { input: [1, 12, 12], conv2d(8, kernel = 3), relu, max_pool(2), conv2d(8, kernel = 3, padding = 1), relu, flatten, dense(10) }
}

network! {
    /// Dense layers at every step of a sequence (`PerStep`).
    struct Steps { input: [8, 96], dense(128), relu, dense(64), last, dense(4) }
}

/// The f32 weight values (not biases) of the dense and conv2d layers of `net`.
fn weight_values<N: Params<f32>>(net: &N) -> usize {
    let mut n = 0;
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        n += if p.name.last() == "weight" { p.value.len() } else { 0 }
    });
    n
}

/// Quantizes `build()` with `Q` by value and checks the live heap bytes: the
/// network's allocation falls from `f32` to about `f32 · fraction`; then runs
/// inference at batch 1 and 64 and checks nothing was widened back.
/// `max_ratio` bounds the quantized network's heap bytes over the f32 one's
/// (biases, scales and small layers keep it above `fraction`).
fn check<N, Q, const IN: usize, const OUT: usize>(
    what: &str,
    build: impl Fn() -> N,
    fraction: f64,
    max_ratio: f64,
) where
    N: Network<f32, IN, OUT> + Clone,
    Q: Scheme,
{
    let start = live();
    let net = build();
    let f32_bytes = live() - start;
    let values = weight_values(&net);
    let before_reference = live();
    let reference = net.clone();
    assert_eq!(live() - before_reference, f32_bytes, "{what}: a clone holds what the network does");

    let start = live();
    let mut q: Quantized<N> = net.into_quantized::<Q>();
    let quantized_bytes = f32_bytes + (live() - start);
    let freed = f32_bytes - quantized_bytes;
    let expected = ((4 * values) as f64 * (1.0 - fraction)) as isize;
    eprintln!("{what}: {f32_bytes} heap bytes in f32, {quantized_bytes} quantized ({values} weight values)");
    // The weights shrink by their share; a scale per row (int8) and the report stay small.
    assert!(
        freed <= expected && freed as f64 >= 0.9 * expected as f64,
        "{what}: freed {freed} bytes, expected about {expected}"
    );
    let ratio = quantized_bytes as f64 / f32_bytes as f64;
    assert!(ratio <= max_ratio, "{what}: {ratio:.3} of the f32 bytes");
    let held = q.held_bytes();
    let share = held as f64 / (4 * values) as f64;
    assert!(share >= fraction && share <= 1.05 * fraction, "{what}: held {held} bytes, {share:.3} of f32");
    for n in [1, 64] {
        let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 3 + j * 7) as f32 * 0.01).sin());
        let mut trace = N::Trace::default();
        let (y, exact) = (q.infer(&x, &mut trace).clone(), reference.forward(&x));
        let error = (&y - &exact).norm() / exact.norm();
        assert!(error > 0.0 && error < 0.02, "{what}, batch {n}: relative error {error}");
        assert_eq!(q.held_bytes(), held, "{what}, batch {n}: inference widened a compact weight");
    }
}

#[test]
fn quantized_networks_hold_only_their_compact_weights() {
    staticnet::set_threads(1);
    check::<_, Int8, 784, 10>("mlp int8", || Mlp::new(1), 0.25, 0.255);
    check::<_, Bf16, 784, 10>("mlp bf16", || Mlp::new(1), 0.5, 0.505);
    check::<_, Int8, 144, 10>("cnn int8", || Cnn::new(2), 0.25, 0.35);
    check::<_, Int8, 768, 4>("sequence int8", || Steps::new(3), 0.25, 0.28);

    // A network loaded from a quantized file holds as little (its f32 weights are
    // only ever allocated zeroed, untouched, and freed as the compact ones arrive).
    let bytes = Mlp::new(5).quantized::<Int8>().to_bytes().unwrap();
    let start = live();
    let mut loaded = Quantized::<Mlp>::from_bytes(&bytes).unwrap();
    let loaded_bytes = live() - start;
    assert!(loaded_bytes < 4 * 234_752 / 4 + 8_000, "loaded: {loaded_bytes} bytes");
    assert_eq!(loaded.held_bytes(), 234_752 + 4 * (256 + 128 + 10));

    // Reading a compact weight as a matrix gives its dequantized values (kept beside it).
    let mut q = Mlp::new(4).into_quantized::<Int8>();
    let held = q.held_bytes();
    let values = q.network().dense_0.weight.as_slice().len();
    assert_eq!(values, 784 * 256);
    assert_eq!(q.held_bytes(), held + 4 * values);
}
