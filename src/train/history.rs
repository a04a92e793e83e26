//! `loss_history.csv`: one row per logged iteration, appended and flushed as
//! training goes, so a crash loses no row that was already written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const HEADER: &str = "iteration,loss,smooth_loss,chars_per_sec,elapsed_s,val_loss";

#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("loss history {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "loss history {path}: first line is {found:?}, expected {HEADER:?}; is this a charrnn loss history?"
    )]
    Header { path: PathBuf, found: String },
    #[error("loss history {path}, line {line}: {reason}")]
    Row {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// One logged iteration; every loss is in nats per character. `loss` is that
/// iteration's training loss, `smooth_loss` its running average (min-char-rnn's
/// smooth_loss divided by seq_length), `val_loss` the validation loss when it was
/// measured at this iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub iteration: u64,
    pub loss: f64,
    pub smooth_loss: f64,
    pub chars_per_sec: f64,
    pub elapsed_s: f64,
    pub val_loss: Option<f64>,
}

pub struct LossLog {
    path: PathBuf,
    /// Opened for appending: every write lands at the end of the file.
    file: File,
}

impl LossLog {
    /// Starts a new history, replacing any file at `path`.
    pub fn create(path: &Path) -> Result<LossLog, HistoryError> {
        let io = |cause| HistoryError::Io {
            path: path.to_path_buf(),
            cause,
        };
        let mut file = File::create(path).map_err(io)?;
        writeln!(file, "{HEADER}").map_err(io)?;
        drop(file);
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok(LossLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Continues the history of a run resumed at `iteration`. Rows logged after
    /// that checkpoint (the run went on past it before it stopped) and a torn
    /// last line are dropped, so the file never holds a row twice. Returns the log
    /// and the number of rows dropped.
    pub fn resume(path: &Path, iteration: u64) -> Result<(LossLog, usize), HistoryError> {
        let io = |cause| HistoryError::Io {
            path: path.to_path_buf(),
            cause,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((LossLog::create(path)?, 0));
            }
            Err(e) => return Err(io(e)),
        };
        if bytes.is_empty() {
            return Ok((LossLog::create(path)?, 0));
        }
        let (complete, torn) = complete_lines(&bytes);
        let torn = usize::from(torn);
        let rows = parse(path, complete)?;
        let keep = rows.iter().take_while(|r| r.iteration <= iteration).count();
        let dropped = rows.len() - keep + torn;
        if dropped > 0 {
            let mut text = format!("{HEADER}\n").into_bytes();
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut text);
            for row in &rows[..keep] {
                w.serialize(row).map_err(|e| io(e.into()))?;
            }
            w.flush().map_err(io)?;
            drop(w);
            crate::io::fsutil::write_atomic(path, &text).map_err(io)?;
        }
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok((
            LossLog {
                path: path.to_path_buf(),
                file,
            },
            dropped,
        ))
    }

    /// Appends one row in a single write. If the write fails (a full disk), the
    /// part of the row that did land is cut off again, so the file never holds a
    /// torn row in its middle; the caller may carry on and append later rows.
    pub fn append(&mut self, row: &Row) -> Result<(), HistoryError> {
        let io = |cause| HistoryError::Io {
            path: self.path.clone(),
            cause,
        };
        let mut line = Vec::with_capacity(96);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(&mut line);
        w.serialize(row).map_err(|e| io(e.into()))?;
        w.flush().map_err(io)?;
        drop(w);
        let before = self.file.metadata().map_err(io)?.len();
        if let Err(e) = self.file.write_all(&line) {
            let _ = self.file.set_len(before);
            return Err(io(e));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a whole history file.
pub fn read(path: &Path) -> Result<Vec<Row>, HistoryError> {
    let bytes = std::fs::read(path).map_err(|cause| HistoryError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    parse(path, &bytes)
}

/// Reads a history that a run may still be appending to: a last line without
/// its newline (being written, or torn by a crash) is left out. Returns the rows
/// and whether such a line was left out.
pub fn read_live(path: &Path) -> Result<(Vec<Row>, bool), HistoryError> {
    let bytes = std::fs::read(path).map_err(|cause| HistoryError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let (complete, torn) = complete_lines(&bytes);
    if complete.is_empty() {
        // not even a whole header line: report it as the header problem it is
        return parse(path, &bytes).map(|rows| (rows, false));
    }
    Ok((parse(path, complete)?, torn))
}

/// The whole lines of a history, and whether a last line without its newline
/// (cut off mid-write) was left out.
fn complete_lines(bytes: &[u8]) -> (&[u8], bool) {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (&bytes[..end], end < bytes.len())
}

/// Parses the bytes of a history file (`path` names it in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, HistoryError> {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first)
        .trim_end_matches('\r')
        .to_string();
    if first != HEADER {
        return Err(HistoryError::Header {
            path: path.to_path_buf(),
            found: first,
        });
    }
    let mut reader = csv::Reader::from_reader(bytes);
    let mut rows = Vec::new();
    for result in reader.deserialize::<Row>() {
        let row = result.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            let reason = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => e.to_string(),
            };
            HistoryError::Row {
                path: path.to_path_buf(),
                line,
                reason,
            }
        })?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64) -> Row {
        let val_loss = (i == 200).then_some(1.75);
        Row {
            iteration: i,
            loss: 1.5 + i as f64,
            smooth_loss: 2.25,
            chars_per_sec: 1000.0,
            elapsed_s: 0.5,
            val_loss,
        }
    }

    #[test]
    fn create_append_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.csv");
        let mut log = LossLog::create(&path).unwrap();
        log.append(&row(100)).unwrap();
        log.append(&row(200)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "iteration,loss,smooth_loss,chars_per_sec,elapsed_s,val_loss\n100,101.5,2.25,"
        ));
        assert!(
            text.contains(",0.5,\n200,") && text.ends_with(",0.5,1.75\n"),
            "{text}"
        );
        assert_eq!(read(&path).unwrap(), vec![row(100), row(200)]);
    }

    #[test]
    fn resume_keeps_earlier_rows_drops_later_and_torn_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.csv");
        let mut log = LossLog::create(&path).unwrap();
        for i in [100, 200, 300] {
            log.append(&row(i)).unwrap();
        }
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "400,1.0,2").unwrap(); // torn row
        drop(f);
        let (mut log, dropped) = LossLog::resume(&path, 200).unwrap();
        assert_eq!(dropped, 2);
        log.append(&row(300)).unwrap();
        assert_eq!(read(&path).unwrap(), vec![row(100), row(200), row(300)]);
    }

    #[test]
    fn malformed_row_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.csv");
        std::fs::write(&path, format!("{HEADER}\n1,2,3,4,5,\n2,x,3,4,5,\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "a,b\n").unwrap();
        assert!(matches!(read(&path), Err(HistoryError::Header { .. })));
    }
}
