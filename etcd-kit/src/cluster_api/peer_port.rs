//! What a member's peer port says: `GET /members` with this node's peer certificate, the
//! question etcd's own peers ask. A running etcd answers it from its own store, with or
//! without a quorum; a launch waiting for the zone's first start answers it with what it
//! waits for (the app's `first_start::beacon`, which sends [`response`]). Anything else is silence, with its reason.
//! An etcd whose store lists no started member is asked its versions too: one that never
//! had a quorum is a member of a first start started without the launcher (a systemd
//! `EnvironmentFile` from `launch --dry-run --format env`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::client::Credentials;
use super::health::https_get;
use zone_model::cluster::{ClusterMember, ClusterView};

/// The header that marks a waiting launch's answer.
pub const HEADER: &str = "X-Zone-Etcd-First-Start";

/// What one other member's peer port answered.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Nothing usable: refused, timed out, not TLS, another service. The reason.
    Silent(String),
    /// A zone-etcd launch waiting for the zone's first start.
    Waiting(Waiting),
    /// An etcd member, with the member list from its own store.
    Etcd(ClusterView),
    /// An etcd (3.5 or newer) that has never had a quorum and whose store lists no started
    /// member: started fresh, holding no data. One of this zone's static bootstrap (its
    /// cluster ID) takes part in the first start as a member that went ahead: etcd run
    /// directly from `launch --dry-run --format env`, or a launch that went ahead.
    Bootstrapping(ClusterView),
}

/// What a waiting launch says of itself (the beacon's JSON answer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub node: String,
    /// Its `--initial-cluster-token`: the same zone, members and CA give the same one.
    pub token: String,
    /// The members it has seen waiting with its token.
    pub seen: BTreeSet<String>,
    /// The members that said they saw it.
    #[serde(default)]
    pub acked: BTreeSet<String>,
}

/// The whole HTTP/1.1 answer of a waiting launch.
pub fn response(waiting: &Waiting) -> Vec<u8> {
    let body = serde_json::to_string(waiting).unwrap_or_else(|_| "{}".into());
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n{HEADER}: waiting\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The most of an answer that is read: a member list of a few hundred members.
const ANSWER_BYTES: usize = 1 << 20;

/// Asks every `(name, peer URL)` at once; each connection and read gives up after
/// `timeout` (an etcd that just started holds the TLS handshake until it serves its
/// peers).
pub fn ask_peers(
    peers: &[(String, String)],
    creds: &Credentials,
    timeout: Duration,
) -> Vec<(String, Answer)> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = peers
            .iter()
            .map(|(name, url)| (name, scope.spawn(move || ask_peer(url, creds, timeout))))
            .collect();
        asks.into_iter()
            .map(|(name, ask)| {
                let answer = ask
                    .join()
                    .unwrap_or_else(|_| Answer::Silent("the question failed".into()));
                (name.clone(), answer)
            })
            .collect()
    })
}

/// Asks the peer port at `peer_url` who is there.
pub fn ask_peer(peer_url: &str, creds: &Credentials, timeout: Duration) -> Answer {
    match https_get(peer_url, creds, "/members", ANSWER_BYTES, timeout) {
        Ok(response) => match read_answer(peer_url, &response) {
            // Nobody ever started in that member's store: is it a fresh bootstrap?
            Answer::Etcd(view) if view.members.iter().all(|m| !m.published()) => {
                if bootstrapping(peer_url, creds, timeout) {
                    Answer::Bootstrapping(view)
                } else {
                    Answer::Etcd(view)
                }
            }
            answer => answer,
        },
        Err(reason) => Answer::Silent(
            // "Connection refused (os error 111)": the reason, not the number.
            reason
                .split(" (os error")
                .next()
                .unwrap_or(&reason)
                .to_lowercase(),
        ),
    }
}

