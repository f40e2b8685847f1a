//! Quantized networks saved and loaded as safetensors (`Quantized::save`/`load`):
//! int8 weights with their F32 scales, bf16 weights as BF16, the rest in F32; a
//! round trip gives the same outputs bit for bit, the files are about a quarter
//! (int8) or half (bf16) of the f32 file, and a file that does not fit is a
//! typed error naming each tensor.

use staticnet::prelude::*;
use staticnet::quant::{Quantized, Scheme};
use staticnet::{Error, TensorProblem};
use std::path::PathBuf;

network! {
    /// The `mlp` reference model.
    struct Mlp { input: [784], fc1: dense(256), relu, fc2: dense(128), relu, head: dense(10) }
}

network! {
    /// Convolutions, a batch norm (buffers), a residual block with a projection.
    struct Cnn {
        input: [1, 12, 12],
        conv: conv2d(8, kernel = 3), batch_norm, relu,
        down: residual(projection) { conv2d(8, kernel = 3, stride = 2, padding = 1), relu },
        flatten,
        head: dense(10),
    }
}

network! {
    /// Dense layers at every step of a sequence (`PerStep`).
    struct Steps { input: [8, 96], fc: dense(32), relu, last, head: dense(4) }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("staticnet-quantized-{}-{name}.safetensors", std::process::id()))
}

/// Saves `q`, loads it back and checks outputs, reports and the file's size.
fn round_trip<N, const IN: usize, const OUT: usize>(
    what: &str,
    q: &Quantized<N>,
    f32_bytes: usize,
    share: f64,
) where
    N: Network<f32, IN, OUT> + Clone + Default,
{
    let path = temp(what);
    q.save(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len() as f64;
    assert!(size < share * f32_bytes as f64, "{what}: {size} bytes of {f32_bytes}");
    let back = Quantized::<N>::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(back.layers(), q.layers(), "{what}: names, shapes, bytes and errors");
    for n in [1, 5] {
        let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 13 + j * 7) as f32 * 0.05).sin());
        assert_eq!(back.forward(&x), q.forward(&x), "{what}, batch {n}");
    }
    // The same tensors again (the header's metadata keys may come in another order).
    assert_eq!(q.to_bytes().unwrap().len(), back.to_bytes().unwrap().len(), "{what}: the same file again");
}

fn f32_file_bytes<N: Params<f32>>(net: &N) -> usize {
    persist::to_bytes(net).unwrap().len()
}

fn every_network<Q: Scheme>(share: f64) {
    let mlp = Mlp::new(1);
    let mut cnn = Cnn::new(2);
    // Batch-norm statistics that are not the defaults, so the buffers matter.
    cnn.visit_buffers_mut(&ParamPath::ROOT, &mut |b| b.value.iter_mut().for_each(|v| *v += 0.25));
    let steps = Steps::new(3);
    round_trip::<_, 784, 10>("mlp", &mlp.quantized::<Q>(), f32_file_bytes(&mlp), share);
    // A small network: the header weighs.
    round_trip::<_, 144, 10>("cnn", &cnn.quantized::<Q>(), f32_file_bytes(&cnn), 0.8);
    round_trip::<_, 768, 4>("steps", &steps.quantized::<Q>(), f32_file_bytes(&steps), share + 0.05);
}

#[test]
fn int8_networks_round_trip_through_a_quarter_of_the_f32_file() {
    every_network::<Int8>(0.27);
}

#[test]
fn bf16_networks_round_trip_through_half_of_the_f32_file() {
    every_network::<Bf16>(0.52);
}

#[test]
fn a_bf16_file_is_an_ordinary_bf16_state_dict() {
    let net = Mlp::new(4);
    let q = net.quantized::<Bf16>();
    let bytes = q.to_bytes().unwrap();
    // The f32 network loads it (BF16 widened), with the quantized network's outputs.
    let mut plain = Mlp::<f32>::zeros();
    persist::load_from_bytes(&mut plain, &bytes).unwrap();
    let x = Batch::<f32, 784>::from_fn(3, |i, j| ((i + 5 * j) as f32 * 0.01).cos());
    let (a, b) = (plain.forward(&x), q.forward(&x));
    assert!((&a - &b).amax() < 1e-4 * b.amax(), "{}", (&a - &b).amax());
}

fn problems(result: staticnet::Result<Quantized<Mlp>>) -> Vec<TensorProblem> {
    match result {
        Err(Error::Mismatch { problems, .. }) => problems,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn files_that_do_not_fit_are_refused_naming_each_tensor() {
    // An f32 file: every weight has the wrong dtype, the biases load.
    let f32_file = persist::to_bytes(&Mlp::new(5)).unwrap();
    let found = problems(Quantized::<Mlp>::from_bytes(&f32_file));
    let names: Vec<&str> = found.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["fc1.weight", "fc2.weight", "head.weight"]);
    assert!(matches!(&found[0], TensorProblem::WrongDtype { expected, found, .. }
        if expected == "I8 or BF16" && found == "F32"));

    // Another network's int8 file: missing, unexpected and misshapen tensors.
    network! { struct Other { input: [784], fc1: dense(64), relu, head: dense(10) } }
    let other = Other::new(6).quantized::<Int8>().to_bytes().unwrap();
    let found = problems(Quantized::<Mlp>::from_bytes(&other));
    let shown: Vec<String> = found.iter().map(|p| p.to_string()).collect();
    assert!(
        found.iter().any(|p| matches!(p, TensorProblem::WrongShape { name, .. } if name == "fc1.weight")),
        "{shown:?}"
    );
    assert!(
        found.iter().any(|p| matches!(p, TensorProblem::Missing { name, .. } if name == "fc2.weight")),
        "{shown:?}"
    );
    assert!(
        found.iter().any(|p| matches!(p, TensorProblem::Missing { name, .. } if name == "fc2.bias")),
        "{shown:?}"
    );

    // Damaged bytes are a format error, never a panic.
    let good = Mlp::new(7).quantized::<Int8>().to_bytes().unwrap();
    for cut in [0, 7, 100, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(Quantized::<Mlp>::from_bytes(&good[..cut]), Err(Error::Format { .. })),
            "cut at {cut}"
        );
    }
    assert!(matches!(Quantized::<Mlp>::load(temp("absent")), Err(Error::Io { .. })));
}
