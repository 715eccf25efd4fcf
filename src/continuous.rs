//! Parquet reads into a destination (a local folder or an object-store prefix), once or
//! every period (`read --output-dir DIR --every 60s`), until stopped.
//!
//! Each period is one incremental sync from the state saved in the destination: new
//! files, then the state that covers them (see [`crate::sinks::parquet`]). Around it:
//! - **Stopping.** SIGTERM or Ctrl-C stops requesting, lets the sink write what it has
//!   (files, then their state) and exits 0; between periods it exits at once. A second
//!   signal exits at once (code 130): files and state are only ever replaced whole, so
//!   whatever was saved stays valid.
//! - **Failures.** A failing period (Stripe down, a 429 storm, a store error) is
//!   retried after a backoff that doubles up to [`MAX_BACKOFF`]; state never moves past
//!   what is written, because only the sink saves it. Only errors no retry can fix (a
//!   rejected key, a malformed state or catalog) end the process, non-zero.
//! - **One writer.** A lock file ([`crate::lock`]) names the process that writes the
//!   destination; a second one refuses to start, naming it.
//! - **Status.** `status.json` beside the state (see [`Status`]) says when the last
//!   period succeeded, what it wrote, how far the data is behind Stripe's clock and the
//!   last error.
//! - **Compaction.** After each period, a stream folder holding more than
//!   `--compact-files` (default [`crate::compact::AUTO_COMPACT_FILES`]) files is compacted ([`crate::compact`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::{Error, FailureType, Result};
use crate::shard::Shard;
use crate::sinks::parquet::{self, ParquetFolder};
use crate::sinks::store::{Destination, Remote, Staging};
use crate::streams::catalog::Selected;
use crate::sync::{self, state::InputState};

/// The status file's name (without shards).
pub const STATUS_FILE: &str = "status.json";
/// The longest wait between failed periods.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Where and how the Parquet output is written.
#[derive(Debug, Clone)]
pub struct Target {
    pub destination: Destination,
    pub shard: Option<Shard>,
    pub options: parquet::Options,
}

/// Continuous mode's options besides the period.
#[derive(Debug, Clone, Copy)]
pub struct Every {
    pub period: Duration,
    /// Compact a partition after a period once it holds more than this many files
    /// (0: never).
    pub compact_files: usize,
}

impl Target {
    /// The state file's name: `state.json`, or the shard's.
    pub fn state_file(&self) -> String {
        self.shard
            .map_or_else(|| parquet::STATE_FILE.to_owned(), |s| s.state_file())
    }

    /// The status file's name: `status.json`, or the shard's.
    pub fn status_file(&self) -> String {
        self.shard
            .map_or_else(|| STATUS_FILE.to_owned(), |s| s.status_file())
    }

    /// The lock file's name: `lock.json`, or the shard's.
    pub fn lock_file(&self) -> String {
        self.shard
            .map_or_else(|| crate::lock::LOCK_FILE.to_owned(), |s| s.lock_file())
    }

    /// Writes a small file beside the data (whole, atomically).
    ///
    /// # Errors
    /// The file system's or the store's.
    pub async fn put(&self, name: &str, content: Vec<u8>) -> io::Result<()> {
        match &self.destination {
            Destination::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                parquet::write_atomically(&dir.join(name), &content)
            }
            Destination::Remote(remote) => remote.put(name, content.into()).await,
        }
    }
}

/// The target of `read --output-dir DIR [--shard I/N]`.
///
/// # Errors
/// A destination that cannot be parsed or set up, or `--shard` without connected
/// accounts: usage errors naming the flag.
pub fn target(
    output_dir: &std::path::Path,
    shard: Option<Shard>,
    options: parquet::Options,
    config: &Config,
) -> Result<Target> {
    if shard.is_some() && !config.accounts.is_multi() {
        return Err(Error::Usage(
            "--shard splits connected accounts between processes: the config needs \
             `connected_accounts` (\"all\" or a list)"
                .to_owned(),
        ));
    }
    Ok(Target {
        destination: Destination::parse(output_dir).map_err(Error::Usage)?,
        shard,
        options,
    })
}

