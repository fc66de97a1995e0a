//! Jepsen's compare-and-set register, the model of Jepsen's etcd tests (and of the
//! histories porcupine publishes): one register of integers, initially nil, with read,
//! write and cas(from, to) on the register's VALUE.
//!
//! Invariants: a read returns the current value (None for nil); a write always takes
//! effect; a cas that reports success found `from` and left `to`; a cas that reports
//! failure found something else and changed nothing. An unknown cas (timed out) is only
//! ever linearized where its compare holds: where it would not, taking effect changes
//! nothing, which the search already covers by not linearizing it at all.
//! The etcd key model, with compare on mod revision, is `etcd_model.rs`.

use crate::wgl::Model;

/// One operation of the register, with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasOp {
    Read(Option<i64>),
    Write(i64),
    /// A cas whose result is known: `ok` whether the compare held.
    Cas {
        from: i64,
        to: i64,
        ok: bool,
    },
    /// A cas of unknown outcome.
    CasUnknown {
        from: i64,
        to: i64,
    },
}

/// Jepsen's cas-register.
pub struct CasRegister;

impl Model for CasRegister {
    type State = Option<i64>;
    type Op = CasOp;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, op: &CasOp) -> Option<Option<i64>> {
        match *op {
            CasOp::Read(v) => (v == *state).then_some(*state),
            CasOp::Write(v) => Some(Some(v)),
            CasOp::Cas { from, to, ok } => {
                let holds = *state == Some(from);
                match (ok, holds) {
                    (true, true) => Some(Some(to)),
                    (false, false) => Some(*state),
                    _ => None,
                }
            }
            CasOp::CasUnknown { from, to } => (*state == Some(from)).then_some(Some(to)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = CasRegister;
        assert_eq!(m.step(&None, &CasOp::Read(None)), Some(None));
        assert_eq!(m.step(&Some(1), &CasOp::Read(None)), None);
        assert_eq!(m.step(&Some(1), &CasOp::Write(2)), Some(Some(2)));
        let cas = |ok| CasOp::Cas { from: 1, to: 3, ok };
        assert_eq!(m.step(&Some(1), &cas(true)), Some(Some(3)));
        assert_eq!(m.step(&Some(2), &cas(true)), None);
        assert_eq!(m.step(&Some(2), &cas(false)), Some(Some(2)));
        assert_eq!(m.step(&Some(1), &cas(false)), None);
        let unknown = CasOp::CasUnknown { from: 1, to: 3 };
        assert_eq!(m.step(&Some(1), &unknown), Some(Some(3)));
        assert_eq!(m.step(&None, &unknown), None);
    }
}
