//! Child streams (issue 10): records are the children (`il_…`, `si_…`), never the parent;
//! one list of a parent feeds the parent and every selected child; the embedded first
//! page is used as it is and the child endpoint is called only when that list says
//! `has_more`; incrementally a parent's events re-read that parent's children only.

use std::collections::{BTreeMap, BTreeSet};

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
    // The summary tells of the selected stream only.
    let count = out.unique_ids("invoice_line_items").len();
    let logs = out.logs();
    assert!(
        logs.iter().any(|l| l.starts_with(&format!(
            "stream invoice_line_items done: {count} records, "
        ))),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("invoices")), "{logs:?}");
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

/// The child streams of application fees, transfers, checkout sessions, setup intents,
/// payouts and customers, with their parents, in a full refresh.
const MORE: [(&str, &str); 6] = [
    ("application_fees_refunds", "application_fees"),
    ("transfer_reversals", "transfers"),
    ("checkout_sessions_line_items", "checkout_sessions"),
    ("setup_attempts", "setup_intents"),
    ("payout_balance_transactions", "payouts"),
    ("customer_balance_transactions", "customers"),
];

/// Which requests are one parent's child list: `(parent id, is a child call)`.
fn child_call(child: &str, r: &LoggedRequest) -> Option<String> {
    let param = |name: &str| {
        r.query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    let between = |head: &str, tail: &str| {
        r.path
            .strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .map(str::to_owned)
    };
    match child {
        "application_fees_refunds" => between("/v1/application_fees/", "/refunds"),
        "transfer_reversals" => between("/v1/transfers/", "/reversals"),
        "checkout_sessions_line_items" => between("/v1/checkout/sessions/", "/line_items"),
        "setup_attempts" if r.path == "/v1/setup_attempts" => param("setup_intent"),
        "payout_balance_transactions" if r.path == "/v1/balance_transactions" => param("payout"),
        "customer_balance_transactions" => between("/v1/customers/", "/balance_transactions"),
        _ => None,
    }
}

/// A full refresh of the six other parent families: exactly the emulator's children per
/// stream, valid against the discovered schemas, each pointing at its parent with
/// Airbyte's added fields; each parent listed as often as when read alone; the child
/// endpoint never called where the parent embeds a complete list (fees, transfers), and
/// called once per parent, with the parameters Stripe's spec requires, where it embeds
/// none.
#[tokio::test(flavor = "multi_thread")]
async fn the_other_families_read_from_one_list_of_their_parent() {
    let emulator = start_emulator(150).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let parents: Vec<(&str, &str)> = MORE.iter().map(|(_, p)| (*p, "full_refresh")).collect();
    let out = read(&config, &files.catalog(&parents), None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let alone = emu.request_log();
    let lists = |log: &[LoggedRequest], parent: &str| {
        let path = source_stripe::streams::find(parent).unwrap().path;
        list_calls(log, path)
            .iter()
            .filter(|r| !r.query.contains("payout="))
            .count()
    };

    let mut family: Vec<(&str, &str)> = parents.clone();
    family.extend(MORE.iter().map(|(c, _)| (*c, "full_refresh")));
    let out = read(&config, &files.catalog(&family), None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = emu.request_log();
    let discover = run(&["discover", "--config", path(&config)]).await;
    let discovered = &discover.messages[0]["catalog"];
    for (child, parent) in MORE {
        let expected = emulator_ids(emu, &scope, child);
        assert!(!expected.is_empty(), "{child}: the emulator has data");
        assert_eq!(out.unique_ids(child), expected, "{child}");
        let validator = stream_validator(discovered, child);
        let def = source_stripe::streams::find(child).unwrap();
        let parent_records: Vec<Value> = out.records(parent).into_iter().cloned().collect();
        for record in out.records(child) {
            let errors: Vec<String> = validator
                .iter_errors(record)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{child}: {errors:?}");
            assert_eq!(
                record["object"], def.object,
                "{child}: a child, never the parent"
            );
            // Its parent, from its own field or the one the connector adds.
            let parent_id = match child {
                "application_fees_refunds" => &record["fee"],
                "transfer_reversals" => &record["transfer"],
                "checkout_sessions_line_items" => &record["checkout_session_id"],
                "setup_attempts" => &record["setup_intent"],
                "payout_balance_transactions" => &record["payout"],
                _ => &record["customer"],
            };
            let parent_id = parent_id.as_str().unwrap();
            let of = emu.child_ids(&scope, child, parent_id).unwrap();
            assert!(of.iter().any(|id| record["id"] == id.as_str()), "{child}");
            let p = parent_records
                .iter()
                .find(|p| p["id"] == parent_id)
                .unwrap_or_else(|| panic!("{child}: {parent_id} is a parent record"));
            match child {
                "checkout_sessions_line_items" => {
                    assert_eq!(record["checkout_session_created"], p["created"]);
                    assert_eq!(record["checkout_session_expires_at"], p["expires_at"]);
                    assert_eq!(record["checkout_session_updated"], p["created"]);
                }
                "application_fees_refunds" | "payout_balance_transactions" => {
                    assert_eq!(record["updated"], p["created"], "{child}: from a list")
                }
                _ => assert!(record["created"].is_i64(), "{child}: its own cursor"),
            }
        }
        // The parent listed once for itself and its children.
        assert_eq!(lists(&log, parent), 2 * lists(&alone, parent), "{parent}");
        assert!(
            alone.iter().all(|r| child_call(child, r).is_none()),
            "{child}: no child call when only the parent is read"
        );
        let calls: Vec<String> = log.iter().filter_map(|r| child_call(child, r)).collect();
        let mut per_parent: BTreeMap<String, usize> = BTreeMap::new();
        for id in &calls {
            *per_parent.entry(id.clone()).or_default() += 1;
        }
        match def.child.as_ref().unwrap().embedded {
            // The fixtures' fees and transfers embed complete lists.
            Some(field) => {
                assert!(
                    parent_records.iter().all(|p| p[field]["has_more"] == false),
                    "{parent}"
                );
                assert!(calls.is_empty(), "{child}: no child call: {calls:?}");
            }
            None => {
                let ids: BTreeSet<String> = parent_records
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(
                    per_parent.keys().cloned().collect::<BTreeSet<_>>(),
                    ids,
                    "{child}: one call per parent"
                );
                assert!(
                    per_parent.values().all(|n| *n == 1),
                    "{child}: {per_parent:?}"
                );
            }
        }
    }
    assert!(log.iter().all(|r| r.method == "GET" && r.status == 200));
}

/// A customer updated and then deleted between two syncs: the second sync meets its
/// `customer.updated` event first, and the child endpoint answers 404 for it (it is
/// gone). The sync still succeeds: the customer arrives deleted, without children, and
/// every other changed customer's balance transactions arrive.
#[tokio::test(flavor = "multi_thread")]
async fn a_parent_deleted_after_its_update_has_no_children_and_fails_nothing() {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[
        ("customers", "incremental"),
        ("customer_balance_transactions", "incremental"),
    ]);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Advances until one customer is both updated and deleted (deterministic data).
    let mut changes = Vec::new();
    let gone = (0..20)
        .find_map(|_| {
            let report = emu.advance(&Advance {
                seconds: 600,
                updates: 12,
                deletes: 6,
                ..Advance::default()
            });
            changes.extend(report.changes);
            let updated: BTreeSet<&str> = changes
                .iter()
                .filter(|c| c.stream == "customers" && c.event_type == "customer.updated")
                .map(|c| c.id.as_str())
                .collect();
            changes
                .iter()
                .find(|c| c.event_type == "customer.deleted" && updated.contains(c.id.as_str()))
                .map(|c| c.id.clone())
        })
        .expect("a customer updated, then deleted");

    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let log = emu.request_log();
    let path = format!("/v1/customers/{gone}/balance_transactions");
    assert!(
        log.iter().any(|r| r.path == path && r.status == 404),
        "the updated customer's children were asked for, and it is gone"
    );
    let customers = second.records("customers");
    assert!(
        customers
            .iter()
            .any(|c| c["id"] == gone.as_str() && c["is_deleted"] == true),
        "{gone} arrives deleted"
    );
    assert!(
        second
            .records("customer_balance_transactions")
            .iter()
            .all(|t| t["customer"] != gone.as_str())
    );
    // The others: the children of every changed customer that still exists.
    let expected: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.stream == "customers" && !c.event_type.is_empty())
        .flat_map(|c| {
            emu.child_ids(&scope, "customer_balance_transactions", &c.id)
                .unwrap_or_default()
        })
        .collect();
    assert!(
        !expected.is_empty(),
        "some changed customers have balance transactions"
    );
    assert_eq!(second.unique_ids("customer_balance_transactions"), expected);
    assert_eq!(second.statuses("customers").last().unwrap(), "COMPLETE");
}

/// A child with events of its own: a customer's bank accounts created, updated and
/// deleted (`customer.source.*`, the parent unchanged) arrive on the next sync from the
/// one shared events pass (their types in the same `/v1/events` requests as the
/// customers'), as they are now, the deleted one flagged with its event's time.
#[tokio::test(flavor = "multi_thread")]
async fn a_childs_own_events_come_through_the_shared_events_pass() {
    let emulator = start_emulator(60).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let catalog = files.catalog(&[
        ("customers", "incremental"),
        ("bank_accounts", "incremental"),
    ]);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        first.unique_ids("bank_accounts"),
        emulator_ids(emu, &scope, "bank_accounts")
    );
    let before = emu.request_log().len();
    let report = emu.advance(&Advance {
        seconds: 3_600,
        resources: 2,
        ..Advance::default()
    });
    let own: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.stream == "bank_accounts")
        .collect();
    let kinds: BTreeSet<_> = own.iter().map(|c| c.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "customer.source.created",
            "customer.source.deleted",
            "customer.source.updated"
        ])
    );
    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    // A bank account created and then updated arrives once per event.
    let got: BTreeSet<String> = second.record_ids("bank_accounts").into_iter().collect();
    for change in &own {
        let records = second.records("bank_accounts");
        let newest = records
            .iter()
            .filter(|r| r["id"] == change.id.as_str())
            .max_by_key(|r| r["updated"].as_i64())
            .unwrap_or_else(|| panic!("{} arrives", change.id));
        assert_eq!(newest["object"], "bank_account");
        if change.event_type == "customer.source.deleted" {
            assert_eq!(newest["is_deleted"], true, "{}", change.id);
            assert_eq!(newest["updated"], change.at);
        } else {
            assert!(newest.get("is_deleted").is_none_or(|d| d == false));
        }
    }
    let customer_changes: BTreeSet<String> = report
        .changes
        .iter()
        .filter(|c| c.stream == "customers" && !c.event_type.is_empty())
        .flat_map(|c| {
            emu.child_ids(&scope, "bank_accounts", &c.id)
                .unwrap_or_default()
        })
        .collect();
    let expected: BTreeSet<String> = own
        .iter()
        .map(|c| c.id.clone())
        .chain(customer_changes)
        .collect();
    assert_eq!(got, expected, "exactly the changes");
    // One events pass: every events request asks for both streams' types.
    let log = emu.request_log();
    let events: Vec<_> = log[before..]
        .iter()
        .filter(|r| r.path == "/v1/events")
        .collect();
    assert!(!events.is_empty());
    for r in events {
        assert!(r.query.contains("customer.updated"), "{}", r.query);
        assert!(r.query.contains("customer.source.deleted"), "{}", r.query);
    }
}

