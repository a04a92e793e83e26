//! The training text as ids, read from disk in two streaming passes so that a
//! file of any size costs about its own size in memory, not four or five times
//! it: a scan (UTF-8 check, character counts, fingerprint), then an encode into
//! the narrowest ids the vocabulary allows (u8 up to 256 characters, u16 up to
//! 65,536, u32 beyond).

use super::utf8::{self, PieceError};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::io::data::{self, DataError, Position, TextInfo, Unknown, Vocab};

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// The symbol rare characters become under `--max-vocab`.
pub const UNKNOWN: char = '\u{FFFD}';

/// Encoded text, in the narrowest integer the vocabulary fits.
#[derive(Clone, Debug, PartialEq)]
pub enum Ids {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Ids {
    /// Bytes per id for a vocabulary of `vocab_len` characters: 1, 2 or 4.
    pub fn width_for(vocab_len: usize) -> usize {
        if vocab_len <= 1 << 8 {
            1
        } else if vocab_len <= 1 << 16 {
            2
        } else {
            4
        }
    }

    fn with_capacity(vocab_len: usize, n: usize) -> Ids {
        match Ids::width_for(vocab_len) {
            1 => Ids::U8(Vec::with_capacity(n)),
            2 => Ids::U16(Vec::with_capacity(n)),
            _ => Ids::U32(Vec::with_capacity(n)),
        }
    }

    fn push(&mut self, id: u32) {
        // ids are below the vocabulary size, which chose the width
        match self {
            Ids::U8(v) => v.push(id as u8),
            Ids::U16(v) => v.push(id as u16),
            Ids::U32(v) => v.push(id),
        }
    }

    pub fn as_slice(&self) -> IdSlice<'_> {
        match self {
            Ids::U8(v) => IdSlice::U8(v),
            Ids::U16(v) => IdSlice::U16(v),
            Ids::U32(v) => IdSlice::U32(v),
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per id.
    pub fn width(&self) -> usize {
        match self {
            Ids::U8(_) => 1,
            Ids::U16(_) => 2,
            Ids::U32(_) => 4,
        }
    }
}

/// A borrowed run of ids, whatever their width.
#[derive(Clone, Copy, Debug)]
pub enum IdSlice<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl<'a> IdSlice<'a> {
    pub fn len(&self) -> usize {
        match self {
            IdSlice::U8(s) => s.len(),
            IdSlice::U16(s) => s.len(),
            IdSlice::U32(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> u32 {
        match self {
            IdSlice::U8(s) => u32::from(s[i]),
            IdSlice::U16(s) => u32::from(s[i]),
            IdSlice::U32(s) => s[i],
        }
    }

    pub fn split_at(&self, mid: usize) -> (IdSlice<'a>, IdSlice<'a>) {
        match *self {
            IdSlice::U8(s) => (IdSlice::U8(&s[..mid]), IdSlice::U8(&s[mid..])),
            IdSlice::U16(s) => (IdSlice::U16(&s[..mid]), IdSlice::U16(&s[mid..])),
            IdSlice::U32(s) => (IdSlice::U32(&s[..mid]), IdSlice::U32(&s[mid..])),
        }
    }

    pub fn to_vec(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

impl<'a> From<&'a [u32]> for IdSlice<'a> {
    fn from(s: &'a [u32]) -> Self {
        IdSlice::U32(s)
    }
}

impl<'a> From<&'a Vec<u32>> for IdSlice<'a> {
    fn from(s: &'a Vec<u32>) -> Self {
        IdSlice::U32(s)
    }
}

/// Where the text comes from; read once per pass.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    Bytes {
        name: String,
        bytes: Cow<'static, [u8]>,
    },
}

impl Source {
    /// The file at `path`, or without one the corpus built into the binary.
    pub fn file_or_builtin(path: Option<&Path>) -> Source {
        match path {
            Some(path) => Source::File(path.to_path_buf()),
            None => Source::Bytes {
                name: data::BUILTIN_NAME.into(),
                bytes: data::BUILTIN_TEXT.as_bytes().into(),
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Source::File(p) => Box::new(File::open(p)?),
            Source::Bytes { bytes, .. } => Box::new(&bytes[..]),
        })
    }

