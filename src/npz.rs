//! NumPy `.npz` exchange with min-char-rnn: Wxh (H, V), Whh (H, H), Why (V, H),
//! bh (H, 1), by (V, 1). Export writes float64 (as np.savez does; exact for f32 and
//! f64 models alike); import takes float32 or float64.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError};
use thiserror::Error;

use crate::linalg::Real;
use crate::model::{Rnn, RnnDims};

#[derive(Debug, Error)]
pub enum NpzError {
    #[error("reading {path}: {cause}")]
    Open { path: PathBuf, cause: std::io::Error },
    #[error("reading {path}: {cause}")]
    Read { path: PathBuf, cause: ReadNpzError },
    #[error("reading {path}: array {name}: {reason}")]
    Array { path: PathBuf, name: &'static str, reason: String },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Writes the five tensors with min-char-rnn's names and shapes.
pub fn export<T: Real>(path: &Path, model: &Rnn<T>) -> Result<(), NpzError> {
    let write_err = |reason: String| NpzError::Write { path: path.into(), reason };
    let file = File::create(path).map_err(|e| write_err(e.to_string()))?;
    let mut npz = NpzWriter::new(file);
    let mut offset = 0;
    for (name, [rows, cols]) in model.dims.shapes() {
        let data: Vec<f64> = model.params[offset..offset + rows * cols].iter().map(|x| x.as_f64()).collect();
        let array = Array2::from_shape_vec((rows, cols), data).expect("layout matches dims");
        npz.add_array(name, &array).map_err(|e| write_err(e.to_string()))?;
        offset += rows * cols;
    }
    let file = npz.finish().map_err(|e| write_err(e.to_string()))?;
    file.sync_all().map_err(|e| write_err(e.to_string()))
}

/// Reads weights for a text whose vocabulary has `vocab` characters; H is taken
/// from Whh. Every shape is checked against min-char-rnn's.
pub fn import<T: Real>(path: &Path, vocab: usize) -> Result<Rnn<T>, NpzError> {
    let file = File::open(path).map_err(|cause| NpzError::Open { path: path.into(), cause })?;
    let mut npz = NpzReader::new(file).map_err(|cause| NpzError::Read { path: path.into(), cause })?;
    let mut tensors = Vec::new();
    let mut hidden = None;
    for name in ["Whh", "Wxh", "Why", "bh", "by"] {
        let (shape, data) = read_array(path, &mut npz, name)?;
        let bad = |reason: String| NpzError::Array { path: path.into(), name, reason };
        let h = *hidden.get_or_insert(shape.first().copied().unwrap_or(0));
        let expected = RnnDims { vocab, hidden: h }
            .shapes()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .expect("known tensor name");
        // biases may also come as flat (n,) vectors
        let matches = shape == expected || (expected[1] == 1 && shape == [expected[0]]);
        if !matches || h == 0 {
            return Err(bad(format!(
                "shape {shape:?}, expected {expected:?} for hidden size {h} and a vocabulary of {vocab} characters"
            )));
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(bad("holds NaN or infinite values".into()));
        }
        tensors.push((name, data));
    }
    let dims = RnnDims { vocab, hidden: hidden.unwrap_or(0) };
    let mut params = Vec::with_capacity(dims.num_params());
    for (name, _) in dims.shapes() {
        let (_, data) = tensors.iter().find(|(n, _)| *n == name).expect("all five read");
        params.extend(data.iter().map(|&x| T::c(x)));
    }
    Ok(Rnn::from_params(dims, params))
}

/// One array as (shape, row-major values), from float64 or float32 storage.
fn read_array(path: &Path, npz: &mut NpzReader<File>, name: &'static str) -> Result<(Vec<usize>, Vec<f64>), NpzError> {
    let wrong_type = |e: &ReadNpzError| matches!(e, ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_)));
    let describe = |e: ReadNpzError| match e {
        ReadNpzError::Zip(zip::result::ZipError::FileNotFound) => NpzError::Array {
            path: path.into(),
            name,
            reason: "missing (min-char-rnn saves Wxh, Whh, Why, bh, by)".into(),
        },
        other => NpzError::Read { path: path.into(), cause: other },
    };
    let as_f64: Result<ArrayD<f64>, _> = npz.by_name(name);
    let (shape, data) = match as_f64 {
        Ok(a) => (a.shape().to_vec(), a.iter().copied().collect()),
        Err(e) if wrong_type(&e) => {
            let a: ArrayD<f32> = npz.by_name(name).map_err(|e| {
                if wrong_type(&e) {
                    NpzError::Array { path: path.into(), name, reason: "dtype is not float32 or float64".into() }
                } else {
                    describe(e)
                }
            })?;
            (a.shape().to_vec(), a.iter().map(|&x| x as f64).collect())
        }
        Err(e) => return Err(describe(e)),
    };
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn export_then_import_gives_the_same_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npz");
        let dims = RnnDims { vocab: 6, hidden: 4 };
        let mut model = Rnn::<f32>::init(dims, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let n = model.params.len();
        model.params[n - 1] = 0.25; // a non-zero bias
        export(&path, &model).unwrap();
        assert_eq!(import::<f32>(&path, 6).unwrap(), model);
        let wide = import::<f64>(&path, 6).unwrap();
        assert!(wide.params.iter().zip(&model.params).all(|(&a, &b)| a == b as f64));
        let err = import::<f32>(&path, 7).unwrap_err().to_string();
        assert!(err.contains("array Wxh: shape [4, 6], expected [4, 7]"), "{err}");
    }
}
