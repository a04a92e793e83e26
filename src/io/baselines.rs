//! What a good loss is: two reference points computed on the same text as the
//! model's loss, in bits per character. A model that knows only how often each
//! character occurs scores the text's unigram entropy; a good general-purpose
//! compressor (xz at its strongest setting) shows what modelling the text's
//! repetitions gets without any learning. A character model worth its training
//! beats the first by far and comes near or below the second.

use std::io::Write;

use crate::io::corpus::IdSlice;
use crate::io::data::Vocab;

/// The text's unigram entropy, bits per character: -sum p log2 p over the
/// characters' frequencies, from their counts.
pub fn unigram_bits(counts: impl IntoIterator<Item = u64>) -> f64 {
    let counts: Vec<u64> = counts.into_iter().filter(|&c| c > 0).collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    counts
        .iter()
        .map(|&c| c as f64 / n)
        .map(|p| -p * p.log2())
        .sum()
}

/// How much of a text [`xz_bits`] compresses: the first 4 MiB (a few seconds
/// of xz -9e; a longer text's ratio is close to its prefix's).
pub const XZ_PREFIX: usize = 4 << 20;

/// Bits per character of `text` compressed by xz -9e (LZMA2, preset 9
/// extreme, the dictionary no larger than the text so memory stays small),
/// over its first [`XZ_PREFIX`] bytes (cut at a character boundary). The
/// second value is whether the text was cut.
pub fn xz_bits(text: &str) -> (f64, bool) {
    let mut end = text.len().min(XZ_PREFIX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let part = &text[..end];
    let chars = part.chars().count();
    if chars == 0 {
        return (0.0, false);
    }
    // preset 9 with the "extreme" flag (xz -9e)
    let mut options =
        xz2::stream::LzmaOptions::new_preset(9 | (1 << 31)).expect("preset 9e exists");
    options.dict_size(
        (part.len() as u32)
            .next_power_of_two()
            .clamp(1 << 12, 64 << 20),
    );
    let mut filters = xz2::stream::Filters::new();
    filters.lzma2(&options);
    let stream = xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::None)
        .expect("a valid LZMA2 filter chain");
    let mut encoder = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
    let compressed = encoder
        .write_all(part.as_bytes())
        .and_then(|()| encoder.finish())
        .expect("in memory");
    (
        compressed.len() as f64 * 8.0 / chars as f64,
        end < text.len(),
    )
}

/// The unigram entropy of encoded text, bits per character.
pub fn unigram_of_ids(ids: IdSlice<'_>, vocab: &Vocab) -> f64 {
    let mut counts = vec![0u64; vocab.len()];
    for i in 0..ids.len() {
        counts[ids.get(i) as usize] += 1;
    }
    unigram_bits(counts)
}

/// Both reference points for encoded text: the unigram entropy of all of it and
/// xz -9e of (the start of) its characters.
pub fn of_ids(ids: IdSlice<'_>, vocab: &Vocab) -> (f64, (f64, bool)) {
    let mut text = String::new();
    let mut taken = 0;
    while taken < ids.len() && text.len() < XZ_PREFIX {
        text.push(vocab.char(ids.get(taken)));
        taken += 1;
    }
    let (bits, cut) = xz_bits(&text);
    (unigram_of_ids(ids, vocab), (bits, cut || taken < ids.len()))
}

/// The model's bits per character beside the two reference points, as `eval`
/// and the end of `train` print it.
pub fn compare(model_bits: f64, unigram: f64, (xz, cut): (f64, bool)) -> String {
    let prefix = if cut { " (its first 4 MiB)" } else { "" };
    format!(
        "model {model_bits:.2} bits/char; character frequencies alone {unigram:.2}; xz -9e {xz:.2}{prefix}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unigram_entropy_is_that_of_the_frequencies() {
        assert_eq!(
            unigram_bits([10]),
            0.0,
            "one character carries no information"
        );
        assert!((unigram_bits([5, 5]) - 1.0).abs() < 1e-12);
        assert!((unigram_bits([1, 1, 1, 1]) - 2.0).abs() < 1e-12);
        let skewed = unigram_bits([9, 1]);
        assert!(skewed > 0.46 && skewed < 0.47, "{skewed}");
    }

    #[test]
    fn xz_finds_repetition_and_not_noise() {
        let repeated = "the cat sat on the mat. ".repeat(2000);
        let (bits, cut) = xz_bits(&repeated);
        assert!(bits < 0.1 && !cut, "{bits}");
        // a random-looking sequence over 64 symbols costs about 6 bits each
        let mut x: u32 = 1;
        let noise: String = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                char::from(b'0' + (x % 64) as u8)
            })
            .collect();
        let (bits, _) = xz_bits(&noise);
        assert!(bits > 5.9 && bits < 6.5, "{bits}");
    }
}
