//! Shards benchmark: a platform with many connected accounts (1,000 by default) in the
//! emulator (in this process), synced into Parquet once by one process and once by N
//! shard processes at once (`read --shard I/N`, one output folder), each a child whose
//! peak RSS (`VmHWM`) is polled from /proc.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_shards -- --accounts 1000 --shards 4
//! ```
//!
//! Prints one JSON line per run: processes, records, wall seconds, requests, the peak RSS
//! of the largest process and the sum of the processes' peaks.

#![allow(clippy::unwrap_used)]

#[path = "common/peak_rss.rs"]
mod peak_rss;

use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use source_stripe::emulator::{self, Emulator};

#[derive(Parser)]
struct Args {
    /// Connected accounts in the emulator.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Charges per account (other objects scale with it).
    #[arg(long, default_value_t = 10)]
    size: usize,
    /// Shard processes in the second run.
    #[arg(long, default_value_t = 4)]
    shards: u32,
    #[arg(
        long,
        default_value = "customers,charges,balance_transactions,products"
    )]
    streams: String,
}

/// Runs the connector with `extra` args, polling its peak RSS; returns (records, peak kB).
async fn run(
    binary: &Path,
    config: &Path,
    out: &Path,
    streams: &str,
    extra: &[String],
) -> (u64, u64) {
    let mut child = tokio::process::Command::new(binary)
        .arg("read")
        .arg("--config")
        .arg(config)
        .arg("--output-dir")
        .arg(out)
        .arg("--streams")
        .arg(streams)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (hwm, poll) = peak_rss::watch(child.id().unwrap());
    let mut stdout = String::new();
    {
        use tokio::io::AsyncReadExt;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .await
            .unwrap();
    }
    let status = child.wait().await.unwrap();
    poll.abort();
    assert!(status.success(), "the connector failed");
    let records = stdout
        .lines()
        .find_map(|l| l.strip_prefix("total"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (records, hwm.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let exe = std::env::current_exe()?;
    let binary: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no target dir")?
        .join("source-stripe");
    let emulator = Emulator::new(emulator::Config {
        size: args.size,
        connected_accounts: args.accounts,
        ..emulator::Config::default()
    });
    // Build every account's data before the clock starts.
    for account in emulator.connected_account_ids() {
        let scope = emulator::Scope {
            account: Some(account),
            livemode: false,
        };
        for stream in args.streams.split(',') {
            emulator.ids(&scope, stream);
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = emulator::Running::spawn(emulator.clone(), listener)?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({
            "client_secret": emulator::DEFAULT_TEST_KEY,
            "api_base": running.base_url(),
            "connected_accounts": "all",
        })
        .to_string(),
    )?;
    for processes in [1, args.shards] {
        let out = dir.path().join(format!("out-{processes}"));
        let before = emulator.request_log().len();
        let started = Instant::now();
        let runs = (0..processes).map(|i| {
            let extra = if processes == 1 {
                Vec::new()
            } else {
                vec!["--shard".to_owned(), format!("{i}/{processes}")]
            };
            let (binary, config, out, streams) = (
                binary.clone(),
                config.clone(),
                out.clone(),
                args.streams.clone(),
            );
            async move { run(&binary, &config, &out, &streams, &extra).await }
        });
        let results = futures::future::join_all(runs).await;
        let wall = started.elapsed().as_secs_f64();
        let records: u64 = results.iter().map(|r| r.0).sum();
        let peak_max = results.iter().map(|r| r.1).max().unwrap_or(0);
        let peak_sum: u64 = results.iter().map(|r| r.1).sum();
        println!(
            "{}",
            json!({
                "accounts": args.accounts,
                "processes": processes,
                "records": records,
                "wall_s": (wall * 100.0).round() / 100.0,
                "requests": emulator.request_log().len() - before,
                "peak_rss_mb_largest_process": peak_max / 1024,
                "peak_rss_mb_all_processes": peak_sum / 1024,
            })
        );
    }
    Ok(())
}
