//! Reading a stored manifest: its signature (a signer leaf that chains to the zone CA, valid
//! when the manifest was signed), then its body as a [`Link`]. Used wherever a link is
//! trusted: the runner's resume, `status`, the drills.
//!
//! Invariant: a body's `format` is checked before anything else of it is read (a newer
//! format is refused in one line naming both), and a field this release does not know is
//! ignored; the stored bytes are never rendered again (see `crate::chain`).

use time::OffsetDateTime;
use zone_pki::CertInfo;

use super::chain::{Link, Verified, FORMAT};
use super::local::{sha256_hex, Stored};
use super::signing;

/// The signing time a body names (`signed_ms`), for the certificate checks.
fn signed_at(body: &[u8]) -> Option<OffsetDateTime> {
    #[derive(serde::Deserialize)]
    struct Signed {
        signed_ms: i64,
    }
    let signed: Signed = serde_json::from_slice(body).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(signed.signed_ms) * 1_000_000).ok()
}

/// Verifies one manifest of `zone` against the zone roots; the problem names nothing but
/// what failed (the caller names the object).
pub fn verify(stored: &Stored, zone: &str, roots: &[CertInfo]) -> Result<Verified, String> {
    let verified = signing::verify(&stored.bytes, zone, roots, signed_at)?;
    zone_model::format::check_format(&verified.body, FORMAT, crate::RELEASE)
        .map_err(|line| format!("its signed body's {line}"))?;
    let link: Link = serde_json::from_slice(&verified.body)
        .map_err(|e| format!("its signed body is not a chain link: {e}"))?;
    if link.writer != verified.node {
        return Err(format!(
            "says it was written by {}, but {} signed it",
            link.writer, verified.node
        ));
    }
    Ok(Verified {
        name: stored.name.clone(),
        sha256: stored.sha256.clone(),
        link,
    })
}

/// The body of a manifest, its signature NOT checked: for manifests this node wrote (the
/// signature was made here) and for the names retention deletes; anything trusted goes
/// through [`verify`].
pub fn body_unverified(envelope: &[u8]) -> Result<Link, String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        body: String,
    }
    let env: Envelope =
        serde_json::from_slice(envelope).map_err(|e| format!("not a signed manifest: {e}"))?;
    zone_model::format::check_format(env.body.as_bytes(), FORMAT, crate::RELEASE)
        .map_err(|line| format!("its body's {line}"))?;
    serde_json::from_str(&env.body).map_err(|e| format!("not a chain link: {e}"))
}

/// A manifest fetched from a target.
pub fn stored(name: &str, bytes: Vec<u8>) -> Stored {
    Stored {
        name: name.to_string(),
        sha256: sha256_hex(&bytes),
        bytes,
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
