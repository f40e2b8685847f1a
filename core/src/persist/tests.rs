//! Tests of weights files, checkpoints, generators and atomic writes on a small hand-written network.

use super::generator::{rng_from_str, rng_to_string};
use super::tensors::{serialize, Tensor};
use super::*;
use crate::error::{Error, Result, TensorProblem};
use crate::float::Float;
use crate::init::{seeded_rng, Init, SeededRng};
use crate::layers::{BatchNorm, BatchNormGrad, Dense, DenseGrad, Dropout};
use crate::optim::{Adam, Optimizer};
use crate::params::{Param, ParamMut, ParamPath, Params};
use rand::Rng;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// `fc: dense(3 -> 2), bn: batch_norm, drop: dropout(0.5)`, by hand.
struct Tiny<T: Float> {
    fc: Dense<T, 3, 2>,
    bn: BatchNorm<T, 2, 2>,
    drop: Dropout,
}

impl<T: Float> Tiny<T> {
    fn new(seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let mut net = Tiny {
            fc: Dense::new(true, Init::Glorot, &mut rng),
            bn: BatchNorm::default(),
            drop: Dropout::new(0.5, seed).unwrap(),
        };
        // Distinct, non-default values everywhere.
        let mut k = 0.0;
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            p.value.iter_mut().for_each(|v| {
                k += 1.0;
                *v += T::cast(k / 7.0);
            })
        });
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| {
            b.value.iter_mut().for_each(|v| {
                k += 1.0;
                *v = T::cast(k / 3.0);
            })
        });
        net
    }

    fn zeros() -> Self {
        Tiny { fc: Dense::zeros(true), bn: BatchNorm::default(), drop: Dropout::new(0.5, 0).unwrap() }
    }

    /// Every parameter and buffer value, in order.
    fn values(&self) -> Vec<f64> {
        let mut out = Vec::new();
        self.visit_params(&ParamPath::ROOT, &mut |p| out.extend(p.value.iter().map(|v| v.as_f64())));
        self.visit_buffers(&ParamPath::ROOT, &mut |b| out.extend(b.value.iter().map(|v| v.as_f64())));
        out
    }
}

impl<T: Float> Params<T> for Tiny<T> {
    type Gradients = (DenseGrad<T, 3, 2>, BatchNormGrad<T, 2>);
    const PARAM_COUNT: usize = 8 + 4;

    fn zero_gradients(&self) -> Self::Gradients {
        (self.fc.zero_gradients(), self.bn.zero_gradients())
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.fc.visit_params(&path.join("fc"), f);
        self.bn.visit_params(&path.join("bn"), f);
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.fc.visit_params_mut(&path.join("fc"), f);
        self.bn.visit_params_mut(&path.join("bn"), f);
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.fc.visit_params_with_grads(&grads.0, &path.join("fc"), f);
        self.bn.visit_params_with_grads(&grads.1, &path.join("bn"), f);
    }
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        Dense::<T, 3, 2>::visit_grads(&grads.0, f);
        BatchNorm::<T, 2, 2>::visit_grads(&grads.1, f);
    }
    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.bn.visit_buffers(&path.join("bn"), f);
    }
    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.bn.visit_buffers_mut(&path.join("bn"), f);
    }
    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        Params::<T>::visit_rngs(&mut self.drop, &path.join("drop"), f);
    }
}

/// A safetensors file with the given `(name, dtype, shape)` tensors (zero data).
fn file(tensors: &[(&str, Dtype, &[usize])]) -> Vec<u8> {
    let tensors: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|&(name, dtype, shape)| {
            let len = shape.iter().product::<usize>() * dtype.bitsize() / 8;
            (name.to_string(), Tensor { dtype, shape: shape.to_vec(), data: vec![0; len] })
        })
        .collect();
    serialize(tensors, BTreeMap::new()).unwrap()
}

