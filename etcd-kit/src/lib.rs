//! zone-etcd-kit: what zone-etcd knows of etcd itself, below any decision about a zone.
//!
//! - [`etcd`]: a release's number, the table of releases and their flags, their known
//!   vulnerabilities, the steps etcd allows between releases, the command line a member
//!   gets, where the binary and etcdutl are and which release they are;
//! - [`cluster_api`]: one client over etcd-client with one typed error
//!   ([`cluster_api::EtcdError`], kinds decided from gRPC codes and etcd's constants in
//!   one table), ranges, the member list and its changes, health, maintenance, snapshots,
//!   and the peer port's question (with the answer a waiting first start gives);
//! - [`wal`]: which member and cluster a data directory holds, read from etcd's own log.
//!
//! It builds on `zone-model` (the members, settings and paths a command line is derived
//! from) and `zone-io`/`zone-pki`. It must never import the app (`zone-etcd`), the
//! keepers, the backup family or anything that decides what a zone does: those sit on top
//! (`tests/module_circles/layers.rs` holds it to this).

#![forbid(unsafe_code)]

pub mod cluster_api;
pub mod etcd;
pub mod wal;
