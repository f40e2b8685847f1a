//! The checker's convolution and pooling sizes against core's own geometry
//! constructors (`staticnet_core::layers::Conv2dGeometry::symmetric`,
//! `PoolGeometry::new`, `Conv1dGeometry::new`): the same output size, and the
//! same inputs refused, for many kernels, strides, paddings (`same` included),
//! dilations and sizes.

use crate::ctxt::Ctxt;
use crate::model::{ConvGeometry, LayerKind, PoolGeometry};
use staticnet_core::layers::{
    Conv1dGeometry as CoreConv1d, Conv2dGeometry as CoreConv, PoolGeometry as CorePool,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A small xorshift generator: reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
    fn pair(&mut self, from: usize, below: usize) -> [usize; 2] {
        [from + self.below(below - from), from + self.below(below - from)]
    }
}

/// The only layer of a network checked from `layer` on `[c, h, w]`, or `None` if the checker refuses it.
fn checked(chw: [usize; 3], layer: &str) -> Option<LayerKind> {
    let source = format!("struct N {{ input: [{}, {}, {}], layer: {layer} }}", chw[0], chw[1], chw[2]);
    let cx = Ctxt::new();
    let model = crate::parse::parse(source.parse().expect("tokens"), &cx).and_then(|d| super::check(d, &cx));
    let _ = cx.into_messages();
    model.map(|m| m.layers[0].kind.clone())
}

/// Core's geometry, or `None` where its constructor refuses the sizes (it
/// panics; the test harness keeps the message unless the test fails).
fn core<G>(make: impl FnOnce() -> G) -> Option<G> {
    catch_unwind(AssertUnwindSafe(make)).ok()
}

fn list([a, b]: [usize; 2]) -> String {
    format!("[{a}, {b}]")
}

#[test]
fn convolution_sizes_agree_with_core() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut agreed, mut refused, mut same) = (0, 0, 0);
    for _ in 0..1500 {
        let chw = [1 + rng.below(3), 1 + rng.below(12), 1 + rng.below(12)];
        let (filters, kernel, dilation) = (1 + rng.below(4), rng.pair(1, 6), rng.pair(1, 3));
        let same_padding = rng.below(4) == 0;
        let (stride, padding) =
            if same_padding { ([1, 1], [0, 0]) } else { (rng.pair(1, 4), rng.pair(0, 3)) };
        let padding_arg = if same_padding { "same".to_string() } else { list(padding) };
        let layer = format!(
            "conv2d({filters}, kernel = {}, stride = {}, padding = {padding_arg}, dilation = {})",
            list(kernel),
            list(stride),
            list(dilation)
        );
        let ours = checked(chw, &layer);
        let case = format!("{layer} on {chw:?}");
        if same_padding {
            // `same` keeps the size, padding (span − 1)/2 at the top and left and the
            // rest at the bottom and right: core's symmetric geometry with that
            // padding agrees for odd spans and is one short for even ones.
            let Some(LayerKind::Conv2d { geometry: g, same: true, .. }) = ours else {
                panic!("{case}: `same` refused")
            };
            assert_eq!((g.out_height, g.out_width), (chw[1], chw[2]), "{case}");
            let spans = [0, 1].map(|a| dilation[a] * (kernel[a] - 1) + 1);
            assert_eq!(g.padding, spans.map(|span| (span - 1) / 2), "{case}");
            let core_out = [0, 1].map(|a| chw[1 + a] + spans[a] % 2 - 1);
            let theirs = core(|| {
                CoreConv::symmetric(chw[0], chw[1], chw[2], filters, kernel, stride, g.padding, dilation)
            });
            match theirs {
                Some(theirs) if spans.iter().all(|s| s % 2 == 1) => {
                    assert_eq!(as_core_conv(&g), theirs, "{case}")
                }
                Some(theirs) => assert_eq!([theirs.out_height, theirs.out_width], core_out, "{case}"),
                None => assert!(core_out.contains(&0), "{case}: core refuses"),
            }
            same += 1;
            continue;
        }
        let theirs =
            core(|| CoreConv::symmetric(chw[0], chw[1], chw[2], filters, kernel, stride, padding, dilation));
        match (ours, theirs) {
            (Some(LayerKind::Conv2d { geometry, .. }), Some(theirs)) => {
                assert_eq!(as_core_conv(&geometry), theirs, "{case}");
                agreed += 1;
            }
            (None, None) => refused += 1,
            (ours, theirs) => panic!("{case}: the checker gives {ours:?}, core {theirs:?}"),
        }
    }
    // The cases cover every outcome.
    assert!(agreed > 300 && refused > 100 && same > 200, "{agreed} {refused} {same}");
}

