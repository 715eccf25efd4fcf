#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests: the real `source-stripe` and `tap-stripe` binaries against the
//! in-process emulator, alone and run by real clients (Meltano, PyAirbyte; installed by
//! tools/setup-clients.sh). Every Airbyte line the binary prints is checked against the
//! Airbyte protocol schema and parsed by Airbyte's Python protocol models, and no
//! output may contain an API key.

mod util;

/// The bad input table: 50+ malformed configs, catalogs, states and command lines.
mod bad_inputs;
/// Child streams: one parent list for all children, the embedded page, the child endpoint.
mod children;
/// spec, discover, check.
mod commands;
/// The commerce streams: golden records, reconciled totals, incremental, requests, Parquet.
mod commerce;
/// Stripe Connect: OAuth links and syncs of many accounts.
mod connect;
/// A connected account's own events: accounts, persons, external accounts.
mod connected_events;
/// Continuous mode (--every) and compaction.
mod continuous;
/// deploy/: the Kubernetes Indexed Job's manifest.
mod deploy;
/// Bad config, catalog and state: the error, its failure type, the exit code.
mod errors;
/// The fault matrix: every fault, Airbyte and Parquet, ends with a clean run's ids.
mod fault_matrix;
/// Rate limits, 429s, 5xx and broken connections lose nothing.
mod faults;
/// SIGKILL at 20 seeded moments, resumed each time: nothing lost, no state too far.
mod kills;
/// Events listable late are still read, thanks to the settle margin.
mod late_events;
/// Meltano runs the example project (examples/meltano/) twice.
mod meltano;
/// A local S3-compatible server (moto) for the object-storage runs.
mod moto;
/// Parquet output: values equal the protocol's, latest versions, kills, DuckDB and pyarrow.
mod parquet;
/// What a person watching a read sees: terminal lines, ESTIMATE traces, summaries.
mod progress;
/// PyAirbyte reads into DuckDB, then incrementally.
mod pyairbyte;
/// Full refresh: every stream yields exactly the emulator's ids.
mod read_full;
/// Incremental syncs through events; old cursors; resuming a killed sync.
mod read_incremental;
/// Checkpoints: killed syncs (full refresh too) resume without re-reading complete
/// windows; far-future cursors read nothing.
mod resume;
/// Keys only over HTTPS or loopback; the OAuth listener is loopback-only and times out.
mod safety;
/// Shards: N processes into one folder, every account once.
mod shards;
/// The Singer tap: discover, selection, state, errors, about.
mod singer;
/// Stripe's wider read surface: Airbyte's catalog, every resource incrementally,
/// products an account does not use.
mod surface;
