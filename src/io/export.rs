//! Weights out to other tools: safetensors (PyTorch, `safetensors.numpy`) with
//! the vocabulary and hyperparameters in its metadata, and the same metadata as
//! a JSON sidecar for the NumPy `.npz` that [`crate::io::npz`] writes.
//!
//! Tensor names and shapes are [`Config::tensors`]'s in both formats: min-char-rnn's
//! Wxh (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1) for the tanh RNN;
//! Wx (G*H, in), Wh (G*H, H), b (G*H, 1) (+ bhn (H, 1) for the GRU) per layer
//! otherwise, suffixed `_1`, `_2`... after the first layer, with PyTorch's gate
//! order; `embed` (V, E) when there is an embedding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;
use thiserror::Error;

use crate::linalg::Real;
use crate::train::TrainState;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Everything but the weights that a reader needs to use them: what each
/// tensor is, the vocabulary (id i is `vocab[i]`), and how the model was trained.
pub fn metadata<T: Real>(s: &TrainState<T>) -> serde_json::Value {
    let c = s.config();
    let gate_order = c.cell.gate_order();
    let tensors: Vec<_> = c
        .tensors()
        .iter()
        .map(|t| json!({ "name": t.name, "shape": t.shape }))
        .collect();
    json!({
        "format": "charrnn",
        "charrnn_version": env!("CARGO_PKG_VERSION"),
        "cell": c.cell.to_string(),
        "gates": gate_order,
        "vocab_size": c.vocab,
        "hidden_size": c.hidden,
        "layers": c.layers,
        "embedding_size": c.embedding,
        "precision": T::NAME,
        "vocab": s.vocab.chars().iter().map(char::to_string).collect::<Vec<_>>(),
        "tensors": tensors,
        "iteration": s.iteration,
        "epoch": s.epoch,
        "smooth_loss_nats_per_char": s.smooth_loss / s.hyper.seq_length as f64,
        "best_val_loss_nats_per_char": s.best_val,
        "hyperparameters": crate::train::checkpoint::v2::Hyper::from(s),
        "text": { "name": s.text.name, "chars": s.text.chars, "bytes": s.text.bytes },
    })
}

/// Writes the weights as a .safetensors file in the model's precision (F64 or
/// F32). The metadata holds each [`metadata`] field as a string (safetensors
/// allows only strings; nested values are JSON).
pub fn safetensors<T: Real>(path: &Path, s: &TrainState<T>) -> Result<(), ExportError> {
    let err = |reason: String| ExportError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let dtype = if std::mem::size_of::<T>() == 8 {
        Dtype::F64
    } else {
        Dtype::F32
    };
    let specs = s.config().tensors();
    let bytes: Vec<Vec<u8>> = specs
        .iter()
        .map(|t| to_le_bytes(&s.model.params[t.range()]))
        .collect();
    let mut views = Vec::with_capacity(specs.len());
    for (t, b) in specs.iter().zip(&bytes) {
        let view = TensorView::new(dtype, t.shape.to_vec(), b).map_err(|e| err(e.to_string()))?;
        views.push((t.name.clone(), view));
    }
    let meta = match metadata(s) {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect::<HashMap<_, _>>(),
        _ => HashMap::new(),
    };
    let file = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| err(e.to_string()))?;
    crate::io::fsutil::write_atomic(path, &file).map_err(|e| err(e.to_string()))
}

/// Writes [`metadata`] as pretty JSON (the sidecar of an .npz export).
pub fn sidecar<T: Real>(path: &Path, s: &TrainState<T>) -> Result<(), ExportError> {
    let err = |reason: String| ExportError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let mut text = serde_json::to_string_pretty(&metadata(s)).map_err(|e| err(e.to_string()))?;
    text.push('\n');
    crate::io::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| err(e.to_string()))
}

fn to_le_bytes<T: Real>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    for &x in values {
        if std::mem::size_of::<T>() == 8 {
            out.extend_from_slice(&x.as_f64().to_le_bytes());
        } else {
            out.extend_from_slice(&(x.as_f64() as f32).to_le_bytes());
        }
    }
    out
}
