//! Parquet output (`read --output-dir`): the files hold exactly the protocol-mode records,
//! typed; incremental runs add versions that the latest-version query settles; a killed
//! run leaves nothing half-written; DuckDB and pyarrow read it all. Every test runs
//! twice: into a local folder, and into an S3 bucket on a local S3-compatible server
//! ([`crate::moto`]), whose objects are then copied down and checked the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value, json};
use source_stripe::emulator::{Advance, ChangeKind, DEFAULT_TEST_KEY, Faults, Scope};
use source_stripe::streams::STREAMS;

use crate::moto::Moto;
use crate::util::{
    Files, emulator_ids, every_stream, path, platform_test, read, run, start_emulator,
};

/// Where a test's Parquet output goes.
enum Out {
    Local(PathBuf),
    S3 {
        moto: Moto,
        bucket: String,
        prefix: String,
        url: String,
        /// Where the stored objects are copied to be checked.
        mirror: PathBuf,
    },
}

impl Out {
    /// `name` under the test's folder, or under a fresh bucket of a fresh moto.
    async fn new(s3: bool, files: &Files, name: &str) -> Out {
        if !s3 {
            return Out::Local(files.dir.path().join(name));
        }
        let moto = Moto::start().await;
        let bucket = "stripe-data".to_owned();
        moto.bucket(&bucket).await;
        let prefix = format!("team/{name}");
        Out::S3 {
            url: format!("s3://{bucket}/{prefix}"),
            moto,
            bucket,
            prefix,
            mirror: files.dir.path().join(name),
        }
    }

    /// The `--output-dir` argument.
    fn arg(&self) -> &str {
        match self {
            Out::Local(dir) => path(dir),
            Out::S3 { url, .. } => url,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Out::Local(_) => Vec::new(),
            Out::S3 { moto, .. } => moto.env(),
        }
    }

    /// A local folder holding exactly what is stored now.
    async fn local(&self) -> PathBuf {
        match self {
            Out::Local(dir) => dir.clone(),
            Out::S3 {
                moto,
                bucket,
                prefix,
                mirror,
                ..
            } => moto.mirror(bucket, prefix, mirror).await,
        }
    }

    /// The binary with this output's environment.
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(crate::util::BIN);
        command.envs(self.env());
        command
    }

    /// What DuckDB and pyarrow see: tests/clients/parquet_check.py on a local folder,
    /// s3_check.py (DuckDB's httpfs, pyarrow's S3 filesystem) on the bucket itself.
    async fn query_with_clients(&self) -> Value {
        match self {
            Out::Local(dir) => query_with_clients(dir).await,
            Out::S3 { moto, url, .. } => {
                let script = crate::util::client_script("s3_check.py");
                let output = tokio::process::Command::new(crate::util::client("moto", "python"))
                    .arg(script)
                    .arg(&moto.endpoint)
                    .arg(url)
                    .envs(moto.env())
                    .output()
                    .await
                    .unwrap();
                assert!(
                    output.status.success(),
                    "s3_check.py failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                serde_json::from_slice(&output.stdout).unwrap()
            }
        }
    }
}

/// One row of a Parquet file, turned back into the record it came from.
pub(crate) struct Row {
    pub(crate) record: Value,
    pub(crate) updated: Option<i64>,
    pub(crate) synced_at: i64,
    pub(crate) seq: i64,
}

/// Every `*.parquet` file under `dir`, and every other file readers would see (a name not
/// starting with `.`).
pub(crate) fn files_under(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut parquet, mut other) = (Vec::new(), Vec::new());
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                parquet.push(entry.path());
            } else if !name.starts_with('.') {
                other.push(entry.path());
            }
        }
    }
    parquet.sort();
    (parquet, other)
}

/// The rows of a stream's files, as records (the account from the folder name).
pub(crate) fn read_stream(dir: &Path, stream: &str) -> Vec<Row> {
    let folder = dir.join(stream);
    if !folder.exists() {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for file in files_under(&folder).0 {
        let account = file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("stripe_account="))
            .map(str::to_owned);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            for row in 0..batch.num_rows() {
                let mut record = Map::new();
                let mut extra = None;
                let (mut synced_at, mut seq) = (0, 0);
                for (field, column) in schema.fields().iter().zip(batch.columns()) {
                    match field.name().as_str() {
                        "_extra" => extra = value_of(field, column.as_ref(), row),
                        "_synced_at" => {
                            synced_at = column.as_primitive::<TimestampMillisecondType>().value(row)
                        }
                        "_seq" => seq = column.as_primitive::<Int64Type>().value(row),
                        name => {
                            if let Some(value) = value_of(field, column.as_ref(), row) {
                                record.insert(name.to_owned(), value);
                            }
                        }
                    }
                }
                let updated = record.get("updated").and_then(Value::as_i64);
                let mut record = Value::Object(record);
                if let Some(extra) = extra {
                    merge(&mut record, extra);
                }
                if let Some(account) = &account {
                    record["stripe_account"] = json!(account);
                }
                rows.push(Row {
                    record,
                    updated,
                    synced_at,
                    seq,
                });
            }
        }
    }
    rows
}

