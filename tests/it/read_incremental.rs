use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use source_stripe::emulator::{Advance, ChangeKind, DEFAULT_TEST_KEY, Faults};
use source_stripe::streams::{Cursor, STREAMS};

use crate::util::{
    Files, emulator_ids, every_stream, last_states, platform_test, read, start_emulator,
};

/// Sync, change the data, sync with the state: exactly the new and changed objects
/// arrive, deletions flagged; a third sync with nothing changed emits no records.
#[tokio::test(flavor = "multi_thread")]
async fn second_sync_reads_exactly_the_changes() {
    let emulator = start_emulator(200).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"slice_range": 60}));
    let catalog = files.catalog(&every_stream("incremental"));

    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before: BTreeMap<&str, BTreeSet<String>> = STREAMS
        .iter()
        .filter(|s| !s.single)
        .map(|s| (s.name, emulator_ids(emu, &scope, s.name)))
        .collect();
    for (stream, ids) in &before {
        assert_eq!(
            &first.unique_ids(stream),
            ids,
            "{stream}: first sync reads everything"
        );
    }

    let report = emu.advance(&Advance {
        seconds: 3_600,
        creates: 6,
        updates: 10,
        deletes: 4,
        ..Advance::default()
    });
    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);

    for stream in STREAMS.iter().filter(|s| !s.single) {
        let got: BTreeSet<String> = second.record_ids(stream.name).into_iter().collect();
        let expected: BTreeSet<String> = match stream.cursor {
            // Full refresh only (usage summaries): all of them, every sync.
            None => emulator_ids(emu, &scope, stream.name),
            Some(Cursor::Created) => emulator_ids(emu, &scope, stream.name)
                .difference(&before[stream.name])
                .cloned()
                .collect(),
            // A change Stripe records no event for (a payment intent's embedded charge
            // refunded) cannot be seen incrementally, on Stripe as here.
            _ => report
                .changes
                .iter()
                .filter(|c| c.stream == stream.name && !c.event_type.is_empty())
                .map(|c| c.id.clone())
                .collect(),
        };
        assert_eq!(got, expected, "{}: exactly the changes", stream.name);
    }
    for change in report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
    {
        let records = second.records(&change.stream);
        let record = records
            .iter()
            .find(|r| r["id"] == change.id.as_str() && r["is_deleted"] == true)
            .unwrap_or_else(|| panic!("{} {} arrives flagged deleted", change.stream, change.id));
        assert_eq!(record["updated"], change.at, "updated is the event's time");
    }
    let silent: BTreeSet<(&str, &str)> = report
        .changes
        .iter()
        .filter(|c| c.event_type.is_empty())
        .map(|c| (c.stream.as_str(), c.id.as_str()))
        .collect();
    for change in report.changes.iter().filter(|c| {
        c.kind == ChangeKind::Updated && !silent.contains(&(c.stream.as_str(), c.id.as_str()))
    }) {
        let latest = emu.object(&scope, &change.stream, &change.id);
        let records = second.records(&change.stream);
        let newest = records
            .iter()
            .filter(|r| r["id"] == change.id.as_str())
            .max_by_key(|r| r["updated"].as_i64())
            .unwrap_or_else(|| panic!("{} {} arrives", change.stream, change.id));
        if let Some(mut latest) = latest {
            // The record is the object as Stripe holds it now, plus `updated`.
            let mut record = (*newest).clone();
            if change.stream == "products" {
                // Stripe's own field, replaced by the event's time.
                record["updated"] = latest["updated"].clone();
            } else {
                record.as_object_mut().unwrap().remove("updated");
            }
            if let (Some(r), Some(l)) = (record.as_object_mut(), latest.as_object_mut()) {
                r.remove("is_deleted");
                l.remove("is_deleted");
            }
            assert_eq!(record, latest, "{} {}", change.stream, change.id);
        }
    }

    let state = files.write("state2.json", &second.state_file());
    let third = read(&config, &catalog, Some(&state)).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    // Full refresh only streams (`account`, usage summaries) read in full every time.
    let full: Vec<&str> = STREAMS
        .iter()
        .filter(|s| s.cursor.is_none())
        .map(|s| s.name)
        .collect();
    let records: Vec<_> = third
        .of_type("RECORD")
        .into_iter()
        .filter(|m| !full.iter().any(|f| m["record"]["stream"] == *f))
        .collect();
    assert!(
        records.is_empty(),
        "nothing changed, nothing read: {records:?}"
    );
    assert_eq!(
        third.unique_ids("usage_records"),
        emulator_ids(emu, &scope, "usage_records")
    );
    assert_eq!(
        third.stream_states(),
        second.stream_states(),
        "the state stays put"
    );
}

