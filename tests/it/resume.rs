//! Checkpoints: a sync killed after a few STATEs resumes from them, reads only what was
//! not complete (the request log shows no complete window read again), and ends with
//! every id. Full refresh too (Airbyte's resumable full refresh).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use source_stripe::emulator::{DEFAULT_TEST_KEY, Faults, Running};

use crate::util::{Files, emulator_ids, last_states, platform_test, read, read_killed_after};

/// The `[created[gte], created[lt])` of a logged list request (`lt` open: `i64::MAX`).
fn created_range(query: &str) -> Option<(i64, i64)> {
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let gte = params.get("created[gte]")?.parse().ok()?;
    let lt = params
        .get("created[lt]")
        .map_or(Some(i64::MAX), |lt| lt.parse().ok())?;
    Some((gte, lt))
}

/// The ranges of `created` a stream state says are read: below the low-water mark
/// (`low`, when the state has one) and every `created_done` range.
fn done_ranges(state: &Value, start: i64, low: Option<&str>) -> Vec<(i64, i64)> {
    let mut done: Vec<(i64, i64)> = state["created_done"]
        .as_array()
        .map(|ranges| {
            ranges
                .iter()
                .map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(low) = low.and_then(|key| state[key].as_i64()) {
        done.push((start, low));
    }
    done
}

/// Every list request for `path` after the first `skip` of the log, as `created` ranges.
fn requested_ranges(emulator: &Running, path: &str, skip: usize) -> Vec<(i64, i64)> {
    emulator.emulator().request_log()[skip..]
        .iter()
        .filter(|r| r.path == path)
        .filter_map(|r| created_range(&r.query))
        .collect()
}

fn ids_of(messages: &[Value], stream: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
        .map(|m| m["record"]["data"]["id"].as_str().unwrap().to_owned())
        .collect()
}

const START: i64 = 946_684_800; // util's start_date, 2000-01-01

async fn slow_emulator() -> Running {
    let emulator = crate::util::start_emulator(800).await;
    // Windows then finish out of order, and the kill lands mid-way.
    emulator.emulator().set_faults(Faults {
        latency: std::time::Duration::from_millis(15),
        ..Faults::default()
    });
    emulator
}

/// A full refresh killed after its first STATEs resumes where it stopped: the resumed
/// run asks for no range its state says is complete, each object is read at most once
/// more than needed, and the two runs together have every id.
#[tokio::test(flavor = "multi_thread")]
async fn killed_full_refresh_resumes_where_it_stopped() {
    let emulator = slow_emulator().await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 20, "num_workers": 4}),
    );
    let catalog = files.catalog(&[("charges", "full_refresh")]);
    let first = read_killed_after(&config, &catalog, 4).await;
    let state_text = last_states(&first);
    let state: Value =
        serde_json::from_str::<Vec<Value>>(&state_text).unwrap()[0]["stream"]["stream_state"]
            .clone();
    let done = done_ranges(&state, START, None);
    assert!(!done.is_empty(), "the full refresh checkpointed: {state}");

    let state_file = files.write("state.json", &state_text);
    emulator.emulator().set_faults(Faults::default());
    let skip = emulator.emulator().request_log().len();
    let second = read(&config, &catalog, Some(&state_file)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);

    for (gte, lt) in requested_ranges(&emulator, "/v1/charges", skip) {
        for &(a, b) in &done {
            assert!(
                lt <= a || b <= gte,
                "the resumed run asked for [{gte}, {lt}), inside the complete range [{a}, {b})"
            );
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids_of(&first, "charges")
        .into_iter()
        .chain(second.record_ids("charges"))
    {
        *counts.entry(id).or_default() += 1;
    }
    assert!(
        counts.values().all(|n| *n <= 2),
        "an object was read more than twice"
    );
    let expected = emulator_ids(emulator.emulator(), &platform_test(), "charges");
    let all: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(all, expected);
    assert!(
        second.unique_ids("charges").len() < expected.len(),
        "the resumed run did not start over"
    );
    assert_eq!(
        second.stream_states()["charges"],
        json!({"__ab_full_refresh_sync_complete": true})
    );
}

/// The first (backfill) read of an incremental stream killed after a few STATEs: the
/// resumed run does not read again the windows that were complete (the emulator's
/// request log), and ends with every id and the events cursor.
#[tokio::test(flavor = "multi_thread")]
async fn killed_sync_does_not_reread_complete_windows() {
    let emulator = slow_emulator().await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 20, "num_workers": 4}),
    );
    let catalog = files.catalog(&[("charges", "incremental")]);
    let first = read_killed_after(&config, &catalog, 4).await;
    let state_text = last_states(&first);
    let state: Value =
        serde_json::from_str::<Vec<Value>>(&state_text).unwrap()[0]["stream"]["stream_state"]
            .clone();
    assert!(
        state["backfill_from_created"].is_i64(),
        "a backfill under way: {state}"
    );
    let done = done_ranges(&state, START, Some("backfill_from_created"));
    assert!(
        done.iter().any(|&(a, b)| b > a && b > START),
        "progress was saved: {state}"
    );

    let state_file = files.write("state.json", &state_text);
    emulator.emulator().set_faults(Faults::default());
    let skip = emulator.emulator().request_log().len();
    let second = read(&config, &catalog, Some(&state_file)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let requested = requested_ranges(&emulator, "/v1/charges", skip);
    assert!(!requested.is_empty());
    for (gte, lt) in requested {
        for &(a, b) in &done {
            assert!(
                lt <= a || b <= gte,
                "the resumed run asked for [{gte}, {lt}), inside the complete range [{a}, {b})"
            );
        }
    }
    let mut ids: BTreeSet<String> = second.record_ids("charges").into_iter().collect();
    ids.extend(ids_of(&first, "charges"));
    assert_eq!(
        ids,
        emulator_ids(emulator.emulator(), &platform_test(), "charges")
    );
    assert_eq!(
        second.stream_states()["charges"],
        json!({"updated": state["updated"]})
    );
}

