//! End-to-end sync benchmark: the emulator in this process, the connector as a child
//! process (so its CPU and memory are measured alone), its stdout drained into a sink
//! that only counts lines.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_sync -- \
//!     --size 60000 --latency-ms 250 --rate-limit 100 --mode live
//! ```
//!
//! Prints one JSON line: records; `min_pages` (Σ over streams of ⌈objects ÷ 100⌉: the
//! fewest requests that can carry the data; a child stream its parent does not embed
//! adds a call per parent: `fewest_requests`); `requests` and `requests_per_min_page`;
//! `wall_s`; `bound_s`, the time Stripe's limits allow at best: max(`min_pages` ÷ account
//! rate, the busiest endpoint's fewest requests ÷ endpoint rate); `bound_fraction` = `bound_s` ÷
//! `wall_s`; 429s seen, connector CPU seconds, records per connector CPU-second, and the
//! connector's peak RSS (its `VmHWM`, polled every 20 ms).
//!
//! `--stripe-limits` makes the emulator enforce Stripe's limits (100/s live or 25/s test
//! per account, 25/s per endpoint); `--shape` picks the data shape:
//! `even` (objects spread evenly over two years, `start_date` 2020-01-01), `recent` (90%
//! created in the last month, the rest over two years, `start_date` 2020-01-01), `seven-years`
//! (spread over seven years, Airbyte's default `start_date` 2017-01-25); `--large-objects`
//! builds them from Stripe's 2026 examples (a charge ≈ 3.4 KB of JSON):
//!
//! ```sh
//! cargo run --release --example bench_sync -- --stripe-limits --mode live \
//!     --latency-ms 250 --shape even --large-objects --size 22000
//! ```
//!
//! `--output parquet` benchmarks the Parquet output instead (`read --output-dir` into a
//! temporary folder; the records are the connector's own count), e.g. 1,000,000 records:
//!
//! ```sh
//! cargo run --release --example bench_sync -- --output parquet --size 270000
//! ```

#![allow(clippy::unwrap_used)]

#[path = "common/peak_rss.rs"]
mod peak_rss;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::json;
use source_stripe::emulator::{self, Emulator, Faults};
use tokio::io::AsyncBufReadExt;

/// Benchmark a full read of the core streams against the emulator.
#[derive(Parser)]
struct Args {
    /// Charges in the data set (customers, payment intents, refunds, balance
    /// transactions, … scale with it).
    #[arg(long, default_value_t = 20_000)]
    size: usize,
    /// Latency the emulator adds to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The emulator's rate limit per account (requests/s); 0 = none.
    #[arg(long, default_value_t = 0.0)]
    rate_limit: f64,
    /// `live` or `test`: which key the connector uses (its default rate limit follows).
    #[arg(long, default_value = "live")]
    mode: String,
    /// `call_rate_limit` for the connector; default: its own default for the mode, or
    /// unlimited (100000) when the emulator has no limit.
    #[arg(long)]
    call_rate_limit: Option<f64>,
    /// `num_workers` for the connector (default: the connector's own default).
    #[arg(long)]
    num_workers: Option<u32>,
    /// Print the emulator's requests per second to stderr while the sync runs.
    #[arg(long)]
    timeline: bool,
    /// `airbyte` (protocol lines on stdout) or `parquet` (files in a temporary folder).
    #[arg(long, default_value = "airbyte")]
    output: String,
    /// Enforce Stripe's limits in the emulator: 100/s (live) or 25/s (test) per account,
    /// 25/s per endpoint (overrides `--rate-limit`).
    #[arg(long)]
    stripe_limits: bool,
    /// The emulator's limit per endpoint (requests/s); 0 = none.
    #[arg(long, default_value_t = 0.0)]
    endpoint_rate_limit: f64,
    /// Data shape: `even`, `recent` or `seven-years` (see the module docs).
    #[arg(long, default_value = "even")]
    shape: String,
    /// Objects as large as Stripe's 2026 ones.
    #[arg(long)]
    large_objects: bool,
    /// Answers in compact JSON rather than pretty-printed as Stripe sends them.
    #[arg(long)]
    compact_json: bool,
    /// Write the emulator's request log of the sync to this file (TSV: milliseconds
    /// since the sync began, status, path, query), to see where the time goes.
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// Streams to read (full refresh).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "customers,charges,payment_intents,refunds,disputes,products,prices,balance_transactions"
    )]
    streams: Vec<String>,
}

