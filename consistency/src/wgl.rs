//! The Wing-Gong/Lowe linearizability search, generic over a sequential model, with
//! memoisation of (set of operations linearized, model state), as porcupine does.
//!
//! A history is linearizable when its operations can be put in one order that (1)
//! respects real time: an operation that returned before another was called comes first,
//! and (2) is a legal run of the model from its initial state. The search keeps the
//! operations as a doubly linked list of call and return entries sorted by time (calls
//! before returns at equal times, so operations that touch overlap: the lenient reading).
//! It walks the list: at a call entry it tries to linearize that operation now (the model
//! accepts it and (set, state) was never reached before), lifting its entries out of the
//! list and restarting from the head; at a return entry the operation returning was not
//! linearized in time, so it undoes the last choice and tries the next candidate.
//!
//! Invariants:
//! - An operation with no return time (`ret: None`, an unknown outcome) has no return
//!   entry: it may be linearized anywhere after its call, or never. The search succeeds
//!   once every operation with a return time is linearized, whatever is left.
//! - The cache holds every (set, state) pair reached. A pair reached again has the same
//!   future (which operations remain and what the model allows depend on nothing else),
//!   so it is pruned; this makes the search exponential only in the concurrency, not in
//!   the length of the history.
//! - On failure, `Stuck` names the operation whose return entry stopped the longest
//!   partial linearization found, and the model's state there: the first place where no
//!   order works, which is what a person reads to see the anomaly.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A sequential specification: a state and which operations it allows.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    fn init(&self) -> Self::State;
    /// The state after `op` if the model allows `op` (with the result it returned) in
    /// `state`, or None if it does not.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation of a history: when it was called, when it returned (None: unknown
/// outcome, may take effect at any time after its call, or never), what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<O> {
    pub call: u64,
    pub ret: Option<u64>,
    pub op: O,
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck<S> {
    /// Index of the operation that could not be linearized before it returned.
    pub op: usize,
    /// The model's state after the longest partial linearization.
    pub state: S,
    /// How many operations that partial linearization holds.
    pub linearized: usize,
}

/// Checks `ops` against `model`.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Op>]) -> Result<(), Stuck<M::State>> {
    let finite = ops.iter().filter(|o| o.ret.is_some()).count();
    if finite == 0 {
        return Ok(());
    }
    let mut list = List::new(ops);
    let mut cache: HashSet<(Bits, M::State), BuildHasherDefault<Fx>> = HashSet::default();
    let mut bits = Bits::new(ops.len());
    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut done = 0;
    let mut best: Option<Stuck<M::State>> = None;
    let mut entry = list.first();
    loop {
        if done == finite || entry == list.tail {
            return Ok(());
        }
        let (op, is_call) = list.entries[entry];
        if is_call {
            if let Some(next) = model.step(&state, &ops[op].op) {
                bits.set(op);
                if cache.insert((bits.clone(), next.clone())) {
                    stack.push((op, std::mem::replace(&mut state, next)));
                    list.lift(op);
                    done += usize::from(ops[op].ret.is_some());
                    entry = list.first();
                    continue;
                }
                bits.clear(op);
            }
            entry = list.next[entry];
        } else {
            if best.as_ref().is_none_or(|b| stack.len() > b.linearized) {
                best = Some(Stuck {
                    op,
                    state: state.clone(),
                    linearized: stack.len(),
                });
            }
            let Some((last, previous)) = stack.pop() else {
                // `best` was just set: the return entry reached with nothing to undo.
                return Err(best.unwrap_or(Stuck {
                    op,
                    state,
                    linearized: 0,
                }));
            };
            state = previous;
            bits.clear(last);
            list.unlift(last);
            done -= usize::from(ops[last].ret.is_some());
            entry = list.next[list.call[last]];
        }
    }
}

/// The entries as a doubly linked list over indices, with head and tail sentinels, so
/// lifting an operation and putting it back (in reverse order) are O(1).
struct List {
    /// (operation, is call), sorted by time.
    entries: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call: Vec<usize>,
    ret: Vec<Option<usize>>,
    head: usize,
    tail: usize,
}

