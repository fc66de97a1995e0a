//! CPU work that must not delay etcd: a delta's compression and encryption.
//!
//! A cut at the default `delta_every` (5 s) compresses a few hundred revisions in one
//! burst of about 5 ms of CPU (BENCHMARKS.md, "Backups a writer cannot feel"); on a small
//! machine that burst took a core from etcd while a writer's requests were in flight. Here
//! such work runs on one thread of its own at nice [`NICE`]: the kernel lets a thread of
//! normal priority that wakes (etcd's, a writer's) run before it, and still gives it a
//! tenth of a busy CPU. `SCHED_IDLE`, tried first, let a cut wait 3.6 s (median) for a CPU
//! beside two busy threads on two CPUs; nice 10 made it 39 ms, nice 19 425 ms
//! (`bench/examples/background_cut.rs`).
//!
//! Invariants:
//! - [`run`] hands a job to that thread and awaits it, so the `backup run` runtime goes on
//!   (its watch, its lease) while the job waits for a CPU;
//! - on a machine whose CPUs are always busy the job still runs, later: a cut is late,
//!   never lost;
//! - the jobs run one at a time, in the order given;
//! - a job that panics is an error for its caller; the thread goes on with the next job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use nix::libc;
use zone_io::Error;

type Job = Box<dyn FnOnce() + Send>;

/// Hands `job` to the background thread now; the future gives what it returned.
pub fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = Result<T, Error>> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
    });
    let gone = || Error::new("the background worker is gone");
    let sent = worker()
        .lock()
        .map_err(|_| gone())
        .and_then(|queue| queue.send(job).map_err(|_| gone()));
    async move {
        sent?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(Error::new("a job on the background worker panicked")),
        }
    }
}

/// The worker's queue, its thread started on first use.
fn worker() -> &'static Mutex<mpsc::Sender<Job>> {
    static WORKER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (queue, jobs) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("backup-background".into())
            .spawn(move || {
                if let Err(e) = lower_this_thread() {
                    tracing::warn!("backup: compressing at normal priority: {e}");
                }
                for job in jobs {
                    job();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("backup: cannot start the background worker: {e}");
        }
        Mutex::new(queue)
    })
}

/// The worker's nice value: below etcd, and not so low that a busy machine starves it.
pub const NICE: i32 = 10;

/// Lowers the calling thread to [`NICE`] (any thread may lower its own priority).
#[allow(unsafe_code)] // setpriority on one thread: nix wraps only the whole process's
fn lower_this_thread() -> Result<(), String> {
    // SAFETY: gettid has no preconditions; setpriority acts on this thread alone.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, NICE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "setpriority(nice {NICE}): {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    #[allow(unsafe_code)] // getpriority of this thread, as above
    fn a_job_runs_at_nice_10_off_the_callers_thread() {
        let caller = std::thread::current().id();
        let (nice, thread) = block_on(run(|| {
            // SAFETY: getpriority reads this thread's nice value.
            let nice =
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            (nice, std::thread::current().id())
        }))
        .unwrap();
        assert_eq!(nice, NICE);
        assert_ne!(thread, caller);
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_next_job_runs() {
        let e = block_on(run(|| -> u8 { panic!("a job's own fault") })).unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
        assert_eq!(block_on(run(|| 7)).unwrap(), 7);
    }

    #[test]
    fn jobs_run_in_the_order_given() {
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        // Every job is handed over before the first is awaited.
        block_on(async {
            let runs: Vec<_> = (0..20)
                .map(|i| {
                    let order = order.clone();
                    run(move || order.lock().unwrap().push(i))
                })
                .collect();
            for r in runs {
                r.await.unwrap();
            }
        });
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }
}
