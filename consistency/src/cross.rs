//! Facts across keys and clients that the per-key search cannot see, over ok operations
//! in real time. "A before B" means A returned strictly before B was called.
//!
//! Invariants, each sound for linearizable requests (etcd's default reads, and every
//! write): the store's revision at a request's linearization point never decreases with
//! real time; a read's header revision is the store's revision when it is served (at
//! least the commit point when it was called); a write's revision is a new one, above
//! every revision that existed when it was called.
//! - Header revision: for ok A before B, B's header revision ≥ A's; and > A's when B is
//!   a write that made a revision (put, cas that succeeded, delete that deleted). This
//!   holds across clients, so in particular for one client's successive operations.
//! - Mod revision: for ok A before B on the same key, where both observed the key
//!   present (a get that found it: its mod revision; a put or a successful cas: its
//!   revision), B's ≥ A's. (A delete in between makes the key absent, and the next
//!   create is above both, so absent reads are not compared.)

use crate::anomaly::{Anomaly, Rule};
use crate::history::{History, Op, OpKind, Outcome};
use std::collections::BTreeMap;

/// Runs both rules.
pub fn check(h: &History) -> Vec<Anomaly> {
    let ok: Vec<&Op> = h.ops.iter().filter(|o| o.outcome == Outcome::Ok).collect();
    let mut out = Vec::new();
    let headers: Vec<(&Op, i64)> = ok.iter().map(|o| (*o, o.revision.unwrap_or(0))).collect();
    for (b, r, a, ar) in sweep(&headers, &headers, |r, ar| r < ar) {
        let why = format!(
            "its header revision is {r}, below revision {ar} of {}",
            before(a)
        );
        out.push(anomaly(Rule::HeaderRevision, b, why));
    }
    let writes: Vec<(&Op, i64)> = headers
        .iter()
        .filter(|(o, _)| o.is_effective_ok_write())
        .copied()
        .collect();
    for (b, r, a, ar) in sweep(&headers, &writes, |r, ar| r <= ar) {
        let why = format!(
            "its write got revision {r}, not above revision {ar} of {}",
            before(a)
        );
        out.push(anomaly(Rule::HeaderRevision, b, why));
    }
    let mut by_key: BTreeMap<&str, Vec<(&Op, i64)>> = BTreeMap::new();
    for o in &ok {
        let seen = match o.op {
            OpKind::Get => o.result_mod_revision.filter(|&m| m > 0),
            OpKind::Put => o.revision,
            OpKind::Cas if o.succeeded == Some(true) => o.revision,
            _ => None,
        };
        if let Some(m) = seen {
            by_key.entry(&o.key).or_default().push((o, m));
        }
    }
    for (key, list) in by_key {
        for (b, m, a, am) in sweep(&list, &list, |m, am| m < am) {
            let why = format!(
                "it saw key {key:?} at mod revision {m}, below mod revision {am} seen by {}",
                before(a)
            );
            out.push(anomaly(Rule::ModRevision, b, why));
        }
    }
    out
}

fn anomaly(rule: Rule, b: &Op, why: String) -> Anomaly {
    Anomaly {
        rule,
        line: b.line,
        time_ns: b.call_ns,
        subject: b.describe(),
        why,
    }
}

fn before(a: &Op) -> String {
    format!(
        "{} (line {}), which returned at {} ns, before this was called",
        a.describe(),
        a.line,
        ret(a)
    )
}

fn ret(o: &Op) -> u64 {
    o.return_ns.unwrap_or(u64::MAX)
}

/// For each B of `later`, the largest value among the `earlier` operations that returned
/// strictly before B was called; (B, its value, that operation, that value) wherever
/// `bad(B's value, that value)`.
fn sweep<'a>(
    earlier: &[(&'a Op, i64)],
    later: &[(&'a Op, i64)],
    bad: impl Fn(i64, i64) -> bool,
) -> Vec<(&'a Op, i64, &'a Op, i64)> {
    let mut by_return = earlier.to_vec();
    by_return.sort_by_key(|(o, _)| ret(o));
    let mut by_call = later.to_vec();
    by_call.sort_by_key(|(o, _)| (o.call_ns, o.line));
    let mut out = Vec::new();
    let mut best: Option<(&Op, i64)> = None;
    let mut next = 0;
    for (b, r) in by_call {
        while next < by_return.len() && ret(by_return[next].0) < b.call_ns {
            let (a, ar) = by_return[next];
            if best.is_none_or(|(_, x)| ar > x) {
                best = Some((a, ar));
            }
            next += 1;
        }
        if let Some((a, ar)) = best {
            if bad(r, ar) {
                out.push((b, r, a, ar));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn op(client: u64, kind: &str, call: u64, ret: u64, rev: i64, extra: &str) -> String {
        let value = if kind == "put" {
            format!(r#","value":"v{client}-{call}""#)
        } else {
            String::new()
        };
        format!(
            r#"{{"type":"op","client":{client},"op":"{kind}","key":"k","call_ns":{call},"return_ns":{ret},"outcome":"ok","revision":{rev}{value}{extra}}}"#
        )
    }

    fn run(lines: &[String]) -> Vec<Anomaly> {
        check(&parse(&lines.join("\n")).unwrap())
    }

    #[test]
    fn header_revisions_never_go_back_in_real_time() {
        let get = r#","result_mod_revision":0"#;
        // Overlapping: any order is fine.
        assert!(run(&[op(1, "get", 0, 10, 8, get), op(2, "get", 5, 12, 7, get)]).is_empty());
        // B called after A returned, with a lower revision: across clients too.
        let a = run(&[op(1, "get", 0, 10, 8, get), op(2, "get", 11, 12, 7, get)]);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].rule, a[0].line), (Rule::HeaderRevision, 2));
        assert!(
            a[0].why.contains("header revision is 7, below revision 8"),
            "{}",
            a[0]
        );
        // Equal is fine for a read, not for a write: a write makes a new revision.
        assert!(run(&[op(1, "get", 0, 10, 8, get), op(2, "get", 11, 12, 8, get)]).is_empty());
        let a = run(&[op(1, "get", 0, 10, 8, get), op(2, "put", 11, 12, 8, "")]);
        assert!(
            a[0].why
                .contains("its write got revision 8, not above revision 8"),
            "{}",
            a[0]
        );
    }

    #[test]
    fn mod_revisions_never_go_back_in_real_time() {
        let found = |m: i64| format!(r#","result_value":"x","result_mod_revision":{m}"#);
        let a = run(&[
            op(1, "get", 0, 10, 9, &found(6)),
            op(2, "get", 11, 12, 9, &found(5)),
        ]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule, Rule::ModRevision);
        // An absent read is not compared.
        let absent = r#","result_mod_revision":0"#;
        assert!(run(&[
            op(1, "get", 0, 10, 9, &found(6)),
            op(2, "get", 11, 12, 9, absent)
        ])
        .is_empty());
        // A put's revision counts as a mod revision seen.
        let a = run(&[
            op(1, "put", 0, 10, 9, ""),
            op(2, "get", 11, 12, 9, &found(5)),
        ]);
        assert_eq!(a[0].rule, Rule::ModRevision);
    }
}
