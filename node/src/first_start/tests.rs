use super::*;
use zone_model::cluster::ClusterMember;

const TOKEN: &str = "zone-token";
const CLUSTER: u64 = 7;

fn url(n: u8) -> String {
    format!("https://127.0.0.{n}:2380")
}

fn node(n: u8) -> String {
    format!("node{n}")
}

/// node1's rendezvous in a zone of node1-node3.
fn node1(ran_before: bool) -> Rendezvous {
    Rendezvous::new(
        "node1",
        &url(1),
        (TOKEN, CLUSTER),
        [node(2), node(3)],
        ran_before,
    )
}

fn waiting(n: u8, seen: &[u8]) -> (String, Answer) {
    waiting_acked(n, seen, &[])
}

fn waiting_acked(n: u8, seen: &[u8], acked: &[u8]) -> (String, Answer) {
    (
        node(n),
        Answer::Waiting(Waiting {
            node: node(n),
            token: TOKEN.into(),
            seen: seen.iter().map(|&s| node(s)).collect(),
            acked: acked.iter().map(|&s| node(s)).collect(),
        }),
    )
}

fn silent(n: u8) -> (String, Answer) {
    (node(n), Answer::Silent("connection refused".into()))
}

/// An etcd at node `n` whose list has members 1-3; `published` ones have client URLs,
/// `unnamed` ones were added by join.
fn etcd(n: u8, published: &[u8], unnamed: &[u8]) -> (String, Answer) {
    etcd_of(CLUSTER, n, published, unnamed)
}

fn etcd_of(cluster_id: u64, n: u8, published: &[u8], unnamed: &[u8]) -> (String, Answer) {
    let members = (1..=3)
        .map(|i| ClusterMember {
            id: u64::from(i),
            name: if unnamed.contains(&i) {
                String::new()
            } else {
                node(i)
            },
            peer_urls: vec![url(i)],
            client_urls: if published.contains(&i) {
                vec![format!("https://127.0.0.{i}:2379")]
            } else {
                vec![]
            },
            learner: false,
        })
        .collect();
    (
        node(n),
        Answer::Etcd(ClusterView {
            cluster_id,
            members,
            answered_by: url(n),
        }),
    )
}

/// The member list a serving member answers on its client API.
fn serving(answer: (String, Answer)) -> ClusterView {
    match answer.1 {
        Answer::Etcd(view) => view,
        other => panic!("{other:?}"),
    }
}

fn pending(step: &Step) -> Vec<String> {
    match step {
        Step::Wait(p) => p.iter().map(|(n, _)| n.clone()).collect(),
        other => panic!("expected to wait, got {other:?}"),
    }
}

#[test]
fn a_first_start_needs_every_member_waiting_and_seeing_this_one() {
    let mut r = node1(false);
    // Nobody yet.
    assert_eq!(
        pending(&r.decide(&[silent(2), silent(3)], None)),
        ["node2", "node3"]
    );
    // node2 waits but has not seen node1; node3 is silent.
    assert_eq!(
        pending(&r.decide(&[waiting(2, &[]), silent(3)], None)),
        ["node2", "node3"]
    );
    assert!(r.waiting().seen.contains("node2"));
    // node2 saw node1; node3 waits and saw nobody.
    assert_eq!(
        pending(&r.decide(&[waiting(2, &[1]), waiting(3, &[2])], None)),
        ["node3"]
    );
    // node2 went ahead (silent while its etcd starts): what it said stands.
    assert_eq!(
        r.decide(&[silent(2), waiting(3, &[1, 2])], None),
        Step::Start(Why::FirstStart)
    );
}

#[test]
fn a_majority_of_empty_members_never_starts_without_the_others() {
    // The zone: node1 holds the data and is down; node2 and node3 are empty.
    let mut node2 = Rendezvous::new(
        "node2",
        &url(2),
        (TOKEN, CLUSTER),
        [node(1), node(3)],
        false,
    );
    for _ in 0..100 {
        let step = node2.decide(&[silent(1), waiting(3, &[1, 2])], None);
        assert_eq!(pending(&step), ["node1"]);
    }
}

