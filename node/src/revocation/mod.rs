//! Revocation on the launcher's side: the zone's revocations document ([`doc`]), a node's
//! copy of it ([`store`]), the member process that keeps it current (`zone_agent`), and
//! cutting the connections opened before a revocation took effect ([`cut`]).
//!
//! How a revocation travels: `zone-etcd revoke` (the owner, with the zone root) publishes
//! the document at [`doc::KEY`] in the zone's etcd; each member's keeper sees it on its
//! watch, checks the root's signature and that it is newer, writes etcd's CRL file, and
//! cuts the old connections; a member that starts later reads it from the others before
//! etcd starts ([`before_start`]). etcd rereads its CRL file on every new connection, on
//! both ports, so nothing restarts.

pub mod cut;
pub mod doc;
pub mod issued;
pub mod kind;
pub mod store;
pub mod summary;

use std::time::Duration;

use zone_io::Error;
use zone_pki::revocation::serial_hex;

use crate::node::Node;
use doc::{Revocations, KEY};
use zone_etcd_kit::cluster_api::others::{self, Outcome};
use zone_etcd_kit::cluster_api::{self, Credentials, EtcdError};
use zone_etcd_kit::wal::LocalMember;

/// How long a starting member that holds the zone's revocations asks the others for a
/// newer copy: they answer at once when they run, and when none runs there is nothing
/// newer to learn (its keeper installs a newer one once the cluster serves).
const ASK_OTHERS: Duration = Duration::from_millis(1500);
/// How long one that knows none (a new joiner, a copy lost; [`knows`]) waits for an answer while
/// another member could still give one: without it, it would serve with a CRL that
/// revokes nothing (see [`before_start`]).
pub const ASK_WITHOUT_COPY: Duration = Duration::from_secs(10);

/// Before etcd starts on this node: installs the newest revocations the other members
/// have (`asked`, [`ask_before_start`]; a member started later serves with them from its
/// first connection), refuses to start a node whose own CA is revoked, and makes sure
/// etcd's CRL file exists.
///
/// A node left without a copy while another member could have given one but did not
/// answer within [`ASK_WITHOUT_COPY`] (hung, or very slow) does not start: etcd would take
/// the placeholder CRL, which revokes nothing, and admit every identity the zone revoked
/// until its keeper read the zone's copy. The placeholder is only for a zone with no
/// revocations, or one none of whose other members can answer (never served, down, or
/// waiting for a quorum that needs this member: its keeper installs the zone's copy once
/// the cluster serves).
pub fn before_start(node: &Node, asked: &Asked) -> Result<(), Error> {
    let roots = zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?;
    if let Some(doc) = &asked.revocations {
        if let Err(e) = store::install(&node.state_dir, &roots, doc) {
            tracing::warn!("not installing the zone's revocations: {e}");
        }
    }
    let in_force = store::in_force(&node.state_dir, &roots)?;
    match &in_force {
        Some(doc) => refuse_if_revoked(node, doc)?,
        None if asked.unanswered => {
            return Err(Error::new(format!(
                "{} holds no copy of the zone's revocations, and no other member gave it one within {} s: it would serve with a CRL that revokes nothing",
                node.name,
                ASK_WITHOUT_COPY.as_secs()
            ))
            .file(node.state_dir.join(store::DOC_FILE))
            .fix("start it again once another member of the zone answers on its client port (zone-etcd status shows which do)"))
        }
        None => {}
    }
    store::ensure_crl_file(&node.state_dir, in_force.as_ref())
}

/// What the other members hold, asked once before this one starts ([`ask_before_start`]).
#[derive(Debug, Default)]
pub struct Asked {
    /// The zone's revocations, as the first member to answer has them.
    pub revocations: Option<Revocations>,
    /// The zone's format level document ([`zone_model::release::LEVEL_KEY`], see
    /// [`crate::preflight::level`]).
    pub level: Option<Vec<u8>>,
    /// No other member answered in the time given, though one could still have
    /// ([`Outcome::Silent`]), and this node needed the answer (it holds no copy, in a zone
    /// that may have served): not the same as a zone with no revocations.
    pub unanswered: bool,
}

