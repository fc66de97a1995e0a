//! Where a node without a local member list gets one: the zone's nameservice, and the
//! last good document it served (seeds/000, boot flow steps 1–3).
//!
//! Invariants:
//! - Only a document that verified against the zone CA of the node's bundle is cached,
//!   and a cached copy is verified again on every use (a state directory can be restored
//!   from a backup or edited).
//! - A bad document never replaces a good cached copy; neither does a good but *older*
//!   one (signed before the cached copy: a replay of a past member list).
//! - Every request is bounded: [`ATTEMPTS`] tries, each within [`ATTEMPT_TIMEOUT`], so a
//!   silent nameservice delays a launch by seconds, never hangs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use zone_io::Error;
use zone_io::PUBLIC_MODE;
use zone_pki::CertInfo;

use zone_backup::destination::tls::tls_failure;
use zone_io::state;
use zone_model::zone_doc::{self, ZoneDocument};

/// The verified document, kept in the node's state directory.
pub const CACHE_FILE: &str = "zone.json";
pub const ATTEMPTS: u32 = 3;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
const BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(750)];
/// A zone document is a few kilobytes; anything much larger is not one.
const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// What a node needs to look up its zone.
pub struct Lookup<'a> {
    pub zone: &'a str,
    /// The zone roots the node trusts; the document must be signed by one of them.
    pub trusted_roots: &'a [CertInfo],
    /// Base URL of the nameservice (`http://` or `https://`; https trusts the zone CA).
    pub nameservice: &'a str,
    pub state_dir: &'a Path,
}

/// Whether a fresh document may be written to the cache (not for `--dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    Update,
    ReadOnly,
}

/// Where the member list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    LocalConfig,
    Nameservice { url: String },
    Cache { path: PathBuf },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::LocalConfig => write!(f, "the node config"),
            Source::Nameservice { url } => write!(f, "the nameservice ({url})"),
            Source::Cache { path } => write!(f, "the cached zone document ({})", path.display()),
        }
    }
}

/// The resolve URL of the nameservice's local API for `zone`.
pub fn resolve_url(nameservice: &str, zone: &str) -> String {
    format!("{}/resolve?name={zone}", nameservice.trim_end_matches('/'))
}

pub fn cache_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CACHE_FILE)
}

/// Gets the zone document: from the nameservice, else from the cache (with a warning).
/// On failure, the error lists each try and why it failed.
pub fn zone_document(
    lookup: &Lookup<'_>,
    policy: CachePolicy,
) -> Result<(ZoneDocument, Source), Error> {
    let url = resolve_url(lookup.nameservice, lookup.zone);
    let cache = cache_path(lookup.state_dir);
    let cached = read_cache(lookup, &cache);
    let fresh = fetch(lookup, &url).and_then(|text| {
        let doc = zone_doc::verify(&text, lookup.zone, lookup.trusted_roots).map_err(|e| {
            match zone_doc::signed_at(&text, lookup.zone, lookup.trusted_roots) {
                // The root signed it: a newer zone-etcd's document, not a forgery.
                Ok(at) => format!(
                    "it served a document the zone root signed at {} that zone-etcd {} cannot read ({}): install the release the zone's owner signs with on this node",
                    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    crate::this_build::RELEASE,
                    describe(&e)
                ),
                Err(_) => describe(&e),
            }
        })?;
        if let Ok(Some((old, _))) = &cached {
            if doc.signed_at < old.signed_at {
                return Err(format!(
                    "it served a document signed at {}, older than the cached one signed at {} (a replay of an old member list?)",
                    rfc3339(&doc),
                    rfc3339(old)
                ));
            }
        }
        Ok((doc, text))
    });
    match (fresh, cached) {
        (Ok((doc, text)), cached) => {
            let unchanged = matches!(&cached, Ok(Some((_, old))) if *old == text);
            if policy == CachePolicy::Update && !unchanged {
                write_cache(lookup.state_dir, &cache, &text)?;
            }
            crate::unknown_keys::warn(
                &doc.ignored
                    .clone()
                    .in_file(&format!("the zone document from {url}")),
            );
            Ok((doc, Source::Nameservice { url }))
        }
        (Err(why), Ok(Some((doc, _)))) => {
            tracing::warn!(
                "nameservice {url}: {why}; using the cached zone document signed at {} ({})",
                rfc3339(&doc),
                cache.display()
            );
            crate::unknown_keys::warn(
                &doc.ignored
                    .clone()
                    .in_file(&format!("the cached zone document {}", cache.display())),
            );
            Ok((doc, Source::Cache { path: cache }))
        }
        (Err(why), Ok(None)) => Err(no_member_list(&url, &why, &cache, "none yet")),
        (Err(why), Err(cache_why)) => Err(no_member_list(&url, &why, &cache, &cache_why)),
    }
}

