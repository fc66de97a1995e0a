//! The active writer's record of its own chain's span in etcd (see
//! [`crate::coverage`]): when its term starts, after each full snapshot, and every
//! [`coverage::EVERY`] while it writes.
//!
//! Invariants: recording never blocks or fails the writer (a put on a task of its own, at
//! most one at a time; a failure is logged and retried at the next turn); the chain's
//! oldest full snapshot is found by listing the local chain on a blocking thread, at the
//! term's start and every [`coverage::OLDEST_EVERY`], never on the writer's path.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use etcd_client::Client;
use tokio::task::JoinHandle;

use crate::chain::{Kind, Link};
use crate::coverage::{self, Coverage};
use crate::local::LocalChain;

pub struct SpanRecorder {
    node: String,
    /// The oldest full snapshot the local chain keeps, as last found.
    oldest: Arc<Mutex<Option<Link>>>,
    /// When the oldest was last looked for (`None`: never).
    oldest_found: Option<Instant>,
    newest: Option<Link>,
    next: Instant,
    task: Option<JoinHandle<()>>,
}

impl SpanRecorder {
    pub fn new(node: &str) -> SpanRecorder {
        SpanRecorder {
            node: node.to_string(),
            oldest: Arc::new(Mutex::new(None)),
            oldest_found: None,
            newest: None,
            next: Instant::now(),
            task: None,
        }
    }

    /// The writer appended (or adopted) `link`; a full snapshot is recorded at once.
    pub fn appended(&mut self, link: &Link) {
        if link.kind == Kind::Full {
            let mut oldest = self.oldest.lock().unwrap_or_else(|p| p.into_inner());
            if oldest.is_none() {
                *oldest = Some(link.clone());
            }
            self.next = Instant::now();
        }
        self.newest = Some(link.clone());
    }

    /// Records the span when it is due, on a task of its own.
    pub fn step(&mut self, client: &Client, local: &Arc<LocalChain>) {
        let now = Instant::now();
        if now < self.next || self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        self.next = now + coverage::EVERY;
        let find_oldest = self
            .oldest_found
            .is_none_or(|at| now.duration_since(at) >= coverage::OLDEST_EVERY);
        if find_oldest {
            self.oldest_found = Some(now);
        }
        let (client, local, oldest) = (client.clone(), local.clone(), self.oldest.clone());
        let (node, newest) = (self.node.clone(), self.newest.clone());
        self.task = Some(tokio::spawn(async move {
            if find_oldest {
                let found = tokio::task::spawn_blocking(move || coverage::of_local(&local).0)
                    .await
                    .ok()
                    .flatten();
                if found.is_some() {
                    *oldest.lock().unwrap_or_else(|p| p.into_inner()) = found;
                }
            }
            let full = oldest.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let Some(span) = coverage::of_links(&node, full.as_ref(), newest.as_ref()) else {
                return;
            };
            record(&client, &span).await;
        }));
    }

    /// Waits for a record under way (the term ends).
    pub async fn finish(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn record(client: &Client, span: &Coverage) {
    if let Err(p) = coverage::record(client, span).await {
        tracing::warn!("backup: cannot record this chain's span in etcd: {p}; retrying later");
    }
}