#[test]
fn a_member_holding_data_decides_from_its_member_list() {
    let mut r = node1(false);
    // node2 runs etcd from its data and lists node1 as started: node1 lost its data.
    assert_eq!(
        r.decide(&[etcd(2, &[1, 2, 3], &[]), waiting(3, &[1])], None),
        Step::Refuse(Refusal::LostData {
            answered_by: node(2),
            id: 1
        })
    );
    // A serving member lists node1 as a member of the bootstrap that never started.
    let two_and_three = serving(etcd(2, &[2, 3], &[]));
    assert_eq!(
        node1(false).decide(&[etcd(2, &[2, 3], &[]), silent(3)], Some(&two_and_three)),
        Step::Start(Why::LateMember {
            answered_by: url(2)
        })
    );
    // Added by join, not started: join starts it.
    let joined = serving(etcd(2, &[2, 3], &[1]));
    assert_eq!(
        node1(false).decide(&[etcd(2, &[2, 3], &[1]), silent(3)], Some(&joined)),
        Step::Refuse(Refusal::JoinPending {
            answered_by: url(2),
            id: 1
        })
    );
    // Not started in a cluster the static bootstrap does not make (restored since).
    let restored = serving(etcd_of(9, 2, &[2, 3], &[]));
    assert_eq!(
        node1(false).decide(&[silent(2), silent(3)], Some(&restored)),
        Step::Refuse(Refusal::OtherCluster {
            answered_by: url(2),
            running: 9
        })
    );
    // Started there: lost, whatever the cluster.
    assert!(matches!(
        node1(false).decide(&[etcd_of(9, 2, &[1, 2, 3], &[]), silent(3)], None),
        Step::Refuse(Refusal::LostData { .. })
    ));
    // One etcd that lists it as started outweighs one that does not.
    assert!(matches!(
        node1(false).decide(&[etcd(2, &[2, 3], &[]), etcd(3, &[1, 2, 3], &[])], None),
        Step::Refuse(Refusal::LostData { .. })
    ));
}

#[test]
fn a_cluster_without_this_peer_url_sends_it_to_join() {
    let mut r = Rendezvous::new(
        "node4",
        &url(4),
        (TOKEN, CLUSTER),
        [node(1), node(2)],
        false,
    );
    let three = serving(etcd(1, &[1, 2, 3], &[]));
    assert_eq!(
        r.decide(&[etcd(1, &[1, 2, 3], &[]), silent(2)], Some(&three)),
        Step::Refuse(Refusal::NotAMember {
            answered_by: url(1)
        })
    );
}

#[test]
fn only_a_start_is_sure_from_an_etcd_that_does_not_serve() {
    // node2 restarts from its data and has not replayed node1's start yet: it lists node1
    // without client URLs, and serves no client. Not a late member: node1 waits.
    let mut r = node1(false);
    let step = r.decide(&[etcd(2, &[2, 3], &[]), silent(3)], None);
    assert_eq!(pending(&step), ["node2", "node3"]);
    let Step::Wait(p) = step else { unreachable!() };
    assert!(p[0].1.contains("does not serve clients yet"), "{p:?}");
    // Once replayed, it lists node1 as started: lost.
    assert!(matches!(
        r.decide(&[etcd(2, &[1, 2, 3], &[]), silent(3)], None),
        Step::Refuse(Refusal::LostData { .. })
    ));
    // A member that went ahead in this first start (seen waiting, it saw node1) and does
    // not serve yet: the rendezvous decides.
    let mut r = node1(false);
    r.decide(&[waiting(2, &[1, 3]), waiting(3, &[1, 2])], None);
    assert_eq!(
        r.decide(&[etcd(2, &[2], &[]), waiting(3, &[1, 2])], None),
        Step::Start(Why::FirstStart)
    );
}

#[test]
fn a_member_that_ran_before_never_waits_for_a_first_start() {
    let mut r = node1(true);
    assert_eq!(
        r.decide(&[silent(2), waiting(3, &[1, 2])], None),
        Step::Refuse(Refusal::RanBefore {
            waiting: vec![node(3)],
            silent: vec![node(2)],
        })
    );
    // Even when every other member waits: the zone's data is gone everywhere, and that
    // takes a restore, not a silent empty start.
    assert!(matches!(
        node1(true).decide(&[waiting(2, &[1, 3]), waiting(3, &[1, 2])], None),
        Step::Refuse(Refusal::RanBefore { .. })
    ));
    // But a running etcd that lists it as never started lets it start (its earlier etcd
    // stopped before it wrote any data).
    let two_and_three = serving(etcd(2, &[2, 3], &[]));
    assert_eq!(
        node1(true).decide(&[etcd(2, &[2, 3], &[]), silent(3)], Some(&two_and_three)),
        Step::Start(Why::LateMember {
            answered_by: url(2)
        })
    );
}

#[test]
fn another_token_or_an_impostor_is_not_seen() {
    let mut r = node1(false);
    let other_zone = (
        node(2),
        Answer::Waiting(Waiting {
            node: node(2),
            token: "another".into(),
            seen: [node(1)].into(),
            acked: [node(1)].into(),
        }),
    );
    let impostor = (
        node(3),
        Answer::Waiting(Waiting {
            node: node(2),
            token: TOKEN.into(),
            seen: [node(1)].into(),
            acked: [node(1)].into(),
        }),
    );
    let step = r.decide(&[other_zone, impostor], None);
    let Step::Wait(p) = step else {
        panic!("{step:?}")
    };
    assert!(p[0].1.contains("another cluster token"), "{p:?}");
    assert!(p[1].1.contains("answers as node2"), "{p:?}");
    assert!(r.waiting().seen.is_empty());
}

