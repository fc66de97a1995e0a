//! What the zone says of itself: whether it is healthy, who leads, a member's status,
//! and the recorder's own credentials.
//!
//! Invariants: every question has a deadline (a member that does not answer is an error,
//! never a hang), and is asked from the calling thread (in its network namespace).

use std::time::{Duration, Instant};

use crate::connect::{connect_now, CredFiles};
use crate::zone::LocalZone;

impl LocalZone {
    /// Waits until every running member answers a status and the zone a quorum read.
    pub fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let running: Vec<usize> = (0..self.members.len())
                .filter(|&i| self.has_process(i))
                .collect();
            for &i in &running {
                if self.exited(i) {
                    return Err(format!(
                        "{} exited:\n{}",
                        self.members[i].0,
                        self.log_tail(i)
                    ));
                }
            }
            let ok = running.iter().all(|&i| self.status(i).is_ok());
            if ok && self.quorum_read(&running).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = running.iter().map(|&i| self.log_tail(i)).collect();
                return Err(format!(
                    "the zone is not healthy after {limit:?}:\n{}",
                    logs.join("\n--\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Member `i`'s (member id, leader id), from its status.
    pub fn status(&self, i: usize) -> Result<(u64, u64), String> {
        let url = vec![self.client_url(i)];
        let creds = self.creds(0);
        block_on(async move {
            let mut c = connect_now(&url, &creds, Duration::from_secs(2)).await?;
            let s = c.status().await.map_err(|e| e.to_string())?;
            let id = s.header().map_or(0, |h| h.member_id());
            Ok((id, s.leader()))
        })
    }

    /// A linearizable read through the endpoints of members `of`.
    fn quorum_read(&self, of: &[usize]) -> Result<(), String> {
        let urls: Vec<String> = of.iter().map(|&i| self.client_url(i)).collect();
        let creds = self.creds(0);
        block_on(async move {
            let mut c = connect_now(&urls, &creds, Duration::from_secs(2)).await?;
            c.get("/cz-health", None).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }

    /// The index of the current leader, as the running members see it.
    pub fn leader(&self) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ids: Vec<Option<(u64, u64)>> = (0..self.members.len())
                .map(|i| self.status(i).ok())
                .collect();
            for (i, s) in ids.iter().enumerate() {
                if let Some((id, leader)) = s {
                    if id == leader {
                        return Ok(i);
                    }
                    let _ = i;
                }
            }
            if Instant::now() > deadline {
                return Err("no member says it is the leader".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A member that is not the leader.
    pub fn follower(&self) -> Result<usize, String> {
        let leader = self.leader()?;
        Ok((leader + 1) % self.members.len())
    }
}

/// Runs a future on a runtime of its own (fault threads are not in the recorder's).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .unwrap_or_else(|_| Err("no answer in 10 s".into()))
    })
}

impl LocalZone {
    /// Copies member `i`'s current client credentials to `recorder-tls/` in the zone's
    /// directory (each file through a rename) and returns them there: the recorder's
    /// identity, which stays put while members rotate, leave or lose their disks.
    pub fn recorder_creds(&self, i: usize) -> Result<CredFiles, String> {
        let dir = self.path().join("recorder-tls");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let from = self.creds(i);
        let to = CredFiles {
            ca: dir.join("ca.crt"),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        };
        for (a, b) in [
            (&from.ca, &to.ca),
            (&from.cert, &to.cert),
            (&from.key, &to.key),
        ] {
            let tmp = b.with_extension("new");
            std::fs::copy(a, &tmp)
                .and_then(|_| std::fs::rename(&tmp, b))
                .map_err(|e| format!("{} -> {}: {e}", a.display(), b.display()))?;
        }
        Ok(to)
    }
}