/// What one period wrote.
#[derive(Debug, Default)]
pub struct Period {
    pub counts: BTreeMap<String, u64>,
    pub files: usize,
    /// The sync stopped early on a signal (what it had is saved).
    pub stopped: bool,
    /// Stripe's clock when the period started (unix seconds; estimated from the last
    /// response's `Date` header, the local clock before the first).
    pub data_as_of: i64,
    /// Stripe's clock minus the local one, from the last response (seconds).
    pub clock_offset: i64,
}

/// Runs one sync into `target`, stopping early (and saving what it has) when `stop`
/// changes.
///
/// # Errors
/// The state in the destination is malformed, the destination cannot be written, or
/// the sync failed (after everything read before the failure is stored with its state).
pub async fn run_period(
    config: &Config,
    selected: &[Selected],
    target: &Target,
    clock_offset: i64,
    stop: &mut watch::Receiver<u32>,
) -> Result<Period> {
    let started_local = crate::protocol::now_ms() / 1000;
    let state_file = target.state_file();
    let (dir, _staging, remote): (PathBuf, Option<Staging>, Option<Arc<Remote>>) =
        match &target.destination {
            Destination::Local(dir) => (dir.clone(), None, None),
            Destination::Remote(remote) => {
                let staging = Staging::create()?;
                if let Some(state) = remote.get(&state_file).await? {
                    std::fs::write(staging.path().join(&state_file), &state)?;
                }
                (
                    staging.path().to_owned(),
                    Some(staging),
                    Some(remote.clone()),
                )
            }
        };
    let state_path = dir.join(&state_file);
    let state = if state_path.exists() {
        InputState::from_file(&state_path)?
    } else {
        InputState::default()
    };
    let mut plan =
        sync::ReadPlan::build(config.clone(), selected.to_vec(), &state)?.with_shard(target.shard);
    let shard = target.shard;
    let owns = move |account: Option<&str>| match (shard, account) {
        (None, _) => true,
        (Some(shard), Some(account)) => shard.includes(account),
        (Some(_), None) => false,
    };
    let mut folder = ParquetFolder::create_shared(&dir, target.options.clone(), &owns)?
        .with_state_file(&state_file)?;
    if let Some(remote) = remote {
        folder = folder.with_remote(remote);
    }
    let client = crate::client_for(plan.config())?;
    // As crate::read: the commerce streams are derived at the sink.
    let folder = crate::commerce::DeriveSink::new(folder, plan.take_commerce());
    let (tx, writer) = crate::sinks::spawn(folder);
    let seen = *stop.borrow_and_update();
    let mut stopped = seen > 0;
    let result = if stopped {
        drop(tx);
        Ok(())
    } else {
        tokio::select! {
            result = plan.run(client.clone(), tx) => result,
            _ = stop.changed() => {
                stopped = true;
                Ok(())
            }
        }
    };
    // The sync's future (and every sender into the sink) is gone: the sink closes its
    // files and saves their state.
    let sink = writer
        .await
        .map_err(|err| Error::Output(io::Error::other(err.to_string())))??
        .into_inner();
    result?;
    let local_now = crate::protocol::now_ms() / 1000;
    let clock_offset = client
        .server_time()
        .map_or(clock_offset, |server| server - local_now);
    Ok(Period {
        counts: sink.counts().clone(),
        files: sink.files().len(),
        stopped,
        data_as_of: started_local + clock_offset,
        clock_offset,
    })
}

