//! One module per command. Each `run` validates all its input before it writes anything,
//! and writes through staging directories or atomic renames, so a failure changes nothing.

pub mod activate;
pub mod backup;
pub mod bootstrap;
pub mod ca_init;
pub mod ca_rotation;
pub mod check;
pub mod demo;
pub mod downgrade;
pub mod env;
pub mod gateway;
pub mod generate;
pub mod issue_client;
pub mod join;
pub mod launch;
pub mod leave;
pub mod maintain;
pub mod promote_learner;
pub mod restore;
pub mod revoke;
pub mod rotate;
pub mod snapshot;
pub mod status;
pub mod trust;
pub mod undo;
pub mod zone_sign;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zone_pki::{Authority, CertInfo, Error, LeafKind};

use crate::cluster_api::Credentials;
use crate::config::node::Node;
use crate::etcd::{self, Profile, Remember, Version};
use crate::leaves::{self, LeafPaths, Outcome};

/// The zone root CA files inside a CA directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";

/// Writes a root CA's key (0600) and certificate into a staging directory.
pub fn write_root(dir: &Path, root: &Authority) -> Result<(), Error> {
    use zone_io::{write_new, KEY_MODE, PUBLIC_MODE};
    write_new(&dir.join(CA_KEY), root.key_pem().as_bytes(), KEY_MODE)?;
    write_new(&dir.join(CA_CERT), root.chain_pem().as_bytes(), PUBLIC_MODE)
}

/// Loads the zone root CA from `dir` and checks it is the root of `zone`.
pub fn load_root(dir: &Path, zone: &str) -> Result<Authority, Error> {
    let cert = dir.join(CA_CERT);
    let root = Authority::load(&cert, &dir.join(CA_KEY))?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    if !info.is_self_issued() {
        return Err(
            Error::new("not a root certificate (its issuer is another CA)")
                .file(&cert)
                .fix("point --ca to the directory made by `zone-etcd ca init`"),
        );
    }
    if let Some(ca_zone) = info.subject_cn.strip_suffix(" root CA") {
        if ca_zone != zone {
            return Err(Error::new(format!(
                "this is the root CA of zone {ca_zone:?}, but the zone file names zone {zone:?}"
            ))
            .file(&cert)
            .fix(
                "use the CA directory of the zone being activated, or fix name in the zone file",
            ));
        }
    }
    Ok(root)
}

/// The node's leaves, ready to use: `[external]` ones validated for `external_kinds`,
/// else the node CA's set reused, or issued when missing or due.
pub fn current_leaves(node: &Node, external_kinds: &[LeafKind]) -> Result<LeafPaths, Error> {
    if let Some(paths) = &node.external {
        crate::inspection::validate_external(node, paths, external_kinds)?;
        return Ok(paths.clone());
    }
    let (paths, outcome) = leaves::ensure(node, &node.identity())?;
    if let Outcome::Issued { reason } = outcome {
        tracing::info!("issued new certificates ({reason})");
    }
    Ok(paths)
}

/// What `join`, `leave` and `status` talk to the cluster with: the node's client
/// certificate, after the same checks as `env`.
pub fn client_credentials(node: &Node, config: &Path) -> Result<Arc<Credentials>, Error> {
    node.check_node_ca_covers(&node.identity())
        .map_err(|e| e.file(config))?;
    Credentials::load(&current_leaves(node, &[LeafKind::Client])?)
}

/// The running cluster as the first of the zone's members to answer lists it, with what
/// `leave` and `status` ask it more with.
pub struct Cluster {
    pub runtime: tokio::runtime::Runtime,
    pub creds: Arc<Credentials>,
    pub view: crate::cluster_api::ClusterView,
}

/// Asks every member of the node's list at once, with the node's client certificate.
pub fn ask_cluster(node: &Node, config: &Path) -> Result<Cluster, Error> {
    let creds = client_credentials(node, config)?;
    let runtime = crate::cluster_api::runtime()?;
    let endpoints = crate::cluster::client_endpoints(&node.members);
    let view = runtime
        .block_on(crate::cluster_api::view(&endpoints, &creds))
        .map_err(|failures| unreachable(&failures, config))?;
    Ok(Cluster {
        runtime,
        creds,
        view,
    })
}

/// The client URLs of the zone's members other than this node: where to reach the
/// running cluster from a node that may not be serving yet.
pub fn other_members(node: &Node) -> Vec<String> {
    node.members
        .iter()
        .filter(|m| m.node_name != node.name)
        .map(crate::cluster::client_url)
        .collect()
}

