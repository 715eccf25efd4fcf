//! A connected account's own events (issue 10): the changes of `accounts`, `persons` and
//! the external accounts come from each connected account's events list, read with its
//! `Stripe-Account` header, never from the platform's; children as children, deletes
//! flagged, new accounts with all their children, nothing twice.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, Change, ChangeKind, DEFAULT_TEST_KEY, LoggedRequest};

use crate::util::{Files, emulator_ids, platform_test, read, start_emulator};

const CONNECT: [&str; 4] = [
    "accounts",
    "persons",
    "external_account_bank_accounts",
    "external_account_cards",
];

/// The account's own event types: never asked of the platform's events.
fn owned_type(kind: &str) -> bool {
    kind == "account.updated"
        || kind.starts_with("person.")
        || kind.starts_with("account.external_account.")
}

/// The `types[]` of a logged events request.
fn types_of(request: &LoggedRequest) -> Vec<String> {
    request
        .query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| k.replace("%5B", "[").replace("%5D", "]") == "types[]")
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// Links a new connected account through the emulator's OAuth authorize page (which
/// approves at once), and returns its id.
async fn link_account(emulator: &source_stripe::emulator::Running) -> String {
    let before = emulator.emulator().connected_account_ids();
    let url = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&scope=read_only&state=s",
        emulator.base_url(),
        source_stripe::emulator::OAUTH_CLIENT_ID_TEST
    );
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert!(answer["code"].is_string(), "{answer}");
    let mut new: Vec<String> = emulator
        .emulator()
        .connected_account_ids()
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    assert_eq!(new.len(), 1, "one account linked");
    new.remove(0)
}

/// Incremental syncs of the four streams (and customers, read through the platform's
/// events pass) while the emulator updates connected accounts, creates, updates and
/// deletes their persons and external accounts of each type, and links a new account:
/// the second sync carries exactly those changes (an updated account's children again,
/// deletes flagged, the new account with all its children), the requests show one
/// events read per connected account under its header and no platform events request
/// asking for their types; a third sync reads nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_connected_accounts_changes_come_from_its_own_events() {
    let emulator = start_emulator(60).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let mut selected: Vec<(&str, &str)> = CONNECT.iter().map(|s| (*s, "incremental")).collect();
    selected.push(("customers", "incremental"));
    let catalog = files.catalog(&selected);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    for stream in CONNECT {
        let ids = first.unique_ids(stream);
        assert!(!ids.is_empty(), "{stream}");
        assert_eq!(
            ids,
            emulator_ids(emu, &scope, stream),
            "{stream}: nothing lost"
        );
    }

    let new_account = link_account(&emulator).await;
    let report = emu.advance(&Advance {
        seconds: 3_600,
        resources: 1,
        ..Advance::default()
    });
    let changes = |stream: &str| -> Vec<&Change> {
        report
            .changes
            .iter()
            .filter(|c| c.stream == stream && !c.event_type.is_empty())
            .collect()
    };
    for stream in &CONNECT[1..] {
        for kind in [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Deleted,
        ] {
            assert!(
                report
                    .changes
                    .iter()
                    .any(|c| c.stream == *stream && c.kind == kind),
                "{stream} {kind:?}"
            );
        }
    }
    let updated_accounts: BTreeSet<String> = changes("accounts")
        .into_iter()
        .map(|c| c.id.clone())
        .collect();
    assert!(!updated_accounts.is_empty(), "an account changed");
    // The accounts whose children come again: the updated ones and the new one.
    let mut reread = updated_accounts.clone();
    reread.insert(new_account.clone());

    let log_start = emu.request_log().len();
    let state = files.write("state1.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);

    let mut expected_accounts = updated_accounts.clone();
    expected_accounts.insert(new_account.clone());
    assert_eq!(
        second
            .record_ids("accounts")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected_accounts
    );
    for c in changes("accounts") {
        let record = second
            .records("accounts")
            .into_iter()
            .find(|r| r["id"] == c.id.as_str())
            .unwrap()
            .clone();
        assert_eq!(record["updated"], c.at, "the event's time");
        let mut record = record;
        record.as_object_mut().unwrap().remove("updated");
        assert_eq!(
            Some(record),
            emu.object(&scope, "accounts", &c.id),
            "the account as it is now"
        );
    }
    for stream in &CONNECT[1..] {
        let mut expected: BTreeSet<String> =
            changes(stream).into_iter().map(|c| c.id.clone()).collect();
        for account in &reread {
            expected.extend(emu.child_ids(&scope, stream, account).unwrap_or_default());
        }
        let new_children = emu.child_ids(&scope, stream, &new_account).unwrap();
        assert!(
            !new_children.is_empty(),
            "{stream}: the new account has some"
        );
        let records = second.records(stream);
        let got: BTreeSet<String> = second.record_ids(stream).into_iter().collect();
        assert_eq!(got, expected, "{stream}: exactly the changes");
        for record in &records {
            // Children as children: the child object, pointing at its account.
            let object = if *stream == "persons" {
                "person"
            } else if *stream == "external_account_cards" {
                "card"
            } else {
                "bank_account"
            };
            assert_eq!(record["object"], object, "{stream}: {record}");
            assert!(record["account"].is_string(), "{stream}: {record}");
            assert!(record["updated"].is_i64(), "{stream}: {record}");
        }
        for c in changes(stream) {
            let mine: Vec<&&Value> = records
                .iter()
                .filter(|r| r["id"] == c.id.as_str())
                .collect();
            match c.kind {
                ChangeKind::Deleted => assert!(
                    mine.iter()
                        .any(|r| r["is_deleted"] == true && r["updated"] == c.at),
                    "{stream} {} arrives flagged deleted",
                    c.id
                ),
                ChangeKind::Updated => {
                    let newest = mine.iter().max_by_key(|r| r["updated"].as_i64()).unwrap();
                    assert_eq!(
                        newest["metadata"]["emulator_change"],
                        c.at.to_string(),
                        "{stream} {}: its change",
                        c.id
                    );
                    assert!(newest.get("is_deleted").is_none());
                }
                ChangeKind::Created => assert!(!mine.is_empty()),
            }
        }
    }
    // Customers still come from the platform's events.
    let expected: BTreeSet<String> = changes("customers")
        .into_iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(
        second
            .record_ids("customers")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );

    // The requests: one events read per connected account, under its header, asking
    // only for the four streams' types; the platform's events never ask for them.
    let log = emu.request_log();
    let events: Vec<&LoggedRequest> = log[log_start..]
        .iter()
        .filter(|r| r.path == "/v1/events")
        .collect();
    let accounts = emu.connected_account_ids();
    assert!(accounts.contains(&new_account));
    for account in &accounts {
        let mine: Vec<&&LoggedRequest> = events
            .iter()
            .filter(|r| r.account.as_deref() == Some(account.as_str()))
            .collect();
        assert_eq!(mine.len(), 1, "{account}: one events call (one page)");
        let types = types_of(mine[0]);
        assert!(types.iter().all(|t| owned_type(t)), "{types:?}");
        for t in [
            "account.updated",
            "person.updated",
            "account.external_account.deleted",
        ] {
            assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
        }
        assert!(
            mine[0].query.contains("created%5Bgte%5D=") || mine[0].query.contains("created[gte]=")
        );
    }
    let platform: Vec<&&LoggedRequest> = events.iter().filter(|r| r.account.is_none()).collect();
    assert!(!platform.is_empty(), "customers' events pass");
    for request in &platform {
        let types = types_of(request);
        assert!(!types.is_empty());
        assert!(!types.iter().any(|t| owned_type(t)), "{types:?}");
    }
    assert_eq!(events.len(), accounts.len() + platform.len());
    assert_eq!(emu.write_request_count(), 0);

    // The cursors moved, and a third sync reads nothing.
    let states = second.stream_states();
    for stream in CONNECT {
        assert!(
            states[stream]["updated"].as_i64() > first.stream_states()[stream]["updated"].as_i64(),
            "{stream}: {:?}",
            states[stream]
        );
    }
    let state = files.write("state2.json", &second.state_file());
    let third = read(&config, &catalog, Some(&state)).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(
        third.of_type("RECORD").is_empty(),
        "nothing changed, nothing read"
    );
    assert_eq!(third.stream_states(), states, "the cursors stay");
}

