//! What the search takes: a sequential [`Model`] and the [`Operation`]s of a history.
//!
//! Invariants: a model is deterministic (`step` of equal states and operations gives
//! equal results), and equal operations have equal effects; an operation's `ret`, when
//! known, is not before its `call`. Nothing here searches.

use std::hash::Hash;

/// A sequential specification: a state and which operations it allows.
pub trait Model {
    type State: Clone + Eq + Hash;
    /// Equal operations have equal effects (used to treat identical unknown operations
    /// as interchangeable).
    type Op: Eq + Hash;
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