/// Whether the etcd at `peer_url` has not decided a cluster version yet, and is 3.5 or
/// newer: etcd 3.5 keeps the cluster version in its database and reads it back before it
/// serves anything, so a member restarting over data of a cluster that ever had a quorum
/// says it at once; only a member that started fresh and never had a quorum says
/// `not_decided`. (3.4 keeps it only in the log it replays: its word proves nothing.)
fn bootstrapping(peer_url: &str, creds: &Credentials, timeout: Duration) -> bool {
    let Ok(response) = https_get(peer_url, creds, "/version", 4096, timeout) else {
        return false;
    };
    let text = String::from_utf8_lossy(&response);
    let Some((_, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let Ok(versions) = serde_json::from_str::<super::health::Versions>(body.trim()) else {
        return false;
    };
    versions.cluster == "not_decided"
        && crate::etcd::Version::parse(&versions.server)
            .is_some_and(|v| v >= crate::etcd::Version::new(3, 5, 0))
}

/// etcd's member list as its peer port serves it.
#[derive(serde::Deserialize)]
struct Listed {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    learner: bool,
}

/// An HTTP/1.1 response to `GET /members`: an etcd's list (200, JSON array, the cluster ID
/// in `X-Etcd-Cluster-Id`), a waiting launch (its header and JSON), or silence.
fn read_answer(peer_url: &str, response: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Answer::Silent("no complete HTTP answer".into());
    };
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header(HEADER).is_some() {
        return match serde_json::from_str::<Waiting>(body.trim()) {
            Ok(waiting) => Answer::Waiting(waiting),
            Err(e) => Answer::Silent(format!("a waiting launch's answer did not read: {e}")),
        };
    }
    if status.split_whitespace().nth(1) != Some("200") {
        return Answer::Silent(format!("/members answered {status}"));
    }
    let cluster_id = header("X-Etcd-Cluster-Id")
        .and_then(|id| u64::from_str_radix(&id, 16).ok())
        .unwrap_or(0);
    match serde_json::from_str::<Vec<Listed>>(body.trim()) {
        Ok(listed) => Answer::Etcd(ClusterView {
            cluster_id,
            members: listed
                .into_iter()
                .map(|m| ClusterMember {
                    id: m.id,
                    name: m.name,
                    peer_urls: m.peer_urls,
                    client_urls: m.client_urls,
                    learner: m.learner,
                })
                .collect(),
            answered_by: peer_url.to_string(),
        }),
        Err(e) => Answer::Silent(format!("/members: unexpected answer ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etcd_member_list_reads() {
        // As etcd 3.5.30's peer port answered it, node3 never started.
        let body = r#"[{"id":1739553078903460296,"peerURLs":["https://127.0.77.2:2380"],"name":"node2.exp.zone","clientURLs":["https://127.0.77.2:2379"]},{"id":12598240920932805869,"peerURLs":["https://127.0.77.3:2380"],"name":"node3.exp.zone"}]"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Etcd-Cluster-Id: e7c0e5fe9c71ba11\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let Answer::Etcd(view) = read_answer("https://127.0.77.2:2380", response.as_bytes()) else {
            panic!("not read as etcd");
        };
        assert_eq!(view.cluster_id, 0xe7c0e5fe9c71ba11);
        let node3 = view.by_peer_url("https://127.0.77.3:2380").unwrap();
        assert!(node3.started() && !node3.published());
        assert!(view.by_name("node2.exp.zone").unwrap().published());
    }

    #[test]
    fn a_waiting_launch_and_silence_read() {
        let waiting = response(&Waiting {
            node: "node2".into(),
            token: "t".into(),
            seen: ["node1".to_string()].into(),
            acked: Default::default(),
        });
        let Answer::Waiting(w) = read_answer("u", &waiting) else {
            panic!("not read as waiting");
        };
        assert_eq!(w.node, "node2");
        assert!(w.seen.contains("node1"));
        for junk in [
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n{\"not\":\"a list\"}",
            b"SSH-2.0-OpenSSH",
            b"",
        ] {
            assert!(matches!(read_answer("u", junk), Answer::Silent(_)));
        }
    }
}