/// A connected account whose events Stripe refuses (here a restricted key that may not
/// read events) fails the four streams loudly, a TRACE error naming every account,
/// their cursors stay where they were; the next sync that can read the events carries
/// the changes: nothing is skipped.
#[tokio::test(flavor = "multi_thread")]
async fn refused_account_events_fail_the_streams_and_keep_their_cursor() {
    use source_stripe::emulator::{self, ApiKey, Emulator};
    const NO_EVENTS: &str = "rk_test_emulator_no_events";
    let mut keys = emulator::default_keys();
    keys.push(ApiKey {
        key: NO_EVENTS.to_owned(),
        denied: vec!["events".to_owned()],
    });
    let emulator = Emulator::start(emulator::Config {
        size: 60,
        frozen_clock: true,
        keys,
        ..emulator::Config::default()
    })
    .await
    .unwrap();
    let emu = emulator.emulator();
    let files = Files::new();
    // (`Files::config` writes one file: each sync's config is written before it.)
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let selected: Vec<(&str, &str)> = CONNECT.iter().map(|s| (*s, "incremental")).collect();
    let catalog = files.catalog(&selected);
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report = emu.advance(&Advance {
        seconds: 3_600,
        resources: 1,
        ..Advance::default()
    });

    let state = files.write("state1.json", &first.state_file());
    let refused_config = files.config(&emulator, NO_EVENTS, json!({}));
    let second = read(&refused_config, &catalog, Some(&state)).await;
    assert_ne!(second.code, 0, "the refusal fails the sync");
    let errors: Vec<String> = second
        .errors()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    for stream in CONNECT {
        assert!(
            second.statuses(stream).contains(&"INCOMPLETE".to_owned()),
            "{stream}: {:?}",
            second.statuses(stream)
        );
        let error = errors
            .iter()
            .find(|e| e.contains(&format!("stream {stream} failed")))
            .unwrap_or_else(|| panic!("{stream}: {errors:?}"));
        for account in emu.connected_account_ids() {
            assert!(error.contains(&account), "{account} named: {error}");
        }
        assert!(error.contains("cursor stays"), "{error}");
        // No STATE moves the cursor past the unread events.
        let before = first.stream_states()[stream]["updated"].as_i64();
        if let Some(after) = second.stream_states().get(stream) {
            assert_eq!(after["updated"].as_i64(), before, "{stream}");
        }
    }
    assert!(!second.stderr.contains(NO_EVENTS), "no key in the logs");

    // Read again with a key that may, from the states the platform kept (the last of
    // each stream over both syncs): the changes arrive.
    let kept =
        crate::util::last_states(&[first.messages.clone(), second.messages.clone()].concat());
    let state = files.write("state2.json", &kept);
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let third = read(&config, &catalog, Some(&state)).await;
    assert_eq!(third.code, 0, "{:?}", third.errors());
    for stream in CONNECT {
        let got: BTreeSet<String> = third.record_ids(stream).into_iter().collect();
        for c in report
            .changes
            .iter()
            .filter(|c| c.stream == stream && !c.event_type.is_empty())
        {
            assert!(got.contains(&c.id), "{stream} {} arrives after all", c.id);
        }
    }
}
