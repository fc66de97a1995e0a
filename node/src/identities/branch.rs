//! A member's branches: one CA per node its signer serves (`<node> identities by
//! <member>`, [`zone_pki::client::branch`]), which signs that node's identities, so that
//! `revoke --node` lists the node's branches on the CRL instead of every identity it was
//! ever given. etcd re-reads and re-parses its CRL file at every connection (about 3 µs
//! a listed serial, measured: `bench/src/crl.rs`), so the CRL now grows with revoked
//! nodes, not with identities.
//!
//! Kept in the member's state directory, `branches/<node>.crt` (the branch, then the
//! signer) and `<node>.key` (0600, in a 0700 directory); a branch is used again while
//! its signer is this member's, it is not on the zone's CRL (a node revoked and then
//! admitted again gets a new one) and it outlives an identity issued now by a week.
//!
//! Invariants: a branch is recorded in the zone's ledger ([`super::ledger`], under its
//! node, its CN as `user`) before it signs anything, so no identity exists whose branch
//! a revocation of its node would miss; a branch's key never leaves the member; only a
//! signer that may issue branches ([`zone_pki::client::issues_branches`]) makes them,
//! else the member signs identities itself, as before.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};
use zone_io::{Error, KEY_MODE, PUBLIC_MODE};
use zone_pki::client::issues_branches;
use zone_pki::revocation::Crl;
use zone_pki::{Authority, CertInfo};

use super::grant::IDENTITY_DAYS;

/// Under a member's state directory.
pub const DIR: &str = "branches";

/// A branch is made again when less than an identity's lifetime and this margin is left.
const MARGIN_DAYS: i64 = 7;

/// One request at a time decides and makes a node's branch: two at once would make two.
static MAKING: Mutex<()> = Mutex::new(());

/// Where a member keeps its branches, when its signer may issue them.
#[derive(Clone)]
pub struct Branches {
    dir: PathBuf,
    member: String,
    zone: String,
}

impl Branches {
    /// The branches of `member` (state in `state_dir`), or `None` when its signer may not
    /// issue them (a signer or client root made before branches existed).
    pub fn of(
        state_dir: &Path,
        member: &str,
        zone: &str,
        signer: &Authority,
        client_roots: &[CertInfo],
    ) -> Option<Branches> {
        let signer = CertInfo::parse(signer.cert_der()).ok()?;
        let root = client_roots.iter().find(|r| signer.is_signed_by(r))?;
        issues_branches(&signer, root).then(|| Branches {
            dir: state_dir.join(DIR),
            member: member.to_string(),
            zone: zone.to_string(),
        })
    }

    /// The branch that signs `node`'s identities now: the one kept when it still may
    /// (`reusable`), else a new one from `signer`, given to `record` (which puts it in
    /// the ledger) before it is kept. `crl` is the zone's CRL as the member keeps it.
    pub fn for_node(
        &self,
        signer: &Authority,
        node: &str,
        crl: &Path,
        record: impl FnOnce(&CertInfo) -> Result<(), String>,
    ) -> Result<Authority, String> {
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        let (cert, key) = self.files(node);
        let now = OffsetDateTime::now_utc();
        if let Ok(kept) = Authority::load(&cert, &key) {
            let signer_info = CertInfo::parse(signer.cert_der()).map_err(|e| e.to_string())?;
            let info = CertInfo::parse(kept.cert_der()).map_err(|e| e.to_string())?;
            if reusable(&info, &signer_info, read_crl(crl).as_ref(), now) {
                return Ok(kept);
            }
        }
        let branch = signer
            .issue_branch(node, &self.member, &self.zone)
            .map_err(|e| e.to_string())?;
        let info = CertInfo::parse(branch.cert_der()).map_err(|e| e.to_string())?;
        record(&info)?;
        self.keep(node, &branch).map_err(|e| e.to_string())?;
        Ok(branch)
    }

    fn files(&self, node: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{node}.crt")),
            self.dir.join(format!("{node}.key")),
        )
    }

    /// Writes `branch` for `node`: its key first, so a reader that finds the certificate
    /// finds its key.
    fn keep(&self, node: &str, branch: &Authority) -> Result<(), Error> {
        zone_io::ensure_private_dir(&self.dir)?;
        let (cert, key) = self.files(node);
        zone_io::write_atomic(&key, branch.key_pem().as_bytes(), KEY_MODE)?;
        zone_io::write_atomic(&cert, branch.chain_pem().as_bytes(), PUBLIC_MODE)
    }
}