fn problems(result: Result<()>) -> Vec<TensorProblem> {
    match result {
        Err(Error::Mismatch { problems, .. }) => problems,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn round_trip_is_bit_exact_in_f32_and_f64() {
    fn check<T: Float>() {
        let net = Tiny::<T>::new(3);
        let bytes = to_bytes(&net).unwrap();
        assert_eq!(bytes, to_bytes(&net).unwrap(), "deterministic bytes");
        let mut loaded = Tiny::<T>::zeros();
        load_from_bytes(&mut loaded, &bytes).unwrap();
        let (a, b) = (net.values(), loaded.values());
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn files_hold_pytorch_names_dtypes_and_num_batches_tracked() {
    let bytes = to_bytes(&Tiny::<f32>::new(1)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    let fc = st.tensor("fc.weight").unwrap();
    assert_eq!((fc.dtype(), fc.shape()), (Dtype::F32, &[2, 3][..]));
    let count = st.tensor("bn.num_batches_tracked").unwrap();
    assert_eq!((count.dtype(), count.shape(), count.data()), (Dtype::I64, &[][..], &[0u8; 8][..]));
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap().get("format").map(String::as_str), Some("pt"));
    let f64_bytes = to_bytes(&Tiny::<f64>::new(1)).unwrap();
    assert_eq!(
        SafeTensors::deserialize(&f64_bytes).unwrap().tensor("bn.weight").unwrap().dtype(),
        Dtype::F64
    );
}

#[test]
fn every_mismatch_is_reported_by_name_and_nothing_is_loaded() {
    let bytes = file(&[
        ("fc.weight", Dtype::F32, &[3, 2]), // transposed
        ("fc.bias", Dtype::I32, &[2]),      // wrong dtype
        ("bn.weight", Dtype::I64, &[3]),    // wrong dtype and shape
        ("bn.running_mean", Dtype::F32, &[2]),
        ("bn.running_var", Dtype::F32, &[2]),
        ("bn.num_batches_tracked", Dtype::I64, &[]),
        ("extra", Dtype::F32, &[1]),
        ("fc.num_batches_tracked", Dtype::I64, &[]), // not a batch norm: unexpected
    ]);
    let mut net = Tiny::<f32>::new(2);
    let before = net.values();
    let found = problems(load_from_bytes(&mut net, &bytes));
    assert_eq!(net.values(), before);
    let s = |x: &str| x.to_string();
    assert_eq!(
        found,
        vec![
            TensorProblem::WrongShape { name: s("fc.weight"), expected: vec![2, 3], found: vec![3, 2] },
            TensorProblem::WrongDtype { name: s("fc.bias"), expected: s("F32"), found: s("I32") },
            TensorProblem::WrongDtype { name: s("bn.weight"), expected: s("F32"), found: s("I64") },
            TensorProblem::WrongShape { name: s("bn.weight"), expected: vec![2], found: vec![3] },
            TensorProblem::Missing { name: s("bn.bias"), dtype: s("F32"), shape: vec![2] },
            TensorProblem::Unexpected { name: s("extra"), dtype: s("F32"), shape: vec![1] },
            TensorProblem::Unexpected { name: s("fc.num_batches_tracked"), dtype: s("I64"), shape: vec![] },
        ]
    );
    let message = load_from_bytes(&mut net, &bytes).unwrap_err().to_string();
    assert_eq!(
        message,
        "<memory>: the stored tensors do not fit the network (7 problems):\n  \
         - `fc.weight` has shape [3, 2], expected [2, 3]\n  \
         - `fc.bias` has dtype I32, expected F32\n  \
         - `bn.weight` has dtype I64, expected F32\n  \
         - `bn.weight` has shape [3], expected [2]\n  \
         - missing tensor `bn.bias`: expected F32 [2]\n  \
         - unexpected tensor `extra` (F32 [1]): the network has no such parameter\n  \
         - unexpected tensor `fc.num_batches_tracked` (I64 []): the network has no such parameter"
    );
}

#[test]
fn num_batches_tracked_is_optional_and_ignored() {
    let net = Tiny::<f64>::new(4);
    let bytes = to_bytes(&net).unwrap();
    let full = SafeTensors::deserialize(&bytes).unwrap().tensors();
    let without: Vec<(String, Tensor)> = full
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, v)| (n, Tensor { dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() }))
        .collect();
    let mut loaded = Tiny::<f64>::zeros();
    load_from_bytes(&mut loaded, &serialize(without, BTreeMap::new()).unwrap()).unwrap();
    assert_eq!(loaded.values(), net.values());
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_harmless_never_a_panic() {
    let net = Tiny::<f32>::new(5);
    let bytes = to_bytes(&net).unwrap();
    let mut target = Tiny::<f32>::zeros();
    let before = target.values();
    for len in 0..bytes.len() {
        let err = load_from_bytes(&mut target, &bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{len}: {err}");
        assert_eq!(target.values(), before);
    }
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let mut t = Tiny::<f32>::zeros();
            if load_from_bytes(&mut t, &bad).is_err() {
                assert_eq!(t.values(), before, "byte {i}");
            }
        }
    }
}

#[test]
fn hostile_headers_are_refused_before_allocating() {
    let mut net = Tiny::<f32>::zeros();
    let mut huge_len = u64::MAX.to_le_bytes().to_vec();
    huge_len.extend_from_slice(b"{}");
    let err = load_from_bytes(&mut net, &huge_len).unwrap_err().to_string();
    assert!(err.contains("header length is 18446744073709551615 bytes but only 2 bytes follow"), "{err}");
    // A tensor claiming 2^62 elements, with offsets that do not match.
    let header = br#"{"fc.weight":{"dtype":"F32","shape":[4611686018427387904,2],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    let err = load_from_bytes(&mut net, &bytes).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // Offsets beyond the data.
    let header = br#"{"fc.weight":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    assert!(matches!(load_from_bytes(&mut net, &bytes), Err(Error::Format { .. })));
    assert!(load_from_bytes(&mut net, b"garbage garbage garbage").is_err());
    assert!(load_from_bytes(&mut net, &[]).unwrap_err().to_string().contains("empty"));
}

#[test]
fn generators_round_trip_through_their_text_form() {
    let mut rng = seeded_rng(9);
    for draws in [0, 1, 7, 16, 63, 1000] {
        for _ in 0..draws {
            rng.next_u32();
        }
        let mut back = rng_from_str(&rng_to_string(&rng)).unwrap();
        assert!(back == rng);
        assert_eq!(back.next_u64(), rng.clone().next_u64());
    }
    rng.set_stream(5);
    assert!(rng_from_str(&rng_to_string(&rng)).unwrap() == rng);
    for bad in
        ["", "chacha8", "chacha20:00:0:0", "chacha8:zz:0:0", &format!("chacha8:{}:x:0", "0".repeat(64))]
    {
        assert!(rng_from_str(bad).is_none(), "{bad}");
    }
}

fn trained_state(net: &mut Tiny<f64>) -> TrainingState<f64> {
    let mut opt = Adam::new(0.01);
    let grads = (net.fc.zero_gradients(), net.bn.zero_gradients());
    let mut grads = grads;
    grads.0.weight.fill(0.5);
    grads.1.bias.fill(-0.25);
    opt.step(net, &grads).unwrap();
    net.drop.rng_mut().next_u32();
    let mut rng = seeded_rng(1);
    rng.next_u64();
    TrainingState {
        epoch: 3,
        step: 42,
        rng,
        optimizer: opt.state().unwrap(),
        settings: BTreeMap::from([("batch_size".to_string(), "16".to_string())]),
    }
}

#[test]
fn checkpoints_restore_the_network_its_generators_and_the_state() {
    let mut net = Tiny::<f64>::new(6);
    let state = trained_state(&mut net);
    let bytes = checkpoint_to_bytes(&mut net, &state).unwrap();
    let mut back = Tiny::<f64>::zeros();
    let loaded = load_checkpoint_from_bytes(&mut back, &bytes).unwrap();
    assert_eq!(loaded, state);
    assert_eq!(back.values(), net.values());
    assert!(back.drop.rng() == net.drop.rng());
    // The weights part reads as a plain weights file too.
    let mut weights = Tiny::<f64>::zeros();
    load_from_bytes(&mut weights, &bytes).unwrap();
    assert_eq!(weights.values(), net.values());
    // A weights file is not a checkpoint.
    let err = load_checkpoint_from_bytes(&mut back, &to_bytes(&net).unwrap()).unwrap_err();
    assert!(err.to_string().contains("not a staticnet checkpoint"), "{err}");
}

#[test]
fn a_checkpoint_that_does_not_fit_changes_nothing() {
    let mut net = Tiny::<f64>::new(7);
    let state = trained_state(&mut net);
    let bytes = checkpoint_to_bytes(&mut net, &state).unwrap();
    // Drop one optimizer tensor.
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors: Vec<(String, Tensor)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "optimizer.exp_avg.fc.bias")
        .map(|(n, v)| (n, Tensor { dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() }))
        .collect();
    let metadata = meta.metadata().clone().unwrap().into_iter().collect();
    let broken = serialize(tensors, metadata).unwrap();
    let mut target = Tiny::<f64>::zeros();
    let rng_before = target.drop.rng().clone();
    let found = match load_checkpoint_from_bytes(&mut target, &broken) {
        Err(Error::Mismatch { problems, .. }) => problems,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        found,
        vec![TensorProblem::Missing {
            name: "optimizer.exp_avg.fc.bias".into(),
            dtype: "F64".into(),
            shape: vec![2]
        }]
    );
    assert_eq!(target.values(), Tiny::<f64>::zeros().values());
    assert!(*target.drop.rng() == rng_before);
    // Truncations are format errors.
    for len in (0..bytes.len()).step_by(13) {
        assert!(load_checkpoint_from_bytes(&mut target, &bytes[..len]).is_err());
    }
    assert_eq!(target.values(), Tiny::<f64>::zeros().values());
}

#[test]
fn atomic_writes_replace_the_file_and_leave_no_temporary_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save(&Tiny::<f32>::new(1), &path).unwrap();
    save(&Tiny::<f32>::new(2), &path).unwrap();
    let mut net = Tiny::<f32>::zeros();
    load_into(&mut net, &path).unwrap();
    assert_eq!(net.values(), Tiny::<f32>::new(2).values());
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["w.safetensors"]);
    // A directory is neither written over nor read.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(save(&net, &sub), Err(Error::Io { .. })));
    assert!(matches!(load_into(&mut net, &sub), Err(Error::Io { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
    assert!(matches!(load_into(&mut net, dir.path().join("missing")), Err(Error::Io { .. })));
}
