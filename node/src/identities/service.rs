//! A service's own identity kept in the node's state for `zone-etcd env --service NAME`:
//! `<state>/services/<name>/current -> sets/<id>/{client.crt, client.key}`, obtained
//! from the zone ([`super::request::obtain`]) when missing or past two thirds of its
//! life, so a service that runs `env` at each start always gets a valid one. With
//! `--gateway`, the same for its gateway certificate (`gateway -> sets/<id>/`, no CN) and
//! its password (`gateway-password`, [`super::password`]). Which names a service may take
//! at all ([`check_service_name`]: `issue-client` and `env --service`, with or without
//! `[access]`).
//!
//! Invariants: a set is written whole before `current` points to it (an atomic rename of
//! a link), so a reader sees the old pair or the new one, never a mix; the key is made on
//! this node and written 0600 in a 0700 directory; an identity is reused only when its
//! key matches, it names `<name>@<node>`, and it chains to the client root through a
//! signer; everything runs under the state lock.

use std::fs;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::CertInfo;

use super::password::{self, Answer, NotSet};
use crate::node::Node;
use zone_model::policy::rbac::service_user;
use zone_pki::inspect::RENEW_AT_LIFE_USED;
use zone_pki::profile::peer_name;

/// The link to the service's identity's set.
const CURRENT: &str = "current";
/// The link to the service's gateway certificate's set.
const GATEWAY: &str = "gateway";

