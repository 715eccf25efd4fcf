//! The `source-stripe` binary: parse the command line, run, map the outcome to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

use source_stripe::cli::Cli;

fn main() -> ExitCode {
    pin_mmap_threshold();
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

/// Page bodies are a few hundred KiB each, allocated and freed thousands of times a
/// minute. glibc raises its mmap threshold after each such free, so later bodies come
/// from the heap and fragment it: peak memory then grows with the data (by a third from
/// 100,000 to 1,000,000 records, measured with examples/bench_sync). A fixed threshold
/// keeps large buffers in mmap, returned to the OS on free, and memory flat.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it is called first thing in
    // main, before any other thread exists or any allocation depends on it.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024) };
    if ok != 1 {
        tracing::debug!("mallopt(M_MMAP_THRESHOLD) was refused; memory may grow with the data");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() {}
