//! Continuous mode (`read --output-dir DIR --every …`) and compaction, against the
//! emulator: changes reach the latest-version views within a period, idle periods cost a
//! handful of requests, a failing period is retried without moving the state, SIGTERM at any point leaves files and state consistent, one
//! writer per folder, and compaction (also killed half way) keeps the views' rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use source_stripe::emulator::{Advance, DEFAULT_TEST_KEY, Faults};
use source_stripe::streams::{Cursor, STREAMS};

use crate::parquet::{files_under, latest, normalize, read_stream};
use crate::util::{BIN, Files, emulator_ids, path, platform_test, start_emulator};

/// Every stream but `account` (one object, read whole every period: one more request).
fn streams_but_account() -> String {
    STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts the connector; its stderr is read as it comes (a full pipe would block it) and
/// handed over by the returned task when it exits.
fn spawn(args: &[&str]) -> (tokio::process::Child, tokio::task::JoinHandle<String>) {
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        pipe.read_to_string(&mut text).await.ok();
        text
    });
    (child, stderr)
}

/// `read` into `dir` every `every`, without automatic compaction (the tests count files).
fn every<'a>(config: &'a Path, dir: &'a Path, streams: &'a str, every: &'a str) -> [&'a str; 11] {
    [
        "read",
        "--config",
        path(config),
        "--output-dir",
        path(dir),
        "--streams",
        streams,
        "--every",
        every,
        "--compact-files",
        "0",
    ]
}

fn status(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("status.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn successes(dir: &Path) -> u64 {
    status(dir).map_or(0, |s| s["successful_periods"].as_u64().unwrap_or(0))
}

/// Waits (at most 120 s, the child still running) until `done`.
async fn wait_until(child: &mut tokio::process::Child, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the process ended while waiting for {what}"
        );
        assert!(Instant::now() < deadline, "no {what} after 120 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn terminate(
    mut child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
) -> (i32, String) {
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let output = tokio::time::timeout(Duration::from_secs(120), async {
        let status = child.wait().await.unwrap();
        (status.code().unwrap_or(-1), stderr.await.unwrap())
    })
    .await
    .expect("exits within 120 s of SIGTERM");
    crate::util::assert_no_secrets(&output.1);
    output
}

/// The latest version of every object of every stream, as normalized records.
fn views(dir: &Path) -> BTreeMap<String, BTreeMap<(String, String), Value>> {
    STREAMS
        .iter()
        .map(|s| {
            let rows = read_stream(dir, s.name);
            let view = latest(&rows)
                .into_iter()
                .map(|(k, row)| (k, normalize(&row.record)))
                .collect();
            (s.name.to_owned(), view)
        })
        .collect()
}

/// The latest-version views hold exactly the emulator's objects.
fn assert_views_match(dir: &Path, emu: &source_stripe::emulator::Emulator, when: &str) {
    let all: Vec<&str> = STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|s| s.name)
        .collect();
    assert_views_match_for(dir, emu, when, &all);
}

fn assert_views_match_for(
    dir: &Path,
    emu: &source_stripe::emulator::Emulator,
    when: &str,
    streams: &[&str],
) {
    for stream in streams
        .iter()
        .map(|s| source_stripe::streams::find(s).unwrap())
    {
        let got: BTreeSet<String> = latest(&read_stream(dir, stream.name))
            .keys()
            .map(|k| k.1.clone())
            .collect();
        assert_eq!(
            got,
            emulator_ids(emu, &platform_test(), stream.name),
            "{when}: {} latest versions",
            stream.name
        );
    }
}

/// Every visible file is a whole Parquet file, and nothing else is visible but the
/// state, views, status and lock.
fn assert_consistent(dir: &Path) {
    let (parquet, other) = files_under(dir);
    for file in &parquet {
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{} is a whole file: {e}", file.display()));
    }
    for file in other {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            ["state.json", "views.sql", "status.json", "lock.json"].contains(&name.as_str()),
            "unexpected visible file {name}"
        );
    }
}

