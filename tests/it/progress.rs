//! What a person watching a read sees: live lines per stream on a terminal (run under a
//! pseudo-terminal with `script`), none of it when stderr is not a terminal, and in
//! Airbyte mode ESTIMATE traces, progress LOG lines and a summary per stream.

use serde_json::json;
use source_stripe::emulator::{DEFAULT_TEST_KEY, Faults};

use crate::util::{BIN, Files, emulator_ids, parse_messages, path, platform_test, start_emulator};

const STREAMS: [&str; 3] = ["customers", "charges", "refunds"];

/// Under a pseudo-terminal, stderr shows a line per stream with its record count; the
/// records still go to stdout, and every stdout line is an Airbyte message.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_shows_each_streams_progress() {
    let emulator = start_emulator(600).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&STREAMS.map(|s| (s, "full_refresh")));
    let stdout = files.write("stdout.jsonl", "");
    // `script` gives the command a pseudo-terminal and copies what it draws to our stdout;
    // only the connector's stderr is on the terminal.
    let command = format!(
        "{BIN} read --config {} --catalog {} > {}",
        path(&config),
        path(&catalog),
        path(&stdout)
    );
    let output = tokio::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .output()
        .await
        .expect("`script` (util-linux) runs");
    assert!(output.status.success(), "{output:?}");
    let terminal = String::from_utf8_lossy(&output.stdout);
    let messages = parse_messages(&std::fs::read_to_string(&stdout).unwrap());
    for stream in STREAMS {
        let count = emulator_ids(emu, &platform_test(), stream).len();
        let line = format!("{stream}: {count} records, ");
        assert!(
            terminal.contains(&line),
            "the terminal shows `{line}`:\n{terminal}"
        );
        let records = messages
            .iter()
            .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .count();
        assert_eq!(records, count, "{stream}");
    }
    assert!(terminal.contains("% of range") && terminal.contains("req/s"));
}

/// With stderr a pipe: no progress lines on it. On stdout, every few seconds (here 1 s,
/// by `SOURCE_STRIPE_PROGRESS_SECS`) an ESTIMATE per stream and a progress LOG line, and
/// at the end a summary per stream; all valid Airbyte messages.
#[tokio::test(flavor = "multi_thread")]
async fn airbyte_mode_gets_estimates_and_a_summary_and_no_terminal_lines() {
    let emulator = start_emulator(600).await;
    let emu = emulator.emulator();
    // Slow enough that the sync lasts a few seconds.
    emu.set_faults(Faults {
        latency: std::time::Duration::from_millis(150),
        ..Faults::default()
    });
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"call_rate_limit": 10, "endpoint_rate_limit": 5}),
    );
    let catalog = files.catalog(&STREAMS.map(|s| (s, "full_refresh")));
    let output = tokio::process::Command::new(BIN)
        .args([
            "read",
            "--config",
            path(&config),
            "--catalog",
            path(&catalog),
        ])
        .env("SOURCE_STRIPE_PROGRESS_SECS", "1")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("% of range") && !stderr.contains('\u{1b}'),
        "no progress lines without a terminal:\n{stderr}"
    );
    let messages = parse_messages(&String::from_utf8(output.stdout).unwrap());
    let estimates: Vec<_> = messages
        .iter()
        .filter(|m| m["trace"]["type"] == "ESTIMATE")
        .collect();
    assert!(!estimates.is_empty(), "ESTIMATE traces were sent");
    for e in &estimates {
        assert_eq!(e["trace"]["estimate"]["type"], "STREAM");
        assert!(STREAMS.contains(&e["trace"]["estimate"]["name"].as_str().unwrap()));
        assert!(e["trace"]["estimate"]["row_estimate"].is_u64());
    }
    let logs: Vec<&str> = messages
        .iter()
        .filter(|m| m["type"] == "LOG")
        .map(|m| m["log"]["message"].as_str().unwrap())
        .collect();
    assert!(logs.iter().any(|l| l.starts_with("progress: ")), "{logs:?}");
    for stream in STREAMS {
        let count = emulator_ids(emu, &platform_test(), stream).len();
        let summary = format!("stream {stream} done: {count} records, ");
        assert!(
            logs.iter().any(|l| l.starts_with(&summary)),
            "a summary `{summary}…` in {logs:?}"
        );
    }
}