/// The CRL at `path`, or `None` when there is none or it does not parse (then no kept
/// branch is trusted to be off it: a new one is made).
fn read_crl(path: &Path) -> Option<Option<Crl>> {
    match std::fs::read(path) {
        Ok(der) => Crl::parse_der(&der).ok().map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(_) => None,
    }
}

/// Whether a kept branch may sign an identity issued at `now`: `signer` issued it, it is
/// not on `crl` (`None`: the CRL could not be read) and it outlives such an identity by
/// [`MARGIN_DAYS`].
fn reusable(
    branch: &CertInfo,
    signer: &CertInfo,
    crl: Option<&Option<Crl>>,
    now: OffsetDateTime,
) -> bool {
    let listed = match crl {
        None => true,
        Some(None) => false,
        Some(Some(crl)) => crl.revokes(branch.serial()),
    };
    branch.is_ca
        && branch.is_signed_by(signer)
        && !listed
        && branch.not_after > now + Duration::days(IDENTITY_DAYS + MARGIN_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_pki::revocation::RevokedCa;

    #[test]
    fn a_branch_is_used_again_only_while_its_signer_its_crl_and_its_days_allow() {
        let zone = "example.zone";
        let root = Authority::new_client_root(zone).unwrap();
        let signer = root.issue_signer("node1.example.zone", zone).unwrap();
        let signer_info = CertInfo::parse(signer.cert_der()).unwrap();
        let branch = signer
            .issue_branch("nas.example.zone", "node1.example.zone", zone)
            .unwrap();
        let info = CertInfo::parse(branch.cert_der()).unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(reusable(&info, &signer_info, Some(&None), now));
        // Too few days left for an identity issued now.
        let late = info.not_after - Duration::days(IDENTITY_DAYS + MARGIN_DAYS);
        assert!(!reusable(&info, &signer_info, Some(&None), late));
        // Another signer's (the member got a new bundle).
        let other = root.issue_signer("node1.example.zone", zone).unwrap();
        let other_info = CertInfo::parse(other.cert_der()).unwrap();
        assert!(!reusable(&info, &other_info, Some(&None), now));
        // On the CRL (its node was revoked), or a CRL that could not be read.
        let zone_root = Authority::new_root(zone).unwrap();
        let revoked = [RevokedCa {
            serial: info.serial().to_vec(),
            revoked_at: now,
        }];
        let crl = Crl::parse_pem(&zone_root.sign_crl(2, &revoked, now).unwrap()).unwrap();
        assert!(!reusable(&info, &signer_info, Some(&Some(crl)), now));
        assert!(!reusable(&info, &signer_info, None, now));
    }

    #[test]
    fn a_member_keeps_one_branch_per_node_recorded_before_use() {
        let zone = "example.zone";
        let state = tempfile::tempdir().unwrap();
        let root = Authority::new_client_root(zone).unwrap();
        let roots = [CertInfo::parse(root.cert_der()).unwrap()];
        let signer = root.issue_signer("node1.example.zone", zone).unwrap();
        let branches = Branches::of(state.path(), "node1.example.zone", zone, &signer, &roots)
            .expect("a pathlen:1 signer under a pathlen:2 root issues branches");
        let crl = state.path().join("crl.der");
        let mut recorded = Vec::new();
        let first = branches
            .for_node(&signer, "nas.example.zone", &crl, |b| {
                recorded.push(b.subject_cn.clone());
                Ok(())
            })
            .unwrap();
        let again = branches
            .for_node(&signer, "nas.example.zone", &crl, |_| {
                panic!("kept: no new record")
            })
            .unwrap();
        assert_eq!(first.cert_der(), again.cert_der());
        assert_eq!(
            recorded,
            ["nas.example.zone identities by node1.example.zone"]
        );
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&state.path().join(DIR)), 0o700);
        assert_eq!(
            mode(&state.path().join(DIR).join("nas.example.zone.key")),
            0o600
        );
        // Not recorded: not kept, and nothing signed.
        let refused = branches.for_node(&signer, "tv.example.zone", &crl, |_| Err("no".into()));
        assert!(refused.is_err());
        assert!(!state.path().join(DIR).join("tv.example.zone.crt").exists());
        // A signer of the previous profile makes none.
        let mut older = roots[0].clone();
        older.path_len = Some(1);
        assert!(
            Branches::of(state.path(), "node1.example.zone", zone, &signer, &[older]).is_none()
        );
    }
}
