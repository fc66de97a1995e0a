//! One request to the store: signing, sending (through the client of
//! [`super::store::agent`]), and reading S3's answers.
//!
//! Invariant: every request that carries a body (PUT, POST) carries its `Content-MD5`
//! too, signed. A writer killed after its headers went out but before its body did must
//! not leave an object: SeaweedFS stores an empty object for a PUT cut off before its
//! first body byte, unless the digest tells it the body is not what was meant (seen in
//! `tests/zone/backup_targets.rs`); S3 and the others check the digest as well.

use std::time::Duration;

use base64::Engine as _;
use md5::Digest as _;
use rusty_s3::{Method, S3Action};
use ureq::http::Response;

use super::super::retry::{self, Failure};
use super::store::{S3Target, MAX_EXPIRY, MAX_XML_BYTES};

/// A signed request: its URL, and the headers to send with it.
pub type Signed = (String, Vec<(&'static str, String)>);

impl S3Target {
    /// Signs `action` for one attempt of a request that moves `bytes` with `body`: the
    /// URL, and the headers to send beside it (signed too, see the module's invariant).
    pub(super) fn sign<'a, A: S3Action<'a>>(
        &self,
        mut action: A,
        body: &[u8],
        bytes: u64,
    ) -> Signed {
        let mut headers = Vec::new();
        if matches!(A::METHOD, Method::Put | Method::Post) {
            let digest = md5::Md5::digest(body);
            let md5 = base64::engine::general_purpose::STANDARD.encode(digest);
            action.headers_mut().insert("content-md5", md5.clone());
            headers.push(("content-md5", md5));
        }
        let expiry =
            (self.options.retry.timeout_for(bytes) + Duration::from_secs(60)).min(MAX_EXPIRY);
        (action.sign(expiry).to_string(), headers)
    }

    /// Signs `action` for one attempt of a request that moves `bytes`, sends it with
    /// `body`, and returns the answer if it is a success (2xx), or `absent` is set and
    /// the answer is a 404 other than a missing bucket (`None` then).
    pub(super) fn send<'a, A: S3Action<'a>>(
        &self,
        action: A,
        body: &[u8],
        bytes: u64,
        absent: bool,
    ) -> Result<Option<Response<ureq::Body>>, Failure> {
        let timeout = Some(self.options.retry.timeout_for(bytes));
        let (url, headers) = self.sign(action, body, bytes);
        let url = url.as_str();
        let agent = &self.agent;
        let with_headers = |mut request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            request
        };
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
            Method::Put => with_headers(agent.put(url))
                .config()
                .timeout_global(timeout)
                .build()
                .send(body),
            Method::Post => with_headers(agent.post(url))
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
