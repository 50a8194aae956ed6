//! Byte-pair encoding of one piece: merge adjacent tokens by rank.
//!
//! A piece starts as its bytes, one token each. Every adjacent pair whose
//! concatenation is a token of the vocabulary is a candidate merge, and its
//! *rank* is that token's line in `vocab.bpe` (earlier lines were learned
//! from more frequent pairs). BPE repeatedly merges the candidate of lowest
//! rank, the leftmost one on a tie, until no adjacent pair forms a token:
//!
//! ```text
//! " lower"  Ġ l o w e r  →  Ġl o w e r  →  Ġl ow e r  →  Ġlow e r  →  Ġlow er  →  Ġlower
//! ```
//!
//! Like tiktoken, a pair is ranked by the token it makes, whichever two
//! tokens it was made from (`a`+`bc` ranks as `abc` even if `vocab.bpe`
//! lists `ab c`); [`MergeTable::new`] lists every such pair up front so
//! that encoding looks up two ids, never a byte string.

use super::fast_hash::FastHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A merge: the rank of the token two adjacent tokens make, and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    pub rank: u32,
    pub id: u32,
}

/// Every pair of tokens that concatenates to a token, keyed by
/// `(left << 32) | right`, and the id of each byte.
#[derive(Debug, Clone)]
pub struct MergeTable {
    byte_ids: [u32; 256],
    pairs: FastHashMap<u64, Merge>,
}

/// Pieces longer than this merge with a heap: O(n log n) rather than the
/// O(n²) of rescanning the pairs after each merge, which is faster for the
/// short pieces that make up almost all text.
pub const HEAP_THRESHOLD: usize = 64;

#[inline]
fn key(left: u32, right: u32) -> u64 {
    ((left as u64) << 32) | right as u64
}

impl MergeTable {
    /// The table for a vocabulary given as `(bytes, rank, id)` of every
    /// mergeable token (the bytes have rank `None`: they are never made).
    pub fn new(byte_ids: [u32; 256], tokens: &[(&[u8], u32, u32)]) -> MergeTable {
        // bytes -> id of every token, to find the pairs that make each one.
        let mut ids: FastHashMap<&[u8], u32> = FastHashMap::default();
        for (b, &id) in byte_ids.iter().enumerate() {
            ids.insert(std::slice::from_ref(&BYTES[b]), id);
        }
        for &(bytes, _, id) in tokens {
            ids.insert(bytes, id);
        }
        let mut pairs = FastHashMap::default();
        for &(bytes, rank, id) in tokens {
            for k in 1..bytes.len() {
                if let (Some(&l), Some(&r)) = (ids.get(&bytes[..k]), ids.get(&bytes[k..])) {
                    pairs.insert(key(l, r), Merge { rank, id });
                }
            }
        }
        MergeTable { byte_ids, pairs }
    }

    /// The id of the token made of the single byte `b`.
    pub fn byte_id(&self, b: u8) -> u32 {
        self.byte_ids[b as usize]
    }

    /// The merge of `left` followed by `right`, if they make a token.
    #[inline]
    pub fn merge(&self, left: u32, right: u32) -> Option<Merge> {
        self.pairs.get(&key(left, right)).copied()
    }

    /// Number of token pairs that merge.
    pub fn pair_count(&self) -> usize {
        self.pairs.len()
    }

