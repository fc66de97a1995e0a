//! The member list and its changes. Changes go to the first member that answers (any
//! healthy member forwards them to the leader) and are retried while etcd calls the
//! cluster "unhealthy" right after a start or a change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, MemberAddOptions};
use tokio::task::JoinSet;

use super::client::{connect, describe, Credentials};
use super::error::{EtcdError, Kind, NoAnswer};
use zone_model::cluster::{ClusterMember, ClusterView};

/// The member list from the first of `endpoints` that answers; all of them are asked at
/// once. Fails with each endpoint's reason when none answers.
pub async fn view(
    endpoints: &[String],
    creds: &Arc<Credentials>,
) -> Result<ClusterView, Vec<(String, String)>> {
    let mut asks = JoinSet::new();
    for endpoint in endpoints {
        let (endpoint, creds) = (endpoint.clone(), creds.clone());
        asks.spawn(async move {
            let result = super::client::within(member_list(&endpoint, &creds)).await;
            (endpoint, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok((_, Ok(view))) => return Ok(view),
            Ok((endpoint, Err(reason))) => failures.push((endpoint, reason)),
            Err(e) => failures.push(("(task)".into(), e.to_string())),
        }
    }
    failures.sort();
    Err(failures)
}

/// The member list as the client port at `endpoint` answers it (no deadline of its own:
/// wrap it in [`super::client::within`]).
pub async fn member_list(endpoint: &str, creds: &Credentials) -> Result<ClusterView, String> {
    let mut client = connect(endpoint, creds).await?;
    let response = client.member_list().await.map_err(|e| describe(&e))?;
    let cluster_id = response.header().map(|h| h.cluster_id()).unwrap_or(0);
    Ok(ClusterView {
        cluster_id,
        members: response.members().iter().map(member_of).collect(),
        answered_by: endpoint.to_string(),
    })
}

fn member_of(m: &etcd_client::Member) -> ClusterMember {
    ClusterMember {
        id: m.id(),
        name: m.name().to_string(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        learner: m.is_learner(),
    }
}

/// Runs `request` against each endpoint in turn until one answers; the reasons of all
/// failures otherwise. For changes (add, promote, remove), which any healthy member
/// forwards to the leader. A refusal from etcd itself is the cluster's answer and is
/// returned at once; only unreachable members are skipped.
async fn first_success<T, F, Fut>(
    endpoints: &[String],
    creds: &Credentials,
    mut request: F,
) -> Result<T, EtcdError>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let mut reasons = Vec::new();
    for endpoint in endpoints {
        let client = match connect(endpoint, creds).await {
            Ok(client) => client,
            Err(reason) => {
                reasons.push((endpoint.clone(), EtcdError::unreachable(reason)));
                continue;
            }
        };
        match tokio::time::timeout(super::client::CALL_DEADLINE, request(client)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => {
                let e = EtcdError::of(&e);
                if e.is_refusal() {
                    return Err(e.context(endpoint));
                }
                reasons.push((endpoint.clone(), e));
            }
            Err(_) => reasons.push((
                endpoint.clone(),
                NoAnswer(super::client::CALL_DEADLINE).into(),
            )),
        }
    }
    Err(summarise(reasons))
}

/// One reason per endpoint, or one for all when they all say the same; of their common
/// kind, else unreachable.
fn summarise(reasons: Vec<(String, EtcdError)>) -> EtcdError {
    let line = match reasons.as_slice() {
        [(_, first), rest @ ..]
            if !rest.is_empty() && rest.iter().all(|(_, r)| r.to_string() == first.to_string()) =>
        {
            format!("{first} (all {} members)", reasons.len())
        }
        _ => reasons
            .iter()
            .map(|(endpoint, reason)| format!("{endpoint}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    match reasons.first() {
        Some((_, first)) if reasons.iter().all(|(_, r)| r.kind() == first.kind()) => {
            first.clone().said(line)
        }
        _ => EtcdError::unreachable(line),
    }
}

/// How long a membership change is retried while etcd refuses it as "unhealthy cluster":
/// etcd (with its default strict reconfiguration check) wants every voter connected for
/// its health interval, 5 s, which a cluster just started, restarted or changed is not.
pub const SETTLE: Duration = Duration::from_secs(20);

async fn settled<T, F, Fut>(mut change: F) -> Result<T, EtcdError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EtcdError>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        match change().await {
            Err(reason) if reason.kind() == Kind::UnhealthyCluster && Instant::now() < deadline => {
                tracing::info!("the cluster is settling ({reason}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// MemberAddAsLearner; returns the new member's ID and the member list after the add.
pub async fn add_learner(
    endpoints: &[String],
    creds: &Credentials,
    peer_url: &str,
) -> Result<(u64, Vec<ClusterMember>), EtcdError> {
    let response = settled(|| {
        first_success(endpoints, creds, |mut client| async move {
            client
                .member_add(
                    [peer_url.to_string()],
                    Some(MemberAddOptions::new().with_is_learner()),
                )
                .await
        })
    })
    .await?;
    let id = response
        .member()
        .map(|m| m.id())
        .ok_or_else(|| EtcdError::unreachable("etcd answered the add without the new member"))?;
    Ok((id, response.member_list().iter().map(member_of).collect()))
}

/// MemberPromote.
pub async fn promote(endpoints: &[String], creds: &Credentials, id: u64) -> Result<(), EtcdError> {
    first_success(endpoints, creds, |mut client| async move {
        client.member_promote(id).await
    })
    .await
    .map(|_| ())
}

/// MemberRemove.
/// Changes member `id`'s peer URLs (a member that moved): a membership change, so it
/// needs a quorum, like the others.
pub async fn update_peer_urls(
    endpoints: &[String],
    creds: &Credentials,
    id: u64,
    peer_urls: Vec<String>,
) -> Result<(), EtcdError> {
    settled(|| {
        let peer_urls = peer_urls.clone();
        first_success(endpoints, creds, move |mut client| {
            let peer_urls = peer_urls.clone();
            async move { client.member_update(id, peer_urls).await }
        })
    })
    .await
    .map(|_| ())
}

pub async fn remove(endpoints: &[String], creds: &Credentials, id: u64) -> Result<(), EtcdError> {
    settled(|| {
        first_success(endpoints, creds, |mut client| async move {
            client.member_remove(id).await
        })
    })
    .await
    .map(|_| ())
}
