//! The `stripe-emulator` binary, run as a user runs it: it serves the data set its flags
//! describe, and a port it cannot take or a bad flag is a clear error, not a panic.
use std::process::Stdio;

use stripe_emulator::{Config, DEFAULT_TEST_KEY, Emulator, Scope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_stripe-emulator");

/// Starts the binary on a free port and returns it with the base URL its banner names.
/// The rest of its stdout is drained for as long as it runs: a closed pipe would fail
/// its next print.
async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next_line()
        .await
        .expect("stdout is readable")
        .expect("the banner's first line");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = first
        .strip_prefix("Stripe emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected banner line: {first}"))
        .to_string();
    (child, url)
}

/// Every id of a list endpoint, page by page, with the platform's test key.
async fn list_ids(base: &str, path: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{base}{path}"))
            .basic_auth(DEFAULT_TEST_KEY, Some(""))
            .query(&[("limit", "3")]);
        if let Some(id) = &after {
            request = request.query(&[("starting_after", id)]);
        }
        let response = request.send().await.expect("the emulator answers");
        assert_eq!(response.status(), 200, "GET {path}");
        let page: serde_json::Value = response.json().await.expect("a JSON page");
        let data = page["data"].as_array().expect("a list's data");
        ids.extend(
            data.iter()
                .map(|o| o["id"].as_str().expect("an id").to_string()),
        );
        after = ids.last().cloned();
        if page["has_more"] != true {
            return ids;
        }
    }
}

/// The binary serves exactly the data set an in-process emulator with the same flags
/// builds: every customer and charge id, across pages.
#[tokio::test]
async fn serves_the_data_set_its_flags_describe() {
    let (_child, url) = start(&[
        "--size",
        "12",
        "--seed",
        "7",
        "--now",
        "1700000000",
        "--frozen-clock",
    ])
    .await;
    let expected = Emulator::new(Config {
        size: 12,
        seed: 7,
        now: Some(1_700_000_000),
        frozen_clock: true,
        ..Config::default()
    });
    for (stream, path) in [("customers", "/v1/customers"), ("charges", "/v1/charges")] {
        let mut served = list_ids(&url, path).await;
        let mut want = expected.ids(&Scope::platform_test(), stream);
        assert!(!want.is_empty(), "{stream}: the data set has some");
        served.sort();
        want.sort();
        assert_eq!(served, want, "{stream}");
    }
}

/// A port already taken: exit code 1 and a message naming the address, on stderr.
#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("an address").port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot serve on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A malformed flag value is refused by name, before anything is served.
#[tokio::test]
async fn a_bad_flag_names_itself() {
    let out = Command::new(BIN)
        .args(["--size", "many"])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--size"), "{stderr}");
}

/// With its stdout closed (`stripe-emulator | head -1`), the emulator says on stderr that
/// the banner was not printed and keeps serving, rather than panicking on the print.
#[tokio::test]
async fn a_closed_stdout_does_not_stop_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--size", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // Closed before the emulator has built its data and printed anything.
    drop(child.stdout.take());
    let stderr = child.stderr.take().expect("stderr is piped");
    let warning = BufReader::new(stderr)
        .lines()
        .next_line()
        .await
        .expect("stderr is readable")
        .expect("a line on stderr");
    assert!(warning.contains("emulator banner not printed"), "{warning}");
    let ids = list_ids(&format!("http://127.0.0.1:{port}"), "/v1/customers").await;
    assert!(!ids.is_empty());
    assert!(
        child.try_wait().expect("a status").is_none(),
        "still running"
    );
}
