//! A Stack Exchange data dump's Posts.xml to training text: each question's
//! title and body, then its answers, every post as plain text, posts separated
//! by a blank line.
//!
//! The dump lists posts by Id, so a question's answers are scattered through the
//! rest of the file. Grouping them in memory would grow with the dump (100 GB
//! for Stack Overflow), so posts are buffered up to a fixed number of bytes,
//! sorted by (question, kind, id), and spilled to anonymous temp files that are
//! merged at the end: an external sort in bounded memory. The Posts.xml may be
//! plain or compressed, or inside the site's .7z (see [`super::dump`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use quick_xml::events::{BytesStart, Event};

use super::dump::{self, Container};
use super::html;

pub use super::error::PrepareError;

/// Which posts to keep.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Keep at most this many questions (with all their answers).
    pub max_posts: Option<u64>,
    /// Keep only questions and answers scoring at least this.
    pub min_score: Option<i64>,
    /// Keep only questions carrying one of these tags (lowercase); empty keeps all.
    pub tags: Vec<String>,
}

/// What a run read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub questions: u64,
    pub answers: u64,
    /// Questions left out by --min-score, --tags or --max-posts.
    pub questions_filtered: u64,
    /// Answers left out by --min-score or because their question was left out.
    pub answers_filtered: u64,
    /// Rows of other kinds (tag wikis, excerpts, ...).
    pub other_rows: u64,
    /// Temp files the sort spilled to (0 when everything fit in memory).
    pub spills: usize,
    pub bytes_out: u64,
}

/// A post's place in the output: its question, questions before answers, then Id.
type Key = (u64, u8, u64);

const QUESTION: u8 = 0;
const ANSWER: u8 = 1;

/// Reads `input` and writes the training text to `out`. `buffer_bytes` bounds
/// the post text held in memory before a spill to a temp file in `temp_dir`.
/// `progress` is told the bytes of `input` read so far (compressed bytes, for a
/// compressed one); `stop` ends the run early with [`PrepareError::Interrupted`].
pub fn prepare(
    input: &Path,
    out: &mut dyn Write,
    filter: &Filter,
    temp_dir: &Path,
    buffer_bytes: usize,
    progress: &dyn Fn(u64),
    stop: &AtomicBool,
) -> Result<Summary, PrepareError> {
    let container = dump::detect(input)?;
    let read = Arc::new(AtomicU64::new(0));
    dump::with_posts(input, container, &read, |posts| {
        let bytes_read = || read.load(Ordering::Relaxed);
        sort_posts(
            input,
            container,
            posts,
            out,
            filter,
            (temp_dir, buffer_bytes),
            &|| progress(bytes_read()),
            stop,
        )
    })
}

