//! The command line: Airbyte's four commands, plus the emulator and the offline demo.
//! Parsing only; [`crate::run`] does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Stripe source connector: reads a Stripe account's data and prints Airbyte protocol
/// messages (one JSON object per line) on stdout.
#[derive(Debug, Parser)]
#[command(name = "source-stripe", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the connector's specification (a SPEC message).
    Spec,
    /// Check that the config can reach Stripe and read (a CONNECTION_STATUS message).
    Check {
        /// Path of the config JSON file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the streams with their schemas (a CATALOG message).
    Discover {
        /// Path of the config JSON file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Read the streams of a configured catalog (RECORD, STATE, LOG and TRACE messages).
    Read {
        /// Path of the config JSON file.
        #[arg(long)]
        config: PathBuf,
        /// Path of the configured catalog JSON file.
        #[arg(long)]
        catalog: PathBuf,
        /// Path of the state JSON file of the previous sync (its last STATE messages).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Run the local Stripe API emulator (for trying the connector, other tools or curl).
    #[cfg(feature = "emulator")]
    Emulator(crate::emulator::Args),
    /// Offline demo: start the emulator in-process, sync every stream into a folder
    /// (one JSON-lines file per stream and state.json) and print a summary.
    #[cfg(feature = "emulator")]
    Demo {
        /// Folder to write into (created if missing; files are appended to).
        #[arg(long, default_value = "stripe-demo")]
        output_dir: PathBuf,
        /// Charges in the emulated account (other objects scale with it).
        #[arg(long, default_value_t = 2_000)]
        size: usize,
    },
}

impl Command {
    /// Whether the command speaks the Airbyte protocol on stdout (errors become TRACE).
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            Command::Spec | Command::Check { .. } | Command::Discover { .. } | Command::Read { .. }
        )
    }
}
