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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn temp_path(path: &Path) -> PathBuf {
    parent_dir(path).join(format!(".{}.tmp-{}", file_name(path), std::process::id()))
}

/// Removes the temp files beside `path` (`.NAME.tmp-PID`) whose writer's PID
/// passes `dead`; returns how many were removed.
fn remove_temps(path: &Path, dead: impl Fn(&str) -> bool) -> usize {
    let prefix = format!(".{}.tmp-", file_name(path));
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)
                .is_some_and(&dead)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Removes temp files that an earlier process left beside `path` when it was
/// killed mid-write. Call it only while holding `path`'s [`Lock`], so that no
/// live writer owns them. Returns how many were removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    remove_temps(path, |_| true)
}

/// Like [`remove_stale_temps`], without holding a lock: removes only the temp
/// files whose writer (the PID in the name) is no longer running. Linux only
/// (it asks /proc); elsewhere it removes nothing.
pub fn remove_dead_temps(path: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    remove_temps(path, |pid| {
        pid.parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    })
}

/// An advisory lock that keeps two processes from writing the same file: an
/// exclusive `flock` on a hidden `.NAME.lock` beside it, held while this value
/// lives and released by the OS if the process dies. The lock file stays (a
/// lock file removed while others may open it is no lock); it holds the
/// holder's process id, for the message another process shows.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{path} is in use by another charrnn process{holder}; wait for it to finish, or use another path \
         (lock file {lock})"
    )]
    Held {
        path: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock {path} (lock file {lock}): {cause}")]
    Io {
        path: PathBuf,
        lock: PathBuf,
        cause: io::Error,
    },
}

impl Lock {
    pub fn lock_path(path: &Path) -> PathBuf {
        parent_dir(path).join(format!(".{}.lock", file_name(path)))
    }

    /// Takes the lock on `path` or fails at once, naming the holder.
    pub fn acquire(path: &Path) -> Result<Lock, LockError> {
        let lock = Lock::lock_path(path);
        let io = |cause| LockError::Io {
            path: path.to_path_buf(),
            lock: lock.clone(),
            cause,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&lock).unwrap_or_default();
                let holder = match pid.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    lock,
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Lock { _file: file })
    }
}

/// Replaces `path` with `bytes` so that at every moment the file holds either its
/// old or its new content (an [`AtomicFile`] written in one go).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// A file written as a stream and put in place only when complete: the bytes go
/// to a temp file beside `path`, which [`AtomicFile::commit`] fsyncs and renames
/// over it, then fsyncs the directory.
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
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
        })
    }

    pub fn commit(mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let result = (|| {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&self.tmp, &self.path)?;
            // the rename itself is durable only once the directory is synced
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
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ));
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
    fn a_second_lock_on_the_same_path_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let first = Lock::acquire(&path).unwrap();
        let err = Lock::acquire(&path).unwrap_err().to_string();
        assert!(
            err.contains("in use by another charrnn process") && err.contains(".run.ckpt.lock"),
            "{err}"
        );
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        drop(first);
        Lock::acquire(&path).unwrap();
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        std::fs::write(dir.path().join(".run.ckpt.tmp-123"), "x").unwrap();
        std::fs::write(dir.path().join(".other.tmp-123"), "x").unwrap();
        assert_eq!(remove_stale_temps(&path), 1);
        assert!(dir.path().join(".other.tmp-123").exists());
        // without a lock, only a dead writer's file goes
        let mine = dir
            .path()
            .join(format!(".run.ckpt.tmp-{}", std::process::id()));
        std::fs::write(&mine, "x").unwrap();
        std::fs::write(dir.path().join(".run.ckpt.tmp-4000000000"), "x").unwrap();
        assert_eq!(remove_dead_temps(&path), 1);
        assert!(mine.exists());
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