/// A grandchild (subscriptions → subscription items → usage record summaries): one list
/// of subscriptions feeds all three, each item's summaries are asked for once, the
/// records are the summaries of exactly the emulator's items; selected alone, the
/// summaries list subscriptions without emitting them or their items; selected with
/// incremental subscriptions, the summaries (full refresh only) still all arrive.
#[tokio::test(flavor = "multi_thread")]
async fn a_grandchild_reads_through_one_list_of_subscriptions() {
    let emulator = start_emulator(120).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let summaries = |log: &[LoggedRequest]| -> Vec<String> {
        log.iter()
            .filter(|r| r.path.ends_with("/usage_record_summaries"))
            .map(|r| r.path.clone())
            .collect()
    };

    // Subscriptions alone: the requests one list of them takes.
    let alone = files.catalog(&[("subscriptions", "full_refresh")]);
    let out = read(&config, &alone, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let one_list = list_calls(&emu.request_log(), "/v1/subscriptions").len();
    assert!(one_list > 0);

    let family = files.catalog(&[
        ("usage_records", "full_refresh"),
        ("subscriptions", "full_refresh"),
        ("subscription_items", "full_refresh"),
    ]);
    let before = emu.request_log().len();
    let out = read(&config, &family, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = emu.request_log()[before..].to_vec();
    assert_eq!(
        list_calls(&log, "/v1/subscriptions").len(),
        one_list,
        "subscriptions listed once"
    );
    for stream in ["subscriptions", "subscription_items", "usage_records"] {
        assert_eq!(
            out.unique_ids(stream),
            emulator_ids(emu, &scope, stream),
            "{stream}"
        );
    }
    let items = out.unique_ids("subscription_items");
    for record in out.records("usage_records") {
        assert_eq!(record["object"], "usage_record_summary");
        assert!(items.contains(record["subscription_item"].as_str().unwrap()));
    }
    let calls = summaries(&log);
    let distinct: BTreeSet<&String> = calls.iter().collect();
    assert_eq!(
        distinct.len(),
        calls.len(),
        "each item's summaries asked once"
    );
    assert_eq!(calls.len(), items.len(), "one call per item");
    let states = out.stream_states();
    for stream in ["subscriptions", "subscription_items", "usage_records"] {
        assert!(states.contains_key(stream), "{stream}: {states:?}");
        assert_eq!(out.statuses(stream).last().unwrap(), "COMPLETE", "{stream}");
    }

    // Alone: its ancestors are read for it, not emitted.
    let catalog = files.catalog(&[("usage_records", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.unique_ids("usage_records"),
        emulator_ids(emu, &scope, "usage_records")
    );
    assert!(out.records("subscriptions").is_empty());
    assert!(out.records("subscription_items").is_empty());
    let states = out.stream_states();
    assert!(!states.contains_key("subscriptions"), "{states:?}");
    assert!(!states.contains_key("subscription_items"), "{states:?}");

    // With incremental subscriptions and items: the summaries get a read of their own,
    // in full; the first two read as incremental streams do, and the next sync reads
    // the summaries in full again and nothing of the others.
    let mixed = files.catalog(&[
        ("subscriptions", "incremental"),
        ("subscription_items", "incremental"),
        ("usage_records", "full_refresh"),
    ]);
    let first = read(&config, &mixed, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    for stream in ["subscriptions", "subscription_items", "usage_records"] {
        assert_eq!(
            first.unique_ids(stream),
            emulator_ids(emu, &scope, stream),
            "{stream}"
        );
    }
    let state = files.write("state.json", &first.state_file());
    let second = read(&config, &mixed, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.records("subscriptions").is_empty());
    assert!(second.records("subscription_items").is_empty());
    assert_eq!(
        second.unique_ids("usage_records"),
        emulator_ids(emu, &scope, "usage_records")
    );
}
