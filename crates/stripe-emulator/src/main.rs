//! The `stripe-emulator` binary: the same server, with the same flags, as
//! `source-stripe emulator`, for anyone who wants a local Stripe without the connector.
//! Logs go to stderr (`STRIPE_EMULATOR_LOG=info` for more); the banner to stdout.
use std::process::ExitCode;

use clap::Parser;

/// A local Stripe API: deterministic data built from Stripe's example objects, with
/// Stripe's lists, cursors, `created` filters, `expand[]`, events, errors, keys, rate
/// limits and Connect.
#[derive(Parser)]
#[command(name = "stripe-emulator", version)]
struct Cli {
    #[command(flatten)]
    args: stripe_emulator::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRIPE_EMULATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let (host, port) = (cli.args.host.clone(), cli.args.port);
    match stripe_emulator::run(cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stripe-emulator: cannot serve on {host}:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}
