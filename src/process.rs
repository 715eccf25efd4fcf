//! What both binaries do around their command: allocator tuning, logs to stderr, the
//! async runtime, and the exit code. Each `main` is `init`, parse, `run`.

use std::future::Future;
use std::process::ExitCode;

use crate::error::Result;

/// Call first thing in `main`: before any thread or allocation depends on it.
pub fn init() {
    pin_mmap_threshold();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOURCE_STRIPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// Runs a command on a multi-threaded runtime and maps its outcome to an exit code,
/// reporting an error as a TRACE message (`protocol`) and on stderr.
pub fn run(command: impl Future<Output = Result<()>>, protocol: bool) -> ExitCode {
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
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): stop quietly, but the run is unfinished.
        Err(crate::Error::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::FAILURE
        }
        Err(err) => {
            crate::report_error(&err, protocol);
            ExitCode::FAILURE
        }
    }
}

/// Page bodies and hyper's read buffers are a few hundred KiB each, allocated and freed
/// thousands of times a minute. glibc raises its mmap threshold after each such free, so
/// later ones come from the heap, and it fragments: peak memory then grew with the data
/// (by a third from 100,000 to 1,000,000 records, measured with examples/bench_sync).
/// Pinned at 64 KiB, every one came fresh from the kernel (page faults and zeroing, a
/// fifth of the CPU time on Stripe's pretty-printed pages). Pinned at 1 MiB with the
/// page bodies reused (`stripe::buffers`): the heap serves them, and peak memory stays
/// flat (32.6 MB at 83,000 records, 34.2 MB at 249,000).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; `init` calls it first thing in
    // main, before any other thread exists.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024) };
    if ok != 1 {
        eprintln!("note: mallopt(M_MMAP_THRESHOLD) was refused; memory may grow with the data");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() {}
