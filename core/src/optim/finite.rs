//! Steps taken only if they stay finite ([`super::Optimizer::step_if_finite`]).
//!
//! The built-in optimizers describe their update of one element as a [`Rule`]:
//! a pure function of the weight, its gradient and its state values. [`step`]
//! computes it over every parameter to check that each new weight and state
//! value is finite, writing nothing, then computes it again and writes. The
//! second pass is the same arithmetic on the same inputs, so it writes exactly
//! the values the first pass checked. This costs a second computation but no
//! copy, and a refused step leaves the optimizer's state untouched too. A rule
//! may check with a cheaper sufficient test ([`Rule::surely_finite`], Adam's
//! skips the square root and division), falling back to the exact update.
//!
//! The trait's default for other optimizers instead copies the weights before
//! the step and restores them ([`save_params`], [`restore_params`]).

use super::{Slots, PAR_MIN_ELEMENTS};
use crate::error::Result;
use crate::float::Float;
use crate::params::{ParamPath, Params};
use crate::tensor::threads::{for_ranges, SharedSlice};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The element a step was refused for ([`super::Optimizer::step_if_finite`]):
/// the first, in visiting order, whose new weight or optimizer state would not
/// have been finite.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteUpdate {
    /// The parameter's `state_dict` name, e.g. `fc1.weight`.
    pub name: String,
    /// The element, row-major over the parameter's PyTorch shape.
    pub index: usize,
    /// The value it would have taken: NaN, inf or -inf.
    pub value: f64,
    /// `None` when the weight itself would have become non-finite; otherwise
    /// the optimizer state slot whose value for this element would have
    /// (`momentum_buffer`, `exp_avg` or `exp_avg_sq`, as in [`super::OptimizerState`]).
    pub slot: Option<String>,
}

