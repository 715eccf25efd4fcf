use serde_json::{Value, json};
use source_stripe::emulator::{DEFAULT_LIVE_KEY, DEFAULT_RESTRICTED_KEY, DEFAULT_TEST_KEY};

use crate::util::{Files, path, run, start_emulator};

/// `spec` prints one SPEC whose connection specification is the committed spec.json.
#[tokio::test]
async fn spec_matches_the_committed_spec_json() {
    let out = run(&["spec"]).await;
    assert_eq!(out.code, 0);
    assert_eq!(out.messages.len(), 1);
    let spec = &out.messages[0]["spec"];
    assert_eq!(spec["supportsIncremental"], true);
    assert!(spec["protocol_version"].is_string());
    let committed: Value =
        serde_json::from_str(include_str!("../../spec.json")).expect("spec.json is JSON");
    assert_eq!(
        spec, &committed,
        "spec.json is stale: regenerate it with `cargo run -- spec | jq .spec > spec.json`"
    );
    let properties = &spec["connectionSpecification"]["properties"];
    for field in [
        "client_secret",
        "account_id",
        "start_date",
        "lookback_window_days",
        "slice_range",
        "num_workers",
        "call_rate_limit",
        "api_base",
        "stripe_version",
    ] {
        assert!(
            properties[field]["description"].is_string(),
            "{field} is documented"
        );
    }
    assert_eq!(properties["client_secret"]["airbyte_secret"], true);
}

/// `discover` lists every stream with its schema, sync modes, cursor and key.
#[tokio::test]
async fn discover_lists_the_streams() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let out = run(&["discover", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let streams = out.messages[0]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "account",
        "customers",
        "charges",
        "payment_intents",
        "refunds",
        "disputes",
        "products",
        "prices",
        "balance_transactions",
        "events",
        "commerce_company_info",
        "commerce_customers",
        "commerce_disputes",
        "commerce_payments",
        "commerce_products",
        "commerce_transactions",
    ] {
        assert!(names.contains(&name), "{name} is discovered");
    }
    for stream in &streams {
        let name = stream["name"].as_str().unwrap();
        // Usage record summaries have no primary key (as Airbyte's).
        let key = if name == "usage_records" {
            Value::Null
        } else {
            json!([["id"]])
        };
        assert_eq!(stream["source_defined_primary_key"], key, "{name}");
        let expected_cursor = match name {
            "account" | "commerce_company_info" | "usage_records" => Value::Null,
            "balance_transactions"
            | "events"
            | "files"
            | "file_links"
            | "shipping_rates"
            | "commerce_transactions"
            | "transfer_reversals"
            | "setup_attempts"
            | "customer_balance_transactions" => json!(["created"]),
            "invoice_line_items" => json!(["invoice_updated"]),
            "subscription_items" => json!(["subscription_updated"]),
            "checkout_sessions_line_items" => json!(["checkout_session_updated"]),
            _ => json!(["updated"]),
        };
        assert_eq!(stream["default_cursor_field"], expected_cursor, "{name}");
        let modes = &stream["supported_sync_modes"];
        assert_eq!(
            modes.as_array().unwrap().len(),
            if matches!(name, "account" | "commerce_company_info" | "usage_records") {
                1
            } else {
                2
            },
            "{name}"
        );
    }
}

/// `check` with a good key names the account and the mode.
#[tokio::test]
async fn check_succeeds_with_a_valid_key() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status = &out.messages[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains(&emulator.emulator().platform_account_id()),
        "{message}"
    );
    assert!(message.contains("test mode"), "{message}");

    let config = files.config(&emulator, DEFAULT_LIVE_KEY, json!({}));
    let out = run(&["check", "--config", path(&config)]).await;
    let message = out.messages[0]["connectionStatus"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("live mode"), "{message}");
}

/// A key Stripe does not know: one CONNECTION_STATUS FAILED, exit 0 (as Airbyte's CDK
/// does: the status is the answer), and the key not echoed.
#[tokio::test]
async fn check_fails_on_a_bad_key() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, "sk_test_thisKeyDoesNotExist1234", json!({}));
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.messages.len(), 1, "{:?}", out.messages);
    let status = &out.messages[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("client_secret"), "{message}");
    assert!(!message.contains("thisKeyDoesNotExist"), "{message}");
    assert!(out.errors().is_empty());
}

/// A malformed config is a FAILED status too, naming the field, exit 0.
#[tokio::test]
async fn check_fails_on_a_malformed_config() {
    let files = Files::new();
    let config = files.write(
        "config.json",
        r#"{"client_secret": "sk_test_abcdefgh12345678", "slice_range": 0}"#,
    );
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status = &out.messages[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"].as_str().unwrap().contains("slice_range"),
        "{status}"
    );
}

/// Stripe unreachable is not the user's mistake: a TRACE transient_error and a non-zero
/// exit, as the CDK raises it.
#[tokio::test]
async fn check_on_an_unreachable_stripe_is_a_transient_error() {
    let files = Files::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = files.write(
        "config.json",
        &json!({"client_secret": DEFAULT_TEST_KEY, "api_base": format!("http://127.0.0.1:{port}")})
            .to_string(),
    );
    let out = run(&["check", "--config", path(&config)]).await;
    assert_ne!(out.code, 0);
    assert_eq!(out.errors()[0]["failure_type"], "transient_error");
}

