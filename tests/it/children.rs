//! Child streams (issue 10): records are the children (`il_…`, `si_…`), never the parent;
//! one list of a parent feeds the parent and every selected child; the embedded first
//! page is used as it is and the child endpoint is called only when that list says
//! `has_more`; incrementally a parent's events re-read that parent's children only.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, DEFAULT_TEST_KEY, LoggedRequest};

use crate::util::{
    Files, emulator_ids, path, platform_test, read, run, start_emulator, stream_validator,
};

const FAMILY: [&str; 4] = [
    "invoices",
    "invoice_line_items",
    "subscriptions",
    "subscription_items",
];

fn list_calls<'a>(log: &'a [LoggedRequest], path: &str) -> Vec<&'a LoggedRequest> {
    log.iter().filter(|r| r.path == path).collect()
}

fn line_calls(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter()
        .filter(|r| r.path.starts_with("/v1/invoices/") && r.path.ends_with("/lines"))
        .collect()
}

/// A full refresh of invoices, subscriptions and their children: exactly the emulator's
/// ids per stream, records valid against the discovered schemas, each child pointing at
/// its parent; the parents listed as often as when read alone; a child endpoint called
/// only for the invoices whose embedded lines say `has_more`, and never for
/// subscription items (always embedded whole).
#[tokio::test(flavor = "multi_thread")]
async fn full_refresh_reads_children_from_one_list_of_their_parent() {
    let emulator = start_emulator(200).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));

    // The parents alone: how many list requests they take.
    let alone = files.catalog(&[
        ("invoices", "full_refresh"),
        ("subscriptions", "full_refresh"),
    ]);
    let out = read(&config, &alone, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = emu.request_log();
    let invoice_lists = list_calls(&log, "/v1/invoices").len();
    let subscription_lists = list_calls(&log, "/v1/subscriptions").len();
    assert!(line_calls(&log).is_empty());

    let family: Vec<(&str, &str)> = FAMILY.iter().map(|s| (*s, "full_refresh")).collect();
    let catalog = files.catalog(&family);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let discover = run(&["discover", "--config", path(&config)]).await;
    let discovered = &discover.messages[0]["catalog"];
    for stream in FAMILY {
        let expected = emulator_ids(emu, &scope, stream);
        assert!(expected.len() > 3, "{stream}: the emulator has data");
        assert_eq!(out.unique_ids(stream), expected, "{stream}");
        let validator = stream_validator(discovered, stream);
        for record in out.records(stream) {
            let errors: Vec<String> = validator
                .iter_errors(record)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{stream}: {errors:?}");
        }
    }
    // Records are the children, each with its parent's fields.
    let invoices: Vec<Value> = out.records("invoices").into_iter().cloned().collect();
    let mut long = BTreeSet::new();
    for invoice in &invoices {
        let id = invoice["id"].as_str().unwrap();
        if invoice["lines"]["has_more"] == true {
            long.insert(id.to_owned());
        }
        let lines: BTreeSet<String> = out
            .records("invoice_line_items")
            .into_iter()
            .filter(|l| l["invoice_id"] == id)
            .map(|l| {
                assert_eq!(l["object"], "line_item");
                assert!(l["id"].as_str().unwrap().starts_with("il_"));
                assert_eq!(l["invoice_created"], invoice["created"]);
                assert_eq!(
                    l["invoice_updated"], invoice["created"],
                    "from a list: created"
                );
                l["id"].as_str().unwrap().to_owned()
            })
            .collect();
        let expected: BTreeSet<String> = emu
            .child_ids(&scope, "invoice_line_items", id)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(lines, expected, "{id}: its lines, all of them");
    }
    assert!(
        !long.is_empty(),
        "some invoices have more lines than they embed"
    );
    assert!(long.len() < invoices.len(), "and some embed all of them");
    for item in out.records("subscription_items") {
        assert_eq!(item["object"], "subscription_item");
        let parent = item["subscription"].as_str().unwrap();
        let ids = emu.child_ids(&scope, "subscription_items", parent).unwrap();
        assert!(ids.iter().any(|i| item["id"] == i.as_str()));
        assert!(item["subscription_updated"].is_i64());
    }

    // The log holds both reads: the second listed the parents as often as the first.
    let log = emu.request_log();
    assert_eq!(
        list_calls(&log, "/v1/invoices").len(),
        2 * invoice_lists,
        "invoices listed once more for itself and its lines, not once per stream"
    );
    assert_eq!(
        list_calls(&log, "/v1/subscriptions").len(),
        2 * subscription_lists
    );
    let called: BTreeSet<String> = line_calls(&log)
        .iter()
        .map(|r| {
            r.path
                .trim_start_matches("/v1/invoices/")
                .trim_end_matches("/lines")
                .to_owned()
        })
        .collect();
    assert_eq!(called, long, "the child endpoint only where has_more");
    assert_eq!(line_calls(&log).len(), long.len(), "once per long invoice");
    assert!(list_calls(&log, "/v1/subscription_items").is_empty());
    for r in line_calls(&log) {
        assert!(
            r.query.contains("starting_after=il_"),
            "the rest: {}",
            r.query
        );
        assert_eq!(r.status, 200);
    }
}

