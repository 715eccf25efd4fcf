//! The offline demo: the emulator in-process, a full sync of every stream into a folder,
//! and a summary a person can read.

use std::path::Path;

use crate::config::Config;
use crate::emulator;
use crate::error::{Error, Result};
use crate::sinks::folder::Folder;
use crate::streams::catalog;
use crate::sync::{ReadPlan, state::InputState};

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
    let state_path = output_dir.join("state.json");
    let state = if state_path.exists() {
        InputState::from_file(&state_path)?
    } else {
        InputState::default()
    };
    let plan = ReadPlan::build(config, catalog::all_incremental(), &state)?;
    let started = std::time::Instant::now();
    let client = crate::client_for(plan.config())?;
    let requests = client.clone();
    let (tx, writer) = crate::sinks::spawn(Folder::create(output_dir)?);
    let result = plan.run(client, tx).await;
    let folder = writer
        .await
        .map_err(|err| Error::Output(std::io::Error::other(err.to_string())))??;
    result?;
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = folder.counts().values().sum();
    println!("{:<24} {:>10}", "stream", "records");
    for (stream, count) in folder.counts() {
        println!("{stream:<24} {count:>10}");
    }
    println!(
        "{:<24} {total:>10}\n\n{total} records in {seconds:.2} s ({} requests) → {}/<stream>.jsonl, state in {}",
        "total",
        requests
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        output_dir.display(),
        state_path.display()
    );
    Ok(())
}
