use super::*;

const MIB: i64 = 1 << 20;
const QUOTA: i64 = 2048 * MIB;

fn size(file: i64, in_use: i64) -> DbSize {
    DbSize { file, in_use }
}

#[test]
fn defragments_only_when_much_is_free() {
    // A fresh member: 20 KiB, nothing to gain.
    assert!(!needs_defrag(size(20 * 1024, 16 * 1024), QUOTA, false));
    // Half the file free: yes; a third free: no.
    assert!(needs_defrag(size(10 * MIB, 5 * MIB), QUOTA, false));
    assert!(!needs_defrag(size(30 * MIB, 20 * MIB), QUOTA, false));
    // Near the quota: any megabyte counts, and less does not without NOSPACE.
    assert!(needs_defrag(size(1700 * MIB, 1600 * MIB), QUOTA, false));
    assert!(!needs_defrag(
        size(1700 * MIB, 1700 * MIB - 1024),
        QUOTA,
        false
    ));
    // NOSPACE: yes as soon as a megabyte is free.
    assert!(needs_defrag(size(8 * MIB, 6 * MIB), 16 * MIB, true));
    assert!(!needs_defrag(size(8 * MIB, 8 * MIB - 1024), 16 * MIB, true));
}

#[test]
fn under_nospace_every_member_near_its_quota_is_defragmented() {
    // The figures may not show the compaction yet (in use as high as the file): a member
    // at or near its quota is defragmented all the same.
    assert!(needs_defrag(size(16 * MIB, 16 * MIB), 16 * MIB, true));
    assert!(needs_defrag(size(13 * MIB, 13 * MIB), 16 * MIB, true));
    assert!(!needs_defrag(size(12 * MIB, 12 * MIB), 16 * MIB, true));
    // Sizes near i64::MAX do not overflow.
    assert!(needs_defrag(size(i64::MAX, i64::MAX), i64::MAX, true));
}

#[test]
fn a_member_is_judged_after_its_compaction() {
    let q = 16 * MIB;
    let full = Some(size(15 * MIB, 2 * MIB));
    assert_eq!(step(full, &Compaction::Applied, q, true), Step::Defragment);
    assert_eq!(
        step(full, &Compaction::NotAsked, q, false),
        Step::Defragment
    );
    let Step::Fail(reason) = step(
        full,
        &Compaction::NotConfirmed("no answer within 60s".into()),
        q,
        true,
    ) else {
        panic!("a member whose compaction is not confirmed is not judged");
    };
    assert!(reason.contains("no answer within 60s"), "{reason}");
    assert_eq!(
        step(None, &Compaction::Applied, q, true),
        Step::Fail("not answering".into())
    );
    assert_eq!(
        step(Some(size(MIB, MIB)), &Compaction::NotAsked, q, false),
        Step::Skip("little to gain")
    );
}

#[test]
fn a_voter_down_refuses_a_learner_down_does_not() {
    let member = |name: &str, voter, up: bool| MemberState {
        name: name.into(),
        voter,
        size: up.then_some(size(MIB, MIB)),
    };
    assert_eq!(
        refusal(&[member("a", true, true), member("b", true, true)]),
        None
    );
    assert_eq!(
        refusal(&[member("a", true, true), member("b", true, false)]),
        Some(vec!["b".to_string()])
    );
    assert_eq!(
        refusal(&[member("a", true, true), member("l", false, false)]),
        None
    );
}

fn after(name: &str, size: Option<DbSize>, failure: Option<&str>) -> After {
    After {
        name: name.into(),
        size,
        failure: failure.map(str::to_string),
    }
}

#[test]
fn disarms_only_when_every_member_has_room_again() {
    let q = 16 * MIB;
    assert!(blockers(
        &[
            after("a", Some(size(4 * MIB, MIB)), None),
            after("b", Some(size(14 * MIB, MIB)), None)
        ],
        q
    )
    .is_empty());
    // 90% of the quota is still full.
    assert_eq!(
        blockers(&[after("a", Some(size(15 * MIB, MIB)), None)], q),
        vec![Blocker::FreePages {
            member: "a".into(),
            free: 14 * MIB
        }]
    );
    // A member that did not answer keeps the alarm armed.
    assert_eq!(
        blockers(&[after("b", None, None)], q),
        vec![Blocker::NotHandled {
            member: "b".into(),
            reason: "not answering".into()
        }]
    );
}

#[test]
fn a_member_still_full_is_named_with_the_real_cause() {
    let q = 16 * MIB;
    let found = blockers(
        &[
            after("live", Some(size(16 * MIB, 15 * MIB)), None),
            after("fine", Some(size(2 * MIB, 2 * MIB)), None),
            after(
                "stuck",
                Some(size(16 * MIB, 3 * MIB)),
                Some("defragment: no answer within 120s"),
            ),
            after("gone", None, Some("not answering")),
        ],
        q,
    );
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "live: its live data (15.0 MiB) fills 93% of quota_backend_bytes (16.0 MiB)",
            "stuck: defragment: no answer within 120s",
            "gone: not answering",
        ]
    );
    let fix = advice(&found);
    assert!(
        fix.starts_with("the data itself is too big: raise quota_backend_bytes"),
        "{fix}"
    );
    assert!(fix.contains("bring stuck, gone back"), "{fix}");
    // Only a member that could not be reached: no word of the quota.
    let fix = advice(&blockers(&[after("gone", None, None)], q));
    assert!(!fix.contains("quota"), "{fix}");
    assert!(fix.starts_with("bring gone back"), "{fix}");
}

#[test]
fn sizes_read_like_etcdctl() {
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(20480), "20.0 KiB");
    assert_eq!(human_size(3 * 1024 * 1024 + 1024 * 512), "3.5 MiB");
}
