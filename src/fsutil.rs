//! Crash-safe file replacement and early writability checks.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory a file lives in ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replaces `path` with `bytes` so that at every moment the file holds either its
/// old or its new content: write a temp file in the same directory, fsync it,
/// rename it over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // the rename itself is durable only once the directory is synced
        if let Ok(dir) = File::open(parent_dir(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks, before any long work starts, that `path` can later be written with
/// [`write_atomic`]: creates missing parent directories and writes a probe file.
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
    }
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir)?;
    let probe = temp_path(path);
    File::create(&probe)?.write_all(b"probe")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn check_writable_creates_directories_and_refuses_impossible_paths() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("a/b/c.ckpt")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        assert!(check_writable(&file.join("c.ckpt")).is_err());
        assert!(check_writable(dir.path()).is_err());
    }
}
