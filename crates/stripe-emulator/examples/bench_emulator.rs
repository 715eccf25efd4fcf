//! Benchmark of the Stripe emulator: starts it with a large data set and walks all pages of
//! `/v1/charges` (limit 100) from several concurrent client tasks, then prints one JSON line
//! with the number of pages, the seconds taken and the pages per second.
//!
//! `cargo run --release -p stripe-emulator --example bench_emulator -- --size 20000 --clients 4`
use std::time::Instant;

use clap::Parser;
use stripe_emulator::{self as emulator, Emulator, Scope};

#[derive(Parser)]
struct Opts {
    /// Charges in the data set.
    #[arg(long, default_value_t = 20_000)]
    size: usize,
    /// Concurrent client tasks, each walking every page.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(serde::Deserialize)]
struct Id {
    id: String,
}

#[derive(serde::Deserialize)]
struct Page {
    data: Vec<Id>,
    has_more: bool,
}

async fn walk(
    client: reqwest::Client,
    base: String,
    limit: usize,
) -> Result<(u64, u64), reqwest::Error> {
    let (mut pages, mut objects) = (0, 0);
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/charges?limit={limit}");
        if let Some(a) = &after {
            url.push_str("&starting_after=");
            url.push_str(a);
        }
        let bytes = client
            .get(&url)
            .bearer_auth(emulator::DEFAULT_TEST_KEY)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let page: Page = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("bad page: {e}");
                break;
            }
        };
        pages += 1;
        objects += page.data.len() as u64;
        match page.data.last() {
            Some(last) if page.has_more => after = Some(last.id.clone()),
            _ => break,
        }
    }
    Ok((pages, objects))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let opts = Opts::parse();
    let config = emulator::Config {
        size: opts.size,
        frozen_clock: true,
        ..emulator::Config::default()
    };
    let built = Instant::now();
    let emu = Emulator::new(config);
    // Build the data set before timing the walk.
    let total = emu.ids(&Scope::platform_test(), "charges").len();
    let build_seconds = built.elapsed().as_secs_f64();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let running = emulator::Running::spawn(emu, listener)?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.clients.max(1))
        .map(|_| tokio::spawn(walk(client.clone(), running.base_url(), opts.limit)))
        .collect();
    let (mut pages, mut objects) = (0u64, 0u64);
    for t in tasks {
        match t.await {
            Ok(Ok((p, o))) => {
                pages += p;
                objects += o;
            }
            Ok(Err(e)) => eprintln!("client failed: {e}"),
            Err(e) => eprintln!("client task failed: {e}"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let line = serde_json::json!({
        "size": opts.size,
        "charges": total,
        "clients": opts.clients,
        "limit": opts.limit,
        "pages": pages,
        "objects": objects,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "pages_per_sec": (pages as f64 / seconds).round(),
        "build_seconds": (build_seconds * 1000.0).round() / 1000.0,
    });
    println!("{line}");
    Ok(())
}
