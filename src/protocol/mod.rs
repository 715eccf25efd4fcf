//! Airbyte protocol messages and the one task that owns stdout.
//!
//! Producers (the sync engine) send [`Output`] values into a bounded channel; the
//! [`Writer`] turns them into JSON lines. Nothing else in the crate prints to stdout.

pub mod airbyte;

pub use airbyte::{AirbyteMessage, Writer, now_ms};
