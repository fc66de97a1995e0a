//! One recording client: operations on the history's keys, one in flight, no retries
//! but Go's clientv3's own: a request etcd refused as racing an auth change is resent.
//!
//! Invariants:
//! - `call_ns` is taken just before the request is handed to the connection and
//!   `return_ns` just after its answer or error: the operation took effect, if at all,
//!   between the two.
//! - Outcomes: `ok` only with a response; a get that errs is `failed` (a read changes
//!   nothing); a write is `failed` only when etcd refused it before doing anything (a
//!   status etcd returns before proposing: invalid argument, precondition, permission,
//!   no space, too many requests) or the connection was never made (a TCP connect
//!   error: the request never left); every other error, and every timeout, is `unknown`.
//! - After an `unknown`, the client drops its connection and goes on under a new id (the
//!   old request may still be in flight); after `ok` or `failed` it keeps both.
//! - Values are `v<client>.<n>`: unique in the history, since client ids are.
//! - The credentials are read from their files at every (re)connection, so a client
//!   follows a rotation of the files under it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp};
use etcd_client::{Txn, TxnOp};
use zone_consistency::{Op, OpKind, Outcome};

use crate::connect::connect_now;
use crate::rng::Rng;
use crate::shared::Shared;

/// etcd's answer to a request that raced a change of its auth store (nothing applied).
const AUTH_OLD: &str = "revision of auth store is old";

/// Whether a write that failed with `e` definitely did not take effect.
pub fn definitely_not_applied(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(s) => match s.code() {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::ResourceExhausted => true,
            Code::Unavailable => never_connected(&format!("{s:?}")),
            _ => false,
        },
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => true,
        etcd_client::Error::TransportError(t) => never_connected(&format!("{t:?}")),
        _ => false,
    }
}

/// A transport message that says the TCP connection was never established.
fn never_connected(text: &str) -> bool {
    text.contains("tcp connect error") || text.contains("ConnectionRefused")
}

/// Runs one client route until the recorder says stop.
pub async fn run(shared: Arc<Shared>, endpoints: Vec<String>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut id = shared.new_client_id();
    let mut conn: Option<Client> = None;
    let mut n: u64 = 0;
    // The last mod revision this client saw per key (its cas usually expects it).
    let mut seen: Vec<i64> = vec![0; shared.keys.len()];
    let mut epoch = shared.control.reconnect.load(Ordering::SeqCst);
    while !shared.control.clients_should_stop() {
        if shared.control.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let now = shared.control.reconnect.load(Ordering::SeqCst);
        if now != epoch {
            // New credentials: a fresh connection, as a restarted service makes.
            epoch = now;
            conn = None;
        }
        let mut client = match conn.take() {
            Some(c) => c,
            None => match connect_now(&endpoints, &shared.creds, shared.op_timeout).await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let k = rng.below(shared.keys.len() as u64) as usize;
        let key = shared.keys[k].clone();
        n += 1;
        let value = format!("v{id}.{n}");
        let mut op = Op {
            client: id,
            key: key.clone(),
            ..Op::default()
        };
        let roll = rng.below(100);
        op.op = match roll {
            0..=39 => OpKind::Get,
            40..=64 => OpKind::Put,
            65..=84 => OpKind::Cas,
            _ => OpKind::Delete,
        };
        if matches!(op.op, OpKind::Put | OpKind::Cas) {
            op.value = Some(value.clone());
        }
        let expect = if rng.percent(75) {
            seen[k]
        } else {
            [0, seen[k] - 1, seen[k] + 1][rng.below(3) as usize].max(0)
        };
        if op.op == OpKind::Cas {
            op.expect_mod_revision = Some(expect);
        }
        let timeout = shared.op_timeout;
        op.call_ns = shared.sink.now_ns();
        // As etcd's Go client does for certificate users: a request etcd refused because
        // it raced a change of the auth store (so it took no effect) is sent again.
        let mut tries = 0;
        let result = loop {
            let result = match op.op {
                OpKind::Get => tokio::time::timeout(timeout, client.get(key.as_str(), None))
                    .await
                    .map(|r| {
                        r.map(|r| {
                            let kv = r.kvs().first();
                            op.revision = r.header().map(|h| h.revision());
                            op.result_value =
                                kv.map(|kv| String::from_utf8_lossy(kv.value()).into());
                            op.result_mod_revision = Some(kv.map_or(0, |kv| kv.mod_revision()));
                        })
                    }),
                OpKind::Put => {
                    tokio::time::timeout(timeout, client.put(key.as_str(), value.clone(), None))
                        .await
                        .map(|r| r.map(|r| op.revision = r.header().map(|h| h.revision())))
                }
                OpKind::Delete => tokio::time::timeout(timeout, client.delete(key.as_str(), None))
                    .await
                    .map(|r| {
                        r.map(|r| {
                            op.revision = r.header().map(|h| h.revision());
                            op.deleted = Some(r.deleted());
                        })
                    }),
                OpKind::Cas => {
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            key.as_str(),
                            CompareOp::Equal,
                            expect,
                        )])
                        .and_then([TxnOp::put(key.as_str(), value.clone(), None)]);
                    tokio::time::timeout(timeout, client.txn(txn))
                        .await
                        .map(|r| {
                            r.map(|r| {
                                op.revision = r.header().map(|h| h.revision());
                                op.succeeded = Some(r.succeeded());
                            })
                        })
                }
            };
            let raced = matches!(&result, Ok(Err(e)) if e.to_string().contains(AUTH_OLD));
            if raced && tries < 3 {
                tries += 1;
                continue;
            }
            break result;
        };
        let return_ns = shared.sink.now_ns();
        op.outcome = match &result {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(_)) if op.op == OpKind::Get => Outcome::Failed,
            Ok(Err(e)) if definitely_not_applied(e) => Outcome::Failed,
            Ok(Err(_)) | Err(_) => Outcome::Unknown,
        };
        if op.outcome == Outcome::Ok {
            op.return_ns = Some(return_ns);
            match op.op {
                OpKind::Get => seen[k] = op.result_mod_revision.unwrap_or(0),
                OpKind::Put => seen[k] = op.revision.unwrap_or(0),
                OpKind::Cas if op.succeeded == Some(true) => seen[k] = op.revision.unwrap_or(0),
                OpKind::Delete => seen[k] = 0,
                _ => {}
            }
        } else {
            // Only ok carries results.
            op.revision = None;
            op.result_value = None;
            op.result_mod_revision = None;
            op.succeeded = None;
            op.deleted = None;
            op.return_ns = (op.outcome == Outcome::Failed).then_some(return_ns);
        }
        if let Ok(Err(e)) = &result {
            shared.note_error(&e.to_string());
        }
        let outcome = op.outcome;
        shared.sink.op(op);
        shared.control.ops_done.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Outcome::Ok => conn = Some(client),
            Outcome::Failed => {
                conn = Some(client);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Outcome::Unknown => {
                id = shared.new_client_id();
                n = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
