use std::path::Path;
use std::time::Instant;

use super::*;
use crate::chain::{self, check_links, Kind, Link};
use crate::destination::{ObjectInfo, TargetError};
use crate::manifest;
use crate::runner::fill::tests::target_with;
use crate::test_zone::{fixture, OBJECT, ZONE};

/// A target that stores nothing and records what was put.
#[derive(Default)]
struct Recording {
    puts: Mutex<Vec<String>>,
}

impl Target for Recording {
    fn url(&self) -> &str {
        "test://recording"
    }
    fn put(&self, name: &str, _: &[u8]) -> Result<(), TargetError> {
        self.puts.lock().unwrap().push(name.to_string());
        Ok(())
    }
    fn put_file(&self, name: &str, _: &Path) -> Result<(), TargetError> {
        self.puts.lock().unwrap().push(name.to_string());
        Ok(())
    }
    fn get(&self, _: &str, _: u64) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(None)
    }
    fn get_to_file(&self, _: &str, _: &Path) -> Result<bool, TargetError> {
        Ok(false)
    }
    fn list(&self, _: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        Ok(Vec::new())
    }
    fn delete(&self, _: &str) -> Result<(), TargetError> {
        Ok(())
    }
}

/// A shipper of `local` to `target` for `zone` (checked against `roots`), as session
/// `session`, its lease not yet renewed.
fn shipper(
    target: Arc<dyn Target>,
    local: Arc<LocalChain>,
    (zone, roots): (&str, Vec<CertInfo>),
    session: &str,
) -> Shipper {
    Shipper {
        target,
        local,
        bell: Arc::new(Bell::default()),
        guard: Arc::new(LeaseGuard::default()),
        stop: Arc::new(AtomicBool::new(false)),
        zone: zone.into(),
        roots,
        session: session.into(),
        orders: Arc::new(Orders::default()),
        others: Vec::new(),
    }
}

/// A new writer's local chain in `state`: the manifests of `links` (the first adopted from
/// the targets, the rest its own) and the object of its last link ([`OBJECT`]).
fn new_writers_chain(state: &Path, links: &[crate::local::Stored]) -> Arc<LocalChain> {
    let local = Arc::new(LocalChain::open(state).unwrap());
    for stored in links {
        local
            .write(&local.object_path(&stored.name), &stored.bytes)
            .unwrap();
    }
    let last = links.last().unwrap();
    let object = body_unverified(&last.bytes).unwrap().object.unwrap();
    local.write(&local.object_path(&object), OBJECT).unwrap();
    local
}

/// A node whose local chain holds a link it never shipped (killed mid-upload), now
/// not the writer: it uploads nothing, not even the object (which no manifest would
/// ever name), however often it retries. Once it holds the lease, object then manifest.
#[test]
fn a_node_that_is_not_the_writer_uploads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalChain::open(dir.path()).unwrap());
    let object = chain::delta_name(1, "abc", 5, 6);
    local
        .write(&local.object_path(&object), b"encrypted segment")
        .unwrap();
    let link = Link {
        format: chain::FORMAT.into(),
        zone: "z".into(),
        cluster_id: "c".into(),
        seq: 1,
        session: "abc".into(),
        writer: "node1.z".into(),
        kind: Kind::Delta,
        first_revision: 5,
        last_revision: 6,
        first_time_ms: 1,
        last_time_ms: 2,
        object: Some(object.clone()),
        object_size: 17,
        object_sha256: String::new(),
        next_delta: 7,
        prev: None,
        signed_ms: 2,
    };
    let manifest = link.manifest_name();
    let envelope = serde_json::json!({ "body": serde_json::to_string(&link).unwrap() });
    local
        .write(
            &local.object_path(&manifest),
            envelope.to_string().as_bytes(),
        )
        .unwrap();
    let target = Arc::new(Recording::default());
    let shipper = shipper(target.clone(), local, ("z", Vec::new()), "ab12cd34");
    let mut links = Links::default();
    let mut present = None;
    for _ in 0..3 {
        assert!(shipper.ship_once(&mut present, &mut links).is_err());
    }
    assert!(
        target.puts.lock().unwrap().is_empty(),
        "uploaded without the lease: {:?}",
        target.puts.lock().unwrap()
    );
    shipper.guard.renewed(
        Instant::now(),
        Duration::from_secs(8),
        Duration::from_secs(2),
    );
    shipper.ship_once(&mut present, &mut links).unwrap();
    assert_eq!(
        *target.puts.lock().unwrap(),
        vec![
            object,
            head::NAME.to_string(),
            manifest,
            head::NAME.to_string()
        ]
    );
}

