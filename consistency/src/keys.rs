//! One history split by key into searches of the etcd key model (`etcd_model.rs`), and a
//! failed search said in words.
//!
//! Invariants: each key gets its own operations in history order: failed operations and
//! gets of unknown outcome are dropped (they took no effect and tell nothing), and so are
//! unknown writes `unseen.rs` rules out (nothing saw them on a key a watcher covered to
//! the end: they took effect after the final read or never); an unknown
//! write has the mod revision `facts.rs` knows for its value, if any, and then a return
//! time: the first response that showed that revision (it took effect before); else none;
//! an ok write's mod revision is its response's revision. The key's final read, if any, is
//! a get called and returned at `History::end_ns`. Values become small ids, each with its
//! known mod revision in the model; the values of unknown writes that no get or final
//! read returned and whose mod revision nothing tells all share one id: the model cannot
//! tell them apart (no read matches them, their compares may hold or fail alike), and one
//! id lets the search's cache see that a chain of such writes leaves the same state.

use crate::anomaly::{Anomaly, Rule};
use crate::etcd_model::{KeyModel, KeyOp};
use crate::facts::Facts;
use crate::history::{History, OpKind, Outcome};
use crate::unseen::Unseen;
use crate::wgl::{check, Operation};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One key's history, ready for the search.
#[derive(Debug, Default)]
pub struct KeyHistory {
    pub key: String,
    pub model: KeyModel,
    pub ops: Vec<Operation<KeyOp>>,
    /// For each operation: the index in `History::ops`, or None for the final read.
    pub sources: Vec<Option<usize>>,
    /// Value ids to values.
    pub values: Vec<String>,
    ids: HashMap<String, u32>,
    unseen: Option<u32>,
}

impl KeyHistory {
    fn id(&mut self, value: &str, facts: &Facts) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.model.revs.push(facts.rev_of(&self.key, value));
        self.ids.insert(value.to_string(), id);
        id
    }

    /// The id shared by the values of unknown writes that no read returned and nothing
    /// placed.
    fn unseen(&mut self) -> u32 {
        if let Some(id) = self.unseen {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(String::new());
        self.model.revs.push(None);
        self.unseen = Some(id);
        id
    }

    fn value(&self, v: Option<u32>) -> String {
        match v {
            Some(id) if Some(id) == self.unseen => {
                "a value of unknown outcome that no read returned".to_string()
            }
            Some(id) => format!("{:?}", self.values[id as usize]),
            None => "nothing (absent)".to_string(),
        }
    }
}

