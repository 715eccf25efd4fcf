//! Stripe source connector: extracts a Stripe account's data and hands it on as Airbyte
//! protocol messages (`source-stripe`), as a Singer tap (`tap-stripe`), or as Parquet
//! files.
//!
//! # Layout
//! - [`cli`]: commands and flags (parsing only).
//! - [`tap`]: the Singer tap's flags and modes (`tap-stripe`, for Meltano).
//! - [`config`]: the config fields, validated once with errors that name the field.
//! - [`streams`]: the stream table (one row per stream) and the catalog.
//! - [`commerce`]: the commerce view, six streams derived from the raw ones at the sink.
//! - [`sync`]: the read engine: windows, concurrency, cursors, events, state.
//! - [`stripe`]: the GET-only HTTP client: auth, rate limit, retries, errors.
//! - [`sinks`]: where records go (protocol lines on stdout, a folder of JSON lines or of
//!   Parquet files).
//! - [`protocol`]: Airbyte message types and the line writer.
//! - [`continuous`]: Parquet reads into a folder or object store, once or every period
//!   (status file, signals, backoff); [`lock`]: one writer per destination;
//!   [`compact`]: merging small files; [`shard`]: `--shard I/N` over connected accounts.
//! - [`process`]: what both binaries do around a command (allocator, logs, runtime).
//! - [`emulator`] (feature `emulator`): the `stripe-emulator` crate re-exported, a local
//!   Stripe API for tests, demo, benchmarks.
//!
//! Data flows one way: command line → config → catalog → sync engine (asks the Stripe
//! client for pages) → records and states → sink.

pub mod cli;
pub mod commerce;
pub mod compact;
pub mod config;
pub mod continuous;
#[cfg(feature = "emulator")]
pub mod demo;
/// The local Stripe API, its own crate (`crates/stripe-emulator`), under its old path.
#[cfg(feature = "emulator")]
pub use stripe_emulator as emulator;
pub mod error;
#[cfg(test)]
mod fuzz_inputs;
pub mod lock;
pub mod process;
pub mod protocol;
pub mod secret;
pub mod shard;
pub mod sinks;
pub mod streams;
pub mod stripe;
pub mod sync;
pub mod tap;

use std::io::{self, BufWriter, Write};

pub use error::{Error, FailureType, Result};

use cli::Command;
use config::Config;
use protocol::airbyte::{AirbyteConnectionStatus, PROTOCOL_VERSION};
use protocol::{AirbyteMessage, Writer};

/// The connector's documentation, linked from its spec.
pub const DOCUMENTATION_URL: &str = "https://docs.airbyte.com/integrations/sources/stripe";

/// Runs one command.
///
/// # Errors
/// Any error of the command, with its failure type; `main` reports it.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Spec => print(&AirbyteMessage::Spec { spec: spec() }),
        // As Airbyte's CDK does: a config the user must fix is a FAILED status and exit 0
        // (the status is the answer); only a failure that is not the user's (Stripe
        // unreachable, an answer that cannot be read) is a TRACE error and a non-zero exit.
        Command::Check { config } => {
            let status = match load_config(&config, true) {
                Ok(config) => check(&config).await?,
                Err(err) => AirbyteConnectionStatus {
                    status: "FAILED",
                    message: Some(err.to_string()),
                },
            };
            print(&AirbyteMessage::ConnectionStatus {
                connection_status: status,
            })
        }
        Command::Discover { config } => {
            load_config(&config, true)?;
            print(&AirbyteMessage::Catalog {
                catalog: streams::catalog::discover(),
            })
        }
        Command::Read {
            config,
            catalog,
            state,
            format,
            output_dir,
            streams,
            rows_per_file,
            every,
            shard,
            compact_files,
        } => {
            let parquet = cli::read_format(format, output_dir.is_some()) == cli::Format::Parquet;
            let config = load_config(&config, !parquet)?;
            if parquet {
                let Some(dir) = output_dir else {
                    return Err(Error::Usage(
                        "--format parquet needs --output-dir, the folder to write into".to_owned(),
                    ));
                };
                if state.is_some() {
                    return Err(Error::Usage(format!(
                        "--state is for Airbyte output; Parquet output keeps its state in {}",
                        dir.join(sinks::parquet::STATE_FILE).display()
                    )));
                }
                let selected = match catalog {
                    Some(path) => streams::catalog::from_file(&path)?,
                    None => streams::catalog::named(streams.as_deref())?,
                };
                let options = sinks::parquet::Options { rows_per_file };
                let target = continuous::target(&dir, shard, options, &config)?;
                let every = every.map(|period| continuous::Every {
                    period,
                    compact_files,
                });
                return continuous::read(config, selected, target, every).await;
            }
            if output_dir.is_some() || streams.is_some() || every.is_some() || shard.is_some() {
                return Err(Error::Usage(
                    "--output-dir and --streams are for Parquet output (--format parquet)"
                        .to_owned(),
                ));
            }
            let Some(catalog) = catalog else {
                return Err(Error::Usage(
                    "read needs --catalog (a configured catalog) for Airbyte output; for Parquet files give --output-dir".to_owned(),
                ));
            };
            let selected = streams::catalog::from_file(&catalog)?;
            let state = match state {
                Some(path) => sync::state::InputState::from_file(&path)?,
                None => sync::state::InputState::default(),
            };
            let plan = sync::ReadPlan::build(config, selected, &state)?;
            let sink =
                sinks::lines::AirbyteLines::new(BufWriter::with_capacity(1 << 16, io::stdout()));
            read(plan, sink).await.map(|_| ())
        }
        Command::Compact {
            output_dir,
            shard,
            min_files,
        } => compact::run(&output_dir, shard, min_files).await,
        Command::Connect { command } => connect(command).await,
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => emulator::run(args).await.map_err(Error::Output),
        #[cfg(feature = "emulator")]
        Command::Demo { output_dir, size } => demo::run(&output_dir, size).await,
    }
}

