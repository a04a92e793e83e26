//! Text in, ids out: reading and validating the training text, the vocabulary
//! (sorted distinct Unicode scalar values), and encoding.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The corpus compiled into the binary, used when no `--data` is given.
pub const BUILTIN_TEXT: &str = include_str!("../../data/builtin.txt");
pub const BUILTIN_NAME: &str = "<built-in corpus>";

#[derive(Debug, Error)]
pub enum DataError {
    #[error("cannot read {name}: {cause}")]
    Io { name: String, cause: std::io::Error },
    #[error("{name} is empty: give a UTF-8 text file to train on")]
    Empty { name: String },
    #[error(
        "{name} is not valid UTF-8: byte 0x{byte:02x} at byte offset {offset} (line {line}, column {column}); \
         convert the file to UTF-8 first, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`"
    )]
    InvalidUtf8 {
        name: String,
        byte: u8,
        offset: usize,
        line: usize,
        column: usize,
    },
    #[error(
        "{name} has {len} characters to train on, but {streams} stream(s) of seq_length {seq} need at least {need}; \
         use a longer text, a smaller --seq-length or --batch-size, or a smaller --val-fraction"
    )]
    TooShort {
        name: String,
        len: usize,
        need: usize,
        streams: usize,
        seq: usize,
    },
    #[error(
        "{name}: character {ch:?} (U+{code:04X}) at line {line}, column {column} is not in the \
         model's vocabulary of {vocab_size} characters"
    )]
    OutOfVocab {
        name: String,
        ch: char,
        code: u32,
        line: usize,
        column: usize,
        vocab_size: usize,
    },
    #[error("invalid vocabulary: {0}")]
    BadVocab(String),
}

/// A training text and where it came from.
pub struct Text {
    pub name: String,
    pub content: String,
}

impl Text {
    /// A text from bytes, refusing empty ones and reporting where invalid UTF-8 starts.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Text, DataError> {
        if bytes.is_empty() {
            return Err(DataError::Empty { name });
        }
        match String::from_utf8(bytes) {
            Ok(content) => Ok(Text { name, content }),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let at = position(e.as_bytes(), offset as u64);
                Err(DataError::InvalidUtf8 {
                    name,
                    byte: at.byte,
                    offset,
                    line: at.line,
                    column: at.byte_column,
                })
            }
        }
    }

    pub fn builtin() -> Text {
        Text {
            name: BUILTIN_NAME.to_string(),
            content: BUILTIN_TEXT.to_string(),
        }
    }

    pub fn info(&self) -> TextInfo {
        TextInfo {
            name: self.name.clone(),
            chars: self.content.chars().count() as u64,
            bytes: self.content.len() as u64,
            hash: xxhash_rust::xxh3::xxh3_64(self.content.as_bytes()),
        }
    }
}

/// Where a byte of a text is, for error messages: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    /// Bytes since the line began, plus one.
    pub byte_column: usize,
    /// Characters since the line began, plus one (UTF-8 continuation bytes do
    /// not start characters).
    pub char_column: usize,
    /// The byte at the position (0 past the end).
    pub byte: u8,
}

/// The position of byte `offset` of the text `r` reads, counted by streaming
/// through it, so it serves files of any size as well as bytes in memory.
pub fn position(mut r: impl Read, offset: u64) -> Position {
    let mut at = Position {
        line: 1,
        byte_column: 1,
        char_column: 1,
        byte: 0,
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut left = offset;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match r.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return at,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                (at.line, at.byte_column, at.char_column) = (at.line + 1, 1, 1);
            } else {
                at.byte_column += 1;
                at.char_column += usize::from(b & 0xC0 != 0x80);
            }
        }
        left -= n as u64;
    }
    let mut byte = [0u8];
    if r.read_exact(&mut byte).is_ok() {
        at.byte = byte[0];
    }
    at
}

/// What a checkpoint remembers of the text it was trained on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextInfo {
    pub name: String,
    pub chars: u64,
    pub bytes: u64,
    /// xxh3-64 of the UTF-8 bytes.
    pub hash: u64,
}

/// Character <-> id. Ids are positions in the sorted list of distinct characters,
/// so the same text always gives the same vocabulary.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<char>", try_from = "Vec<char>")]
pub struct Vocab {
    chars: Vec<char>,
    /// Fast path for ASCII; `u32::MAX` marks a character not in the vocabulary.
    ascii: [u32; 128],
}

impl Vocab {
    pub fn from_text(text: &str) -> Vocab {
        let mut seen_ascii = [false; 128];
        let mut others = std::collections::BTreeSet::new();
        for c in text.chars() {
            if c.is_ascii() {
                seen_ascii[c as usize] = true;
            } else {
                others.insert(c);
            }
        }
        let ascii = (0u8..128)
            .filter(|&b| seen_ascii[b as usize])
            .map(char::from);
        let chars = ascii.chain(others).collect();
        Vocab::from_sorted(chars).expect("built from distinct sorted characters")
    }

