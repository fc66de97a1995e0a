//! `zone-etcd join`: bring an activated node into the running cluster, by etcd's runtime
//! reconfiguration (seeds/002): add it as a learner through a healthy member, start etcd
//! (exec, as `launch` does) as an `existing` member with the initial cluster the cluster
//! returned, and promote it to a voter once its log has caught up.
//!
//! A learner does not count toward quorum, so the zone keeps its fault tolerance while the
//! new member copies the data. Every step may be repeated: a join stopped after the add
//! finds its member by peer URL and does not add it twice; one stopped after etcd started
//! finds its data directory and only starts and promotes it (see [`zone_node::membership`]).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, hex_id, Credentials};
use zone_etcd_kit::etcd::{self, EtcdPlan};
use zone_etcd_kit::wal;
use zone_io::state;
use zone_model::cluster::{self, ClusterState};
use zone_node::membership::{self, JoinStep};
use zone_node::node::Node;
use zone_node::preflight::{self, Ready, Start};

/// `replace`: when the cluster lists this node as a started member but its data directory
/// holds none (a lost disk), remove that member and join anew, once it answers nowhere.
pub fn run(config: &Path, replace: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let Some(member) = node.member() else {
        return Err(Error::new(format!(
            "{} is not in zone {}'s member list, so it cannot join the cluster",
            node.name, node.zone
        ))
        .file(config)
        .field("etcd")
        .fix("the owner adds the node to the zone file (or the nameservice's document) and activates it again"));
    };
    let Ready {
        binary,
        release,
        tls,
        ..
    } = preflight::check(&node, Start::Join)?;
    // The disk the new member's data will be on, before it takes the first write.
    zone_node::disk_probe::tell(&node.state_dir, &node.data_dir);
    let tls = tls.unwrap_or_else(|| node.leaf_paths());
    let creds = Credentials::load(&tls)?;
    let others = node.other_members();
    let peer_url = cluster::peer_url(member);
    let runtime = cluster_api::runtime()?;
    let crl = zone_node::identities::tls::crl_files(&node);

    // Two joins of one node must not both add it.
    let lock = state::lock(&node.state_dir)?;
    let local = wal::local_member(&node.data_dir)?;
    let view = runtime
        .block_on(cluster_api::view(&others, &creds))
        .map_err(|failures| zone_node::reach::unreachable(&failures, config))?;
    // The bundled etcd the cluster does not admit yet gives way to one it does.
    let (binary, release) = preflight::etcd::check_upgrade(&node, &release, &view, &creds)?
        .unwrap_or((binary, release));
    // The lost member this join removed (0: none).
    let mut replaced = 0;
    let step = match membership::plan_join(local, &view, &node.name, &peer_url) {
        Err(membership::Conflict::StartedWithoutData { id }) if replace => {
            replace_lost(&runtime, &view, &creds, id, &node.name, config)?;
            replaced = id;
            JoinStep::Add
        }
        other => other.map_err(|c| c.into_error(&node.name, &node.data_dir, &view.answered_by))?,
    };
    let (id, members, learner) = match step {
        JoinStep::Restart { id, learner } => {
            tracing::info!(
                "{} is already member {} of the cluster; starting it from its data",
                node.name,
                hex_id(id)
            );
            (id, view.members.clone(), learner)
        }
        JoinStep::Start { id } => {
            require_healthy(&runtime, &view, &creds, id, config)?;
            tracing::info!(
                "the cluster added {} as member {} before (an earlier join); starting it",
                node.name,
                hex_id(id)
            );
            (id, view.members.clone(), true)
        }
        JoinStep::Add => {
            // After a replacement the voters were checked just before the removal; the
            // removal itself may move the leadership, which fails quorum reads a moment.
            if replaced == 0 {
                require_healthy(&runtime, &view, &creds, 0, config)?;
            }
            let (id, members) = runtime
                .block_on(cluster_api::add_learner(
                    &view.client_urls(),
                    &creds,
                    &peer_url,
                ))
                .map_err(|reason| add_refused(&node.name, &reason, config))?;
            tracing::info!(
                "added {} to the cluster as learner {}",
                node.name,
                hex_id(id)
            );
            (id, members, true)
        }
    };
    drop(lock);

    let plan = EtcdPlan {
        zone: &node.zone,
        member,
        initial_cluster: cluster::joining_initial_cluster(&members, id, &node.name),
        token: cluster::cluster_token(&node.zone, &node.members, &node.zone_ca_info.fingerprint()),
        state: ClusterState::Existing,
        data_dir: &node.data_dir,
        tls: &tls,
        etcd: &release,
        settings: &node.settings,
        listen: node.listen_address,
        tunneled: zone_model::config::zone::has_tunnels(&node.members),
        crl: Some(crl.crls()),
        client_port: zone_node::identities::tls::client_port(&node, &node.state_dir),
    };
    zone_agent::start(config, learner.then_some(id))?;
    tracing::info!(
        "exec {} as member {} of zone {} (joining cluster {})",
        binary.display(),
        node.name,
        node.zone,
        hex_id(view.cluster_id)
    );
    let err = Command::new(&binary).args(etcd::args(&plan)).exec();
    Err(Error::io("exec etcd", &binary, &err))
}

