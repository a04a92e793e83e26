//! A source tree to one training text (Karpathy's Linux-source experiment):
//! every text file with a chosen extension, in path order, one after another.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::stackexchange::PrepareError;

/// What a run read, wrote and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes_out: u64,
    /// Files holding a NUL byte (images, objects, archives ...).
    pub binary: u64,
    /// Files that are not valid UTF-8 (another encoding, or binary without NULs).
    pub not_utf8: u64,
    /// Files or directories that could not be read (permissions, vanished), by path.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Files whose extension was not asked for.
    pub other_extension: u64,
}

/// Concatenates the files under `root` whose extension is in `exts` (any
/// file when empty; compared without case), skipping hidden files and
/// directories (`.git`), `skip` (the output itself), binary and non-UTF-8
/// files. Files are taken in sorted path order so the output is reproducible.
pub fn prepare(
    root: &Path,
    exts: &[String],
    skip: Option<&Path>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
    stop: &AtomicBool,
) -> Result<Summary, PrepareError> {
    let out_err = |cause| PrepareError::Io {
        path: PathBuf::from("output"),
        cause,
    };
    let meta = std::fs::metadata(root).map_err(|cause| PrepareError::Io {
        path: root.to_path_buf(),
        cause,
    })?;
    if !meta.is_dir() {
        let cause = io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory; give the top of a source tree",
        );
        return Err(PrepareError::Io {
            path: root.to_path_buf(),
            cause,
        });
    }
    let skip = skip.and_then(|p| p.canonicalize().ok());
    let mut summary = Summary::default();
    let walk = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        if stop.load(Ordering::Relaxed) {
            return Err(PrepareError::Interrupted);
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(Path::to_path_buf).unwrap_or_default();
                summary.unreadable.push((path, e.to_string()));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if !exts.is_empty() && !exts.contains(&ext) {
            summary.other_extension += 1;
            continue;
        }
        if skip
            .as_deref()
            .is_some_and(|s| path.canonicalize().is_ok_and(|p| p == s))
        {
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                summary.unreadable.push((path.to_path_buf(), e.to_string()));
                continue;
            }
        };
        if bytes.contains(&0) {
            summary.binary += 1;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            summary.not_utf8 += 1;
            continue;
        };
        if text.is_empty() {
            continue;
        }
        out.write_all(text.as_bytes()).map_err(out_err)?;
        summary.bytes_out += text.len() as u64;
        if !text.ends_with('\n') {
            out.write_all(b"\n").map_err(out_err)?;
            summary.bytes_out += 1;
        }
        summary.files += 1;
        progress(summary.files);
    }
    Ok(summary)
}
