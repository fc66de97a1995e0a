//! A service's own identity kept in the node's state for `zone-etcd env --service NAME`:
//! `<state>/services/<name>/current -> sets/<id>/{client.crt, client.key}`, obtained
//! from the zone ([`super::request::obtain`]) when missing or past two thirds of its
//! life, so a service that runs `env` at each start always gets a valid one.
//!
//! Invariants: a set is written whole before `current` points to it (an atomic rename of
//! a link), so a reader sees the old pair or the new one, never a mix; the key is made on
//! this node and written 0600 in a 0700 directory; an identity is reused only when its
//! key matches, it names `<name>@<node>`, and it chains to the client root through a
//! signer; everything runs under the state lock.

use std::fs;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::{CertInfo, Error};

use crate::config::node::Node;
use crate::leaves::RENEW_AT_LIFE_USED;
use crate::policy::rbac::service_user;

/// A service identity's files, through `current`.
#[derive(Debug, Clone)]
pub struct ServiceFiles {
    pub user: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `service`'s identity on `node`: reused while valid, else obtained anew.
pub fn ensure(node: &Node, service: &str) -> Result<ServiceFiles, Error> {
    let user = service_user(service, &node.name);
    let _lock = crate::state::lock(&node.state_dir)?;
    let services = zone_io::ensure_private_dir(&node.state_dir.join("services"))
        .map(|()| node.state_dir.join("services"))?;
    let dir = services.join(service);
    zone_io::ensure_private_dir(&dir)?;
    zone_io::ensure_private_dir(&dir.join("sets"))?;
    let current = dir.join("current");
    let files = ServiceFiles {
        user: user.clone(),
        cert: current.join("client.crt"),
        key: current.join("client.key"),
    };
    if problem(node, &files, OffsetDateTime::now_utc()).is_none() {
        return Ok(files);
    }
    let obtained = super::request::obtain(node, Some(service))?;
    let id = format!(
        "{:020}-{}",
        OffsetDateTime::now_utc().unix_timestamp_nanos(),
        std::process::id()
    );
    let staging = Staging::new(&dir.join("sets").join(&id))?;
    zone_io::write_new(
        &staging.path().join("client.key"),
        obtained.key_pem().as_bytes(),
        KEY_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join("client.crt"),
        obtained.chain_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    staging.commit()?;
    let previous = fs::read_link(&current).ok();
    let tmp = dir.join(format!(".current-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("sets").join(&id), &tmp)
        .map_err(|e| Error::io("create symlink", &tmp, &e))?;
    fs::rename(&tmp, &current).map_err(|e| Error::io("switch", &current, &e))?;
    zone_io::sync_dir(&dir)?;
    prune(&dir.join("sets"), &id, previous.as_deref());
    tracing::info!("obtained the identity {user} from {}", obtained.from);
    Ok(files)
}

/// Why the current identity cannot be used, or `None`.
fn problem(node: &Node, files: &ServiceFiles, now: OffsetDateTime) -> Option<String> {
    let (Ok(pem), Ok(key)) = (
        fs::read_to_string(&files.cert),
        zone_pki::key::load_key(&files.key),
    ) else {
        return Some("missing or unreadable".into());
    };
    let Ok(info) = CertInfo::parse_pem(&pem) else {
        return Some("unparsable".into());
    };
    if !info.public_key_matches(&key) {
        return Some("the key does not match".into());
    }
    if info.subject_cn != files.user {
        return Some(format!("names {:?}", info.subject_cn));
    }
    if now >= info.not_after || info.life_used(now) >= RENEW_AT_LIFE_USED {
        return Some("due".into());
    }
    if revoked(node, &info) {
        return Some("revoked (on the zone's CRL)".into());
    }
    super::tls::chain_problem(node, &pem)
}

/// Whether `info`'s serial is on the CRL in force on `node` (`revoke --identity`).
fn revoked(node: &Node, info: &CertInfo) -> bool {
    let Ok(roots) = crate::config::trust::trusted_roots(&node.zone_ca_pem) else {
        return false;
    };
    let serial = zone_pki::revocation::normalize_serial(info.serial());
    matches!(
        crate::revocation::store::in_force(&node.state_dir, &roots),
        Ok(Some(doc)) if doc.crl.entries.iter().any(|e| e.serial == serial)
    )
}

/// Removes every set but the current and the previous one.
fn prune(sets: &Path, current: &str, previous: Option<&Path>) {
    let keep_previous = previous.and_then(|p| p.file_name()).map(|n| n.to_owned());
    let Ok(entries) = fs::read_dir(sets) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == current || Some(&name) == keep_previous.as_ref() {
            continue;
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}
