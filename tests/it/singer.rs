//! The Singer tap (`tap-stripe`) as Meltano calls it: `--discover`, then `--catalog`
//! with a selection and `--state` with the last STATE's value.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, ChangeKind, DEFAULT_TEST_KEY};
use source_stripe::streams::STREAMS;

use crate::util::{
    Files, TAP, all_ids, assert_no_secrets, emulator_ids, expected_changes, path, platform_test,
    run, start_emulator,
};

/// What one run of the tap printed.
struct TapRun {
    code: i32,
    messages: Vec<Value>,
    stderr: String,
}

impl TapRun {
    fn records(&self, stream: &str) -> Vec<&Value> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "RECORD" && m["stream"] == stream)
            .map(|m| &m["record"])
            .collect()
    }

    fn ids(&self, stream: &str) -> Vec<String> {
        self.records(stream)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The value of the last STATE, as Meltano keeps it.
    fn last_state(&self) -> &Value {
        &self
            .messages
            .iter()
            .rev()
            .find(|m| m["type"] == "STATE")
            .expect("a STATE")["value"]
    }
}

async fn tap(args: &[&str]) -> TapRun {
    let output = tokio::process::Command::new(TAP)
        .args(args)
        .output()
        .await
        .expect("tap-stripe runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_no_secrets(&stdout);
    assert_no_secrets(&stderr);
    TapRun {
        code: output.status.code().unwrap_or(-1),
        messages: parse_singer(&stdout),
        stderr,
    }
}

/// Parses Singer lines and checks the protocol: known message types with their
/// required fields, and a stream's SCHEMA before its first RECORD.
fn parse_singer(stdout: &str) -> Vec<Value> {
    let mut schemas = BTreeSet::new();
    stdout
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let stream = message["stream"].as_str();
            match message["type"].as_str() {
                Some("SCHEMA") => {
                    assert!(message["schema"].is_object(), "{line}");
                    // Usage record summaries have no primary key (as Airbyte's).
                    let key = if stream == Some("usage_records") {
                        json!([])
                    } else {
                        json!(["id"])
                    };
                    assert_eq!(message["key_properties"], key, "{line}");
                    schemas.insert(stream.unwrap().to_owned());
                }
                Some("RECORD") => {
                    let stream = stream.unwrap();
                    assert!(
                        schemas.contains(stream),
                        "RECORD of {stream} before its SCHEMA"
                    );
                    assert!(message["record"].is_object());
                    let extracted = message["time_extracted"].as_str().unwrap();
                    assert!(
                        time::OffsetDateTime::parse(
                            extracted,
                            &time::format_description::well_known::Rfc3339
                        )
                        .is_ok(),
                        "{extracted}"
                    );
                }
                Some("STATE") => assert!(message["value"]["bookmarks"].is_object(), "{line}"),
                _ => panic!("not a Singer message: {line}"),
            }
            message
        })
        .collect()
}

/// The discovered catalog with only `streams` selected.
fn select(catalog: &Value, streams: &[&str]) -> Value {
    let mut catalog = catalog.clone();
    for entry in catalog["streams"].as_array_mut().unwrap() {
        let chosen = streams.contains(&entry["tap_stream_id"].as_str().unwrap());
        entry["metadata"][0]["metadata"]["selected"] = json!(chosen);
    }
    catalog
}