#[test]
fn pooling_sizes_agree_with_core() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut agreed, mut refused) = (0, 0);
    for _ in 0..1000 {
        let chw = [1 + rng.below(3), 1 + rng.below(10), 1 + rng.below(10)];
        let (kernel, stride) = (rng.pair(1, 6), rng.pair(1, 5));
        let kind = ["max_pool", "avg_pool"][rng.below(2)];
        let layer = format!("{kind}({}, stride = {})", list(kernel), list(stride));
        let case = format!("{layer} on {chw:?}");
        let theirs = core(|| CorePool::new(chw[0], chw[1], chw[2], kernel, stride));
        match (checked(chw, &layer), theirs) {
            (Some(LayerKind::MaxPool(g) | LayerKind::AvgPool(g)), Some(theirs)) => {
                assert_eq!(as_core_pool(&g), theirs, "{case}");
                agreed += 1;
            }
            (None, None) => refused += 1,
            (ours, theirs) => panic!("{case}: the checker gives {ours:?}, core {theirs:?}"),
        }
    }
    assert!(agreed > 300 && refused > 100, "{agreed} {refused}");
}

/// `conv1d` on `[steps, features]`: the checker and `Conv1dGeometry::new` agree
/// on the output steps and on what they refuse (`same` is the padding it stands for).
#[test]
fn conv1d_sizes_agree_with_core() {
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    let (mut agreed, mut refused) = (0, 0);
    for _ in 0..1500 {
        let (steps, features) = (1 + rng.below(12), 1 + rng.below(3));
        let (kernel, stride, dilation, padding) =
            (1 + rng.below(6), 1 + rng.below(3), 1 + rng.below(3), rng.below(3));
        let same = rng.below(4) == 0;
        let padding_arg = if same { "same".to_string() } else { padding.to_string() };
        let layer = format!(
            "conv1d(2, kernel = {kernel}, stride = {}, padding = {padding_arg}, dilation = {dilation})",
            if same { 1 } else { stride }
        );
        let source = format!("struct N {{ input: [{steps}, {features}], layer: {layer} }}");
        let cx = Ctxt::new();
        let model =
            crate::parse::parse(source.parse().expect("tokens"), &cx).and_then(|d| super::check(d, &cx));
        let _ = cx.into_messages();
        let ours = model.map(|m| m.layers[0].kind.clone());
        let span = dilation * (kernel - 1) + 1;
        let (stride, padding) = if same { (1, (span - 1) / 2) } else { (stride, padding) };
        let theirs = CoreConv1d::new(steps, kernel, stride, padding, dilation).ok();
        match (ours, theirs) {
            (Some(LayerKind::Conv1d { geometry: g, .. }), Some(t)) => {
                let ours = (g.steps, g.kernel, g.stride, g.padding, g.dilation, g.out_steps);
                assert_eq!(
                    ours,
                    (t.steps, t.kernel, t.stride, t.padding, t.dilation, t.out_steps),
                    "{source}"
                );
                if same {
                    assert_eq!(g.out_steps, steps, "{source}: `same` keeps the steps");
                }
                agreed += 1;
            }
            // The checker refuses `same` with an even span, which core would take as a shorter output.
            (None, Some(_)) if same && span % 2 == 0 => refused += 1,
            (None, None) => refused += 1,
            (ours, theirs) => panic!("{source}: the checker gives {ours:?}, core {theirs:?}"),
        }
    }
    assert!(agreed > 400 && refused > 100, "{agreed} {refused}");
}

fn as_core_conv(g: &ConvGeometry) -> CoreConv {
    CoreConv {
        in_channels: g.in_channels,
        height: g.height,
        width: g.width,
        out_channels: g.out_channels,
        kernel: g.kernel,
        stride: g.stride,
        padding: g.padding,
        dilation: g.dilation,
        out_height: g.out_height,
        out_width: g.out_width,
    }
}

fn as_core_pool(g: &PoolGeometry) -> CorePool {
    CorePool {
        channels: g.channels,
        height: g.height,
        width: g.width,
        kernel: g.kernel,
        stride: g.stride,
        out_height: g.out_height,
        out_width: g.out_width,
    }
}