/// The one line for an add the cluster refused: in a zone of least privilege, a member's
/// etcd user (root) is made by the keepers from the published zone document, so a node
/// the document does not list as a member yet has none, or only its own prefix, and
/// etcd refuses its membership change.
fn add_refused(name: &str, reason: &cluster_api::EtcdError, config: &Path) -> Error {
    use cluster_api::Kind;
    match reason.kind() {
        Kind::UserNotFound | Kind::PermissionDenied => Error::new(format!(
            "the cluster refused to add {name}: {reason}: the zone document the members apply does not list {name} as a member yet, so its certificate is not etcd's root"
        ))
        .file(config)
        .fix("on the owner's machine, publish the zone file that lists it (zone-etcd zone publish --ca CA_DIR --zone ZONE_FILE --config NODE_FILE, with the node.toml activate wrote for it or any member's), then run join again"),
        _ => Error::new(format!("the cluster refused to add {name}: {reason}"))
            .file(config)
            .fix("see `zone-etcd status` (etcd adds one learner at a time: a learner it lists must be started or removed first)"),
    }
}

/// Removes member `id` (this node's, its data lost) so the node can join anew: only when
/// none of its client URLs answers (a member still running elsewhere is not lost) and the
/// other voters are healthy (they keep the quorum without it).
fn replace_lost(
    runtime: &tokio::runtime::Runtime,
    view: &zone_model::cluster::ClusterView,
    creds: &std::sync::Arc<Credentials>,
    id: u64,
    name: &str,
    config: &Path,
) -> Result<(), Error> {
    let lost = view
        .by_id(id)
        .map(|m| m.client_urls.clone())
        .unwrap_or_default();
    let probes = lost.iter().map(|u| (u.clone(), false)).collect();
    let reports = runtime.block_on(cluster_api::probe_all(probes, creds));
    let peers = view
        .by_id(id)
        .map(|m| m.peer_urls.clone())
        .unwrap_or_default();
    let alive = reports
        .iter()
        .filter(|r| r.status.is_ok())
        .map(|r| r.endpoint.clone())
        .chain(
            lost.iter()
                .chain(&peers)
                .filter(|u| cluster_api::listening(u, cluster_api::CONNECT_TIMEOUT))
                .cloned(),
        )
        .next();
    if let Some(alive) = alive {
        return Err(Error::new(format!(
            "member {} ({name}) still answers at {alive}: it is not lost, so it is not replaced",
            hex_id(id),
        ))
        .file(config)
        .fix("stop the etcd that still runs as this member (on the old machine or disk), then run join --replace again"));
    }
    require_healthy(runtime, view, creds, id, config)?;
    runtime
        .block_on(cluster_api::remove(&view.client_urls(), creds, id))
        .map_err(|reason| {
            Error::new(format!(
                "the cluster refused to remove lost member {}: {reason}",
                hex_id(id)
            ))
            .file(config)
            .fix("see zone-etcd status, then run join --replace again")
        })?;
    tracing::info!("removed lost member {} ({name}); joining anew", hex_id(id));
    Ok(())
}

/// How long a join waits for a cluster whose voters all answer to have a leader again.
const ELECTION_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Refuses to grow a cluster whose voters are not all healthy: once promoted, the new
/// member raises the quorum, and a cluster already short of members could lose it.
/// `joining` is this node's member ID when the cluster already lists it (it is not asked).
fn require_healthy(
    runtime: &tokio::runtime::Runtime,
    view: &zone_model::cluster::ClusterView,
    creds: &std::sync::Arc<Credentials>,
    joining: u64,
    config: &Path,
) -> Result<(), Error> {
    let voters: Vec<&zone_model::cluster::ClusterMember> = view
        .members
        .iter()
        .filter(|m| !m.learner && m.id != joining)
        .collect();
    let endpoints: Vec<(String, bool)> = voters
        .iter()
        .flat_map(|m| m.client_urls.iter().map(|u| (u.clone(), true)))
        .collect();
    // A cluster that just lost its leader elects another within an election timeout;
    // quorum reads fail meanwhile ("leader changed"). Ask again for a few seconds while
    // every voter answers and only such reads fail.
    let deadline = std::time::Instant::now() + ELECTION_GRACE;
    let problems = loop {
        let reports = runtime.block_on(cluster_api::probe_all(endpoints.clone(), creds));
        let problems: Vec<String> = voters
            .iter()
            .filter_map(|m| {
                cluster_api::member_problem(m, &reports)
                    .map(|p| format!("{}: {p}", describe_member(m)))
            })
            .collect();
        let transient = reports
            .iter()
            .all(|r| r.status.is_ok() && r.handshake.is_ok());
        if problems.is_empty() || !transient || std::time::Instant::now() >= deadline {
            break problems;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "the cluster is not healthy, so no member is added: {}",
        problems.join("; ")
    ))
    .file(config)
    .fix("bring the member back (zone-etcd launch on it), or remove it (zone-etcd leave --node NAME), then join again"))
}

fn describe_member(m: &zone_model::cluster::ClusterMember) -> String {
    if m.name.is_empty() {
        format!("member {}", hex_id(m.id))
    } else {
        format!("{} (member {})", m.name, hex_id(m.id))
    }
}
