//! The compact-weight products in plain Rust: eight partial sums per row, so the
//! compiler vectorises the inner loop at whatever level the build targets.

/// Eight lanes of `Σ w[i]·x[i]`, `w` converted by `f`, summed pairwise at the end.
#[inline(always)]
fn dot<W: Copy>(w: &[W], x: &[f32], f: impl Fn(W) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (wc, wt) = w.as_chunks::<8>();
    let (xc, xt) = x.as_chunks::<8>();
    for (w, x) in wc.iter().zip(xc) {
        for k in 0..8 {
            acc[k] += f(w[k]) * x[k];
        }
    }
    let mut tail = 0.0;
    for (&w, &x) in wt.iter().zip(xt) {
        tail += f(w) * x;
    }
    let [a, b, c, d, e, g, h, i] = acc;
    ((a + b) + (c + d)) + ((e + g) + (h + i)) + tail
}

/// [`super::int8_gemv`] in plain Rust.
pub(crate) fn int8_gemv(q: &[i8], scales: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    for (o, (row, yo)) in q.chunks_exact(x.len().max(1)).zip(y.iter_mut()).enumerate() {
        *yo = scales[o] * dot(row, x, f32::from) + bias.map_or(0.0, |b| b[o]);
    }
    if x.is_empty() {
        y.iter_mut().enumerate().for_each(|(o, yo)| *yo = bias.map_or(0.0, |b| b[o]));
    }
}

/// [`super::bf16_gemv`] in plain Rust.
pub(crate) fn bf16_gemv(w: &[u16], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let widen = |w: u16| f32::from_bits(u32::from(w) << 16);
    for (o, (row, yo)) in w.chunks_exact(x.len().max(1)).zip(y.iter_mut()).enumerate() {
        *yo = dot(row, x, widen) + bias.map_or(0.0, |b| b[o]);
    }
    if x.is_empty() {
        y.iter_mut().enumerate().for_each(|(o, yo)| *yo = bias.map_or(0.0, |b| b[o]));
    }
}