/// The status file a monitor reads (`status.json` beside the state, rewritten after
/// every period). Times are unix seconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Status {
    /// The process writing the destination.
    pub pid: u32,
    /// `I/N` with `--shard`.
    pub shard: Option<String>,
    /// `--every` in seconds.
    pub period_secs: u64,
    /// Periods run by this process (successful or not).
    pub periods: u64,
    /// Periods that completed.
    pub successful_periods: u64,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    /// Records per stream written by the last successful period.
    pub last_success_records: BTreeMap<String, u64>,
    /// Records per stream written by this process since it started.
    pub records_since_start: BTreeMap<String, u64>,
    /// Stripe's clock that the data is complete up to: the start of the last
    /// successful period.
    pub data_as_of: Option<i64>,
    /// Stripe's clock, when this file was written, minus `data_as_of`.
    pub lag_secs: Option<i64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// When the next period starts.
    pub next_period_at: Option<i64>,
}

/// Counts SIGTERM and Ctrl-C (SIGINT): the first asks to stop, the second exits at once.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn signals() -> io::Result<watch::Receiver<u32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            count += 1;
            if count >= 2 {
                eprintln!("second signal: exiting now (files and state saved so far stay valid)");
                std::process::exit(130);
            }
            eprintln!("stopping: finishing the files in progress and saving their state");
            if tx.send(count).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Whether an error is worth another period: everything but what the user must fix.
fn retryable(err: &Error) -> bool {
    match err {
        Error::StreamsFailed { .. } | Error::Output(_) => true,
        Error::Stripe(crate::stripe::Error::Unauthorized { .. }) => false,
        other => other.failure_type() != FailureType::ConfigError,
    }
}

/// The wait after `failures` failed periods in a row: the period, doubled per failure,
/// at most [`MAX_BACKOFF`] (or the period, if that is longer).
pub fn backoff(period: Duration, failures: u32) -> Duration {
    let doubled = period.saturating_mul(1 << failures.min(10));
    doubled.min(MAX_BACKOFF.max(period))
}

/// Parses `--every`: seconds (`60`) or a duration (`90s`, `5m`, `1h`, `1m30s`; `500ms`
/// for tests).
///
/// # Errors
/// A message naming the flag.
pub fn parse_every(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("--every takes seconds or a duration such as 90s, 5m, 1h; got `{text}`");
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return (secs > 0)
            .then(|| Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let mut total_ms = 0u64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        total_ms += n * unit_ms;
    }
    if !number.is_empty() || total_ms == 0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(total_ms))
}

