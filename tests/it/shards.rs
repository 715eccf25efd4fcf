//! Shards (`read … --shard I/N`): N processes at once into one output folder read every
//! connected account exactly once between them, each keeping its own state; a second
//! round reads only changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use source_stripe::emulator::{self, Advance, DEFAULT_TEST_KEY, Emulator, Scope};
use source_stripe::shard::Shard;

use crate::parquet::{files_under, read_stream};
use crate::util::{BIN, Files, path};

const SHARDS: u32 = 4;
/// Connected accounts in the emulator: `SHARD_TEST_ACCOUNTS`, 200 by default (1,000, the
/// size of the benchmark, takes about 5 minutes of a debug build: run it by hand).
fn accounts_in_test() -> usize {
    std::env::var("SHARD_TEST_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}
/// Two streams: a file per stream and account, 2,000 a round, is what costs time here.
const STREAMS: &str = "customers,charges";

async fn round(config: &Path, dir: &Path) {
    let runs = (0..SHARDS).map(|index| async move {
        let shard = format!("{index}/{SHARDS}");
        let out = tokio::process::Command::new(BIN)
            .args([
                "read",
                "--config",
                path(config),
                "--output-dir",
                path(dir),
                "--streams",
                STREAMS,
                "--shard",
                &shard,
            ])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        crate::util::assert_no_secrets(&stderr);
        assert!(out.status.success(), "shard {shard}: {stderr}");
    });
    futures::future::join_all(runs).await;
}

/// The accounts in each shard's state file.
fn accounts_by_shard(dir: &Path) -> BTreeMap<u32, BTreeSet<String>> {
    (0..SHARDS)
        .map(|index| {
            let shard = Shard {
                index,
                count: SHARDS,
            };
            let text = std::fs::read_to_string(dir.join(shard.state_file())).unwrap();
            let messages: Vec<Value> = serde_json::from_str(&text).unwrap();
            let accounts = messages
                .iter()
                .flat_map(|m| {
                    m["state"]["stream"]["stream_state"]["accounts"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect();
            (index, accounts)
        })
        .collect()
}

fn test_scope(account: &str) -> Scope {
    Scope {
        account: Some(account.to_owned()),
        livemode: false,
    }
}

/// Rows by (stream, account, id): how many times each was written.
fn row_counts(dir: &Path) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for stream in STREAMS.split(',') {
        for row in read_stream(dir, stream) {
            let key = (
                stream.to_owned(),
                row.record["stripe_account"].as_str().unwrap().to_owned(),
                row.record["id"].as_str().unwrap().to_owned(),
            );
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn four_shards_read_every_account_exactly_once() {
    let running = Emulator::start(emulator::Config {
        size: 1,
        frozen_clock: true,
        connected_accounts: accounts_in_test(),
        ..emulator::Config::default()
    })
    .await
    .unwrap();
    let emu = running.emulator();
    let accounts = emu.connected_account_ids();
    assert_eq!(accounts.len(), accounts_in_test());
    let files = Files::new();
    let config = files.config(
        &running,
        DEFAULT_TEST_KEY,
        json!({"connected_accounts": "all"}),
    );
    let dir = files.dir.path().join("platform");
    round(&config, &dir).await;

    // Each account is in exactly one shard's state, the one its hash names.
    let by_shard = accounts_by_shard(&dir);
    let mut union = BTreeSet::new();
    for (index, owned) in &by_shard {
        assert!(!owned.is_empty(), "shard {index} has accounts");
        for account in owned {
            assert!(
                Shard {
                    index: *index,
                    count: SHARDS
                }
                .includes(account)
            );
            assert!(union.insert(account.clone()), "{account} in two shards");
        }
    }
    assert_eq!(union, accounts.iter().cloned().collect());

    // The union of the files is every account's data, each object exactly once.
    let counts = row_counts(&dir);
    assert!(counts.values().all(|&n| n == 1), "an object written twice");
    for stream in STREAMS.split(',') {
        for account in &accounts {
            let got: BTreeSet<String> = counts
                .keys()
                .filter(|(s, a, _)| s == stream && a == account)
                .map(|(_, _, id)| id.clone())
                .collect();
            let expected: BTreeSet<String> =
                emu.ids(&test_scope(account), stream).into_iter().collect();
            assert_eq!(got, expected, "{stream} of {account}");
        }
    }
    let (parquet, _) = files_under(&dir);
    assert!(
        parquet
            .iter()
            .all(|p| p.to_string_lossy().contains("/stripe_account=acct_")),
        "every file is in its account's partition"
    );

    // Second round: changes in two accounts; every shard reads only changes.
    let changed = [&accounts[0], &accounts[accounts.len() - 1]];
    let mut reports = Vec::new();
    for account in changed {
        reports.push(emu.advance(&Advance {
            seconds: 600,
            creates: 1,
            updates: 3,
            account: Some(account.clone()),
            ..Advance::default()
        }));
    }
    let log_start = emu.request_log().len();
    round(&config, &dir).await;
    let log = emu.request_log();
    let second: Vec<_> = log[log_start..].iter().collect();
    for request in &second {
        assert!(
            !["/v1/customers", "/v1/charges"].contains(&request.path.as_str()),
            "the second round lists {} (a full read) for {:?}",
            request.path,
            request.account
        );
    }
    let events: BTreeSet<&str> = second
        .iter()
        .filter(|r| r.path == "/v1/events")
        .filter_map(|r| r.account.as_deref())
        .collect();
    assert_eq!(
        events,
        accounts.iter().map(String::as_str).collect(),
        "each account's events read once per round, by its shard"
    );
    let after = row_counts(&dir);
    let added: usize = after.values().sum::<usize>() - counts.values().sum::<usize>();
    let changes: usize = reports
        .iter()
        .map(|r| {
            r.changes
                .iter()
                .filter(|c| STREAMS.split(',').any(|s| s == c.stream))
                .map(|c| (c.stream.clone(), c.id.clone()))
                .collect::<BTreeSet<_>>()
                .len()
        })
        .sum();
    assert!(
        added >= changes,
        "the second round added {added} rows for {changes} changed objects"
    );
    for (key, n) in &after {
        if !changed.iter().any(|a| **a == key.1) {
            assert_eq!(*n, 1, "{key:?}: an unchanged account got new rows");
        }
    }
}