/// Only a child selected: the parent is listed for it, and no parent record goes out;
/// the child's STATE is said under its own name.
#[tokio::test(flavor = "multi_thread")]
async fn a_child_alone_lists_its_parent_without_emitting_it() {
    let emulator = start_emulator(120).await;
    let emu = emulator.emulator();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[("invoice_line_items", "incremental")]);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.unique_ids("invoice_line_items"),
        emulator_ids(emu, &platform_test(), "invoice_line_items")
    );
    assert!(out.records("invoices").is_empty());
    let states = out.stream_states();
    assert!(states.contains_key("invoice_line_items"), "{states:?}");
    assert!(!states.contains_key("invoices"), "{states:?}");
    assert_eq!(
        out.statuses("invoice_line_items").last().unwrap(),
        "COMPLETE"
    );
}

/// Incremental: a line added to an invoice and a subscription item's quantity changed
/// (each with its parent's event) arrive on the next sync as children — exactly the
/// children of the changed parents, as they are now — with the parent's event time as
/// their cursor; a third sync reads nothing.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_rereads_only_the_children_of_changed_parents() {
    let emulator = start_emulator(120).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let family: Vec<(&str, &str)> = FAMILY.iter().map(|s| (*s, "incremental")).collect();
    let catalog = files.catalog(&family);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lines_before = emulator_ids(emu, &scope, "invoice_line_items");

    let report = emu.advance(&Advance {
        seconds: 3_600,
        resources: 2,
        ..Advance::default()
    });
    let changed = |stream: &str| -> Vec<(String, i64)> {
        report
            .changes
            .iter()
            .filter(|c| c.stream == stream)
            .map(|c| (c.id.clone(), c.at))
            .collect()
    };
    let invoices = changed("invoices");
    let subscriptions = changed("subscriptions");
    assert_eq!(invoices.len(), 2);
    assert_eq!(subscriptions.len(), 2);
    let added: BTreeSet<String> = emulator_ids(emu, &scope, "invoice_line_items")
        .difference(&lines_before)
        .cloned()
        .collect();
    assert_eq!(added.len(), 2, "a line added to each invoice");

    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let children_of = |stream: &str, parents: &[(String, i64)]| -> BTreeSet<String> {
        parents
            .iter()
            .flat_map(|(id, _)| emu.child_ids(&scope, stream, id).unwrap())
            .collect()
    };
    let lines = second.unique_ids("invoice_line_items");
    assert_eq!(lines, children_of("invoice_line_items", &invoices));
    assert!(added.is_subset(&lines), "the new lines arrive");
    assert_eq!(
        second.unique_ids("subscription_items"),
        children_of("subscription_items", &subscriptions)
    );
    for (id, at) in &invoices {
        for line in second
            .records("invoice_line_items")
            .into_iter()
            .filter(|l| l["invoice_id"] == id.as_str())
        {
            assert_eq!(line["object"], "line_item", "a child, never the parent");
            assert_eq!(
                line["invoice_updated"], *at,
                "the event's time is the cursor"
            );
        }
    }
    for (id, _) in &subscriptions {
        let now = emu.object(&scope, "subscriptions", id).unwrap();
        let item = second
            .records("subscription_items")
            .into_iter()
            .find(|i| i["subscription"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(
            item["quantity"], now["items"]["data"][0]["quantity"],
            "as it is now"
        );
    }

    let state = files.write("state2.json", &second.state_file());
    let third = read(&config, &catalog, Some(&state)).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    for stream in FAMILY {
        assert!(
            third.records(stream).is_empty(),
            "{stream}: nothing changed"
        );
    }
}