/// While the emulator changes data, each change is in the views once a period that
/// started after it has finished; an idle period makes at most (`created` streams +
/// ⌈event types ÷ 20⌉) requests; the status file tells; SIGTERM exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn continuous_mode_keeps_the_views_current_and_idle_periods_are_cheap() {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let dir = files.dir.path().join("stripe");
    let streams = streams_but_account();
    let args = every(&config, &dir, &streams, "300ms");
    let (mut child, stderr) = spawn(&args);
    wait_until(&mut child, "a first period", || successes(&dir) >= 1).await;
    assert_views_match(&dir, emu, "after the first period");

    // A second process on the same folder refuses, naming the first.
    let second = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .unwrap();
    assert_ne!(second.status.code(), Some(0));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains(&format!("process {}", child.id().unwrap())) && said.contains("lock.json"),
        "{said}"
    );

    for round in 0..3 {
        let before = successes(&dir);
        let report = emu.advance(&Advance {
            seconds: 120,
            creates: 2,
            updates: 6,
            deletes: 1,
            ..Advance::default()
        });
        // The period in flight may have missed the change; the next one cannot.
        wait_until(&mut child, "two more periods", || {
            successes(&dir) >= before + 2
        })
        .await;
        assert_views_match(&dir, emu, &format!("round {round}"));
        let rows: BTreeMap<&str, Vec<crate::parquet::Row>> = STREAMS
            .iter()
            .map(|s| (s.name, read_stream(&dir, s.name)))
            .collect();
        for change in report.changes.iter().filter(|c| !c.event_type.is_empty()) {
            let stream = source_stripe::streams::find(&change.stream).unwrap();
            if stream.cursor != Some(Cursor::Updated) {
                continue;
            }
            let view = latest(&rows[stream.name]);
            let last = report
                .changes
                .iter()
                .filter(|c| c.id == change.id && !c.event_type.is_empty())
                .map(|c| c.at)
                .max();
            match view.get(&(String::new(), change.id.clone())) {
                Some(row) => assert_eq!(row.updated, last, "round {round}: {}", change.id),
                None => assert!(
                    !emulator_ids(emu, &platform_test(), stream.name).contains(&change.id),
                    "round {round}: {} is missing",
                    change.id
                ),
            }
        }
    }

    // Idle periods: count the emulator's requests across whole periods.
    let created = STREAMS
        .iter()
        .filter(|s| s.cursor == Some(Cursor::Created))
        .count();
    let types: BTreeSet<&str> = STREAMS
        .iter()
        .filter(|s| s.cursor == Some(Cursor::Updated))
        .flat_map(|s| s.event_types.iter().copied())
        .collect();
    let bound = (created + types.len().div_ceil(20)) as u64;
    let s0 = successes(&dir);
    let l0 = emu.request_log().len() as u64;
    wait_until(&mut child, "four idle periods", || {
        successes(&dir) >= s0 + 4
    })
    .await;
    let l1 = emu.request_log().len() as u64;
    let s1 = successes(&dir);
    // Periods s0+1 ..= s1, and at most one more begun.
    let periods = s1 - s0 + 1;
    assert!(
        l1 - l0 <= periods * bound,
        "{} requests in at most {periods} idle periods; bound {bound} per period",
        l1 - l0
    );
    let status = status(&dir).unwrap();
    assert!(status["last_success_at"].is_i64(), "{status}");
    assert!(status["lag_secs"].is_i64(), "{status}");
    assert!(status["records_since_start"]["customers"].as_u64().unwrap() > 0);
    assert!(status["last_error"].is_null(), "{status}");

    let (code, stderr) = terminate(child, stderr).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!dir.join("lock.json").exists(), "the lock is released");
    assert_consistent(&dir);

    // Exactly one idle period, measured alone: the one-off read is the same period.
    let l0 = emu.request_log().len() as u64;
    let out = tokio::process::Command::new(BIN)
        .args(&args[..7])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let idle = emu.request_log().len() as u64 - l0;
    assert!(
        idle <= bound,
        "an idle period made {idle} requests; bound {bound}"
    );
}

