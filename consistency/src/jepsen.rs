//! Jepsen's etcd logs (the histories porcupine publishes) into operations of the
//! cas-register model (`models.rs`), to prove the search on histories with known answers.
//!
//! A log line is `INFO  jepsen.util - PROCESS TYPE F VALUE`, whitespace-separated, with
//! TYPE `:invoke`, `:ok`, `:fail` or `:info` and F `:read`, `:write` or `:cas`; VALUE is
//! `nil` or an integer (read, write), `[FROM TO]` (cas) or `:timed-out`.
//!
//! Invariants, as porcupine reads these logs: time is the line number; an invoke opens
//! the process's operation and the next completion of that process closes it. `:ok`
//! gives the result; `:fail :cas` is a cas whose compare did not hold (a definite result);
//! `:fail` of a read or write did nothing and is dropped; `:info` (timed out) makes a
//! write or cas unknown (no return time) and drops a read; an operation still open at the
//! end is unknown too. Any other line is an error naming its line: nothing is skipped.

use crate::models::CasOp;
use crate::parse::ParseError;
use crate::wgl::Operation;
use std::collections::HashMap;

/// The operations of one log, and the line of each operation's invoke.
#[derive(Debug, Default)]
pub struct JepsenHistory {
    pub ops: Vec<Operation<CasOp>>,
    pub lines: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Invoked {
    Read,
    Write(i64),
    Cas(i64, i64),
}

fn bad<T>(line: usize, message: String) -> Result<T, ParseError> {
    Err(ParseError { line, message })
}

/// Parses a whole log.
pub fn parse_log(text: &str) -> Result<JepsenHistory, ParseError> {
    let mut out = JepsenHistory::default();
    let mut open: HashMap<u64, (usize, Invoked)> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let Some((_, rest)) = raw.split_once("jepsen.util - ") else {
            return bad(line, format!("not a jepsen.util operation line: {raw:?}"));
        };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let [process, kind, f, args @ ..] = tokens.as_slice() else {
            return bad(line, format!("expected PROCESS TYPE F VALUE: {raw:?}"));
        };
        let process: u64 = process.parse().map_err(|_| ParseError {
            line,
            message: format!("process {process:?} is not a number"),
        })?;
        let value = args.join(" ");
        if *kind == ":invoke" {
            let invoked = match *f {
                ":read" => Invoked::Read,
                ":write" => Invoked::Write(int(line, &value)?),
                ":cas" => {
                    let (a, b) = pair(line, &value)?;
                    Invoked::Cas(a, b)
                }
                _ => return bad(line, format!("unknown function {f}")),
            };
            if open.insert(process, (line, invoked)).is_some() {
                return bad(
                    line,
                    format!("process {process} invokes with an operation open"),
                );
            }
            continue;
        }
        let Some((call, invoked)) = open.remove(&process) else {
            return bad(
                line,
                format!("process {process} completes an operation it did not invoke"),
            );
        };
        let op = match (*kind, invoked) {
            (":ok", Invoked::Read) => Some(CasOp::Read(match value.as_str() {
                "nil" => None,
                v => Some(int(line, v)?),
            })),
            (":ok", Invoked::Write(v)) => Some(CasOp::Write(v)),
            (":ok" | ":fail", Invoked::Cas(from, to)) => Some(CasOp::Cas {
                from,
                to,
                ok: *kind == ":ok",
            }),
            (":fail", _) | (":info", Invoked::Read) => None,
            (":info", Invoked::Write(v)) => {
                push(&mut out, call, None, CasOp::Write(v));
                continue;
            }
            (":info", Invoked::Cas(from, to)) => {
                push(&mut out, call, None, CasOp::CasUnknown { from, to });
                continue;
            }
            _ => return bad(line, format!("unknown completion {kind} {f}")),
        };
        if let Some(op) = op {
            push(&mut out, call, Some(line as u64), op);
        }
    }
    let mut still_open: Vec<_> = open.into_values().collect();
    still_open.sort_by_key(|(line, _)| *line);
    for (call, invoked) in still_open {
        match invoked {
            Invoked::Read => {}
            Invoked::Write(v) => push(&mut out, call, None, CasOp::Write(v)),
            Invoked::Cas(from, to) => push(&mut out, call, None, CasOp::CasUnknown { from, to }),
        }
    }
    Ok(out)
}

fn push(out: &mut JepsenHistory, call: usize, ret: Option<u64>, op: CasOp) {
    out.ops.push(Operation {
        call: call as u64,
        ret,
        op,
    });
    out.lines.push(call);
}

fn int(line: usize, s: &str) -> Result<i64, ParseError> {
    s.parse().map_err(|_| ParseError {
        line,
        message: format!("{s:?} is not an integer"),
    })
}

fn pair(line: usize, s: &str) -> Result<(i64, i64), ParseError> {
    let inner = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    let parts: Vec<&str> = inner
        .map(|i| i.split_whitespace().collect())
        .unwrap_or_default();
    match parts.as_slice() {
        [a, b] => Ok((int(line, a)?, int(line, b)?)),
        _ => bad(line, format!("{s:?} is not [FROM TO]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::CasRegister;
    use crate::wgl::check;

    #[test]
    fn reads_a_log() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:write\t4\n\
                   INFO  jepsen.util - 1\t:invoke\t:cas\t[4 2]\n\
                   INFO  jepsen.util - 0\t:ok\t:write\t4\n\
                   INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 2\t:fail\t:read\t:timed-out\n\
                   INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n\
                   INFO  jepsen.util - 3   :invoke :read   nil\n\
                   INFO  jepsen.util - 3   :ok     :read   2\n\
                   INFO  jepsen.util - 4\t:invoke\t:write\t1\n";
        let h = parse_log(log).unwrap();
        assert_eq!(
            h.ops,
            vec![
                Operation {
                    call: 1,
                    ret: Some(3),
                    op: CasOp::Write(4)
                },
                Operation {
                    call: 2,
                    ret: None,
                    op: CasOp::CasUnknown { from: 4, to: 2 }
                },
                Operation {
                    call: 7,
                    ret: Some(8),
                    op: CasOp::Read(Some(2))
                },
                Operation {
                    call: 9,
                    ret: None,
                    op: CasOp::Write(1)
                },
            ]
        );
        assert!(check(&CasRegister, &h.ops).is_ok());
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        for (log, want) in [
            ("hello\n", "not a jepsen.util"),
            ("INFO  jepsen.util - 0 :ok :read 1\n", "did not invoke"),
            ("INFO  jepsen.util - 0 :invoke :cas [1]\n", "[FROM TO]"),
            ("INFO  jepsen.util - 0 :invoke :read nil\nINFO  jepsen.util - 0 :invoke :read nil\n", "open"),
            ("INFO  jepsen.util - 0 :invoke :frob 1\n", "unknown function"),
        ] {
            let e = parse_log(log).unwrap_err();
            assert!(e.message.contains(want), "{log}: {e}");
        }
    }
}
