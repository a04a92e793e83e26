//! What goes wrong preparing a Stack Exchange dump: the container and the
//! XML inside it, with the file and the place.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PrepareError {
    #[error("{path}, line {line}, column {column}: malformed XML: {message}")]
    Xml {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}, line {line}, column {column}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "{path} is not a Stack Exchange Posts.xml: {looks}. `charrnn prepare stackexchange` reads a site's \
         Posts.xml, plain or as the .7z the dump is published as, or gzip, bzip2, xz or zstd of it"
    )]
    NotPosts { path: PathBuf, looks: String },
    #[error("temp files for sorting posts (in {dir}): {cause}")]
    Temp { dir: PathBuf, cause: io::Error },
    #[error("interrupted")]
    Interrupted,
}
