//! A fast, non-cryptographic hasher for the evaluator's internal maps, whose
//! keys are small integers (interned labels, vertex numbers) or short
//! identifiers. The standard library's SipHash resists hash flooding, which
//! costs ~10% of an evaluation here; these keys are not chosen by an
//! attacker in a way that matters (a label is interned once, and a map holds
//! the fields of one struct).

use std::hash::{BuildHasherDefault, Hasher};

/// An odd 64-bit constant with well-spread bits (2^64 / φ).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Word-at-a-time multiplicative hasher.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MUL);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
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
    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiplication leaves the high bits best mixed; fold them into
        // the low bits, which pick the bucket.
        self.0 ^ (self.0 >> 32)
    }
}

/// Builds [`FastHasher`]s.
pub type FastState = BuildHasherDefault<FastHasher>;

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// An `IndexMap` with [`FastHasher`].
pub type FastIndexMap<K, V> = indexmap::IndexMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(x: T) -> u64 {
        FastState::default().hash_one(x)
    }

    #[test]
    fn distinct_small_keys_hash_apart() {
        let hashes: HashSet<u64> = (0u32..10_000).map(hash).collect();
        assert_eq!(hashes.len(), 10_000);
        // Low bits (the bucket index) vary too.
        let low: HashSet<u64> = (0u32..1024).map(|i| hash(i) & 1023).collect();
        assert!(low.len() > 600, "{} distinct buckets", low.len());
    }

    #[test]
    fn strings_differ_by_length_and_content() {
        assert_ne!(hash("a"), hash("a\0"));
        assert_ne!(hash("abcdefgh"), hash("abcdefgi"));
        assert_eq!(hash("same"), hash("same"));
    }
}
