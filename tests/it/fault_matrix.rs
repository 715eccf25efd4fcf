//! The fault matrix: every fault a network, a proxy or Stripe itself can throw, in Airbyte
//! mode and in Parquet mode. Each case ends with exactly the ids of a clean run: either
//! the faulted run itself, or (for a fault that must stop a stream with a clear error)
//! that run plus one resumed from what it saved.
//!
//! One table, [`CASES`]; one test per case (so they run in parallel), each in both modes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use source_stripe::emulator::{DEFAULT_TEST_KEY, Emulator, Faults, Outage, Running};

use crate::util::{Files, emulator_ids, path, platform_test, read, start_emulator};

/// The streams every case reads: an `updated` stream backfilled from the list endpoint
/// with a child-like expansion (charges), a `created` one, and two more.
pub(crate) const STREAMS: [&str; 4] = ["customers", "charges", "balance_transactions", "refunds"];

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Airbyte,
    Parquet,
}

/// How a faulted run must end.
#[derive(Clone, Copy)]
enum Ends {
    /// Successfully, with every id once.
    Clean,
    /// Non-zero, with an error containing the text (and, in Airbyte mode, a TRACE of
    /// this failure_type); a resumed run without the fault then completes the ids.
    Error(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    faults: fn() -> Faults,
    /// Config fields the case needs (a short request timeout for stalls).
    config: fn() -> Value,
    ends: Ends,
}

fn none() -> Value {
    json!({})
}

/// How long the outage lasts: `RELIABILITY_OUTAGE_SECS` (30 for the full
/// half-minute), 4 s by default to keep CI time down.
fn outage_secs() -> u64 {
    std::env::var("RELIABILITY_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

const CASES: &[Case] = &[
    Case {
        name: "storm_429",
        // Far below the client's 2000/s, with Retry-After on every 429.
        faults: || Faults {
            rate_limit_per_sec: Some(8.0),
            retry_after_secs: Some(1),
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "should_retry_false_429",
        faults: || Faults {
            no_retry_429_rate: 1.0,
            from_request: 12,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Error("Stripe-Should-Retry: false", "transient_error"),
    },
    Case {
        name: "server_errors_10_percent",
        faults: || Faults {
            server_error_rate: 0.10,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "outage",
        faults: || Faults {
            outage: Some(Outage {
                after_requests: 12,
                duration: Duration::from_secs(outage_secs()),
            }),
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "connection_resets",
        faults: || Faults {
            drop_rate: 0.10,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "body_cut_connection_closed",
        faults: || Faults {
            truncate_rate: 0.10,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "body_cut_mid_json_clean_framing",
        faults: || Faults {
            cut_json_rate: 0.10,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "slow_trickling_bodies",
        faults: || Faults {
            trickle_rate: 0.2,
            trickle_delay: Duration::from_millis(100),
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "stalled_connections",
        faults: || Faults {
            // A sync of 1500 objects makes few requests beyond the minimum: at 15% some
            // stall for certain (the test checks that one did).
            stall_rate: 0.15,
            stall: Duration::from_secs(60),
            ..Faults::default()
        },
        config: || json!({"request_timeout_secs": 2}),
        ends: Ends::Clean,
    },
    Case {
        name: "proxy_html_502",
        faults: || Faults {
            proxy_html_502_rate: 0.10,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Clean,
    },
    Case {
        name: "has_more_without_data",
        faults: || Faults {
            empty_page_with_more_rate: 1.0,
            from_request: 12,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Error("has_more: true", "system_error"),
    },
    Case {
        name: "oversized_answer",
        faults: || Faults {
            oversized_rate: 1.0,
            oversized_bytes: 40 * 1024 * 1024,
            from_request: 12,
            ..Faults::default()
        },
        config: none,
        ends: Ends::Error("larger than 32 MiB", "system_error"),
    },
];

/// One sync's files: config, catalog, the Airbyte state or the Parquet folder.
pub(crate) struct Sync {
    pub files: Files,
    pub config: PathBuf,
    pub catalog: PathBuf,
    pub dir: PathBuf,
    pub mode: Mode,
}

/// What one run printed or wrote.
pub(crate) struct Outcome {
    pub code: i32,
    /// Ids emitted (Airbyte: this run's RECORDs; Parquet: every row in the folder).
    pub ids: BTreeMap<&'static str, Vec<String>>,
    /// Error texts: TRACE messages (Airbyte) or stderr (Parquet).
    pub errors: Vec<String>,
    pub failure_types: Vec<String>,
}

impl Sync {
    pub(crate) fn new(running: &Running, mode: Mode, extra: Value) -> Sync {
        let files = Files::new();
        let mut fields = json!({"slice_range": 60});
        for (k, v) in extra.as_object().unwrap() {
            fields[k] = v.clone();
        }
        let config = files.config(running, DEFAULT_TEST_KEY, fields);
        let catalog = files.catalog(&STREAMS.map(|s| (s, "incremental")));
        let dir = files.dir.path().join("out");
        Sync {
            files,
            config,
            catalog,
            dir,
            mode,
        }
    }

    fn state_path(&self) -> PathBuf {
        self.files.dir.path().join("state.json")
    }

    /// The arguments of the next run (from the saved state, if any).
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["read", "--config", path(&self.config)]
            .map(str::to_owned)
            .to_vec();
        match self.mode {
            Mode::Airbyte => {
                args.extend(["--catalog".to_owned(), path(&self.catalog).to_owned()]);
                if self.state_path().exists() {
                    args.extend(["--state".to_owned(), path(&self.state_path()).to_owned()]);
                }
            }
            Mode::Parquet => args.extend([
                "--output-dir".to_owned(),
                path(&self.dir).to_owned(),
                "--streams".to_owned(),
                STREAMS.join(","),
                "--rows-per-file".to_owned(),
                "25".to_owned(),
            ]),
        }
        args
    }

    /// Runs once to the end; in Airbyte mode keeps its last states for the next run
    /// (merged over the ones it started from, as an orchestrator does).
    pub(crate) async fn run(&self) -> Outcome {
        match self.mode {
            Mode::Airbyte => {
                let state = self.state_path();
                let out = read(
                    &self.config,
                    &self.catalog,
                    state.exists().then_some(state.as_path()),
                )
                .await;
                self.save_airbyte_states(&out.messages);
                Outcome {
                    code: out.code,
                    ids: STREAMS.map(|s| (s, out.record_ids(s))).into(),
                    errors: out
                        .errors()
                        .iter()
                        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                    failure_types: out
                        .errors()
                        .iter()
                        .map(|e| e["failure_type"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                }
            }
            Mode::Parquet => {
                let args = self.args();
                let output = tokio::process::Command::new(crate::util::BIN)
                    .args(&args)
                    .output()
                    .await
                    .unwrap();
                let stdout = String::from_utf8(output.stdout).unwrap();
                let stderr = String::from_utf8(output.stderr).unwrap();
                crate::util::assert_no_secrets(&stdout);
                crate::util::assert_no_secrets(&stderr);
                Outcome {
                    code: output.status.code().unwrap_or(-1),
                    ids: parquet_ids(&self.dir),
                    errors: vec![stderr],
                    failure_types: Vec::new(),
                }
            }
        }
    }

    /// Merges a run's last STATE per stream over the saved ones.
    pub(crate) fn save_airbyte_states(&self, messages: &[Value]) {
        let path = self.state_path();
        let mut states: BTreeMap<String, Value> = if path.exists() {
            let saved: Vec<Value> =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            saved
                .into_iter()
                .map(|s| {
                    let name = s["stream"]["stream_descriptor"]["name"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    (name, s)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        for m in messages.iter().filter(|m| m["type"] == "STATE") {
            let name = m["state"]["stream"]["stream_descriptor"]["name"]
                .as_str()
                .unwrap()
                .to_owned();
            states.insert(name, m["state"].clone());
        }
        if !states.is_empty() {
            let list: Vec<Value> = states.into_values().collect();
            std::fs::write(&path, Value::Array(list).to_string()).unwrap();
        }
    }
}

/// Every id in a Parquet folder, per stream, with repeats.
pub(crate) fn parquet_ids(dir: &Path) -> BTreeMap<&'static str, Vec<String>> {
    STREAMS
        .map(|s| {
            let ids = if dir.exists() {
                crate::parquet::read_stream(dir, s)
                    .iter()
                    .map(|row| row.record["id"].as_str().unwrap().to_owned())
                    .collect()
            } else {
                Vec::new()
            };
            (s, ids)
        })
        .into()
}

pub(crate) fn as_sets(
    ids: &BTreeMap<&'static str, Vec<String>>,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    ids.iter()
        .map(|(s, v)| (*s, v.iter().cloned().collect()))
        .collect()
}

fn expected(emu: &Emulator) -> BTreeMap<&'static str, BTreeSet<String>> {
    STREAMS
        .map(|s| (s, emulator_ids(emu, &platform_test(), s)))
        .into()
}

/// A clean run's ids in `mode`: every id of the emulator, once.
async fn clean_ids(running: &Running, mode: Mode) -> BTreeMap<&'static str, BTreeSet<String>> {
    let sync = Sync::new(running, mode, json!({}));
    let out = sync.run().await;
    assert_eq!(out.code, 0, "the clean run succeeds: {:?}", out.errors);
    for (stream, ids) in &out.ids {
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{stream}: once each in a clean run"
        );
    }
    let ids = as_sets(&out.ids);
    assert_eq!(
        ids,
        expected(running.emulator()),
        "a clean run reads every id"
    );
    ids
}

async fn check(case: &Case, mode: Mode) {
    let started = std::time::Instant::now();
    // Enough objects that the faults, which start at the 12th request, hit a sync that
    // reads few pages more than it must.
    let running = start_emulator(1500).await;
    let emu = running.emulator();
    let clean = clean_ids(&running, mode).await;
    let clean_requests = emu.request_log().len();
    let before = emu.injected_faults();
    let log_start = emu.request_log().len();
    emu.set_faults(Faults {
        // Fault counters start at the emulator's start: offset past the clean run.
        from_request: (case.faults)().from_request + clean_requests as u64,
        outage: (case.faults)().outage.map(|o| Outage {
            after_requests: o.after_requests + clean_requests as u64,
            ..o
        }),
        ..(case.faults)()
    });
    let sync = Sync::new(&running, mode, (case.config)());
    let first = sync.run().await;
    let injected = emu.injected_faults() - before;
    assert!(injected > 0, "{} {mode:?}: the fault happened", case.name);
    let faulted_log = emu.request_log()[log_start..].to_vec();
    let ids = match case.ends {
        Ends::Clean => {
            assert_eq!(
                first.code, 0,
                "{} {mode:?}: the run rides the fault out: {:?}",
                case.name, first.errors
            );
            first.ids
        }
        Ends::Error(needle, failure_type) => {
            assert_ne!(first.code, 0, "{} {mode:?}: the run fails", case.name);
            assert!(
                first.errors.iter().any(|e| e.contains(needle)),
                "{} {mode:?}: a clear error with `{needle}`: {:?}",
                case.name,
                first.errors
            );
            if let Mode::Airbyte = mode {
                assert!(
                    first.failure_types.iter().all(|t| t == failure_type),
                    "{} {mode:?}: {failure_type}: {:?}",
                    case.name,
                    first.failure_types
                );
            }
            // No endless loop: the faulted run asked no more than a clean run would,
            // give or take the retries of its first failures.
            assert!(
                faulted_log.len() <= clean_requests + 40,
                "{} {mode:?}: {} requests, a clean run needs {clean_requests}",
                case.name,
                faulted_log.len()
            );
            emu.set_faults(Faults::default());
            let resumed = sync.run().await;
            assert_eq!(
                resumed.code, 0,
                "{} {mode:?}: the resumed run completes: {:?}",
                case.name, resumed.errors
            );
            match mode {
                // The folder holds both runs.
                Mode::Parquet => resumed.ids,
                Mode::Airbyte => {
                    let mut union = first.ids;
                    for (s, more) in resumed.ids {
                        union.entry(s).or_default().extend(more);
                    }
                    union
                }
            }
        }
    };
    if let Ends::Clean = case.ends {
        for (stream, ids) in &ids {
            let unique: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(
                unique.len(),
                ids.len(),
                "{} {mode:?} {stream}: every record once",
                case.name
            );
        }
    }
    assert_eq!(
        as_sets(&ids),
        clean,
        "{} {mode:?}: exactly the ids of a clean run",
        case.name
    );
    if case.name == "should_retry_false_429" {
        // Not retried blindly: a request refused with Stripe-Should-Retry: false is
        // never sent again by that run.
        for (i, refused) in faulted_log
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == 429)
        {
            assert!(
                faulted_log[i + 1..]
                    .iter()
                    .all(|r| (r.path.as_str(), r.query.as_str())
                        != (refused.path.as_str(), refused.query.as_str())),
                "{} {mode:?}: {} {} was retried",
                case.name,
                refused.path,
                refused.query
            );
        }
    }
    assert!(
        emu.request_log().iter().all(|r| r.method == "GET"),
        "only GET"
    );
    eprintln!(
        "fault matrix: {} {mode:?}: ids equal; {injected} faults injected, {} requests, {:.1} s",
        case.name,
        faulted_log.len(),
        started.elapsed().as_secs_f64()
    );
}

async fn check_both(name: &str) {
    let case = CASES.iter().find(|c| c.name == name).unwrap();
    check(case, Mode::Airbyte).await;
    check(case, Mode::Parquet).await;
}

macro_rules! matrix {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                check_both(stringify!($name)).await;
            }
        )*
        /// Every row of the table has its test.
        #[test]
        fn every_case_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for case in CASES {
                assert!(tested.contains(&case.name), "{} has no test", case.name);
            }
            assert_eq!(tested.len(), CASES.len());
        }
    };
}

matrix!(
    storm_429,
    should_retry_false_429,
    server_errors_10_percent,
    outage,
    connection_resets,
    body_cut_connection_closed,
    body_cut_mid_json_clean_framing,
    slow_trickling_bodies,
    stalled_connections,
    proxy_html_502,
    has_more_without_data,
    oversized_answer,
);
