//! The `emulator` command line: options, the start-up banner, and serving until Ctrl-C.
use std::io::Write;
use std::time::Duration;

use super::{
    Config, DEFAULT_LIVE_KEY, DEFAULT_RESTRICTED_KEY, DEFAULT_TEST_KEY, Emulator, Faults,
    OAUTH_CLIENT_ID_LIVE, OAUTH_CLIENT_ID_TEST,
};

/// Options of `source-stripe emulator`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 12111)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of charges of the platform (other kinds scale from it).
    #[arg(long, default_value_t = 1000)]
    pub size: usize,
    /// Days of history the data is spread over.
    #[arg(long, default_value_t = 730)]
    pub history_days: i64,
    /// Share of objects created in the last 30 days (0 = spread evenly over the history).
    #[arg(long, default_value_t = 0.0)]
    pub recent_share: f64,
    /// Build the core objects from Stripe's 2026 examples (about twice the size).
    #[arg(long)]
    pub large_objects: bool,
    /// Answer with compact JSON, not pretty-printed as Stripe answers.
    #[arg(long)]
    pub compact_json: bool,
    /// Connected accounts linked at start.
    #[arg(long, default_value_t = 3)]
    pub connected_accounts: usize,
    /// Clock start (unix seconds); default: now.
    #[arg(long)]
    pub now: Option<i64>,
    /// Freeze the clock (it then only moves with POST /_emulator/advance).
    #[arg(long)]
    pub frozen_clock: bool,
    /// Requests per second per account and mode before 429s.
    #[arg(long)]
    pub rate_limit: Option<f64>,
    /// Requests per second per endpoint (path without ids) before 429s, like Stripe's
    /// per-endpoint limit (25; Files get 20/25 of this).
    #[arg(long)]
    pub endpoint_rate_limit: Option<f64>,
    /// Added latency of every /v1 response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of /v1 requests answered 429.
    #[arg(long, default_value_t = 0.0)]
    pub too_many_requests_rate: f64,
    /// Fraction of /v1 requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub server_error_rate: f64,
    /// Fraction of /v1 requests whose connection is dropped.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fraction of /v1 responses cut off half way.
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
}

impl Args {
    /// The emulator configuration these options describe.
    pub fn config(&self) -> Config {
        Config {
            seed: self.seed,
            size: self.size,
            history_days: self.history_days,
            recent_share: self.recent_share,
            large_objects: self.large_objects,
            compact_json: self.compact_json,
            connected_accounts: self.connected_accounts,
            now: self.now,
            frozen_clock: self.frozen_clock,
            faults: Faults {
                rate_limit_per_sec: self.rate_limit,
                endpoint_rate_limit_per_sec: self.endpoint_rate_limit,
                latency: Duration::from_millis(self.latency_ms),
                too_many_requests_rate: self.too_many_requests_rate,
                server_error_rate: self.server_error_rate,
                drop_rate: self.drop_rate,
                truncate_rate: self.truncate_rate,
                ..Faults::default()
            },
            ..Config::default()
        }
    }
}

/// The start-up banner.
pub(crate) fn banner(emu: &Emulator, url: &str, args: &Args) -> String {
    let accounts = emu.connected_account_ids();
    let mut s = String::new();
    s.push_str(&format!("Stripe emulator listening on {url}\n\n"));
    s.push_str(&format!("  test key         {DEFAULT_TEST_KEY}\n"));
    s.push_str(&format!("  live key         {DEFAULT_LIVE_KEY}\n"));
    s.push_str(&format!(
        "  restricted key   {DEFAULT_RESTRICTED_KEY} (no disputes)\n"
    ));
    s.push_str(&format!(
        "  OAuth client ids {OAUTH_CLIENT_ID_TEST} (test), {OAUTH_CLIENT_ID_LIVE} (live)\n"
    ));
    s.push_str(&format!(
        "  platform account {}\n",
        emu.platform_account_id()
    ));
    s.push_str(&format!(
        "  connected        {}\n",
        if accounts.is_empty() {
            "(none)".to_string()
        } else {
            accounts.join(", ")
        }
    ));
    s.push_str(&format!(
        "  data             size {} (charges), seed {}, {} days of history, clock {}\n\n",
        args.size,
        args.seed,
        args.history_days,
        emu.now()
    ));
    s.push_str("Try:\n");
    s.push_str(&format!(
        "  curl -u {DEFAULT_TEST_KEY}: '{url}/v1/charges?limit=3'\n"
    ));
    s.push_str(&format!(
        "  curl -X POST {url}/_emulator/advance -d '{{\"seconds\":60,\"creates\":2,\"updates\":2,\"deletes\":1}}'\n"
    ));
    s
}

/// Serves the emulator described by `args` until Ctrl-C.
pub async fn run(args: Args) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    let emu = Emulator::new(args.config());
    // The banner only informs: a closed stdout (`| head -1`) is no reason to stop serving,
    // nor to panic as `println!` would.
    let mut stdout = std::io::stdout();
    let printed = writeln!(stdout, "{}", banner(&emu, &format!("http://{addr}"), &args))
        .and_then(|()| stdout.flush());
    if let Err(e) = printed {
        tracing::warn!("emulator banner not printed: {e}");
    }
    tokio::select! {
        r = emu.serve(listener) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn banner_names_everything_a_user_needs() {
        let cmd = Cmd::parse_from([
            "emulator",
            "--size",
            "10",
            "--now",
            "1700000000",
            "--rate-limit",
            "25",
            "--endpoint-rate-limit",
            "10",
        ]);
        assert_eq!(cmd.args.port, 12111);
        let config = cmd.args.config();
        assert_eq!(config.faults.rate_limit_per_sec, Some(25.0));
        assert_eq!(config.faults.endpoint_rate_limit_per_sec, Some(10.0));
        let emu = Emulator::new(config);
        let text = banner(&emu, "http://127.0.0.1:12111", &cmd.args);
        for needle in [
            "http://127.0.0.1:12111",
            DEFAULT_TEST_KEY,
            DEFAULT_LIVE_KEY,
            DEFAULT_RESTRICTED_KEY,
            OAUTH_CLIENT_ID_TEST,
            OAUTH_CLIENT_ID_LIVE,
            "curl",
        ] {
            assert!(text.contains(needle), "{needle} missing");
        }
        assert!(text.contains(&emu.platform_account_id()));
        for id in emu.connected_account_ids() {
            assert!(text.contains(&id));
        }
    }
}
