//! Least privilege (issue 34): identities no node CA can forge, and what carries them.
//!
//! - [`ca`]: the owner's side. The client root (`client-ca.crt`, `client-ca.key`) lives in
//!   the CA directory beside the zone root, made by `ca init` (or on demand, for a CA
//!   directory made before); `activate` and `bootstrap` give each etcd member of a zone
//!   with `[access]` a signer (`pki/signer.crt`, `pki/signer.key`) and every node the
//!   client root's certificate (`pki/client-ca.crt`).
//! - `zone_model::config::identities`: a node's side: its signer loaded and checked against the client root.
//! - [`tls`]: what a member adds to its TLS set: its own identity (CN its node name,
//!   from its signer; etcd's `--client-cert-file` and the identity of zone-etcd's own
//!   commands on that node) and the client port's trust file (the client root alone when
//!   the policy is enforced, the zone roots beside it while a zone moves over).
//! - [`grant`]: what a signer may issue to a node under the policy (pure).
//! - [`branch`]: a member's branch CA per node it serves, which signs that node's
//!   identities, so revoking the node lists its branches, not each identity.
//! - [`endpoint`]: a member's identity endpoint (peer port + 2, mutual TLS): its signer
//!   answers the zone's nodes' certificate requests; [`wire`] is its HTTP.
//! - [`revoked`]: a node that is not a member learns the zone's revocations from the
//!   members' endpoints, so `env` renews an identity the zone revoked.
//! - [`free`]: a tenant's way back under its quota: a member deletes the keys under a
//!   prefix the node's service (or the node itself) may write, as etcd's root.
//! - [`client`]: a node's calls to the members' endpoints (mutual TLS, each member in
//!   turn).
//! - [`request`]: a node's side: an identity obtained from the zone, its key made here
//!   (a member signs for itself); [`service`]: a service's identity kept current in
//!   the node's state for `env --service`.
//!
//! Invariants: a zone without `[access]` gets none of this and runs as before; the
//! client port's trust never includes the zone root once `enforce` is on, so a node CA's
//! leaf is refused at the handshake whatever its CN; a signer issues a node only what
//! the signed policy gives it, and never `root` or a member's name.

mod answers;
pub mod branch;
pub mod ca;
pub mod client;
mod connection;
pub mod endpoint;
pub mod free;
pub mod grant;
pub mod ledger;
pub mod limits;
pub mod password;
pub mod request;
pub mod revoked;
pub mod service;
pub mod tls;
pub mod wire;
