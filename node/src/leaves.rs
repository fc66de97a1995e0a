//! A node's leaf certificates in its private state directory: reuse while valid, else
//! issue a whole new set from the node CA and switch to it atomically.
//!
//! Layout (directories 0700, keys 0600):
//! ```text
//! <state>/tls/sets/<id>/{ca.crt, server.crt, server.key, peer.crt, peer.key, client.crt, client.key}
//!                       (a node that is not an etcd member has only ca.crt and client.*;
//!                       with identities also client-trust.crt, and under enforce on a
//!                       member gateway.{crt,key}: crate::identities::tls)
//! <state>/tls/current -> sets/<id>      (symlink, replaced by rename)
//! ```
//! A set is written completely in a staging directory before `current` points to it, so
//! a crash at any instant leaves the old set or the new one in use, never a mix. etcd is
//! given paths through `current`. The previous set is kept; older ones are pruned.

use std::fs;
use std::path::{Component, Path, PathBuf};

use time::OffsetDateTime;
use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::inspect::RENEW_AT_LIFE_USED;
use zone_pki::profile::leaf_sans;
use zone_pki::{CertInfo, LeafKind, NodeIdentity};

use crate::node::Node;
use zone_io::state;
use zone_model::leaf_paths::LeafPaths;

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reused,
    Issued { reason: String },
}

/// The leaves a node needs: members serve and talk to peers; other nodes are only clients.
pub fn kinds_for(identity: &NodeIdentity) -> &'static [LeafKind] {
    if identity.member {
        &LeafKind::ALL
    } else {
        &[LeafKind::Client]
    }
}

/// Refuses a state directory whose TLS part leads out of it. Everything under `tls/` is
/// made by zone-etcd: real directories, real files, and `current` -> `sets/<id>`. A link
/// anywhere else was put there by someone else: etcd would serve the keys it points to,
/// and pruning old sets through a linked `sets` would delete files outside the state.
pub fn check_tls_layout(state_dir: &Path) -> Result<(), Error> {
    let tls = state_dir.join("tls");
    let sets = tls.join("sets");
    for dir in [&tls, &sets] {
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(foreign(
                    dir,
                    "is a symbolic link or a file, not a directory",
                ))
            }
            Err(_) => return Ok(()), // nothing issued yet
        }
    }
    let current = tls.join("current");
    let Ok(meta) = fs::symlink_metadata(&current) else {
        return Ok(());
    };
    if !meta.file_type().is_symlink() {
        return Err(foreign(
            &current,
            "is not the symbolic link zone-etcd makes",
        ));
    }
    let target = fs::read_link(&current).map_err(|e| Error::io("read the link", &current, &e))?;
    let parts: Vec<_> = target.components().collect();
    let inside = matches!(
        parts.as_slice(),
        [Component::Normal(dir), Component::Normal(_)] if *dir == "sets"
    );
    if !inside {
        return Err(foreign(
            &current,
            &format!(
                "points to {}, outside the state directory's tls/sets/",
                target.display()
            ),
        ));
    }
    // Named through `current`, as etcd is given them.
    let Ok(entries) = fs::read_dir(&current) else {
        return Ok(()); // a missing set is renewed
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            return Err(foreign(
                &entry.path(),
                "is a symbolic link or not a regular file",
            ));
        }
    }
    Ok(())
}

fn foreign(path: &Path, what: &str) -> Error {
    Error::new(format!(
        "{what}: zone-etcd never follows links it did not make out of the state directory"
    ))
    .file(path)
    .fix(format!(
        "remove {} (zone-etcd rotate issues a new set)",
        path.display()
    ))
}

/// Why the current set cannot be used as it is, or `None` when every leaf is fine.
pub fn renewal_reason(
    node: &Node,
    identity: &NodeIdentity,
    now: OffsetDateTime,
) -> Result<Option<String>, Error> {
    check_tls_layout(&node.state_dir)?;
    let paths = LeafPaths::for_state_dir(&node.state_dir);
    if !node.state_dir.join("tls").join("current").exists() {
        return Ok(Some("no certificates issued yet".into()));
    }
    match fs::read_to_string(paths.ca()) {
        Ok(ca) if ca == node.zone_ca_pem => {}
        _ => return Ok(Some("the zone CA changed".into())),
    }
    let set_dir = node.state_dir.join("tls").join("current");
    if let Some(reason) = crate::identities::tls::trust_problem(node, &set_dir) {
        return Ok(Some(reason));
    }
    for &kind in kinds_for(identity) {
        if let Some(reason) = leaf_problem(node, identity, &paths, kind, now)? {
            return Ok(Some(format!("{} certificate: {reason}", kind.file_stem())));
        }
    }
    Ok(None)
}

