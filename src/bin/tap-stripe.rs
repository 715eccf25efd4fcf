//! The `tap-stripe` binary: the connector as a Singer tap, for Meltano. Parse the flags,
//! run, map the outcome to an exit code; everything else lives in the library
//! ([`source_stripe::tap`]). Singer has no error message: an error is a line on stderr
//! and exit code 1.

use std::process::ExitCode;

use clap::Parser;

use source_stripe::tap::TapArgs;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOURCE_STRIPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = TapArgs::parse();
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
    match runtime.block_on(source_stripe::tap::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            source_stripe::report_error(&err, false);
            ExitCode::FAILURE
        }
    }
}
