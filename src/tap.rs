//! The Singer tap (`tap-stripe`): the same streams, config, incremental logic and
//! per-stream state as the Airbyte mode, spoken as Singer for Meltano and other Singer
//! runners. Flags sit at the top level, as Singer runners call taps:
//!
//! ```text
//! tap-stripe --config config.json --discover
//! tap-stripe --config config.json --catalog catalog.json [--state state.json]
//! tap-stripe --about [--format json]
//! ```
//!
//! The command line and what each mode prints; the catalog lives in
//! [`crate::streams::singer`], the output in [`crate::sinks::singer`].

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::config;
use crate::error::{Error, Result};
use crate::sinks::singer::SingerLines;
use crate::streams::singer as catalog;
use crate::sync::{self, state::InputState};

/// Stripe Singer tap: reads a Stripe account's data and prints Singer SCHEMA, RECORD and
/// STATE messages (one JSON object per line) on stdout. Errors go to stderr, with a
/// non-zero exit code.
#[derive(Debug, Parser)]
#[command(name = "tap-stripe", version, about)]
pub struct TapArgs {
    /// Path of the config JSON file (the same fields as `source-stripe`'s config).
    #[arg(long, required_unless_present = "about")]
    pub config: Option<PathBuf>,
    /// Print the catalog of every stream, with schemas and metadata. Other flags but
    /// `--config` are ignored (Meltano passes `--state` along).
    #[arg(long)]
    pub discover: bool,
    /// Path of the catalog (from `--discover`, streams to read selected).
    #[arg(long, conflicts_with = "properties")]
    pub catalog: Option<PathBuf>,
    /// Path of the catalog, as older Singer runners pass it.
    #[arg(long)]
    pub properties: Option<PathBuf>,
    /// Path of the state of the previous sync (the value of its last STATE message).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Print what the tap is: name, version, capabilities and settings.
    #[arg(long)]
    pub about: bool,
    /// Format of `--about`.
    #[arg(long, value_enum, default_value_t = AboutFormat::Markdown, requires = "about")]
    pub format: AboutFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AboutFormat {
    Json,
    Markdown,
}

/// The capabilities a Singer runner may use.
pub const CAPABILITIES: [&str; 4] = ["catalog", "discover", "state", "about"];

/// Runs the tap.
///
/// # Errors
/// Any error of the mode, with its failure type; the binary prints it on stderr.
pub async fn run(args: TapArgs) -> Result<()> {
    if args.about {
        return about(args.format);
    }
    let Some(config) = &args.config else {
        return Err(Error::Usage(
            "--config is required (a JSON file with at least `client_secret`)".to_owned(),
        ));
    };
    let config = crate::load_config(config, false)?;
    if args.discover {
        // Indented, as Singer SDK taps print it: runners read discovery output through
        // line buffers (Meltano's holds 64 KiB) and the catalog is larger than that.
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &catalog::discover()).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(());
    }
    let Some(catalog_path) = args.catalog.as_ref().or(args.properties.as_ref()) else {
        return Err(Error::Usage(
            "pass --discover to list the streams, or --catalog with the streams to read".to_owned(),
        ));
    };
    let selected = catalog::from_file(catalog_path)?;
    let state = match &args.state {
        Some(path) => InputState::from_file(path)?,
        None => InputState::default(),
    };
    let bookmarks: BTreeMap<String, serde_json::Value> = state
        .streams()
        .filter(|(_, state)| !state.is_null())
        .map(|(name, state)| (name.to_owned(), state.clone()))
        .collect();
    let plan = sync::ReadPlan::build(config, selected, &state)?;
    let sink = SingerLines::new(BufWriter::with_capacity(1 << 16, io::stdout()), bookmarks);
    // The engine's errors already went to stderr as they happened; the returned error
    // ends the tap with its summary.
    crate::read(plan, sink).await.map(|_| ())
}

fn about(format: AboutFormat) -> Result<()> {
    let settings = config::connection_specification();
    match format {
        AboutFormat::Json => print(&json!({
            "name": "tap-stripe",
            "description": "Stripe source: customers, charges, disputes, payments, products, balance transactions and more, incremental through Stripe's Events API",
            "version": env!("CARGO_PKG_VERSION"),
            "capabilities": CAPABILITIES,
            "settings": settings,
        })),
        AboutFormat::Markdown => {
            let mut text = format!(
                "# tap-stripe\n\nVersion {}\n\n## Capabilities\n\n",
                env!("CARGO_PKG_VERSION")
            );
            for capability in CAPABILITIES {
                text.push_str(&format!("- `{capability}`\n"));
            }
            text.push_str("\n## Settings\n\n| setting | type | description |\n|---|---|---|\n");
            let required: Vec<&str> = settings["required"]
                .as_array()
                .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            if let Some(properties) = settings["properties"].as_object() {
                for (name, property) in properties {
                    let kind = property["type"].as_str().unwrap_or("any");
                    let description = property["description"]
                        .as_str()
                        .unwrap_or("")
                        .replace('\n', " ");
                    let required = if required.contains(&name.as_str()) {
                        " (required)"
                    } else {
                        ""
                    };
                    text.push_str(&format!(
                        "| `{name}`{required} | {kind} | {description} |\n"
                    ));
                }
            }
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

fn print(value: &serde_json::Value) -> Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