/// Asks the other members, once and briefly (`ASK_OTHERS`; [`ASK_WITHOUT_COPY`] when this
/// node holds no revocations of the zone's and the zone may have served), for what a
/// start needs from them: the zone's revocations and its format level (two serializable
/// reads over one connection). Nothing is written.
///
/// `first_start`: a launch over an empty data directory, the zone's first (members
/// started then hold their client ports until they have a quorum, which may need this
/// one): the zone never served, so it revoked nothing, and a silence is no refusal.
///
/// A member over existing data (`local`) also asks the others' peer ports, and stops
/// asking as soon as no client port can answer before it starts: every other is down or
/// never served (a restored zone coming up, see [`zone_etcd_kit::cluster_api::others`]). A
/// member that served once answers this read without a quorum, so it is waited for. When
/// none can, this member starts with the copy it has, and its keeper reads the zone's
/// copy once the cluster serves.
pub fn ask_before_start(node: &Node, local: Option<LocalMember>, first_start: bool) -> Asked {
    let others = node.other_members();
    if others.is_empty() {
        return Asked::default();
    }
    let Ok(creds) = Credentials::load(&node.leaf_paths()) else {
        return Asked::default();
    };
    let Ok(runtime) = cluster_api::runtime() else {
        return Asked::default();
    };
    let keys: &'static [&'static str] = &[KEY, zone_model::release::LEVEL_KEY];
    let needs_answer = !first_start && !knows(node);
    let deadline = match needs_answer {
        true => ASK_WITHOUT_COPY,
        false => ASK_OTHERS,
    };
    let found = runtime.block_on(ask_others(node, &others, creds, local, keys, deadline));
    let mut values = match found {
        Outcome::Answer(values) => values,
        Outcome::Nobody => return Asked::default(),
        Outcome::Silent => {
            return Asked {
                unanswered: needs_answer,
                ..Asked::default()
            }
        }
    };
    let level = values.pop().flatten();
    let revocations = values
        .into_iter()
        .next()
        .flatten()
        .and_then(|text| Revocations::parse(&String::from_utf8_lossy(&text)).ok());
    Asked {
        revocations,
        level,
        unanswered: false,
    }
}

/// Whether this node knows the zone's revocations: a copy its roots verify, or its
/// keeper's note that the zone had none ([`store::knows`]). A member that restarts in a
/// zone that never revoked anything needs no answer from the others.
fn knows(node: &Node) -> bool {
    zone_model::config::trust::trusted_roots(&node.zone_ca_pem)
        .is_ok_and(|roots| store::knows(&node.state_dir, &roots))
}

/// The values at `keys` the other members (`endpoints`) hold, as the first to answer has
/// them, for a member about to start, within `deadline`, or why none answered
/// ([`Outcome`]). A serializable read: any member's copy will do ([`store::install`]
/// keeps only a newer document). Each member is asked on its own, all at once: the zone
/// may be partly down while this one starts, and a client balanced over them all waits
/// on the dead ones. A member without data (`local` is `None`) asks no peer port: a
/// deadline without an answer is [`Outcome::Silent`].
pub(crate) async fn ask_others(
    node: &Node,
    endpoints: &[String],
    creds: std::sync::Arc<Credentials>,
    local: Option<LocalMember>,
    keys: &'static [&'static str],
    deadline: Duration,
) -> Outcome<Vec<Option<Vec<u8>>>> {
    // A member whose port takes connections runs, however slow (a loaded machine, a
    // member stopped by a debugger): it is asked again until the deadline. Only one that
    // refuses (etcd's answer: a joiner's user may read nothing yet), or whose port refuses
    // or cannot be reached, will not answer.
    let read = move |endpoint: String| {
        let creds = creds.clone();
        async move {
            loop {
                match read_keys(&endpoint, &creds, keys).await {
                    Ok(values) => return Ok(values),
                    Err(e) if e.is_refusal() || !takes_connections(&endpoint).await => {
                        return Err(e.to_string())
                    }
                    Err(_) => tokio::time::sleep(ASK_AGAIN).await,
                }
            }
        }
    };
    match local {
        Some(local) => {
            let peer_creds = Credentials::load_peer(&node.leaf_paths()).ok();
            let peers = node.other_peers();
            let rule = (local, others::Needs::AnyServing);
            others::first_answer(endpoints, &peers, peer_creds, rule, deadline, read).await
        }
        None => {
            let mut asks: tokio::task::JoinSet<_> =
                endpoints.iter().map(|e| read(e.clone())).collect();
            let first = async {
                loop {
                    match asks.join_next().await {
                        Some(Ok(Ok(values))) => break Outcome::Answer(values),
                        Some(Ok(Err(_)) | Err(_)) => continue,
                        None => break Outcome::Nobody,
                    }
                }
            };
            tokio::time::timeout(deadline, first)
                .await
                .unwrap_or(Outcome::Silent)
        }
    }
}

