use serde_json::json;
use source_stripe::emulator::{DEFAULT_TEST_KEY, Faults};

use crate::util::{Files, emulator_ids, platform_test, read, start_emulator};

/// With 429s, 500s and broken bodies thrown at a share of requests, a sync still yields
/// every id exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn faults_lose_nothing() {
    let emulator = start_emulator(300).await;
    let emu = emulator.emulator();
    emu.set_faults(Faults {
        too_many_requests_rate: 0.10,
        server_error_rate: 0.05,
        truncate_rate: 0.03,
        drop_rate: 0.02,
        ..Faults::default()
    });
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"slice_range": 60}));
    let streams = ["customers", "charges", "balance_transactions", "refunds"];
    let catalog = files.catalog(&streams.map(|s| (s, "full_refresh")));
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for stream in streams {
        assert_eq!(
            out.unique_ids(stream),
            emulator_ids(emu, &platform_test(), stream),
            "{stream}"
        );
    }
    let log = emu.request_log();
    assert!(log.iter().any(|r| r.status == 429), "429s were thrown");
    assert!(log.iter().any(|r| r.status == 500), "500s were thrown");
    assert!(log.iter().all(|r| r.method == "GET"), "only GET requests");
}

/// The client keeps to `call_rate_limit` for the account and `endpoint_rate_limit` for
/// each endpoint: no second of the emulator's request log holds more requests than either
/// limit, the emulator enforcing both at a little more answers no 429, and the account's
/// budget left over by one endpoint goes to the others.
#[tokio::test(flavor = "multi_thread")]
async fn client_rate_limits_are_never_exceeded() {
    // Enough pages to measure a rate: the planner makes few requests beyond the pages.
    let emulator = start_emulator(3000).await;
    let emu = emulator.emulator();
    emu.set_faults(Faults {
        rate_limit_per_sec: Some(24.0),
        endpoint_rate_limit_per_sec: Some(10.0),
        ..Faults::default()
    });
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 10, "call_rate_limit": 20, "endpoint_rate_limit": 8,
               "num_workers": 40, "start_date": "2024-01-01T00:00:00Z"}),
    );
    let streams = ["customers", "charges", "balance_transactions", "refunds"];
    let catalog = files.catalog(&streams.map(|s| (s, "full_refresh")));
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = emu.request_log();
    assert!(
        log.len() > 60,
        "enough requests to measure a rate: {}",
        log.len()
    );
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 0, "no 429");
    let mut by_second: std::collections::BTreeMap<u64, Vec<&str>> = Default::default();
    for request in &log {
        by_second
            .entry(request.received_ms / 1000)
            .or_default()
            .push(&request.path);
    }
    let mut shared = false;
    for (second, paths) in &by_second {
        assert!(
            paths.len() <= 24,
            "second {second}: {} requests",
            paths.len()
        );
        let mut distinct = paths.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for path in &distinct {
            let n = paths.iter().filter(|p| *p == path).count();
            assert!(n <= 10, "second {second}: {n} requests to {path}");
        }
        shared |= distinct.len() >= 2 && paths.len() > 10;
    }
    assert!(
        shared,
        "some second held more requests than one endpoint may send, over several endpoints"
    );
    for stream in streams {
        assert_eq!(
            out.unique_ids(stream),
            emulator_ids(emu, &platform_test(), stream),
            "{stream}"
        );
    }
}
