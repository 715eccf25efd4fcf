//! Events that show up late: Stripe's events list is eventually consistent, so an event
//! can become listable seconds after its `created`. A sync whose events pass ends at
//! "now" would skip it for good; the settle margin (`event_settle_secs`) keeps the pass
//! behind Stripe's clock so the next sync still reads it.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, DEFAULT_TEST_KEY, Faults};

use crate::util::{Files, Run, platform_test, read, start_emulator};

/// Syncs `customers` (changes through the events pass) and `events` (a `created`
/// cursor on /v1/events) three times: a backfill; after changes whose events the
/// emulator lists only 30 s after their `created`; and 2 minutes later, when they are
/// listable. With the default settle margin every change arrives; with the margin off
/// (today's behaviour before the fix) the late ones are lost.
async fn late_events(
    settle: Option<i64>,
) -> (
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<String>,
) {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let mut config = json!({
        "client_secret": DEFAULT_TEST_KEY,
        "api_base": emulator.base_url(),
        "call_rate_limit": 2000,
        "start_date": "2000-01-01T00:00:00Z",
    });
    if let Some(settle) = settle {
        config["event_settle_secs"] = json!(settle);
    }
    let config = files.write("late_config.json", &config.to_string());
    let catalog = files.catalog(&[("customers", "incremental"), ("events", "incremental")]);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);

    emu.set_faults(Faults {
        event_visibility_delay_secs: 30,
        ..Faults::default()
    });
    // Past the settle margin of the first sync, then changes in the last few seconds.
    emu.advance(&Advance {
        seconds: 600,
        ..Advance::default()
    });
    let report = emu.advance(&Advance {
        seconds: 5,
        updates: 6,
        creates: 2,
        ..Advance::default()
    });
    let changed: BTreeSet<String> = report
        .changes
        .iter()
        .filter(|c| c.stream == "customers" && !c.event_type.is_empty())
        .map(|c| c.id.clone())
        .collect();
    assert!(!changed.is_empty(), "customers changed");
    let new_events: BTreeSet<String> = emu
        .ids(&platform_test(), "events")
        .into_iter()
        .collect::<BTreeSet<_>>()
        .difference(&ids(&first, "events"))
        .cloned()
        .collect();
    let state = files.write("state.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);

    emu.advance(&Advance {
        seconds: 120,
        ..Advance::default()
    });
    let state = files.write("state.json", &second.state_file());
    let third = read(&config, &catalog, Some(&state)).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let mut customers = ids(&second, "customers");
    customers.extend(ids(&third, "customers"));
    let mut events = ids(&second, "events");
    events.extend(ids(&third, "events"));
    (changed, customers, new_events, events)
}

fn ids(run: &Run, stream: &str) -> BTreeSet<String> {
    run.records(stream)
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// With the default margin (60 s, behind the emulator's 30 s delay) no change is lost.
#[tokio::test(flavor = "multi_thread")]
async fn late_events_are_read_by_the_next_sync() {
    let (changed, customers, new_events, events) = late_events(None).await;
    assert!(
        changed.is_subset(&customers),
        "missing changes: {:?}",
        changed.difference(&customers).collect::<Vec<_>>()
    );
    assert!(
        new_events.is_subset(&events),
        "missing events: {:?}",
        new_events.difference(&events).collect::<Vec<_>>()
    );
}

/// Without a margin (the connector before `event_settle_secs`), the events that were
/// not listable yet during the second sync are skipped for good: the loss the margin
/// fixes, shown so the test above cannot pass by accident.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_margin_late_events_are_lost() {
    let (changed, customers, new_events, events) = late_events(Some(0)).await;
    assert!(
        !changed.is_subset(&customers),
        "changes lost without a margin"
    );
    assert!(
        !new_events.is_subset(&events),
        "events lost without a margin"
    );
}

/// The margin is a config field with a clear error when out of range.
#[tokio::test]
async fn settle_margin_is_validated() {
    let files = Files::new();
    let config = files.write(
        "c.json",
        &json!({"client_secret": DEFAULT_TEST_KEY, "event_settle_secs": -1}).to_string(),
    );
    // `discover` (check answers a bad config with a FAILED status and exit 0, as the CDK does).
    let out = crate::util::run(&["discover", "--config", crate::util::path(&config)]).await;
    assert_ne!(out.code, 0);
    let error: &Value = out.errors()[0];
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("event_settle_secs")
    );
}
