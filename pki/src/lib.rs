//! zone-pki: the certificates of a zone, and nothing of etcd or of a command line.
//!
//! - [`profile`]: what each certificate says (pure).
//! - [`authority`]: the zone root and node CAs that sign them.
//! - [`inspect`]: reading certificates back to check them.
//! - [`private_files`]: atomic, private writes of keys and bundles.
//!
//! Trust model: the zone root CA stays with the owner; each node gets a `pathlen:0` CA
//! name-constrained to its own names and issues its own server, peer and client leaves,
//! so no private key travels after activation and no node can speak for another.

pub mod authority;
mod error;
pub mod inspect;
pub mod private_files;
pub mod profile;

pub use authority::{Authority, Issued};
pub use error::{Error, Result};
pub use inspect::CertInfo;
pub use profile::{Host, LeafKind, NodeIdentity};
