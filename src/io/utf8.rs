//! UTF-8 from a reader, a piece at a time: the one decoder the training text
//! and the sampler's primes both go through. Every piece holds whole
//! characters (one cut at a read's end waits for the next), so a text of any
//! size is decoded in constant memory.

use std::io::{self, Read};

/// Why decoding stopped before the end.
#[derive(Debug)]
pub enum PieceError<E> {
    Io(io::Error),
    /// Not UTF-8 at byte `offset` (a character cut off by the end counts).
    Invalid {
        offset: u64,
    },
    /// What the caller's `each` returned.
    Each(E),
}

/// Reads `reader` in reads of up to `chunk` bytes and gives `each` the text of
/// every piece with the byte offset where it starts, until the end or until
/// `each` returns false. Returns the bytes decoded.
pub fn pieces<R: Read, E>(
    mut reader: R,
    chunk: usize,
    mut each: impl FnMut(u64, &str) -> Result<bool, E>,
) -> Result<u64, PieceError<E>> {
    // room for a character's first three bytes carried before a full read
    let mut buf = vec![0u8; chunk + 4];
    let (mut carry, mut offset) = (0usize, 0u64);
    loop {
        let n = match reader.read(&mut buf[carry..chunk + carry]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PieceError::Io(e)),
        };
        let end = carry + n;
        let text = match std::str::from_utf8(&buf[..end]) {
            Ok(text) => text,
            // a character cut at the read's end: finish it with the next read
            Err(e) if e.error_len().is_none() && n > 0 => {
                std::str::from_utf8(&buf[..e.valid_up_to()]).expect("the valid prefix")
            }
            Err(e) => {
                return Err(PieceError::Invalid {
                    offset: offset + e.valid_up_to() as u64,
                });
            }
        };
        let used = text.len();
        let more = each(offset, text).map_err(PieceError::Each)?;
        offset += used as u64;
        if n == 0 || !more {
            return Ok(offset);
        }
        buf.copy_within(used..end, 0);
        carry = end - used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], chunk: usize) -> Result<String, PieceError<()>> {
        let mut out = String::new();
        pieces(bytes, chunk, |offset, s| {
            assert_eq!(offset as usize, out.len(), "pieces follow each other");
            out.push_str(s);
            Ok(true)
        })
        .map(|_| out)
    }

    #[test]
    fn characters_cut_by_a_read_arrive_whole() {
        let text = "a\u{e9}\u{4e2d}\u{1F600}z".repeat(7);
        for chunk in 1..9 {
            assert_eq!(
                decode(text.as_bytes(), chunk).unwrap(),
                text,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn invalid_and_cut_off_text_is_refused_at_its_offset() {
        for chunk in [1, 2, 64] {
            let bad = decode(b"ok\xff", chunk);
            assert!(
                matches!(bad, Err(PieceError::Invalid { offset: 2 })),
                "{bad:?}"
            );
            // the first two bytes of a four-byte character, then the end
            let cut = decode(b"abc\xf0\x9f", chunk);
            assert!(
                matches!(cut, Err(PieceError::Invalid { offset: 3 })),
                "{cut:?}"
            );
        }
    }

    #[test]
    fn each_can_stop_early_and_its_error_comes_back() {
        let text = "x".repeat(100);
        let read = pieces(text.as_bytes(), 10, |_, _| Ok::<_, ()>(false)).unwrap();
        assert_eq!(read, 10);
        let err = pieces(text.as_bytes(), 10, |_, _| Err::<bool, _>("stop"));
        assert!(matches!(err, Err(PieceError::Each("stop"))));
    }
}