async fn discover(config: &std::path::Path) -> Value {
    let output = tokio::process::Command::new(TAP)
        .args(["--config", path(config), "--discover"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("the catalog is one JSON document")
}

/// Discover, read the selected streams, then read again with the state after a change:
/// the first read is everything, the second exactly the changes; each STATE carries
/// every stream's cursor, including those the read does not select.
#[tokio::test(flavor = "multi_thread")]
async fn tap_reads_selected_streams_then_only_changes() {
    let emulator = start_emulator(60).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = discover(&config).await;
    let all: Vec<&str> = STREAMS.iter().map(|s| s.name).collect();
    let everything = files.write("catalog.json", &select(&catalog, &all).to_string());

    let first = tap(&["--config", path(&config), "--catalog", path(&everything)]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = all_ids(emu, &scope);
    for (stream, ids) in &before {
        let got = first.ids(stream);
        assert_eq!(got.len(), ids.len(), "{stream}: each record once");
        assert_eq!(&got.into_iter().collect::<BTreeSet<_>>(), ids, "{stream}");
    }
    assert_eq!(first.records("account").len(), 1);
    let bookmarks = first.last_state()["bookmarks"].as_object().unwrap().clone();
    // Every list stream: incremental ones by their cursor, a full refresh only one
    // (usage summaries) as a finished full refresh.
    let incremental: BTreeSet<&str> = STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|s| s.name)
        .collect();
    assert_eq!(
        bookmarks
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        incremental,
        "the last STATE has every incremental stream"
    );
    for (stream, state) in &bookmarks {
        let def = STREAMS.iter().find(|s| s.name == stream).unwrap();
        let expected = match def.cursor {
            Some(cursor) => json!({ cursor.field(): emu.now() }),
            None => json!({"__ab_full_refresh_sync_complete": true}),
        };
        assert_eq!(state, &expected, "{stream}");
    }

    let report = emu.advance(&Advance {
        seconds: 3_600,
        creates: 4,
        updates: 8,
        deletes: 3,
        ..Advance::default()
    });
    let expected = expected_changes(emu, &scope, &before, &report);
    // Read only customers and events now: the other streams keep their bookmarks.
    let some = files.write(
        "some.json",
        &select(&catalog, &["customers", "events"]).to_string(),
    );
    let state = files.write("state.json", &first.last_state().to_string());
    let second = tap(&[
        "--config",
        path(&config),
        "--catalog",
        path(&some),
        "--state",
        path(&state),
    ])
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    for stream in ["customers", "events"] {
        let got: BTreeSet<String> = second.ids(stream).into_iter().collect();
        assert_eq!(got, expected[stream], "{stream}: exactly the changes");
    }
    assert!(second.records("charges").is_empty());
    let deleted = report
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Deleted && c.stream == "customers");
    if let Some(deleted) = deleted {
        assert!(
            second
                .records("customers")
                .iter()
                .any(|r| r["id"] == deleted.id.as_str() && r["is_deleted"] == true),
            "{} arrives flagged deleted",
            deleted.id
        );
    }
    let last = second.last_state()["bookmarks"].clone();
    assert_eq!(last["customers"], json!({"updated": emu.now()}));
    assert_eq!(last["events"], json!({"created": emu.now()}));
    assert_eq!(
        last["charges"], bookmarks["charges"],
        "an unselected stream keeps its bookmark"
    );
    assert_eq!(
        last.as_object().unwrap().len(),
        bookmarks.len(),
        "no bookmark is lost"
    );
}

/// The tap's records are the Airbyte mode's records, and each mode takes the other's
/// state.
#[tokio::test(flavor = "multi_thread")]
async fn singer_and_airbyte_modes_share_records_and_state() {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let singer_catalog = select(&discover(&config).await, &["customers", "charges"]);
    let singer_catalog = files.write("singer.json", &singer_catalog.to_string());
    let airbyte_catalog =
        files.catalog(&[("customers", "incremental"), ("charges", "incremental")]);

    let singer = tap(&[
        "--config",
        path(&config),
        "--catalog",
        path(&singer_catalog),
    ])
    .await;
    assert_eq!(singer.code, 0, "{}", singer.stderr);
    let airbyte = run(&[
        "read",
        "--config",
        path(&config),
        "--catalog",
        path(&airbyte_catalog),
    ])
    .await;
    assert_eq!(airbyte.code, 0, "{}", airbyte.stderr);
    for stream in ["customers", "charges"] {
        let by_id = |records: Vec<&Value>| -> BTreeMap<String, Value> {
            records
                .into_iter()
                .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
                .collect()
        };
        assert_eq!(
            by_id(singer.records(stream)),
            by_id(airbyte.records(stream)),
            "{stream}: the same objects"
        );
    }
    assert_eq!(
        singer.last_state()["bookmarks"]
            .as_object()
            .unwrap()
            .clone(),
        airbyte
            .stream_states()
            .into_iter()
            .collect::<serde_json::Map<String, Value>>(),
        "the bookmarks are the Airbyte stream states"
    );

    emu.advance(&Advance {
        seconds: 600,
        creates: 2,
        ..Advance::default()
    });
    // Airbyte's state for the Singer tap, and the Singer state for the Airbyte mode.
    let airbyte_state = files.write("airbyte-state.json", &airbyte.state_file());
    let singer_state = files.write("singer-state.json", &singer.last_state().to_string());
    let singer_next = tap(&[
        "--config",
        path(&config),
        "--catalog",
        path(&singer_catalog),
        "--state",
        path(&airbyte_state),
    ])
    .await;
    let airbyte_next = run(&[
        "read",
        "--config",
        path(&config),
        "--catalog",
        path(&airbyte_catalog),
        "--state",
        path(&singer_state),
    ])
    .await;
    assert_eq!(singer_next.code, 0, "{}", singer_next.stderr);
    assert_eq!(airbyte_next.code, 0, "{}", airbyte_next.stderr);
    let singer_ids: BTreeSet<String> = singer_next.ids("customers").into_iter().collect();
    let airbyte_ids = airbyte_next.unique_ids("customers");
    assert_eq!(singer_ids.len(), 2, "only the new customers");
    assert_eq!(singer_ids, airbyte_ids);
    assert!(
        emulator_ids(emu, &platform_test(), "customers").is_superset(&singer_ids),
        "{singer_ids:?}"
    );
}

/// Errors are a message on stderr and a non-zero exit; stdout holds no half message.
#[tokio::test(flavor = "multi_thread")]
async fn errors_go_to_stderr_with_a_non_zero_exit() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = discover(&config).await;
    let none = files.write("none.json", &select(&catalog, &[]).to_string());
    let customers = files.write(
        "customers.json",
        &select(&catalog, &["customers"]).to_string(),
    );
    let bad_state = files.write(
        "state.json",
        r#"{"bookmarks": {"customers": {"updated": "soon"}}}"#,
    );
    let bad_config = files.write("bad.json", r#"{"client_secret": "pk_test_123"}"#);
    let wrong_key = files.write(
        "wrong.json",
        &json!({"client_secret": "sk_test_not_a_key", "api_base": emulator.base_url()}).to_string(),
    );
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["--config", path(&config), "--catalog", path(&none)],
            "selects no streams",
        ),
        (
            vec![
                "--config",
                path(&config),
                "--catalog",
                path(&customers),
                "--state",
                path(&bad_state),
            ],
            "customers",
        ),
        (
            vec!["--config", path(&bad_config), "--discover"],
            "publishable",
        ),
        (
            vec!["--config", path(&wrong_key), "--catalog", path(&customers)],
            "key",
        ),
        (vec!["--config", path(&config)], "--discover"),
    ];
    for (args, needle) in cases {
        let out = tap(&args).await;
        assert_ne!(out.code, 0, "{args:?}");
        assert!(
            out.stderr.contains("error") && out.stderr.contains(needle),
            "{args:?}: {needle} in {}",
            out.stderr
        );
        assert!(
            out.messages.iter().all(|m| m["type"] != "RECORD"),
            "{args:?}"
        );
    }
}