/// Splits `h` into one history per key, keys in order.
pub fn per_key(h: &History, facts: &Facts) -> Vec<KeyHistory> {
    let mut keys: BTreeMap<&str, KeyHistory> = BTreeMap::new();
    let unseen = Unseen::new(h);
    let mut read: HashSet<(&str, &str)> = HashSet::new();
    for o in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if let Some(v) = &o.result_value {
            read.insert((&o.key, v));
        }
    }
    for f in &h.finals {
        if let Some(v) = &f.value {
            read.insert((&f.key, v));
        }
    }
    for (i, o) in h.ops.iter().enumerate() {
        if o.outcome == Outcome::Failed
            || (o.outcome == Outcome::Unknown && o.op == OpKind::Get)
            || unseen.ruled_out(o, facts)
        {
            continue;
        }
        let k = keys.entry(&o.key).or_insert_with(|| KeyHistory {
            key: o.key.clone(),
            ..Default::default()
        });
        let ok = o.outcome == Outcome::Ok;
        let header = o.revision.unwrap_or(0);
        let written = o.value.as_deref().map(|v| {
            if !ok && facts.rev_of(&o.key, v).is_none() && !read.contains(&(&o.key, v)) {
                k.unseen()
            } else {
                k.id(v, facts)
            }
        });
        let op = match (o.op, written) {
            (OpKind::Get, _) => KeyOp::Get {
                value: o.result_value.as_deref().map(|v| k.id(v, facts)),
                header,
            },
            (OpKind::Put, Some(value)) => {
                let rev = if ok {
                    Some(header)
                } else {
                    k.model.revs[value as usize]
                };
                KeyOp::Put { value, rev }
            }
            (OpKind::Delete, _) if ok => KeyOp::Delete {
                deleted: o.deleted == Some(1),
                header,
            },
            (OpKind::Delete, _) => KeyOp::DeleteUnknown,
            (OpKind::Cas, Some(value)) => {
                let expect = o.expect_mod_revision.unwrap_or(0);
                match o.succeeded {
                    Some(succeeded) if ok => KeyOp::Cas {
                        value,
                        expect,
                        succeeded,
                        header,
                    },
                    _ => KeyOp::CasUnknown {
                        value,
                        expect,
                        rev: k.model.revs[value as usize],
                    },
                }
            }
            // A parsed history has a value on every put and cas.
            _ => continue,
        };
        // An unknown write whose value something observed at a revision took effect,
        // before that revision first showed in a response.
        let placed = match op {
            KeyOp::Put { rev, .. } | KeyOp::CasUnknown { rev, .. } if !ok => rev,
            _ => None,
        };
        let ret = match placed {
            _ if ok => o.return_ns,
            Some(r) => facts.existed_by(r).map(|t| t.max(o.call_ns)),
            None => None,
        };
        k.ops.push(Operation {
            call: o.call_ns,
            ret,
            op,
        });
        k.sources.push(Some(i));
    }
    let end = h.end_ns();
    for f in &h.finals {
        let k = keys.entry(&f.key).or_insert_with(|| KeyHistory {
            key: f.key.clone(),
            ..Default::default()
        });
        let value = f.value.as_deref().map(|v| k.id(v, facts));
        k.ops.push(Operation {
            call: end,
            ret: Some(end),
            op: KeyOp::Get {
                value,
                header: f.revision,
            },
        });
        k.sources.push(None);
    }
    keys.into_values().collect()
}

