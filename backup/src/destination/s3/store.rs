//! Where an S3 store is and how it is reached: its bucket, prefix, endpoint and region
//! ([`Store`]), the sizes and timing ([`Options`]), and the [`S3Target`] made of them with
//! its HTTP client.
//!
//! Invariants: the client has timeouts, follows no redirect, and, when `ca_file` is set,
//! trusts only the roots in it; parts are never smaller than S3's minimum; an endpoint
//! that does not parse is refused naming the form it must take.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusty_s3::{Bucket, UrlStyle};
use zone_io::Error;
use zone_io::{read_small_file, Links};

use super::super::credentials::Credentials;
use super::super::object::TargetError;
use super::super::retry::{Failure, Policy};

pub const DEFAULT_REGION: &str = "us-east-1";
/// The AWS CLI's part size.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// S3's smallest part (but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub(super) const MAX_PARTS: u64 = 10_000;
/// An error or listing response larger than this is not an S3 answer.
pub(super) const MAX_XML_BYTES: u64 = 16 << 20;
/// The longest a presigned URL may live (S3's limit).
pub(super) const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// AWS's own endpoint for `region`, when the target names none.
pub fn aws_endpoint(region: &str) -> String {
    format!("https://s3.{region}.amazonaws.com")
}

/// Where the store is.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    pub bucket: &'a str,
    /// No leading or trailing `/`; may be empty.
    pub prefix: &'a str,
    /// `http(s)://host[:port]`.
    pub endpoint: &'a str,
    pub region: &'a str,
    pub ca_file: Option<&'a Path>,
}

/// Sizes and timing; the defaults suit a real store, tests shrink them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files at least this long are uploaded in parts of this size (at least
    /// [`MIN_PART_SIZE`]; larger when a file would need more than 10,000 parts).
    pub part_size: u64,
    /// Keys per `ListObjectsV2` page (S3 answers at most 1000).
    pub list_page: u16,
    pub retry: Policy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            part_size: DEFAULT_PART_SIZE,
            list_page: 1000,
            retry: Policy::default(),
        }
    }
}

/// An S3 bucket and prefix as a [`Target`](super::super::Target).
pub struct S3Target {
    pub(super) url: String,
    pub(super) bucket: Bucket,
    pub(super) prefix: String,
    pub(super) credentials: rusty_s3::Credentials,
    pub(super) agent: ureq::Agent,
    pub(super) options: Options,
}

impl S3Target {
    /// The target `url` (as written, for messages) at `store`.
    pub fn new(
        url: &str,
        store: &Store<'_>,
        credentials: Credentials,
        options: Options,
    ) -> Result<S3Target, Error> {
        let endpoint = store.endpoint.trim_end_matches('/');
        let bad_endpoint = |why: String| {
            Error::new(format!("endpoint {endpoint:?}: {why}"))
                .fix("write the endpoint as https://host[:port] (or http://host:port on a LAN)")
        };
        let parsed = endpoint.parse().map_err(|e| bad_endpoint(format!("{e}")))?;
        let bucket = Bucket::new(
            parsed,
            UrlStyle::Path,
            store.bucket.to_string(),
            store.region.to_string(),
        )
        .map_err(|e| bad_endpoint(e.to_string()))?;
        let agent = agent(&options.retry, store.ca_file)?;
        let credentials = match credentials.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(
                credentials.access_key,
                credentials.secret_key,
                token,
            ),
            None => rusty_s3::Credentials::new(credentials.access_key, credentials.secret_key),
        };
        Ok(S3Target {
            url: url.to_string(),
            bucket,
            prefix: store.prefix.trim_matches('/').to_string(),
            credentials,
            agent,
            options: Options {
                part_size: options.part_size.max(MIN_PART_SIZE),
                ..options
            },
        })
    }

    /// The key of object `name`.
    pub fn key(&self, name: &str) -> String {
        join_key(&self.prefix, name)
    }

    pub(super) fn error(&self, object: &str, failure: Failure) -> TargetError {
        TargetError::new(&self.url, object, failure.problem, failure.retryable)
    }
}

/// `prefix/name`, or `name` alone with an empty prefix.
pub(super) fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The client of one store: `ca_file`, when set, holds the only roots its certificate may
/// chain to; statuses are answers, not errors; a redirect is returned, not followed.
pub(super) fn agent(policy: &Policy, ca_file: Option<&Path>) -> Result<ureq::Agent, Error> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca_file) = ca_file {
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(load_roots(
            ca_file,
        )?)));
    }
    Ok(ureq::Agent::config_builder()
        .timeout_connect(Some(policy.connect_timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(concat!("zone-etcd/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .into())
}

/// The certificates of a PEM file, the only roots the store may chain to.
fn load_roots(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = read_small_file(path, Links::Follow)?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .map(|der| der.map(|d| ureq::tls::Certificate::from_der(d.as_ref()).to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(format!("not a PEM certificate file: {e}")).file(path))?;
    if roots.is_empty() {
        return Err(Error::new("holds no PEM certificate")
            .file(path)
            .fix("point ca_file to the PEM of the CA the store's certificate chains to"));
    }
    Ok(roots)
}