fn no_member_list(url: &str, why: &str, cache: &Path, cache_why: &str) -> Error {
    Error::new(format!(
        "no etcd member list: none in the config; nameservice {url}: {why}; cache {}: {cache_why}",
        cache.display()
    ))
    .field("etcd")
    .fix("start the zone's nameservice or set nameservice = \"<its URL>\" in the node config; or add the [[etcd]] member list to the node config")
}

/// The cached document, verified again; `Ok(None)` when there is none.
fn read_cache(lookup: &Lookup<'_>, cache: &Path) -> Result<Option<(ZoneDocument, String)>, String> {
    if std::fs::symlink_metadata(cache).is_err() {
        return Ok(None);
    }
    // The cache is zone-etcd's own file: bounded, and never read through a link.
    let bytes = zone_io::read_small_file(cache, zone_io::Links::Refuse)
        .map_err(|e| e.problem().to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let doc = zone_doc::verify(&text, lookup.zone, lookup.trusted_roots)
        .map_err(|e| format!("refused: {}", describe(&e)))?;
    Ok(Some((doc, text)))
}

/// Replaces the cache under the state lock, unless a newer copy landed meanwhile.
fn write_cache(state_dir: &Path, cache: &Path, text: &str) -> Result<(), Error> {
    let _lock = state::lock(state_dir)?;
    zone_io::write_atomic(cache, text.as_bytes(), PUBLIC_MODE)
}

/// GETs the document, retrying connection failures, timeouts and server errors.
fn fetch(lookup: &Lookup<'_>, url: &str) -> Result<String, String> {
    let agent = agent(lookup.trusted_roots);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)]);
        }
        match get_once(&agent, url, lookup.zone) {
            Ok(text) => return Ok(text),
            Err(Failure::Permanent(why)) => return Err(why),
            Err(Failure::Transient(why)) => {
                tracing::debug!("nameservice {url}: attempt {}: {why}", attempt + 1);
                last = why;
            }
        }
    }
    Err(format!("{last} ({ATTEMPTS} attempts)"))
}

enum Failure {
    /// Worth retrying: the nameservice may be starting or overloaded.
    Transient(String),
    /// Asking again gives the same answer.
    Permanent(String),
}

fn get_once(agent: &ureq::Agent, url: &str, zone: &str) -> Result<String, Failure> {
    let mut response = agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| match tls_failure(&e) {
            // A certificate the zone CA does not vouch for stays so on a retry.
            Some(tls) => Failure::Permanent(format!(
                "TLS: {tls} (an https nameservice needs a certificate issued under the zone CA)"
            )),
            None => Failure::Transient(transport_reason(&e)),
        })?;
    let status = response.status();
    if status.is_server_error() {
        return Err(Failure::Transient(format!("HTTP {status}")));
    }
    if status == 404 {
        return Err(Failure::Permanent(format!(
            "HTTP 404: the nameservice does not know zone {zone:?}"
        )));
    }
    if !status.is_success() {
        return Err(Failure::Permanent(format!("HTTP {status}")));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Failure::Permanent(format!(
                "the response is larger than {MAX_DOCUMENT_BYTES} bytes; a zone document is a few kilobytes"
            )),
            other => Failure::Transient(transport_reason(&other)),
        })
}

fn agent(trusted_roots: &[CertInfo]) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = trusted_roots
        .iter()
        .map(|root| Certificate::from_der(root.der()).to_owned())
        .collect();
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .http_status_as_error(false)
        // The nameservice is the node's own local API: never send it through a proxy.
        .proxy(None)
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(roots)))
                .build(),
        )
        .build()
        .into()
}

fn transport_reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            _ => io.to_string(),
        },
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        other => other.to_string(),
    }
}

/// An error as "field: problem", for a list of failed tries.
fn describe(e: &Error) -> String {
    match e.field_name() {
        Some(field) => format!("{field}: {}", e.problem()),
        None => e.problem().to_string(),
    }
}

fn rfc3339(doc: &ZoneDocument) -> String {
    doc.signed_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| doc.signed_at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            resolve_url("http://127.0.0.1:3456/", "example.zone"),
            "http://127.0.0.1:3456/resolve?name=example.zone"
        );
    }
}
