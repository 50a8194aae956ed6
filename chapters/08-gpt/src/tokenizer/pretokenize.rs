//! GPT-2's pre-tokenizer: the text cut into pieces before BPE sees it.
//!
//! BPE never merges across a piece boundary, so the pieces decide what a
//! token can be: a word with its leading space (`" world"`), a run of
//! digits, a run of punctuation, a contraction (`'s`), or white space.
//! GPT-2 defines them with one regular expression, tried left to right at
//! each position, the first alternative that matches winning:
//!
//! ```text
//! 's|'t|'re|'ve|'m|'ll|'d       English contractions (case-sensitive)
//! | ?\p{L}+                      letters, with at most one space before
//! | ?\p{N}+                      numbers, with at most one space before
//! | ?[^\s\p{L}\p{N}]+            anything else, with at most one space before
//! |\s+(?!\S)                     white space, but not the last space before a word
//! |\s+                           white space
//! ```
//!
//! The look-ahead `(?!\S)` is the subtle part: in `"a   b"` the three
//! spaces do not become one piece, because then `b` would lose its space
//! and `" b"` (one token, the same as in `"a b"`) would become `"b"`. The
//! run gives its last space to the word: `"a"`, `"  "`, `" b"`. At the end
//! of the text nothing follows, so the whole run is one piece. The `regex`
//! crate cannot express a look-ahead, and a general engine that can is
//! slow; the pattern is simple enough to write out as a loop over
//! characters, which is both exact and fast.

use super::char_class::{classify, CharClass};

// ANCHOR: pieces
/// The pieces of `text`, in order; they concatenate back to `text`.
pub fn pieces(text: &str) -> Pieces<'_> {
    Pieces { text, pos: 0 }
}

/// Iterator over the pre-tokenizer's pieces (see [`pieces`]).
pub struct Pieces<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        self.pos = piece_end(self.text.as_bytes(), start);
        Some(&self.text[start..self.pos])
    }
}

/// Where the piece that starts at byte `i` ends (`i < bytes.len()`).
fn piece_end(bytes: &[u8], i: usize) -> usize {
    let (c, width) = char_at(bytes, i);
    // 's|'t|'re|'ve|'m|'ll|'d
    if c == '\'' {
        if let Some(n) = contraction(&bytes[i + 1..]) {
            return i + 1 + n;
        }
    }
    match classify(c) {
        // \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+
        class @ (CharClass::Letter | CharClass::Number | CharClass::Other) => {
            run_end(bytes, i + width, class)
        }
        CharClass::WhiteSpace => {
            // " ?X+": one space, then a run of letters, numbers or others.
            if c == ' ' && i + 1 < bytes.len() {
                let (next, next_width) = char_at(bytes, i + 1);
                let class = classify(next);
                if class != CharClass::WhiteSpace {
                    return run_end(bytes, i + 1 + next_width, class);
                }
            }
            // \s+(?!\S) | \s+ : the run of white space, less its last
            // character when a non-space follows and the run is longer
            // than one character.
            let (mut end, mut last) = (i + width, i);
            while end < bytes.len() {
                let (c, w) = char_at(bytes, end);
                if classify(c) != CharClass::WhiteSpace {
                    break;
                }
                last = end;
                end += w;
            }
            if end == bytes.len() || last == i {
                end
            } else {
                last
            }
        }
    }
}
// ANCHOR_END: pieces

/// The length of the contraction after an apostrophe, if one follows.
fn contraction(after: &[u8]) -> Option<usize> {
    match after {
        [b's' | b't' | b'm' | b'd', ..] => Some(1),
        [b'r', b'e', ..] | [b'v', b'e', ..] | [b'l', b'l', ..] => Some(2),
        _ => None,
    }
}

/// The end of the run of characters of `class` that continues at `j`.
#[inline]
fn run_end(bytes: &[u8], mut j: usize, class: CharClass) -> usize {
    while j < bytes.len() {
        let (c, w) = char_at(bytes, j);
        if classify(c) != class {
            break;
        }
        j += w;
    }
    j
}

/// The character that starts at byte `i` of valid UTF-8, and its width.
#[inline]
fn char_at(bytes: &[u8], i: usize) -> (char, usize) {
    let b0 = bytes[i];
    if b0 < 0x80 {
        return (b0 as char, 1);
    }
    // A lead byte 110xxxxx, 1110xxxx or 11110xxx, then 10xxxxxx bytes.
    let cont = |k: usize| (bytes[i + k] & 0x3F) as u32;
    let (u, w) = if b0 < 0xE0 {
        ((((b0 & 0x1F) as u32) << 6) | cont(1), 2)
    } else if b0 < 0xF0 {
        ((((b0 & 0x0F) as u32) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            (((b0 & 0x07) as u32) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    };
    // The input is a &str, so the bytes are valid UTF-8 and u a scalar value.
    (char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER), w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        pieces(text).collect()
    }

    #[test]
    fn pretokenizer_keeps_a_space_with_the_word_after_it() {
        assert_eq!(split("Hello world"), ["Hello", " world"]);
        assert_eq!(split("a   b"), ["a", "  ", " b"]);
        assert_eq!(split("a \n b"), ["a", " \n", " b"]);
        assert_eq!(split("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(split("end   "), ["end", "   "]);
        assert_eq!(split("  \t1"), ["  ", "\t", "1"]);
    }

    #[test]
    fn pretokenizer_splits_contractions_numbers_and_punctuation() {
        assert_eq!(
            split("it's they're I'LL"),
            ["it", "'s", " they", "'re", " I", "'", "LL"]
        );
        assert_eq!(split("''s"), ["''", "s"]);
        assert_eq!(split(" 's"), [" '", "s"]);
        assert_eq!(split("abc123 4.5!!"), ["abc", "123", " 4", ".", "5", "!!"]);
        assert_eq!(split("日本語 한국"), ["日本語", " 한국"]);
        assert_eq!(split("e\u{301}"), ["e", "\u{301}"]);
    }

    #[test]
    fn pretokenizer_pieces_concatenate_to_the_text() {
        for text in [
            "",
            " ",
            "x",
            "  a  b  ",
            "\u{a0}\u{a0}x",
            "😀 😀",
            "'",
            "a'",
        ] {
            assert_eq!(split(text).concat(), text);
            assert!(split(text).iter().all(|p| !p.is_empty()));
        }
    }
}
