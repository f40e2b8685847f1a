//! A tiny thread pool for splitting large products, with allocation-free dispatch.
//!
//! [`set_threads`] fixes how many threads a product may use (1 by default, or
//! the `STATICNET_THREADS` environment variable). Workers are spawned once, on the
//! first parallel product after the count is set; dispatching work to them then
//! allocates nothing (a job is a borrowed closure published through an epoch
//! counter), so training steps stay allocation-free with any thread count.
//!
//! Work is only ever split along output rows or columns, never along the inner
//! dimension of a product, so every output element is computed by the same
//! operations in the same order whatever the thread count: results do not
//! depend on it.
//!
//! The pool knows nothing of the kernels it runs: per-thread set-up (the
//! product's packing buffer) is a hook the kernels register with
//! [`on_worker_start`].

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// 0 means "not set yet": read `STATICNET_THREADS` on first use.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads large products may use (at least 1). Small products
/// always run on the calling thread. Takes effect for the next product; the
/// workers are started on first use and kept for the life of the process.
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_WORKERS + 1), Relaxed);
}

/// Serialises the tests that change the global thread count, so that a
/// "1 vs 2 threads" check running beside another such test compares what it says.
#[cfg(test)]
pub(crate) fn thread_count_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The thread count products may use: what [`set_threads`] set, else the
/// `STATICNET_THREADS` environment variable, else 1.
pub fn threads() -> usize {
    match THREADS.load(Relaxed) {
        0 => {
            let n = std::env::var("STATICNET_THREADS")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, MAX_WORKERS + 1);
            // Another thread may have called `set_threads` meanwhile; it wins.
            let _ = THREADS.compare_exchange(0, n, Relaxed, Relaxed);
            THREADS.load(Relaxed)
        }
        n => n,
    }
}

const MAX_WORKERS: usize = 63;

/// How long an idle worker spins before it sleeps: long enough to cover the
/// gaps between the products of one training step (an optimizer step between
/// them), short enough not to burn a shared core when nothing runs.
const SPIN: Duration = Duration::from_micros(200);

/// A job: a borrowed closure called with the part index, reached through the
/// dispatcher's reference to it (a thin pointer, so it is published atomically).
/// Its lifetime is erased: the dispatcher returns only once every part is done.
type Job = *const &'static (dyn Fn(usize) + Sync);

/// Set-up every worker runs once before its first part: what
/// [`on_worker_start`] registered.
static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());
/// How many hooks `HOOKS` holds, readable without its lock.
static HOOK_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Registers `hook` to run once on every worker thread (per-thread set-up
/// such as a buffer sized once): a worker started later runs it when it
/// starts, one already running by the end of the next parallel call. Either
/// way its allocations belong to that call, never to a later one, so the
/// training steps after the first allocate nothing. Register each hook once;
/// a hook must not panic.
pub(crate) fn on_worker_start(hook: fn()) {
    let mut hooks = HOOKS.lock().unwrap_or_else(|p| p.into_inner());
    hooks.push(hook);
    HOOK_COUNT.store(hooks.len(), Release);
}

/// Runs the hooks registered since this worker ran its first `ran`, then
/// publishes the new count in `slot` (the lock is not held while a hook runs).
fn catch_up(ran: &mut usize, slot: &AtomicUsize) {
    while *ran < HOOK_COUNT.load(Acquire) {
        let hook = HOOKS.lock().unwrap_or_else(|p| p.into_inner()).get(*ran).copied();
        match hook {
            Some(hook) => hook(),
            None => break,
        }
        *ran += 1;
    }
    slot.store(*ran, Release);
}

struct Pool {
    /// Published job (null before the first); written only by the dispatcher
    /// holding `dispatch`, before `state` moves, and called only through a claim.
    job: AtomicPtr<&'static (dyn Fn(usize) + Sync)>,
    /// How many parts the current job has.
    parts: AtomicUsize,
    /// `epoch << 32 | next part to claim`: parts are claimed by compare-and-swap,
    /// by the workers and by the dispatcher itself, so a worker the OS has not
    /// scheduled yet never holds the product up (on a loaded machine the caller
    /// just does every part), and a late worker cannot claim a part of a later job.
    state: AtomicU64,
    /// Parts finished in the current epoch.
    done: AtomicUsize,
    /// Workers started so far.
    started: AtomicUsize,
    /// Workers that have finished setting up (their allocations are behind them).
    ready: AtomicUsize,
    /// How many hooks each worker (by index) has run.
    hooked: [AtomicUsize; MAX_WORKERS],
    /// How many hooks every started worker is known to have run (the dispatcher's).
    synced: AtomicUsize,
    /// One dispatcher at a time; others run their work serially.
    dispatch: Mutex<()>,
    sleep: Mutex<()>,
    wake: Condvar,
    sleeping: AtomicUsize,
    poisoned: AtomicBool,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        job: AtomicPtr::new(std::ptr::null_mut()),
        parts: AtomicUsize::new(0),
        state: AtomicU64::new(0),
        done: AtomicUsize::new(0),
        started: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        hooked: [const { AtomicUsize::new(0) }; MAX_WORKERS],
        synced: AtomicUsize::new(0),
        dispatch: Mutex::new(()),
        sleep: Mutex::new(()),
        wake: Condvar::new(),
        sleeping: AtomicUsize::new(0),
        poisoned: AtomicBool::new(false),
    })
}

