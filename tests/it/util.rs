//! Running the binary against the emulator, and reading what it printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use source_stripe::emulator::{self, Emulator, Running, Scope};

pub const BIN: &str = env!("CARGO_BIN_EXE_source-stripe");

/// Every key the tests use: none may appear in any output.
pub const KEYS: [&str; 3] = [
    emulator::DEFAULT_TEST_KEY,
    emulator::DEFAULT_LIVE_KEY,
    emulator::DEFAULT_RESTRICTED_KEY,
];

pub fn platform_test() -> Scope {
    Scope {
        account: None,
        livemode: false,
    }
}

/// An emulator with a frozen clock and a small data set.
pub async fn start_emulator(size: usize) -> Running {
    Emulator::start(emulator::Config {
        size,
        frozen_clock: true,
        ..emulator::Config::default()
    })
    .await
    .expect("the emulator starts")
}

/// A temporary folder with the config (and later catalog and state) files.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// The config for the emulator with the given key, plus `extra` fields.
    pub fn config(&self, running: &Running, key: &str, extra: Value) -> PathBuf {
        let mut config = json!({
            "client_secret": key,
            "api_base": running.base_url(),
            "call_rate_limit": 2000,
            "start_date": "2000-01-01T00:00:00Z",
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        self.write("config.json", &config.to_string())
    }

    pub fn catalog(&self, streams: &[(&str, &str)]) -> PathBuf {
        let streams: Vec<Value> = streams
            .iter()
            .map(|(name, mode)| {
                json!({
                    "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                    "sync_mode": mode,
                    "destination_sync_mode": "append",
                })
            })
            .collect();
        self.write("catalog.json", &json!({ "streams": streams }).to_string())
    }
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub messages: Vec<Value>,
    pub stderr: String,
}

impl Run {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    pub fn records(&self, stream: &str) -> Vec<&Value> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .map(|m| &m["record"]["data"])
            .collect()
    }

    /// Ids of a stream's records, asserting each arrives once.
    pub fn unique_ids(&self, stream: &str) -> BTreeSet<String> {
        let ids: Vec<String> = self.record_ids(stream);
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "{stream}: every record arrives once");
        set
    }

    pub fn record_ids(&self, stream: &str) -> Vec<String> {
        self.records(stream)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The last STATE of every stream, as a state file for the next run.
    pub fn state_file(&self) -> String {
        last_states(&self.messages)
    }

    /// The last `stream_state` of every stream.
    pub fn stream_states(&self) -> BTreeMap<String, Value> {
        self.of_type("STATE")
            .into_iter()
            .map(|m| {
                let stream = &m["state"]["stream"];
                (
                    stream["stream_descriptor"]["name"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    stream["stream_state"].clone(),
                )
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<&Value> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .map(|m| &m["trace"]["error"])
            .collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.of_type("LOG")
            .iter()
            .map(|m| m["log"]["message"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn statuses(&self, stream: &str) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| {
                m["type"] == "TRACE"
                    && m["trace"]["type"] == "STREAM_STATUS"
                    && m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
            })
            .map(|m| {
                m["trace"]["stream_status"]["status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

pub fn last_states(messages: &[Value]) -> String {
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for m in messages.iter().filter(|m| m["type"] == "STATE") {
        let name = m["state"]["stream"]["stream_descriptor"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        last.insert(name, m["state"].clone());
    }
    Value::Array(last.into_values().collect()).to_string()
}

/// Runs the binary with `args`, checks its output, and parses it.
pub async fn run(args: &[&str]) -> Run {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    assert_no_secrets(&stdout);
    assert_no_secrets(&stderr);
    Run {
        code: output.status.code().unwrap_or(-1),
        messages: parse_messages(&stdout),
        stderr,
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn assert_no_secrets(text: &str) {
    for key in KEYS {
        assert!(!text.contains(key), "an API key leaked into the output");
    }
}

/// Parses protocol lines and validates each against the Airbyte protocol schema.
pub fn parse_messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let validator = protocol_validator();
            let errors: Vec<String> = validator
                .iter_errors(&message)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "not an AirbyteMessage: {errors:?}\n{line}"
            );
            message
        })
        .collect()
}

fn protocol_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let protocol: Value = serde_json::from_str(include_str!(
            "../../reference/airbyte-protocol/airbyte_protocol.json"
        ))
        .unwrap();
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": protocol["definitions"],
            "$ref": "#/definitions/AirbyteMessage",
        });
        jsonschema::validator_for(&schema).expect("the protocol schema compiles")
    })
}

/// The stream's JSON schema from the connector's catalog.
pub fn stream_validator(catalog: &Value, stream: &str) -> jsonschema::Validator {
    let entry = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stream)
        .unwrap_or_else(|| panic!("{stream} is in the catalog"));
    jsonschema::validator_for(&entry["json_schema"]).expect("the stream schema compiles")
}

/// Ids the emulator holds for a stream.
pub fn emulator_ids(emulator: &Emulator, scope: &Scope, stream: &str) -> BTreeSet<String> {
    emulator.ids(scope, stream).into_iter().collect()
}