    fn io(&self, cause: io::Error) -> DataError {
        DataError::Io {
            name: self.name(),
            cause,
        }
    }

    /// Feeds the text to `each` in whole-character pieces; `each` gets the byte
    /// offset of the piece. Stops at the first invalid UTF-8 with its offset.
    fn pieces(
        &self,
        mut each: impl FnMut(u64, &str) -> Result<(), DataError>,
    ) -> Result<u64, DataError> {
        self.pieces_while(|offset, s| each(offset, s).map(|()| true))
    }

    /// [`Source::pieces`] until `each` returns false (then the bytes read so far).
    fn pieces_while(
        &self,
        each: impl FnMut(u64, &str) -> Result<bool, DataError>,
    ) -> Result<u64, DataError> {
        let r = self.open().map_err(|e| self.io(e))?;
        utf8::pieces(r, CHUNK, each).map_err(|e| match e {
            PieceError::Io(e) => self.io(e),
            PieceError::Invalid { offset } => self.invalid_utf8(offset),
            PieceError::Each(e) => e,
        })
    }

    /// Where byte `offset` is, counted by reading again (only when reporting an error).
    fn locate(&self, offset: u64) -> Position {
        match self.open() {
            Ok(r) => data::position(r, offset),
            Err(_) => Position {
                line: 0,
                byte_column: 0,
                char_column: 0,
                byte: 0,
            },
        }
    }

    fn invalid_utf8(&self, offset: u64) -> DataError {
        let at = self.locate(offset);
        DataError::InvalidUtf8 {
            name: self.name(),
            byte: at.byte,
            offset: offset as usize,
            line: at.line,
            column: at.char_column,
        }
    }
}

/// Adds each byte's occurrences (all below 128) to `counts`. Four tables in
/// turn, so that runs of one byte do not wait on the same counter.
fn count_bytes(bytes: &[u8], counts: &mut [u64; 128]) {
    let mut t = [[0u32; 128]; 4];
    // u32 counters cannot overflow within one chunk (CHUNK < 2^32)
    let mut quads = bytes.chunks_exact(4);
    for q in &mut quads {
        t[0][q[0] as usize & 127] += 1;
        t[1][q[1] as usize & 127] += 1;
        t[2][q[2] as usize & 127] += 1;
        t[3][q[3] as usize & 127] += 1;
    }
    for &b in quads.remainder() {
        t[0][b as usize & 127] += 1;
    }
    for (i, c) in counts.iter_mut().enumerate() {
        *c += (t[0][i] + t[1][i] + t[2][i] + t[3][i]) as u64;
    }
}

/// What the first pass learned: the text's fingerprint and character counts.
#[derive(Clone, Debug)]
pub struct Scan {
    pub source: Source,
    pub info: TextInfo,
    /// Occurrences of each distinct character.
    pub counts: BTreeMap<char, u64>,
}

/// Rare characters that `--max-vocab` folded into [`UNKNOWN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    pub distinct: usize,
    pub occurrences: u64,
}

/// Reads the text once: checks it is non-empty UTF-8 (reporting the first bad
/// byte with its line and column), counts characters, fingerprints the bytes.
pub fn scan(source: Source) -> Result<Scan, DataError> {
    let mut ascii = [0u64; 128];
    let mut others: HashMap<char, u64> = HashMap::new();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut chars = 0u64;
    let bytes = source.pieces(|_, s| {
        hasher.update(s.as_bytes());
        if s.is_ascii() {
            count_bytes(s.as_bytes(), &mut ascii);
            chars += s.len() as u64;
        } else {
            for c in s.chars() {
                chars += 1;
                match u8::try_from(c) {
                    Ok(b) if b < 128 => ascii[b as usize] += 1,
                    _ => *others.entry(c).or_default() += 1,
                }
            }
        }
        Ok(())
    })?;
    if bytes == 0 {
        return Err(DataError::Empty {
            name: source.name(),
        });
    }
    let mut counts: BTreeMap<char, u64> = others.into_iter().collect();
    counts.extend(
        (0u8..128)
            .filter(|&b| ascii[b as usize] > 0)
            .map(|b| (char::from(b), ascii[b as usize])),
    );
    let info = TextInfo {
        name: source.name(),
        chars,
        bytes,
        hash: hasher.digest(),
    };
    Ok(Scan {
        source,
        info,
        counts,
    })
}

impl Scan {
    /// The vocabulary of a new run: every character, or with `max_vocab` the
    /// `max_vocab - 1` most frequent plus [`UNKNOWN`] for all the others.
    pub fn vocab(&self, max_vocab: Option<usize>) -> (Vocab, Option<Folded>) {
        let all: Vec<char> = self.counts.keys().copied().collect();
        let Some(max) = max_vocab.filter(|&m| all.len() > m) else {
            return (
                Vocab::from_sorted(all).expect("distinct sorted characters"),
                None,
            );
        };
        let mut by_count: Vec<(char, u64)> = self
            .counts
            .iter()
            .filter(|(c, _)| **c != UNKNOWN)
            .map(|(&c, &n)| (c, n))
            .collect();
        // most frequent first; ties in character order, so the choice is reproducible
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let keep = max.saturating_sub(1).max(1);
        let folded = Folded {
            distinct: all.len() - keep,
            occurrences: by_count[keep.min(by_count.len())..]
                .iter()
                .map(|x| x.1)
                .sum::<u64>()
                + self.counts.get(&UNKNOWN).copied().unwrap_or(0),
        };
        let mut kept: Vec<char> = by_count[..keep.min(by_count.len())]
            .iter()
            .map(|x| x.0)
            .collect();
        kept.push(UNKNOWN);
        kept.sort_unstable();
        (
            Vocab::from_sorted(kept).expect("distinct sorted characters"),
            Some(folded),
        )
    }

