//! GPT-2's byte alphabet: one printable character for each of the 256 bytes.
//!
//! BPE works on bytes, so that any text (any language, emoji, even invalid
//! UTF-8) is made of 256 symbols and nothing is ever "unknown". But GPT-2's
//! vocabulary files are text (`encoder.json` keys, `vocab.bpe` lines split
//! on spaces), and a raw space or newline byte inside a token would break
//! them. So each byte is written as a visible character:
//!
//! - the 188 bytes that are printable in Latin-1 (`!`..`~`, `¡`..`¬`,
//!   `®`..`ÿ`) stand for themselves;
//! - the other 68 (controls, space, DEL, NBSP, soft hyphen) take the
//!   characters U+0100, U+0101, … in byte order: space (0x20) becomes `Ġ`
//!   (U+0120) and newline (0x0A) `Ċ` (U+010A), the letters you see all
//!   over GPT-2's vocabulary.
//!
//! The same order gives the byte tokens their ids: printable bytes first,
//! then the others, so id 0 is `!` and id 220 is `Ġ`.

// ANCHOR: alphabet
/// Whether byte `b` is printable in Latin-1 and stands for itself.
pub const fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The character that stands for each byte.
pub const BYTE_TO_CHAR: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32; // the first character after Latin-1
    let mut b = 0;
    while b < 256 {
        table[b] = if is_printable(b as u8) {
            b as u8 as char
        } else {
            let c = char::from_u32(next).expect("U+0100..U+0143 are characters");
            next += 1;
            c
        };
        b += 1;
    }
    table
};

/// The bytes in the order of their token ids: printable bytes, then the rest.
pub const BYTE_ORDER: [u8; 256] = {
    let mut order = [0u8; 256];
    let mut n = 0;
    let mut pass = 0;
    while pass < 2 {
        let mut b = 0;
        while b < 256 {
            if is_printable(b as u8) == (pass == 0) {
                order[n] = b as u8;
                n += 1;
            }
            b += 1;
        }
        pass += 1;
    }
    order
};

/// The byte that character `c` stands for, if it is in the alphabet.
pub fn char_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x100 {
        let b = u as u8;
        is_printable(b).then_some(b)
    } else {
        // U+0100 + k stands for the k-th non-printable byte.
        let k = (u - 0x100) as usize;
        NON_PRINTABLE.get(k).copied()
    }
}
// ANCHOR_END: alphabet

/// The 68 non-printable bytes, in byte order (`BYTE_ORDER`'s tail).
const NON_PRINTABLE: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut i = 0;
    while i < 68 {
        out[i] = BYTE_ORDER[188 + i];
        i += 1;
    }
    out
};

/// A token's bytes written in the alphabet (an `encoder.json` key).
pub fn bytes_to_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| BYTE_TO_CHAR[b as usize]).collect()
}

/// A token written in the alphabet back to its bytes; `Err` holds the
/// first character that is not in the alphabet.
pub fn text_to_bytes(text: &str) -> Result<Vec<u8>, char> {
    text.chars().map(|c| char_to_byte(c).ok_or(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection_onto_printable_characters() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = BYTE_TO_CHAR[b as usize];
            assert!(!c.is_whitespace() && !c.is_control(), "{b}: {c:?}");
            assert_eq!(char_to_byte(c), Some(b));
            assert!(seen.insert(c));
        }
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(char_to_byte(' '), None);
        assert_eq!(char_to_byte('\u{144}'), None);
    }

    #[test]
    fn byte_order_puts_printable_bytes_first() {
        assert_eq!(BYTE_ORDER[0], b'!');
        assert_eq!(BYTE_ORDER[187], 0xFF);
        assert_eq!(BYTE_ORDER[188], 0x00);
        assert_eq!(BYTE_ORDER.iter().position(|&b| b == b' '), Some(220));
        let mut sorted = BYTE_ORDER;
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &b)| i == b as usize));
    }
}
