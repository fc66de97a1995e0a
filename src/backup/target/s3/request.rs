//! One request to the store: the HTTP client (timeouts, the store's CA as its only
//! roots, no redirects), signing, sending, and reading S3's answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusty_s3::{Method, S3Action};
use ureq::http::Response;
use zone_io::{read_small_file, Links};
use zone_pki::Error;

use super::super::retry::{self, Failure, Policy};
use super::{S3Target, MAX_EXPIRY, MAX_XML_BYTES};

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

impl S3Target {
    /// Signs `action` for one attempt of a request that moves `bytes`, sends it with
    /// `body`, and returns the answer if it is a success (2xx), or `absent` is set and
    /// the answer is a 404 other than a missing bucket (`None` then).
    pub(super) fn send<'a, A: S3Action<'a>>(
        &self,
        action: &A,
        body: &[u8],
        bytes: u64,
        absent: bool,
    ) -> Result<Option<Response<ureq::Body>>, Failure> {
        let timeout = Some(self.options.retry.timeout_for(bytes));
        let expiry =
            (self.options.retry.timeout_for(bytes) + Duration::from_secs(60)).min(MAX_EXPIRY);
        let url = action.sign(expiry);
        let url = url.as_str();
        let agent = &self.agent;
        let sent = match A::METHOD {
            Method::Head => agent
                .head(url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Get => agent
                .get(url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Delete => agent
                .delete(url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Put => agent
                .put(url)
                .config()
                .timeout_global(timeout)
                .build()
                .send(body),
            Method::Post => agent
                .post(url)
                .config()
                .timeout_global(timeout)
                .build()
                .send(body),
        };
        let mut response = sent.map_err(|e| retry::transport(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Some(response));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let refusal = retry::refusal(status, &text);
        if absent && status == 404 && refusal.code != "NoSuchBucket" {
            return Ok(None);
        }
        Err(refusal.failure)
    }

    /// Reads a whole XML answer (a listing, an upload id).
    pub(super) fn read_xml(response: Response<ureq::Body>) -> Result<String, Failure> {
        response
            .into_body()
            .with_config()
            .limit(MAX_XML_BYTES)
            .read_to_string()
            .map_err(|e| retry::transport(&e))
    }
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