#[test]
fn a_zone_of_one_starts_at_once() {
    let mut r = Rendezvous::new(
        "node1",
        &url(1),
        (TOKEN, CLUSTER),
        Vec::<String>::new(),
        false,
    );
    assert_eq!(r.decide(&[], None), Step::Start(Why::FirstStart));
}

#[test]
fn a_started_member_answers_until_every_waiting_one_read_it() {
    let mut r = node1(false);
    assert_eq!(
        r.decide(&[waiting(2, &[1, 3]), waiting(3, &[1, 2])], None),
        Step::Start(Why::FirstStart)
    );
    // What it tells: it saw both, and both saw it.
    assert_eq!(r.waiting().acked, [node(2), node(3)].into());
    // node2 read that; node3 not yet.
    assert!(!r.may_leave(&[waiting_acked(2, &[1, 3], &[1]), waiting(3, &[1, 2])]));
    // node3 went ahead (its etcd answers, or it is silent for a moment): nothing to wait for.
    assert!(r.may_leave(&[silent(2), etcd(3, &[3], &[])]));
    let mut r = node1(false);
    r.decide(&[waiting(2, &[1, 3]), waiting(3, &[1, 2])], None);
    assert!(r.may_leave(&[
        waiting_acked(2, &[1, 3], &[1]),
        waiting_acked(3, &[1, 2], &[1])
    ]));
}

#[test]
fn an_etcd_started_directly_for_the_first_start_counts_as_present() {
    // node3 runs etcd from `launch --dry-run --format env`: fresh, no quorum yet.
    let fresh = |cluster_id| match etcd_of(cluster_id, 3, &[], &[]) {
        (name, Answer::Etcd(view)) => (name, Answer::Bootstrapping(view)),
        _ => unreachable!(),
    };
    let mut r = node1(false);
    // Counted once it has said so for BOOTSTRAPPING_ROUNDS rounds in a row.
    for _ in 1..BOOTSTRAPPING_ROUNDS {
        assert_eq!(
            pending(&r.decide(&[waiting(2, &[3]), fresh(CLUSTER)], None)),
            ["node2", "node3"]
        );
    }
    assert_eq!(
        pending(&r.decide(&[waiting(2, &[3]), fresh(CLUSTER)], None)),
        ["node2"]
    );
    assert_eq!(
        r.decide(&[waiting(2, &[1, 3]), fresh(CLUSTER)], None),
        Step::Start(Why::FirstStart)
    );
    // Another cluster's fresh etcd is no member of this first start.
    let mut r = node1(false);
    let step = r.decide(&[waiting(2, &[1, 3]), fresh(9)], None);
    let Step::Wait(p) = step else {
        panic!("{step:?}")
    };
    assert!(p
        .iter()
        .any(|(n, why)| n == "node3" && why.contains("new etcd cluster 9")));
}

#[test]
fn a_member_restarting_over_its_data_never_counts_as_a_fresh_bootstrap() {
    // node3 restarts over the zone's data while node1 and node2 wait empty: before its
    // first apply its peer port lists nobody (or only the members replayed so far) and
    // names no cluster version, as a fresh etcd would (seen in CI: node2 started).
    let restarting = |listed: &[u8]| {
        let (name, answer) = etcd(3, &[], &[]);
        let Answer::Etcd(mut view) = answer else {
            unreachable!()
        };
        view.members.retain(|m| listed.contains(&(m.id as u8)));
        (name, Answer::Bootstrapping(view))
    };
    let mut r = node1(false);
    for round in 0..3 * BOOTSTRAPPING_ROUNDS {
        let listed: &[u8] = match round % 3 {
            0 => &[],
            1 => &[1],
            _ => &[1, 2],
        };
        let step = r.decide(&[waiting(2, &[1, 3]), restarting(listed)], None);
        assert_eq!(pending(&step), ["node3"], "round {round}");
    }
    // Once it replayed, it names node1 as started: node1 lost its data.
    assert!(matches!(
        r.decide(&[waiting(2, &[1, 3]), etcd(3, &[1, 2, 3], &[])], None),
        Step::Refuse(Refusal::LostData { .. })
    ));
    // A fresh answer that stops for one round starts counting again.
    let fresh = || match etcd(3, &[], &[]) {
        (name, Answer::Etcd(view)) => (name, Answer::Bootstrapping(view)),
        _ => unreachable!(),
    };
    let mut r = node1(false);
    for _ in 1..BOOTSTRAPPING_ROUNDS {
        r.decide(&[waiting(2, &[1, 3]), fresh()], None);
    }
    r.decide(&[waiting(2, &[1, 3]), restarting(&[])], None);
    assert_eq!(
        pending(&r.decide(&[waiting(2, &[1, 3]), fresh()], None)),
        ["node3"]
    );
}
