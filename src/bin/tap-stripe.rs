//! The `tap-stripe` binary: the connector as a Singer tap, for Meltano. Parse the flags,
//! run, map the outcome to an exit code; everything else lives in the library
//! ([`source_stripe::tap`]). Singer has no error message: an error is a line on stderr
//! and exit code 1.

use std::process::ExitCode;

use clap::Parser;

use source_stripe::tap::TapArgs;

fn main() -> ExitCode {
    source_stripe::process::init();
    let args = TapArgs::parse();
    source_stripe::process::run(source_stripe::tap::run(args), false)
}