impl Pool {
    /// Claims the next part of epoch `epoch`, if that epoch still has one.
    fn claim(&self, epoch: u64) -> Option<usize> {
        let parts = self.parts.load(Acquire) as u64;
        let mut s = self.state.load(Acquire);
        loop {
            if s >> 32 != epoch || (s & 0xffff_ffff) >= parts {
                return None;
            }
            match self.state.compare_exchange_weak(s, s + 1, AcqRel, Acquire) {
                Ok(_) => return Some((s & 0xffff_ffff) as usize),
                Err(now) => s = now,
            }
        }
    }

    /// Runs claimed parts of epoch `epoch` until none is left.
    fn work(&self, epoch: u64, job: Job) {
        while let Some(part) = self.claim(epoch) {
            self.run_part(job, part);
        }
    }

    /// Runs one claimed part and counts it done.
    fn run_part(&self, job: Job, part: usize) {
        // SAFETY: the part was claimed in a running epoch, so `job` is that
        // epoch's (published before the epoch, replaced only after every part of
        // it is done), and its dispatcher keeps the closure and the reference
        // `job` points to alive until every part is counted done.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (**job)(part) }));
        if run.is_err() {
            self.poisoned.store(true, Relaxed);
        }
        self.done.fetch_add(1, Release);
    }

    /// Wakes the workers asleep waiting for an epoch.
    fn wake_sleepers(&self) {
        if self.sleeping.load(SeqCst) > 0 {
            drop(self.sleep.lock().unwrap_or_else(|p| p.into_inner()));
            self.wake.notify_all();
        }
    }

    /// Makes every started worker run the hooks registered so far, before the
    /// dispatcher returns: an epoch without parts wakes them, and each catches
    /// up before it looks for work. Called by the dispatcher (holding `dispatch`)
    /// once every part of its job is done.
    fn sync_hooks(&self) {
        let count = HOOK_COUNT.load(Acquire);
        let started = self.started.load(Relaxed);
        let behind = || self.hooked[..started].iter().any(|ran| ran.load(Acquire) < count);
        if behind() {
            self.parts.store(0, Release);
            let epoch = (self.state.load(Acquire) >> 32) + 1;
            self.state.store(epoch << 32, SeqCst);
            self.wake_sleepers();
            while behind() {
                std::thread::yield_now();
            }
        }
        self.synced.store(count, Relaxed);
    }
}

/// A worker's loop; `index` is its slot in `hooked`, `seen` the epoch at its
/// spawning, so it never misses the first job.
fn worker(pool: &'static Pool, index: usize, mut seen: u64) {
    let mut ran = 0;
    catch_up(&mut ran, &pool.hooked[index]);
    pool.ready.fetch_add(1, Release);
    loop {
        // Wait for a new epoch: spin a little, then sleep.
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = pool.state.load(Acquire) >> 32;
            if e != seen {
                break e;
            }
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                let guard = pool.sleep.lock().unwrap_or_else(|p| p.into_inner());
                pool.sleeping.fetch_add(1, SeqCst);
                let guard = pool
                    .wake
                    .wait_while(guard, |_| pool.state.load(SeqCst) >> 32 == seen)
                    .unwrap_or_else(|p| p.into_inner());
                pool.sleeping.fetch_sub(1, SeqCst);
                drop(guard);
            } else {
                std::hint::spin_loop();
            }
        };
        seen = epoch;
        // Hooks registered since the last epoch, before any part of this one
        // (checked first: the common case writes nothing shared).
        if HOOK_COUNT.load(Acquire) > ran {
            catch_up(&mut ran, &pool.hooked[index]);
        }
        // Read after observing the epoch; used only through a claim in it.
        let job = pool.job.load(Acquire);
        if !job.is_null() {
            pool.work(epoch, job);
        }
    }
}

