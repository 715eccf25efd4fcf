//! Where records go. The sync engine sends [`Output`] values into a bounded channel;
//! one blocking task drains it into a [`Sink`]: protocol lines ([`lines`]), a folder of
//! JSON lines ([`folder`]) or of Parquet files ([`parquet`], typed by [`columns`]).
//! Sinks never call Stripe.

pub mod columns;
pub mod lines;
pub mod parquet;
pub mod singer;
pub mod store;

use std::io;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::protocol::AirbyteMessage;

/// What the sync engine produces, in the order the sink must see it.
#[derive(Debug)]
pub enum Output {
    /// Records of one stream: each a JSON object as Stripe sent it, plus our fields.
    Records {
        stream: &'static str,
        records: Vec<String>,
    },
    /// The stream's state; every record sent before it is covered by it.
    State { stream: &'static str, state: Value },
    /// A LOG or TRACE message.
    Message(AirbyteMessage),
}

/// A destination for one sync's output.
pub trait Sink: Send {
    /// # Errors
    /// I/O errors of the destination.
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()>;
    /// # Errors
    /// I/O errors of the destination.
    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()>;
    /// # Errors
    /// I/O errors of the destination.
    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()>;
    /// Called once after the last output.
    ///
    /// # Errors
    /// I/O errors of the destination.
    fn finish(&mut self) -> io::Result<()>;
}

/// Capacity of the channel between the sync engine and the sink, in outputs (a page
/// of records is one output): bounds memory whatever the data size.
pub const CHANNEL_CAPACITY: usize = 16;

/// Runs `sink` on a blocking thread until the channel closes; returns the sink.
pub fn spawn<S: Sink + 'static>(
    mut sink: S,
) -> (mpsc::Sender<Output>, tokio::task::JoinHandle<io::Result<S>>) {
    let (tx, mut rx) = mpsc::channel::<Output>(CHANNEL_CAPACITY);
    let handle = tokio::task::spawn_blocking(move || {
        while let Some(output) = rx.blocking_recv() {
            match &output {
                Output::Records { stream, records } => sink.records(stream, records)?,
                Output::State { stream, state } => sink.state(stream, state)?,
                Output::Message(message) => sink.message(message)?,
            }
        }
        sink.finish()?;
        Ok(sink)
    });
    (tx, handle)
}