/// One optimizer's update of one element: the weight `w`, its gradient `g`
/// and its `S` state values give the new weight and state values. Constants
/// (rates, bias corrections) are fields, computed once per step.
pub(super) trait Rule<T: Float, const S: usize>: Sync {
    /// The state slots, as named in [`super::OptimizerState`].
    const SLOTS: [&'static str; S];

    /// The new weight and state values.
    fn next(&self, w: T, g: T, state: [T; S]) -> (T, [T; S]);

    /// `true` only if every value [`Rule::next`] gives is finite; `false` if it
    /// is not, or (for a rule with a cheaper sufficient test) not sure, and
    /// then [`Rule::next`] itself decides. By default, that exact test.
    #[inline(always)]
    fn surely_finite(&self, w: T, g: T, state: [T; S]) -> bool {
        let (w, s) = self.next(w, g, state);
        s.iter().fold(w.is_finite(), |f, v| f & v.is_finite())
    }
}

/// Elements computed between looks at whether they were finite: enough for
/// the loop to vectorise, few enough to stop soon after a bad one.
const BLOCK: usize = 256;

/// Takes one step of `rule` over every parameter of `net` if every new weight
/// and state value is finite (then calls `commit` between the two passes, e.g.
/// to count the step); otherwise changes nothing and returns the first element
/// that would not have been. `slots` hold the parameters' state, created
/// (zeroed) by the writing pass for parameters that have none yet.
///
/// `rule` gives the rule of the parameter with each visiting index (they differ between
/// parameter groups); it is called once per parameter and pass, and an error from it ends
/// the step before anything is written.
pub(super) fn step<T, N, R, const S: usize>(
    rule: &dyn Fn(usize) -> Result<R>,
    mut slots: [&mut Slots<T>; S],
    net: &mut N,
    grads: &N::Gradients,
    commit: impl FnOnce(),
) -> Result<Option<NonFiniteUpdate>>
where
    T: Float,
    N: Params<T>,
    R: Rule<T, S>,
{
    if let Some(refused) = check(rule, slots.each_ref().map(|s| &**s), net, grads)? {
        return Ok(Some(refused));
    }
    commit();
    let (mut index, mut result) = (0, Ok(()));
    net.visit_params_with_grads(grads, &ParamPath::ROOT, &mut |p, g| {
        let n = p.value.len().min(g.len());
        if result.is_ok() {
            // Creates missing state; cannot fail after the check found every slot fitting.
            for slot in slots.iter_mut() {
                if let Err(e) = slot.get(index, n, &p.name) {
                    result = Err(e);
                }
            }
        }
        if result.is_ok() {
            match rule(index) {
                Ok(rule) => {
                    let state =
                        slots.each_mut().map(|s| s.0.get_mut(index).map_or(&mut [][..], |v| &mut v[..n]));
                    write_param(&rule, &mut p.value[..n], &g[..n], state);
                }
                Err(e) => result = Err(e),
            }
        }
        index += 1;
    });
    result.map(|()| None)
}

/// The first element of `net` whose update by `rule` would not be finite, computed without writing.
fn check<T, N, R, const S: usize>(
    rule: &dyn Fn(usize) -> Result<R>,
    slots: [&Slots<T>; S],
    net: &mut N,
    grads: &N::Gradients,
) -> Result<Option<NonFiniteUpdate>>
where
    T: Float,
    N: Params<T>,
    R: Rule<T, S>,
{
    let (mut index, mut result) = (0, Ok(None));
    net.visit_params_with_grads(grads, &ParamPath::ROOT, &mut |p, g| {
        if matches!(result, Ok(None)) {
            let n = p.value.len().min(g.len());
            let mut state = [None; S];
            for (s, slot) in state.iter_mut().zip(slots) {
                match slot.peek(index, n, &p.name) {
                    Ok(values) => *s = values,
                    Err(e) => result = Err(e),
                }
            }
            let rule = if result.is_ok() { rule(index).map_err(|e| result = Err(e)).ok() } else { None };
            if let Some(rule) = rule {
                let (w, g) = (&p.value[..n], &g[..n]);
                result = Ok(first_bad(&rule, w, g, state).map(|(index, slot, value)| NonFiniteUpdate {
                    name: p.name.to_string(),
                    index,
                    value,
                    slot: slot.map(|k| R::SLOTS[k].to_string()),
                }));
            }
        }
        index += 1;
    });
    result
}

/// The first element of `w` whose update is not finite: its index, `None` for
/// the weight or `Some(k)` for state slot `k`, and the value. `state` holds
/// `w.len()` values per slot, or `None` for zeros.
fn first_bad<T: Float, R: Rule<T, S>, const S: usize>(
    rule: &R,
    w: &[T],
    g: &[T],
    state: [Option<&[T]>; S],
) -> Option<(usize, Option<usize>, f64)> {
    let first = AtomicUsize::new(usize::MAX);
    for_ranges(w.len(), PAR_MIN_ELEMENTS, &|r| {
        if let Some(i) = first_bad_in(rule, w, g, state, r) {
            first.fetch_min(i, Relaxed);
        }
    });
    let i = first.into_inner();
    let state = state.map(|s| s.and_then(|s| s.get(i).copied()).unwrap_or(T::zero()));
    let (w, s) = rule.next(*w.get(i)?, *g.get(i)?, state);
    if !w.is_finite() {
        return Some((i, None, w.as_f64()));
    }
    let k = s.iter().position(|v| !v.is_finite())?;
    Some((i, Some(k), s[k].as_f64()))
}

/// The first element in `range` whose update is not finite, looked for a block at a time.
fn first_bad_in<T: Float, R: Rule<T, S>, const S: usize>(
    rule: &R,
    w: &[T],
    g: &[T],
    state: [Option<&[T]>; S],
    range: Range<usize>,
) -> Option<usize> {
    let zeros = [T::zero(); BLOCK];
    let mut start = range.start;
    while start < range.end {
        let end = (start + BLOCK).min(range.end);
        let block = state.map(|s| s.map_or(&zeros[..end - start], |s| &s[start..end]));
        if !surely_finite(rule, &w[start..end], &g[start..end], block) {
            let bad = (start..end).find(|&i| {
                let (new, s) = rule.next(w[i], g[i], block.map(|s| s[i - start]));
                !new.is_finite() || s.iter().any(|v| !v.is_finite())
            });
            if bad.is_some() {
                return bad;
            }
        }
        start = end;
    }
    None
}

/// `true` only if every new weight and state value of these elements is finite
/// ([`Rule::surely_finite`] for each).
#[inline]
fn surely_finite<T: Float, R: Rule<T, S>, const S: usize>(
    rule: &R,
    w: &[T],
    g: &[T],
    state: [&[T]; S],
) -> bool {
    let n = w.len();
    let (g, state) = (&g[..n], state.map(|s| &s[..n]));
    let mut finite = true;
    for i in 0..n {
        finite &= rule.surely_finite(w[i], g[i], state.map(|s| s[i]));
    }
    finite
}

/// Writes the update of every element of `w` and its `state` (each as long as `w`), on threads for large ones.
pub(super) fn write_param<T: Float, R: Rule<T, S>, const S: usize>(
    rule: &R,
    w: &mut [T],
    g: &[T],
    state: [&mut [T]; S],
) {
    let n = state.iter().fold(w.len().min(g.len()), |n, s| n.min(s.len()));
    let w = SharedSlice::new(&mut w[..n]);
    let state = state.map(|s| SharedSlice::new(&mut s[..n]));
    for_ranges(n, PAR_MIN_ELEMENTS, &|r| {
        // SAFETY: `for_ranges` hands out disjoint ranges of `0..n`, and every slice holds `n` values.
        let w = unsafe { w.range(r.clone()) };
        // SAFETY: as above, for each state slot (distinct vectors, so no two overlap).
        let state = state.each_ref().map(|s| unsafe { s.range(r.clone()) });
        write_range(rule, w, &g[r], state);
    });
}

/// [`write_param`] on one thread's range.
#[inline]
fn write_range<T: Float, R: Rule<T, S>, const S: usize>(
    rule: &R,
    w: &mut [T],
    g: &[T],
    mut state: [&mut [T]; S],
) {
    let n = w.len();
    let g = &g[..n];
    for s in state.iter_mut() {
        *s = &mut std::mem::take(s)[..n];
    }
    for i in 0..n {
        let (new, s) = rule.next(w[i], g[i], state.each_ref().map(|s| s[i]));
        w[i] = new;
        for (slot, v) in state.iter_mut().zip(s) {
            slot[i] = v;
        }
    }
}

/// Copies every parameter of `net`, in visiting order, into `saved` (reusing its memory).
pub(super) fn save_params<T: Float, N: Params<T>>(net: &N, saved: &mut Vec<T>) {
    saved.clear();
    net.visit_params(&ParamPath::ROOT, &mut |p| saved.extend_from_slice(p.value));
}

/// Writes back the parameters [`save_params`] copied from the same network.
pub(super) fn restore_params<T: Float, N: Params<T>>(net: &mut N, saved: &[T]) {
    let mut at = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        let n = p.value.len().min(saved.len().saturating_sub(at));
        p.value[..n].copy_from_slice(&saved[at..at + n]);
        at += n;
    });
}

/// The first parameter element of `net` holding a NaN or infinity.
pub(super) fn first_non_finite_param<T: Float, N: Params<T>>(net: &N) -> Option<NonFiniteUpdate> {
    let mut found = None;
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        if found.is_none() {
            if let Some(index) = p.value.iter().position(|v| !v.is_finite()) {
                let value = p.value.get(index).map_or(f64::NAN, |v| v.as_f64());
                found = Some(NonFiniteUpdate { name: p.name.to_string(), index, value, slot: None });
            }
        }
    });
    found
}
