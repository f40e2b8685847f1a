//! The safetensors layer shared by weights files and checkpoints: a network's
//! expected tensors, encoding and decoding values, parsing a file and checking
//! every tensor's name, dtype and shape.

use super::MEMORY;
use crate::error::{Error, Result, TensorProblem};
use crate::float::Float;
use crate::params::{ParamPath, Params};
use half::{bf16, f16};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// A parameter or buffer of a network: its name and PyTorch shape.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) shape: Vec<usize>,
}

impl Entry {
    pub(super) fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every parameter, then every buffer, in visiting order.
pub(super) fn network_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = param_entries(net);
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        entries.push(Entry { name: b.name.to_string(), shape: b.shape.to_vec() })
    });
    entries
}

/// Every trainable parameter, in visiting order (the optimizer's indexing).
pub(super) fn param_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        entries.push(Entry { name: p.name.to_string(), shape: p.shape.to_vec() })
    });
    entries
}

/// Whether `name` is `<prefix>num_batches_tracked` of a batch norm whose
/// `<prefix>running_mean` the network has.
pub(super) fn is_num_batches_tracked(name: &str, known: &HashSet<&str>) -> bool {
    name.strip_suffix("num_batches_tracked").is_some_and(|prefix| {
        (prefix.is_empty() || prefix.ends_with('.'))
            && known.contains(format!("{prefix}running_mean").as_str())
    })
}

/// An owned tensor to serialize (also the quantized files', `quant::file`).
pub(crate) struct Tensor {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

impl Tensor {
    pub(crate) fn floats<T: Float>(shape: Vec<usize>, values: &[T]) -> Self {
        Self::floats_as(shape, values, dtype_of::<T>())
    }

    /// `values` stored as `dtype` (one of [`is_convertible`]'s).
    pub(super) fn floats_as<T: Float>(shape: Vec<usize>, values: &[T], dtype: Dtype) -> Self {
        Tensor { dtype, shape, data: encode(values, dtype) }
    }
}

impl View for Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The tensors of a weights file: parameters, buffers and, for every batch
/// norm, `num_batches_tracked` (I64 scalar 0).
pub(super) fn network_tensors<T: Float, N: Params<T>>(net: &N) -> Result<Vec<(String, Tensor)>> {
    network_tensors_as(net, dtype_of::<T>())
}

/// [`network_tensors`] with the floats stored as `dtype` (one of [`is_convertible`]'s).
pub(super) fn network_tensors_as<T: Float, N: Params<T>>(
    net: &N,
    dtype: Dtype,
) -> Result<Vec<(String, Tensor)>> {
    let mut tensors = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        tensors.push((p.name.to_string(), Tensor::floats_as(p.shape.to_vec(), p.value, dtype)))
    });
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        let name = b.name.to_string();
        if let Some(prefix) = name.strip_suffix("running_mean") {
            if prefix.is_empty() || prefix.ends_with('.') {
                let count =
                    Tensor { dtype: Dtype::I64, shape: Vec::new(), data: 0i64.to_le_bytes().to_vec() };
                tensors.push((format!("{prefix}num_batches_tracked"), count));
            }
        }
        tensors.push((name, Tensor::floats_as(b.shape.to_vec(), b.value, dtype)));
    });
    let mut seen = HashSet::new();
    for (name, _) in &tensors {
        if !seen.insert(name.as_str()) {
            return Err(Error::InvalidConfig(format!("two tensors of the network are both named `{name}`")));
        }
    }
    Ok(tensors)
}

/// safetensors bytes of `tensors` with `metadata` (one key keeps the bytes
/// deterministic; with more, the header's key order may vary, not the content).
pub(super) fn serialize(
    tensors: Vec<(String, Tensor)>,
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let metadata: HashMap<String, String> = metadata.into_iter().collect();
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::format(MEMORY, format!("cannot serialize the tensors: {e}")))
}

fn dtype_of<T: Float>() -> Dtype {
    if T::DTYPE == "F64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Whether values stored as `dtype` load into any network (converted to its
/// scalar): the four float dtypes do, integers and the rest do not.
pub(super) fn is_convertible(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16)
}

/// Little-endian bytes of `values` stored as `dtype` (one of
/// [`is_convertible`]'s; F16 and BF16 round to nearest, ties to even).
fn encode<T: Float>(values: &[T], dtype: Dtype) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * dtype.bitsize() / 8);
    for v in values {
        let v = v.as_f64();
        match dtype {
            Dtype::F64 => out.extend_from_slice(&v.to_le_bytes()),
            Dtype::F16 => out.extend_from_slice(&f16::from_f64(v).to_le_bytes()),
            Dtype::BF16 => out.extend_from_slice(&bf16::from_f64(v).to_le_bytes()),
            // Exact for an f32 network: an f32 widened to f64 and back is the same f32.
            _ => out.extend_from_slice(&(v as f32).to_le_bytes()),
        }
    }
    out
}

