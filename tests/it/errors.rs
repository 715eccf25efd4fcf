use serde_json::json;
use source_stripe::emulator::DEFAULT_TEST_KEY;

use crate::util::{Files, path, read, run, start_emulator};

/// Runs `read` and asserts a single config_error whose message contains `needle`.
async fn assert_config_error(args: &[&str], needle: &str) {
    let out = run(args).await;
    assert_ne!(out.code, 0, "a bad input exits non-zero");
    let errors = out.errors();
    assert!(!errors.is_empty(), "a TRACE error is printed");
    let error = errors.last().unwrap();
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(needle), "`{needle}` in: {message}");
    assert!(
        out.stderr.contains(needle),
        "stderr tells a person too: {}",
        out.stderr
    );
    assert!(out.of_type("RECORD").is_empty(), "no record on bad input");
}

#[tokio::test]
async fn bad_config_is_a_config_error_naming_the_field() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let catalog = files.catalog(&[("customers", "full_refresh")]);
    let cases = [
        (json!({"start_date": "last tuesday"}), "start_date"),
        (json!({"slice_range": -1}), "slice_range"),
        (json!({"num_workers": 0}), "num_workers"),
        (
            json!({"client_secret": "pk_test_abcdefgh12345678"}),
            "publishable",
        ),
    ];
    for (extra, needle) in cases {
        let config = files.config(&emulator, DEFAULT_TEST_KEY, extra);
        assert_config_error(
            &[
                "read",
                "--config",
                path(&config),
                "--catalog",
                path(&catalog),
            ],
            needle,
        )
        .await;
    }
    let missing = files.write(
        "missing_key.json",
        r#"{"start_date": "2020-01-01T00:00:00Z"}"#,
    );
    assert_config_error(
        &[
            "read",
            "--config",
            path(&missing),
            "--catalog",
            path(&catalog),
        ],
        "client_secret",
    )
    .await;
}

#[tokio::test]
async fn bad_key_is_a_config_error_without_the_key() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let catalog = files.catalog(&[("customers", "full_refresh")]);
    let config = files.config(&emulator, "sk_live_wrongwrongwrong9876", json!({}));
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0);
    let error = out.errors().last().cloned().cloned().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("client_secret"), "{message}");
    assert!(!message.contains("wrongwrongwrong"), "{message}");
    assert!(!out.stderr.contains("wrongwrongwrong"));
}

#[tokio::test]
async fn bad_catalog_is_a_config_error_naming_the_stream() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let unknown = files.catalog(&[("customer", "full_refresh")]);
    assert_config_error(
        &[
            "read",
            "--config",
            path(&config),
            "--catalog",
            path(&unknown),
        ],
        "`customer`",
    )
    .await;
    let mode = files.catalog(&[("account", "sometimes")]);
    assert_config_error(
        &["read", "--config", path(&config), "--catalog", path(&mode)],
        "sync_mode",
    )
    .await;
}

#[tokio::test]
async fn bad_state_is_a_config_error_naming_the_stream() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[("customers", "incremental")]);
    let state = files.write(
        "state.json",
        r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"customers"},"stream_state":{"updated":"soon"}}}]"#,
    );
    assert_config_error(
        &[
            "read",
            "--config",
            path(&config),
            "--catalog",
            path(&catalog),
            "--state",
            path(&state),
        ],
        "customers",
    )
    .await;
    let garbage = files.write("garbage.json", "{{{");
    assert_config_error(
        &[
            "read",
            "--config",
            path(&config),
            "--catalog",
            path(&catalog),
            "--state",
            path(&garbage),
        ],
        "state",
    )
    .await;
}

/// A restricted key without permission for one stream fails that stream loudly, with
/// the permission it needs, and the other streams complete.
#[tokio::test]
async fn forbidden_stream_fails_loudly_and_others_complete() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        source_stripe::emulator::DEFAULT_RESTRICTED_KEY,
        json!({}),
    );
    let catalog = files.catalog(&[("disputes", "full_refresh"), ("customers", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0);
    assert_eq!(out.statuses("disputes").last().unwrap(), "INCOMPLETE");
    assert_eq!(out.statuses("customers").last().unwrap(), "COMPLETE");
    assert!(!out.records("customers").is_empty());
    let errors = out.errors();
    let disputes = errors
        .iter()
        .find(|e| e["stream_descriptor"]["name"] == "disputes")
        .expect("a TRACE error for disputes");
    assert_eq!(disputes["failure_type"], "config_error");
    let message = disputes["message"].as_str().unwrap();
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("permission"), "{message}");
}