/// The first round of a term over a target holding a long chain reads its head, not a
/// listing: the head (five reads), then the new link's object, the head announcing the
/// new writer, its manifest and the head again. Retention's listing comes later, on a
/// thread, once.
#[test]
fn a_term_ships_from_the_head_without_listing_the_chain() {
    use crate::destination::counting::Counting;
    use crate::destination::file::DirTarget;

    let zone = fixture();
    let chain = zone.signed_chain_with(
        2001,
        |seq| if seq <= 2000 { "ab12cd34" } else { "ef56ab78" },
    );
    let dir = tempfile::tempdir().unwrap();
    let inner = DirTarget::new("file:///test-target", dir.path());
    for stored in &chain[..2000] {
        inner.put(&stored.name, &stored.bytes).unwrap();
    }
    inner
        .put(
            head::NAME,
            &head::record(Some(&chain[1999].bytes), "ab12cd34"),
        )
        .unwrap();
    let counted = Arc::new(Counting::new(Arc::new(inner)));
    // The new writer's local chain: the adopted last link (its manifest only) and its own.
    let state = tempfile::tempdir().unwrap();
    let local = new_writers_chain(state.path(), &chain[1999..]);
    let object = body_unverified(&chain[2000].bytes).unwrap().object.unwrap();
    let shipper = shipper(counted.clone(), local, (ZONE, zone.roots()), "ef56ab78");
    shipper.guard.renewed(
        Instant::now(),
        Duration::from_secs(8),
        Duration::from_secs(2),
    );
    let (mut known, mut links) = (None, Links::default());
    shipper.ship_once(&mut known, &mut links).unwrap();
    let counts = counted.take();
    assert_eq!(
        (counts.get, counts.list, counts.put),
        (5, 0, 4),
        "{counts:?}"
    );
    let head = counted.get(head::NAME, 1 << 16).unwrap().unwrap();
    assert_eq!(head, head::record(Some(&chain[2000].bytes), "ef56ab78"));
    assert!(counted.get(&object, 16).unwrap().is_some());
    counted.take();
    // Nothing new: nothing asked of the store.
    shipper.ship_once(&mut known, &mut links).unwrap();
    assert_eq!(counted.take().requests(), 0);
    // Retention asks for the listing: started on a thread, then whole.
    let known = known.as_mut().unwrap();
    let target: Arc<dyn Target> = counted.clone();
    assert!(known.for_retention(&target).unwrap().is_none());
    let deadline = Instant::now() + Duration::from_secs(30);
    let names = loop {
        if let Some(names) = known.for_retention(&target).unwrap() {
            break names.clone();
        }
        assert!(Instant::now() < deadline, "the listing never came in");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(names.len(), 2001);
    assert!(names.contains(&chain[2000].name));
    assert_eq!(counted.take().list, 1);
}

/// The scene of the red `pitr` run: the last writer shipped links 1..=9 to one target and
/// 1..=5 to the other, then lost its lease. The next writer adopts link 9 and writes 10.
/// The lagging target gets 6..=9 from the other (objects and manifests) before 10: its
/// chain is whole. Without the fill it held 1..=5, 9, 10 ("link 6 is missing").
#[test]
fn a_new_writer_catches_a_lagging_target_up_before_its_own_links() {
    let zone = fixture();
    let chain = zone.signed_chain_with(10, |seq| if seq <= 9 { "ab12cd34" } else { "ef56ab78" });
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ahead = target_with("file:///ahead", dirs[0].path(), &chain[..9]);
    let behind = target_with("file:///behind", dirs[1].path(), &chain[..5]);
    let state = tempfile::tempdir().unwrap();
    // The adopted link 9 (its manifest only), then the new writer's own 10.
    let local = new_writers_chain(state.path(), &chain[8..]);
    let mut shipper = shipper(behind.clone(), local, (ZONE, zone.roots()), "ef56ab78");
    shipper.others = vec![ahead.clone()];
    shipper.guard.renewed(
        Instant::now(),
        Duration::from_secs(8),
        Duration::from_secs(2),
    );
    let (mut known, mut links) = (None, Links::default());
    shipper.ship_once(&mut known, &mut links).unwrap();
    let listed = head::listed(&*behind).unwrap();
    let manifests: Vec<&str> = listed
        .names
        .iter()
        .map(|o| o.name.as_str())
        .filter(|n| manifest_seq(n).is_some())
        .collect();
    let expected: Vec<&str> = chain.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(manifests, expected);
    let roots = zone.roots();
    let verified: Vec<_> = chain
        .iter()
        .map(|s| {
            let bytes = behind.get(&s.name, MAX_MANIFEST_BYTES).unwrap().unwrap();
            manifest::verify(&manifest::stored(&s.name, bytes), ZONE, &roots).unwrap()
        })
        .collect();
    check_links(ZONE, &verified).unwrap();
    for v in &verified {
        let object = v.link.object.as_deref().unwrap();
        assert_eq!(
            behind.get(object, 16).unwrap().as_deref(),
            Some(OBJECT),
            "{object}"
        );
    }
    let head = behind.get(head::NAME, 1 << 16).unwrap().unwrap();
    assert_eq!(head, head::record(Some(&chain[9].bytes), "ef56ab78"));
}
