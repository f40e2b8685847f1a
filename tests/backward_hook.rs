//! `Network::backward_with`: the "gradients ready" hook of the generated
//! backward pass (data-parallel training starts summing gradients from it).
//! Each layer with parameters is reported once, in backward order, as the
//! visiting-order range of its gradients; when reported, a range already holds
//! its final values; and the pass computes the very bits `backward` does.

use staticnet::prelude::*;
use std::ops::Range;

network! {
    /// Every kind of backward group: `conv2d, relu, max_pool` (fused), batch norm
    /// (single), `relu, dense` (fused), a residual block, dropout and a plain dense.
    struct Hooked {
        input: [1, 8, 8],
        conv: conv2d(3, kernel = 3), relu, max_pool(2) => [3, 3, 3],
        norm: batch_norm,
        flatten,
        fc1: dense(12), relu,
        block: residual { dense(12), relu },
        dropout(0.1),
        fc2: dense(5),
        softmax_free: dense(4),
    }
}

network! {
    /// A network whose layers have no parameters.
    struct Bare { input: [6], relu, output: [6] }
}

/// A reported range with the values its gradients held when reported.
type Report = (Range<usize>, Vec<f32>);

/// Each reported range with its gradients' values when reported, then the final gradients.
fn hooked<N: Network<f32, IN, OUT> + Clone, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<f32, IN>,
) -> (Vec<Report>, Vec<f32>) {
    let mut twin = net.clone(); // the same dropout generators: the same masks
    let mut trace = N::Trace::default();
    let d_out = Batch::<f32, OUT>::from_fn(x.ncols(), |r, c| ((r * 7 + c * 3) % 5) as f32 * 0.1 - 0.2);
    net.forward_train(x, &mut trace);
    let mut grads = net.zero_gradients();
    let mut seen = Vec::new();
    net.backward_with(
        x,
        &mut trace,
        &d_out,
        &mut grads,
        None,
        &mut |range: Range<usize>, g: &N::Gradients| {
            let flat = flat_grads::<N>(g);
            seen.push((range.clone(), flat[range].to_vec()));
        },
    );
    // The plain pass on the twin: the same trace and output gradient.
    let mut plain = twin.zero_gradients();
    twin.forward_train(x, &mut trace);
    twin.backward(x, &mut trace, &d_out, &mut plain, None);
    assert_eq!(flat_grads::<N>(&grads), flat_grads::<N>(&plain), "backward_with and backward differ");
    (seen, flat_grads::<N>(&grads))
}

fn flat_grads<N: Params<f32>>(g: &N::Gradients) -> Vec<f32> {
    let mut all = Vec::new();
    N::visit_grads(g, &mut |s| all.extend_from_slice(s));
    all
}

/// The visiting-order range of each top-level layer's parameters, by field name.
fn layer_ranges<N: Params<f32>>(net: &N) -> Vec<(String, Range<usize>)> {
    let mut ranges: Vec<(String, Range<usize>)> = Vec::new();
    let mut at = 0;
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        let layer = p.name.to_string().split('.').next().unwrap_or("").to_string();
        match ranges.last_mut() {
            Some((name, r)) if *name == layer => r.end += p.value.len(),
            _ => ranges.push((layer, at..at + p.value.len())),
        }
        at += p.value.len();
    });
    ranges
}

#[test]
fn every_layer_is_reported_once_in_backward_order_with_final_gradients() {
    let mut net = Hooked::<f32>::init(Init::He, 3);
    let x = Batch::<f32, 64>::from_fn(5, |r, c| ((r * 13 + c * 29) % 17) as f32 / 8.0 - 1.0);
    let (seen, last) = hooked(&mut net, &x);
    let expected: Vec<Range<usize>> = layer_ranges(&net).into_iter().rev().map(|(_, r)| r).collect();
    assert_eq!(expected.len(), 6, "conv, norm, fc1, block, fc2, softmax_free");
    assert_eq!(seen.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), expected);
    assert_eq!(expected.first().map(|r| r.end), Some(<Hooked as Params<f32>>::PARAM_COUNT));
    assert_eq!(expected.last().map(|r| r.start), Some(0));
    for (range, values) in &seen {
        assert!(values.iter().any(|v| *v != 0.0), "{range:?} is all zeros");
        assert_eq!(values[..], last[range.clone()], "{range:?} changed after it was reported");
    }
}

#[test]
fn networks_without_parameters_and_chains_report_what_they_have() {
    let x = Batch::<f32, 6>::from_fn(2, |r, c| r as f32 - c as f32);
    let (seen, _) = hooked(&mut Bare::<f32>::new(0), &x);
    assert!(seen.is_empty());
    // A chain reports each network whole: the second first.
    let mut chain = Hooked::<f32>::init(Init::He, 1).then(Hooked2::<f32>::init(Init::He, 2));
    let x = Batch::<f32, 64>::from_fn(3, |r, c| ((r + c) % 5) as f32 / 4.0);
    let (seen, _) = hooked(&mut chain, &x);
    let (a, b) = (<Hooked as Params<f32>>::PARAM_COUNT, <Hooked2 as Params<f32>>::PARAM_COUNT);
    assert_eq!(seen.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), vec![a..a + b, 0..a]);
}

network! {
    /// The second network of the chain.
    struct Hooked2 { input: [4], fc: dense(3) }
}

network! {
    /// `embedding, lstm` run as one backward group (`Embedding::backward_through_recurrent`).
    struct HookedTokens { input: tokens[4], embed: embedding(6 -> 3), rnn: lstm(4), head: dense(6) }
}

#[test]
fn a_fused_embedding_and_recurrent_layer_are_reported_one_after_the_other() {
    let mut net = HookedTokens::<f32>::new(5);
    // 12 tokens for 6 ids: the per-token path; 4 tokens: the layers one by one.
    for batch in [3, 1] {
        let x = Batch::<f32, 4>::from_fn(batch, |r, c| ((r * 5 + c * 2) % 6) as f32);
        let (seen, last) = hooked(&mut net, &x);
        let expected: Vec<Range<usize>> = layer_ranges(&net).into_iter().rev().map(|(_, r)| r).collect();
        assert_eq!(expected.len(), 3, "head, rnn, embed");
        assert_eq!(seen.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), expected);
        for (range, values) in &seen {
            assert!(values.iter().any(|v| *v != 0.0), "{range:?} is all zeros");
            assert_eq!(values[..], last[range.clone()], "{range:?} changed after it was reported");
        }
    }
}
