//! The slowness: every fsync, fdatasync and fsyncdir waits the configured delay, then
//! really syncs the backing file, then replies.
//!
//! Invariants:
//! - The wait never runs on a session thread: a sync is queued to a pool of [`WORKERS`]
//!   threads with its reply (fuser's replies are `Send`), so reads and writes of other
//!   files go on while syncs sleep; a slow disk delays syncs, it does not freeze reads.
//!   Only if the pool is gone (it never stops before the process) does a sync run inline.
//! - Each sync replies exactly once, after the backing `fsync`/`fdatasync` returned, with
//!   its result (the backing errno on failure), never before the delay has passed.
//! - [`Syncer::count`] counts the syncs done through the delay.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{Errno, ReplyEmpty};

/// How many syncs may wait at once; more queue behind them, as at a real device.
pub const WORKERS: usize = 16;

struct Job {
    file: Arc<File>,
    datasync: bool,
    reply: ReplyEmpty,
}

/// The pool of sync workers and its count.
pub struct Syncer {
    delay: Duration,
    done: Arc<AtomicU64>,
    jobs: Sender<Job>,
}

impl Syncer {
    /// Starts the workers; every sync waits `delay`.
    pub fn start(delay: Duration) -> Syncer {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let done = Arc::new(AtomicU64::new(0));
        for i in 0..WORKERS {
            let queue = Arc::clone(&queue);
            let done = Arc::clone(&done);
            // A worker that cannot start leaves the others (or, with none, the inline
            // path of `sync`).
            let _ = std::thread::Builder::new()
                .name(format!("slowfs-sync-{i}"))
                .spawn(move || work(&queue, delay, &done));
        }
        Syncer { delay, done, jobs }
    }

    /// Syncs `file` (only its data when `datasync`) after the delay, then replies.
    pub fn sync(&self, file: Arc<File>, datasync: bool, reply: ReplyEmpty) {
        let job = Job {
            file,
            datasync,
            reply,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            run(job, self.delay, &self.done);
        }
    }

    /// The syncs done so far.
    pub fn count(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.done)
    }
}

fn work(queue: &Mutex<Receiver<Job>>, delay: Duration, done: &AtomicU64) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.recv()
        };
        match job {
            Ok(job) => run(job, delay, done),
            // Every sender is gone: the file system is being dropped.
            Err(_) => return,
        }
    }
}

fn run(job: Job, delay: Duration, done: &AtomicU64) {
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let synced = if job.datasync {
        job.file.sync_data()
    } else {
        job.file.sync_all()
    };
    done.fetch_add(1, Ordering::Relaxed);
    match synced {
        Ok(()) => job.reply.ok(),
        Err(e) => job.reply.error(Errno::from(e)),
    }
}