/// Airbyte's abnormal-state test: a cursor far in the future on every stream reads no
/// record and exits 0, keeping the cursors.
#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_far_in_the_future_reads_nothing() {
    let emulator = crate::util::start_emulator(50).await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"lookback_window_days": 3}),
    );
    let streams: Vec<(&str, &str)> = crate::util::every_stream("incremental")
        .into_iter()
        .filter(|(name, _)| {
            source_stripe::streams::find(name).is_some_and(|d| d.supports_incremental())
        })
        .collect();
    let catalog = files.catalog(&streams);
    let state: Vec<Value> = streams
        .iter()
        .map(|(name, _)| {
            let cursor = source_stripe::streams::find(name)
                .and_then(|d| d.cursor)
                .unwrap()
                .field();
            json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": name},
                "stream_state": {cursor: 10_000_000_000_i64}}})
        })
        .collect();
    let state_file = files.write("state.json", &Value::Array(state).to_string());
    let out = read(&config, &catalog, Some(&state_file)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.of_type("RECORD").is_empty(), "no records");
    let states = out.stream_states();
    for (name, _) in &streams {
        let state = &states[*name];
        assert!(
            state
                .as_object()
                .unwrap()
                .values()
                .all(|v| v == 10_000_000_000_i64),
            "{name}: {state}"
        );
    }
}

/// A child stream read alone (payment methods; their customers not selected) killed
/// after its first STATEs resumes from its own state, without re-reading every parent:
/// the resumed run lists no range of customers the child's state says is complete, asks
/// for the payment methods of fewer customers than there are, and the two runs together
/// have every payment method.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_child_stream_resumes_from_its_own_state() {
    let emulator = slow_emulator().await;
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 20, "num_workers": 4}),
    );
    let catalog = files.catalog(&[("payment_methods", "full_refresh")]);
    let first = read_killed_after(&config, &catalog, 4).await;
    let state_text = last_states(&first);
    let states: Vec<Value> = serde_json::from_str(&state_text).unwrap();
    assert_eq!(states.len(), 1, "the child's state alone: {state_text}");
    assert_eq!(
        states[0]["stream"]["stream_descriptor"]["name"],
        "payment_methods"
    );
    let done = done_ranges(&states[0]["stream"]["stream_state"], START, None);
    assert!(!done.is_empty(), "the child checkpointed: {state_text}");

    let state_file = files.write("state.json", &state_text);
    emulator.emulator().set_faults(Faults::default());
    let skip = emulator.emulator().request_log().len();
    let second = read(&config, &catalog, Some(&state_file)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    for (gte, lt) in requested_ranges(&emulator, "/v1/customers", skip) {
        for &(a, b) in &done {
            assert!(
                lt <= a || b <= gte,
                "the resumed run listed customers in [{gte}, {lt}), inside the complete range [{a}, {b})"
            );
        }
    }
    let scope = platform_test();
    let child_calls = emulator.emulator().request_log()[skip..]
        .iter()
        .filter(|r| r.path.ends_with("/payment_methods"))
        .count();
    let customers = emulator_ids(emulator.emulator(), &scope, "customers").len();
    assert!(
        child_calls < customers,
        "the resumed run asked for {child_calls} customers' payment methods, of {customers}"
    );
    let all: BTreeSet<String> = ids_of(&first, "payment_methods")
        .into_iter()
        .chain(second.record_ids("payment_methods"))
        .collect();
    assert_eq!(
        all,
        emulator_ids(emulator.emulator(), &scope, "payment_methods")
    );
    assert!(second.records("customers").is_empty());
}
