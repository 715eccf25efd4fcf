//! The offline demo: the emulator in-process, a sync of every stream into a folder of
//! Parquet files (the same as `read --output-dir`), and a summary a person can read.

use std::path::Path;

use crate::config::Config;
use crate::emulator;
use crate::error::{Error, Result};
use crate::streams::catalog;

/// # Errors
/// When the emulator cannot start, the folder cannot be written, or a stream fails.
pub async fn run(output_dir: &Path, size: usize) -> Result<()> {
    let running = emulator::Emulator::start(emulator::Config {
        size,
        ..emulator::Config::default()
    })
    .await
    .map_err(Error::Output)?;
    let config = Config::from_json(
        &serde_json::json!({
            "client_secret": emulator::DEFAULT_TEST_KEY,
            "api_base": running.base_url(),
            // The emulator is local: no need to hold back to Stripe's test-mode limit.
            "call_rate_limit": 10_000,
        })
        .to_string(),
    )?;
    eprintln!(
        "Stripe emulator at {} ({size} charges); syncing every stream into {} …",
        running.base_url(),
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
         Latest version of every object (views):  cd {parent} && duckdb -cmd '.read {name}/views.sql'",
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
