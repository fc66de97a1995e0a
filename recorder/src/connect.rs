//! A recorder's connection to a zone: the client certificate's files, read afresh at
//! every connection (so a rotation of the files under a client is followed).
//!
//! Invariants: connecting sends no request (the client is lazy); each request made on
//! the client is bounded by the caller's timeout, a connection attempt by one second.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

/// Where a client's TLS files are: the CA bundle, the client certificate and key.
#[derive(Debug, Clone)]
pub struct CredFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A client to `endpoints` (lazy: no request is sent), with the credentials as they are
/// on disk now, each request bounded by `timeout`.
pub fn connect_now(
    endpoints: &[String],
    creds: &CredFiles,
    timeout: Duration,
) -> impl std::future::Future<Output = Result<Client, String>> {
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let files = (read(&creds.ca), read(&creds.cert), read(&creds.key));
    let endpoints = endpoints.to_vec();
    async move {
        let (ca, cert, key) = (files.0?, files.1?, files.2?);
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key));
        let options = ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        Client::connect(&endpoints, Some(options))
            .await
            .map_err(|e| e.to_string())
    }
}