    /// Appends the tokens of `piece` to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() > HEAP_THRESHOLD {
            self.encode_with_heap(piece, out);
        } else {
            self.encode_by_scan(piece, out);
        }
    }

    // ANCHOR: scan
    /// BPE by rescanning: after each merge only the two pairs next to it
    /// change, but finding the lowest rank looks at them all.
    pub fn encode_by_scan(&self, piece: &[u8], out: &mut Vec<u32>) {
        let start = out.len();
        out.extend(piece.iter().map(|&b| self.byte_id(b)));
        let parts = &mut out[start..];
        let mut n = parts.len();
        // ranks[k]: the merge of parts[k] and parts[k + 1], if any.
        let mut ranks: Vec<Option<Merge>> = (0..n.saturating_sub(1))
            .map(|k| self.merge(parts[k], parts[k + 1]))
            .collect();
        loop {
            let best = ranks[..n.saturating_sub(1)]
                .iter()
                .enumerate()
                .filter_map(|(k, m)| m.map(|m| (m.rank, k)))
                .min();
            let Some((_, k)) = best else { break };
            parts[k] = ranks[k].expect("the lowest rank is a merge").id;
            parts.copy_within(k + 2..n, k + 1);
            ranks.copy_within(k + 1..n - 1, k);
            n -= 1;
            if k > 0 {
                ranks[k - 1] = self.merge(parts[k - 1], parts[k]);
            }
            if k + 1 < n {
                ranks[k] = self.merge(parts[k], parts[k + 1]);
            }
        }
        out.truncate(start + n);
    }
    // ANCHOR_END: scan

    // ANCHOR: heap
    /// BPE with a priority queue of candidate merges over a linked list of
    /// parts. A queued merge goes stale when a neighbour merges first; it
    /// is dropped when it comes out of the queue and no longer matches.
    pub fn encode_with_heap(&self, piece: &[u8], out: &mut Vec<u32>) {
        let n = piece.len();
        let mut id: Vec<u32> = piece.iter().map(|&b| self.byte_id(b)).collect();
        // A part is named by its first byte; next/prev link the live parts.
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        // Min-heap on (rank, position): the lowest rank, then the leftmost.
        let mut heap = BinaryHeap::new();
        for i in 0..n.saturating_sub(1) {
            if let Some(m) = self.merge(id[i], id[i + 1]) {
                heap.push(Reverse((m.rank, i, i + 1)));
            }
        }
        while let Some(Reverse((rank, l, r))) = heap.pop() {
            // Stale unless l still lives next to r and they still make it.
            if !alive[l] || next[l] != r || !alive[r] {
                continue;
            }
            let Some(m) = self.merge(id[l], id[r]).filter(|m| m.rank == rank) else {
                continue;
            };
            id[l] = m.id;
            alive[r] = false;
            next[l] = next[r];
            if next[l] < n {
                prev[next[l]] = l;
                if let Some(m) = self.merge(id[l], id[next[l]]) {
                    heap.push(Reverse((m.rank, l, next[l])));
                }
            }
            if prev[l] < n {
                if let Some(m) = self.merge(id[prev[l]], id[l]) {
                    heap.push(Reverse((m.rank, prev[l], l)));
                }
            }
        }
        let mut i = 0;
        while i < n {
            out.push(id[i]);
            i = next[i];
        }
    }
    // ANCHOR_END: heap
}

/// Every byte value, so a one-byte slice can be borrowed for any byte.
const BYTES: [u8; 256] = {
    let mut b = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        b[i] = i as u8;
        i += 1;
    }
    b
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes are their own ids; merges: "ab" (rank 0), "abc" (1), "bc" (2).
    fn toy() -> MergeTable {
        let mut byte_ids = [0u32; 256];
        for (b, id) in byte_ids.iter_mut().enumerate() {
            *id = b as u32;
        }
        MergeTable::new(
            byte_ids,
            &[(b"ab", 0, 300), (b"abc", 1, 301), (b"bc", 2, 302)],
        )
    }

    fn both(t: &MergeTable, piece: &[u8]) -> Vec<u32> {
        let (mut a, mut b) = (vec![], vec![]);
        t.encode_by_scan(piece, &mut a);
        t.encode_with_heap(piece, &mut b);
        assert_eq!(a, b, "scan and heap disagree on {piece:?}");
        a
    }

    #[test]
    fn bpe_merges_the_lowest_rank_first() {
        let t = toy();
        // "abc": ab (rank 0) first, then ab+c = abc.
        assert_eq!(both(&t, b"abc"), [301]);
        // "bc" alone.
        assert_eq!(both(&t, b"xbc"), [b'x' as u32, 302]);
        // "abab": leftmost first on ties, both merge.
        assert_eq!(both(&t, b"abab"), [300, 300]);
        assert_eq!(both(&t, b""), Vec::<u32>::new());
        assert_eq!(both(&t, b"z"), [b'z' as u32]);
    }

    #[test]
    fn bpe_ranks_a_pair_by_the_token_it_makes() {
        let t = toy();
        // a + bc concatenates to abc, a token: it merges at abc's rank.
        assert_eq!(t.merge(b'a' as u32, 302), Some(Merge { rank: 1, id: 301 }));
        assert_eq!(t.pair_count(), 4);
    }

    #[test]
    fn bpe_heap_and_scan_agree_on_long_pieces() {
        let t = toy();
        let mut state = 7u64;
        for len in [0, 1, 2, 3, 10, 65, 200, 1000] {
            let piece: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    b"abcx"[(state >> 60) as usize % 4]
                })
                .collect();
            both(&t, &piece);
        }
    }
}
