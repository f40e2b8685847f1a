//! Saving and loading networks, and training checkpoints, as [safetensors] files.
//!
//! # Weights: [`save`] and [`load_into`]
//!
//! A weights file holds every parameter and buffer of a network under its
//! PyTorch `state_dict` name, in the network's dtype (`F32` or `F64`,
//! [`Float::DTYPE`]), row-major, so the equivalent PyTorch module loads it with
//! `module.load_state_dict(safetensors.torch.load_file(path))` (strict), and JAX
//! or numpy read it with `safetensors.numpy.load_file`. The names and layouts:
//!
//! | layer | tensors |
//! |---|---|
//! | `dense` (`nn.Linear`) | `<name>.weight` `[out, in]`, `<name>.bias` `[out]` (unless `bias = false`) |
//! | `conv2d` (`nn.Conv2d`) | `<name>.weight` `[out, in, kh, kw]`, `<name>.bias` `[out]` (unless `bias = false`) |
//! | `batch_norm` (`nn.BatchNorm1d/2d`) | `<name>.weight`, `<name>.bias`, `<name>.running_mean`, `<name>.running_var` (all `[channels]`), and `<name>.num_batches_tracked` (`I64`, shape `[]`) |
//! | `layer_norm` (`nn.LayerNorm`) | `<name>.weight`, `<name>.bias`, both with the sample's shape (e.g. `[C, H, W]`) |
//! | activations, pools, `flatten`, `dropout` | nothing |
//!
//! `<name>` is the layer's name in `network!` (`fc1: dense(8)` gives `fc1.weight`);
//! an unnamed layer uses its index in the network counting every layer from 0,
//! as `nn.Sequential` does (`2.weight`). Networks chained with `a.then(b)` prefix
//! the names with `0.` and `1.`.
//!
//! `num_batches_tracked` is written as 0: staticnet does not count batches, and
//! PyTorch reads the count only when a batch norm has `momentum=None`
//! (a cumulative average), which staticnet does not offer. It is written so that
//! PyTorch's strict loading accepts the file, and ignored when loading.
//!
//! The header's metadata is `{"format": "pt"}`, as `safetensors.torch.save_file`
//! writes it. Tensors are stored in the safetensors crate's canonical order (by
//! dtype, then by name), so the same network always gives the same bytes.
//!
//! # Other dtypes: [`save_as`]
//!
//! Loading converts: F16, BF16 and F64 files load into an f32 network (F64
//! rounded to nearest), F32, F16 and BF16 files into an f64 one, so a PyTorch
//! model saved in half precision loads as it is. [`save_as`] stores a network's
//! floats in another [`Dtype`] (`Dtype::BF16` halves an f32 file).
//!
//! # Partial loading: [`load_matching`] and [`Matching`]
//!
//! [`load_matching`] loads every stored tensor whose name and shape fit the network,
//! after stripping PyTorch's wrapper prefixes (`module.`, `_orig_mod.`), and returns a
//! [`LoadReport`] (loaded, skipped with the reason, missing) instead of failing;
//! [`Matching`] adds prefixes and renames (a closure or a table).
//!
//! Loading checks every expected tensor's name, dtype and shape, and reports
//! every problem at once as [`Error::Mismatch`] ([`TensorProblem`]: missing,
//! unexpected, wrong dtype, wrong shape, each by name). A truncated, corrupted
//! or hostile file is an [`Error::Format`]; loading never panics, allocates no
//! more than the file's size, and on any error leaves the network unchanged.
//!
//! # Checkpoints: [`save_checkpoint`] and [`load_checkpoint`]
//!
//! A checkpoint is a weights file (the same tensors, so [`load_into`] and
//! PyTorch's non-strict loading read its weights) with the training state added:
//!
//! - tensors `optimizer.<slot>.<parameter name>`, shaped like the parameter, in
//!   the network's dtype: `optimizer.momentum_buffer.fc1.weight` for SGD with
//!   momentum, `optimizer.exp_avg.*` and `optimizer.exp_avg_sq.*` for Adam and
//!   AdamW (absent before the first step);
//! - metadata (all values are strings): `format` = `pt`, `staticnet.kind` =
//!   `checkpoint`, `staticnet.version` = `1`, `epoch` (epochs completed), `step`
//!   (optimizer steps taken), `trainer.rng` (the shuffling generator),
//!   `rng.<layer name>` (each dropout layer's generator), `optimizer` (`sgd`,
//!   `adam`, `adamw`), `optimizer.step` (Adam's step count),
//!   `optimizer.<hyper-parameter>` (`lr`, `momentum`, `nesterov`,
//!   `weight_decay`, `beta1`, `beta2`, `eps`; shortest round-trip decimal), and
//!   `trainer.<setting>` for the trainer's settings (`epochs`, `batch_size`,
//!   `seed`, `shuffle`, `schedule`, and `clip_grad_norm` / `clip_grad_value`
//!   when set; informational).
//!
//! A generator is written `chacha8:<seed as 64 hex digits>:<stream>:<word position>`,
//! the complete state of a [`SeededRng`].
//!
//! [`crate::train::Trainer::checkpoint`] and [`crate::train::Trainer::resume`]
//! use these functions; resumed training ends with exactly the weights of an
//! uninterrupted run.
//!
//! # Atomic writes
//!
//! [`save`] and [`save_checkpoint`] write a temporary file next to the target
//! (`.<file name>.staticnet-tmp.<pid>.<n>`), flush and `fsync` it, rename it over the target,
//! then `fsync` the directory (on Unix). A process killed while saving leaves the
//! previous file intact (and possibly a stray temporary file, which is safe to delete;
//! the next save to the same path deletes it once the process that wrote it has ended).
//!
//! [safetensors]: https://huggingface.co/docs/safetensors
//! [`Float::DTYPE`]: crate::float::Float::DTYPE
//! [`Error::Mismatch`]: crate::error::Error::Mismatch
//! [`Error::Format`]: crate::error::Error::Format
//! [`TensorProblem`]: crate::error::TensorProblem
//! [`SeededRng`]: crate::init::SeededRng

mod checkpoint;
mod file;
mod generator;
mod matching;
#[cfg(test)]
mod matching_tests;
pub(crate) mod tensors;
#[cfg(test)]
mod tests;
mod weights;

pub(crate) use checkpoint::read_checkpoint;
pub use checkpoint::{
    checkpoint_to_bytes, load_checkpoint, load_checkpoint_from_bytes, save_checkpoint, TrainingState,
};
pub(crate) use file::read_file;
pub use file::write_atomic;
pub use matching::{load_matching, LoadReport, Matching, SkipReason, Skipped, PYTORCH_PREFIXES};
pub use weights::{load_from_bytes, load_into, save, save_as, to_bytes, to_bytes_as, Dtype};

/// The path reported in errors about in-memory bytes.
const MEMORY: &str = "<memory>";
/// Where a checkpoint's optimizer tensors live: `optimizer.<slot>.<parameter>`.
const OPTIMIZER_PREFIX: &str = "optimizer.";