/// A cursor older than Stripe's 30-day event window falls back to a full read of that
/// stream, and a LOG line says why.
#[tokio::test(flavor = "multi_thread")]
async fn cursor_older_than_events_window_reads_in_full() {
    let emulator = start_emulator(80).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[("customers", "incremental")]);
    let old = emu.now() - 40 * 86_400;
    let state = files.write(
        "state.json",
        &json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "customers"}, "stream_state": {"updated": old.to_string()}}}]).to_string(),
    );
    let out = read(&config, &catalog, Some(&state)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.logs()
            .iter()
            .any(|l| l.contains("customers") && l.contains("30 days")),
        "{:?}",
        out.logs()
    );
    assert_eq!(
        out.unique_ids("customers"),
        emulator_ids(emu, &platform_test(), "customers")
    );
    let last = out.of_type("STATE").last().unwrap()["state"]["stream"]["stream_state"].clone();
    assert_eq!(last, json!({"updated": emu.now()}));
}

/// Kill a sync after a few STATEs, resume from the last ones: together the two runs
/// have every id.
#[tokio::test(flavor = "multi_thread")]
async fn killed_sync_resumes_without_loss() {
    let emulator = start_emulator(600).await;
    let emu = emulator.emulator();
    emu.set_faults(Faults {
        latency: std::time::Duration::from_millis(15),
        ..Faults::default()
    });
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"slice_range": 20, "num_workers": 4}),
    );
    let streams = ["customers", "charges", "balance_transactions"];
    let catalog = files.catalog(&streams.map(|s| (s, "incremental")));
    let first = crate::util::read_killed_after(&config, &catalog, 6).await;
    let state = files.write("state.json", &last_states(&first));
    emu.set_faults(Faults::default());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    for stream in streams {
        let mut ids: BTreeSet<String> = second.record_ids(stream).into_iter().collect();
        ids.extend(
            first
                .iter()
                .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
                .map(|m| m["record"]["data"]["id"].as_str().unwrap().to_owned()),
        );
        assert_eq!(ids, emulator_ids(emu, &platform_test(), stream), "{stream}");
    }
}

/// A sink slower than Stripe (Parquet encoding is): the engine waits for it, with
/// bounded memory, and finishes with every id. A sync that waits on the sink between
/// states once deadlocked here, because the channel's free slots went to read tasks that
/// were not being polled.
#[tokio::test(flavor = "multi_thread")]
async fn slow_sink_holds_the_sync_back_without_deadlock() {
    use source_stripe::sinks::Sink;

    struct Slow {
        ids: Vec<String>,
    }
    impl Sink for Slow {
        fn records(&mut self, _: &str, records: &[String]) -> std::io::Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(5));
            for record in records {
                let value: serde_json::Value = serde_json::from_str(record).unwrap();
                self.ids.push(value["id"].as_str().unwrap().to_owned());
            }
            Ok(())
        }
        fn state(&mut self, _: &str, _: &serde_json::Value) -> std::io::Result<()> {
            Ok(())
        }
        fn message(&mut self, _: &source_stripe::protocol::AirbyteMessage) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // 100 pages of charges: more than the 76 workers plus the sink channel hold.
    let emulator = start_emulator(10_000).await;
    let config = source_stripe::config::Config::from_json(
        &json!({
            "client_secret": DEFAULT_TEST_KEY,
            "api_base": emulator.base_url(),
            "call_rate_limit": 100000,
            "num_workers": 76,
            "slice_range": 30,
        })
        .to_string(),
    )
    .unwrap();
    let selected = source_stripe::streams::catalog::all_incremental()
        .into_iter()
        .filter(|s| s.def.name == "charges")
        .collect();
    let plan = source_stripe::sync::ReadPlan::build(
        config,
        selected,
        &source_stripe::sync::state::InputState::default(),
    )
    .unwrap();
    // A deadlock never ends; a busy machine (CI, a debug build) only makes it slow.
    let sink = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        source_stripe::read(plan, Slow { ids: Vec::new() }),
    )
    .await
    .expect("the sync finishes")
    .unwrap();
    let ids: BTreeSet<String> = sink.ids.iter().cloned().collect();
    assert_eq!(ids.len(), sink.ids.len(), "each id once");
    assert_eq!(
        ids,
        emulator_ids(emulator.emulator(), &platform_test(), "charges")
    );
}
