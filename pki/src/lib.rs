//! zone-pki: the certificates of a zone, and nothing of etcd or of a command line.
//!
//! - [`profile`]: what each certificate says (pure).
//! - [`authority`]: the zone root and node CAs that sign them.
//! - [`inspect`]: reading certificates back to check them.
//!
//! Files are read and written through zone-io (bounded reads, private atomic writes,
//! staged directories), and [`Error`] is zone-io's house error type
//! ([`zone_io::Error`]), re-exported here so `zone_pki::Error` keeps naming it; new code
//! may import it from `zone_io` directly.
//!
//! Trust model: the zone root CA stays with the owner; each node gets a `pathlen:0` CA
//! name-constrained to its own names and issues its own server, peer and client leaves,
//! so no private key travels after activation and no node can speak for another.

pub mod authority;
pub mod inspect;
pub mod profile;

pub use authority::{Authority, Issued};
pub use inspect::CertInfo;
pub use profile::{Host, LeafKind, NodeIdentity};
/// The house error type, defined in zone-io (see the crate docs).
pub use zone_io::{Error, Result};
