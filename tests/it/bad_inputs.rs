//! The bad input table: malformed configs, catalogs, states and command lines. Each row
//! asserts the exit code, the TRACE `failure_type` (for errors past the command-line
//! parser, which prints clap's usage and exits 2 before any protocol exists), that the
//! message names what is wrong, and that no key appears anywhere.

use serde_json::{Value, json};
use source_stripe::emulator::DEFAULT_TEST_KEY;

use crate::util::{Files, path, run, start_emulator};

/// What is bad.
enum Bad {
    /// A config: the valid one with these fields replaced (`null` removes one), or raw text.
    Config(Value),
    ConfigText(&'static str),
    /// A catalog's raw text.
    Catalog(&'static str),
    /// A state's raw text (for a valid config and an incremental `customers` catalog).
    State(&'static str),
    /// Arguments after `source-stripe` (CONFIG, CATALOG and DIR stand for valid files).
    Args(&'static [&'static str]),
}

/// How it must end: a TRACE with this failure_type and exit 1; exit 1 and stderr only
/// (Parquet output is not the protocol: no TRACE); or clap's exit 2.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ends {
    Trace(&'static str),
    /// `check`'s answer, as Airbyte's CDK gives it: CONNECTION_STATUS FAILED, exit 0.
    Failed,
    Plain,
    Usage,
}

const CONFIG: Ends = Ends::Trace("config_error");

fn rows() -> Vec<(&'static str, Bad, Ends, &'static str)> {
    use Bad::*;
    vec![
        // Config: the key.
        (
            "no key",
            Config(json!({"client_secret": null})),
            CONFIG,
            "client_secret",
        ),
        (
            "key a number",
            Config(json!({"client_secret": 42})),
            CONFIG,
            "client_secret",
        ),
        (
            "key empty",
            Config(json!({"client_secret": ""})),
            CONFIG,
            "client_secret",
        ),
        (
            "publishable key",
            Config(json!({"client_secret": "pk_test_abcdefgh12345678"})),
            CONFIG,
            "client_secret",
        ),
        (
            "not a key",
            Config(json!({"client_secret": "hello"})),
            CONFIG,
            "client_secret",
        ),
        (
            "key with spaces",
            Config(json!({"client_secret": format!("{DEFAULT_TEST_KEY} ")})),
            CONFIG,
            "client_secret",
        ),
        (
            "key a list",
            Config(json!({"client_secret": [DEFAULT_TEST_KEY]})),
            CONFIG,
            "client_secret",
        ),
        // Config: the other fields.
        (
            "start_date words",
            Config(json!({"start_date": "last tuesday"})),
            CONFIG,
            "start_date",
        ),
        (
            "start_date number",
            Config(json!({"start_date": 1_600_000_000})),
            CONFIG,
            "start_date",
        ),
        (
            "start_date no zone",
            Config(json!({"start_date": "2020-01-01T00:00:00"})),
            CONFIG,
            "start_date",
        ),
        (
            "lookback negative",
            Config(json!({"lookback_window_days": -1})),
            CONFIG,
            "lookback_window_days",
        ),
        (
            "lookback huge",
            Config(json!({"lookback_window_days": 9_000_000_000_000_i64})),
            CONFIG,
            "lookback_window_days",
        ),
        (
            "lookback text",
            Config(json!({"lookback_window_days": "ten"})),
            CONFIG,
            "lookback_window_days",
        ),
        (
            "slice_range zero",
            Config(json!({"slice_range": 0})),
            CONFIG,
            "slice_range",
        ),
        (
            "slice_range huge",
            Config(json!({"slice_range": 1_000_000_000})),
            CONFIG,
            "slice_range",
        ),
        (
            "slice_range fraction",
            Config(json!({"slice_range": 1.5})),
            CONFIG,
            "slice_range",
        ),
        (
            "num_workers zero",
            Config(json!({"num_workers": 0})),
            CONFIG,
            "num_workers",
        ),
        (
            "num_workers too many",
            Config(json!({"num_workers": 201})),
            CONFIG,
            "num_workers",
        ),
        (
            "call_rate_limit zero",
            Config(json!({"call_rate_limit": 0})),
            CONFIG,
            "call_rate_limit",
        ),
        (
            "call_rate_limit text",
            Config(json!({"call_rate_limit": "fast"})),
            CONFIG,
            "call_rate_limit",
        ),
        (
            "api_base ftp",
            Config(json!({"api_base": "ftp://example.com"})),
            CONFIG,
            "api_base",
        ),
        (
            "api_base not a URL",
            Config(json!({"api_base": "stripe"})),
            CONFIG,
            "api_base",
        ),
        (
            "api_base plain http elsewhere",
            Config(json!({"api_base": "http://192.0.2.1"})),
            CONFIG,
            "api_base",
        ),
        (
            "stripe_version empty",
            Config(json!({"stripe_version": " "})),
            CONFIG,
            "stripe_version",
        ),
        (
            "account_id not acct_",
            Config(json!({"account_id": "123"})),
            CONFIG,
            "account_id",
        ),
        (
            "connected_accounts empty",
            Config(json!({"connected_accounts": []})),
            CONFIG,
            "connected_accounts",
        ),
        (
            "connected_accounts word",
            Config(json!({"connected_accounts": "some"})),
            CONFIG,
            "connected_accounts",
        ),
        (
            "connected_accounts bad id",
            Config(json!({"connected_accounts": ["x"]})),
            CONFIG,
            "connected_accounts",
        ),
        (
            "connected_accounts and account_id",
            Config(json!({"connected_accounts": "all", "account_id": "acct_1"})),
            CONFIG,
            "connected_accounts",
        ),
        (
            "mode unknown",
            Config(json!({"mode": "sandbox"})),
            CONFIG,
            "mode",
        ),
        (
            "mode against the key",
            Config(json!({"mode": "live"})),
            CONFIG,
            "mode",
        ),
        (
            "request_timeout_secs zero",
            Config(json!({"request_timeout_secs": 0})),
            CONFIG,
            "request_timeout_secs",
        ),
        (
            "event_settle_secs huge",
            Config(json!({"event_settle_secs": 99_999})),
            CONFIG,
            "event_settle_secs",
        ),
        (
            "config not JSON",
            ConfigText("{\"client_secret\": "),
            CONFIG,
            "config",
        ),
        ("config a list", ConfigText("[]"), CONFIG, "config"),
        ("config empty file", ConfigText(""), CONFIG, "config"),
        // Catalog.
        ("catalog not JSON", Catalog("{streams"), CONFIG, "catalog"),
        ("catalog without streams", Catalog("{}"), CONFIG, "streams"),
        (
            "catalog with no stream",
            Catalog(r#"{"streams": []}"#),
            CONFIG,
            "stream",
        ),
        (
            "unknown stream",
            Catalog(
                r#"{"streams": [{"stream": {"name": "customer", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}"#,
            ),
            CONFIG,
            "customer",
        ),
        (
            "sync_mode unknown",
            Catalog(
                r#"{"streams": [{"stream": {"name": "charges", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "sometimes", "destination_sync_mode": "append"}]}"#,
            ),
            CONFIG,
            "sync_mode",
        ),
        (
            "stream twice",
            Catalog(
                r#"{"streams": [{"stream": {"name": "charges", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}, {"stream": {"name": "charges", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}"#,
            ),
            CONFIG,
            "charges",
        ),
        (
            "stream without name",
            Catalog(
                r#"{"streams": [{"stream": {"json_schema": {}}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}"#,
            ),
            CONFIG,
            "name",
        ),
        // State.
        ("state not JSON", State("{{{"), CONFIG, "state"),
        (
            "state cursor text",
            State(
                r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"customers"},"stream_state":{"updated":"soon"}}}]"#,
            ),
            CONFIG,
            "customers",
        ),
        (
            "state cursor object",
            State(
                r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"customers"},"stream_state":{"updated":{"at":1}}}}]"#,
            ),
            CONFIG,
            "customers",
        ),
        ("state a number", State("7"), CONFIG, "state"),
        // Command lines.
        (
            "read without catalog or output dir",
            Args(&["read", "--config", "CONFIG"]),
            CONFIG,
            "--catalog",
        ),
        (
            "state with Parquet output",
            Args(&[
                "read",
                "--config",
                "CONFIG",
                "--output-dir",
                "DIR",
                "--state",
                "CONFIG",
            ]),
            Ends::Plain,
            "--state",
        ),
        (
            "config file missing",
            Args(&["check", "--config", "/nonexistent/config.json"]),
            Ends::Failed,
            "/nonexistent/config.json",
        ),
        (
            "catalog file missing",
            Args(&[
                "read",
                "--config",
                "CONFIG",
                "--catalog",
                "/nonexistent/catalog.json",
            ]),
            CONFIG,
            "/nonexistent/catalog.json",
        ),
        (
            "format unknown",
            Args(&["read", "--config", "CONFIG", "--format", "csv"]),
            Ends::Usage,
            "--format",
        ),
        ("no command", Args(&[]), Ends::Usage, "Usage"),
        (
            "unknown command",
            Args(&["sync", "--config", "CONFIG"]),
            Ends::Usage,
            "sync",
        ),
        (
            "check without config",
            Args(&["check"]),
            Ends::Usage,
            "--config",
        ),
        (
            "rows-per-file text",
            Args(&[
                "read",
                "--config",
                "CONFIG",
                "--output-dir",
                "DIR",
                "--rows-per-file",
                "many",
            ]),
            Ends::Usage,
            "--rows-per-file",
        ),
    ]
}

