//! NumPy `.npz` exchange with min-char-rnn: Wxh (H, V), Whh (H, H), Why (V, H),
//! bh (H, 1), by (V, 1). Export writes float64 (as np.savez does; exact for f32 and
//! f64 models alike); import takes float32 or float64.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError};
use thiserror::Error;

use crate::linalg::Real;
use crate::model::{Cell, Config, Model};

#[derive(Debug, Error)]
pub enum NpzError {
    #[error("reading {path}: {cause}")]
    Open {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("reading {path}: {cause}")]
    Read { path: PathBuf, cause: ReadNpzError },
    #[error("reading {path}: array {name}: {reason}")]
    Array {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Writes every tensor under its name with its [`Config::tensors`] shape (biases as
/// (n, 1) columns, as min-char-rnn keeps them).
pub fn export<T: Real>(path: &Path, model: &Model<T>) -> Result<(), NpzError> {
    let write_err = |reason: String| NpzError::Write {
        path: path.into(),
        reason,
    };
    let mut npz = NpzWriter::new(std::io::Cursor::new(Vec::new()));
    for spec in model.config.tensors() {
        let data: Vec<f64> = model.params[spec.range()]
            .iter()
            .map(|x| x.as_f64())
            .collect();
        let array = Array2::from_shape_vec((spec.shape[0], spec.shape[1]), data)
            .expect("layout matches the config");
        npz.add_array(spec.name.as_str(), &array)
            .map_err(|e| write_err(e.to_string()))?;
    }
    let bytes = npz
        .finish()
        .map_err(|e| write_err(e.to_string()))?
        .into_inner();
    crate::io::fsutil::write_atomic(path, &bytes).map_err(|e| write_err(e.to_string()))
}

/// The hidden size of the weights in an .npz: the width of the first layer's
/// recurrent matrix (Whh for the tanh RNN, Wh otherwise).
pub fn hidden_size(path: &Path, cell: Cell) -> Result<usize, NpzError> {
    let mut npz = open(path)?;
    let name = cell.names()[1];
    let (shape, _) = read_array(path, &mut npz, name)?;
    match shape[..] {
        [_, h] if h > 0 => Ok(h),
        _ => Err(NpzError::Array {
            path: path.into(),
            name: name.into(),
            reason: format!("shape {shape:?} is not (G*H, H)"),
        }),
    }
}

/// Reads weights for `config`, checking that every tensor is present with its shape.
pub fn import<T: Real>(path: &Path, config: Config) -> Result<Model<T>, NpzError> {
    let mut npz = open(path)?;
    let mut params = Vec::with_capacity(config.num_params());
    for spec in config.tensors() {
        let (shape, data) = read_array(path, &mut npz, &spec.name)?;
        let bad = |reason: String| NpzError::Array {
            path: path.into(),
            name: spec.name.clone(),
            reason,
        };
        // biases may also come as flat (n,) vectors
        let expected = spec.shape;
        if !(shape == expected || (expected[1] == 1 && shape == [expected[0]])) {
            return Err(bad(format!(
                "shape {shape:?}, expected {expected:?} for a {}",
                config.describe()
            )));
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(bad("holds NaN or infinite values".into()));
        }
        params.extend(data.iter().map(|&x| T::c(x)));
    }
    Ok(Model::from_params(config, params))
}

fn open(path: &Path) -> Result<NpzReader<File>, NpzError> {
    let file = File::open(path).map_err(|cause| NpzError::Open {
        path: path.into(),
        cause,
    })?;
    NpzReader::new(file).map_err(|cause| NpzError::Read {
        path: path.into(),
        cause,
    })
}

/// One array as (shape, row-major values), from float64 or float32 storage.
fn read_array(
    path: &Path,
    npz: &mut NpzReader<File>,
    name: &str,
) -> Result<(Vec<usize>, Vec<f64>), NpzError> {
    let wrong_type =
        |e: &ReadNpzError| matches!(e, ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_)));
    let describe = |e: ReadNpzError| match e {
        ReadNpzError::Zip(zip::result::ZipError::FileNotFound) => NpzError::Array {
            path: path.into(),
            name: name.into(),
            reason: "missing".into(),
        },
        other => NpzError::Read {
            path: path.into(),
            cause: other,
        },
    };
    let as_f64: Result<ArrayD<f64>, _> = npz.by_name(name);
    let (shape, data) = match as_f64 {
        Ok(a) => (a.shape().to_vec(), a.iter().copied().collect()),
        Err(e) if wrong_type(&e) => {
            let a: ArrayD<f32> = npz.by_name(name).map_err(|e| {
                if wrong_type(&e) {
                    NpzError::Array {
                        path: path.into(),
                        name: name.into(),
                        reason: "dtype is not float32 or float64".into(),
                    }
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
    fn export_then_import_gives_the_same_model_for_every_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npz");
        for &cell in Cell::ALL {
            let config = Config {
                cell,
                vocab: 6,
                hidden: 4,
                layers: 2,
                embedding: 3,
            };
            let model = Model::<f32>::init(config, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
            export(&path, &model).unwrap();
            assert_eq!(hidden_size(&path, cell).unwrap(), 4);
            assert_eq!(import::<f32>(&path, config).unwrap(), model);
            let wide = import::<f64>(&path, config).unwrap();
            assert!(
                wide.params
                    .iter()
                    .zip(&model.params)
                    .all(|(&a, &b)| a == b as f64)
            );
        }
        let rnn = Config::min_char_rnn(6, 4);
        export(
            &path,
            &Model::<f64>::init(rnn, &mut rand_chacha::ChaCha8Rng::seed_from_u64(2)),
        )
        .unwrap();
        let err = import::<f32>(&path, Config { vocab: 7, ..rnn })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("array Wxh: shape [4, 6], expected [4, 7]"),
            "{err}"
        );
        let err = import::<f32>(
            &path,
            Config {
                cell: Cell::Lstm,
                ..rnn
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("array Wx: missing"), "{err}");
    }
}
