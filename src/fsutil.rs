//! Crash-safe file replacement and early writability checks.

use std::fs::File;
use std::io::{self, BufWriter, Write};
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

/// A file written as a stream and put in place only when complete: the bytes go
/// to a temp file beside `path`, which [`AtomicFile::commit`] renames over it.
/// Dropped without a commit (an error, Ctrl+C), it removes the temp file, so a
/// reader of `path` never sees half an output.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let tmp = temp_path(path);
        let out = BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        Ok(AtomicFile { path: path.to_path_buf(), tmp, out: Some(out) })
    }

    pub fn commit(mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else { return Ok(()) };
        let result = (|| {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&self.tmp, &self.path)?;
            if let Ok(dir) = File::open(parent_dir(&self.path)) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().map_or(Ok(0), |o| o.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.write_all(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new content").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(f); // abandoned: old content stays, no temp file left
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new content").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content");
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