    /// Rebuilds a vocabulary from its character list, which must be non-empty,
    /// sorted and free of duplicates (as stored in a checkpoint).
    pub fn from_sorted(chars: Vec<char>) -> Result<Vocab, DataError> {
        if chars.is_empty() {
            return Err(DataError::BadVocab("no characters".into()));
        }
        if let Some(w) = chars.windows(2).find(|w| w[0] >= w[1]) {
            return Err(DataError::BadVocab(format!(
                "characters {:?} and {:?} are out of order",
                w[0], w[1]
            )));
        }
        if chars.len() > u32::MAX as usize / 2 {
            return Err(DataError::BadVocab("too many characters".into()));
        }
        let mut ascii = [u32::MAX; 128];
        for (i, &c) in chars.iter().enumerate() {
            if c.is_ascii() {
                ascii[c as usize] = i as u32;
            }
        }
        Ok(Vocab { chars, ascii })
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    pub fn id(&self, c: char) -> Option<u32> {
        if c.is_ascii() {
            Some(self.ascii[c as usize]).filter(|&i| i != u32::MAX)
        } else {
            self.chars.binary_search(&c).ok().map(|i| i as u32)
        }
    }

    /// The character for an id produced by this vocabulary.
    pub fn char(&self, id: u32) -> char {
        self.chars[id as usize]
    }

    /// Encodes a whole text; a character outside the vocabulary is an error that
    /// says where it is.
    pub fn encode(&self, text: &Text) -> Result<Vec<u32>, DataError> {
        let mut ids = Vec::with_capacity(text.content.len());
        for (offset, c) in text.content.char_indices() {
            match self.id(c) {
                Some(id) => ids.push(id),
                None => {
                    let at = position(text.content.as_bytes(), offset as u64);
                    return Err(DataError::OutOfVocab {
                        name: text.name.clone(),
                        ch: c,
                        code: c as u32,
                        line: at.line,
                        column: at.char_column,
                        vocab_size: self.len(),
                    });
                }
            }
        }
        Ok(ids)
    }
}

/// Characters [`Scan::encode_known`](crate::io::corpus::Scan::encode_known) skipped.
#[derive(Debug, Default, PartialEq)]
pub struct Unknown {
    pub count: usize,
    /// The first one and its line.
    pub first: Option<(char, usize)>,
}

impl From<Vocab> for Vec<char> {
    fn from(v: Vocab) -> Vec<char> {
        v.chars
    }
}

/// Decoding a stored vocabulary checks that it is sorted and distinct.
impl TryFrom<Vec<char>> for Vocab {
    type Error = DataError;
    fn try_from(chars: Vec<char>) -> Result<Vocab, DataError> {
        Vocab::from_sorted(chars)
    }
}

impl fmt::Debug for Vocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vocab({:?})", self.chars.iter().collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_lines_bytes_and_characters() {
        let text = "ab\ncaf\u{e9} x\ny".as_bytes();
        // 'x' is byte 9: line 2, after 6 bytes / 5 characters of that line
        assert_eq!(
            position(text, 9),
            Position {
                line: 2,
                byte_column: 7,
                char_column: 6,
                byte: b'x'
            }
        );
        assert_eq!(
            position(text, 0),
            Position {
                line: 1,
                byte_column: 1,
                char_column: 1,
                byte: b'a'
            }
        );
        let end = position(text, text.len() as u64);
        assert_eq!((end.line, end.char_column, end.byte), (3, 2, 0));
    }

    fn text(s: &str) -> Text {
        Text {
            name: "t.txt".into(),
            content: s.into(),
        }
    }

    #[test]
    fn vocabulary_is_sorted_distinct_code_points() {
        let v = Vocab::from_text("hello, wörld! ✓ hé");
        let chars: String = v.chars().iter().collect();
        assert_eq!(chars, " !,dehlorwéö✓");
        assert_eq!(v.id('h'), Some(5));
        assert_eq!(v.id('✓'), Some(12));
        assert_eq!(v.id('z'), None);
        assert_eq!(v.id('ß'), None);
    }

    #[test]
    fn encode_round_trips_through_ids() {
        let t = text("ab\nçab✓");
        let v = Vocab::from_text(&t.content);
        let ids = v.encode(&t).unwrap();
        assert_eq!(ids.len(), 7);
        let back: String = ids.iter().map(|&i| v.char(i)).collect();
        assert_eq!(back, t.content);
    }

    #[test]
    fn encode_reports_line_and_column_of_unknown_character() {
        let v = Vocab::from_text("abc\n");
        let err = v.encode(&text("abc\ncaé")).unwrap_err().to_string();
        assert!(err.contains("'é' (U+00E9) at line 2, column 3"), "{err}");
        assert!(err.contains("vocabulary of 4 characters"), "{err}");
    }

    #[test]
    fn from_sorted_rejects_unsorted_duplicate_or_empty_lists() {
        assert!(Vocab::from_sorted(vec!['a', 'b']).is_ok());
        assert!(Vocab::from_sorted(vec!['b', 'a']).is_err());
        assert!(Vocab::from_sorted(vec!['a', 'a']).is_err());
        assert!(Vocab::from_sorted(vec![]).is_err());
    }

    #[test]
    fn invalid_utf8_is_reported_with_byte_offset_line_and_column() {
        let bytes = b"ok\nfine \xff bad".to_vec();
        let err = Text::from_bytes("x.txt".into(), bytes)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("byte 0xff at byte offset 8 (line 2, column 6)"),
            "{err}"
        );
    }

    #[test]
    fn empty_text_is_refused() {
        assert!(matches!(
            Text::from_bytes("e".into(), vec![]),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn builtin_corpus_is_tens_of_kilobytes_of_text() {
        let t = Text::builtin();
        assert!(t.content.len() > 20_000, "{} bytes", t.content.len());
        assert!(Vocab::from_text(&t.content).len() > 40);
    }

    #[test]
    fn text_hash_changes_with_content() {
        assert_ne!(text("abc").info().hash, text("abd").info().hash);
        assert_eq!(text("abc").info(), text("abc").info());
    }
}
