//! How a history file is malformed: a [`ParseError`] names the line (1-based; 0 for the
//! file as a whole) and says what is wrong and what it should be.
//!
//! Invariants: one error per malformed file, the first rule broken; its message is one
//! line. Nothing here parses.

use std::fmt;

/// A malformed history: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// `Err` of a [`ParseError`] at `line`.
pub(crate) fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}
