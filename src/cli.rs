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
        /// Parquet output, continuous mode: sync again every period (seconds, or a
        /// duration such as `90s`, `5m`) until SIGTERM or Ctrl-C.
        #[arg(long, value_parser = crate::continuous::parse_every)]
        every: Option<std::time::Duration>,
        /// Parquet output with connected accounts: read only the accounts of shard `I`
        /// of `N` (`I/N`, from 0), chosen by a stable hash of the account id.
        #[arg(long)]
        shard: Option<crate::shard::Shard>,
        /// Continuous mode: after a period, compact a stream's (or account's) folder once
        /// it holds more than this many files (0: never).
        #[arg(long, default_value_t = crate::compact::AUTO_COMPACT_FILES)]
        compact_files: usize,
    },
    /// Merge the small Parquet files of each stream (and account) in an output folder or
    /// object-store prefix into large ones; the latest-version views stay the same.
    Compact {
        /// The `--output-dir` of the reads (a path, or `s3://`, `gs://`, `az://`).
        #[arg(long)]
        output_dir: PathBuf,
        /// Compact only the accounts of this shard (as the shard's writer does).
        #[arg(long)]
        shard: Option<crate::shard::Shard>,
        /// Compact a partition only when it has more than this many files.
        #[arg(long, default_value_t = 1)]
        min_files: usize,
    },
    /// Stripe Connect: link merchants' accounts to your platform with OAuth, or unlink
    /// them. The platform's secret key comes from the config's `client_secret`.
    Connect {
        #[command(subcommand)]
        command: ConnectCommand,
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

/// Where Stripe's OAuth endpoints are.
#[derive(Debug, clap::Args)]
pub struct OAuthHost {
    /// Base URL of Stripe's OAuth host (the emulator's URL in tests).
    #[arg(long, default_value = crate::stripe::connect::DEFAULT_OAUTH_BASE)]
    pub oauth_base: String,
}

/// What to do with a linked account.
#[derive(Debug, clap::Args)]
pub struct LinkedOutput {
    /// Also append the linked account (one JSON line) to this file.
    #[arg(long)]
    pub append_to: Option<PathBuf>,
    /// Print the OAuth access and refresh tokens too (they are secrets; the connector
    /// does not need them: it reads with the platform key and `Stripe-Account`).
    #[arg(long)]
    pub show_tokens: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConnectCommand {
    /// Print the authorize URL to send a merchant to, with a fresh random state.
    Url {
        /// The platform's client id (`ca_…`, from the Connect settings; one per mode).
        #[arg(long)]
        client_id: String,
        #[arg(long, value_enum, default_value = "read-only")]
        scope: crate::stripe::connect::Scope,
        /// Where Stripe sends the merchant back (must be registered in the settings).
        #[arg(long)]
        redirect_uri: Option<String>,
        #[command(flatten)]
        host: OAuthHost,
    },
    /// Link an account end to end: print the authorize URL, wait on a loopback port for
    /// Stripe's redirect, check the state, exchange the code and print the account.
    Listen {
        /// Config file holding the platform's secret key (`client_secret`).
        #[arg(long)]
        config: PathBuf,
        /// The platform's client id (`ca_…`).
        #[arg(long)]
        client_id: String,
        #[arg(long, value_enum, default_value = "read-only")]
        scope: crate::stripe::connect::Scope,
        /// Loopback port for the redirect (0: any free port); register
        /// `http://127.0.0.1:PORT/callback` as a redirect URI.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Give up when no redirect arrived within this many seconds (default 10 minutes).
        /// The listener only ever binds 127.0.0.1.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
        #[command(flatten)]
        host: OAuthHost,
        #[command(flatten)]
        output: LinkedOutput,
    },
    /// Exchange an authorization code received by hand (from a redirect to your site).
    Exchange {
        /// Config file holding the platform's secret key (`client_secret`).
        #[arg(long)]
        config: PathBuf,
        /// The `code` parameter of the redirect (`ac_…`).
        #[arg(long)]
        code: String,
        #[command(flatten)]
        host: OAuthHost,
        #[command(flatten)]
        output: LinkedOutput,
    },
    /// Unlink a connected account from the platform.
    Deauthorize {
        /// Config file holding the platform's secret key (`client_secret`).
        #[arg(long)]
        config: PathBuf,
        /// The platform's client id (`ca_…`).
        #[arg(long)]
        client_id: String,
        /// The account to unlink (`acct_…`).
        #[arg(long)]
        account: String,
        #[command(flatten)]
        host: OAuthHost,
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
            Command::Connect { .. } | Command::Compact { .. } => false,
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