/// The one line for "no member answered", with each endpoint's reason.
pub fn unreachable(failures: &[(String, String)], config: &Path) -> Error {
    let reasons: Vec<String> = failures.iter().map(|(e, r)| format!("{e}: {r}")).collect();
    Error::new(format!(
        "no member of the zone's cluster answered ({})",
        if reasons.is_empty() {
            "the member list names no other member".to_string()
        } else {
            reasons.join("; ")
        }
    ))
    .file(config)
    .field("etcd")
    .fix("start the members (zone-etcd launch) or check the member list and the network")
}

/// The etcd this node runs and what the launcher makes of it (the version table); its
/// known defects are logged as warnings. Refused before anything is written when it is not
/// an etcd the launcher supports.
pub fn local_etcd(
    node: &Node,
    config: &Path,
    remember: Remember,
) -> Result<(PathBuf, Profile), Error> {
    let binary = etcd::find_binary(node.etcd_bin.as_deref(), config)?;
    let profile = etcd::identify(&binary, &node.state_dir, remember, config)?;
    for warning in &profile.warnings {
        tracing::warn!("{warning}");
    }
    Ok((binary, profile))
}

/// Refuses to start this node's etcd in the cluster `view` shows (as `view.answered_by`
/// told it) when etcd would stop it, or when it would take a step etcd's upgrade guides
/// forbid: older than the cluster's version, a minor version skipped, or the next minor
/// version before every other member runs the patch that step needs (each started member
/// is asked its release). A member that does not tell its versions (or a cluster that has
/// not decided one yet) is no refusal: etcd itself still checks.
pub fn check_upgrade(
    profile: &Profile,
    view: &crate::cluster_api::ClusterView,
    own_name: &str,
    creds: &Credentials,
    config: &Path,
) -> Result<(), Error> {
    let endpoint = &view.answered_by;
    let versions = match crate::cluster_api::versions(endpoint, creds) {
        Ok(versions) => versions,
        Err(reason) => {
            tracing::warn!(
                "not checking etcd's version against the cluster's: {endpoint}: {reason}"
            );
            return Ok(());
        }
    };
    let Some(cluster) = Version::parse(&versions.cluster) else {
        return Ok(());
    };
    // Only a step up a minor version needs the others' releases.
    let members: Vec<(String, Version)> = if profile.version.series() > cluster.series() {
        view.members
            .iter()
            .filter(|m| m.started() && m.name != own_name)
            .filter_map(|m| {
                let told = m
                    .client_urls
                    .iter()
                    .find_map(|url| crate::cluster_api::versions(url, creds).ok())?;
                Some((m.name.clone(), Version::parse(&told.server)?))
            })
            .collect()
    } else {
        Vec::new()
    };
    match crate::etcd::path::upgrade_refusal(profile.version, cluster, &members) {
        None => Ok(()),
        Some((problem, fix)) => Err(Error::new(format!(
            "{problem}; the cluster's version is {} (asked at {endpoint})",
            versions.cluster
        ))
        .file(config)
        .field("etcd_bin")
        .fix(fix)
        .permanent()),
    }
}

/// Starts a helper of etcd (`zone-etcd <args>`) detached, through a short-lived
/// intermediate (`<args> --detach`, which runs [`respawn_detached`]), so it is not the
/// child of the process about to become etcd: etcd never reaps children it did not start.
/// `what` names it in errors.
pub fn spawn_detached(args: &[String], what: &str) -> Result<(), Error> {
    let exe = own_executable()?;
    let status = std::process::Command::new(&exe)
        .args(args)
        .arg("--detach")
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io(&format!("start the {what}"), &exe, &e))?;
    if !status.success() {
        return Err(Error::new(format!("the {what} did not start ({status})")));
    }
    Ok(())
}

/// The intermediate's step of [`spawn_detached`]: `zone-etcd <args>` in the background.
pub fn respawn_detached(args: &[String], what: &str) -> Result<(), Error> {
    let exe = own_executable()?;
    std::process::Command::new(&exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&format!("start the {what}"), &exe, &e))?;
    Ok(())
}

fn own_executable() -> Result<PathBuf, Error> {
    std::env::current_exe()
        .map_err(|e| Error::new(format!("cannot find zone-etcd's own executable: {e}")))
}

/// Whether process `pid` still runs. A zombie does not: it has exited, and its parent
/// (a supervisor, a shell) may be waiting for this process to close the output it shares
/// before it reaps it.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => i32::try_from(pid)
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_running() {
        assert!(running(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!running(pid));
        child.wait().unwrap();
        assert!(!running(pid));
    }
}
