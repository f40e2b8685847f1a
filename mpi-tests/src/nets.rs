//! The networks and data of the checks: small, so a check takes seconds.

use staticnet::prelude::*;

network! {
    /// A small MLP: no batch norm or dropout, so one process on the global batch computes the same steps.
    pub struct Mlp { input: [16], fc1: dense(32), relu, fc2: dense(4), output: [4] }
}

network! {
    /// A small CNN with batch norm and dropout: per-rank statistics, buffers and generators.
    pub struct Cnn {
        input: [1, 8, 8],
        conv: conv2d(4, kernel = 3), batch_norm, relu,
        max_pool(2) => [4, 3, 3],
        flatten, dropout(0.2),
        head: dense(4),
        output: [4],
    }
}

/// `n` samples of `IN` features in [-1, 1] from `seed`, labelled by a fixed
/// random linear teacher with 4 classes (learnable).
pub fn data<const IN: usize>(n: usize, seed: u64) -> Dataset<f32, IN, Labels> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let teacher: Vec<f32> = (0..4 * IN).map(|_| next()).collect();
    let features: Vec<f32> = (0..n * IN).map(|_| next()).collect();
    let labels = features
        .chunks(IN)
        .map(|x| {
            let score = |c: usize| x.iter().zip(&teacher[c * IN..]).map(|(a, b)| a * b).sum::<f32>();
            (0..4).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap_or(0)
        })
        .collect();
    Dataset::new(Batch::from_column_slice(&features), labels).expect("as many labels as samples")
}

/// Every parameter, flat in visiting order.
pub fn flat<N: Params<f32>>(net: &N) -> Vec<f32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend_from_slice(p.value));
    all
}

/// Every buffer (batch norm's running statistics), flat in visiting order.
pub fn buffers<N: Params<f32>>(net: &N) -> Vec<f32> {
    let mut all = Vec::new();
    net.visit_buffers(&ParamPath::ROOT, &mut |p| all.extend_from_slice(p.value));
    all
}

/// The largest difference between `a` and `b`, relative to the largest magnitude in `b`.
pub fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}