/// [`prepare`] over the decompressed Posts.xml `posts`; `progress` reports.
#[allow(clippy::too_many_arguments)]
fn sort_posts(
    input: &Path,
    container: Container,
    posts: &mut dyn BufRead,
    out: &mut dyn Write,
    filter: &Filter,
    (temp_dir, buffer_bytes): (&Path, usize),
    progress: &dyn Fn(),
    stop: &AtomicBool,
) -> Result<Summary, PrepareError> {
    let line_column = |offset| line_column(input, container, offset);
    let mut reader = quick_xml::Reader::from_reader(posts);
    let mut sorter = Sorter::new(temp_dir, buffer_bytes);
    let mut kept = IdSet::default();
    let mut summary = Summary::default();
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            let message = e.to_string();
            let (line, column) = line_column(reader.error_position());
            PrepareError::Xml {
                path: input.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
        let row_error = |(offset, message): (u64, String)| {
            let (line, column) = line_column(at + offset);
            PrepareError::Row {
                path: input.to_path_buf(),
                line,
                column,
                message,
            }
        };
        match event {
            Event::Eof => break,
            Event::Empty(e) | Event::Start(e) if e.name().as_ref() == b"row" => {
                summary.rows += 1;
                let post = Post::parse(&e).map_err(row_error)?;
                match post.kind {
                    1 => {
                        let full = filter.max_posts.is_some_and(|n| summary.questions >= n);
                        if full || !post.passes(filter, true) {
                            summary.questions_filtered += 1;
                            continue;
                        }
                        let title = html::to_text(&post.title);
                        let body = html::to_text(&post.body);
                        kept.insert(post.id);
                        summary.questions += 1;
                        sorter.push(
                            (post.id, QUESTION, post.id),
                            format!("{title}\n{body}").trim().to_string(),
                        )?;
                    }
                    2 => {
                        let parent = post
                            .parent
                            .ok_or_else(|| row_error((0, "answer without a ParentId".into())))?;
                        if !kept.contains(parent) || !post.passes(filter, false) {
                            summary.answers_filtered += 1;
                            continue;
                        }
                        summary.answers += 1;
                        sorter.push((parent, ANSWER, post.id), html::to_text(&post.body))?;
                    }
                    _ => summary.other_rows += 1,
                }
                if summary.rows.is_multiple_of(256) {
                    progress();
                    if stop.load(Ordering::Relaxed) {
                        return Err(PrepareError::Interrupted);
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    progress();
    summary.spills = sorter.runs.len();
    summary.bytes_out = sorter.finish(out, stop)?;
    Ok(summary)
}

/// The attributes of one `<row>` that matter here, unescaped.
struct Post {
    id: u64,
    kind: u32,
    parent: Option<u64>,
    score: i64,
    title: String,
    body: String,
    tags: String,
}

impl Post {
    /// The row's post, or where in the row (bytes from its `<`) and what is wrong.
    fn parse(e: &BytesStart) -> Result<Post, (u64, String)> {
        let mut post = Post {
            id: 0,
            kind: 0,
            parent: None,
            score: 0,
            title: String::new(),
            body: String::new(),
            tags: String::new(),
        };
        let mut has_id = false;
        for attr in e.attributes() {
            let attr = attr.map_err(|e| {
                use quick_xml::events::attributes::AttrError::*;
                let (ExpectedEq(at)
                | ExpectedValue(at)
                | UnquotedValue(at)
                | ExpectedQuote(at, _)
                | Duplicated(at, _)) = e;
                // positions count from the tag name, one byte after the '<'
                (at as u64 + 1, format!("malformed XML: {e}"))
            })?;
            let key = attr.key.as_ref();
            if !matches!(
                key,
                b"Id" | b"PostTypeId" | b"ParentId" | b"Score" | b"Title" | b"Body" | b"Tags"
            ) {
                continue;
            }
            let name = String::from_utf8_lossy(key).into_owned();
            let value = attr
                .unescape_value()
                .map_err(|e| (0, format!("attribute {name}: {e}")))?;
            let number = |v: &str| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| (0, format!("attribute {name}={v:?} is not a number")))
            };
            let id = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| (0, format!("attribute {name}={v:?} is not a post Id")))
            };
            match key {
                b"Id" => (post.id, has_id) = (id(&value)?, true),
                b"PostTypeId" => post.kind = id(&value)?.try_into().unwrap_or(u32::MAX),
                b"ParentId" => post.parent = Some(id(&value)?),
                b"Score" => post.score = number(&value)?,
                b"Title" => post.title = value.into_owned(),
                b"Body" => post.body = value.into_owned(),
                _ => post.tags = value.into_owned(),
            }
        }
        if !has_id {
            return Err((
                0,
                "row without an Id attribute; is this a Stack Exchange Posts.xml?".into(),
            ));
        }
        Ok(post)
    }

    fn passes(&self, filter: &Filter, question: bool) -> bool {
        if filter.min_score.is_some_and(|s| self.score < s) {
            return false;
        }
        if question && !filter.tags.is_empty() {
            // "<python><pandas>" in older dumps, "|python|pandas|" in newer ones
            let mut tags = self.tags.split(['<', '>', '|']).filter(|t| !t.is_empty());
            return tags.any(|t| filter.tags.iter().any(|f| f.eq_ignore_ascii_case(t)));
        }
        true
    }
}

/// Kept question Ids: a bitmap for the Ids real dumps use (dense, below 2^28,
/// at most 32 MB), a hash set beyond, so a stray huge Id costs nothing.
#[derive(Default)]
struct IdSet {
    bits: Vec<u64>,
    far: HashSet<u64>,
}

impl IdSet {
    const DENSE: u64 = 1 << 28;

    fn insert(&mut self, id: u64) {
        if id < Self::DENSE {
            let word = (id / 64) as usize;
            if word >= self.bits.len() {
                self.bits.resize((word + 1).next_power_of_two(), 0);
            }
            self.bits[word] |= 1 << (id % 64);
        } else {
            self.far.insert(id);
        }
    }

    fn contains(&self, id: u64) -> bool {
        if id < Self::DENSE {
            self.bits
                .get((id / 64) as usize)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
        } else {
            self.far.contains(&id)
        }
    }
}

/// External sort of (key, text) records.
struct Sorter {
    dir: PathBuf,
    limit: usize,
    held: Vec<(Key, String)>,
    held_bytes: usize,
    runs: Vec<File>,
}

impl Sorter {
    fn new(dir: &Path, limit: usize) -> Sorter {
        Sorter {
            dir: dir.to_path_buf(),
            limit,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
        }
    }

    fn temp_error(&self, cause: io::Error) -> PrepareError {
        PrepareError::Temp {
            dir: self.dir.clone(),
            cause,
        }
    }

    fn push(&mut self, key: Key, text: String) -> Result<(), PrepareError> {
        self.held_bytes += text.len() + 32;
        self.held.push((key, text));
        if self.held_bytes >= self.limit {
            self.spill()
        } else {
            Ok(())
        }
    }

    /// Writes the held records, sorted, to a new run file.
    fn spill(&mut self) -> Result<(), PrepareError> {
        self.held.sort_unstable_by_key(|r| r.0);
        // unlinked at creation: nothing is left behind, even after a kill
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| self.temp_error(e))?;
        let mut w = BufWriter::with_capacity(1 << 16, file);
        let result = (|| {
            for ((q, kind, id), text) in self.held.drain(..) {
                w.write_all(&q.to_le_bytes())?;
                w.write_all(&[kind])?;
                w.write_all(&id.to_le_bytes())?;
                w.write_all(&(text.len() as u64).to_le_bytes())?;
                w.write_all(text.as_bytes())?;
            }
            let mut file = w.into_inner().map_err(|e| e.into_error())?;
            file.rewind()?;
            Ok(file)
        })();
        let file = result.map_err(|e| self.temp_error(e))?;
        self.held_bytes = 0;
        self.runs.push(file);
        Ok(())
    }

    /// Writes every record in key order, one blank line between posts; returns
    /// the bytes written.
    fn finish(mut self, out: &mut dyn Write, stop: &AtomicBool) -> Result<u64, PrepareError> {
        let out_err = |cause| PrepareError::Io {
            path: PathBuf::from("output"),
            cause,
        };
        let mut written = 0u64;
        let mut emit = |text: &str| -> Result<(), PrepareError> {
            if text.is_empty() {
                return Ok(());
            }
            if written > 0 {
                out.write_all(b"\n").map_err(out_err)?;
                written += 1;
            }
            out.write_all(text.as_bytes()).map_err(out_err)?;
            out.write_all(b"\n").map_err(out_err)?;
            written += text.len() as u64 + 1;
            Ok(())
        };
        if self.runs.is_empty() {
            self.held.sort_unstable_by_key(|r| r.0);
            for (_, text) in &self.held {
                emit(text)?;
            }
            return Ok(written);
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        let dir = self.dir.clone();
        let temp_err = |cause| PrepareError::Temp {
            dir: dir.clone(),
            cause,
        };
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .into_iter()
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .collect();
        let mut heads: Vec<Option<String>> = vec![None; readers.len()];
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((key, text)) = read_record(r).map_err(temp_err)? {
                heads[i] = Some(text);
                heap.push(Reverse((key, i)));
            }
        }
        let mut n = 0u64;
        while let Some(Reverse((_, i))) = heap.pop() {
            if let Some(text) = heads[i].take() {
                emit(&text)?;
            }
            if let Some((key, text)) = read_record(&mut readers[i]).map_err(temp_err)? {
                heads[i] = Some(text);
                heap.push(Reverse((key, i)));
            }
            n += 1;
            if n.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
                return Err(PrepareError::Interrupted);
            }
        }
        Ok(written)
    }
}

fn read_record(r: &mut impl Read) -> io::Result<Option<(Key, String)>> {
    let mut head = [0u8; 25];
    match r.read_exact(&mut head[..1]) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    r.read_exact(&mut head[1..])?;
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
    let key = (word(0), head[8], word(9));
    let mut text = vec![0u8; word(17) as usize];
    r.read_exact(&mut text)?;
    let text =
        String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((key, text)))
}

/// The 1-based line and column (in bytes, as the XML reader counts) of byte
/// `offset` of `path`; counted only when reporting an error.
/// The line and column of byte `offset` of the (decompressed) Posts.xml,
/// counted by reading it again (only when reporting an error).
fn line_column(path: &Path, container: Container, offset: u64) -> (u64, u64) {
    let at = dump::with_posts(path, container, &Arc::new(AtomicU64::new(0)), |posts| {
        Ok(crate::io::data::position(posts, offset))
    });
    at.map_or((0, 0), |at| (at.line as u64, at.byte_column as u64))
}
