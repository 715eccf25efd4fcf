//! The `source-stripe` binary: parse the command line, run, map the outcome to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

use source_stripe::cli::Cli;

fn main() -> ExitCode {
    source_stripe::process::init();
    let cli = Cli::parse();
    let protocol = cli.command.is_protocol();
    source_stripe::process::run(source_stripe::run(cli.command), protocol)
}