/// A service identity's files, through `current` (or `gateway`).
#[derive(Debug, Clone)]
pub struct ServiceFiles {
    pub user: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `service`'s identity on `node`: reused while valid, else obtained anew.
pub fn ensure(node: &Node, service: &str) -> Result<ServiceFiles, Error> {
    match ensure_set(node, service, None, false)? {
        Ok(files) => Ok(files),
        Err(never) => Err(Error::new(format!("{never:?}"))),
    }
}

/// `service`'s gateway on `node` ([`super::password`]): its password's file, made here
/// when missing, and a gateway certificate, reused while valid and etcd takes the
/// password, else obtained anew (which has a member set the password). Waits up to
/// [`password::AUTH_WAIT`] for etcd's auth to go on. `ca` verifies the members.
pub fn gateway(node: &Node, service: &str, ca: &Path) -> Result<(ServiceFiles, PathBuf), Error> {
    let user = service_user(service, &node.name);
    let (password_file, mut password) = {
        let _lock = zone_io::state::lock(&node.state_dir)?;
        password::load_or_make(&service_dir(node, service)?)?
    };
    let endpoints = zone_model::cluster::client_endpoints(&node.members);
    let started = std::time::Instant::now();
    let mut renew = false;
    let wait = || -> Result<(), Error> {
        if started.elapsed() >= password::AUTH_WAIT {
            return Err(password::auth_off(&user));
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        Ok(())
    };
    loop {
        let files = match ensure_set(node, service, Some(&password), renew)? {
            Ok(files) => files,
            // `revoke --identity` of it ended its password too: a new password with a
            // new certificate, never the old one set again (it may have leaked, issue 68;
            // cc80: a node that learnt of the revocation before env asked the endpoint
            // for a new certificate with the old password, which the endpoint set).
            Err(Unset::Untrusted) => {
                password = new_password(node, service)?;
                renew = true;
                continue;
            }
            Err(Unset::NotSet(NotSet::AuthOff)) => {
                wait()?;
                continue;
            }
            Err(Unset::NotSet(NotSet::Failed(why))) => {
                return Err(Error::new(format!(
                    "the gateway password of {user} was not set: {why}"
                ))
                .fix("check that the members run (zone-etcd status), then run env again"))
            }
        };
        let creds = zone_etcd_kit::cluster_api::Credentials::from_pem(
            &zone_io::read_text(ca)?,
            &zone_io::read_text(&files.cert)?,
            &zone_io::read_text(&files.key)?,
        );
        let answer = match password::check(&endpoints, &creds, &user, &password) {
            Ok(answer) => answer,
            // Refused at the handshake: revoked since the node last asked (`revoke
            // --identity` of it ends its password too)? Asked now; when it is, a new
            // certificate with a new password.
            Err(e) if !renew => {
                super::revoked::refresh_now(node);
                if problem(node, &files, "", time::OffsetDateTime::now_utc()).is_none() {
                    return Err(e);
                }
                password = new_password(node, service)?;
                renew = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        match answer {
            Answer::Taken => return Ok((files, password_file)),
            Answer::AuthOff => wait()?,
            // Ended (the owner revoked the gateway certificate or changed the password,
            // the zone moved to enforcement): a new one, never the old one again (it may
            // have leaked).
            Answer::Wrong | Answer::NoPassword if !renew => {
                password = new_password(node, service)?;
                renew = true;
            }
            Answer::Wrong | Answer::NoPassword => {
                return Err(Error::new(format!(
                    "a member set the gateway password of {user}, but etcd does not take it"
                ))
                .fix("run env again; if it says so again, tell the zone's owner (zone-etcd status names what the keepers removed)"))
            }
        }
    }
}

/// A new gateway password for `service` in its file (under the node's state lock), for a
/// new gateway certificate: the one in place ended, or may have leaked.
fn new_password(node: &Node, service: &str) -> Result<String, Error> {
    let _lock = zone_io::state::lock(&node.state_dir)?;
    password::replace(&service_dir(node, service)?)
}

/// `<state>/services/<service>/`, made 0700 when missing.
fn service_dir(node: &Node, service: &str) -> Result<PathBuf, Error> {
    let services = node.state_dir.join("services");
    zone_io::ensure_private_dir(&services)?;
    let dir = services.join(service);
    zone_io::ensure_private_dir(&dir)?;
    zone_io::ensure_private_dir(&dir.join("sets"))?;
    Ok(dir)
}

/// Why [`ensure_set`] gave no gateway certificate.
#[derive(Debug)]
enum Unset {
    /// No member could set the password yet.
    NotSet(NotSet),
    /// The certificate in place no longer chains to what the zone trusts (revoked, or its
    /// node CA revoked): its password ended with it, so the caller makes a new one first.
    Untrusted,
}

/// The identity (`gateway`: `None`) or the gateway certificate for the password
/// `gateway` of `service` on `node`, reused while valid unless `renew`.
fn ensure_set(
    node: &Node,
    service: &str,
    gateway: Option<&str>,
    renew: bool,
) -> Result<Result<ServiceFiles, Unset>, Error> {
    let user = service_user(service, &node.name);
    let _lock = zone_io::state::lock(&node.state_dir)?;
    let dir = service_dir(node, service)?;
    let link = if gateway.is_some() { GATEWAY } else { CURRENT };
    let current = dir.join(link);
    let files = ServiceFiles {
        user: user.clone(),
        cert: current.join("client.crt"),
        key: current.join("client.key"),
    };
    let cn = if gateway.is_some() { "" } else { user.as_str() };
    let why = if renew {
        "asked anew".to_string()
    } else {
        match problem(node, &files, cn, OffsetDateTime::now_utc()) {
            None => return Ok(Ok(files)),
            Some(Problem::Untrusted(_)) if gateway.is_some() => return Ok(Err(Unset::Untrusted)),
            Some(problem) => problem.to_string(),
        }
    };
    let obtained = match gateway {
        Some(password) => match super::request::obtain_gateway(node, service, password)? {
            Ok(obtained) => obtained,
            Err(not_set) => return Ok(Err(Unset::NotSet(not_set))),
        },
        None => super::request::obtain(node, Some(service))?,
    };
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
    let previous = [CURRENT, GATEWAY].map(|l| fs::read_link(dir.join(l)).ok());
    let tmp = dir.join(format!(".{link}-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("sets").join(&id), &tmp)
        .map_err(|e| Error::io("create symlink", &tmp, &e))?;
    fs::rename(&tmp, &current).map_err(|e| Error::io("switch", &current, &e))?;
    zone_io::sync_dir(&dir)?;
    prune(&dir, &id, &previous);
    let what = if gateway.is_some() {
        "a gateway certificate of"
    } else {
        "the identity"
    };
    tracing::info!(
        "obtained {what} {user} from {} (the one in place: {why})",
        obtained.from
    );
    Ok(Ok(files))
}

/// Why the identity in place cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// Missing, unreadable or unparsable, or its key does not match it.
    Unusable(&'static str),
    /// It names another user (its CN).
    Names(String),
    /// Expired, or far enough into its life to be renewed.
    Due,
    /// It no longer chains to what the zone trusts: the reason.
    Untrusted(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unusable(what) => f.write_str(what),
            Problem::Names(cn) => write!(f, "names {cn:?}"),
            Problem::Due => f.write_str("due"),
            Problem::Untrusted(why) => f.write_str(why),
        }
    }
}

/// Why the current identity cannot be used, or `None`.
fn problem(node: &Node, files: &ServiceFiles, cn: &str, now: OffsetDateTime) -> Option<Problem> {
    let (Ok(pem), Ok(key)) = (
        fs::read_to_string(&files.cert),
        zone_pki::key::load_key(&files.key),
    ) else {
        return Some(Problem::Unusable("missing or unreadable"));
    };
    let Ok(info) = CertInfo::parse_pem(&pem) else {
        return Some(Problem::Unusable("unparsable"));
    };
    if !info.public_key_matches(&key) {
        return Some(Problem::Unusable("the key does not match"));
    }
    if info.subject_cn != cn {
        return Some(Problem::Names(info.subject_cn));
    }
    if now >= info.not_after || info.life_used(now) >= RENEW_AT_LIFE_USED {
        return Some(Problem::Due);
    }
    super::tls::chain_problem(node, &pem).map(Problem::Untrusted)
}

/// Removes every set in `dir`'s `sets/` but `current` and those the links pointed to
/// before (`previous`); a reader may still hold one of those.
fn prune(dir: &Path, current: &str, previous: &[Option<PathBuf>]) {
    let mut keep: Vec<std::ffi::OsString> = previous
        .iter()
        .flatten()
        .filter_map(|p| p.file_name().map(|n| n.to_owned()))
        .collect();
    // What the links point to now (the other kind's current set among them).
    for link in [CURRENT, GATEWAY] {
        if let Some(name) = fs::read_link(dir.join(link))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_owned()))
        {
            keep.push(name);
        }
    }
    let Ok(entries) = fs::read_dir(dir.join("sets")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == current || keep.contains(&name) {
            continue;
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// Refuses names etcd would map to a user this service must not be.
pub fn check_service_name(node: &Node, service: &str) -> Result<(), Error> {
    let fix = "choose the service's own name, e.g. --name nameservice";
    let valid = !service.is_empty()
        && service.len() <= 64
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(Error::new(format!(
            "{service:?} is not a service name (1-64 of a-z, 0-9, '-', '_', '.')"
        ))
        .field("--name")
        .fix(fix));
    }
    let why = if service == "root" {
        Some("etcd maps CN root to its superuser; a node must not mint it".to_string())
    } else if service == peer_name(&node.zone) {
        Some("it is the zone's peer name, which only peer certificates carry".to_string())
    } else if node.members.iter().any(|m| m.node_name == service) || service == node.name {
        Some("it is the name of a node of the zone (node certificates use it)".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::new(format!("refusing CN {service:?}: {why}"))
            .field("--name")
            .fix(fix)),
        None => Ok(()),
    }
}
