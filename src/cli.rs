//! The command line: Airbyte's four commands, plus the emulator and the offline demo.
//! Parsing only; [`crate::run`] does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Read the streams of a configured catalog (RECORD, STATE, LOG and TRACE messages),
    /// or, with `--output-dir`, write them as Parquet files with the state beside them.
    Read {
        /// Path of the config JSON file.
        #[arg(long)]
        config: PathBuf,
        /// Path of the configured catalog JSON file. Required for Airbyte output; for
        /// Parquet output every stream is read by default (see `--streams`).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Path of the state JSON file of the previous sync (its last STATE messages).
        /// Airbyte output only: Parquet output keeps its state in `<output-dir>/state.json`.
        #[arg(long)]
        state: Option<PathBuf>,
        /// `airbyte`: protocol messages on stdout. `parquet`: Parquet files in
        /// `--output-dir`. Default: `parquet` when `--output-dir` is given.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Folder of the Parquet output: `<stream>/part-*.parquet`, `state.json`, `views.sql`.
        /// Created if missing; a later run with the same folder reads only what changed.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Parquet output without a catalog: the streams to read, comma-separated
        /// (default: all), incremental where the stream supports it.
        #[arg(long, value_delimiter = ',', conflicts_with = "catalog")]
        streams: Option<Vec<String>>,
        /// Parquet output: rows per file; a file is closed (and the state it covers saved)
        /// when it has this many.
        #[arg(long, default_value_t = crate::sinks::parquet::DEFAULT_ROWS_PER_FILE)]
        rows_per_file: u64,
    },
    /// Run the local Stripe API emulator (for trying the connector, other tools or curl).
    #[cfg(feature = "emulator")]
    Emulator(crate::emulator::Args),
    /// Offline demo: start the emulator in-process, sync every stream into a folder
    /// of Parquet files (as `read --output-dir`) and print a summary.
    #[cfg(feature = "emulator")]
    Demo {
        /// Folder to write into (created if missing; a second run adds what changed).
        #[arg(long, default_value = "stripe-demo")]
        output_dir: PathBuf,
        /// Charges in the emulated account (other objects scale with it).
        #[arg(long, default_value_t = 2_000)]
        size: usize,
    },
}

/// What `read` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Airbyte protocol messages on stdout.
    Airbyte,
    /// Parquet files in `--output-dir`.
    Parquet,
}

impl Command {
    /// Whether the command speaks the Airbyte protocol on stdout (errors become TRACE).
    pub fn is_protocol(&self) -> bool {
        match self {
            Command::Spec | Command::Check { .. } | Command::Discover { .. } => true,
            Command::Read {
                format, output_dir, ..
            } => read_format(*format, output_dir.is_some()) == Format::Airbyte,
            #[cfg(feature = "emulator")]
            _ => false,
        }
    }
}

/// The format of a `read`: the one asked for, else Parquet when there is an output folder.
pub fn read_format(format: Option<Format>, has_output_dir: bool) -> Format {
    match (format, has_output_dir) {
        (Some(format), _) => format,
        (None, true) => Format::Parquet,
        (None, false) => Format::Airbyte,
    }
}