/// One cell as JSON (`None` for NULL): timestamps back to unix seconds, JSON-text columns
/// parsed.
fn value_of(field: &Field, array: &dyn Array, row: usize) -> Option<Value> {
    if array.is_null(row) {
        return None;
    }
    let encoding = field
        .metadata()
        .get("source_stripe.encoding")
        .map(String::as_str);
    Some(match field.data_type() {
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => json!(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => json!(array.as_boolean().value(row)),
        DataType::Utf8 => {
            let text = array.as_string::<i32>().value(row);
            match encoding {
                Some("json") => serde_json::from_str(text).unwrap(),
                Some("id_or_json") if text.starts_with('{') => serde_json::from_str(text).unwrap(),
                _ => json!(text),
            }
        }
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => {
            let ms = array.as_primitive::<TimestampMillisecondType>().value(row);
            assert_eq!(ms % 1000, 0, "{}: whole seconds", field.name());
            json!(ms / 1000)
        }
        DataType::Struct(fields) => {
            let array = array.as_struct();
            let mut object = Map::new();
            for (child_field, child) in fields.iter().zip(array.columns()) {
                if let Some(value) = value_of(child_field, child.as_ref(), row) {
                    object.insert(child_field.name().clone(), value);
                }
            }
            Value::Object(object)
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>().value(row);
            Value::Array(
                (0..list.len())
                    .map(|i| value_of(item, list.as_ref(), i).unwrap_or(Value::Null))
                    .collect(),
            )
        }
        other => panic!("{}: unexpected type {other}", field.name()),
    })
}

/// `_extra` merged into the typed columns: objects by key, arrays by position (`null`:
/// nothing extra).
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(extra)) => {
            for (slot, value) in base.iter_mut().zip(extra) {
                if !value.is_null() {
                    merge(slot, value);
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// A record with NULL fields left out (Parquet cannot tell missing from null) and numbers
/// in one form (a DOUBLE column holds `2` as `2.0`).
pub(crate) fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Number(n) if n.as_i64().is_none() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => json!(f as i64),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// The record's key: its account (with connected accounts) and id.
pub(crate) fn key(record: &Value) -> (String, String) {
    (
        record["stripe_account"].as_str().unwrap_or("").to_owned(),
        record["id"].as_str().unwrap().to_owned(),
    )
}

/// The latest version of every object, by the rule the README documents: greatest
/// `updated`, then latest run, then first in its run; deleted ones left out.
pub(crate) fn latest(rows: &[Row]) -> BTreeMap<(String, String), &Row> {
    let mut best: BTreeMap<(String, String), &Row> = BTreeMap::new();
    for row in rows {
        let order = |r: &Row| (r.updated.unwrap_or(i64::MIN), r.synced_at, -r.seq);
        let slot = best.entry(key(&row.record)).or_insert(row);
        if order(row) > order(slot) {
            *slot = row;
        }
    }
    best.retain(|_, row| row.record["is_deleted"] != true);
    best
}

/// What a run printed, unparsed (Parquet output prints a summary for people, not
/// protocol messages).
struct Plain {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run_plain(args: &[&str]) -> Plain {
    run_in(&Out::Local(PathBuf::new()), args).await
}

async fn run_in(out: &Out, args: &[&str]) -> Plain {
    let output = out.command().args(args).output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    crate::util::assert_no_secrets(&stdout);
    crate::util::assert_no_secrets(&stderr);
    Plain {
        code: output.status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// The analytics client's Python (duckdb, pyarrow), installed by tools/setup-clients.sh.
fn analytics_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients/analytics/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tools/setup-clients.sh (it installs duckdb and pyarrow from PyPI)",
        python.display()
    );
    python
}

/// tests/clients/parquet_check.py on the folder: what DuckDB and pyarrow see.
pub(crate) async fn query_with_clients(dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/parquet_check.py");
    let output = tokio::process::Command::new(analytics_python())
        .arg(script)
        .arg(dir.file_name().unwrap())
        .current_dir(dir.parent().unwrap())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "parquet_check.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The last saved `stream_state` of every stream in the folder's state.json.
pub(crate) fn saved_states(dir: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
    let messages: Vec<Value> = serde_json::from_str(&text).unwrap();
    messages
        .iter()
        .map(|m| {
            let stream = &m["state"]["stream"];
            (
                stream["stream_descriptor"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                stream["stream_state"].clone(),
            )
        })
        .collect()
}

/// The Parquet files of a sync hold the records the protocol mode emits for the same
/// sync, value for value, with one account and with connected accounts (one folder per
/// account); the saved state is the protocol's last STATE of every stream.
#[tokio::test(flavor = "multi_thread")]
async fn parquet_holds_the_protocol_records() {
    holds_the_protocol_records(false).await;
}

/// [`parquet_holds_the_protocol_records`] into an S3 bucket.
#[tokio::test(flavor = "multi_thread")]
async fn s3_holds_the_protocol_records() {
    holds_the_protocol_records(true).await;
}

async fn holds_the_protocol_records(s3: bool) {
    let emulator = start_emulator(60).await;
    for extra in [json!({}), json!({"connected_accounts": "all"})] {
        let files = Files::new();
        let config = files.config(&emulator, DEFAULT_TEST_KEY, extra.clone());
        let catalog = files.catalog(&every_stream("incremental"));
        let protocol = read(&config, &catalog, None).await;
        assert_eq!(protocol.code, 0, "{}", protocol.stderr);
        let target = Out::new(s3, &files, "out").await;
        // The raw streams (the commerce streams' decimals have their own test).
        let raw: Vec<&str> = STREAMS.iter().map(|s| s.name).collect();
        let raw = raw.join(",");
        let out = run_in(
            &target,
            &[
                "read",
                "--config",
                path(&config),
                "--output-dir",
                target.arg(),
                "--streams",
                &raw,
            ],
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("total"), "a summary: {}", out.stdout);
        let dir = target.local().await;
        for stream in STREAMS {
            let expected: BTreeMap<(String, String), Value> = protocol
                .records(stream.name)
                .into_iter()
                .map(|r| (key(r), normalize(r)))
                .collect();
            assert_eq!(
                expected.len(),
                protocol.records(stream.name).len(),
                "{extra} {}: one record per object",
                stream.name
            );
            let rows = read_stream(&dir, stream.name);
            let got: BTreeMap<(String, String), Value> = rows
                .iter()
                .map(|r| (key(&r.record), normalize(&r.record)))
                .collect();
            assert_eq!(
                got.len(),
                rows.len(),
                "{extra} {}: no duplicates",
                stream.name
            );
            // Connected accounts here use neither Issuing nor Connect: those streams are
            // empty, with a warning saying so.
            let not_used = protocol.logs().iter().any(|l| {
                l.starts_with(&format!("stream {} of account ", stream.name))
                    && l.contains("does not use")
            });
            assert!(
                !expected.is_empty() || not_used,
                "{extra} {}: has records",
                stream.name
            );
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{extra} {}: same ids",
                stream.name
            );
            for (k, record) in &expected {
                assert_eq!(&got[k], record, "{extra} {} {k:?}", stream.name);
            }
            if extra["connected_accounts"] == "all" {
                assert!(
                    rows.iter().all(|r| r.record["stripe_account"].is_string()),
                    "{}: every row has its account folder",
                    stream.name
                );
            }
        }
        let (parquet, other) = files_under(&dir);
        assert!(!parquet.is_empty());
        let other: Vec<String> = other
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            other,
            ["state.json", "views.sql"],
            "nothing else is visible"
        );
        let protocol_states: BTreeMap<String, Value> = protocol.stream_states();
        assert_eq!(
            saved_states(&dir),
            protocol_states,
            "{extra}: the state is saved"
        );
    }
}

/// Two runs into one folder with creates, updates and deletes between them: the second
/// run adds only the changes, and DuckDB's latest-version view (views.sql, the README's
/// query) has exactly the emulator's objects, each at its last change; DuckDB and pyarrow
/// see the documented types and every row; `compact` then keeps the views' rows.
#[tokio::test(flavor = "multi_thread")]
async fn duckdb_and_pyarrow_read_the_latest_versions_after_an_incremental_run() {
    latest_versions_after_an_incremental_run(false).await;
}

/// [`duckdb_and_pyarrow_read_the_latest_versions_after_an_incremental_run`] into an S3
/// bucket: DuckDB reads it through httpfs, pyarrow through its S3 filesystem.
#[tokio::test(flavor = "multi_thread")]
async fn s3_duckdb_and_pyarrow_read_the_latest_versions_after_an_incremental_run() {
    latest_versions_after_an_incremental_run(true).await;
}

async fn latest_versions_after_an_incremental_run(s3: bool) {
    let started = Instant::now();
    let emulator = start_emulator(120).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"slice_range": 60}));
    let target = Out::new(s3, &files, "stripe").await;
    let sync = || async {
        let out = run_in(
            &target,
            &[
                "read",
                "--config",
                path(&config),
                "--output-dir",
                target.arg(),
            ],
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    sync().await;
    let dir = target.local().await;
    let first: BTreeMap<&str, usize> = STREAMS
        .iter()
        .map(|s| (s.name, read_stream(&dir, s.name).len()))
        .collect();
    let report = emu.advance(&Advance {
        seconds: 3_600,
        creates: 5,
        updates: 12,
        deletes: 4,
        ..Advance::default()
    });
    sync().await;

    let dir = target.local().await;
    let seen = target.query_with_clients().await;
    for stream in STREAMS {
        let name = stream.name;
        let rows = read_stream(&dir, name);
        let view = &seen[name];
        assert_eq!(
            view["versions"],
            rows.len(),
            "{name}: DuckDB reads every row"
        );
        assert_eq!(
            view["pyarrow_rows"],
            rows.len(),
            "{name}: pyarrow reads every row"
        );
        let latest_ids: Vec<&str> = view["latest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&str> = latest_ids.iter().copied().collect();
        assert_eq!(unique.len(), latest_ids.len(), "{name}: one row per object");
        let expected: BTreeSet<String> = if stream.single {
            rows.iter().map(|r| key(&r.record).1).collect()
        } else {
            emulator_ids(emu, &scope, name)
        };
        assert_eq!(
            unique,
            expected.iter().map(String::as_str).collect(),
            "{name}: the latest-version view has the emulator's objects, deleted ones left out"
        );
        assert_eq!(
            unique,
            latest(&rows).keys().map(|k| k.1.as_str()).collect(),
            "{name}: the documented rule"
        );
        if !stream.single {
            assert!(
                rows.len() > first[name] || !report.changes.iter().any(|c| c.stream == name),
                "{name}: the second run added the changes"
            );
        }
        // Each changed object's latest version is its last change.
        let updated: BTreeMap<&str, i64> = view["latest"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Some((r[0].as_str().unwrap(), r[1].as_i64()?)))
            .collect();
        let deleted: BTreeSet<&str> = report
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Deleted)
            .map(|c| c.id.as_str())
            .collect();
        for change in report.changes.iter().filter(|c| {
            c.stream == name && !c.event_type.is_empty() && !deleted.contains(c.id.as_str())
        }) {
            let last = report
                .changes
                .iter()
                .filter(|c| c.stream == name && c.id == change.id && !c.event_type.is_empty())
                .map(|c| c.at)
                .max();
            if stream.cursor == Some(source_stripe::streams::Cursor::Updated) {
                assert_eq!(
                    updated.get(change.id.as_str()).copied(),
                    last,
                    "{name} {}",
                    change.id
                );
            }
        }
    }
    let types = &seen["charges"]["duckdb_types"];
    for (column, expected) in [
        ("id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("livemode", "BOOLEAN"),
        ("created", "TIMESTAMP WITH TIME ZONE"),
        ("updated", "TIMESTAMP WITH TIME ZONE"),
        ("is_deleted", "BOOLEAN"),
        ("metadata", "VARCHAR"),
        ("_extra", "VARCHAR"),
        ("_seq", "BIGINT"),
    ] {
        assert_eq!(types[column], expected, "DuckDB type of charges.{column}");
    }
    assert!(
        types["outcome"].as_str().unwrap().starts_with("STRUCT("),
        "{}",
        types["outcome"]
    );
    let types = &seen["charges"]["pyarrow_types"];
    assert_eq!(types["created"], "timestamp[ms, tz=UTC]");
    assert_eq!(types["amount"], "int64");
    assert!(
        types["refunds"].as_str().unwrap().contains("list<"),
        "{}",
        types["refunds"]
    );

    // `compact` (here, or in the bucket) merges the two runs' files: the views return the
    // same rows, now from one file per stream, and DuckDB sees the same latest versions.
    let views = |dir: &Path| -> BTreeMap<&str, BTreeMap<(String, String), Value>> {
        STREAMS
            .iter()
            .map(|s| {
                let rows = read_stream(dir, s.name);
                let latest = latest(&rows)
                    .into_iter()
                    .map(|(k, r)| (k, normalize(&r.record)))
                    .collect();
                (s.name, latest)
            })
            .collect()
    };
    let before = views(&dir);
    let out = run_in(&target, &["compact", "--output-dir", target.arg()]).await;
    assert_eq!(out.code, 0, "compact: {}", out.stderr);
    let dir = target.local().await;
    assert_eq!(views(&dir), before, "the views after compaction");
    for stream in STREAMS {
        let (parquet, _) = files_under(&dir.join(stream.name));
        assert!(parquet.len() <= 1, "{}: {parquet:?}", stream.name);
    }
    let compacted = target.query_with_clients().await;
    for stream in STREAMS {
        assert_eq!(
            compacted[stream.name]["latest"], seen[stream.name]["latest"],
            "{}: DuckDB's latest versions after compaction",
            stream.name
        );
    }
    eprintln!(
        "duckdb_and_pyarrow test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Kill a Parquet run after it closed a few files, run again: readers never see a partial
/// file, and the latest-version view has every object exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn killed_parquet_run_resumes_without_loss_or_duplicates() {
    killed_run_resumes(false).await;
}

/// [`killed_parquet_run_resumes_without_loss_or_duplicates`] into an S3 bucket.
#[tokio::test(flavor = "multi_thread")]
async fn s3_killed_run_resumes_without_loss_or_duplicates() {
    killed_run_resumes(true).await;
}

async fn killed_run_resumes(s3: bool) {
    let emulator = start_emulator(600).await;
    let emu = emulator.emulator();
    emu.set_faults(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    });
    let files = Files::new();
    let config = files.config(
        &emulator,
        DEFAULT_TEST_KEY,
        // At 8 requests/s the run lasts a few seconds, so it is still going when the first
        // files and `state.json` (written at most once a second) are there to be killed.
        json!({"slice_range": 20, "num_workers": 4, "call_rate_limit": 8}),
    );
    let target = Out::new(s3, &files, "stripe").await;
    let streams = ["customers", "charges", "balance_transactions"];
    let args = [
        "read",
        "--config",
        path(&config),
        "--output-dir",
        target.arg(),
        "--streams",
        "customers,charges,balance_transactions",
        "--rows-per-file",
        "40",
    ];
    let mut child = target
        .command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dir = target.local().await;
        let committed = dir.exists() && files_under(&dir).0.len() >= 6;
        if committed && dir.join("state.json").exists() {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no files after 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let dir = target.local().await;
    let killed_files = files_under(&dir).0;
    for file in &killed_files {
        ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
            .unwrap_or_else(|e| panic!("{} is a whole file: {e}", file.display()));
    }
    let killed_rows: usize = streams.iter().map(|s| read_stream(&dir, s).len()).sum();
    let complete: usize = streams
        .iter()
        .map(|s| emulator_ids(emu, &platform_test(), s).len())
        .sum();
    assert!(killed_rows < complete, "the run was killed mid-way");

    emu.set_faults(Faults::default());
    let out = run_in(&target, &args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dir = target.local().await;
    let seen = target.query_with_clients().await;
    for stream in streams {
        let latest: Vec<&str> = seen[stream]["latest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&str> = latest.iter().copied().collect();
        assert_eq!(unique.len(), latest.len(), "{stream}: no duplicates");
        let expected = emulator_ids(
            emu,
            &Scope {
                account: None,
                livemode: false,
            },
            stream,
        );
        assert_eq!(
            unique,
            expected.iter().map(String::as_str).collect(),
            "{stream}: nothing missing"
        );
    }
    let hidden: Vec<String> = walk_names(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        hidden.is_empty(),
        "the rerun removed the dead run's temporary files: {hidden:?}"
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Parquet-only flags are refused for Airbyte output, and `--state` for Parquet output.
#[tokio::test(flavor = "multi_thread")]
async fn output_flags_are_checked() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let state = files.write("state.json", "[]");
    let dir = files.dir.path().join("out");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--output-dir", path(&dir), "--state", path(&state)],
            "--state",
        ),
        (&["--format", "parquet"], "--output-dir"),
        (&["--format", "airbyte"], "--catalog"),
        (&["--output-dir", path(&dir), "--streams", "nope"], "`nope`"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["read", "--config", path(&config)];
        args.extend_from_slice(extra);
        let out = run_plain(&args).await;
        assert_ne!(out.code, 0, "{args:?}");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains(needle), "{args:?}: {said}");
    }
    // Airbyte output still reports a missing catalog as a protocol TRACE.
    let out = run(&["read", "--config", path(&config)]).await;
    assert_eq!(out.errors().len(), 1, "{}", out.stderr);
}
