//! The call and return entries of a history as a doubly linked list over indices.
//!
//! Invariants: entries are sorted by time, calls before returns at equal times; head and
//! tail sentinels make removal and reinsertion O(1); `lift` and `unlift` of an operation
//! must be undone in reverse order (as the search's stack does).

use super::model::Operation;

/// The entries as a doubly linked list over indices, with head and tail sentinels, so
/// lifting an operation and putting it back (in reverse order) are O(1).
pub(super) struct List {
    /// (operation, is call), sorted by time.
    pub(super) entries: Vec<(usize, bool)>,
    pub(super) next: Vec<usize>,
    prev: Vec<usize>,
    pub(super) call: Vec<usize>,
    ret: Vec<Option<usize>>,
    head: usize,
    pub(super) tail: usize,
}

impl List {
    pub(super) fn new<O>(ops: &[Operation<O>]) -> List {
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

    pub(super) fn first(&self) -> usize {
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

    pub(super) fn lift(&mut self, op: usize) {
        self.remove(self.call[op]);
        if let Some(r) = self.ret[op] {
            self.remove(r);
        }
    }

    pub(super) fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret[op] {
            self.restore(r);
        }
        self.restore(self.call[op]);
    }
}