    /// Reads the text again and encodes it. Characters outside `vocab` become
    /// [`UNKNOWN`] when `fold` (and the vocabulary has it); otherwise the first
    /// one is an error naming its line and column. Fails if the file changed
    /// since the scan.
    pub fn encode(&self, vocab: &Vocab, fold: bool) -> Result<Ids, DataError> {
        self.encode_with(vocab, fold, false).map(|(ids, _)| ids)
    }

    /// [`Scan::encode`] for a model that did not train on this text: characters
    /// outside `vocab` are left out and counted (for `eval`).
    pub fn encode_known(&self, vocab: &Vocab) -> Result<(Ids, Unknown), DataError> {
        self.encode_with(vocab, false, true)
    }

    /// The first `max_known` characters of the text that `vocab` knows from
    /// character `skip` on, with the unknown ones among them (for `visualize`).
    pub fn text_from(
        &self,
        skip: usize,
        max_known: usize,
        vocab: &Vocab,
    ) -> Result<String, DataError> {
        let (mut text, mut seen, mut known) = (String::new(), 0usize, 0usize);
        self.source.pieces_while(|_, s| {
            for c in s.chars() {
                if seen < skip {
                    seen += 1;
                    continue;
                }
                if known == max_known {
                    return Ok(false);
                }
                known += usize::from(vocab.id(c).is_some());
                text.push(c);
            }
            Ok(true)
        })?;
        Ok(text)
    }