/// `read --output-dir …`: one sync, or with `every` one per period until a signal.
/// Prints a summary per period on stdout.
///
/// # Errors
/// A one-off sync's error; in continuous mode only errors a retry cannot fix, or the
/// lock being held by another process.
pub async fn read(
    config: Config,
    selected: Vec<Selected>,
    target: Target,
    every: Option<Every>,
) -> Result<()> {
    let mut stop = signals()?;
    let Some(every) = every else {
        let period = run_period(&config, &selected, &target, 0, &mut stop).await?;
        print_summary(&period, &target)?;
        if period.stopped {
            return Err(Error::StreamsFailed {
                message: "stopped by a signal before the sync completed; the saved state \
                          covers the files written, so the next run goes on from there"
                    .to_owned(),
                failure_type: FailureType::TransientError,
            });
        }
        return Ok(());
    };
    let Every {
        period: every,
        compact_files,
    } = every;
    let lock = crate::lock::Lock::acquire(&target, every).await?;
    let mut status = Status {
        pid: std::process::id(),
        shard: target.shard.map(|s| s.to_string()),
        period_secs: every.as_secs(),
        ..Status::default()
    };
    let mut clock_offset = 0;
    let outcome = loop {
        let now = crate::protocol::now_ms() / 1000;
        status.periods += 1;
        status.last_attempt_at = Some(now);
        let started = tokio::time::Instant::now();
        let result = run_period(&config, &selected, &target, clock_offset, &mut stop).await;
        let now = crate::protocol::now_ms() / 1000;
        let wait = match result {
            Ok(period) => {
                clock_offset = period.clock_offset;
                print_summary(&period, &target)?;
                status.last_success_at = Some(now);
                if !period.stopped {
                    status.successful_periods += 1;
                }
                status.last_success_records = period.counts.clone();
                for (stream, n) in &period.counts {
                    *status
                        .records_since_start
                        .entry(stream.clone())
                        .or_default() += n;
                }
                if !period.stopped {
                    status.data_as_of = Some(period.data_as_of);
                }
                status.consecutive_failures = 0;
                if !period.stopped
                    && compact_files > 0
                    && let Err(err) = crate::compact::compact(&target, compact_files).await
                {
                    status.last_error = Some(format!("compaction: {err}"));
                    status.last_error_at = Some(now);
                }
                if period.stopped {
                    break Ok(());
                }
                every.saturating_sub(started.elapsed())
            }
            Err(err) if retryable(&err) => {
                status.consecutive_failures += 1;
                let message = crate::secret::redact_secrets(&err.to_string());
                eprintln!(
                    "period failed ({} in a row), retrying later: {message}",
                    status.consecutive_failures
                );
                status.last_error = Some(message);
                status.last_error_at = Some(now);
                backoff(every, status.consecutive_failures - 1)
            }
            Err(err) => break Err(err),
        };
        status.lag_secs = status.data_as_of.map(|t| now + clock_offset - t);
        status.next_period_at = Some(now + wait.as_secs() as i64);
        write_status(&target, &status).await?;
        lock.heartbeat(&target).await?;
        if *stop.borrow_and_update() > 0 {
            break Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break Ok(()),
        }
    };
    status.next_period_at = None;
    let now = crate::protocol::now_ms() / 1000;
    status.lag_secs = status.data_as_of.map(|t| now + clock_offset - t);
    if let Err(err) = &outcome {
        status.last_error = Some(crate::secret::redact_secrets(&err.to_string()));
        status.last_error_at = Some(now);
    }
    write_status(&target, &status).await?;
    lock.release(&target).await?;
    outcome
}

async fn write_status(target: &Target, status: &Status) -> Result<()> {
    let content =
        serde_json::to_vec_pretty(status).map_err(|e| Error::Output(io::Error::other(e)))?;
    target.put(&target.status_file(), content).await?;
    Ok(())
}

/// What a period wrote, per stream, for people.
fn print_summary(period: &Period, target: &Target) -> Result<()> {
    let mut out = io::stdout().lock();
    let total: u64 = period.counts.values().sum();
    writeln!(out, "{:<24} {:>10}", "stream", "records")?;
    for (stream, count) in &period.counts {
        writeln!(out, "{stream:<24} {count:>10}")?;
    }
    let place = target.destination.display();
    writeln!(
        out,
        "{:<24} {total:>10}\n\n{} files in {place}; state in {place}/{}; DuckDB views in {place}/{}",
        "total",
        period.files,
        target.state_file(),
        parquet::VIEWS_FILE,
    )?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_takes_seconds_and_durations() {
        for (text, secs) in [
            ("60", 60),
            ("90s", 90),
            ("5m", 300),
            ("1h", 3_600),
            ("1m30s", 90),
        ] {
            assert_eq!(parse_every(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(parse_every("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "0", "5x", "m", "10 minutes", "-5"] {
            let err = parse_every(bad).unwrap_err();
            assert!(err.contains("--every"), "{err}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let minute = Duration::from_secs(60);
        assert_eq!(backoff(minute, 0), minute);
        assert_eq!(backoff(minute, 1), 2 * minute);
        assert_eq!(backoff(minute, 3), 8 * minute);
        assert_eq!(backoff(minute, 30), MAX_BACKOFF);
        let day = Duration::from_secs(86_400);
        assert_eq!(backoff(day, 5), day, "never shorter than the period");
    }

    #[test]
    fn only_what_the_user_must_fix_ends_continuous_mode() {
        assert!(retryable(&Error::Output(io::Error::other("disk"))));
        assert!(retryable(&Error::StreamsFailed {
            message: "x".into(),
            failure_type: FailureType::TransientError,
        }));
        assert!(!retryable(&Error::Usage("x".into())));
    }
}