impl List {
    fn new<O>(ops: &[Operation<O>]) -> List {
        let mut timed: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            timed.push((o.call, false, i));
            if let Some(r) = o.ret {
                timed.push((r, true, i));
            }
        }
        // (time, is return): calls first at equal times.
        timed.sort_unstable();
        let n = timed.len();
        let (head, tail) = (n, n + 1);
        let mut call = vec![0; ops.len()];
        let mut ret = vec![None; ops.len()];
        let mut entries = Vec::with_capacity(n);
        for (index, &(_, is_return, op)) in timed.iter().enumerate() {
            entries.push((op, !is_return));
            if is_return {
                ret[op] = Some(index);
            } else {
                call[op] = index;
            }
        }
        let mut next = vec![tail; n + 2];
        let mut prev = vec![head; n + 2];
        let chain: Vec<usize> = std::iter::once(head).chain(0..n).chain([tail]).collect();
        for pair in chain.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        List {
            entries,
            next,
            prev,
            call,
            ret,
            head,
            tail,
        }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn remove(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn restore(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    fn lift(&mut self, op: usize) {
        self.remove(self.call[op]);
        if let Some(r) = self.ret[op] {
            self.remove(r);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret[op] {
            self.restore(r);
        }
        self.restore(self.call[op]);
    }
}

/// A fixed-size set of operation indices.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// A fast non-cryptographic hasher (FxHash's mixing step) for the cache.
#[derive(Default)]
struct Fx(u64);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of integers: write(v) and read() -> v.
    struct Register;
    #[derive(Debug)]
    enum R {
        Write(i64),
        Read(i64),
    }
    impl Model for Register {
        type State = i64;
        type Op = R;
        fn init(&self) -> i64 {
            0
        }
        fn step(&self, s: &i64, op: &R) -> Option<i64> {
            match op {
                R::Write(v) => Some(*v),
                R::Read(v) => (v == s).then_some(*s),
            }
        }
    }

    fn op(call: u64, ret: Option<u64>, op: R) -> Operation<R> {
        Operation { call, ret, op }
    }

    #[test]
    fn concurrent_operations_may_go_either_way() {
        // write(1) overlaps read()->0 and read()->1.
        let h = [
            op(0, Some(10), R::Write(1)),
            op(1, Some(3), R::Read(1)),
            op(4, Some(6), R::Read(1)),
        ];
        assert!(check(&Register, &h).is_ok());
        let h = [op(0, Some(10), R::Write(1)), op(1, Some(3), R::Read(0))];
        assert!(check(&Register, &h).is_ok());
    }

    #[test]
    fn real_time_order_is_kept() {
        // read()->1 then, strictly later, read()->0: the write cannot be undone.
        let h = [
            op(0, Some(10), R::Write(1)),
            op(1, Some(3), R::Read(1)),
            op(4, Some(6), R::Read(0)),
        ];
        let stuck = check(&Register, &h).unwrap_err();
        assert_eq!(stuck.op, 2);
        assert_eq!(stuck.state, 1);
        // A read that returns before a write is called cannot see it.
        let h = [op(0, Some(1), R::Read(7)), op(2, Some(3), R::Write(7))];
        assert_eq!(check(&Register, &h).unwrap_err().op, 0);
        // Touching intervals overlap: read at [5,5] may see a write called at 5.
        let h = [op(5, Some(9), R::Write(7)), op(0, Some(5), R::Read(7))];
        assert!(check(&Register, &h).is_ok());
    }

    #[test]
    fn unknown_operations_take_effect_later_or_never() {
        // An unknown write may take effect long after its client gave up...
        let h = [
            op(0, None, R::Write(5)),
            op(10, Some(11), R::Read(0)),
            op(20, Some(21), R::Read(5)),
        ];
        assert!(check(&Register, &h).is_ok());
        // ...or never, but only once: not un-done.
        let h = [
            op(0, None, R::Write(5)),
            op(10, Some(11), R::Read(5)),
            op(20, Some(21), R::Read(0)),
        ];
        assert_eq!(check(&Register, &h).unwrap_err().op, 2);
        // Not before its call.
        let h = [op(0, Some(1), R::Read(5)), op(2, None, R::Write(5))];
        assert!(check(&Register, &h).is_err());
        // Only unknown operations, or none at all: nothing to linearize.
        assert!(check(&Register, &[op(0, None, R::Read(3))]).is_ok());
        assert!(check::<Register>(&Register, &[]).is_ok());
    }

    #[test]
    fn long_concurrent_histories_stay_fast() {
        // 2,000 writes, each overlapping the next three, then one read: only a write
        // that can come last may be read; the cache keeps this near linear.
        let mut h: Vec<_> = (0..2000u64)
            .map(|i| op(i * 10, Some(i * 10 + 35), R::Write(i as i64 + 1)))
            .collect();
        h.push(op(30_000, Some(30_001), R::Read(2000)));
        let start = std::time::Instant::now();
        assert!(check(&Register, &h).is_ok());
        h.last_mut().unwrap().op = R::Read(1);
        assert_eq!(check(&Register, &h).unwrap_err().op, 2000);
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