/// Between two asks of a member that runs but did not answer.
const ASK_AGAIN: Duration = Duration::from_millis(200);

/// Whether the port of `endpoint` (a client URL) takes a TCP connection now, within
/// [`cluster_api::CONNECT_TIMEOUT`] ([`cluster_api::listening`], without blocking the
/// runtime the other asks share).
async fn takes_connections(endpoint: &str) -> bool {
    let Some((host, port)) = cluster_api::host_port(endpoint) else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    matches!(
        tokio::time::timeout(cluster_api::CONNECT_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}

/// A node whose node CA the zone revoked does not start.
pub fn refuse_if_revoked(node: &Node, doc: &Revocations) -> Result<(), Error> {
    let Some(ca) = &node.node_ca else {
        return Ok(());
    };
    if !doc.crl.revokes(ca.info.serial()) {
        return Ok(());
    }
    Err(Error::new(format!(
        "{} was revoked: its node CA (serial {}) is on the zone's CRL number {} of {}",
        node.name,
        serial_hex(ca.info.serial()),
        doc.crl.number,
        doc.crl.this_update.date()
    ))
    .file(&node.path)
    .fix("the zone owner revoked this node's bundle; to bring the node back, the owner activates it anew (zone-etcd activate) and it joins with the new bundle")
    .permanent())
}

/// The zone's document and its mod revision (0: none), as the first of `endpoints` to
/// answer has it (one client balanced over them), within [`cluster_api::CALL_DEADLINE`]:
/// read with a quorum, or from any member's copy when `serializable`.
pub async fn published(
    endpoints: &[String],
    creds: &Credentials,
    serializable: bool,
) -> Result<(Option<String>, i64), String> {
    let client = cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    published_from(&client, serializable).await
}

/// [`published`] through `client`, a connection the caller holds (`status` reads its
/// records over one).
pub async fn published_from(
    client: &etcd_client::Client,
    serializable: bool,
) -> Result<(Option<String>, i64), String> {
    let (value, revision) = read_key_from(client, KEY, serializable).await?;
    Ok((
        value.map(|v| String::from_utf8_lossy(&v).into_owned()),
        revision,
    ))
}

/// The values at `keys`, read from `endpoint` over one connection (serializable).
async fn read_keys(
    endpoint: &str,
    creds: &Credentials,
    keys: &[&str],
) -> Result<Vec<Option<Vec<u8>>>, EtcdError> {
    let mut client = cluster_api::connect(endpoint, creds)
        .await
        .map_err(EtcdError::unreachable)?;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        let options = etcd_client::GetOptions::new().with_serializable();
        let got = cluster_api::within(async {
            client
                .get(*key, Some(options))
                .await
                .map_err(|e| EtcdError::of(&e))
        })
        .await?;
        values.push(got.kvs().first().map(|kv| kv.value().to_vec()));
    }
    Ok(values)
}

/// The value at `key` and its mod revision (0: none), as [`published`] reads it.
pub async fn read_key(
    endpoints: &[String],
    creds: &Credentials,
    key: &str,
    serializable: bool,
) -> Result<(Option<Vec<u8>>, i64), String> {
    let client = cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    read_key_from(&client, key, serializable).await
}

/// [`read_key`] through `client`.
async fn read_key_from(
    client: &etcd_client::Client,
    key: &str,
    serializable: bool,
) -> Result<(Option<Vec<u8>>, i64), String> {
    let options = serializable.then(|| etcd_client::GetOptions::new().with_serializable());
    let got = cluster_api::ask(client, |mut c| {
        let options = options.clone();
        async move { c.get(key, options).await }
    })
    .await?;
    Ok(match got.kvs().first() {
        Some(kv) => (Some(kv.value().to_vec()), kv.mod_revision()),
        None => (None, 0),
    })
}
