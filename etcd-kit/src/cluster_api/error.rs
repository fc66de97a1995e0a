//! One error for every call to etcd: a [`Kind`] the code decides by, and the one line an
//! operator reads.
//!
//! Invariants:
//! - the kind is decided here and only here ([`EtcdError::of`]), from the gRPC status code
//!   and etcd's error constants (`api/v3rpc/rpctypes/error.go`), the same table etcd's own
//!   Go client keeps (`rpctypes.Error`): no other product code looks at etcd's text;
//! - a constant is recognised only with its status code, so a text elsewhere in a message
//!   (a key, a user name) never makes a kind;
//! - `tests/zone/zone_cluster.rs` provokes the kinds on every etcd release the zone supports, so a
//!   release that rewords one fails there, not silently in a keeper;
//! - [`Display`](std::fmt::Display) is etcd's innermost message (or the transport's
//!   innermost cause), never the layers of tonic and hyper.

use std::fmt;

use tonic::Code;

/// What went wrong, as far as the callers decide by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request did not get through, or no answer came (connection, TLS, timeout).
    Unreachable,
    /// `etcdserver: no leader`: the member has no leader now.
    NoLeader,
    /// `etcdserver: request timed out` (and its "possibly due to previous leader failure"):
    /// the member proposed the request and did not see it applied in time (a slow disk, a
    /// leader lost). It may still be applied: only a request whose redo is harmless is
    /// asked again.
    TimedOut,
    /// `election: no leader`: nobody campaigns in the election asked about.
    ElectionNoLeader,
    /// `etcdserver: unhealthy cluster`: a membership change refused while the voters are
    /// not all connected (strict reconfiguration check).
    UnhealthyCluster,
    /// `etcdserver: mvcc: required revision has been compacted`.
    Compacted,
    /// `etcdserver: mvcc: required revision is a future revision`.
    FutureRevision,
    /// `etcdserver: mvcc: database space exceeded` (the NOSPACE alarm stands).
    NoSpace,
    /// `etcdserver: member not found`.
    MemberNotFound,
    /// `etcdserver: can only promote a learner member`: it is a voter already.
    NotALearner,
    /// `etcdserver: can only promote a learner member which is in sync with leader`.
    LearnerNotReady,
    /// `etcdserver: user name not found`.
    UserNotFound,
    /// `etcdserver: role name not found`.
    RoleNotFound,
    /// `etcdserver: user name already exists`.
    UserAlreadyExists,
    /// `etcdserver: role name already exists`.
    RoleAlreadyExists,
    /// `etcdserver: role is not granted to the user`.
    RoleNotGranted,
    /// `etcdserver: permission is not granted to the role`.
    PermissionNotGranted,
    /// `etcdserver: permission denied`.
    PermissionDenied,
    /// `etcdserver: revision of auth store is old`: the auth store changed while the
    /// request was in flight; asking again is safe.
    AuthOldRevision,
    /// `etcdserver: authentication is not enabled`.
    AuthNotEnabled,
    /// The client's own refusal of an answer larger than it decodes (gRPC's "decoded
    /// message length too large"): ask for less at once.
    AnswerTooLarge,
    /// `auth: authentication failed, password was given for no password user`.
    NoPasswordUser,
    /// `etcdserver: authentication failed, invalid user ID or password`.
    AuthFailed,
    /// Any other answer of etcd.
    Refused,
}

/// etcd's constants: (status code, message, kind). Matched whole, at the message's end
/// (a status relayed through the gateway or a proxy may carry a prefix).
const CONSTANTS: &[(Code, &str, Kind)] = &[
    (Code::Unavailable, "etcdserver: no leader", Kind::NoLeader),
    (
        Code::Unavailable,
        "etcdserver: request timed out",
        Kind::TimedOut,
    ),
    (
        Code::Unavailable,
        "etcdserver: request timed out, possibly due to previous leader failure",
        Kind::TimedOut,
    ),
    (Code::Unknown, "election: no leader", Kind::ElectionNoLeader),
    (
        Code::Unavailable,
        "etcdserver: unhealthy cluster",
        Kind::UnhealthyCluster,
    ),
    (
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
        Kind::Compacted,
    ),
    (
        Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
        Kind::FutureRevision,
    ),
    (
        Code::ResourceExhausted,
        "etcdserver: mvcc: database space exceeded",
        Kind::NoSpace,
    ),
    (
        Code::NotFound,
        "etcdserver: member not found",
        Kind::MemberNotFound,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: can only promote a learner member",
        Kind::NotALearner,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: can only promote a learner member which is in sync with leader",
        Kind::LearnerNotReady,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: user name not found",
        Kind::UserNotFound,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: role name not found",
        Kind::RoleNotFound,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: user name already exists",
        Kind::UserAlreadyExists,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: role name already exists",
        Kind::RoleAlreadyExists,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: role is not granted to the user",
        Kind::RoleNotGranted,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: permission is not granted to the role",
        Kind::PermissionNotGranted,
    ),
    (
        Code::PermissionDenied,
        "etcdserver: permission denied",
        Kind::PermissionDenied,
    ),
    (
        Code::InvalidArgument,
        "etcdserver: revision of auth store is old",
        Kind::AuthOldRevision,
    ),
    (
        Code::FailedPrecondition,
        "etcdserver: authentication is not enabled",
        Kind::AuthNotEnabled,
    ),
    (
        Code::Unknown,
        "auth: authentication failed, password was given for no password user",
        Kind::NoPasswordUser,
    ),
    (
        Code::InvalidArgument,
        "etcdserver: authentication failed, invalid user ID or password",
        Kind::AuthFailed,
    ),
];

/// A failed call to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdError {
    kind: Kind,
    refusal: bool,
    message: String,
}

