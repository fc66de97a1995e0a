//! The one loop every duty of the agent runs in: a round, a pause, again, until the duty
//! is done or the etcd it serves exits.
//!
//! Invariants, the same for every duty:
//! - it stops within one pause of the watched etcd exiting (the agent's processes watch
//!   the PID that etcd keeps by exec) and never outlives it;
//! - a failed round is retried after the duty's pause, never given up on;
//! - a line is logged once when it changes, never once per round: a member that stays
//!   unreachable for an hour logs one line, not 3,600 ([`Said`]).

use std::future::Future;
use std::time::Duration;

/// What one round came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Nothing to tell; another round after the pause.
    Quiet,
    /// A line to log (once, until it changes); another round after the pause.
    Said(String),
    /// The duty is over; its last line, if any, is logged.
    Done(Option<String>),
}

/// One duty of the agent: keeping the CRL current, following the zone's etcd release,
/// keeping the auth store to the access policy, serving the identity endpoint, promoting
/// the learner.
pub trait Duty {
    /// What its failure lines start with (`"revocations: https://…:2379"`); read once, when
    /// its loop starts.
    fn name(&self) -> String;
    /// Between two rounds, and after a failed one.
    fn pause(&self) -> Duration;
    /// One round; `Err(reason)` is logged once per distinct reason and retried.
    fn round(&mut self) -> impl Future<Output = Result<Round, String>>;
}

/// Now, as a duty's records say when (RFC 3339, UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The etcd a duty serves: the PID it keeps by exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched(pub u32);

impl Watched {
    pub fn running(self) -> bool {
        zone_node::detached::running(self.0)
    }
}

/// How a duty's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Done,
    EtcdExited,
}

/// Runs `duty` until it is done or `etcd` exits.
pub async fn keep<D: Duty>(duty: &mut D, etcd: Watched) -> Ended {
    let mut said = Said::default();
    // A duty's name is fixed (what it keeps, where): written once, not every round.
    let name = duty.name();
    while etcd.running() {
        let outcome = duty.round().await;
        if let Some(line) = said.next(&name, duty.pause(), &outcome) {
            tracing::info!("{line}");
        }
        if let Ok(Round::Done(_)) = outcome {
            return Ended::Done;
        }
        tokio::time::sleep(duty.pause()).await;
    }
    Ended::EtcdExited
}

/// The last line a duty logged: the next one is logged only when it differs.
#[derive(Debug, Default)]
pub struct Said {
    last: String,
}

impl Said {
    /// The line to log for `outcome`, if any (pure).
    pub fn next(
        &mut self,
        name: &str,
        pause: Duration,
        outcome: &Result<Round, String>,
    ) -> Option<String> {
        let line = match outcome {
            Ok(Round::Quiet) => String::new(),
            Ok(Round::Said(line)) => line.clone(),
            Ok(Round::Done(line)) => return line.clone().filter(|l| !l.is_empty()),
            Err(reason) => format!("{name}: {reason}; again in {pause:?}"),
        };
        let new = !line.is_empty() && line != self.last;
        self.last = line;
        new.then(|| self.last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_millis(1);

    #[test]
    fn a_line_is_said_once_until_it_changes() {
        let mut said = Said::default();
        let err = |r: &str| Err(r.to_string());
        let seen: Vec<Option<String>> = [
            err("refused"),
            err("refused"),
            err("no leader"),
            Ok(Round::Quiet),
            err("no leader"),
            Ok(Round::Said("moving".into())),
            Ok(Round::Said("moving".into())),
            Ok(Round::Done(Some("moved".into()))),
        ]
        .iter()
        .map(|o| said.next("release: e", PAUSE, o))
        .collect();
        assert_eq!(
            seen,
            [
                Some("release: e: refused; again in 1ms".to_string()),
                None,
                Some("release: e: no leader; again in 1ms".to_string()),
                None,
                // A quiet round between clears the line: the trouble is new again.
                Some("release: e: no leader; again in 1ms".to_string()),
                Some("moving".to_string()),
                None,
                Some("moved".to_string()),
            ]
        );
    }

    /// A duty that fails `failures` times, then is done.
    struct Flaky {
        failures: u32,
        rounds: u32,
    }

    impl Duty for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn pause(&self) -> Duration {
            PAUSE
        }
        async fn round(&mut self) -> Result<Round, String> {
            self.rounds += 1;
            if self.rounds <= self.failures {
                return Err("not yet".into());
            }
            Ok(Round::Done(None))
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_duty_runs_until_done_and_failures_are_retried() {
        let mut duty = Flaky {
            failures: 3,
            rounds: 0,
        };
        let me = Watched(std::process::id());
        assert_eq!(block_on(keep(&mut duty, me)), Ended::Done);
        assert_eq!(duty.rounds, 4);
    }

    #[test]
    fn a_duty_stops_once_its_etcd_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .expect("spawn sleep");
        let watched = Watched(child.id());
        let mut duty = Flaky {
            failures: u32::MAX,
            rounds: 0,
        };
        let waiter = std::thread::spawn(move || child.wait());
        assert_eq!(block_on(keep(&mut duty, watched)), Ended::EtcdExited);
        assert!(duty.rounds > 1, "it kept trying while etcd ran");
        let _ = waiter.join();
    }
}
