//! A child process's peak resident memory, for the benchmarks: its `VmHWM`, read from
//! `/proc` while it runs. (getrusage's max RSS of a child also counts the memory it
//! shared with the benchmark's own, larger, process between fork and exec.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Polls `pid`'s high-water mark every 20 ms until it exits; the figure is in kB.
pub fn watch(pid: u32) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let hwm = Arc::new(AtomicU64::new(0));
    let task = {
        let hwm = hwm.clone();
        tokio::spawn(async move {
            let path = format!("/proc/{pid}/status");
            while let Ok(status) = tokio::fs::read_to_string(&path).await {
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                match kb {
                    Some(kb) => hwm.fetch_max(kb, Ordering::Relaxed),
                    None => break, // a zombie: it has exited
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    (hwm, task)
}
