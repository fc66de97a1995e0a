//! The search's memory: the nodes reached, as sets of operations and model states.
//!
//! Invariants: `Bits` counts its members (so a subset test can stop early); `Cache`
//! keeps, per (finite set, state), an antichain of unknown sets: no member is a subset of
//! another. `Fx` is a fast non-cryptographic hash; nothing here reads input.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The (set, state) pairs reached. The set is split in two: operations with a return
/// time, and those of unknown outcome. A pair reached with unknown operations U is
/// dominated by the same finite set and state reached with U' ⊆ U: whatever finishes the
/// first finishes the second (unknown operations block nothing, and U' leaves more of them
/// free), so only minimal U are kept and anything dominated is pruned.
pub(super) struct Cache<S> {
    seen: HashMap<(Bits, S), Vec<Bits>, BuildHasherDefault<Fx>>,
    /// How many nodes the search went on from (each `first_visit` that said true).
    pub(super) visits: usize,
}

impl<S> Default for Cache<S> {
    fn default() -> Self {
        Cache {
            seen: HashMap::default(),
            visits: 0,
        }
    }
}

impl<S: Clone + Eq + Hash> Cache<S> {
    /// Records (fin, unk, state); false if it was reached before or is dominated.
    pub(super) fn first_visit(&mut self, fin: &Bits, unk: &Bits, state: &S) -> bool {
        match self.seen.entry((fin.clone(), state.clone())) {
            Entry::Vacant(v) => {
                v.insert(vec![unk.clone()]);
                self.visits += 1;
                true
            }
            Entry::Occupied(mut o) => {
                let minimal = o.get_mut();
                if minimal.iter().any(|m| m.subset_of(unk)) {
                    return false;
                }
                minimal.retain(|m| !unk.subset_of(m));
                minimal.push(unk.clone());
                self.visits += 1;
                true
            }
        }
    }
}

/// A fixed-size set of operation indices, and how many it holds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Bits {
    words: Box<[u64]>,
    pub(super) count: usize,
}

impl Bits {
    pub(super) fn new(n: usize) -> Bits {
        Bits {
            words: vec![0; n.div_ceil(64)].into_boxed_slice(),
            count: 0,
        }
    }
    pub(super) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.count += 1;
    }
    pub(super) fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
        self.count -= 1;
    }
    pub(super) fn has(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
    pub(super) fn subset_of(&self, other: &Bits) -> bool {
        self.count <= other.count
            && self
                .words
                .iter()
                .zip(other.words.iter())
                .all(|(a, b)| a & !b == 0)
    }
}

/// A fast non-cryptographic hasher (FxHash's mixing step) for the cache.
#[derive(Default)]
pub(super) struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