/// Every row: exit code, failure type, the message names the field, no key anywhere,
/// no record, and nothing sent to Stripe.
#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_a_clear_error() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let good_config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let good_catalog = files.catalog(&[("customers", "incremental")]);
    let dir = files.dir.path().join("out");
    let rows = rows();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    for (i, (name, bad, ends, needle)) in rows.into_iter().enumerate() {
        let args: Vec<String> = match bad {
            Bad::Config(fields) => {
                let mut config: Value =
                    serde_json::from_str(&std::fs::read_to_string(&good_config).unwrap()).unwrap();
                for (k, v) in fields.as_object().unwrap() {
                    if v.is_null() {
                        config.as_object_mut().unwrap().remove(k);
                    } else {
                        config[k] = v.clone();
                    }
                }
                let file = files.write(&format!("config{i}.json"), &config.to_string());
                [
                    "read",
                    "--config",
                    path(&file),
                    "--catalog",
                    path(&good_catalog),
                ]
                .map(str::to_owned)
                .to_vec()
            }
            Bad::ConfigText(text) => {
                let file = files.write(&format!("config{i}.json"), text);
                [
                    "read",
                    "--config",
                    path(&file),
                    "--catalog",
                    path(&good_catalog),
                ]
                .map(str::to_owned)
                .to_vec()
            }
            Bad::Catalog(text) => {
                let file = files.write(&format!("catalog{i}.json"), text);
                [
                    "read",
                    "--config",
                    path(&good_config),
                    "--catalog",
                    path(&file),
                ]
                .map(str::to_owned)
                .to_vec()
            }
            Bad::State(text) => {
                let file = files.write(&format!("state{i}.json"), text);
                let args = [
                    "read",
                    "--config",
                    path(&good_config),
                    "--catalog",
                    path(&good_catalog),
                    "--state",
                    path(&file),
                ];
                args.map(str::to_owned).to_vec()
            }
            Bad::Args(args) => args
                .iter()
                .map(|a| match *a {
                    "CONFIG" => path(&good_config).to_owned(),
                    "CATALOG" => path(&good_catalog).to_owned(),
                    "DIR" => path(&dir).to_owned(),
                    other => other.to_owned(),
                })
                .collect(),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args).await;
        assert!(out.of_type("RECORD").is_empty(), "{name}: no record");
        match ends {
            Ends::Trace(failure_type) => {
                assert_eq!(out.code, 1, "{name}: exit 1\n{}", out.stderr);
                let errors = out.errors();
                let error = errors
                    .last()
                    .unwrap_or_else(|| panic!("{name}: a TRACE error; stderr: {}", out.stderr));
                assert_eq!(error["failure_type"], failure_type, "{name}: {error}");
                let message = error["message"].as_str().unwrap();
                assert!(message.contains(needle), "{name}: `{needle}` in: {message}");
                assert!(
                    out.stderr.contains(needle),
                    "{name}: stderr: {}",
                    out.stderr
                );
            }
            Ends::Failed => {
                assert_eq!(out.code, 0, "{name}: check answers, exit 0\n{}", out.stderr);
                let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
                assert_eq!(status["status"], "FAILED", "{name}: {status}");
                let message = status["message"].as_str().unwrap();
                assert!(message.contains(needle), "{name}: `{needle}` in: {message}");
            }
            Ends::Plain => {
                assert_eq!(out.code, 1, "{name}: exit 1\n{}", out.stderr);
                assert!(out.messages.is_empty(), "{name}: no protocol message");
                assert!(
                    out.stderr.contains(needle),
                    "{name}: `{needle}` in: {}",
                    out.stderr
                );
            }
            Ends::Usage => {
                assert_eq!(out.code, 2, "{name}: clap's exit 2\n{}", out.stderr);
                assert!(out.messages.is_empty(), "{name}: nothing on stdout");
                assert!(
                    out.stderr.contains(needle),
                    "{name}: `{needle}` in: {}",
                    out.stderr
                );
            }
        }
    }
    assert_eq!(
        emulator.emulator().request_log().len(),
        0,
        "bad input is refused before any request"
    );
}
