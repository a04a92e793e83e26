//! `charrnn export`: safetensors and npz (+ JSON sidecar) read back, for every cell.

use std::process::Command;

use crate::common::{charrnn, stderr, write};
use charrnn::train::checkpoint;

/// A tensor's name, shape and place in the flat parameters.
type Spec = (String, [usize; 2], std::ops::Range<usize>);

/// Trains a tiny model and returns (parameters as f64, config tensors, vocabulary).
fn train(dir: &std::path::Path, args: &[&str]) -> (Vec<f64>, Vec<Spec>, Vec<char>) {
    write(dir, "in.txt", crate::common::small_text());
    charrnn(dir)
        .args([
            "train",
            "--data",
            "in.txt",
            "--iters",
            "20",
            "--hidden-size",
            "8",
            "--force",
        ])
        .args(args)
        .assert()
        .success();
    let state = checkpoint::load(&dir.join("charrnn.ckpt")).unwrap();
    charrnn::with_state!(state, s => {
        let params = s.model.params.iter().map(|x| charrnn::linalg::Real::as_f64(*x)).collect();
        let specs = s.config().tensors().into_iter().map(|t| (t.name.clone(), t.shape, t.range())).collect();
        (params, specs, s.vocab.chars().to_vec())
    })
}

const CELLS: [&[&str]; 4] = [
    &[],
    &["--cell", "lstm", "--layers", "2", "--embedding-size", "5"],
    &["--cell", "gru", "--layers", "2"],
    &["--cell", "rnn", "--precision", "f32", "--layers", "2"],
];

#[test]
fn safetensors_reads_back_exactly_with_metadata_for_every_cell() {
    for args in CELLS {
        let dir = tempfile::tempdir().unwrap();
        let (params, specs, vocab) = train(dir.path(), args);
        let out = charrnn(dir.path())
            .args(["export", "-o", "model.safetensors"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), specs.len(), "{args:?}");
        for (name, shape, range) in &specs {
            let t = st.tensor(name).unwrap();
            assert_eq!(t.shape(), shape, "{name} {args:?}");
            let values: Vec<f64> = match t.dtype() {
                safetensors::Dtype::F64 => t
                    .data()
                    .chunks(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::F32 => t
                    .data()
                    .chunks(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                d => panic!("dtype {d:?}"),
            };
            assert_eq!(values, params[range.clone()], "{name} {args:?}");
        }
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        let read_vocab: Vec<String> = serde_json::from_str(&meta["vocab"]).unwrap();
        assert_eq!(
            read_vocab,
            vocab.iter().map(char::to_string).collect::<Vec<_>>()
        );
        assert_eq!(meta["format"], "charrnn");
        assert_eq!(meta["iteration"], "20");
        let hyper: serde_json::Value = serde_json::from_str(&meta["hyperparameters"]).unwrap();
        assert_eq!(hyper["seq_length"], 25);
        let expected_cell = args
            .iter()
            .position(|a| *a == "--cell")
            .map_or("rnn", |i| args[i + 1]);
        assert_eq!(meta["cell"], expected_cell);
    }
}

#[test]
fn npz_and_its_json_sidecar_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (params, specs, vocab) = train(dir.path(), CELLS[1]);
    let out = charrnn(dir.path())
        .args(["export", "-o", "model.npz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("and model.json"), "{}", stderr(&out));
    let file = std::fs::File::open(dir.path().join("model.npz")).unwrap();
    let mut npz = ndarray_npy::NpzReader::new(file).unwrap();
    for (name, shape, range) in &specs {
        let a: ndarray::Array2<f64> = npz.by_name(name).unwrap();
        assert_eq!(a.shape(), shape, "{name}");
        assert_eq!(
            a.iter().copied().collect::<Vec<_>>(),
            params[range.clone()],
            "{name}"
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["vocab"].as_array().unwrap().len(), vocab.len());
    assert_eq!(meta["cell"], "lstm");
    assert_eq!(
        (meta["layers"].as_u64(), meta["embedding_size"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(meta["tensors"][0]["name"], "embed");
}

/// What a Python user does: safetensors.numpy and numpy.load, checked against
/// the checkpoint. Skips (with a message) where Python lacks the packages; CI installs them.
#[test]
fn python_loads_both_exports() {
    let probe = Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping: python3 with numpy and safetensors not found (pip install numpy safetensors)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (params, specs, _) = train(dir.path(), CELLS[2]);
    charrnn(dir.path())
        .args(["export", "-o", "m.safetensors"])
        .assert()
        .success();
    charrnn(dir.path())
        .args(["export", "-o", "m.npz"])
        .assert()
        .success();
    let script = r#"
import json, numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open
st = load_file("m.safetensors")
npz = np.load("m.npz")
meta = json.load(open("m.json"))
with safe_open("m.safetensors", "np") as f:
    assert json.loads(f.metadata()["vocab"]) == meta["vocab"]
for t in meta["tensors"]:
    a, b = st[t["name"]], npz[t["name"]]
    assert list(a.shape) == t["shape"] == list(b.shape), t
    assert np.array_equal(a.astype(np.float64), b), t["name"]
    print(t["name"], repr(float(b.astype(np.float64).sum())))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = crate::common::stdout(&out);
    for (name, _, range) in &specs {
        let line = printed
            .lines()
            .find(|l| l.split(' ').next() == Some(name.as_str()))
            .unwrap();
        let sum: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let expected: f64 = params[range.clone()].iter().sum();
        assert!(
            (sum - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
            "{name}: {sum} vs {expected}"
        );
    }
}
