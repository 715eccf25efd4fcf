#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests: the real `source-stripe` and `tap-stripe` binaries against the
//! in-process emulator, alone and run by real clients (Meltano, PyAirbyte; installed by
//! tools/setup-clients.sh). Every Airbyte line the binary prints is checked against the
//! Airbyte protocol schema and parsed by Airbyte's Python protocol models, and no
//! output may contain an API key.

mod util;

/// spec, discover, check.
mod commands;
/// Stripe Connect: OAuth links and syncs of many accounts.
mod connect;
/// Bad config, catalog and state: the error, its failure type, the exit code.
mod errors;
/// Rate limits, 429s, 5xx and broken connections lose nothing.
mod faults;
/// Meltano runs the example project (examples/meltano/) twice.
mod meltano;
/// Parquet output: values equal the protocol's, latest versions, kills, DuckDB and pyarrow.
mod parquet;
/// PyAirbyte reads into DuckDB, then incrementally.
mod pyairbyte;
/// Full refresh: every stream yields exactly the emulator's ids.
mod read_full;
/// Incremental syncs through events; old cursors; resuming a killed sync.
mod read_incremental;
/// The Singer tap: discover, selection, state, errors, about.
mod singer;
/// Stripe's wider read surface: Airbyte's catalog, every resource incrementally,
/// products an account does not use.
mod surface;
