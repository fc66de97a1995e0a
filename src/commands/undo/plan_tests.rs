use super::*;

/// A history at revision 100 through 200 from (key, value at 100 and its mod revision)
/// and (key, changes).
fn history(old: &[(&str, &str, i64)], changes: &[(&str, &[i64])]) -> PrefixHistory {
    PrefixHistory {
        revision: 100,
        keys: old
            .iter()
            .map(|(k, v, r)| {
                (
                    k.as_bytes().to_vec(),
                    OldKey {
                        value: v.as_bytes().to_vec(),
                        mod_revision: *r,
                    },
                )
            })
            .collect(),
        changes: changes
            .iter()
            .map(|(k, revs)| (k.as_bytes().to_vec(), revs.to_vec()))
            .collect(),
        through: 200,
    }
}

fn now(keys: &[(&str, &str, i64)]) -> BTreeMap<Vec<u8>, NowKey> {
    keys.iter()
        .map(|(k, v, r)| {
            (
                k.as_bytes().to_vec(),
                NowKey {
                    value: v.as_bytes().to_vec(),
                    mod_revision: *r,
                },
            )
        })
        .collect()
}

fn action(key: &str, kind: Kind, value: &str, seen: i64, changes: &[i64]) -> Action {
    Action {
        key: key.as_bytes().to_vec(),
        kind,
        value: value.as_bytes().to_vec(),
        seen,
        changes: changes.len(),
        last: changes.last().copied().unwrap_or(0),
    }
}

#[test]
fn a_key_changed_once_is_taken_back_and_an_unchanged_one_is_not_written() {
    let h = history(
        &[
            ("app/a", "1", 10),
            ("app/b", "2", 20),
            ("app/same", "s", 30),
        ],
        &[("app/a", &[150]), ("app/b", &[151]), ("app/c", &[152])],
    );
    let n = now(&[
        ("app/b", "bad", 151),
        ("app/c", "new", 152),
        ("app/same", "s", 30),
    ]);
    let p = plan(b"app/", &h, &n, false).unwrap();
    assert_eq!(
        p.actions,
        vec![
            action("app/a", Kind::Recreate, "1", 0, &[150]),
            action("app/b", Kind::SetBack, "2", 151, &[151]),
            action("app/c", Kind::Delete, "", 152, &[152]),
        ]
    );
    assert!(p.left_alone.is_empty());
    assert_eq!((p.point, p.now), (100, 200));
    assert_eq!(
        (
            p.count(Kind::Recreate),
            p.count(Kind::SetBack),
            p.count(Kind::Delete)
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_key_changed_again_after_the_damage_is_left_alone_unless_forced() {
    let h = history(
        &[("app/a", "1", 10), ("app/b", "2", 20)],
        &[
            ("app/a", &[150, 170, 190]),
            ("app/b", &[151, 160]),
            ("app/c", &[152, 180]),
        ],
    );
    let n = now(&[("app/a", "writer", 190), ("app/c", "writer", 180)]);
    let p = plan(b"app/", &h, &n, false).unwrap();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.left_alone,
        vec![
            LeftAlone {
                key: b"app/a".to_vec(),
                changes: 3,
                last: 190
            },
            LeftAlone {
                key: b"app/b".to_vec(),
                changes: 2,
                last: 160
            },
            LeftAlone {
                key: b"app/c".to_vec(),
                changes: 2,
                last: 180
            },
        ]
    );

    let forced = plan(b"app/", &h, &n, true).unwrap();
    assert!(forced.left_alone.is_empty());
    assert_eq!(
        forced.actions,
        vec![
            action("app/a", Kind::SetBack, "1", 190, &[150, 170, 190]),
            action("app/b", Kind::Recreate, "2", 0, &[151, 160]),
            action("app/c", Kind::Delete, "", 180, &[152, 180]),
        ]
    );
}

#[test]
fn a_key_as_it_was_at_the_point_is_never_written_even_if_it_changed_in_between() {
    // app/a: deleted then put back with its old value; app/b: created then deleted;
    // app/c: overwritten with the same value.
    let h = history(
        &[("app/a", "1", 10), ("app/c", "3", 30)],
        &[
            ("app/a", &[150, 160]),
            ("app/b", &[151, 161]),
            ("app/c", &[170]),
        ],
    );
    let n = now(&[("app/a", "1", 160), ("app/c", "3", 170)]);
    for force in [false, true] {
        let p = plan(b"app/", &h, &n, force).unwrap();
        assert_eq!(
            p,
            Plan {
                point: 100,
                now: 200,
                ..Plan::default()
            }
        );
    }
}

#[test]
#[should_panic(expected = "outside its prefix")]
fn a_write_outside_the_prefix_is_never_planned() {
    let h = history(&[("other/x", "1", 10)], &[("other/x", &[150])]);
    let _ = plan(b"app/", &h, &now(&[]), false);
}

#[test]
fn a_history_that_does_not_account_for_the_keys_now_is_refused() {
    // Changed after the point, but the history lists no change.
    let h = history(&[("app/a", "1", 10)], &[]);
    let e = plan(b"app/", &h, &now(&[("app/a", "2", 150)]), false).unwrap_err();
    assert!(e.contains("app/a") && e.contains("150"), "{e}");
    // Deleted since the point without a listed change.
    let e = plan(b"app/", &h, &now(&[]), false).unwrap_err();
    assert!(e.contains("deleted since revision 100"), "{e}");
    // Present now, unchanged since before the point, yet absent at the point.
    let e = plan(
        b"app/",
        &history(&[], &[]),
        &now(&[("app/a", "1", 10)]),
        false,
    )
    .unwrap_err();
    assert!(e.contains("app/a"), "{e}");
    // The last listed change is not the key's mod revision now.
    let h = history(&[("app/a", "1", 10)], &[("app/a", &[150])]);
    let e = plan(b"app/", &h, &now(&[("app/a", "2", 160)]), false).unwrap_err();
    assert!(e.contains("160"), "{e}");
    // A change outside the history's span, or out of order.
    let h = history(&[("app/a", "1", 10)], &[("app/a", &[250])]);
    assert!(plan(b"app/", &h, &now(&[]), false).is_err());
    let h = history(&[("app/a", "1", 10)], &[("app/a", &[170, 150])]);
    assert!(plan(b"app/", &h, &now(&[("app/a", "2", 150)]), false).is_err());
}

#[test]
fn keys_are_planned_in_key_order_whatever_their_bytes() {
    let mut h = history(&[], &[]);
    h.keys.insert(
        b"app/\xff".to_vec(),
        OldKey {
            value: vec![0],
            mod_revision: 5,
        },
    );
    h.changes.insert(b"app/\xff".to_vec(), vec![120]);
    h.changes.insert(b"app/\x00".to_vec(), vec![121]);
    let mut n = BTreeMap::new();
    n.insert(
        b"app/\x00".to_vec(),
        NowKey {
            value: vec![1],
            mod_revision: 121,
        },
    );
    let p = plan(b"app/", &h, &n, false).unwrap();
    let keys: Vec<&[u8]> = p.actions.iter().map(|a| a.key.as_slice()).collect();
    assert_eq!(keys, vec![&b"app/\x00"[..], &b"app/\xff"[..]]);
    assert_eq!(p.actions[1].value, vec![0]);
}
