//! Stripe's wider read surface (issue 10): Airbyte's catalog read unchanged, incremental
//! syncs of the table-driven resources, endpoints without a `created` filter, newer
//! API versions per endpoint, and products an account does not use.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use source_stripe::emulator::{
    Advance, ChangeKind, DEFAULT_RESTRICTED_KEY, DEFAULT_TEST_KEY, Scope,
};
use source_stripe::streams::{Cursor, STREAMS};

use crate::util::{
    Files, all_ids, emulator_ids, every_stream, expected_changes, path, platform_test, read, run,
    start_emulator, stream_validator,
};

/// Airbyte's Stripe source 6.1 as its discover reports it: name, primary key, cursor
/// field, sync modes (`reference/airbyte-stripe-streams.tsv`).
fn airbyte_streams() -> Vec<(String, String, String, Vec<String>)> {
    let tsv = include_str!("../../reference/airbyte-stripe-streams.tsv");
    tsv.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let modes = f[3].split(',').map(str::to_owned).collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), modes)
        })
        .collect()
}

/// A configured catalog built the way Airbyte builds it from its own source's discover
/// output (the tsv's names, keys and cursor fields), for every stream of that table
/// this connector has, is read unchanged: every stream gives exactly the emulator's
/// ids, each of its 48 streams (usage summaries, a grandchild, in a full refresh while
/// their subscriptions read incrementally).
#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_of_airbytes_streams_reads_unchanged() {
    let emulator = start_emulator(120).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let discover = run(&["discover", "--config", path(&config)]).await;
    assert_eq!(discover.code, 0, "{}", discover.stderr);
    let catalog = &discover.messages[0]["catalog"];
    let ours: BTreeMap<String, &Value> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s))
        .collect();
    let mut configured = Vec::new();
    let mut missing = Vec::new();
    for (name, key, cursor, modes) in airbyte_streams() {
        let Some(stream) = ours.get(&name) else {
            missing.push(name);
            continue;
        };
        // Discover says what Airbyte's discover says (`-`: none).
        let key = (key != "-").then(|| json!([[key]]));
        let cursor = (cursor != "-").then(|| json!([cursor]));
        assert_eq!(
            stream.get("source_defined_primary_key"),
            key.as_ref(),
            "{name}"
        );
        assert_eq!(
            stream.get("default_cursor_field"),
            cursor.as_ref(),
            "{name}"
        );
        assert_eq!(stream["supported_sync_modes"], json!(modes), "{name}");
        // Airbyte's configured stream: incremental where it can, else a full refresh
        // (overwrite), without the key or cursor the stream does not have.
        let mut entry = json!({
            "stream": {
                "name": name,
                "json_schema": {},
                "supported_sync_modes": modes,
            },
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
        });
        if let Some(cursor) = cursor {
            entry["stream"]["source_defined_cursor"] = json!(true);
            entry["stream"]["default_cursor_field"] = cursor.clone();
            entry["sync_mode"] = json!("incremental");
            entry["cursor_field"] = cursor;
            entry["destination_sync_mode"] = json!("append_dedup");
        }
        if let Some(key) = key {
            entry["stream"]["source_defined_primary_key"] = key.clone();
            entry["primary_key"] = key;
        }
        configured.push(entry);
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "every one of Airbyte's streams"
    );
    assert_eq!(configured.len(), 48);
    let catalog_file = files.write(
        "catalog.json",
        &json!({ "streams": configured }).to_string(),
    );
    let out = read(&config, &catalog_file, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scope = platform_test();
    for stream in STREAMS.iter().filter(|s| !s.single) {
        let expected = emulator_ids(emulator.emulator(), &scope, stream.name);
        assert!(
            !expected.is_empty(),
            "{}: the emulator has data",
            stream.name
        );
        assert_eq!(out.unique_ids(stream.name), expected, "{}", stream.name);
        let validator = stream_validator(catalog, stream.name);
        for record in out.records(stream.name) {
            let errors: Vec<String> = validator
                .iter_errors(record)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", stream.name);
        }
    }
    // Endpoints without a `created` filter were read without one; every request the
    // connector sent was a GET the emulator (and so the spec) accepted.
    let log = emulator.emulator().request_log();
    for stream in STREAMS
        .iter()
        .filter(|s| !s.created_filter && !s.single && s.child.is_none())
    {
        let requests: Vec<_> = log.iter().filter(|r| r.path == stream.path).collect();
        assert!(!requests.is_empty(), "{} was read", stream.name);
        assert!(
            requests.iter().all(|r| !r.query.contains("created")),
            "{}: no created filter",
            stream.name
        );
    }
    assert!(
        log.iter().all(|r| r.method == "GET" && r.status == 200),
        "{log:?}"
    );
}