/// Reads and validates a config file, and says which of its fields are ignored: as a LOG
/// message on stdout when `protocol`, and on stderr.
///
/// # Errors
/// A `config_error` naming the field that is wrong.
pub fn load_config(path: &std::path::Path, protocol: bool) -> Result<Config> {
    let config = Config::from_file(path)?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
        if protocol {
            print(&AirbyteMessage::log("WARN", warning))?;
        }
    }
    Ok(config)
}

/// The `connect` commands: OAuth links between merchants and the platform.
async fn connect(command: cli::ConnectCommand) -> Result<()> {
    use stripe::connect;
    let print_json = |value: &serde_json::Value| -> Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{value}")?;
        out.flush()?;
        Ok(())
    };
    let linked_out = |linked: connect::Linked, output: &cli::LinkedOutput| -> Result<()> {
        let report = serde_json::to_value(linked.report(output.show_tokens))
            .map_err(|err| Error::Output(io::Error::other(err)))?;
        if let Some(path) = &output.append_to {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(file, "{report}")?;
        }
        eprintln!(
            "linked {} ({} mode, scope {})",
            linked.stripe_user_id,
            if linked.livemode { "live" } else { "test" },
            linked.scope
        );
        print_json(&report)
    };
    match command {
        cli::ConnectCommand::Url {
            client_id,
            scope,
            redirect_uri,
            host,
        } => {
            let state = connect::random_state();
            let url = connect::authorize_url(
                &host.oauth_base,
                &client_id,
                scope,
                &state,
                redirect_uri.as_deref(),
            )?;
            eprintln!("Send the merchant to this URL; the redirect carries state {state}:");
            print_json(&serde_json::json!({"authorize_url": url.as_str(), "state": state}))
        }
        cli::ConnectCommand::Listen {
            config,
            client_id,
            scope,
            port,
            timeout_secs,
            host,
            output,
        } => {
            let config = Config::from_file(&config)?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|err| {
                    connect::Error::Listener(format!("cannot listen on 127.0.0.1:{port}: {err}"))
                })?;
            let port = listener.local_addr()?.port();
            let state = connect::random_state();
            let redirect_uri = format!("http://127.0.0.1:{port}/callback");
            let url = connect::authorize_url(
                &host.oauth_base,
                &client_id,
                scope,
                &state,
                Some(&redirect_uri),
            )?;
            eprintln!(
                "Open this URL in a browser and connect the account; waiting on {redirect_uri} …"
            );
            print_json(&serde_json::json!({"authorize_url": url.as_str(), "state": state}))?;
            let code = connect::receive_code(
                &listener,
                &state,
                std::time::Duration::from_secs(timeout_secs),
            )
            .await?;
            let linked =
                connect::exchange_code(&host.oauth_base, &config.client_secret, &code).await?;
            linked_out(linked, &output)
        }
        cli::ConnectCommand::Exchange {
            config,
            code,
            host,
            output,
        } => {
            let config = Config::from_file(&config)?;
            let linked =
                connect::exchange_code(&host.oauth_base, &config.client_secret, &code).await?;
            linked_out(linked, &output)
        }
        cli::ConnectCommand::Deauthorize {
            config,
            client_id,
            account,
            host,
        } => {
            let config = Config::from_file(&config)?;
            let account = connect::deauthorize(
                &host.oauth_base,
                &config.client_secret,
                &client_id,
                &account,
            )
            .await?;
            eprintln!("unlinked {account}");
            print_json(&serde_json::json!({"deauthorized": account}))
        }
    }
}