/// A config of Airbyte's Stripe source 6.1 with every field set passes `check` and reads;
/// an unknown field is ignored, named in a LOG warning.
#[tokio::test]
async fn an_airbyte_6_config_checks_and_reads_and_unknown_fields_are_logged() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let airbyte = json!({
        "account_id": emulator.emulator().platform_account_id(),
        "start_date": "2017-01-25T00:00:00Z",
        "lookback_window_days": 0,
        "slice_range": 365,
        "num_workers": 10,
        "call_rate_limit": 25,
        "api_retention_streams": ["customers", "charges"],
    });
    let config = files.config(&emulator, DEFAULT_TEST_KEY, airbyte.clone());
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"],
        "SUCCEEDED"
    );
    assert!(out.logs().iter().all(|l| !l.contains("ignored")));
    let catalog = files.catalog(&[("customers", "incremental"), ("charges", "full_refresh")]);
    let out = crate::util::read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.records("customers").is_empty());
    assert!(!out.records("charges").is_empty());

    let mut extra = airbyte;
    extra["favourite_colour"] = json!("blue");
    let config = files.config(&emulator, DEFAULT_TEST_KEY, extra);
    let out = crate::util::read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.records("customers").is_empty());
    let warned: Vec<&Value> = out
        .of_type("LOG")
        .into_iter()
        .filter(|m| m["log"]["level"] == "WARN")
        .collect();
    assert!(
        warned.iter().any(|m| m["log"]["message"]
            .as_str()
            .unwrap()
            .contains("`favourite_colour`")),
        "{warned:?}"
    );
}

/// A restricted key without a permission: the check names the stream it cannot read.
#[tokio::test]
async fn check_names_streams_a_restricted_key_cannot_read() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_RESTRICTED_KEY, json!({}));
    let out = run(&["check", "--config", path(&config)]).await;
    let status = &out.messages[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("cannot read: disputes"), "{message}");
}

/// An account that is not connected to the platform: FAILED naming `account_id`.
#[tokio::test]
async fn check_fails_on_an_unknown_connected_account() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"account_id": "acct_1NotConnectedAtAll"}),
    );
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.messages[0]["connectionStatus"]["status"], "FAILED");
    let message = out.messages[0]["connectionStatus"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("account_id"), "{message}");
    assert!(message.contains("acct_1NotConnectedAtAll"), "{message}");
}

/// With `account_id` of a connected account, check reports that account.
#[tokio::test]
async fn check_reads_a_connected_account() {
    let emulator = start_emulator(20).await;
    let account = emulator.emulator().connected_account_ids()[0].clone();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"account_id": account}));
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let message = out.messages[0]["connectionStatus"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains(&account), "{message}");
}

/// The README's first command: the demo syncs everything into Parquet, and a second
/// run in the same folder reads only the hour of changes it lets happen.
#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_twice_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let total = |stdout: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("total"))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("a total line in: {stdout}"))
    };
    let run = || async {
        let output = tokio::process::Command::new(crate::util::BIN)
            .args([
                "demo",
                "--size",
                "2000",
                "--output-dir",
                out.to_str().unwrap(),
            ])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let first = total(&run().await);
    let second = total(&run().await);
    assert!(first > 5_000, "the first run reads everything: {first}");
    assert!(
        second > 0 && second < first / 4,
        "the second run reads the changes: {second} of {first}"
    );
    assert!(
        out.join("charges").read_dir().unwrap().count() >= 2,
        "each run adds files"
    );
    assert!(out.join("state.json").exists() && out.join("views.sql").exists());
}

/// `source-stripe emulator` (the `stripe-emulator` crate's server, re-exported) serves
/// the data set its flags describe: every customer id an in-process emulator with the
/// same flags holds, and no other.
#[tokio::test]
async fn emulator_command_serves_the_data_set_its_flags_describe() {
    use source_stripe::emulator::{Config, Emulator, Scope};
    use tokio::io::AsyncBufReadExt;

    let mut child = tokio::process::Command::new(crate::util::BIN)
        .args(["emulator", "--port", "0", "--size", "12", "--seed", "7"])
        .args(["--now", "1700000000", "--frozen-clock"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next_line().await.unwrap().unwrap();
    // The rest of the banner is drained: a closed pipe would fail the emulator's print.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = banner
        .strip_prefix("Stripe emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected banner line: {banner}"));
    let page: Value = reqwest::Client::new()
        .get(format!("{url}/v1/customers?limit=100"))
        .basic_auth(DEFAULT_TEST_KEY, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["has_more"], false);
    let mut served: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let mut expected = Emulator::new(Config {
        size: 12,
        seed: 7,
        now: Some(1_700_000_000),
        frozen_clock: true,
        ..Config::default()
    })
    .ids(&Scope::platform_test(), "customers");
    served.sort();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(served, expected);
}