/// The fewest requests that can carry the selected streams' data, in all and on the
/// busiest endpoint: a list stream's ⌈objects ÷ 100⌉ pages (one for an empty stream); a
/// child stream that its parent embeds, none of its own (a lower bound: more only where
/// an embedded list has more); one that is not embedded, a call per parent object (or
/// its pages, if more), all on one endpoint; a parent that is not selected but feeds a
/// selected child, its own pages.
fn fewest_requests(
    emulator: &Emulator,
    scope: &emulator::Scope,
    streams: &[String],
    counts: &[usize],
) -> (usize, usize) {
    use source_stripe::streams;
    use source_stripe::stripe::limits::endpoint_of;
    let pages = |n: usize| n.div_ceil(100).max(1);
    let mut by_endpoint: std::collections::HashMap<String, usize> = Default::default();
    let mut listed: std::collections::HashSet<&str> = Default::default();
    let mut list = |name: &'static str,
                    n: usize,
                    by_endpoint: &mut std::collections::HashMap<String, usize>| {
        if listed.insert(name) {
            let def = streams::find(name).expect("a stream of the table");
            *by_endpoint.entry(endpoint_of(def.path)).or_default() += pages(n);
        }
    };
    for (name, n) in streams.iter().zip(counts) {
        let Some(def) = streams::find(name) else {
            continue;
        };
        match &def.child {
            None => list(def.name, *n, &mut by_endpoint),
            Some(child) => {
                // Its ancestors are listed (once) whether they are selected or not.
                let mut parent = child.parent;
                loop {
                    let parent_def = streams::find(parent).expect("a parent in the table");
                    if parent_def.child.is_none() {
                        list(
                            parent_def.name,
                            emulator.ids(scope, parent).len(),
                            &mut by_endpoint,
                        );
                        break;
                    }
                    parent = parent_def.child.as_ref().expect("a child").parent;
                }
                if child.embedded.is_none() {
                    let parents = emulator.ids(scope, child.parent).len();
                    *by_endpoint.entry(endpoint_of(def.path)).or_default() +=
                        parents.max(n.div_ceil(100));
                }
            }
        }
    }
    let total = by_endpoint.values().sum();
    let largest = by_endpoint.values().copied().max().unwrap_or(0);
    (total, largest)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let connector = connector_binary()?;
    let live = args.mode == "live";
    let (history_days, recent_share, start_date) = match args.shape.as_str() {
        "even" => (730, 0.0, "2020-01-01T00:00:00Z"),
        "recent" => (730, 0.9, "2020-01-01T00:00:00Z"),
        "seven-years" => (7 * 365, 0.0, "2017-01-25T00:00:00Z"),
        other => {
            return Err(format!("unknown --shape {other}: even, recent or seven-years").into());
        }
    };
    let (rate_limit, endpoint_rate_limit) = if args.stripe_limits {
        (if live { 100.0 } else { 25.0 }, 25.0)
    } else {
        (args.rate_limit, args.endpoint_rate_limit)
    };
    let emulator = Emulator::new(emulator::Config {
        size: args.size,
        history_days,
        recent_share,
        large_objects: args.large_objects,
        compact_json: args.compact_json,
        ..emulator::Config::default()
    });
    let scope = emulator::Scope {
        account: None,
        livemode: live,
    };
    // Build the data set before the clock starts.
    let counts: Vec<usize> = args
        .streams
        .iter()
        .map(|s| emulator.ids(&scope, s).len())
        .collect();
    let expected: usize = counts.iter().sum();
    let (min_pages, largest_pages) = fewest_requests(&emulator, &scope, &args.streams, &counts);
    emulator.set_faults(Faults {
        rate_limit_per_sec: (rate_limit > 0.0).then_some(rate_limit),
        endpoint_rate_limit_per_sec: (endpoint_rate_limit > 0.0).then_some(endpoint_rate_limit),
        latency: Duration::from_millis(args.latency_ms),
        ..Faults::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = emulator::Running::spawn(emulator.clone(), listener)?;

    let dir = tempfile::tempdir()?;
    let mut config = json!({
        "client_secret": if live { emulator::DEFAULT_LIVE_KEY } else { emulator::DEFAULT_TEST_KEY },
        "api_base": running.base_url(),
        "start_date": start_date,
    });
    match (args.num_workers, rate_limit) {
        (Some(workers), _) => config["num_workers"] = json!(workers),
        // No limit: as many in flight as live mode's default, not the 200 that an
        // unlimited rate would give.
        (None, limit) if limit <= 0.0 => config["num_workers"] = json!(76),
        _ => {}
    }
    match (args.call_rate_limit, rate_limit) {
        (Some(limit), _) => config["call_rate_limit"] = json!(limit),
        (None, limit) if limit <= 0.0 => config["call_rate_limit"] = json!(100_000),
        _ => {}
    }
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string())?;
    let streams: Vec<_> = args
        .streams
        .iter()
        .map(|name| json!({"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                          "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}))
        .collect();
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, json!({ "streams": streams }).to_string())?;

    let requests_before = emulator.request_log().len();
    // `cargo run` execs this binary, so the children cargo reaped (rustc) are counted
    // in RUSAGE_CHILDREN already: only what is added from here on is the connector's.
    let usage_before = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let started = Instant::now();
    let out_dir = dir.path().join("parquet");
    let parquet = args.output == "parquet";
    let mut command = tokio::process::Command::new(&connector);
    command.arg("read").arg("--config").arg(&config_path);
    if parquet {
        command
            .arg("--output-dir")
            .arg(&out_dir)
            .arg("--streams")
            .arg(args.streams.join(","));
    } else {
        command.arg("--catalog").arg(&catalog_path);
    }
    let mut child = command.stdout(std::process::Stdio::piped()).spawn()?;
    // The connector's own high-water mark (not getrusage's: see peak_rss).
    let hwm = match child.id() {
        Some(pid) => peak_rss::watch(pid).0,
        None => std::sync::Arc::default(),
    };
    let timeline = args.timeline.then(|| {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let mut last = emulator.request_log().len();
            let mut second = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let log = emulator.request_log();
                let now = log.len();
                second += 1;
                // Per endpoint too, biggest first: which stream falls short of its limit.
                let mut by_path: std::collections::BTreeMap<&str, usize> = Default::default();
                for request in &log[last..now] {
                    *by_path
                        .entry(request.path.trim_start_matches("/v1/"))
                        .or_default() += 1;
                }
                let mut by_path: Vec<_> = by_path.into_iter().collect();
                by_path.sort_by_key(|b| std::cmp::Reverse(b.1));
                let detail: Vec<String> = by_path.iter().map(|(p, n)| format!("{p}={n}")).collect();
                eprintln!(
                    "t={second:>3}s requests/s={} {}",
                    now - last,
                    detail.join(" ")
                );
                last = now;
            }
        })
    });
    let mut stdout =
        tokio::io::BufReader::with_capacity(1 << 20, child.stdout.take().ok_or("no stdout")?);
    // Count lines without parsing them: the sink a real destination would be.
    let mut records = 0u64;
    let mut line = Vec::with_capacity(8192);
    loop {
        line.clear();
        if stdout.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        if line.starts_with(b"{\"type\":\"RECORD\"") {
            records += 1;
        }
        // The connector's summary per stream (records, requests, 429s, time), on stderr.
        if line.starts_with(b"{\"type\":\"LOG\"") {
            let log: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
            if let Some(message) = log["log"]["message"]
                .as_str()
                .filter(|m| m.contains(" done: "))
            {
                eprintln!("{message}");
            }
        }
        // Parquet output's summary: `total   N`.
        if parquet && line.starts_with(b"total ") {
            let text = String::from_utf8_lossy(&line);
            records = text
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    let status = child.wait().await?;
    if let Some(timeline) = timeline {
        timeline.abort();
    }
    // The connector is the only child this process waited for since `usage_before`:
    // its exact CPU time. (Not its max_rss: that counts the pages of this process it
    // shared between fork and exec.)
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu_of = |u: &nix::sys::resource::Usage| seconds(u.user_time()) + seconds(u.system_time());
    let cpu = cpu_of(&usage) - cpu_of(&usage_before);
    let peak_kb = match hwm.load(std::sync::atomic::Ordering::Relaxed) {
        0 => usage.max_rss() as u64,
        kb => kb,
    };
    let wall = started.elapsed().as_secs_f64();
    let log = emulator.request_log();
    let log = &log[requests_before..];
    let requests = log.len();
    if let Some(path) = &args.request_log {
        let start = log.first().map_or(0, |r| r.received_ms);
        let lines: String = log
            .iter()
            .map(|r| {
                let at = r.received_ms - start;
                format!("{at}\t{}\t{}\t{}\n", r.status, r.path, r.query)
            })
            .collect();
        std::fs::write(path, lines)?;
    }
    let throttled = log.iter().filter(|r| r.status == 429).count();
    let limit = if rate_limit > 0.0 {
        rate_limit
    } else {
        f64::NAN
    };
    // The time Stripe's limits allow at best (requests beyond `min_pages` are waste).
    let bound = (min_pages as f64 / limit).max(if endpoint_rate_limit > 0.0 {
        largest_pages as f64 / endpoint_rate_limit
    } else {
        0.0
    });
    let parquet_bytes: u64 = if parquet { dir_size(&out_dir) } else { 0 };
    let report = json!({
        "exit_ok": status.success(),
        "output": args.output,
        "shape": args.shape,
        "large_objects": args.large_objects,
        "compact_json": args.compact_json,
        "mode": args.mode,
        "size": args.size,
        "latency_ms": args.latency_ms,
        "records": records,
        "expected_records": expected,
        "min_pages": min_pages,
        "requests": requests,
        "requests_per_min_page": round(requests as f64 / min_pages as f64),
        "wall_s": round(wall),
        "bound_s": if limit.is_nan() { json!(null) } else { json!(round(bound)) },
        "bound_fraction": if limit.is_nan() { json!(null) } else { json!(round(bound / wall)) },
        "records_per_sec": round(records as f64 / wall),
        "requests_per_sec": round(requests as f64 / wall),
        "rate_limit": if limit.is_nan() { json!(null) } else { json!(limit) },
        "endpoint_rate_limit": if endpoint_rate_limit > 0.0 { json!(endpoint_rate_limit) } else { json!(null) },
        "http_429": throttled,
        "connector_cpu_secs": round(cpu),
        "records_per_cpu_sec": round(records as f64 / cpu.max(0.01)),
        "peak_rss_mb": round(peak_kb as f64 / 1024.0),
        "parquet_mb": round(parquet_bytes as f64 / 1e6),
    });
    println!("{report}");
    if records as usize != expected {
        return Err(format!("lost records: {records} of {expected}").into());
    }
    Ok(())
}

/// Bytes of every file under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => folders.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The release (or debug) `source-stripe` next to this example's binary.
fn connector_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no target dir")?;
    let bin = dir.join("source-stripe");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        )
        .into());
    }
    // A binary older than the sources measures old code: say so.
    let built = std::fs::metadata(&bin)?.modified()?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if newest_change(&src).is_some_and(|changed| changed > built) {
        eprintln!(
            "warning: {} is older than the sources in {}: run `cargo build --release` to measure them",
            bin.display(),
            src.display()
        );
    }
    Ok(bin)
}

/// The latest modification time of the files under `dir`.
fn newest_change(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                newest_change(&entry.path())
            } else {
                meta.modified().ok()
            }
        })
        .max()
}
