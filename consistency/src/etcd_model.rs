//! The etcd key model: one key as a register of (value or absent, revision), with get,
//! put, delete and compare-and-set on the key's mod revision; and its per-key check.
//!
//! State: the key's value (a value id, or absent) and `rev`, a lower bound of the store's
//! revision at this point of the key's order: the revision of the last write whose
//! revision is known, or the header revision of the last read, whichever came later.
//! Every key starts absent at revision 0 (a recorder uses fresh keys). Steps:
//! - get → (v, H): the key holds v (absent: absent) and `rev` ≤ H; then `rev` = H. (The
//!   read happened at revision H: everything before it in the order is at most H, and
//!   every write after it is above H.)
//! - put v, revision R known: R > `rev`; then (v, R). Unknown R: (v, `rev`).
//! - delete, ok, deleted 1 at R: the key is present and R > `rev`; then (absent, R).
//!   Deleted 0 at H: the key is absent and `rev` ≤ H; then `rev` = H. Unknown outcome:
//!   the key is present; then (absent, `rev`).
//! - cas E → succeeded at R: the compare may hold and R > `rev`; then (v, R).
//!   → not succeeded at H: the compare may fail and `rev` ≤ H; then `rev` = H.
//!   Unknown outcome: the compare may hold; then as a put.
//!
//! The compare "mod revision == E" holds for an absent key iff E = 0, and for a value of
//! known mod revision M iff M = E. A value's mod revision is known from its ok write's
//! response or from anything that observed it (`facts.rs`); it stays unknown only for a
//! write of unknown outcome that nobody observed, and then the compare may hold or fail
//! (for any E ≠ 0): lenient, hence sound. A write of unknown outcome leaves `rev` as it
//! was, also lenient. Failed operations are dropped; unknown ones have no return time.
//! A final read is a get called after every operation returned.
//!
//! Soundness: etcd orders everything by revision; the order "by revision, each read after
//! the write of its header revision" respects real time for linearizable requests, and in
//! it every step above holds. So a correct history always has a legal order, and an
//! anomaly found here is a real one.

use crate::wgl::Model;

