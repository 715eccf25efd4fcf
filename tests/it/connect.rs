use std::collections::BTreeSet;

use serde_json::{Value, json};
use source_stripe::emulator::{
    Advance, DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, OAUTH_CLIENT_ID_TEST, Scope,
};
use tokio::io::AsyncBufReadExt;

use crate::util::{Files, emulator_ids, path, read, start_emulator};

fn scope(account: &str) -> Scope {
    Scope {
        account: Some(account.to_owned()),
        livemode: false,
    }
}

/// Runs `source-stripe connect …` and returns (exit code, stdout lines as JSON, stderr).
async fn connect(args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = tokio::process::Command::new(crate::util::BIN)
        .arg("connect")
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    crate::util::assert_no_secrets(&stdout);
    crate::util::assert_no_secrets(&stderr);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output.status.code().unwrap_or(-1), lines, stderr)
}

/// Starts `connect listen` for the emulator's OAuth host; returns the child, the rest of
/// its stdout, and its first line (the authorize URL and state).
async fn listen(
    base_url: &str,
    config: &std::path::Path,
    extra: &[&str],
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    Value,
) {
    let mut child = tokio::process::Command::new(crate::util::BIN)
        .args(["connect", "listen", "--config", path(config)])
        .args([
            "--client-id",
            OAUTH_CLIENT_ID_TEST,
            "--oauth-base",
            base_url,
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    (child, lines, first)
}

/// An authorization code, as the emulator's authorize page hands it out when there is
/// no redirect URI.
async fn authorize_code(base: &str) -> String {
    let url = format!(
        "{base}/oauth/authorize?response_type=code&client_id={OAUTH_CLIENT_ID_TEST}&scope=read_only&state=s1"
    );
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    answer["code"].as_str().unwrap().to_owned()
}

/// Authorize URL → the emulator approves → redirect to the local helper → code
/// exchanged → the linked account printed, without its tokens.
#[tokio::test(flavor = "multi_thread")]
async fn oauth_round_trip_links_an_account() {
    let emulator = start_emulator(20).await;
    let before: BTreeSet<String> = emulator
        .emulator()
        .connected_account_ids()
        .into_iter()
        .collect();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let linked_file = files.dir.path().join("linked.jsonl");
    let (mut child, mut lines, first) = listen(
        &emulator.base_url(),
        &config,
        &["--append-to", path(&linked_file)],
    )
    .await;
    let url = first["authorize_url"].as_str().unwrap().to_owned();
    assert!(url.contains("scope=read_only"), "{url}");
    assert!(
        url.contains(&format!("state={}", first["state"].as_str().unwrap())),
        "{url}"
    );
    // The merchant's browser: the emulator approves and redirects to the helper.
    let page = reqwest::get(&url).await.unwrap();
    assert!(page.status().is_success());
    assert!(page.text().await.unwrap().contains("linked"));
    let second: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(child.wait().await.unwrap().success());
    let account = second["stripe_user_id"].as_str().unwrap().to_owned();
    assert!(!before.contains(&account), "a new account");
    assert!(
        emulator
            .emulator()
            .connected_account_ids()
            .contains(&account)
    );
    assert_eq!(second["scope"], "read_only");
    assert_eq!(second["livemode"], false);
    assert!(
        second.get("access_token").is_none(),
        "no token unless asked: {second}"
    );
    let appended = std::fs::read_to_string(&linked_file).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(appended.trim()).unwrap(),
        second
    );
}

/// A redirect whose state is not the one the helper made is refused.
#[tokio::test(flavor = "multi_thread")]
async fn oauth_wrong_state_is_refused() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let (child, _lines, first) = listen(&emulator.base_url(), &config, &[]).await;
    let url = url::Url::parse(first["authorize_url"].as_str().unwrap()).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let forged = format!("{redirect}?code=ac_forged&state=not-the-state");
    let page = reqwest::get(&forged).await.unwrap().text().await.unwrap();
    assert!(page.contains("not linked"), "{page}");
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("state"), "{stderr}");
}

/// A code can be exchanged once; the second time Stripe answers invalid_grant.
#[tokio::test(flavor = "multi_thread")]
async fn oauth_code_is_single_use() {
    let emulator = start_emulator(20).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let code = authorize_code(&emulator.base_url()).await;
    let args = [
        "exchange",
        "--config",
        path(&config),
        "--code",
        &code,
        "--oauth-base",
        &emulator.base_url(),
    ];
    let (status, lines, _) = connect(&args).await;
    assert_eq!(status, 0);
    assert!(
        lines[0]["stripe_user_id"]
            .as_str()
            .unwrap()
            .starts_with("acct_")
    );
    let (status, _, stderr) = connect(&args).await;
    assert_ne!(status, 0);
    assert!(stderr.contains("invalid_grant"), "{stderr}");
}

/// A deauthorized account cannot be read any more: a config_error naming it.
#[tokio::test(flavor = "multi_thread")]
async fn deauthorized_account_is_refused() {
    let emulator = start_emulator(20).await;
    let account = emulator.emulator().connected_account_ids()[0].clone();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let (status, lines, _) = connect(&[
        "deauthorize",
        "--config",
        path(&config),
        "--client-id",
        OAUTH_CLIENT_ID_TEST,
        "--account",
        &account,
        "--oauth-base",
        &emulator.base_url(),
    ])
    .await;
    assert_eq!(status, 0);
    assert_eq!(lines[0]["deauthorized"], account.as_str());
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"account_id": account}));
    let catalog = files.catalog(&[("charges", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0);
    let error = out.errors().last().cloned().cloned().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"].as_str().unwrap().contains(&account),
        "{error}"
    );
}