impl EtcdError {
    /// Classifies a failure of etcd-client (the one place that reads etcd's text).
    pub fn of(err: &etcd_client::Error) -> EtcdError {
        match err {
            etcd_client::Error::GRpcStatus(status) => {
                Self::of_status(status.code(), status.message())
            }
            other => {
                let mut cause: &dyn std::error::Error = other;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                EtcdError::unreachable(innermost(&cause.to_string()))
            }
        }
    }

    /// Classifies a gRPC status (code and message) as etcd sent it.
    pub fn of_status(code: Code, message: &str) -> EtcdError {
        let constant = CONSTANTS
            .iter()
            .filter(|(c, text, _)| *c == code && message.ends_with(text))
            .max_by_key(|(_, text, _)| text.len());
        let refusal = !matches!(
            code,
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
        );
        let kind = match constant {
            Some((_, _, kind)) => *kind,
            None if code == Code::OutOfRange && message.contains("message length too large") => {
                Kind::AnswerTooLarge
            }
            None if refusal => Kind::Refused,
            None => Kind::Unreachable,
        };
        let message = if message.is_empty() {
            format!("{code:?}")
        } else {
            // A transport failure inside a request comes as an Unknown/Unavailable status
            // whose message holds the whole chain: keep its end.
            innermost(message).to_string()
        };
        EtcdError {
            kind,
            refusal,
            message,
        }
    }

    /// A request that did not get through or got no answer, said as `message`.
    pub fn unreachable(message: impl Into<String>) -> EtcdError {
        EtcdError {
            kind: Kind::Unreachable,
            refusal: false,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether etcd answered (and refused), as opposed to the request not getting
    /// through: another member would answer a refusal the same way.
    pub fn is_refusal(&self) -> bool {
        self.refusal
    }

    /// The same error, said with `context` first ("https://…:2379: …").
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> EtcdError {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The same kind, said as `message`.
    #[must_use]
    pub fn said(mut self, message: impl Into<String>) -> EtcdError {
        self.message = message.into();
        self
    }
}

impl From<etcd_client::Error> for EtcdError {
    fn from(err: etcd_client::Error) -> Self {
        EtcdError::of(&err)
    }
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EtcdError {}

/// Callers that still say their failures as a line take the line.
impl From<EtcdError> for String {
    fn from(err: EtcdError) -> String {
        err.message
    }
}

/// A call that got no answer within its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoAnswer(pub std::time::Duration);

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl From<NoAnswer> for String {
    fn from(late: NoAnswer) -> String {
        late.to_string()
    }
}

impl From<NoAnswer> for EtcdError {
    fn from(late: NoAnswer) -> EtcdError {
        EtcdError::unreachable(late.to_string())
    }
}

fn innermost(message: &str) -> &str {
    message.rsplit(": ").next().unwrap_or(message).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constant_is_its_kind_only_with_its_code() {
        for (code, text, kind) in CONSTANTS {
            let e = EtcdError::of_status(*code, text);
            assert_eq!(e.kind(), *kind, "{text}");
            let other = if *code == Code::Internal {
                Code::Aborted
            } else {
                Code::Internal
            };
            assert_eq!(EtcdError::of_status(other, text).kind(), Kind::Refused);
        }
    }

    #[test]
    fn the_longer_constant_wins_and_a_text_inside_a_message_is_not_a_kind() {
        let ready = "etcdserver: can only promote a learner member which is in sync with leader";
        let e = EtcdError::of_status(Code::FailedPrecondition, ready);
        assert_eq!(e.kind(), Kind::LearnerNotReady);
        // A key or user named like a constant does not make the kind.
        let e = EtcdError::of_status(
            Code::FailedPrecondition,
            "etcdserver: role name not found: x",
        );
        assert_eq!(e.kind(), Kind::Refused);
    }

    #[test]
    fn etcds_own_timeout_is_its_own_kind_not_an_unreachable_member() {
        // cc81: a DeleteUser a one-member zone did not apply within etcd's own timeout.
        let e = EtcdError::of_status(Code::Unavailable, "etcdserver: request timed out");
        assert_eq!(e.kind(), Kind::TimedOut);
        assert!(!e.is_refusal());
        let e = EtcdError::of_status(
            Code::Unavailable,
            "etcdserver: request timed out, possibly due to previous leader failure",
        );
        assert_eq!(e.kind(), Kind::TimedOut);
    }

    #[test]
    fn an_answer_larger_than_the_client_takes_is_its_own_kind() {
        let e = EtcdError::of_status(
            Code::OutOfRange,
            "Error, decoded message length too large: found 104857600 bytes, the limit is: 4194304 bytes",
        );
        assert_eq!(e.kind(), Kind::AnswerTooLarge);
        let compacted = EtcdError::of_status(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        );
        assert_eq!(compacted.kind(), Kind::Compacted);
    }

    #[test]
    fn the_line_is_the_innermost_message() {
        let e = EtcdError::of_status(
            Code::Unavailable,
            "transport: error while dialing: dial tcp 127.0.0.1:2379: connect: connection refused",
        );
        assert_eq!(e.kind(), Kind::Unreachable);
        assert!(!e.is_refusal());
        assert_eq!(e.to_string(), "connection refused");
        assert_eq!(
            EtcdError::of_status(Code::PermissionDenied, "").to_string(),
            "PermissionDenied"
        );
        let e = EtcdError::of_status(Code::NotFound, "etcdserver: member not found");
        assert!(e.is_refusal());
        assert_eq!(e.to_string(), "member not found");
        assert_eq!(
            e.context("https://127.0.0.1:2379").to_string(),
            "https://127.0.0.1:2379: member not found"
        );
    }
}
