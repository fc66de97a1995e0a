//! zone-pki: the certificates of a zone, and nothing of etcd or of a command line.
//!
//! - [`profile`]: what each certificate says (pure).
//! - [`authority`]: the zone root and node CAs that sign them.
//! - [`inspect`]: reading certificates back to check them.
//! - [`key`]: ECDSA P-256 keys, PKCS#8 PEM; [`encoding`]: PEM chains and serials.
//! - [`client`]: the client root, members' signers and client identities (least
//!   privilege: no node CA can mint a client identity).
//! - [`revocation`]: the zone root's CRL, naming revoked node CAs, signers, branches and
//!   identities by serial.
//! - [`request`]: activation by request: a node's key and PKCS#10 request, read back
//!   and verified, and the owner's answer checked against them.
//!
//! Files are read and written through zone-io (bounded reads, private atomic writes,
//! staged directories), and every failure is zone-io's operator error
//! ([`zone_io::Error`]), named by its own crate everywhere.
//!
//! Its layer: on zone-io only; it must never import the zone model, etcd, the network or
//! a command line (`tests/module_circles/layers.rs` holds it to its list).
//!
//! Trust model: the zone root CA stays with the owner; each node gets a `pathlen:0` CA
//! name-constrained to its own names and issues its own server, peer and client leaves,
//! so no private key travels after activation and no node can speak for another. With
//! activation by request ([`request`]) not even the node CA's key travels: the node makes
//! it and the owner certifies its public key.

#![forbid(unsafe_code)]

pub mod authority;
pub mod client;
pub mod encoding;
pub mod inspect;
pub mod key;
pub mod profile;
pub mod request;
pub mod revocation;

pub use authority::{Authority, Issued};
pub use inspect::CertInfo;
pub use profile::{Host, LeafKind, NodeIdentity};
pub use request::{NewRequest, NodeRequest};