fn leaf_problem(
    node: &Node,
    identity: &NodeIdentity,
    paths: &LeafPaths,
    kind: LeafKind,
    now: OffsetDateTime,
) -> Result<Option<String>, Error> {
    let (cert_path, key_path) = (paths.cert(kind), paths.key(kind));
    let Ok(pem) = fs::read_to_string(&cert_path) else {
        return Ok(Some("missing or unreadable".into()));
    };
    let Ok(info) = CertInfo::parse_pem(&pem) else {
        return Ok(Some("unparsable".into()));
    };
    if !key_path.exists() {
        return Ok(Some("key missing".into()));
    }
    // A key others can read was exposed: say so rather than silently replacing it.
    zone_io::check_key_mode(&key_path)?;
    let Ok(key) = zone_pki::key::load_key(&key_path) else {
        return Ok(Some("key missing or unreadable".into()));
    };
    if !info.public_key_matches(&key) {
        return Ok(Some("key does not match".into()));
    }
    use crate::identities::tls::{client_issuer, zone_identity_problem, ClientIssuer};
    let issuer = match kind {
        LeafKind::Client => client_issuer(node),
        LeafKind::Server | LeafKind::Peer => ClientIssuer::NodeCa,
    };
    let problem = match issuer {
        ClientIssuer::NodeCa => (!info.is_signed_by(&node.node_ca()?.info))
            .then(|| "not issued by this node's CA".to_string()),
        ClientIssuer::Signer(signer) => (!info.is_signed_by(&CertInfo::parse(signer.cert_der())?))
            .then(|| "not issued by this member's signer".to_string()),
        ClientIssuer::Zone => zone_identity_problem(node, &pem),
    };
    if let Some(problem) = problem {
        return Ok(Some(problem));
    }
    if now >= info.not_after {
        return Ok(Some("expired".into()));
    }
    if info.life_used(now) >= RENEW_AT_LIFE_USED {
        return Ok(Some("past two thirds of its life".into()));
    }
    // An identity from a signer names no host: its CN is the etcd user.
    let mut want = match issuer {
        ClientIssuer::NodeCa => leaf_sans(kind, identity),
        ClientIssuer::Signer(_) | ClientIssuer::Zone => Vec::new(),
    };
    let mut have = info.sans.clone();
    want.sort_by_key(|h| h.to_string());
    have.sort_by_key(|h| h.to_string());
    if want != have {
        return Ok(Some("names no longer match the member list".into()));
    }
    Ok(None)
}

/// Makes sure a valid leaf set is current: reuses it, or issues and switches to a new one.
/// Serialised with every other writer of this node's state by [`state::lock`].
pub fn ensure(node: &Node, identity: &NodeIdentity) -> Result<(LeafPaths, Outcome), Error> {
    let paths = LeafPaths::for_state_dir(&node.state_dir);
    let _lock = state::lock(&node.state_dir)?;
    match renewal_reason(node, identity, OffsetDateTime::now_utc())? {
        None => {
            clear_leftovers(&node.state_dir.join("tls"))?;
            Ok((paths, Outcome::Reused))
        }
        Some(reason) => {
            issue_new_set(node, identity)?;
            Ok((paths, Outcome::Issued { reason }))
        }
    }
}

/// Issues a new set now, whatever the state of the current one (`rotate`). etcd reads
/// its serving certificate on every new TLS handshake, so a running etcd uses the new
/// set from its next connection on.
pub fn rotate(node: &Node, identity: &NodeIdentity) -> Result<LeafPaths, Error> {
    let _lock = state::lock(&node.state_dir)?;
    check_tls_layout(&node.state_dir)?;
    issue_new_set(node, identity)?;
    Ok(LeafPaths::for_state_dir(&node.state_dir))
}