/// SIGTERM at several points (before the first file, mid first sync, between periods,
/// twice in a row) exits 0 (130 for the second signal) with whole files and a state that
/// the next run resumes from without losing anything.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_at_any_point_leaves_files_and_state_consistent() {
    let emulator = start_emulator(300).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 20, "num_workers": 4}),
    );
    for point in ["at once", "after a file", "after a period", "twice"] {
        emu.set_faults(Faults {
            latency: Duration::from_millis(10),
            ..Faults::default()
        });
        let dir = files.dir.path().join(point.replace(' ', "-"));
        let args = [
            "read",
            "--config",
            path(&config),
            "--output-dir",
            path(&dir),
            "--streams",
            "customers,charges,balance_transactions",
            "--rows-per-file",
            "40",
            "--every",
            "1s",
        ];
        let (mut child, stderr) = spawn(&args);
        // The lock is taken after the signal handlers are in place.
        wait_until(&mut child, "the lock", || dir.join("lock.json").exists()).await;
        match point {
            "after a file" | "twice" => {
                wait_until(&mut child, "a file", || {
                    dir.exists() && !files_under(&dir).0.is_empty()
                })
                .await
            }
            "after a period" => wait_until(&mut child, "a period", || successes(&dir) >= 1).await,
            _ => {}
        }
        if point == "twice" {
            let pid = Pid::from_raw(child.id().unwrap() as i32);
            kill(pid, Signal::SIGTERM).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (code, stderr) = terminate(child, stderr).await;
        // Two signals 1 ms apart: a loaded machine may finish the period in flight (and
        // exit 0) before the second arrives; either way nothing saved is lost.
        let expected: &[i32] = if point == "twice" { &[130, 0] } else { &[0] };
        assert!(expected.contains(&code), "{point}: exit {code}: {stderr}");
        if dir.exists() {
            assert_consistent(&dir);
        }
        emu.set_faults(Faults::default());
        let resumed = tokio::process::Command::new(BIN)
            .args(&args[..9])
            .output()
            .await
            .unwrap();
        assert!(
            resumed.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        for stream in ["customers", "charges", "balance_transactions"] {
            let got: BTreeSet<String> = latest(&read_stream(&dir, stream))
                .keys()
                .map(|k| k.1.clone())
                .collect();
            assert_eq!(
                got,
                emulator_ids(emu, &platform_test(), stream),
                "{point}: {stream} after resuming"
            );
        }
    }
}

/// A 429 storm that Stripe says not to retry fails every period: the process backs off
/// and keeps going, says so in the status file, and never moves the state; once Stripe
/// answers again, the changes made during the storm reach the views.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_period_backs_off_and_retries_without_moving_the_state() {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let dir = files.dir.path().join("stripe");
    let streams = streams_but_account();
    let (mut child, stderr) = spawn(&every(&config, &dir, &streams, "200ms"));
    wait_until(&mut child, "a first period", || successes(&dir) >= 1).await;

    emu.set_faults(Faults {
        no_retry_429_rate: 1.0,
        ..Faults::default()
    });
    let report = emu.advance(&Advance {
        seconds: 120,
        creates: 2,
        updates: 4,
        deletes: 1,
        ..Advance::default()
    });
    let dir_ref = &dir;
    let failures = move |n: u64| {
        move || status(dir_ref).is_some_and(|s| s["consecutive_failures"].as_u64() >= Some(n))
    };
    wait_until(&mut child, "a failed period", failures(1)).await;
    // The period in flight when the storm began may have saved some state; from the
    // first failure on, nothing is read, so nothing may move.
    let state = std::fs::read(dir.join("state.json")).unwrap();
    let succeeded = successes(&dir);
    wait_until(&mut child, "three failed periods", failures(3)).await;
    assert_eq!(
        std::fs::read(dir.join("state.json")).unwrap(),
        state,
        "the state moved during failed periods"
    );
    let during = status(&dir).unwrap();
    assert_eq!(successes(&dir), succeeded, "{during}");
    let error = during["last_error"].as_str().unwrap_or_default();
    assert!(
        !error.is_empty() && during["last_error_at"].is_i64(),
        "{during}"
    );
    let next = during["next_period_at"].as_i64().unwrap();
    let attempt = during["last_attempt_at"].as_i64().unwrap();
    assert!(
        next >= attempt,
        "the next period is scheduled after the last: {during}"
    );

    emu.set_faults(Faults::default());
    wait_until(&mut child, "a period after the storm", || {
        successes(&dir) > succeeded
    })
    .await;
    assert_views_match(&dir, emu, "after the storm");
    let after = status(&dir).unwrap();
    assert_eq!(after["consecutive_failures"], 0, "{after}");
    assert!(
        !report.changes.is_empty(),
        "the storm hid real changes from the sync"
    );
    let (code, stderr) = terminate(child, stderr).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("retrying later"), "{stderr}");
    assert_consistent(&dir);
}