/// Create, update and delete objects of every table-driven resource: the next
/// incremental sync carries exactly those changes (deletes flagged, with the event's
/// time as `updated`), every stream's records validate, and a third sync reads nothing.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_carries_every_resources_changes() {
    let emulator = start_emulator(100).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&every_stream("incremental"));
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = all_ids(emu, &scope);

    let report = emu.advance(&Advance {
        seconds: 3_600,
        resources: 2,
        ..Advance::default()
    });
    // Every table-driven stream changed.
    let changed: BTreeSet<&str> = report.changes.iter().map(|c| c.stream.as_str()).collect();
    for name in [
        "application_fees",
        "authorizations",
        "cardholders",
        "cards",
        "checkout_sessions",
        "coupons",
        "credit_notes",
        "early_fraud_warnings",
        "file_links",
        "files",
        "invoice_items",
        "invoice_payments",
        "plans",
        "promotion_codes",
        "reviews",
        "setup_intents",
        "shipping_rates",
        "subscription_schedule",
        "top_ups",
        "transactions",
        "transfers",
    ] {
        assert!(changed.contains(name), "{name} changed");
    }
    let deleted: BTreeSet<&str> = report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .map(|c| c.stream.as_str())
        .collect();
    assert_eq!(
        deleted,
        BTreeSet::from([
            "bank_accounts",
            "coupons",
            "external_account_bank_accounts",
            "external_account_cards",
            "invoice_items",
            "payment_methods",
            "persons",
            "plans"
        ])
    );

    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let expected = expected_changes(emu, &scope, &before, &report);
    for stream in STREAMS.iter().filter(|s| !s.single) {
        let got: BTreeSet<String> = second.record_ids(stream.name).into_iter().collect();
        assert_eq!(
            got, expected[stream.name],
            "{}: exactly the changes",
            stream.name
        );
        if stream.cursor == Some(Cursor::Updated) && changed.contains(stream.name) {
            assert!(!got.is_empty(), "{}: its changes arrive", stream.name);
        }
        // Every child stream changed (its parents, or itself): its children arrive, as
        // children.
        if let Some(child) = stream.child.as_ref().filter(|_| stream.cursor.is_some()) {
            assert!(
                !got.is_empty(),
                "{}: its parents' children arrive",
                stream.name
            );
            for record in second.records(stream.name) {
                assert_eq!(record["object"], stream.object, "{}", stream.name);
            }
            // Through its parent's events, or its own (bank accounts, persons, payment
            // methods, external accounts).
            assert!(
                changed.contains(child.parent) || changed.contains(stream.name),
                "{}",
                stream.name
            );
        }
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
    // An updated object arrives as it is now.
    for change in report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Updated)
    {
        let Some(latest) = emu.object(&scope, &change.stream, &change.id) else {
            continue;
        };
        let records = second.records(&change.stream);
        let newest = records
            .iter()
            .filter(|r| r["id"] == change.id.as_str())
            .max_by_key(|r| r["updated"].as_i64())
            .unwrap_or_else(|| panic!("{} {} arrives", change.stream, change.id));
        let mut record = (*newest).clone();
        record.as_object_mut().unwrap().remove("updated");
        assert_eq!(record, latest, "{} {}", change.stream, change.id);
    }

    // The card network's update of a payment method (no request) arrives with its time.
    let auto = report
        .changes
        .iter()
        .find(|c| c.event_type == "payment_method.automatically_updated")
        .expect("the emulator emits one");
    assert!(
        second
            .records("payment_methods")
            .iter()
            .any(|r| r["id"] == auto.id.as_str() && r["updated"] == auto.at),
        "{} arrives from its automatic update",
        auto.id
    );

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
}

/// A connected account without Issuing (and not a Connect platform itself) gets Stripe's
/// "not set up" answers: those streams are empty with a LOG warning naming them and
/// complete, while a stream the restricted key may not read still fails loudly.
#[tokio::test(flavor = "multi_thread")]
async fn a_product_not_enabled_is_an_empty_stream_a_permission_error_fails() {
    let emulator = start_emulator(60).await;
    let account = emulator.emulator().connected_account_ids()[0].clone();
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_RESTRICTED_KEY,
        json!({ "account_id": account }),
    );
    let catalog = files.catalog(&[
        ("cards", "incremental"),
        ("transactions", "full_refresh"),
        ("accounts", "incremental"),
        ("coupons", "incremental"),
        ("disputes", "incremental"),
    ]);
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0, "the permission error fails the sync");
    let logs = out.logs();
    for name in ["cards", "transactions", "accounts"] {
        assert!(out.records(name).is_empty(), "{name} is empty");
        assert!(
            logs.iter().any(
                |l| l.starts_with(&format!("stream {name} is empty: the account does not use"))
            ),
            "{name}: a warning says why: {logs:?}"
        );
        assert_eq!(out.statuses(name), ["STARTED", "COMPLETE"], "{name}");
    }
    let scope = Scope {
        account: Some(account.clone()),
        livemode: false,
    };
    assert_eq!(
        out.unique_ids("coupons"),
        emulator_ids(emulator.emulator(), &scope, "coupons")
    );
    let errors = out.errors();
    let failed: Vec<&Value> = errors
        .iter()
        .copied()
        .filter(|e| e["stream_descriptor"]["name"].is_string())
        .collect();
    assert_eq!(failed.len(), 1, "only disputes fails: {errors:?}");
    assert_eq!(failed[0]["stream_descriptor"]["name"], "disputes");
    assert_eq!(failed[0]["failure_type"], "config_error");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("may not read /v1/disputes (403")
    );
    assert_eq!(out.statuses("disputes").last().unwrap(), "INCOMPLETE");
}
