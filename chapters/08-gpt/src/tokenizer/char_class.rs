//! The four kinds of character GPT-2's pre-tokenizer tells apart.
//!
//! Its pattern only ever asks "is this a letter (`\p{L}`), a number
//! (`\p{N}`), white space (`\s`), or none of these?". ASCII answers from a
//! 128-entry table; anything else by binary search in the ranges of
//! [`unicode_classes`](super::unicode_classes), which were read off
//! tiktoken's own regex engine.

use super::unicode_classes::{LETTER_RANGES, NUMBER_RANGES, WHITE_SPACE_RANGES};

/// What a character is, as far as the pattern cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    /// `\p{L}`: any letter of any script.
    Letter,
    /// `\p{N}`: digits, but also `½`, `²`, `Ⅻ`, `٣`.
    Number,
    /// `\s`: Unicode White_Space (space, tab, newlines, NBSP, U+3000, …).
    WhiteSpace,
    /// Everything else: punctuation, symbols, emoji, combining marks, controls.
    Other,
}

const ASCII: [CharClass; 128] = {
    let mut t = [CharClass::Other; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => CharClass::Letter,
            b'0'..=b'9' => CharClass::Number,
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' => CharClass::WhiteSpace,
            _ => CharClass::Other,
        };
        b += 1;
    }
    t
};

/// Whether `c` lies in one of the sorted, disjoint inclusive `ranges`.
fn in_ranges(ranges: &[(u32, u32)], c: u32) -> bool {
    // The first range that ends at or after c; c is in it if it starts
    // at or before c.
    let i = ranges.partition_point(|&(_, end)| end < c);
    ranges.get(i).is_some_and(|&(start, _)| start <= c)
}

/// The class of `c`.
#[inline]
pub fn classify(c: char) -> CharClass {
    let u = c as u32;
    if u < 128 {
        return ASCII[u as usize];
    }
    if in_ranges(LETTER_RANGES, u) {
        CharClass::Letter
    } else if in_ranges(NUMBER_RANGES, u) {
        CharClass::Number
    } else if in_ranges(WHITE_SPACE_RANGES, u) {
        CharClass::WhiteSpace
    } else {
        CharClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_classes_are_sorted_disjoint_and_do_not_overlap() {
        for ranges in [LETTER_RANGES, NUMBER_RANGES, WHITE_SPACE_RANGES] {
            assert!(ranges.iter().all(|&(a, b)| a <= b));
            assert!(ranges.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        }
        // A character is at most one of letter, number, space.
        for c in (0..0x11_0000).filter_map(char::from_u32) {
            let u = c as u32;
            let n = [LETTER_RANGES, NUMBER_RANGES, WHITE_SPACE_RANGES]
                .iter()
                .filter(|r| in_ranges(r, u))
                .count();
            assert!(n <= 1, "{c:?} is in {n} classes");
        }
    }

    #[test]
    fn ascii_table_agrees_with_the_unicode_ranges() {
        for b in 0..128u32 {
            let c = char::from_u32(b).unwrap();
            let from_ranges = if in_ranges(LETTER_RANGES, b) {
                CharClass::Letter
            } else if in_ranges(NUMBER_RANGES, b) {
                CharClass::Number
            } else if in_ranges(WHITE_SPACE_RANGES, b) {
                CharClass::WhiteSpace
            } else {
                CharClass::Other
            };
            assert_eq!(classify(c), from_ranges, "{c:?}");
        }
    }

    #[test]
    fn char_classes_of_other_scripts() {
        for (c, class) in [
            ('é', CharClass::Letter),
            ('Ж', CharClass::Letter),
            ('日', CharClass::Letter),
            ('한', CharClass::Letter),
            ('½', CharClass::Number),
            ('²', CharClass::Number),
            ('Ⅻ', CharClass::Number),
            ('٣', CharClass::Number),
            ('\u{a0}', CharClass::WhiteSpace),
            ('\u{3000}', CharClass::WhiteSpace),
            ('\u{85}', CharClass::WhiteSpace),
            ('\u{200b}', CharClass::Other),
            ('\u{301}', CharClass::Other),
            ('😀', CharClass::Other),
            ('’', CharClass::Other),
        ] {
            assert_eq!(classify(c), class, "{c:?}");
        }
    }
}
