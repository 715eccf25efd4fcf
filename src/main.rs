//! The `source-stripe` binary: parse the command line, run, map the outcome to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

use source_stripe::cli::Cli;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOURCE_STRIPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let protocol = cli.command.is_protocol();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(source_stripe::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            source_stripe::report_error(&err, protocol);
            ExitCode::FAILURE
        }
    }
}