/// Searches one key's history; the anomaly if it is not linearizable.
pub fn check_key(h: &History, k: &KeyHistory) -> Option<Anomaly> {
    let stuck = check(&k.model, &k.ops).err()?;
    let (line, time_ns, subject) = match k.sources[stuck.op] {
        Some(i) => (h.ops[i].line, h.ops[i].call_ns, h.ops[i].describe()),
        None => {
            let f = h.finals.iter().find(|f| f.key == k.key);
            (
                f.map_or(0, |f| f.line),
                h.end_ns(),
                format!("final read of key {:?}", k.key),
            )
        }
    };
    let what = match &k.ops[stuck.op].op {
        KeyOp::Get { value, header } => format!("it read {} at revision {header}", k.value(*value)),
        KeyOp::Put { value, rev } => format!(
            "it put {} (revision {})",
            k.value(Some(*value)),
            rev.map_or("unknown".into(), |r| r.to_string())
        ),
        KeyOp::Delete { deleted, header } => format!(
            "it deleted {} key at revision {header}",
            if *deleted { "1" } else { "0" }
        ),
        KeyOp::DeleteUnknown => "it deleted the key (outcome unknown)".to_string(),
        KeyOp::Cas {
            value,
            expect,
            succeeded,
            header,
        } => {
            format!(
                "its compare of mod revision with {expect} {} (put {}, revision {header})",
                if *succeeded { "held" } else { "failed" },
                k.value(Some(*value))
            )
        }
        KeyOp::CasUnknown { value, expect, .. } => format!(
            "it compared mod revision with {expect} to put {} (outcome unknown)",
            k.value(Some(*value))
        ),
    };
    let why = format!(
        "no order of key {:?}'s {} operations explains it: after the longest legal prefix ({} operations) the key holds {} at revision {} or later, and it must take effect before it returns, but {what}",
        k.key,
        k.ops.len(),
        stuck.linearized,
        k.value(stuck.state.value),
        stuck.state.rev,
    );
    Some(Anomaly {
        rule: Rule::Linearizable,
        line,
        time_ns,
        subject,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gather;
    use crate::parse::parse;

    fn keys(text: &str) -> (History, Vec<KeyHistory>) {
        let h = parse(text).unwrap();
        let (facts, _) = gather(&h);
        let k = per_key(&h, &facts);
        (h, k)
    }

    const PUT_A: &str = r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":10,"return_ns":20,"outcome":"ok","revision":5}"#;
    const PUT_B: &str = r#"{"type":"op","client":2,"op":"put","key":"k","value":"b","call_ns":30,"return_ns":40,"outcome":"ok","revision":6}"#;

    #[test]
    fn splits_by_key_and_drops_what_tells_nothing() {
        let failed = r#"{"type":"op","client":3,"op":"put","key":"k","value":"f","call_ns":1,"return_ns":2,"outcome":"failed"}"#;
        let get_unknown =
            r#"{"type":"op","client":4,"op":"get","key":"k","call_ns":1,"outcome":"unknown"}"#;
        let put_unknown = r#"{"type":"op","client":5,"op":"put","key":"j","value":"u","call_ns":1,"outcome":"unknown"}"#;
        let fin = r#"{"type":"final","revision":6,"key":"k","value":"b","mod_revision":6}"#;
        let (h, k) = keys(&[PUT_A, PUT_B, failed, get_unknown, put_unknown, fin].join("\n"));
        assert_eq!(
            k.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
            ["j", "k"]
        );
        assert_eq!(
            k[0].ops,
            [Operation {
                call: 1,
                ret: None,
                op: KeyOp::Put {
                    value: 0,
                    rev: None
                }
            }]
        );
        assert_eq!(k[1].ops.len(), 3);
        assert_eq!(
            k[1].ops[1].op,
            KeyOp::Put {
                value: 1,
                rev: Some(6)
            }
        );
        let end = h.end_ns();
        assert_eq!(
            k[1].ops[2],
            Operation {
                call: end,
                ret: Some(end),
                op: KeyOp::Get {
                    value: Some(1),
                    header: 6
                }
            }
        );
        assert_eq!(k[1].sources, [Some(0), Some(1), None]);
        assert!(k.iter().all(|k| check_key(&h, k).is_none()));
    }

    #[test]
    fn an_unknown_write_someone_read_returns_when_its_revision_first_showed() {
        // c took effect (read at revision 7) before any response showed revision 7: the
        // get at line 3 returned at 50. An unknown write nobody read stays open.
        let c = r#"{"type":"op","client":3,"op":"put","key":"k","value":"c","call_ns":5,"outcome":"unknown"}"#;
        let d = r#"{"type":"op","client":4,"op":"put","key":"k","value":"d","call_ns":6,"outcome":"unknown"}"#;
        let get = r#"{"type":"op","client":5,"op":"get","key":"k","call_ns":45,"return_ns":50,"outcome":"ok","revision":7,"result_value":"c","result_mod_revision":7}"#;
        let (_, k) = keys(&[PUT_A, c, get, d].join("\n"));
        assert_eq!(
            k[0].ops[1],
            Operation {
                call: 5,
                ret: Some(50),
                op: KeyOp::Put {
                    value: 1,
                    rev: Some(7)
                }
            }
        );
        assert_eq!(k[0].ops[3].ret, None);
    }

    #[test]
    fn a_stale_read_is_named_with_the_state_it_contradicts() {
        let stale = r#"{"type":"op","client":3,"op":"get","key":"k","call_ns":50,"return_ns":60,"outcome":"ok","revision":6,"result_value":"a","result_mod_revision":5}"#;
        let (h, k) = keys(&[PUT_A, PUT_B, stale].join("\n"));
        let a = check_key(&h, &k[0]).unwrap();
        assert_eq!((a.rule, a.line, a.time_ns), (Rule::Linearizable, 3, 50));
        assert_eq!(a.subject, "client 3 get key \"k\" called at 50 ns");
        assert!(
            a.why.contains("the key holds \"b\" at revision 6 or later"),
            "{a}"
        );
        assert!(a.why.contains("it read \"a\" at revision 6"), "{a}");
        // A final read that contradicts: named as such.
        let fin = r#"{"type":"final","revision":6,"key":"k","value":"a","mod_revision":5}"#;
        let (h, k) = keys(&[PUT_A, PUT_B, fin].join("\n"));
        let a = check_key(&h, &k[0]).unwrap();
        assert_eq!((a.line, a.subject.as_str()), (3, "final read of key \"k\""));
    }
}
