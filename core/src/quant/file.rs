//! A [`Quantized`] network as a safetensors file: each dense and conv2d weight
//! in its compact form (int8 as `I8` `name` with its per-row `F32`
//! `name_scale`, the convention of compressed-tensors checkpoints; bfloat16 as
//! `BF16` `name`, in PyTorch's shape), every other parameter and buffer in F32.
//! Loading builds the network's compact weights straight from the file: no f32
//! weight is ever computed or read (each is allocated zeroed, untouched, and
//! freed when its compact form replaces it).

use super::{relative_error_key, Compact, LayerReport, Quantized};
use crate::error::{Error, Result, TensorProblem};
use crate::params::{ParamPath, Params};
use crate::persist::tensors::Tensor;
use crate::persist::write_atomic;
use safetensors::{Dtype, SafeTensors};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The path errors name for bytes in memory (as `persist`'s).
const MEMORY: &str = "<memory>";

fn compact_tensors(name: &str, shape: &[usize], c: &Compact, out: &mut Vec<(String, Tensor)>) {
    if let Some((q, scales)) = c.int8_parts() {
        let data = q.iter().map(|&v| v as u8).collect();
        out.push((name.to_string(), Tensor { dtype: Dtype::I8, shape: shape.to_vec(), data }));
        out.push((format!("{name}_scale"), Tensor::floats(vec![c.rows()], scales)));
    } else if let Some(bits) = c.bf16_bits() {
        let data = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        out.push((name.to_string(), Tensor { dtype: Dtype::BF16, shape: shape.to_vec(), data }));
    }
}

impl<N: Params<f32> + Clone> Quantized<N> {
    /// Saves the network to a safetensors file at `path`, atomically: each dense
    /// and conv2d weight in its compact form (int8 as `I8` `name` with its
    /// per-row `F32` `name_scale`, as compressed-tensors checkpoints do;
    /// bfloat16 as `BF16` `name`, which PyTorch loads as it is), every other
    /// parameter and buffer in F32, PyTorch's names and shapes.
    ///
    /// Errors: [`Error::Io`] if the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// The bytes [`Quantized::save`] writes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // A scratch copy: its compact weights are taken out (and replaced by
        // untouched zero matrices), so visiting the other parameters reads none.
        let mut net = self.net.clone();
        let mut tensors = Vec::new();
        let mut compact = HashSet::new();
        net.visit_compact(&ParamPath::ROOT, &mut |mut s| {
            let Some(c) = s.compact() else { return };
            let name = s.name.to_string();
            compact_tensors(&name, s.shape, c, &mut tensors);
            compact.insert(name);
            s.clear();
        });
        net.visit_params(&ParamPath::ROOT, &mut |p| {
            let name = p.name.to_string();
            if !compact.contains(&name) {
                tensors.push((name, Tensor::floats(p.shape.to_vec(), p.value)));
            }
        });
        net.visit_buffers(&ParamPath::ROOT, &mut |b| {
            tensors.push((b.name.to_string(), Tensor::floats(b.shape.to_vec(), b.value)))
        });
        let mut metadata = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("staticnet.kind".to_string(), "quantized".to_string()),
        ]);
        for layer in &self.layers {
            metadata.insert(relative_error_key(&layer.name), format!("{:e}", layer.relative_error));
        }
        safetensors::serialize(tensors, Some(metadata))
            .map_err(|e| Error::format(MEMORY, format!("cannot serialize the tensors: {e}")))
    }
}

impl<N: Params<f32> + Default> Quantized<N> {
    /// Loads a network saved by [`Quantized::save`]: each dense and conv2d
    /// weight in I8 (with its `_scale`) or BF16, every other tensor in F32,
    /// with the network's names and shapes.
    ///
    /// Errors: [`Error::Io`] if the file cannot be read, [`Error::Format`] if it
    /// is not a valid safetensors file, [`Error::Mismatch`] listing every tensor
    /// that does not fit (missing, unexpected, another dtype or shape; an f32
    /// weight where a compact one belongs is a wrong dtype).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes_at(&crate::fs::read_regular(path, "a safetensors file")?, path)
    }

    /// [`Quantized::load`] from bytes in memory (errors name the path `<memory>`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_at(bytes, Path::new(MEMORY))
    }

    fn from_bytes_at(bytes: &[u8], path: &Path) -> Result<Self> {
        let format =
            |e: safetensors::SafeTensorError| Error::format(path, format!("not a safetensors file: {e}"));
        let stored = SafeTensors::deserialize(bytes).map_err(format)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let mut net = N::default();
        let mut expected = Expected::default();
        net.visit_compact(&ParamPath::ROOT, &mut |s| {
            expected.compact.push((s.name.to_string(), s.shape.to_vec()))
        });
        let compact_names: HashSet<String> = expected.compact.iter().map(|(n, _)| n.clone()).collect();
        net.visit_params(&ParamPath::ROOT, &mut |p| {
            let name = p.name.to_string();
            if !compact_names.contains(&name) {
                expected.plain.push((name, p.shape.to_vec()));
            }
        });
        net.visit_buffers(&ParamPath::ROOT, &mut |b| {
            expected.plain.push((b.name.to_string(), b.shape.to_vec()))
        });
        let (mut values, mut compacts) = expected
            .read(&stored)
            .map_err(|problems| Error::Mismatch { path: path.to_path_buf(), problems })?;
        let mut write = |name: ParamPath<'_>, value: &mut [f32]| {
            if let Some(v) = values.remove(&name.to_string()) {
                value.copy_from_slice(&v);
            }
        };
        // The compact weights are still untouched zero matrices: `as_mut_slice` reads nothing.
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| write(p.name, p.value));
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| write(b.name, b.value));
        let mut layers = Vec::new();
        net.visit_compact(&ParamPath::ROOT, &mut |mut s| {
            let name = s.name.to_string();
            if let Some(c) = compacts.remove(&name) {
                let error = metadata.get(&relative_error_key(&name)).and_then(|e| e.parse().ok());
                layers.push(LayerReport {
                    shape: [c.rows(), c.cols()],
                    bytes: c.bytes(),
                    relative_error: error.unwrap_or(f64::NAN),
                    name,
                });
                s.store(c);
            }
        });
        Ok(Quantized { net, layers })
    }
}