/// When the current set becomes due: the earliest moment a leaf passes two thirds of its
/// life. `None` when a leaf cannot be read (it is due now).
pub fn next_renewal(node: &Node, identity: &NodeIdentity) -> Option<OffsetDateTime> {
    let paths = LeafPaths::for_state_dir(&node.state_dir);
    kinds_for(identity)
        .iter()
        .map(|&kind| {
            let pem = fs::read_to_string(paths.cert(kind)).ok()?;
            let info = CertInfo::parse_pem(&pem).ok()?;
            let life = info.not_after - info.not_before;
            Some(info.not_before + life * RENEW_AT_LIFE_USED)
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// Issues the node's leaves ([`kinds_for`]) with new keys into a new set and makes it current.
/// Called under the state lock, which also made the state directory.
fn issue_new_set(node: &Node, identity: &NodeIdentity) -> Result<(), Error> {
    let tls = node.state_dir.join("tls");
    let sets = tls.join("sets");
    zone_io::ensure_private_dir(&tls)?;
    zone_io::ensure_private_dir(&sets)?;
    let id = set_id();
    let staging = Staging::new(&sets.join(&id))?;
    zone_io::write_new(
        &staging.path().join("ca.crt"),
        node.zone_ca_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    crate::identities::tls::write_trust(node, staging.path())?;
    for &kind in kinds_for(identity) {
        use crate::identities::tls::{client_issuer, ClientIssuer};
        let issuer = match kind {
            LeafKind::Client => client_issuer(node),
            LeafKind::Server | LeafKind::Peer => ClientIssuer::NodeCa,
        };
        let issued = match issuer {
            ClientIssuer::NodeCa => node.node_ca()?.authority.issue_leaf(kind, identity, None)?,
            ClientIssuer::Signer(signer) => signer.issue_identity(&node.name, &node.zone)?,
            ClientIssuer::Zone => {
                let obtained = crate::identities::request::obtain(node, None)?;
                zone_pki::Issued {
                    key_pem: obtained.key_pem().to_string(),
                    chain_pem: obtained.chain_pem,
                }
            }
        };
        let stem = kind.file_stem();
        zone_io::write_new(
            &staging.path().join(format!("{stem}.crt")),
            issued.chain_pem.as_bytes(),
            PUBLIC_MODE,
        )?;
        zone_io::write_new(
            &staging.path().join(format!("{stem}.key")),
            issued.key_pem.as_bytes(),
            KEY_MODE,
        )?;
    }
    staging.commit()?;
    let previous = fs::read_link(tls.join("current")).ok();
    point_current_at(&tls, &id)?;
    prune(&tls, &id, previous.as_deref())
}

/// A sortable, unique set name: issue time in nanoseconds, then the process id.
fn set_id() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{nanos:020}-{}", std::process::id())
}

/// Replaces the `current` symlink atomically (a new link renamed over the old one).
fn point_current_at(tls: &Path, id: &str) -> Result<(), Error> {
    let tmp = tls.join(format!(".current-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("sets").join(id), &tmp)
        .map_err(|e| Error::io("create symlink", &tmp, &e))?;
    let current = tls.join("current");
    fs::rename(&tmp, &current)
        .map_err(|e| Error::io("switch the current certificate set at", &current, &e))?;
    zone_io::sync_dir(tls)
}

/// Removes sets other than the current and the previous one, and what writers killed
/// half-way left behind: under the state lock no other writer is at work, so these are
/// stale.
fn prune(tls: &Path, current: &str, previous: Option<&Path>) -> Result<(), Error> {
    clear_leftovers(tls)?;
    let sets = &tls.join("sets");
    let keep_previous = previous
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    for entry in fs::read_dir(sets).map_err(|e| Error::io("read directory", sets, &e))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == current || Some(&name) == keep_previous.as_ref() || name.starts_with('.') {
            continue;
        }
        // Renamed aside first, so a kill half-way through the removal never leaves a
        // partial set under a set's name.
        let aside = sets.join(format!(".old-{name}"));
        if fs::rename(entry.path(), &aside).is_ok() {
            let _ = fs::remove_dir_all(aside);
        }
    }
    Ok(())
}

/// Removes what killed writers leave: temporary `current` links, and hidden entries of
/// `sets/` (staging directories, sets half removed). Called under the state lock.
fn clear_leftovers(tls: &Path) -> Result<(), Error> {
    let hidden = |dir: &Path, prefix: &str| -> Result<Vec<PathBuf>, Error> {
        Ok(zone_io::entries(dir)?
            .into_iter()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect())
    };
    for link in hidden(tls, ".current-")? {
        let _ = fs::remove_file(link);
    }
    for dir in hidden(&tls.join("sets"), ".")? {
        let _ = fs::remove_dir_all(dir);
    }
    Ok(())
}
