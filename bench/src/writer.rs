//! A concurrent writer on the file system under test: what a database or a backup beside
//! zone-etcd does to it. `dd` writes 4 GiB through the page cache into one file, then
//! again, until stopped (the kernel's writeback keeps the disk busy all along). Stopping
//! kills it by PID, removes its file and waits for `sync`, so the next quiet figure is
//! quiet again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::Result;

/// Bytes the writer writes per round (4 GiB, the figure of issue 16).
const ROUND_MIB: u32 = 4096;

pub struct Writer {
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    thread: Option<JoinHandle<u64>>,
    file: PathBuf,
}

impl Writer {
    /// Starts writing into `dir` (on the file system under test) and returns once the
    /// first round has written for a second.
    pub fn start(dir: &Path) -> Result<Writer> {
        let file = dir.join("concurrent-writer.bin");
        let stop = Arc::new(AtomicBool::new(false));
        let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
        let (stop2, child2, file2) = (stop.clone(), child.clone(), file.clone());
        let thread = std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop2.load(Ordering::SeqCst) {
                let spawned = Command::new("dd")
                    .arg("if=/dev/zero")
                    .arg(format!("of={}", file2.display()))
                    .arg("bs=1M")
                    .arg(format!("count={ROUND_MIB}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                let Ok(spawned) = spawned else { break };
                *child2.lock().unwrap_or_else(|e| e.into_inner()) = Some(spawned);
                if stop2.load(Ordering::SeqCst) {
                    // Stopped while this round started: do not leave it running.
                    if let Some(c) = child2.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    break;
                }
                loop {
                    let mut slot = child2.lock().unwrap_or_else(|e| e.into_inner());
                    match slot.as_mut().map(|c| c.try_wait()) {
                        Some(Ok(None)) => {}
                        _ => break,
                    }
                    drop(slot);
                    std::thread::sleep(Duration::from_millis(50));
                }
                rounds += 1;
                let _ = std::fs::remove_file(&file2);
            }
            rounds
        });
        std::thread::sleep(Duration::from_secs(1));
        if !child.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err("the concurrent writer (dd) did not start".into());
        }
        Ok(Writer {
            stop,
            child,
            thread: Some(thread),
            file,
        })
    }

    /// Stops the writer (by its PID), removes its file and syncs; returns the rounds of
    /// 4 GiB it completed.
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(child) = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let rounds = self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0);
        let _ = std::fs::remove_file(&self.file);
        let _ = Command::new("sync").status();
        rounds
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.halt();
        }
    }
}