/// Calls `f(0)`, …, `f(parts − 1)`, on up to `parts` threads (the caller takes
/// part too), and returns when all are done. Runs them in order on the calling
/// thread when another dispatch is in progress (nested or concurrent calls).
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 {
        return (0..parts).for_each(f);
    }
    let pool = pool();
    let Ok(_guard) = pool.dispatch.try_lock() else {
        return (0..parts).for_each(f);
    };
    // Start workers up to the number needed (allocates, once).
    let workers = parts - 1;
    while pool.started.load(Relaxed) < workers {
        let index = pool.started.load(Relaxed) + 1;
        let epoch = pool.state.load(Acquire) >> 32;
        let spawned = std::thread::Builder::new()
            .name(format!("staticnet-{index}"))
            .spawn(move || worker(pool, index - 1, epoch));
        if spawned.is_err() {
            break;
        }
        pool.started.store(index, Relaxed);
    }
    // Wait until new workers have set up, so that their start-up allocations
    // belong to this first parallel product and never to a later one.
    while pool.ready.load(Acquire) < pool.started.load(Relaxed) {
        std::thread::yield_now();
    }
    // `f` lives on this frame, which returns only once every part has finished.
    let job: Job = std::ptr::from_ref(&f).cast();
    pool.job.store(job.cast_mut(), Release);
    pool.parts.store(parts, Release);
    pool.done.store(0, Release);
    let epoch = (pool.state.load(Acquire) >> 32) + 1;
    // Part 0 is the caller's: published as already claimed, so the caller
    // starts on it at once and the same part of every product (the same rows
    // or columns, so the same data) stays on the same core from step to step.
    pool.state.store(epoch << 32 | 1, SeqCst);
    pool.wake_sleepers();
    pool.run_part(job, 0);
    // Then any part no worker has claimed yet (a worker the OS has not run).
    pool.work(epoch, job);
    let mut spins = 0u32;
    while pool.done.load(Acquire) != parts {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    // Hooks registered before or during this call (a kernel's first use may be
    // inside a part): run on every worker before returning.
    if HOOK_COUNT.load(Acquire) > pool.synced.load(Relaxed) {
        pool.sync_hooks();
    }
    if pool.poisoned.swap(false, Relaxed) {
        // A bug in a kernel, not a user error: carry the failure to the caller.
        std::panic::resume_unwind(Box::new("a staticnet worker thread panicked"));
    }
}

/// Mutable slices split between threads: each part gets disjoint ranges.
pub(crate) struct SharedSlice<T>(*mut T, usize);

// SAFETY: the slice is reached only through `range`, whose callers promise
// disjoint ranges (one per part of a split call), so sharing it between threads
// moves `T`s across them as `&mut [T]` does, which `T: Send` allows.
unsafe impl<T: Send> Sync for SharedSlice<T> {}

impl<T> SharedSlice<T> {
    pub(crate) fn new(slice: &mut [T]) -> Self {
        SharedSlice(slice.as_mut_ptr(), slice.len())
    }

    /// # Safety
    /// `range` lies within the slice, which is still alive (neither freed nor
    /// moved since [`SharedSlice::new`]), and no other live reference overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, range: std::ops::Range<usize>) -> &mut [T] {
        debug_assert!(range.end <= self.1);
        // SAFETY: inside the slice `new` borrowed (the caller's promise), and not
        // overlapping any other live reference to it.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }
}

/// Calls `f` on contiguous ranges covering `0..len`: one per thread when each
/// would hold at least `min_len` elements (the first on the calling thread, so
/// an element-wise pass after a split product touches the same rows on the
/// same core), else `f(0..len)` on the caller.
pub(crate) fn for_ranges(len: usize, min_len: usize, f: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
    let parts = threads().min(len / min_len.max(1)).max(1);
    if parts == 1 {
        return f(0..len);
    }
    let chunk = len.div_ceil(parts);
    run(parts, &|t| f(t * chunk..((t + 1) * chunk).min(len)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once() {
        let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..100 {
            run(4, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
        }
        assert!(hits.iter().all(|h| h.load(Relaxed) == 100));
        // Fewer parts than workers: the extra workers stay idle.
        run(2, &|i| {
            hits[i].fetch_add(1, Relaxed);
        });
        assert_eq!(hits[1].load(Relaxed), 101);
        assert_eq!(hits[3].load(Relaxed), 100);
    }
}