/// One key's operation, with its result, values as ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyOp {
    Get {
        value: Option<u32>,
        header: i64,
    },
    Put {
        value: u32,
        rev: Option<i64>,
    },
    Delete {
        deleted: bool,
        header: i64,
    },
    DeleteUnknown,
    Cas {
        value: u32,
        expect: i64,
        succeeded: bool,
        header: i64,
    },
    CasUnknown {
        value: u32,
        expect: i64,
        rev: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyState {
    pub value: Option<u32>,
    pub rev: i64,
}

/// The model of one key: each value id's mod revision, where known.
#[derive(Debug, Clone, Default)]
pub struct KeyModel {
    pub revs: Vec<Option<i64>>,
}

#[derive(PartialEq)]
enum Cmp {
    Holds,
    Fails,
    Maybe,
}

impl KeyModel {
    fn compare(&self, s: &KeyState, expect: i64) -> Cmp {
        let yes = |b: bool| if b { Cmp::Holds } else { Cmp::Fails };
        match s.value {
            None => yes(expect == 0),
            Some(v) => match self.revs.get(v as usize).copied().flatten() {
                Some(m) => yes(m == expect),
                None if expect == 0 => Cmp::Fails,
                None => Cmp::Maybe,
            },
        }
    }
}

impl Model for KeyModel {
    type State = KeyState;
    type Op = KeyOp;

    fn init(&self) -> KeyState {
        KeyState {
            value: None,
            rev: 0,
        }
    }

    fn step(&self, s: &KeyState, op: &KeyOp) -> Option<KeyState> {
        let put = |value: u32, rev: Option<i64>| match rev {
            Some(r) => (r > s.rev).then_some(KeyState {
                value: Some(value),
                rev: r,
            }),
            None => Some(KeyState {
                value: Some(value),
                rev: s.rev,
            }),
        };
        match *op {
            KeyOp::Get { value, header } => {
                (s.value == value && s.rev <= header).then_some(KeyState { value, rev: header })
            }
            KeyOp::Put { value, rev } => put(value, rev),
            KeyOp::Delete {
                deleted: true,
                header,
            } => (s.value.is_some() && header > s.rev).then_some(KeyState {
                value: None,
                rev: header,
            }),
            KeyOp::Delete {
                deleted: false,
                header,
            } => (s.value.is_none() && s.rev <= header).then_some(KeyState {
                value: None,
                rev: header,
            }),
            KeyOp::DeleteUnknown => s.value.is_some().then_some(KeyState {
                value: None,
                rev: s.rev,
            }),
            KeyOp::Cas {
                value,
                expect,
                succeeded: true,
                header,
            } => (self.compare(s, expect) != Cmp::Fails)
                .then(|| put(value, Some(header)))
                .flatten(),
            KeyOp::Cas {
                expect,
                succeeded: false,
                header,
                ..
            } => (self.compare(s, expect) != Cmp::Holds && s.rev <= header).then_some(KeyState {
                value: s.value,
                rev: header,
            }),
            KeyOp::CasUnknown { value, expect, rev } => (self.compare(s, expect) != Cmp::Fails)
                .then(|| put(value, rev))
                .flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(revs: &[Option<i64>]) -> KeyModel {
        KeyModel {
            revs: revs.to_vec(),
        }
    }
    fn st(value: Option<u32>, rev: i64) -> KeyState {
        KeyState { value, rev }
    }

    #[test]
    fn reads_and_writes_follow_revisions() {
        let m = model(&[Some(5), Some(7)]);
        let s0 = m.init();
        let s1 = m
            .step(
                &s0,
                &KeyOp::Put {
                    value: 0,
                    rev: Some(5),
                },
            )
            .unwrap();
        assert_eq!(s1, st(Some(0), 5));
        assert_eq!(
            m.step(
                &s1,
                &KeyOp::Get {
                    value: Some(0),
                    header: 6
                }
            ),
            Some(st(Some(0), 6))
        );
        // Read at a header below the write: impossible.
        assert_eq!(
            m.step(
                &s1,
                &KeyOp::Get {
                    value: Some(0),
                    header: 4
                }
            ),
            None
        );
        // A write below the last read's revision: impossible.
        assert_eq!(
            m.step(
                &st(Some(0), 8),
                &KeyOp::Put {
                    value: 1,
                    rev: Some(7)
                }
            ),
            None
        );
        assert_eq!(
            m.step(
                &s1,
                &KeyOp::Delete {
                    deleted: true,
                    header: 6
                }
            ),
            Some(st(None, 6))
        );
        assert_eq!(
            m.step(
                &s1,
                &KeyOp::Delete {
                    deleted: false,
                    header: 6
                }
            ),
            None
        );
        assert_eq!(m.step(&s0, &KeyOp::DeleteUnknown), None);
    }

    #[test]
    fn compare_and_set_on_mod_revision() {
        let m = model(&[Some(5), None, Some(9)]);
        let s = st(Some(0), 5);
        let cas = |expect, succeeded| KeyOp::Cas {
            value: 2,
            expect,
            succeeded,
            header: 9,
        };
        assert_eq!(m.step(&s, &cas(5, true)), Some(st(Some(2), 9)));
        assert_eq!(m.step(&s, &cas(4, true)), None);
        assert_eq!(m.step(&s, &cas(4, false)), Some(st(Some(0), 9)));
        assert_eq!(m.step(&s, &cas(5, false)), None);
        // Absent: mod revision 0.
        assert!(m.step(&m.init(), &cas(0, true)).is_some());
        assert!(m.step(&m.init(), &cas(0, false)).is_none());
        // A value of unknown mod revision: either way, unless 0 is expected.
        let u = st(Some(1), 5);
        assert!(m.step(&u, &cas(6, true)).is_some());
        assert!(m.step(&u, &cas(6, false)).is_some());
        assert!(m.step(&u, &cas(0, true)).is_none());
        let unknown = KeyOp::CasUnknown {
            value: 2,
            expect: 5,
            rev: Some(9),
        };
        assert_eq!(m.step(&s, &unknown), Some(st(Some(2), 9)));
        assert_eq!(m.step(&st(Some(0), 9), &unknown), None);
    }
}