/// Reads `plan` into `sink` and returns the sink.
///
/// # Errors
/// The sync's error (after the sink has seen everything before it), or the sink's.
pub async fn read<S: sinks::Sink + 'static>(mut plan: sync::ReadPlan, sink: S) -> Result<S> {
    let client = client_for(plan.config())?;
    let sink = commerce::DeriveSink::new(sink, plan.take_commerce());
    let (tx, writer) = sinks::spawn(sink);
    let result = plan.run(client, tx).await;
    let sink = writer
        .await
        .map_err(|err| Error::Output(io::Error::other(err.to_string())))??;
    result.map(|()| sink.into_inner())
}

/// Reads `selected` into the Parquet folder `dir`, incrementally from the state saved
/// there, and returns the sink (its counts and files).
///
/// # Errors
/// The folder's state is not valid, the folder cannot be written, or the sync failed
/// (after everything read before the failure is on disk with its state).
pub async fn read_parquet(
    config: Config,
    selected: Vec<streams::catalog::Selected>,
    dir: &std::path::Path,
    options: sinks::parquet::Options,
) -> Result<sinks::parquet::ParquetFolder> {
    let state_path = dir.join(sinks::parquet::STATE_FILE);
    let state = if state_path.exists() {
        sync::state::InputState::from_file(&state_path)?
    } else {
        sync::state::InputState::default()
    };
    let plan = sync::ReadPlan::build(config, selected, &state)?;
    let folder = sinks::parquet::ParquetFolder::create(dir, options)?;
    read(plan, folder).await
}

/// The Stripe client a config asks for.
///
/// # Errors
/// When the HTTP client cannot be set up.
pub fn client_for(config: &Config) -> Result<stripe::Client> {
    Ok(stripe::Client::try_new(stripe::ClientConfig {
        api_base: config.api_base.clone(),
        key: config.client_secret.clone(),
        stripe_version: config.stripe_version.clone(),
        account: match &config.accounts {
            config::Accounts::One(account) => account.clone(),
            _ => None,
        },
        rate_limit: config.rate_limit,
        endpoint_rate_limit: config.endpoint_rate_limit,
        max_in_flight: config.num_workers,
        request_timeout: config.request_timeout,
    })?)
}

/// The `spec` of a SPEC message.
pub fn spec() -> serde_json::Value {
    serde_json::json!({
        "documentationUrl": DOCUMENTATION_URL,
        "connectionSpecification": config::connection_specification(),
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["overwrite", "append", "append_dedup"],
        "protocol_version": PROTOCOL_VERSION,
    })
}

