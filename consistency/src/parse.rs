//! Reading a history file: JSON Lines into `History`, then the rules of the format that
//! JSON types cannot say.
//!
//! Invariants: a history that parses is well formed, so the checks never meet a missing
//! field: every ok operation has its results (`revision`; a get its `result_mod_revision`,
//! a cas `succeeded`, a delete `deleted`), failed and unknown ones carry no results; a
//! written value is never written twice to one key; a client has one operation in flight
//! and none after an unknown outcome; a watcher's lines agree on what it watches. A
//! broken rule is a `ParseError` naming the line (1-based; 0 for the file as a whole)
//! and the field, with what it should be. Blank lines are allowed and skipped.

use crate::history::{EventKind, Final, History, Line, Op, OpKind, Outcome, Watch};
use crate::malformed::err;
pub use crate::malformed::ParseError;

/// Parses and validates a whole history file.
pub fn parse(text: &str) -> Result<History, ParseError> {
    let mut history = History::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(raw) {
            Ok(Line::Op(mut op)) => {
                op.line = line;
                validate_op(&op)?;
                history.ops.push(op);
            }
            Ok(Line::Watch(mut watch)) => {
                watch.line = line;
                validate_watch(&watch)?;
                history.watches.push(watch);
            }
            Ok(Line::Final(mut fin)) => {
                fin.line = line;
                validate_final(&fin)?;
                history.finals.push(fin);
            }
            Err(e) => {
                return err(
                    line,
                    format!("not a history line ({e}); expected one JSON object with \"type\" op, watch or final"),
                )
            }
        }
    }
    crate::wellformed::check(&history)?;
    Ok(history)
}

fn need<T>(field: Option<T>, line: usize, name: &str, why: &str) -> Result<T, ParseError> {
    match field {
        Some(v) => Ok(v),
        None => err(line, format!("field `{name}` is missing: {why}")),
    }
}

fn forbid<T>(field: &Option<T>, line: usize, name: &str, why: &str) -> Result<(), ParseError> {
    match field {
        Some(_) => err(line, format!("field `{name}` does not belong here: {why}")),
        None => Ok(()),
    }
}

fn validate_op(op: &Op) -> Result<(), ParseError> {
    let l = op.line;
    match op.op {
        OpKind::Put | OpKind::Cas => {
            need(
                op.value.as_ref(),
                l,
                "value",
                "a put or cas names the value it writes",
            )?;
        }
        OpKind::Get | OpKind::Delete => {
            forbid(&op.value, l, "value", "only a put or a cas writes a value")?;
        }
    }
    if op.op == OpKind::Cas {
        let e = need(
            op.expect_mod_revision,
            l,
            "expect_mod_revision",
            "a cas compares the key's mod revision with it (0: the key is absent)",
        )?;
        if e < 0 {
            return err(l, "field `expect_mod_revision` is negative; it is a mod revision, 0 for an absent key");
        }
    } else {
        forbid(
            &op.expect_mod_revision,
            l,
            "expect_mod_revision",
            "only a cas compares",
        )?;
    }
    match op.outcome {
        Outcome::Ok | Outcome::Failed => {
            let r = need(
                op.return_ns,
                l,
                "return_ns",
                "an ok or failed operation has a return time",
            )?;
            if r < op.call_ns {
                return err(l, format!("field `return_ns` ({r}) is before `call_ns` ({}); both come from one monotonic clock", op.call_ns));
            }
        }
        Outcome::Unknown => {
            if let Some(r) = op.return_ns {
                if r < op.call_ns {
                    return err(
                        l,
                        format!(
                            "field `return_ns` ({r}) is before `call_ns` ({})",
                            op.call_ns
                        ),
                    );
                }
            }
        }
    }
    if op.outcome != Outcome::Ok {
        let why = "only an ok operation has results";
        forbid(&op.revision, l, "revision", why)?;
        forbid(&op.result_value, l, "result_value", why)?;
        forbid(&op.result_mod_revision, l, "result_mod_revision", why)?;
        forbid(&op.succeeded, l, "succeeded", why)?;
        return forbid(&op.deleted, l, "deleted", why);
    }
    let rev = need(
        op.revision,
        l,
        "revision",
        "an ok operation has its response's header revision",
    )?;
    if rev < 1 {
        return err(
            l,
            format!("field `revision` is {rev}; etcd's revisions start at 1"),
        );
    }
    if op.op != OpKind::Get {
        forbid(&op.result_value, l, "result_value", "only a get reads")?;
        forbid(
            &op.result_mod_revision,
            l,
            "result_mod_revision",
            "only a get reads",
        )?;
    }
    if op.op != OpKind::Cas {
        forbid(&op.succeeded, l, "succeeded", "only a cas succeeds or not")?;
    }
    if op.op != OpKind::Delete {
        forbid(&op.deleted, l, "deleted", "only a delete deletes")?;
    }
    match op.op {
        OpKind::Get => {
            let m = need(
                op.result_mod_revision,
                l,
                "result_mod_revision",
                "an ok get has the key's mod revision (0 when absent)",
            )?;
            if m < 0 || (m == 0) != op.result_value.is_none() {
                return err(l, format!("fields `result_value` and `result_mod_revision` disagree ({:?}, {m}): a value has a mod revision > 0, an absent key (null) has 0", op.result_value));
            }
        }
        OpKind::Cas => {
            need(
                op.succeeded,
                l,
                "succeeded",
                "an ok cas says whether its compare held",
            )?;
        }
        OpKind::Delete => {
            let d = need(
                op.deleted,
                l,
                "deleted",
                "an ok delete has the number of keys deleted",
            )?;
            if !(0..=1).contains(&d) {
                return err(
                    l,
                    format!("field `deleted` is {d}; a delete of one key deletes 0 or 1"),
                );
            }
        }
        OpKind::Put => {}
    }
    Ok(())
}

