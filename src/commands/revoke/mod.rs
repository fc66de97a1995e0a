//! `zone-etcd revoke --ca CA_DIR --node NODE_NAME --config NODE_FILE`: the owner locks a
//! node out of the zone (`node`). Every node CA the CA directory issued to the node (and
//! any given with `--node-ca`), a member's signer, and the branches and identities the
//! members' signers issued it (the zone's ledger, [`zone_node::identities::ledger`]) go on
//! a new CRL signed by the zone root, with a CRL number above every one before; the CRL is
//! published in the running zone (`revocation::doc::KEY`), where each member's keeper
//! installs it and cuts the connections opened before it ([`zone_node::revocation`]). Then
//! a revoked member is removed from the cluster, with the safety rules of `leave --node`
//! ([`zone_node::member_removal`]). `revoke --identity CERT_FILE` puts one identity (or a
//! signer or branch, with all it signed) on the CRL the same way (`identity`).
//!
//! Invariants: everything is checked before anything is written; the publication is one
//! transaction that succeeds only when the zone's document is still the one read (two
//! owners' revocations never overwrite each other); the CA directory keeps the last
//! document it published (`revocations.json`), so a number never repeats even when the
//! zone's copy was lost; revoking a node revoked before signs a fresh CRL (the way to
//! renew one past its next update).

mod crl;
mod identity;
mod node;

pub use identity::run_identity;
pub use node::run;
