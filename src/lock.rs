//! One writer per destination: continuous mode and `compact` hold a lock file
//! (`lock.json`, or the shard's `lock.shard-I-of-N.json`) beside the state, created only
//! if absent (`O_EXCL` locally, a conditional PUT on object stores), naming the process
//! that holds it. A second process refuses to start, naming the first.
//!
//! A lock left by a process that died is taken over: locally when the named process no
//! longer runs on this host; on an object store (where other hosts cannot be asked) when
//! its heartbeat, rewritten after every period, is older than its `stale_after_secs`
//! (three periods, at least ten minutes).

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::continuous::Target;
use crate::error::{Error, Result};
use crate::sinks::store::Destination;

/// The lock file's name (without shards).
pub const LOCK_FILE: &str = "lock.json";

/// What the lock file says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds of the last heartbeat.
    pub heartbeat_at: i64,
    pub stale_after_secs: i64,
}

/// A held lock; [`Lock::release`] removes it.
#[derive(Debug)]
pub struct Lock {
    holder: Holder,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn now() -> i64 {
    crate::protocol::now_ms() / 1000
}

impl Lock {
    /// Takes the target's lock for a process that writes every `period`.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the holder when another live process holds it; I/O and
    /// store errors.
    pub async fn acquire(target: &Target, period: Duration) -> Result<Lock> {
        let holder = Holder {
            pid: std::process::id(),
            host: host_name(),
            started_at: now(),
            heartbeat_at: now(),
            stale_after_secs: (3 * period.as_secs() as i64).max(600),
        };
        let name = target.lock_file();
        for _ in 0..2 {
            match create_new(target, &name, &holder).await {
                Ok(()) => return Ok(Lock { holder }),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                    eprintln!(
                        "note: this object store cannot create objects conditionally; \
                         the lock {name} is written without a check"
                    );
                    put(target, &name, &holder).await?;
                    return Ok(Lock { holder });
                }
                Err(err) => return Err(err.into()),
            }
            let existing = read(target, &name).await?;
            match existing {
                Some(other) if !is_stale(target, &other) => {
                    return Err(Error::Usage(format!(
                        "{} is being written by process {} on {} (since {}, lock file {}/{name}); \
                         stop it first, or remove the lock file if that process is gone",
                        target.destination.display(),
                        other.pid,
                        other.host,
                        other.started_at,
                        target.destination.display(),
                    )));
                }
                Some(other) => eprintln!(
                    "note: taking over the lock of process {} on {}, which is gone",
                    other.pid, other.host
                ),
                None => {}
            }
            remove(target, &name).await?;
        }
        Err(Error::Usage(format!(
            "cannot take the lock {}/{name}: another process keeps creating it",
            target.destination.display()
        )))
    }

    /// Rewrites the lock with a fresh heartbeat.
    ///
    /// # Errors
    /// I/O and store errors.
    pub async fn heartbeat(&self, target: &Target) -> Result<()> {
        let mut holder = self.holder.clone();
        holder.heartbeat_at = now();
        put(target, &target.lock_file(), &holder).await?;
        Ok(())
    }

    /// Removes the lock.
    ///
    /// # Errors
    /// I/O and store errors.
    pub async fn release(self, target: &Target) -> Result<()> {
        remove(target, &target.lock_file()).await?;
        Ok(())
    }
}

fn is_stale(target: &Target, holder: &Holder) -> bool {
    match &target.destination {
        Destination::Local(_) if holder.host == host_name() => {
            !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists()
        }
        _ => now() - holder.heartbeat_at > holder.stale_after_secs,
    }
}

fn encode(holder: &Holder) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(holder).map_err(io::Error::other)
}

async fn create_new(target: &Target, name: &str, holder: &Holder) -> io::Result<()> {
    let content = encode(holder)?;
    match &target.destination {
        Destination::Local(dir) => {
            use std::io::Write;
            std::fs::create_dir_all(dir)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(name))?;
            file.write_all(&content)?;
            file.sync_all()
        }
        Destination::Remote(remote) => remote.put_new(name, content.into()).await,
    }
}

async fn put(target: &Target, name: &str, holder: &Holder) -> io::Result<()> {
    target.put(name, encode(holder)?).await
}

async fn read(target: &Target, name: &str) -> io::Result<Option<Holder>> {
    let bytes = match &target.destination {
        Destination::Local(dir) => match std::fs::read(dir.join(name)) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        },
        Destination::Remote(remote) => remote.get(name).await?.map(|b| b.to_vec()),
    };
    // An unreadable lock (a crash while it was written) counts as a dead holder's.
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

async fn remove(target: &Target, name: &str) -> io::Result<()> {
    match &target.destination {
        Destination::Local(dir) => match std::fs::remove_file(dir.join(name)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        },
        Destination::Remote(remote) => remote.delete(name).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &std::path::Path) -> Target {
        Target {
            destination: Destination::Local(dir.to_owned()),
            shard: None,
            options: crate::sinks::parquet::Options::default(),
        }
    }

    #[tokio::test]
    async fn a_second_writer_is_refused_by_name_and_a_dead_ones_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let lock = Lock::acquire(&target, Duration::from_secs(60))
            .await
            .unwrap();
        let err = Lock::acquire(&target, Duration::from_secs(60))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("process {}", std::process::id())) && err.contains("lock.json"),
            "{err}"
        );
        lock.release(&target).await.unwrap();
        assert!(!dir.path().join(LOCK_FILE).exists());
        // A lock naming a process that is gone.
        let dead = Holder {
            pid: u32::MAX - 1,
            host: host_name(),
            started_at: 0,
            heartbeat_at: 0,
            stale_after_secs: 600,
        };
        std::fs::write(dir.path().join(LOCK_FILE), encode(&dead).unwrap()).unwrap();
        let lock = Lock::acquire(&target, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lock.holder.pid, std::process::id());
        lock.release(&target).await.unwrap();
    }
}
