//! Airbyte protocol message types (names as in `airbyte_protocol.yaml`) and a writer of
//! JSON lines, generic over `io::Write` so tests write into a `Vec<u8>`.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use crate::error::FailureType;

pub const PROTOCOL_VERSION: &str = "0.5.2";

/// Milliseconds since the Unix epoch, the protocol's `emitted_at`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AirbyteMessage {
    Spec {
        spec: Value,
    },
    ConnectionStatus {
        #[serde(rename = "connectionStatus")]
        connection_status: AirbyteConnectionStatus,
    },
    Catalog {
        catalog: Value,
    },
    Log {
        log: AirbyteLogMessage,
    },
    Trace {
        trace: AirbyteTraceMessage,
    },
    State {
        state: AirbyteStateMessage,
    },
}

#[derive(Debug, Serialize)]
pub struct AirbyteConnectionStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AirbyteLogMessage {
    pub level: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct AirbyteTraceMessage {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub emitted_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AirbyteErrorTraceMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<AirbyteStreamStatusTraceMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<AirbyteEstimateTraceMessage>,
}

/// A guess at how many rows a stream will emit in this sync (the Airbyte UI shows
/// progress from it).
#[derive(Debug, Serialize)]
pub struct AirbyteEstimateTraceMessage {
    pub name: String,
    /// `STREAM`: a per-stream estimate.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub row_estimate: u64,
}

#[derive(Debug, Serialize)]
pub struct AirbyteErrorTraceMessage {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    pub failure_type: FailureType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_descriptor: Option<StreamDescriptor>,
}

#[derive(Debug, Serialize)]
pub struct AirbyteStreamStatusTraceMessage {
    pub stream_descriptor: StreamDescriptor,
    pub status: StreamStatus,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamDescriptor {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct AirbyteStateMessage {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub stream: AirbyteStreamState,
    #[serde(rename = "sourceStats")]
    pub source_stats: AirbyteStateStats,
}

#[derive(Debug, Serialize)]
pub struct AirbyteStreamState {
    pub stream_descriptor: StreamDescriptor,
    pub stream_state: Value,
}

#[derive(Debug, Serialize)]
pub struct AirbyteStateStats {
    #[serde(rename = "recordCount")]
    pub record_count: f64,
}

impl AirbyteMessage {
    pub fn log(level: &'static str, message: impl Into<String>) -> Self {
        AirbyteMessage::Log {
            log: AirbyteLogMessage {
                level,
                message: message.into(),
            },
        }
    }

    pub fn error(
        message: String,
        internal_message: Option<String>,
        failure_type: FailureType,
        stream: Option<&str>,
    ) -> Self {
        AirbyteMessage::Trace {
            trace: AirbyteTraceMessage {
                kind: "ERROR",
                emitted_at: now_ms() as f64,
                error: Some(AirbyteErrorTraceMessage {
                    message,
                    internal_message,
                    failure_type,
                    stream_descriptor: stream.map(|name| StreamDescriptor {
                        name: name.to_owned(),
                    }),
                }),
                stream_status: None,
                estimate: None,
            },
        }
    }

    pub fn stream_status(stream: &str, status: StreamStatus) -> Self {
        AirbyteMessage::Trace {
            trace: AirbyteTraceMessage {
                kind: "STREAM_STATUS",
                emitted_at: now_ms() as f64,
                error: None,
                stream_status: Some(AirbyteStreamStatusTraceMessage {
                    stream_descriptor: StreamDescriptor {
                        name: stream.to_owned(),
                    },
                    status,
                }),
                estimate: None,
            },
        }
    }

    /// A `TRACE` `ESTIMATE` of the rows `stream` will emit in this sync.
    pub fn estimate(stream: &str, row_estimate: u64) -> Self {
        AirbyteMessage::Trace {
            trace: AirbyteTraceMessage {
                kind: "ESTIMATE",
                emitted_at: now_ms() as f64,
                error: None,
                stream_status: None,
                estimate: Some(AirbyteEstimateTraceMessage {
                    name: stream.to_owned(),
                    kind: "STREAM",
                    row_estimate,
                }),
            },
        }
    }

    pub fn state(stream: &str, stream_state: Value, record_count: u64) -> Self {
        AirbyteMessage::State {
            state: AirbyteStateMessage {
                kind: "STREAM",
                stream: AirbyteStreamState {
                    stream_descriptor: StreamDescriptor {
                        name: stream.to_owned(),
                    },
                    stream_state,
                },
                source_stats: AirbyteStateStats {
                    record_count: record_count as f64,
                },
            },
        }
    }
}

/// Writes protocol messages as JSON lines.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out }
    }

    /// # Errors
    /// The underlying writer's error (a closed stdout is `BrokenPipe`).
    pub fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    /// Writes one RECORD line around the record's JSON text, which is copied as is (on
    /// one line: [`crate::stripe::scan::compact`]).
    ///
    /// # Errors
    /// The underlying writer's error.
    pub fn record(&mut self, stream: &str, data: &str, emitted_at: i64) -> io::Result<()> {
        self.out
            .write_all(b"{\"type\":\"RECORD\",\"record\":{\"stream\":")?;
        serde_json::to_writer(&mut self.out, stream)?;
        self.out.write_all(b",\"data\":")?;
        self.out
            .write_all(crate::stripe::scan::compact(data).as_bytes())?;
        writeln!(self.out, ",\"emitted_at\":{emitted_at}}}}}")
    }

    /// # Errors
    /// The underlying writer's error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_line_embeds_the_data_verbatim() {
        let mut writer = Writer::new(Vec::new());
        writer
            .record("customers", r#"{"id":"cus_1","amount":1.50}"#, 7)
            .unwrap();
        let line = String::from_utf8(writer.into_inner()).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"RECORD\",\"record\":{\"stream\":\"customers\",\"data\":{\"id\":\"cus_1\",\"amount\":1.50},\"emitted_at\":7}}\n"
        );
    }

    #[test]
    fn a_pretty_printed_record_is_one_line() {
        let mut writer = Writer::new(Vec::new());
        writer
            .record(
                "customers",
                "{\n  \"id\": \"cus_1\",\n  \"amount\": 1.50\n}",
                7,
            )
            .unwrap();
        let line = String::from_utf8(writer.into_inner()).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"RECORD\",\"record\":{\"stream\":\"customers\",\"data\":{\"id\":\"cus_1\",\"amount\":1.50},\"emitted_at\":7}}\n"
        );
    }

    #[test]
    fn state_message_has_the_airbyte_shape() {
        let message = AirbyteMessage::state("charges", serde_json::json!({"updated": 5}), 3);
        let value = serde_json::to_value(&message).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "STATE", "state": {"type": "STREAM",
                "stream": {"stream_descriptor": {"name": "charges"}, "stream_state": {"updated": 5}},
                "sourceStats": {"recordCount": 3.0}}})
        );
    }
}
