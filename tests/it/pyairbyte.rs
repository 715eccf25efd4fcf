//! PyAirbyte (`airbyte` from PyPI, in target/clients/pyairbyte) runs our binary as a
//! local executable (`tests/clients/pyairbyte_read.py`): check, discover, read into
//! its default DuckDB cache, twice around a change in the emulator.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, DEFAULT_TEST_KEY};

use crate::util::{
    BIN, Files, OFFLINE_ENV, all_ids, assert_no_secrets, client, client_script, expected_changes,
    platform_test, start_emulator,
};

/// Runs the script in `dir` (where PyAirbyte keeps its cache) and returns its report.
async fn read(dir: &Path, config: &Path) -> Value {
    let result = dir.join("result.json");
    let output = tokio::process::Command::new(client("pyairbyte", "python"))
        .arg(client_script("pyairbyte_read.py"))
        .args([Path::new(BIN), config, result.as_path()])
        .current_dir(dir)
        .envs(OFFLINE_ENV)
        // Its log files stay in the test's folder.
        .env("AIRBYTE_TEMP_DIR", dir)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_no_secrets(&stdout);
    assert_no_secrets(&stderr);
    assert!(
        output.status.success(),
        "pyairbyte_read.py failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap()
}

/// The first read caches every emulator object; the second, from the state PyAirbyte
/// kept, reads only the changes.
#[tokio::test(flavor = "multi_thread")]
async fn pyairbyte_reads_into_duckdb_then_incrementally() {
    let emulator = start_emulator(60).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));

    let first = read(files.dir.path(), &config).await;
    let before = all_ids(emu, &scope);
    let mut total = 1; // the account
    for (stream, ids) in &before {
        let cached = &first["streams"][*stream];
        assert_eq!(cached["rows"], ids.len(), "{stream}: one row per object");
        assert_eq!(cached["distinct_ids"], ids.len(), "{stream}");
        total += ids.len();
    }
    assert_eq!(first["streams"]["account"]["rows"], 1);
    // The commerce streams go into the cache too, one row per record.
    for stream in source_stripe::commerce::STREAMS {
        let cached = &first["streams"][stream.name];
        let rows = cached["rows"].as_u64().unwrap() as usize;
        assert!(rows > 0, "{}: cached", stream.name);
        assert_eq!(cached["distinct_ids"], rows, "{}", stream.name);
        total += rows;
    }
    assert_eq!(first["processed_records"], total);

    let report = emu.advance(&Advance {
        seconds: 3_600,
        creates: 4,
        updates: 8,
        deletes: 3,
        ..Advance::default()
    });
    let expected = expected_changes(emu, &scope, &before, &report);
    let second = read(files.dir.path(), &config).await;
    for (stream, ids) in &expected {
        let read: BTreeSet<String> = second["streams"][*stream]["read_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            &read, ids,
            "{stream}: the second read is exactly the changes"
        );
    }
    let changed: usize = expected.values().map(BTreeSet::len).sum();
    let processed = second["processed_records"].as_u64().unwrap() as usize;
    assert!(
        processed > changed && processed < total,
        "the second read is incremental: {processed} records for {changed} changed objects"
    );
    let after = all_ids(emu, &scope);
    for (stream, ids) in &after {
        // Deleted objects stay in the cache, flagged `is_deleted`.
        let known: BTreeSet<&String> = ids
            .iter()
            .chain(&before[stream])
            .chain(&expected[stream])
            .collect();
        assert_eq!(
            second["streams"][*stream]["distinct_ids"],
            known.len(),
            "{stream}"
        );
    }
}