/// One sync of every connected account: per account exactly its ids, each record
/// tagged with its account, state per account. Then an account is added and another
/// changes: the new one is read in full, the changed one only its changes, the rest
/// nothing. The connector sent only GETs.
#[tokio::test(flavor = "multi_thread")]
async fn all_connected_accounts_full_then_incremental() {
    let emulator = start_emulator(40).await;
    let emu = emulator.emulator();
    let accounts = emu.connected_account_ids();
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"connected_accounts": "all"}),
    );
    let streams = ["account", "customers", "charges", "balance_transactions"];
    let catalog = files.catalog(&streams.map(|s| {
        (
            s,
            if s == "account" {
                "full_refresh"
            } else {
                "incremental"
            },
        )
    }));
    let first = read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    for account in &accounts {
        for stream in ["customers", "charges", "balance_transactions"] {
            let ids: BTreeSet<String> = first
                .records(stream)
                .iter()
                .filter(|r| r["stripe_account"] == account.as_str())
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                ids,
                emulator_ids(emu, &scope(account), stream),
                "{stream} of {account}"
            );
        }
        let profile = first.records("account");
        assert!(
            profile
                .iter()
                .any(|r| r["id"] == account.as_str() && r["stripe_account"] == account.as_str())
        );
        let state = &first.stream_states()["charges"]["accounts"][account];
        assert!(
            state["updated"].is_i64(),
            "charges state for {account}: {state}"
        );
    }
    assert_eq!(
        first.records("charges").len(),
        first.unique_ids("charges").len()
    );

    // A new merchant links; another one's data changes.
    let code = authorize_code(&emulator.base_url()).await;
    let (status, lines, _) = connect(&[
        "exchange",
        "--config",
        path(&config),
        "--code",
        &code,
        "--oauth-base",
        &emulator.base_url(),
    ])
    .await;
    assert_eq!(status, 0);
    let added = lines[0]["stripe_user_id"].as_str().unwrap().to_owned();
    let changed = accounts[1].clone();
    let report = emu.advance(&Advance {
        seconds: 600,
        creates: 2,
        updates: 3,
        account: Some(changed.clone()),
        ..Advance::default()
    });
    let state = files.write("state.json", &first.state_file());
    let second = read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    for stream in ["customers", "charges"] {
        let of = |account: &str| -> BTreeSet<String> {
            second
                .records(stream)
                .iter()
                .filter(|r| r["stripe_account"] == account)
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            of(&added),
            emulator_ids(emu, &scope(&added), stream),
            "{stream}: the new account is backfilled"
        );
        let expected: BTreeSet<String> = report
            .changes
            .iter()
            .filter(|c| c.stream == stream && !c.event_type.is_empty())
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(
            of(&changed),
            expected,
            "{stream}: only the changes of {changed}"
        );
        for account in accounts.iter().filter(|a| **a != changed) {
            assert!(
                of(account).is_empty(),
                "{stream}: nothing for unchanged {account}"
            );
        }
    }
    let states = second.stream_states();
    for account in accounts.iter().chain([&added]) {
        assert!(
            states["charges"]["accounts"][account]["updated"].is_i64(),
            "state for {account}"
        );
    }
    assert_eq!(emu.write_request_count(), 0, "the connector only reads");
    assert!(
        emu.request_log()
            .iter()
            .all(|r| r.method == "GET" || r.path.starts_with("/oauth/"))
    );
}

/// One account Stripe refuses (access revoked) fails loudly with its id; the others
/// complete and keep their state.
#[tokio::test(flavor = "multi_thread")]
async fn one_refused_account_leaves_the_others_complete() {
    let emulator = start_emulator(30).await;
    let emu = emulator.emulator();
    let accounts = emu.connected_account_ids();
    let revoked = "acct_1RevokedOrNeverLinked";
    let files = Files::new();
    let mut listed = accounts.clone();
    listed.insert(1, revoked.to_owned());
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        json!({"connected_accounts": listed}),
    );
    let catalog = files.catalog(&[("customers", "incremental"), ("charges", "incremental")]);
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0);
    let errors = out.errors();
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains(revoked)),
        "{errors:?}"
    );
    for account in &accounts {
        let ids: BTreeSet<String> = out
            .records("charges")
            .iter()
            .filter(|r| r["stripe_account"] == account.as_str())
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids,
            emulator_ids(emu, &scope(account), "charges"),
            "{account}"
        );
        assert!(out.stream_states()["charges"]["accounts"][account]["updated"].is_i64());
    }
    assert!(
        out.stream_states()["charges"]["accounts"]
            .get(revoked)
            .is_none()
    );
}

/// A live key where the config says test mode is refused before any request.
#[tokio::test(flavor = "multi_thread")]
async fn live_key_in_test_mode_is_refused_before_reading() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_LIVE_KEY, json!({"mode": "test"}));
    let catalog = files.catalog(&[("charges", "full_refresh")]);
    let out = read(&config, &catalog, None).await;
    assert_ne!(out.code, 0);
    let error = out.errors().last().cloned().cloned().unwrap();
    assert_eq!(error["failure_type"], "config_error");
    assert!(
        error["message"].as_str().unwrap().contains("mode"),
        "{error}"
    );
    assert!(
        emulator.emulator().request_log().is_empty(),
        "nothing was requested"
    );
}