/// The tensors a network expects: compact weights (name, shape), then the rest.
#[derive(Default)]
struct Expected {
    compact: Vec<(String, Vec<usize>)>,
    plain: Vec<(String, Vec<usize>)>,
}

/// The F32 values by name and the compact weights by name.
type Read = (HashMap<String, Vec<f32>>, HashMap<String, Compact>);

impl Expected {
    /// Every expected tensor read from `stored`, or every problem found.
    fn read(&self, stored: &SafeTensors<'_>) -> std::result::Result<Read, Vec<TensorProblem>> {
        let mut problems = Vec::new();
        let mut known = HashSet::new();
        let (mut values, mut compacts) = (HashMap::new(), HashMap::new());
        let missing = |name: &str, dtype: &str, shape: &[usize]| TensorProblem::Missing {
            name: name.to_string(),
            dtype: dtype.to_string(),
            shape: shape.to_vec(),
        };
        for (name, shape) in &self.plain {
            known.insert(name.clone());
            match stored.tensor(name) {
                Err(_) => problems.push(missing(name, "F32", shape)),
                Ok(t) => match check(name, &t, Dtype::F32, shape) {
                    Some(p) => problems.push(p),
                    None => {
                        values.insert(name.clone(), t.data().chunks_exact(4).map(le_f32).collect::<Vec<_>>());
                    }
                },
            }
        }
        for (name, shape) in &self.compact {
            known.insert(name.clone());
            let t = match stored.tensor(name) {
                Err(_) => {
                    problems.push(missing(name, "I8 or BF16", shape));
                    continue;
                }
                Ok(t) => t,
            };
            let rows = shape.first().copied().unwrap_or(0);
            let compact = match t.dtype() {
                Dtype::I8 => {
                    let scale_name = format!("{name}_scale");
                    known.insert(scale_name.clone());
                    let scales = match stored.tensor(&scale_name) {
                        Err(_) => {
                            problems.push(missing(&scale_name, "F32", &[rows]));
                            None
                        }
                        Ok(s) => match check(&scale_name, &s, Dtype::F32, &[rows]) {
                            Some(p) => {
                                problems.push(p);
                                None
                            }
                            None => Some(s.data().chunks_exact(4).map(le_f32).collect()),
                        },
                    };
                    let q = t.data().iter().map(|&b| b as i8).collect();
                    problems.extend(check(name, &t, Dtype::I8, shape));
                    scales.and_then(|s| Compact::from_int8(q, s, rows))
                }
                Dtype::BF16 => {
                    let bits = t.data().chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
                    problems.extend(check(name, &t, Dtype::BF16, shape));
                    Compact::from_bf16(bits, rows)
                }
                other => {
                    problems.push(TensorProblem::WrongDtype {
                        name: name.clone(),
                        expected: "I8 or BF16".to_string(),
                        found: format!("{other:?}"),
                    });
                    None
                }
            };
            if let Some(c) = compact {
                compacts.insert(name.clone(), c);
            }
        }
        for name in stored.names() {
            if !known.contains(name) {
                if let Ok(t) = stored.tensor(name) {
                    let (dtype, shape) = (format!("{:?}", t.dtype()), t.shape().to_vec());
                    problems.push(TensorProblem::Unexpected { name: name.to_string(), dtype, shape });
                }
            }
        }
        if problems.is_empty() {
            Ok((values, compacts))
        } else {
            Err(problems)
        }
    }
}

/// A problem with tensor `name` if its dtype or shape is not the expected one.
fn check(
    name: &str,
    t: &safetensors::tensor::TensorView<'_>,
    dtype: Dtype,
    shape: &[usize],
) -> Option<TensorProblem> {
    if t.dtype() != dtype {
        let (expected, found) = (format!("{dtype:?}"), format!("{:?}", t.dtype()));
        return Some(TensorProblem::WrongDtype { name: name.to_string(), expected, found });
    }
    (t.shape() != shape).then(|| TensorProblem::WrongShape {
        name: name.to_string(),
        expected: shape.to_vec(),
        found: t.shape().to_vec(),
    })
}

fn le_f32(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