    /// The text's first `max_bytes` bytes (fewer, to end on a whole character).
    pub fn prefix(&self, max_bytes: usize) -> Result<String, DataError> {
        let mut text = String::new();
        self.source.pieces_while(|_, s| {
            let mut end = s.len().min(max_bytes - text.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            text.push_str(&s[..end]);
            Ok(text.len() < max_bytes && end == s.len())
        })?;
        Ok(text)
    }

    fn encode_with(
        &self,
        vocab: &Vocab,
        fold: bool,
        skip_unknown: bool,
    ) -> Result<(Ids, Unknown), DataError> {
        let mut skipped = Unknown::default();
        let unknown = vocab.id(UNKNOWN).filter(|_| fold);
        let mut ids = Ids::with_capacity(vocab.len(), self.info.chars as usize);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut table = [u32::MAX; 128];
        for b in 0u8..128 {
            table[b as usize] = vocab.id(char::from(b)).or(unknown).unwrap_or(u32::MAX);
        }
        // byte -> id for vocabularies under 256, with 255 marking a byte that is not
        // a known ASCII character (ids then stop at 254)
        let bytes_table: Option<[u8; 256]> = (vocab.len() < 256).then(|| {
            std::array::from_fn(|b| {
                if b < 128 && table[b] != u32::MAX {
                    table[b] as u8
                } else {
                    u8::MAX
                }
            })
        });
        let source = &self.source;
        let bytes = source.pieces(|offset, s| {
            hasher.update(s.as_bytes());
            // the common case, one lookup per byte; a piece holding anything else
            // (non-ASCII, or unknown) goes character by character below
            if let (Some(t), Ids::U8(v)) = (&bytes_table, &mut ids) {
                let start = v.len();
                v.extend(s.bytes().map(|b| t[b as usize]));
                if !v[start..].contains(&u8::MAX) {
                    return Ok(());
                }
                v.truncate(start);
            }
            for (i, c) in s.char_indices() {
                let id = match u8::try_from(c) {
                    Ok(b) if b < 128 => Some(table[b as usize]).filter(|&id| id != u32::MAX),
                    _ => vocab.id(c).or(unknown),
                };
                match id {
                    Some(id) => ids.push(id),
                    None if skip_unknown => {
                        if skipped.first.is_none() {
                            skipped.first = Some((c, source.locate(offset + i as u64).line));
                        }
                        skipped.count += 1;
                    }
                    None => {
                        let at = source.locate(offset + i as u64);
                        return Err(DataError::OutOfVocab {
                            name: source.name(),
                            ch: c,
                            code: c as u32,
                            line: at.line,
                            column: at.char_column,
                            vocab_size: vocab.len(),
                        });
                    }
                }
            }
            Ok(())
        })?;
        if bytes != self.info.bytes || hasher.digest() != self.info.hash {
            return Err(DataError::Io {
                name: source.name(),
                cause: io::Error::other(
                    "the file changed while it was being read; try again once nothing writes it",
                ),
            });
        }
        Ok((ids, skipped))
    }
}

/// Scans a file on disk.
pub fn scan_file(path: &Path) -> Result<Scan, DataError> {
    scan(Source::File(path.to_path_buf()))
}

/// Splits encoded text into the training part and the held-out validation part
/// (its last `fraction`, as char-rnn and the PyTorch baseline split).
pub fn split_validation(ids: IdSlice<'_>, fraction: f64) -> (IdSlice<'_>, IdSlice<'_>) {
    let cut = ((1.0 - fraction) * ids.len() as f64).floor() as usize;
    ids.split_at(cut.min(ids.len()))
}

/// Characters a text needs for `streams` streams of chunks of `seq` characters
/// (each chunk's inputs and its targets one later).
pub fn min_chars(streams: usize, seq: usize) -> usize {
    streams * (seq + 1)
}

/// A chunk of a text read as contiguous streams of `n` characters each
/// (stream s is ids[s*n..(s+1)*n]), for the streams in `streams`, time-major:
/// inputs[t*B' + j] = ids[s_j*n + p + t] for the j-th stream s_j of the range,
/// targets one later.
pub fn fill_chunk(
    ids: IdSlice<'_>,
    n: usize,
    streams: Range<usize>,
    p: usize,
    len: usize,
    inputs: &mut Vec<u32>,
    targets: &mut Vec<u32>,
) {
    inputs.clear();
    targets.clear();
    for t in 0..len {
        for s in streams.clone() {
            inputs.push(ids.get(s * n + p + t));
            targets.push(ids.get(s * n + p + t + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_known_skips_and_counts_unknown_characters() {
        let v = Vocab::from_text("abc\n");
        let scan = scan(bytes(b"ab\nxa\nyc")).unwrap();
        let (ids, unknown) = scan.encode_known(&v).unwrap();
        assert_eq!(
            ids.as_slice()
                .to_vec()
                .iter()
                .map(|&i| v.char(i))
                .collect::<String>(),
            "ab\na\nc"
        );
        assert_eq!(
            unknown,
            Unknown {
                count: 2,
                first: Some(('x', 2))
            }
        );
    }

    fn bytes(text: &[u8]) -> Source {
        Source::Bytes {
            name: "t.txt".into(),
            bytes: Cow::Owned(text.to_vec()),
        }
    }

    #[test]
    fn encodes_like_the_whole_text_vocabulary_at_every_width() {
        for text in ["hello world\n", "caf\u{e9} \u{4e2d}\u{6587} \u{1F600}!\n"] {
            let s = scan(bytes(text.as_bytes())).unwrap();
            let (vocab, folded) = s.vocab(None);
            assert_eq!(folded, None);
            assert_eq!(vocab, Vocab::from_text(text));
            let ids = s.encode(&vocab, false).unwrap();
            assert_eq!(ids.width(), 1);
            let expected: Vec<u32> = text.chars().map(|c| vocab.id(c).unwrap()).collect();
            assert_eq!(ids.as_slice().to_vec(), expected);
            assert_eq!(s.info.chars as usize, text.chars().count());
            assert_eq!(s.info.hash, xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
        }
        // 300 distinct characters need u16
        let wide: String = (0..300u32)
            .filter_map(|i| char::from_u32(0x4e00 + i))
            .collect();
        let s = scan(bytes(wide.as_bytes())).unwrap();
        let ids = s.encode(&s.vocab(None).0, false).unwrap();
        assert_eq!((ids.width(), ids.len()), (2, 300));
        assert_eq!(ids.as_slice().get(299), 299);
    }

    #[test]
    fn characters_cut_by_chunk_boundaries_are_read_whole() {
        // every multi-byte character straddles some 1 MB boundary in this text
        let text: String = "a\u{e9}\u{4e2d}\u{1F600}".repeat(CHUNK / 3);
        let s = scan(bytes(text.as_bytes())).unwrap();
        assert_eq!(s.info.chars as usize, text.chars().count());
        let ids = s.encode(&s.vocab(None).0, false).unwrap();
        assert_eq!(ids.len(), text.chars().count());
    }

    #[test]
    fn invalid_utf8_is_reported_with_line_and_column() {
        let err = scan(bytes(b"ok\ncaf\xc3\xa9 \xff"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("byte 0xff at byte offset 9 (line 2, column 6)"),
            "{err}"
        );
        assert!(matches!(scan(bytes(b"")), Err(DataError::Empty { .. })));
    }

    #[test]
    fn max_vocab_folds_the_rarest_characters() {
        let s = scan(bytes("aaaabbbccdxyz".as_bytes())).unwrap();
        let (vocab, folded) = s.vocab(Some(4));
        assert_eq!(vocab.chars(), ['a', 'b', 'c', UNKNOWN]);
        assert_eq!(
            folded,
            Some(Folded {
                distinct: 4,
                occurrences: 4
            })
        );
        let ids = s.encode(&vocab, true).unwrap();
        let u = vocab.id(UNKNOWN).unwrap();
        assert_eq!(&ids.as_slice().to_vec()[7..], [2, 2, u, u, u, u]);
        // without folding the first unknown character is an error with its place
        let err = s.encode(&vocab, false).unwrap_err().to_string();
        assert!(
            err.contains("'d'") && err.contains("line 1, column 10"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_changes_between_passes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "abcabc").unwrap();
        let s = scan_file(&path).unwrap();
        std::fs::write(&path, "abcab").unwrap();
        let err = s.encode(&s.vocab(None).0, false).unwrap_err().to_string();
        assert!(err.contains("changed while it was being read"), "{err}");
    }
}
