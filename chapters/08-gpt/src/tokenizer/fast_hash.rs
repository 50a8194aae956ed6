//! A small, fast hash for the tokenizer's tables.
//!
//! The standard library's `HashMap` hashes with SipHash, which resists
//! attackers who choose keys to collide, at a price of tens of
//! nanoseconds per key. The tokenizer's keys are pairs of token ids and
//! short byte strings, looked up millions of times per megabyte; a
//! multiply-and-rotate hash (the idea of Firefox's and rustc's "Fx" hash)
//! costs one multiplication per eight bytes and is plenty for these tables.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An odd constant with well-mixed bits (2^64 / φ, the golden ratio).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// `h ← (rotl(h, 5) ⊕ word) · SEED`, one 64-bit word at a time.
#[derive(Default, Clone, Copy)]
pub struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The top bits are the best mixed; hashbrown takes its control
        // bits from the top, its bucket index from the bottom, so fold.
        self.hash ^ (self.hash >> 32)
    }
}

/// A `HashMap` hashed with [`FastHasher`].
pub type FastHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash_of(bytes: &[u8]) -> u64 {
        let mut h = FastHasher::default();
        bytes.hash(&mut h);
        h.finish()
    }

    #[test]
    fn fast_hash_tells_apart_slices_that_differ_in_one_byte_or_length() {
        let mut seen = std::collections::HashSet::new();
        for len in 0..20 {
            for i in 0..len.max(1) {
                let mut v = vec![b'a'; len];
                if len > 0 {
                    v[i] = b'b';
                }
                seen.insert(hash_of(&v));
            }
        }
        // 1 (empty) + Σ_{len=1}^{19} len distinct inputs.
        assert_eq!(seen.len(), 1 + (1..20).sum::<usize>());
    }
}
