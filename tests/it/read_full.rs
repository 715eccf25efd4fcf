use serde_json::{Value, json};
use source_stripe::emulator::{DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, Scope};
use source_stripe::streams::STREAMS;

use crate::util::{
    Files, emulator_ids, every_stream, path, platform_test, read, run, start_emulator,
    stream_validator,
};

/// Full refresh of every stream yields exactly the emulator's ids, each once, and every
/// record validates against its stream's schema.
#[tokio::test(flavor = "multi_thread")]
async fn full_refresh_yields_every_id_once() {
    let emulator = start_emulator(450).await;
    let files = Files::new();
    // Small slices: many windows, read concurrently and split.
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"slice_range": 30}));
    let catalog = files.catalog(&every_stream("full_refresh"));
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    let discover = run(&["discover", "--config", path(&config)]).await;
    let catalog = discover.messages[0]["catalog"].clone();
    let scope = platform_test();
    for stream in STREAMS {
        let validator = stream_validator(&catalog, stream.name);
        for record in out.records(stream.name) {
            let errors: Vec<String> = validator
                .iter_errors(record)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", stream.name);
            // Some objects (refunds, the account) carry no livemode at this API version.
            assert_ne!(record["livemode"], Value::Bool(true), "{}", stream.name);
        }
        if stream.single {
            assert_eq!(
                out.record_ids(stream.name),
                vec![emulator.emulator().platform_account_id()]
            );
            assert_eq!(
                out.statuses(stream.name),
                ["STARTED", "RUNNING", "COMPLETE"]
            );
            continue;
        }
        let expected = emulator_ids(emulator.emulator(), &scope, stream.name);
        assert!(
            !expected.is_empty(),
            "{}: the emulator has data",
            stream.name
        );
        assert_eq!(out.unique_ids(stream.name), expected, "{}", stream.name);
        assert_eq!(
            out.statuses(stream.name),
            ["STARTED", "RUNNING", "COMPLETE"],
            "{}",
            stream.name
        );
    }
    // Resumable full refresh: every list stream checkpoints as it goes, and its last STATE
    // says the full refresh is complete, so the next one starts over.
    let states = out.stream_states();
    for stream in STREAMS.iter().filter(|s| !s.single) {
        assert_eq!(
            states.get(stream.name),
            Some(&json!({"__ab_full_refresh_sync_complete": true})),
            "{}",
            stream.name
        );
    }
    // Charges carry their refunds, records get `updated` = `created`.
    let charges = out.records("charges");
    assert!(charges.iter().any(|c| {
        c["refunds"]["data"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    }));
    assert!(charges.iter().all(|c| c["updated"] == c["created"]));
}

/// A live key reads the live-mode data set, not the test one.
#[tokio::test(flavor = "multi_thread")]
async fn live_key_reads_live_data() {
    let emulator = start_emulator(60).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_LIVE_KEY, json!({}));
    let catalog = files.catalog(&[("customers", "full_refresh"), ("charges", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let live = Scope {
        account: None,
        livemode: true,
    };
    for stream in ["customers", "charges"] {
        assert_eq!(
            out.unique_ids(stream),
            emulator_ids(emulator.emulator(), &live, stream)
        );
        assert!(out.records(stream).iter().all(|r| r["livemode"] == true));
    }
}

/// `account_id` of a connected account reads that account's data.
#[tokio::test(flavor = "multi_thread")]
async fn connected_account_is_read_with_its_id() {
    let emulator = start_emulator(60).await;
    let account = emulator.emulator().connected_account_ids()[1].clone();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"account_id": account}));
    let catalog = files.catalog(&[("account", "full_refresh"), ("charges", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.record_ids("account"), vec![account.clone()]);
    let scope = Scope {
        account: Some(account.clone()),
        livemode: false,
    };
    assert_eq!(
        out.unique_ids("charges"),
        emulator_ids(emulator.emulator(), &scope, "charges")
    );
    let platform = emulator_ids(emulator.emulator(), &platform_test(), "charges");
    assert!(out.unique_ids("charges").is_disjoint(&platform));
    // Every request for this sync carried the account header.
    let log = emulator.emulator().request_log();
    assert!(
        log.iter()
            .filter(|r| r.path == "/v1/charges")
            .all(|r| r.account.as_deref() == Some(account.as_str()))
    );
}

/// The first page of a fresh full refresh is asked for together with the account's
/// request, not after its answer; a stream whose first window ends at the server's clock
/// (incremental) waits for that answer. No page is asked for twice, and every id arrives.
#[tokio::test(flavor = "multi_thread")]
async fn first_pages_of_full_refreshes_go_with_the_accounts_request() {
    let emulator = start_emulator(120).await;
    let latency = std::time::Duration::from_millis(300);
    emulator
        .emulator()
        .set_faults(source_stripe::emulator::Faults {
            latency,
            ..Default::default()
        });
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[("customers", "full_refresh"), ("charges", "incremental")]);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scope = platform_test();
    for stream in ["customers", "charges"] {
        assert_eq!(
            out.unique_ids(stream),
            emulator_ids(emulator.emulator(), &scope, stream),
            "{stream}"
        );
    }
    let log = emulator.emulator().request_log();
    let first = |path: &str| {
        log.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no request for {path}"))
            .received_ms
    };
    let answered = first("/v1/account") + latency.as_millis() as u64;
    assert!(first("/v1/customers") < answered, "{log:?}");
    assert!(first("/v1/charges") >= answered, "{log:?}");
    let mut asked: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.path.as_str(), r.query.as_str()))
        .collect();
    let all = asked.len();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), all, "a request was sent twice: {log:?}");
}