fn validate_watch(w: &Watch) -> Result<(), ParseError> {
    let l = w.line;
    if w.start_revision < 0 {
        return err(
            l,
            "field `start_revision` is negative; 0 means \"from now\"",
        );
    }
    for (i, e) in w.events.iter().enumerate() {
        if e.mod_revision < 1 {
            return err(
                l,
                format!(
                    "event {i}: field `mod_revision` is {}; revisions start at 1",
                    e.mod_revision
                ),
            );
        }
        match e.kind {
            EventKind::Put if e.value.is_none() => {
                return err(l, format!("event {i}: a put event has a `value`"));
            }
            EventKind::Delete if e.value.is_some() => {
                return err(l, format!("event {i}: a delete event has no `value`"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_final(f: &Final) -> Result<(), ParseError> {
    if f.mod_revision < 0 || (f.mod_revision == 0) != f.value.is_none() {
        return err(f.line, format!("fields `value` and `mod_revision` disagree ({:?}, {}): a value has a mod revision > 0, an absent key (null) has 0", f.value, f.mod_revision));
    }
    if f.revision < 1 {
        return err(
            f.line,
            format!(
                "field `revision` is {}; etcd's revisions start at 1",
                f.revision
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<History, ParseError> {
        parse(line)
    }

    #[test]
    fn reads_every_kind_of_line() {
        let text = concat!(
            r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":1,"return_ns":2,"outcome":"ok","revision":2}"#,
            "\n",
            "\n",
            r#"{"type":"op","client":1,"op":"get","key":"k","call_ns":3,"return_ns":4,"outcome":"ok","revision":2,"result_value":"a","result_mod_revision":2}"#,
            "\n",
            r#"{"type":"watch","watcher":1,"key":"k","start_revision":1,"time_ns":5,"revision":2,"events":[{"kind":"put","key":"k","value":"a","mod_revision":2,"prev_value":null}]}"#,
            "\n",
            r#"{"type":"final","revision":2,"key":"k","value":"a","mod_revision":2}"#,
            "\n",
        );
        let h = parse(text).unwrap();
        assert_eq!((h.ops.len(), h.watches.len(), h.finals.len()), (2, 1, 1));
        assert_eq!(h.ops[1].line, 3);
        // And back: the same history.
        let again = parse(&h.to_jsonl()).unwrap();
        assert_eq!(again.ops[1].result_value, h.ops[1].result_value);
        assert_eq!(again.watches[0].events, h.watches[0].events);
    }

    #[test]
    fn names_the_line_and_field_at_fault() {
        let cases = [
            (
                r#"{"type":"op","client":1,"op":"put","key":"k","call_ns":1,"return_ns":2,"outcome":"ok","revision":2}"#,
                "`value` is missing",
            ),
            (
                r#"{"type":"op","client":1,"op":"get","key":"k","call_ns":1,"return_ns":2,"outcome":"ok","revision":2}"#,
                "`result_mod_revision` is missing",
            ),
            (
                r#"{"type":"op","client":1,"op":"get","key":"k","call_ns":1,"return_ns":2,"outcome":"ok","revision":2,"result_mod_revision":3}"#,
                "disagree",
            ),
            (
                r#"{"type":"op","client":1,"op":"cas","key":"k","value":"v","call_ns":1,"return_ns":2,"outcome":"ok","revision":2,"succeeded":true}"#,
                "`expect_mod_revision` is missing",
            ),
            (
                r#"{"type":"op","client":1,"op":"put","key":"k","value":"v","call_ns":3,"return_ns":2,"outcome":"ok","revision":2}"#,
                "before `call_ns`",
            ),
            (
                r#"{"type":"op","client":1,"op":"put","key":"k","value":"v","call_ns":1,"outcome":"failed"}"#,
                "`return_ns` is missing",
            ),
            (
                r#"{"type":"op","client":1,"op":"put","key":"k","value":"v","call_ns":1,"outcome":"unknown","revision":4}"#,
                "`revision` does not belong",
            ),
            (
                r#"{"type":"op","client":1,"op":"put","key":"k","value":"v","call_ns":1,"return_ns":2,"outcome":"ok","revison":2}"#,
                "unknown field `revison`",
            ),
            (
                r#"{"type":"op","client":1,"op":"delete","key":"k","call_ns":1,"return_ns":2,"outcome":"ok","revision":2,"deleted":2}"#,
                "deletes 0 or 1",
            ),
            (
                r#"{"type":"watch","watcher":1,"key":"k","start_revision":1,"time_ns":5,"revision":2,"events":[{"kind":"put","key":"k","mod_revision":2}]}"#,
                "a put event has a `value`",
            ),
            (
                r#"{"type":"final","revision":2,"key":"k","value":null,"mod_revision":2}"#,
                "disagree",
            ),
            (r#"{"type":"nope"}"#, "not a history line"),
            ("[1,2]", "not a history line"),
        ];
        for (text, want) in cases {
            let e = one(text).unwrap_err();
            assert_eq!(e.line, 1, "{text}");
            assert!(e.message.contains(want), "{text}: {e}");
        }
    }
}
