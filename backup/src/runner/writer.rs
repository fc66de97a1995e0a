//! Appending links to the local chain: encrypt the object, write it, sign the manifest,
//! write it. One writer at a time (the active node), and only while its lease holds.
//!
//! Invariants: a link is appended only while [`LeaseGuard::holds`] (the election's lease
//! is certainly alive), so no link is written after another node may have taken over; the
//! head (sequence, hash, next delta) advances only after the manifest is written: durably
//! for a full snapshot, without fsyncs for a delta or a gap (checked after a restart of
//! the machine, [`crate::torn`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zone_io::Error;

use crate::chain::{self, Kind, Link};
use crate::crypto;
use crate::local::{sha256_hex, LocalChain, Stored};
use crate::segment::{self, Revision};
use crate::signing::Signer;

/// Until when this node may write: the election lease's last confirmed renewal plus its
/// time to live, less a margin for clocks and requests in flight.
#[derive(Default)]
pub struct LeaseGuard {
    until: Mutex<Option<Instant>>,
}

impl LeaseGuard {
    pub fn renewed(&self, sent_at: Instant, ttl: Duration, margin: Duration) {
        if let Ok(mut until) = self.until.lock() {
            *until = Some(sent_at + ttl.saturating_sub(margin));
        }
    }

    pub fn revoke(&self) {
        if let Ok(mut until) = self.until.lock() {
            *until = None;
        }
    }

    pub fn holds(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|u| Instant::now() < u)
    }
}

/// Where the chain stands: the last link's sequence and manifest hash, and the revision
/// the next delta starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub sha256: Option<String>,
    pub next_delta: i64,
}

pub struct ChainWriter {
    pub local: Arc<LocalChain>,
    pub zone: String,
    pub cluster_id: String,
    pub session: String,
    pub node: String,
    pub recipients: Vec<age::x25519::Recipient>,
    pub signer: Signer,
    pub guard: Arc<LeaseGuard>,
    pub head: Head,
}

/// An encrypted full snapshot waiting for its link: its temporary files and what it is.
pub struct FullReady {
    /// A hidden file in the local chain's `full/`, written whole (atomically).
    pub encrypted: PathBuf,
    pub plain: tempfile::NamedTempFile,
    pub revision: i64,
    pub taken_ms: i64,
    pub size: u64,
    pub sha256: String,
}

/// What sealing a delta needs, apart from the writer: the CPU work of a cut (compress,
/// encrypt, hash) runs on another thread ([`super::background`]) while the writer waits.
pub struct DeltaSealer {
    zone: String,
    recipients: Vec<age::x25519::Recipient>,
    first: i64,
}

/// A delta segment compressed and encrypted, waiting for its link.
pub struct SealedDelta {
    first: i64,
    last: i64,
    first_time_ms: i64,
    plain: Vec<u8>,
    encrypted: Vec<u8>,
    sha256: String,
}

impl DeltaSealer {
    /// Encodes and encrypts `revisions` (none: a heartbeat up to `now_ms`).
    pub fn seal(self, revisions: &[Revision], now_ms: i64) -> Result<SealedDelta, Error> {
        let last = revisions.last().map_or(self.first - 1, |r| r.revision);
        let plain = segment::encode(&self.zone, self.first, last, revisions);
        let encrypted = crypto::encrypt_bytes(&plain, &self.recipients)?;
        Ok(SealedDelta {
            first: self.first,
            last,
            first_time_ms: revisions.first().map_or(now_ms, |r| r.time_ms),
            sha256: sha256_hex(&encrypted),
            plain,
            encrypted,
        })
    }
}

impl ChainWriter {
    /// Appends the delta of `revisions` (none: a heartbeat up to `now_ms`).
    pub fn append_delta(&mut self, revisions: &[Revision], now_ms: i64) -> Result<Link, Error> {
        let sealed = self.sealer().seal(revisions, now_ms)?;
        self.append_sealed(sealed, now_ms)
    }

    /// What [`DeltaSealer::seal`] needs for the next delta.
    pub fn sealer(&self) -> DeltaSealer {
        DeltaSealer {
            zone: self.zone.clone(),
            recipients: self.recipients.clone(),
            first: self.head.next_delta,
        }
    }

    /// Appends a delta sealed for the current head, up to `now_ms` (when it was cut).
    pub fn append_sealed(&mut self, sealed: SealedDelta, now_ms: i64) -> Result<Link, Error> {
        if sealed.first != self.head.next_delta {
            return Err(Error::new(format!(
                "internal: a delta sealed from revision {} for a chain that goes on at {}",
                sealed.first, self.head.next_delta
            )));
        }
        let seq = self.head.seq + 1;
        let name = chain::delta_name(seq, &self.session, sealed.first, sealed.last);
        self.check_guard()?;
        // Without fsyncs: checked after a restart of the machine (crate::torn).
        self.local
            .write_soon(&self.local.plain_path(&name), &sealed.plain)?;
        self.local
            .write_soon(&self.local.object_path(&name), &sealed.encrypted)?;
        let size = sealed.encrypted.len() as u64;
        self.link(
            Kind::Delta,
            (sealed.first, sealed.last),
            (sealed.first_time_ms, now_ms),
            Some((name, size, sealed.sha256)),
        )
    }

    /// Records that `first..=last` were compacted away before the watch saw them.
    pub fn append_gap(&mut self, last: i64, now_ms: i64) -> Result<Link, Error> {
        let first = self.head.next_delta;
        self.link(Kind::Gap, (first, last), (now_ms, now_ms), None)
    }