/// The inverse of [`encode`]: `bytes` holds `out.len()` values stored as
/// `dtype`, converted to `T` (F16 and BF16 exactly, F64 into f32 rounding to nearest).
pub(super) fn decode<T: Float>(dtype: Dtype, bytes: &[u8], out: &mut [T]) {
    fn each<T: Float, const W: usize>(bytes: &[u8], out: &mut [T], f: impl Fn([u8; W]) -> f64) {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(W)) {
            *o = T::cast(f(b.try_into().unwrap_or([0; W])));
        }
    }
    match dtype {
        Dtype::F64 => each(bytes, out, f64::from_le_bytes),
        Dtype::F16 => each(bytes, out, |b| f16::from_le_bytes(b).to_f64()),
        Dtype::BF16 => each(bytes, out, |b| bf16::from_le_bytes(b).to_f64()),
        _ => each(bytes, out, |b| f64::from(f32::from_le_bytes(b))),
    }
}

/// A parsed safetensors file: its validated header and its data section.
pub(super) struct Stored<'a> {
    metadata: Metadata,
    /// The tensor names, sorted.
    names: Vec<String>,
    data: &'a [u8],
}

impl<'a> Stored<'a> {
    /// Parses and validates `bytes`: the header length fits the file, the header
    /// is JSON naming dtypes, shapes and offsets that tile the data section exactly.
    pub(super) fn parse(bytes: &'a [u8], path: &Path) -> Result<Self> {
        let len = bytes.len();
        if len == 0 {
            return Err(Error::format(path, "the file is empty: not a safetensors file"));
        }
        let Some(header_len) = bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) else {
            return Err(Error::format(
                path,
                format!("{len} bytes is too short for a safetensors file, which starts with an 8-byte header length"),
            ));
        };
        if header_len > (len - 8) as u64 {
            return Err(Error::format(
                path,
                format!(
                    "the header length is {header_len} bytes but only {} bytes follow: the file is truncated or not safetensors",
                    len - 8
                ),
            ));
        }
        let (n, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
        let data = bytes.get(8 + n..).unwrap_or_default();
        let mut names = metadata.offset_keys();
        names.sort_unstable();
        Ok(Stored { metadata, names, data })
    }

    /// The value of metadata `key`.
    pub(super) fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.metadata().as_ref()?.get(key).map(String::as_str)
    }

    /// Every metadata entry (in no particular order).
    pub(super) fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.metadata().iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The tensor names in the file, sorted.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub(super) fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    pub(super) fn tensor_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let (start, end) = self.info(name)?.data_offsets;
        self.data.get(start..end)
    }

    pub(super) fn unexpected(&self, name: &str) -> TensorProblem {
        let (dtype, shape) = match self.info(name) {
            Some(info) => (info.dtype.to_string(), info.shape.clone()),
            None => (String::from("?"), Vec::new()),
        };
        TensorProblem::Unexpected { name: name.to_string(), dtype, shape }
    }

    /// Converts the stored tensor `name` into `out` (same length: [`check_expected`]
    /// checked its shape); leaves `out` as it is if the file has no such tensor.
    pub(super) fn decode_into<T: Float>(&self, name: &str, out: &mut [T]) {
        if let (Some(info), Some(bytes)) = (self.info(name), self.tensor_bytes(name)) {
            decode(info.dtype, bytes, out);
        }
    }

    /// Copies every parameter and buffer of `net` from the file; [`check_expected`] found no problem.
    pub(super) fn apply<T: Float, N: Params<T>>(&self, net: &mut N) {
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| self.decode_into(&p.name.to_string(), p.value));
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| self.decode_into(&b.name.to_string(), b.value));
    }
}

/// Records a problem for every entry of `expected` that `stored` lacks or holds
/// with another shape, or with a dtype that does not convert to `T` ([`is_convertible`]).
pub(super) fn check_expected<T: Float>(
    stored: &Stored<'_>,
    expected: &[Entry],
    problems: &mut Vec<TensorProblem>,
) {
    let dtype = dtype_of::<T>();
    for entry in expected {
        let Some(info) = stored.info(&entry.name) else {
            problems.push(TensorProblem::Missing {
                name: entry.name.clone(),
                dtype: dtype.to_string(),
                shape: entry.shape.clone(),
            });
            continue;
        };
        if !is_convertible(info.dtype) {
            problems.push(TensorProblem::WrongDtype {
                name: entry.name.clone(),
                expected: dtype.to_string(),
                found: info.dtype.to_string(),
            });
        }
        if info.shape != entry.shape {
            problems.push(TensorProblem::WrongShape {
                name: entry.name.clone(),
                expected: entry.shape.clone(),
                found: info.shape.clone(),
            });
        }
    }
}