/// `--about --format json` names the capabilities Meltano uses, and the settings.
#[tokio::test]
async fn about_lists_capabilities_and_settings() {
    let output = tokio::process::Command::new(TAP)
        .args(["--about", "--format", "json"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let about: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(about["name"], "tap-stripe");
    assert_eq!(
        about["capabilities"],
        json!(["catalog", "discover", "state", "about"])
    );
    assert_eq!(
        about["settings"]["properties"]["client_secret"]["airbyte_secret"],
        true
    );
    let text = tokio::process::Command::new(TAP)
        .arg("--about")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("`client_secret` (required)"), "{text}");
}

/// The commerce streams through the tap: selected alone, their SCHEMA, records (raw
/// sources not emitted) and bookmarks; the second run from the bookmarks reads only the
/// changed charges' payments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_reads_commerce_streams_with_their_bookmarks() {
    let emulator = start_emulator(40).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = select(
        &discover(&config).await,
        &["commerce_payments", "commerce_transactions"],
    );
    let catalog = files.write("singer-catalog.json", &catalog.to_string());
    let first = tap(&["--config", path(&config), "--catalog", path(&catalog)]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let streams: BTreeSet<&str> = first
        .messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| m["stream"].as_str().unwrap())
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from(["commerce_payments", "commerce_transactions"])
    );
    let schema = first
        .messages
        .iter()
        .find(|m| m["type"] == "SCHEMA" && m["stream"] == "commerce_payments")
        .unwrap();
    assert_eq!(
        schema["schema"]["properties"]["amount"]["format"],
        "decimal"
    );
    let charges = emulator_ids(emulator.emulator(), &platform_test(), "charges");
    let payments: BTreeSet<String> = first
        .ids("commerce_payments")
        .into_iter()
        .filter(|id| id.starts_with("ch_"))
        .collect();
    assert_eq!(payments, charges, "a payment per charge");
    let bookmarks = &first.last_state()["bookmarks"];
    assert!(bookmarks["commerce_payments"]["sources"]["charges"]["updated"].is_i64());
    assert!(
        bookmarks.get("charges").is_none(),
        "hidden sources keep no bookmark"
    );

    let report = emulator.emulator().advance(&Advance {
        seconds: 3_600,
        updates: 6,
        ..Advance::default()
    });
    let state = files.write("singer-state.json", &first.last_state().to_string());
    let second = tap(&[
        "--config",
        path(&config),
        "--catalog",
        path(&catalog),
        "--state",
        path(&state),
    ])
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let changed: BTreeSet<String> = report
        .changes
        .iter()
        .filter(|c| c.stream == "charges" && !c.event_type.is_empty())
        .map(|c| c.id.clone())
        .collect();
    assert!(!changed.is_empty(), "the advance changed charges");
    let read: BTreeSet<String> = second
        .records("commerce_payments")
        .iter()
        .map(|r| r["charge_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(read, changed, "only the changed charges' payments");
}
