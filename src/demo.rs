//! The offline demo: the emulator in-process, a sync of every stream into a folder of
//! Parquet files (the same as `read --output-dir`), and a summary a person can read.
//!
//! The first run reads everything. Each later run in the same folder replays the
//! emulator to where the previous run left it (same seed, same clock), lets an hour of
//! activity happen (new customers and charges, refunds, disputes, deletions) and reads
//! incrementally from the folder's state: only those changes arrive, as new files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::emulator;
use crate::error::Result;
use crate::streams::catalog;

/// What the demo remembers in its folder to rebuild the emulator of the last run.
#[derive(Serialize, Deserialize)]
struct DemoRun {
    size: usize,
    clock_start: i64,
    runs: u32,
}

const MEMO_FILE: &str = ".demo.json";

/// The activity between two demo runs.
fn an_hour_of_activity() -> emulator::Advance {
    emulator::Advance {
        seconds: 3_600,
        creates: 20,
        updates: 30,
        deletes: 5,
        ..emulator::Advance::default()
    }
}

/// # Errors
/// When the emulator cannot start, the folder cannot be written, or a stream fails.
pub async fn run(output_dir: &Path, size: usize) -> Result<()> {
    std::fs::create_dir_all(output_dir)?;
    let memo_path = output_dir.join(MEMO_FILE);
    let previous: Option<DemoRun> = std::fs::read(&memo_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let memo = match previous {
        Some(memo) => {
            if memo.size != size {
                eprintln!(
                    "note: this folder was started with --size {}; keeping that size",
                    memo.size
                );
            }
            memo
        }
        None => DemoRun {
            size,
            clock_start: crate::protocol::now_ms() / 1000,
            runs: 0,
        },
    };
    let emulator = emulator::Emulator::new(emulator::Config {
        size: memo.size,
        now: Some(memo.clock_start),
        frozen_clock: true,
        ..emulator::Config::default()
    });
    for _ in 0..memo.runs {
        emulator.advance(&an_hour_of_activity());
    }
    if memo.runs > 0 {
        let report = emulator.advance(&an_hour_of_activity());
        eprintln!(
            "run {}: an hour of activity in the emulated account ({} objects created, changed or deleted); reading only the changes",
            memo.runs + 1,
            report.changes.len()
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = emulator::Running::spawn(emulator, listener)?;
    let config = Config::from_json(
        &serde_json::json!({
            "client_secret": emulator::DEFAULT_TEST_KEY,
            "api_base": running.base_url(),
            // The emulator is local: no need to hold back to Stripe's test-mode limit.
            "call_rate_limit": 10_000,
            // The emulator lists every event at once: nothing to wait for.
            "event_settle_secs": 0,
        })
        .to_string(),
    )?;
    eprintln!(
        "Stripe emulator at {} ({} charges); syncing every stream into {} …",
        running.base_url(),
        memo.size,
        output_dir.display()
    );
    let started = std::time::Instant::now();
    let folder = crate::read_parquet(
        config,
        catalog::all_incremental(),
        output_dir,
        crate::sinks::parquet::Options::default(),
    )
    .await?;
    let memo = DemoRun {
        runs: memo.runs + 1,
        ..memo
    };
    std::fs::write(
        &memo_path,
        serde_json::to_vec(&memo).map_err(std::io::Error::other)?,
    )?;

    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = folder.counts().values().sum();
    println!("{:<24} {:>10}", "stream", "records");
    for (stream, count) in folder.counts() {
        println!("{stream:<24} {count:>10}");
    }
    let dir = output_dir.display();
    println!(
        "{:<24} {total:>10}\n\n{total} records in {seconds:.2} s → {dir}/<stream>/*.parquet, state in {dir}/state.json\n\
         Query it:  duckdb -c \"SELECT status, count(*), sum(amount)/100 AS total FROM '{dir}/charges/*.parquet' GROUP BY ALL\"\n\
         Latest version of every object (views):  cd {parent} && duckdb -cmd '.read {name}/views.sql'\n\
         Revenue by month and currency (the commerce view):  cd {parent} && duckdb -cmd '.read {name}/views.sql' -c \"SELECT strftime(date_trunc('month', created), '%Y-%m') AS month, currency, sum(amount) AS revenue FROM commerce_payments WHERE status = 'Paid' GROUP BY ALL ORDER BY ALL\"\n\
         Run the demo again for an incremental sync of the next hour's changes.",
        "total",
        parent = output_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| ".".to_owned(), |p| p.display().to_string()),
        name = output_dir
            .file_name()
            .map_or_else(|| dir.to_string(), |n| n.to_string_lossy().into_owned()),
    );
    Ok(())
}
