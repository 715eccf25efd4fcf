#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests: the real `source-stripe` binary against the in-process emulator.
//! Every line the binary prints is checked against the Airbyte protocol schema, and no
//! output may contain an API key.

mod util;

/// spec, discover, check.
mod commands;
/// Bad config, catalog and state: the error, its failure type, the exit code.
mod errors;
/// Rate limits, 429s, 5xx and broken connections lose nothing.
mod faults;
/// Parquet output: values equal the protocol's, latest versions, kills, DuckDB and pyarrow.
mod parquet;
/// Full refresh: every stream yields exactly the emulator's ids.
mod read_full;
/// Incremental syncs through events; old cursors; resuming a killed sync.
mod read_incremental;
