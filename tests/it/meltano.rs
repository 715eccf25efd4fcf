//! Meltano (from PyPI, in target/clients/meltano) runs the example project in
//! examples/meltano/: `meltano run tap-stripe-rs target-jsonl` twice around a change in
//! the emulator, then `meltano state get`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, DEFAULT_TEST_KEY, Running};
use source_stripe::streams::STREAMS;

use crate::util::{
    OFFLINE_ENV, TAP, all_ids, assert_no_secrets, client, client_venv, expected_changes,
    platform_test, start_emulator,
};

const STATE_ID: &str = "dev:tap-stripe-rs-to-target-jsonl";

/// A copy of the example project in a temporary folder, so runs leave the repository
/// clean, with the environment Meltano needs to run offline against the emulator.
struct Project {
    dir: tempfile::TempDir,
    meltano: PathBuf,
    env: Vec<(String, String)>,
}

impl Project {
    fn new(emulator: &Running) -> Project {
        let meltano = client("meltano", "meltano");
        let target_jsonl = client_venv("target-jsonl");
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/meltano");
        std::fs::copy(example.join("meltano.yml"), dir.path().join("meltano.yml")).unwrap();
        // The loader's environment is the one tools/setup-clients.sh installed from the
        // same pip_url (`meltano install` would need PyPI during the test).
        let loaders = dir.path().join(".meltano/loaders/target-jsonl");
        std::fs::create_dir_all(&loaders).unwrap();
        std::os::unix::fs::symlink(&target_jsonl, loaders.join("venv")).unwrap();
        // `executable: tap-stripe` is looked up on PATH, as after `cargo install`.
        let tap_dir = Path::new(TAP).parent().unwrap();
        let path = format!(
            "{}:{}",
            tap_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env: Vec<(String, String)> = OFFLINE_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.extend([
            ("PATH".to_owned(), path),
            (
                "TAP_STRIPE_RS_CLIENT_SECRET".to_owned(),
                DEFAULT_TEST_KEY.to_owned(),
            ),
            ("TAP_STRIPE_RS_API_BASE".to_owned(), emulator.base_url()),
            (
                "TAP_STRIPE_RS_START_DATE".to_owned(),
                "2000-01-01T00:00:00Z".to_owned(),
            ),
            (
                "TAP_STRIPE_RS_CALL_RATE_LIMIT".to_owned(),
                "2000".to_owned(),
            ),
            // The emulator lists events at once: read up to its clock.
            ("TAP_STRIPE_RS_EVENT_SETTLE_SECS".to_owned(), "0".to_owned()),
        ]);
        Project { dir, meltano, env }
    }

    async fn meltano(&self, args: &[&str]) -> Output {
        let output = tokio::process::Command::new(&self.meltano)
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .expect("meltano runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_no_secrets(&stdout);
        assert_no_secrets(&stderr);
        assert!(
            output.status.success(),
            "meltano {args:?} failed:\n{stdout}\n{stderr}"
        );
        output
    }

    async fn run(&self) {
        // `--no-install`: the plugins are in place; an install would reach for PyPI.
        self.meltano(&["run", "--no-install", "tap-stripe-rs", "target-jsonl"])
            .await;
    }

    /// The ids target-jsonl wrote per stream, in order, lines included.
    fn output(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for stream in STREAMS {
            let file = self
                .dir
                .path()
                .join(format!("output/{}.jsonl", stream.name));
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let ids = text
                .lines()
                .map(|line| {
                    let record: Value = serde_json::from_str(line).unwrap();
                    record["id"].as_str().unwrap().to_owned()
                })
                .collect();
            out.insert(stream.name.to_owned(), ids);
        }
        out
    }
}

/// Two `meltano run`s: the first writes every emulator object, the second exactly the
/// changes made in between; Meltano keeps our state as the job's state.
#[tokio::test(flavor = "multi_thread")]
async fn meltano_runs_the_tap_incrementally() {
    let emulator = start_emulator(60).await;
    let emu = emulator.emulator();
    let scope = platform_test();
    let project = Project::new(&emulator);

    project.run().await;
    let first = project.output();
    let before = all_ids(emu, &scope);
    for (stream, ids) in &before {
        let got = &first[*stream];
        assert_eq!(got.len(), ids.len(), "{stream}: each object once");
        assert_eq!(
            &got.iter().cloned().collect::<BTreeSet<_>>(),
            ids,
            "{stream}: every emulator id"
        );
    }
    assert_eq!(first["account"].len(), 1);

    let report = emu.advance(&Advance {
        seconds: 3_600,
        creates: 4,
        updates: 8,
        deletes: 3,
        ..Advance::default()
    });
    let expected = expected_changes(emu, &scope, &before, &report);
    project.run().await;
    let second = project.output();
    for (stream, ids) in &expected {
        let added = &second[*stream][first[*stream].len()..];
        assert_eq!(
            &added.iter().cloned().collect::<BTreeSet<_>>(),
            ids,
            "{stream}: exactly the changes were added"
        );
    }
    assert_eq!(
        second["account"].len(),
        2,
        "account is full refresh: read again"
    );

    let state = project.meltano(&["state", "get", STATE_ID]).await;
    let state: Value = serde_json::from_slice(&state.stdout).expect("the state is JSON");
    let bookmarks = state["singer_state"]["bookmarks"]
        .as_object()
        .unwrap_or_else(|| panic!("our bookmarks in {state}"));
    for stream in STREAMS {
        let Some(cursor) = stream.cursor else {
            continue;
        };
        assert_eq!(
            bookmarks[stream.name],
            json!({ cursor.field(): emu.now() }),
            "{}",
            stream.name
        );
    }
}
