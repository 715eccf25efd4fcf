//! The Airbyte sink: protocol messages as JSON lines on a writer (stdout in a real run).

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde_json::Value;

use super::Sink;
use crate::protocol::airbyte::StreamStatus;
use crate::protocol::{AirbyteMessage, Writer, now_ms};

pub struct AirbyteLines<W: Write> {
    writer: Writer<W>,
    /// Records per stream since its last STATE, for the state's `sourceStats`.
    since_state: HashMap<String, u64>,
    /// Streams whose RUNNING status has been said (on their first record).
    running: HashSet<String>,
}

impl<W: Write> AirbyteLines<W> {
    pub fn new(out: W) -> Self {
        AirbyteLines {
            writer: Writer::new(out),
            since_state: HashMap::new(),
            running: HashSet::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }
}

impl<W: Write + Send> Sink for AirbyteLines<W> {
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()> {
        if !self.since_state.contains_key(stream) && !self.running.contains(stream) {
            self.running.insert(stream.to_owned());
            self.writer.message(&AirbyteMessage::stream_status(
                stream,
                StreamStatus::Running,
            ))?;
        }
        let emitted_at = now_ms();
        for record in records {
            self.writer.record(stream, record, emitted_at)?;
        }
        *self.since_state.entry(stream.to_owned()).or_default() += records.len() as u64;
        Ok(())
    }

    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()> {
        let count = self.since_state.remove(stream).unwrap_or(0);
        self.writer
            .message(&AirbyteMessage::state(stream, state.clone(), count))?;
        // A STATE is a promise: what it covers must have left the process.
        self.writer.flush()
    }

    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        self.writer.message(message)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