/// Checks the key, the account and what the key may read.
///
/// # Errors
/// Only for failures that are not the user's (Stripe unreachable after retries, an
/// answer that cannot be read); a wrong key or account is a FAILED status.
async fn check(config: &Config) -> Result<AirbyteConnectionStatus> {
    let client = client_for(config)?;
    let failed = |message: String| AirbyteConnectionStatus {
        status: "FAILED",
        message: Some(message),
    };
    let account = match client.get_object("/v1/account").await {
        Ok(account) => serde_json::from_str::<serde_json::Value>(account.get()).ok(),
        Err(stripe::Error::PermissionDenied { .. }) => None,
        Err(err) if err.failure_type() == FailureType::ConfigError => {
            return Ok(failed(err.to_string()));
        }
        Err(err) => return Err(err.into()),
    };
    // A child stream is readable where its parent is: its endpoint needs a parent's id.
    let probes = streams::STREAMS
        .iter()
        .filter(|s| !s.single && s.child.is_none())
        .map(|stream| {
            let client = match stream.stripe_version {
                Some(version) => client.with_stripe_version(version),
                None => client.clone(),
            };
            async move {
                let mut query = vec![("limit", "1".to_owned())];
                query.extend(stream.query.iter().map(|(k, v)| (*k, (*v).to_owned())));
                (stream.name, client.list(stream.path, &query).await)
            }
        });
    let mut denied = Vec::new();
    let mut unused = Vec::new();
    let mut readable = 0;
    for (name, result) in futures::future::join_all(probes).await {
        match result {
            Ok(_) => readable += 1,
            // Not a problem of the key: the stream is empty on this account.
            Err(stripe::Error::NotEnabled { .. }) => unused.push(name),
            Err(err @ stripe::Error::PermissionDenied { .. }) => {
                denied.push(format!("{name} ({err})"))
            }
            Err(err) if err.failure_type() == FailureType::ConfigError => {
                return Ok(failed(err.to_string()));
            }
            Err(err) => return Err(err.into()),
        }
    }
    if readable == 0 {
        return Ok(failed(format!(
            "the key cannot read any stream: {}",
            denied.join("; ")
        )));
    }
    let who = match &account {
        Some(account) => {
            let name = account["business_profile"]["name"]
                .as_str()
                .or(account["settings"]["dashboard"]["display_name"].as_str())
                .unwrap_or("no name");
            format!(
                "Stripe account {} ({name}, {})",
                account["id"].as_str().unwrap_or("?"),
                account["country"].as_str().unwrap_or("no country")
            )
        }
        None => {
            "Stripe (the key may not read /v1/account, so the account stream will fail)".to_owned()
        }
    };
    let mut streams_note = if denied.is_empty() {
        "the key can read every stream".to_owned()
    } else {
        format!("the key cannot read: {}", denied.join("; "))
    };
    if !unused.is_empty() {
        streams_note.push_str(&format!(
            "; the account does not use the products behind (empty streams): {}",
            unused.join(", ")
        ));
    }
    let accounts_note = match &config.accounts {
        config::Accounts::One(_) => String::new(),
        config::Accounts::All => {
            let ids = sync::list_connected_accounts(&client).await?;
            format!("; {} connected accounts to read", ids.len())
        }
        config::Accounts::List(ids) => {
            let probes = ids.iter().map(|id| {
                let client = client.for_account(Some(id.clone()));
                async move {
                    match client {
                        Ok(client) => (id, client.get_object("/v1/account").await.err()),
                        Err(err) => (id, Some(err)),
                    }
                }
            });
            let mut refused = Vec::new();
            for (id, err) in futures::future::join_all(probes).await {
                match err {
                    None | Some(stripe::Error::PermissionDenied { .. }) => {}
                    Some(err) if err.failure_type() == FailureType::ConfigError => {
                        refused.push(format!("{id}: {err}"));
                    }
                    Some(err) => return Err(err.into()),
                }
            }
            if !refused.is_empty() {
                return Ok(failed(format!(
                    "{} of the connected_accounts cannot be read: {}",
                    refused.len(),
                    refused.join("; ")
                )));
            }
            format!("; all {} connected accounts are readable", ids.len())
        }
    };
    Ok(AirbyteConnectionStatus {
        status: "SUCCEEDED",
        message: Some(format!(
            "Connected to {who} in {} mode; {streams_note}{accounts_note}",
            config.mode.as_str()
        )),
    })
}

fn print(message: &AirbyteMessage) -> Result<()> {
    let mut writer = Writer::new(io::stdout().lock());
    writer.message(message)?;
    writer.flush()?;
    Ok(())
}

/// Reports an error the way the command's reader expects: a TRACE message on stdout
/// for protocol commands, and a line on stderr for people.
pub fn report_error(err: &Error, protocol: bool) {
    let message = secret::redact_secrets(&err.to_string());
    if protocol {
        let trace = AirbyteMessage::error(message.clone(), None, err.failure_type(), None);
        let mut writer = Writer::new(io::stdout().lock());
        if writer
            .message(&trace)
            .and_then(|()| writer.flush())
            .is_err()
        {
            // stdout is gone; stderr below still tells.
        }
    }
    if writeln!(io::stderr().lock(), "error: {message}").is_err() {
        // Nowhere left to report to.
    }
}