    /// Links a full snapshot made by [`crate::runner::full`].
    pub fn append_full(&mut self, full: FullReady) -> Result<Link, Error> {
        let seq = self.head.seq + 1;
        let name = chain::full_name(seq, &self.session, full.revision);
        self.check_guard()?;
        LocalChain::place(full.plain, &self.local.plain_path(&name))?;
        LocalChain::rename(&full.encrypted, &self.local.object_path(&name))?;
        let rev = full.revision;
        self.link(
            Kind::Full,
            (rev, rev),
            (full.taken_ms, full.taken_ms),
            Some((name, full.size, full.sha256)),
        )
    }

    fn check_guard(&self) -> Result<(), Error> {
        if self.guard.holds() {
            Ok(())
        } else {
            Err(Error::new(
                "this node's election lease may have expired: it no longer writes the chain",
            ))
        }
    }

    fn link(
        &mut self,
        kind: Kind,
        (first, last): (i64, i64),
        (first_time_ms, last_time_ms): (i64, i64),
        object: Option<(String, u64, String)>,
    ) -> Result<Link, Error> {
        let seq = self.head.seq + 1;
        let next_delta = match kind {
            Kind::Full => self.head.next_delta,
            Kind::Delta | Kind::Gap => last + 1,
        };
        let (object, object_size, object_sha256) = match object {
            Some((n, s, h)) => (Some(n), s, h),
            None => (None, 0, String::new()),
        };
        let link = Link {
            format: chain::FORMAT.into(),
            zone: self.zone.clone(),
            cluster_id: self.cluster_id.clone(),
            seq,
            session: self.session.clone(),
            writer: self.node.clone(),
            kind,
            first_revision: first,
            last_revision: last,
            first_time_ms,
            last_time_ms,
            object,
            object_size,
            object_sha256,
            next_delta,
            prev: self.head.sha256.clone(),
            signed_ms: now_ms(),
        };
        let body = serde_json::to_vec(&link)
            .map_err(|e| Error::new(format!("cannot write a manifest: {e}")))?;
        let envelope = self.signer.sign(&body)?;
        self.check_guard()?;
        let name = link.manifest_name();
        let path = self.local.object_path(&name);
        match kind {
            Kind::Full => self.local.write(&path, &envelope)?,
            Kind::Delta | Kind::Gap => self.local.write_soon(&path, &envelope)?,
        }
        self.head = Head {
            seq,
            sha256: Some(sha256_hex(&envelope)),
            next_delta,
        };
        Ok(link)
    }

    /// Adopts `stored` (the targets' last link) as the head, keeping a copy of its
    /// manifest locally so the local chain links to it.
    pub fn adopt(&mut self, stored: &Stored, link: &Link) -> Result<(), Error> {
        let path = self.local.object_path(&stored.name);
        if !path.exists() {
            self.local.write(&path, &stored.bytes)?;
        }
        self.head = Head {
            seq: link.seq,
            sha256: Some(stored.sha256.clone()),
            next_delta: link.next_delta,
        };
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A random session ID: 8 hex digits.
pub fn new_session() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    zone_io::hex(&bytes)
}

#[cfg(test)]
impl ChainWriter {
    /// A writer of the local chain in `local` as `backup run` makes one, signing as
    /// `fx`'s node (session `ab12cd34`, lease held for a minute), whose next delta starts
    /// at revision 2.
    pub fn for_tests(
        fx: &crate::test_zone::Fixture,
        local: Arc<crate::local::LocalChain>,
    ) -> ChainWriter {
        use crate::test_zone::{NODE, ZONE};
        let guard = Arc::new(LeaseGuard::default());
        guard.renewed(Instant::now(), Duration::from_secs(60), Duration::ZERO);
        ChainWriter {
            local,
            zone: ZONE.into(),
            cluster_id: "c0ffee".into(),
            session: "ab12cd34".into(),
            node: NODE.into(),
            recipients: vec![age::x25519::Identity::generate().to_public()],
            signer: Signer::for_node(&fx.node.signing()).unwrap(),
            guard,
            head: Head {
                seq: 0,
                sha256: None,
                next_delta: 2,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::local::LocalChain;
    use crate::test_zone::{fixture, put_revision as put};

    #[test]
    fn a_delta_sealed_apart_links_as_one_appended_whole_and_a_stale_one_is_refused() {
        let fx = fixture();
        let state = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalChain::open(state.path()).unwrap());
        let mut writer = super::ChainWriter::for_tests(&fx, local.clone());
        let sealed = writer
            .sealer()
            .seal(&[put(2), put(3)], 1_700_000_000_010)
            .unwrap();
        let stale = writer.sealer().seal(&[put(2)], 1_700_000_000_010).unwrap();
        let link = writer.append_sealed(sealed, 1_700_000_000_010).unwrap();
        assert_eq!((link.first_revision, link.last_revision), (2, 3));
        assert_eq!(link.first_time_ms, 1_700_000_000_002);
        assert_eq!(link.last_time_ms, 1_700_000_000_010);
        assert_eq!(writer.head.next_delta, 4);
        let e = writer
            .append_sealed(stale, 1_700_000_000_011)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sealed from revision 2") && e.contains("goes on at 4"),
            "{e}"
        );
        assert_eq!(writer.head.next_delta, 4);
        assert_eq!(local.manifests().unwrap().len(), 1);
        // The next delta, sealed for the head as it now is, links after the first.
        let next = writer.sealer().seal(&[put(4)], 1_700_000_000_012).unwrap();
        let link = writer.append_sealed(next, 1_700_000_000_012).unwrap();
        assert_eq!((link.seq, link.first_revision), (2, 4));
    }
}
