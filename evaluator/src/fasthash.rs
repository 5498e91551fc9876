//! Maps with a fast, non-cryptographic hash (`rustc-hash`'s FxHash) for the
//! evaluator's internal maps, whose keys are small integers (interned
//! labels, vertex numbers) or short identifiers. The standard library's
//! SipHash resists hash flooding, which costs ~10% of an evaluation here;
//! these keys are not chosen by an attacker in a way that matters (a label
//! is interned once, and a map holds the fields of one struct).

/// Builds FxHash hashers.
pub type FastState = rustc_hash::FxBuildHasher;

/// A `HashMap` with FxHash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// An `IndexMap` with FxHash.
pub type FastIndexMap<K, V> = indexmap::IndexMap<K, V, FastState>;

/// An `IndexSet` with FxHash.
pub type FastIndexSet<T> = indexmap::IndexSet<T, FastState>;
