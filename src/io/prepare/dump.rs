//! A Stack Exchange dump's Posts.xml as it is published, or as a user has it:
//! plain, or compressed (gzip, bzip2, xz, zstd), or inside the site's `.7z`
//! archive, told apart by their first bytes (not the file's name) and read as a
//! stream, so a 20 GB archive is never unpacked to disk. The bytes read from the
//! file (compressed, for a compressed one) are counted for the progress bar.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::PrepareError;

/// How the posts are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Xml,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    SevenZip,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Container::Xml => "XML",
            Container::Gzip => "gzip",
            Container::Bzip2 => "bzip2",
            Container::Xz => "xz",
            Container::Zstd => "zstd",
            Container::SevenZip => "7z",
        }
    }
}

/// The container a file's first bytes say it is, or what it looks like instead.
pub fn detect(path: &Path) -> Result<Container, PrepareError> {
    let mut head = [0u8; 512];
    let n = read_head(
        File::open(path).map_err(|cause| io_err(path, cause))?,
        &mut head,
    )
    .map_err(|cause| io_err(path, cause))?;
    let head = &head[..n];
    let found = match head {
        [0x1f, 0x8b, ..] => Container::Gzip,
        [b'B', b'Z', b'h', ..] => Container::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Container::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Container::Zstd,
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => Container::SevenZip,
        _ if starts_like_xml(head) => Container::Xml,
        _ => return Err(not_posts(path, head, "")),
    };
    Ok(found)
}

/// Reads up to `buf.len()` bytes from the start of `r`.
fn read_head(mut r: impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// XML starts with `<` after an optional byte-order mark and white space.
fn starts_like_xml(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// The error for something that is neither Posts.xml nor an archive of it,
/// saying what it looks like; `inside` names the container it came out of.
fn not_posts(path: &Path, head: &[u8], inside: &str) -> PrepareError {
    let looks = match head {
        [] => "it is empty".to_string(),
        [b'P', b'K', 3, 4, ..] => {
            "it is a zip archive (unzip it, or use the .7z the dump is published as)".into()
        }
        [b'%', b'P', b'D', b'F', ..] => "it is a PDF".into(),
        [b'R', b'a', b'r', b'!', ..] => "it is a RAR archive".into(),
        _ if head.len() > 262 && &head[257..262] == b"ustar" => {
            "it is a tar archive (untar it first)".into()
        }
        _ => match std::str::from_utf8(head)
            .or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]))
        {
            Ok(text)
                if !text.is_empty()
                    && text.chars().all(|c| !c.is_control() || c.is_whitespace()) =>
            {
                let start: String = text.chars().take(40).collect();
                format!("it is plain text, starting {start:?}")
            }
            _ => {
                let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("it is binary data starting with bytes {}", shown.join(" "))
            }
        },
    };
    PrepareError::NotPosts {
        path: path.to_path_buf(),
        looks: format!("{looks}{inside}"),
    }
}

fn io_err(path: &Path, cause: io::Error) -> PrepareError {
    PrepareError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// A file that counts the bytes read from it.
struct Counted {
    file: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for Counted {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let at = self.file.seek(pos)?;
        self.read.store(at, Ordering::Relaxed);
        Ok(at)
    }
}

/// Runs `each` on the Posts.xml in `path` (stored as `container`), decompressed
/// as it is read; `read` counts the file's bytes read so far. For a 7z archive
/// the entry is the one named Posts.xml (in any folder), or its only XML file.
pub fn with_posts<T>(
    path: &Path,
    container: Container,
    read: &Arc<AtomicU64>,
    each: impl FnOnce(&mut dyn BufRead) -> Result<T, PrepareError>,
) -> Result<T, PrepareError> {
    let file = File::open(path).map_err(|cause| io_err(path, cause))?;
    let counted = Counted {
        file,
        read: Arc::clone(read),
    };
    let decoded: Box<dyn Read> = match container {
        Container::Xml => Box::new(counted),
        Container::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(counted))),
        Container::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(counted))),
        Container::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(BufReader::new(
            counted,
        ))),
        Container::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(BufReader::new(counted)).map_err(|e| {
                io_err(
                    path,
                    io::Error::other(format!("not a readable zstd stream: {e}")),
                )
            })?,
        ),
        Container::SevenZip => return in_seven_zip(path, counted, each),
    };
    let mut reader = BufReader::with_capacity(1 << 16, decoded);
    check_xml(path, &mut reader, container)?;
    each(&mut reader)
}

/// Checks that a decompressed stream is XML before the parser sees it.
fn check_xml(
    path: &Path,
    reader: &mut impl BufRead,
    container: Container,
) -> Result<(), PrepareError> {
    if container == Container::Xml {
        return Ok(());
    }
    let head = reader.fill_buf().map_err(|cause| {
        io_err(
            path,
            io::Error::new(
                cause.kind(),
                format!("reading the {} stream: {cause}", container.name()),
            ),
        )
    })?;
    if starts_like_xml(head) {
        Ok(())
    } else {
        let head = head[..head.len().min(512)].to_vec();
        Err(not_posts(
            path,
            &head,
            &format!(" inside the {} stream", container.name()),
        ))
    }
}

fn in_seven_zip<T>(
    path: &Path,
    counted: Counted,
    each: impl FnOnce(&mut dyn BufRead) -> Result<T, PrepareError>,
) -> Result<T, PrepareError> {
    let seven = |e: sevenz_rust2::Error| {
        io_err(
            path,
            io::Error::other(format!("reading the 7z archive: {e}")),
        )
    };
    let mut archive = sevenz_rust2::ArchiveReader::new(counted, sevenz_rust2::Password::empty())
        .map_err(seven)?;
    // one decoding thread: the parallel LZMA2 reader decodes ahead of the parser
    // without bound (a 1 GB Posts.xml in a .7z peaked at 1.4 GB RSS with two)
    archive.set_thread_count(1);
    let names: Vec<String> = archive
        .archive()
        .files
        .iter()
        .filter(|f| f.has_stream && !f.is_directory)
        .map(|f| f.name.clone())
        .collect();
    let base = |n: &str| {
        n.rsplit(['/', '\\'])
            .next()
            .unwrap_or(n)
            .to_ascii_lowercase()
    };
    let xml: Vec<&String> = names.iter().filter(|n| base(n).ends_with(".xml")).collect();
    let wanted = match names.iter().find(|n| base(n) == "posts.xml") {
        Some(name) => name.clone(),
        None if xml.len() == 1 => xml[0].clone(),
        None => {
            return Err(PrepareError::NotPosts {
                path: path.to_path_buf(),
                looks: format!(
                    "it is a 7z archive without a Posts.xml (it holds {})",
                    names.join(", ")
                ),
            });
        }
    };
    let (mut each, mut result) = (Some(each), None);
    archive
        .for_each_entries_with_decision(|entry, reader| {
            if entry.name != wanted {
                return Ok(sevenz_rust2::EntryDecision::Continue);
            }
            let mut reader = BufReader::with_capacity(1 << 16, reader);
            let run = check_xml(path, &mut reader, Container::SevenZip)
                .and_then(|()| (each.take().expect("one Posts.xml"))(&mut reader));
            result = Some(run);
            Ok(sevenz_rust2::EntryDecision::Stop)
        })
        .map_err(seven)?;
    result.unwrap_or_else(|| {
        Err(io_err(
            path,
            io::Error::other(format!("{wanted} is missing from the 7z archive")),
        ))
    })
}
