//! Running the binary against the emulator, and reading what it printed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use source_stripe::emulator::{self, Emulator, Running, Scope};

pub const BIN: &str = env!("CARGO_BIN_EXE_source-stripe");
pub const TAP: &str = env!("CARGO_BIN_EXE_tap-stripe");

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
            // The emulator lists events at once (unless a test delays them, see
            // late_events.rs), so the events pass may read up to its clock.
            "event_settle_secs": 0,
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

/// Every stream in `mode`, except `account`, which only has full refresh.
pub fn every_stream(mode: &str) -> Vec<(&'static str, &str)> {
    source_stripe::streams::STREAMS
        .iter()
        .map(|s| (s.name, if s.single { "full_refresh" } else { mode }))
        .collect()
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

/// `read` with a config, a catalog and, for an incremental sync, a state file.
pub async fn read(config: &Path, catalog: &Path, state: Option<&Path>) -> Run {
    let mut args = vec!["read", "--config", path(config), "--catalog", path(catalog)];
    if let Some(state) = state {
        args.extend(["--state", path(state)]);
    }
    run(&args).await
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn assert_no_secrets(text: &str) {
    for key in KEYS {
        assert!(!text.contains(key), "an API key leaked into the output");
    }
}

/// Parses protocol lines and validates each against the Airbyte protocol schema, and
/// has Airbyte's Python protocol models parse them too.
pub fn parse_messages(stdout: &str) -> Vec<Value> {
    check_with_protocol_models(stdout);
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

/// The folder of a real client's virtual environment (`tools/setup-clients.sh` makes
/// them); fails the test, saying what to do, when it is missing.
pub fn client_venv(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/clients")
        .join(name);
    assert!(
        dir.join("bin/python").exists(),
        "the `{name}` client is not installed in {}: run tools/setup-clients.sh (then cargo test)",
        dir.display()
    );
    dir
}

/// An executable of a real client's virtual environment (see [`client_venv`]).
pub fn client(name: &str, executable: &str) -> PathBuf {
    client_venv(name).join("bin").join(executable)
}

/// A script of tests/clients/.
pub fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Environment for every Python client: no network look-ups, no telemetry.
pub const OFFLINE_ENV: [(&str, &str); 5] = [
    ("AIRBYTE_OFFLINE_MODE", "1"),
    ("DO_NOT_TRACK", "1"),
    ("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ("MELTANO_DISABLE_TRACKING", "true"),
    ("PIP_NO_INDEX", "1"),
];

/// One `tests/clients/check_airbyte_messages.py` for the whole test run: starting
/// Python and pydantic per run would cost more than the checks. Tests run in
/// parallel; the mutex hands the checker one run's output at a time.
struct Checker {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn check_with_protocol_models(stdout: &str) {
    static CHECKER: OnceLock<Mutex<Checker>> = OnceLock::new();
    let checker = CHECKER.get_or_init(|| {
        let mut child = Command::new(client("protocol", "python"))
            .arg(client_script("check_airbyte_messages.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the protocol models checker starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Mutex::new(Checker {
            _child: child,
            stdin,
            stdout,
        })
    });
    // A test that panicked while holding the lock left the checker between batches
    // only if it panicked here, which fails that test anyway.
    let mut checker = checker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lines = stdout.lines().filter(|l| !l.is_empty()).count();
    for line in stdout.lines().filter(|l| !l.is_empty()) {
        writeln!(checker.stdin, "{line}").unwrap();
    }
    writeln!(checker.stdin, "END").unwrap();
    checker.stdin.flush().unwrap();
    let mut answer = String::new();
    checker.stdout.read_line(&mut answer).unwrap();
    assert_eq!(
        answer.trim_end(),
        format!("ok {lines}"),
        "airbyte-protocol-models rejects a message"
    );
}

/// The ids the emulator holds for every list stream (all but `account`).
pub fn all_ids(emulator: &Emulator, scope: &Scope) -> BTreeMap<&'static str, BTreeSet<String>> {
    source_stripe::streams::STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|s| (s.name, emulator_ids(emulator, scope, s.name)))
        .collect()
}

/// The ids an incremental sync after an advance reads per list stream (a full refresh
/// only stream: all of them). `before` is [`all_ids`] before the advance.
pub fn expected_changes(
    emulator: &Emulator,
    scope: &Scope,
    before: &BTreeMap<&'static str, BTreeSet<String>>,
    report: &source_stripe::emulator::AdvanceReport,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    use source_stripe::streams::{Cursor, STREAMS};
    STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|stream| {
            let expected = match stream.cursor {
                // Full refresh only (usage summaries): everything, every sync.
                None => emulator_ids(emulator, scope, stream.name),
                // A child changes with its parent: the children of every parent changed
                // with an event (the emulator deletes no parent that has children).
                // A child with events of its own (bank accounts) also gets those.
                _ if stream.child.is_some() => {
                    let parent = stream.child.as_ref().unwrap().parent;
                    report
                        .changes
                        .iter()
                        .filter(|c| c.stream == parent && !c.event_type.is_empty())
                        .flat_map(|c| {
                            emulator
                                .child_ids(scope, stream.name, &c.id)
                                .unwrap_or_default()
                        })
                        .chain(
                            report
                                .changes
                                .iter()
                                .filter(|c| c.stream == stream.name && !c.event_type.is_empty())
                                .map(|c| c.id.clone()),
                        )
                        .collect()
                }
                Some(Cursor::Created) => emulator_ids(emulator, scope, stream.name)
                    .difference(&before[stream.name])
                    .cloned()
                    .collect(),
                // A change Stripe records no event for cannot be seen incrementally.
                _ => report
                    .changes
                    .iter()
                    .filter(|c| c.stream == stream.name && !c.event_type.is_empty())
                    .map(|c| c.id.clone())
                    .collect(),
            };
            (stream.name, expected)
        })
        .collect()
}

/// Runs a read and kills it once it has printed `states` STATE messages.
pub async fn read_killed_after(
    config: &std::path::Path,
    catalog: &std::path::Path,
    states: usize,
) -> Vec<Value> {
    let mut child = tokio::process::Command::new(BIN)
        .args(["read", "--config", path(config), "--catalog", path(catalog)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let mut seen = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        seen += usize::from(line.contains("\"type\":\"STATE\""));
        text.push_str(&line);
        text.push('\n');
        if seen == states {
            break;
        }
    }
    child.kill().await.unwrap();
    assert_eq!(seen, states, "the sync was killed mid-way");
    parse_messages(&text)
}