fn file_count(dir: &Path) -> usize {
    files_under(dir).0.len()
}

/// 50 periods with changes between them, then `compact`: the latest-version views hold
/// the same rows, in at most two files per stream; a compaction killed at several points
/// leaves the views right, and a later one finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_periods_then_compaction_keep_the_views() {
    let emulator = start_emulator(20).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let dir = files.dir.path().join("stripe");
    let streams = "customers,charges,refunds,products,prices,balance_transactions";
    let (mut child, stderr) = spawn(&every(&config, &dir, streams, "100ms"));
    let mut seen = 0;
    while seen < 50 {
        wait_until(&mut child, "a period", || successes(&dir) > seen).await;
        seen = successes(&dir);
        emu.advance(&Advance {
            seconds: 60,
            creates: 1,
            updates: 2,
            deletes: usize::from(seen % 7 == 0),
            ..Advance::default()
        });
    }
    let last = successes(&dir);
    wait_until(&mut child, "a period after the last change", || {
        successes(&dir) >= last + 2
    })
    .await;
    let (code, stderr) = terminate(child, stderr).await;
    assert_eq!(code, 0, "{stderr}");
    let before = views(&dir);
    let selected: Vec<&str> = streams.split(',').collect();
    assert_views_match_for(&dir, emu, "after 50 periods", &selected);
    let files_before = file_count(&dir);
    assert!(files_before > 100, "{files_before} files after 50 periods");

    // Kill compactions at several points, on copies of the folder.
    for delay_ms in [0u64, 60, 300] {
        let copy = files.dir.path().join(format!("copy-{delay_ms}"));
        copy_dir(&dir, &copy);
        let mut compaction = tokio::process::Command::new(BIN)
            .args(["compact", "--output-dir", path(&copy)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if compaction.kill().await.is_err() {
            // It had finished.
        }
        if copy.join("lock.json").exists() {
            // The killed process is gone: its lock is taken over (same host, dead pid).
        }
        assert_eq!(
            views(&copy),
            before,
            "killed after {delay_ms} ms: same views"
        );
        let finished = tokio::process::Command::new(BIN)
            .args(["compact", "--output-dir", path(&copy)])
            .output()
            .await
            .unwrap();
        assert!(
            finished.status.success(),
            "{}",
            String::from_utf8_lossy(&finished.stderr)
        );
        assert_eq!(
            views(&copy),
            before,
            "compaction after a kill at {delay_ms} ms"
        );
    }

    let out = tokio::process::Command::new(BIN)
        .args(["compact", "--output-dir", path(&dir)])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files_before"], files_before, "{report}");
    assert_eq!(
        views(&dir),
        before,
        "compaction keeps the latest-version rows"
    );
    assert_consistent(&dir);
    for stream in streams.split(',') {
        let n = files_under(&dir.join(stream)).0.len();
        assert!(n <= 2, "{stream}: {n} files after compaction");
    }
    let total_rows: usize = streams.split(',').map(|s| read_stream(&dir, s).len()).sum();
    assert_eq!(report["rows"], total_rows, "every row kept: {report}");
}

fn copy_dir(from: &Path, to: &PathBuf) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
