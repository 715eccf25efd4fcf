//! A folder of JSON-lines files, one per stream (`<stream>.jsonl`), with the latest
//! state of every stream in `state.json` (a list of Airbyte STATE messages, ready to be
//! passed back as `--state`). Used by the `demo` command.
//!
//! Records are flushed before the state that covers them is written, and the state file
//! is replaced atomically (written to a temporary name, then renamed).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Sink;
use crate::protocol::AirbyteMessage;

pub struct Folder {
    dir: PathBuf,
    files: BTreeMap<String, BufWriter<File>>,
    counts: BTreeMap<String, u64>,
    states: BTreeMap<String, Value>,
    errors: Vec<String>,
}

impl Folder {
    /// # Errors
    /// When the folder cannot be created.
    pub fn create(dir: &Path) -> io::Result<Folder> {
        fs::create_dir_all(dir)?;
        Ok(Folder {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
            counts: BTreeMap::new(),
            states: BTreeMap::new(),
            errors: Vec::new(),
        })
    }

    /// Records written per stream.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Error messages the sync reported, in order.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn write_state_file(&mut self) -> io::Result<()> {
        for file in self.files.values_mut() {
            file.flush()?;
        }
        let messages: Vec<AirbyteMessage> = self
            .states
            .iter()
            .map(|(stream, state)| AirbyteMessage::state(stream, state.clone(), 0))
            .collect();
        let tmp = self.dir.join(".state.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&messages)?)?;
        fs::rename(tmp, self.dir.join("state.json"))
    }
}

impl Sink for Folder {
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()> {
        if !self.files.contains_key(stream) {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(format!("{stream}.jsonl")))?;
            self.files
                .insert(stream.to_owned(), BufWriter::with_capacity(1 << 16, file));
        }
        if let Some(file) = self.files.get_mut(stream) {
            for record in records {
                file.write_all(record.as_bytes())?;
                file.write_all(b"\n")?;
            }
        }
        *self.counts.entry(stream.to_owned()).or_default() += records.len() as u64;
        Ok(())
    }

    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()> {
        self.states.insert(stream.to_owned(), state.clone());
        self.write_state_file()
    }

    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        match message {
            AirbyteMessage::Log { log } => eprintln!("{}: {}", log.level, log.message),
            AirbyteMessage::Trace { trace } => {
                if let Some(error) = &trace.error {
                    eprintln!("ERROR: {}", error.message);
                    self.errors.push(error.message.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_state_file()
    }
}
