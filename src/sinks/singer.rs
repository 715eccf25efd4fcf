//! The Singer sink: SCHEMA, RECORD and STATE messages as JSON lines on a writer (stdout
//! in a real run), for Meltano and other Singer runners.
//!
//! - A stream's SCHEMA comes when the stream starts, before its first RECORD: its JSON
//!   schema, `key_properties` `["id"]` (none for a stream without a key) and its cursor
//!   as `bookmark_properties`.
//! - A RECORD's `record` is the same object the Airbyte mode emits, copied verbatim,
//!   with `time_extracted` (RFC 3339, UTC).
//! - Singer runners keep only the last STATE, so every STATE carries the cursors of
//!   every stream: `{"bookmarks": {"<stream>": <stream_state>, …}}`, where each
//!   `stream_state` is exactly the Airbyte mode's per-stream state. Streams the sync
//!   does not read keep the bookmark they came in with. A STATE covers every record
//!   written before it, and is flushed before the sink goes on. The output ends with
//!   a STATE of every bookmark, even after a sync that failed part-way.
//! - Singer has no log or error message: LOG and TRACE errors go to stderr for people.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::Sink;
use crate::protocol::AirbyteMessage;
use crate::protocol::airbyte::StreamStatus;
use crate::streams;

pub struct SingerLines<W: Write> {
    out: W,
    /// The latest state of every stream, including those this sync does not read.
    bookmarks: BTreeMap<String, Value>,
    /// Streams whose SCHEMA has been written.
    schemas: HashSet<String>,
    /// Error messages the sync reported, in order.
    errors: Vec<String>,
}

impl<W: Write> SingerLines<W> {
    /// A sink that starts from `bookmarks`, the per-stream states the sync was given.
    pub fn new(out: W, bookmarks: BTreeMap<String, Value>) -> Self {
        SingerLines {
            out,
            bookmarks,
            schemas: HashSet::new(),
            errors: Vec::new(),
        }
    }

    /// Error messages the sync reported, in order.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn line(&mut self, message: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    fn schema(&mut self, stream: &str) -> io::Result<()> {
        if self.schemas.contains(stream) {
            return Ok(());
        }
        self.schemas.insert(stream.to_owned());
        let def = streams::find(stream);
        let mut message = json!({
            "type": "SCHEMA",
            "stream": stream,
            "schema": def.map_or(json!({}), streams::singer::schema),
            "key_properties": def
                .map_or(Some("id"), |d| d.primary_key())
                .into_iter()
                .collect::<Vec<_>>(),
        });
        if let Some(cursor) = def.and_then(|d| d.cursor_field()) {
            message["bookmark_properties"] = json!([cursor]);
        }
        self.line(&message)
    }

    fn write_state(&mut self) -> io::Result<()> {
        let message = json!({"type": "STATE", "value": {"bookmarks": &self.bookmarks}});
        self.line(&message)?;
        // A STATE is a promise: what it covers must have left the process.
        self.out.flush()
    }
}

/// Now in RFC 3339, UTC, as Singer's `time_extracted`.
fn time_extracted() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        // Formatting a UTC time of this era as RFC 3339 cannot fail; an empty value
        // would only drop an optional field's meaning, not the record.
        .unwrap_or_default()
}

impl<W: Write + Send> Sink for SingerLines<W> {
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()> {
        self.schema(stream)?;
        let mut prefix = b"{\"type\":\"RECORD\",\"stream\":".to_vec();
        serde_json::to_writer(&mut prefix, stream)?;
        prefix.extend_from_slice(b",\"time_extracted\":");
        serde_json::to_writer(&mut prefix, &time_extracted())?;
        prefix.extend_from_slice(b",\"record\":");
        for record in records {
            self.out.write_all(&prefix)?;
            // On one line, whatever the whitespace Stripe sent.
            self.out
                .write_all(crate::stripe::scan::compact(record).as_bytes())?;
            self.out.write_all(b"}\n")?;
        }
        Ok(())
    }

    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()> {
        self.bookmarks.insert(stream.to_owned(), state.clone());
        self.write_state()
    }

    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        match message {
            AirbyteMessage::Log { log } => {
                writeln!(io::stderr().lock(), "{}: {}", log.level, log.message)
            }
            AirbyteMessage::Trace { trace } => {
                if let Some(error) = &trace.error {
                    self.errors.push(error.message.clone());
                    writeln!(io::stderr().lock(), "error: {}", error.message)?;
                }
                match &trace.stream_status {
                    Some(status) if status.status == StreamStatus::Started => {
                        self.schema(&status.stream_descriptor.name)
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        // End on a STATE that covers everything: some targets (target-jsonl) pass on
        // a STATE only when no RECORD follows it, and when the sync wrote none, the
        // runner must still get back the bookmarks it passed in.
        if !self.bookmarks.is_empty() {
            self.write_state()?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(sink: SingerLines<Vec<u8>>) -> Vec<Value> {
        String::from_utf8(sink.into_inner())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn schema_then_records_then_a_state_with_every_bookmark() {
        let given = BTreeMap::from([("events".to_owned(), json!({"created": 1_700_000_000}))]);
        let mut sink = SingerLines::new(Vec::new(), given);
        sink.message(&AirbyteMessage::stream_status(
            "customers",
            StreamStatus::Started,
        ))
        .unwrap();
        sink.records("customers", &[r#"{"id":"cus_1","amount":1.50}"#.to_owned()])
            .unwrap();
        sink.state("customers", &json!({"updated": 1_700_000_100}))
            .unwrap();
        sink.finish().unwrap();
        let out = lines(sink);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[3], out[2], "the last line is the full STATE again");
        assert_eq!(out[0]["type"], "SCHEMA");
        assert_eq!(out[0]["stream"], "customers");
        assert_eq!(out[0]["key_properties"], json!(["id"]));
        assert_eq!(out[0]["bookmark_properties"], json!(["updated"]));
        assert!(out[0]["schema"]["properties"]["email"].is_object());
        assert_eq!(out[1]["type"], "RECORD");
        assert_eq!(out[1]["record"], json!({"id": "cus_1", "amount": 1.5}));
        let extracted = out[1]["time_extracted"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(extracted, &Rfc3339).is_ok(),
            "{extracted}"
        );
        assert_eq!(
            out[2],
            json!({"type": "STATE", "value": {"bookmarks": {
                "customers": {"updated": 1_700_000_100},
                "events": {"created": 1_700_000_000}}}})
        );
    }

    #[test]
    fn the_given_state_is_passed_on_at_the_end() {
        let given = BTreeMap::from([("events".to_owned(), json!({"created": 1_700_000_000}))]);
        let mut sink = SingerLines::new(Vec::new(), given);
        sink.records("account", &[r#"{"id":"acct_1"}"#.to_owned()])
            .unwrap();
        sink.finish().unwrap();
        let out = lines(sink);
        assert_eq!(out[0]["type"], "SCHEMA");
        assert!(out[0].get("bookmark_properties").is_none());
        assert_eq!(
            out.last().unwrap(),
            &json!({"type": "STATE", "value": {"bookmarks": {"events": {"created": 1_700_000_000}}}})
        );
    }
}
