//! Kill anywhere: a sync SIGKILLed at 20 seeded random moments (a moment is "after the
//! emulator answered k more requests"), each time resumed from what was saved, in
//! Airbyte mode and in Parquet mode, for a first (full) sync and for an incremental one
//! after changes. The union of what the runs emitted (Airbyte) or wrote (Parquet) holds
//! every id, and after every kill no stream's saved state claims more than was emitted
//! or written before it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use source_stripe::emulator::{Advance, Emulator, Faults};

use crate::fault_matrix::{Mode, STREAMS, Sync, parquet_ids};
use crate::util::{all_ids, expected_changes, platform_test, start_emulator};

const KILLS: usize = 20;

/// A small seeded generator (splitmix64): the same moments on every run.
struct Moments(u64);

impl Moments {
    fn next(&mut self, lo: usize, hi: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (z as usize) % (hi - lo + 1)
    }
}

/// Runs the sync once, killing it (SIGKILL) once the emulator has answered `after`
/// more requests. Returns whether it was killed, and the messages it printed (Airbyte;
/// a line cut by the kill is dropped).
async fn run_until(sync: &Sync, emu: &Emulator, after: usize) -> (bool, Vec<Value>) {
    let start = emu.request_log().len();
    let mut child = tokio::process::Command::new(crate::util::BIN)
        .args(sync.args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut text = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut text)
            .await
            .unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "an unkilled run succeeds");
            break false;
        }
        if emu.request_log().len() >= start.saturating_add(after) {
            child.kill().await.unwrap();
            break true;
        }
        assert!(Instant::now() < deadline, "a run takes under 60 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let text = String::from_utf8_lossy(&reader.await.unwrap()).into_owned();
    crate::util::assert_no_secrets(&text);
    let messages = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (killed, messages)
}

fn created_of(emu: &Emulator, stream: &str, id: &str) -> i64 {
    emu.object(&platform_test(), stream, id)
        .and_then(|o| o["created"].as_i64())
        .unwrap_or(i64::MIN)
}

/// Every saved state claims no more than `seen`: `created`/`backfill_from_created` C
/// means every object created before C was emitted; a finished `updated` T means every
/// change (`changes`: id and time) before T was.
fn check_states(
    emu: &Emulator,
    states: &BTreeMap<String, Value>,
    seen: &BTreeMap<&'static str, BTreeSet<String>>,
    phase: &BTreeMap<&'static str, BTreeSet<String>>,
    changes: &[(String, String, i64)],
    what: &str,
) {
    for (stream, state) in states {
        let stream_seen = &seen[stream.as_str()];
        let phase_seen = &phase[stream.as_str()];
        let covered_below = state["backfill_from_created"]
            .as_i64()
            .or_else(|| state["created"].as_i64());
        if let Some(c) = covered_below {
            for id in emu.ids(&platform_test(), stream) {
                if created_of(emu, stream, &id) < c {
                    assert!(
                        stream_seen.contains(&id),
                        "{what}: {stream} state {state} claims {id}, never emitted"
                    );
                }
            }
        } else if what == "full" && state["updated"].is_i64() {
            // The first read finished: every object was emitted.
            for id in emu.ids(&platform_test(), stream) {
                assert!(
                    stream_seen.contains(&id),
                    "{what}: {stream} state {state} says the backfill is done, {id} never emitted"
                );
            }
        } else if let Some(t) = state["updated"].as_i64() {
            for (s, id, at) in changes {
                if s == stream && *at < t {
                    assert!(
                        phase_seen.contains(id),
                        "{what}: {stream} state {state} claims the change of {id} at {at}, never emitted"
                    );
                }
            }
        }
    }
}

fn states_of(messages: &[Value]) -> BTreeMap<String, Value> {
    messages
        .iter()
        .filter(|m| m["type"] == "STATE")
        .map(|m| {
            let s = &m["state"]["stream"];
            (
                s["stream_descriptor"]["name"].as_str().unwrap().to_owned(),
                s["stream_state"].clone(),
            )
        })
        .collect()
}

/// One sync killed up to [`KILLS`] times, then run to the end. Returns the ids it
/// emitted or wrote, and the number of kills.
async fn killed_sync(
    sync: &Sync,
    emu: &Emulator,
    moments: &mut Moments,
    seen: &mut BTreeMap<&'static str, BTreeSet<String>>,
    changes: &[(String, String, i64)],
    what: &str,
    max_moment: usize,
) -> (BTreeMap<&'static str, BTreeSet<String>>, usize) {
    let mut emitted: BTreeMap<&'static str, BTreeSet<String>> =
        STREAMS.map(|s| (s, BTreeSet::new())).into();
    for kills in 0..=KILLS {
        let after = if kills < KILLS {
            moments.next(1, max_moment)
        } else {
            usize::MAX
        };
        let (killed, messages) = run_until(sync, emu, after).await;
        let states = match sync.mode {
            Mode::Airbyte => {
                for m in messages.iter().filter(|m| m["type"] == "RECORD") {
                    let stream = m["record"]["stream"].as_str().unwrap();
                    if let Some(set) = emitted.get_mut(stream) {
                        set.insert(m["record"]["data"]["id"].as_str().unwrap().to_owned());
                    }
                }
                sync.save_airbyte_states(&messages);
                states_of(&messages)
            }
            Mode::Parquet => {
                for (s, ids) in parquet_ids(&sync.dir) {
                    emitted.entry(s).or_default().extend(ids);
                }
                if sync.dir.join("state.json").exists() {
                    crate::parquet::saved_states(&sync.dir)
                } else {
                    BTreeMap::new()
                }
            }
        };
        for (s, ids) in &emitted {
            seen.entry(s).or_default().extend(ids.iter().cloned());
        }
        check_states(emu, &states, seen, &emitted, changes, what);
        if !killed {
            return (emitted, kills);
        }
    }
    panic!("{what}: the last run was not allowed to finish");
}

async fn kill_anywhere(mode: Mode, seed: u64) {
    // Enough objects that a first sync is a few dozen requests long: the planner reads
    // 100 objects in a handful of pages.
    let running = start_emulator(2000).await;
    let emu = running.emulator();
    // A little latency so that a run is a few dozen requests long, not a burst.
    emu.set_faults(Faults {
        latency: Duration::from_millis(3),
        ..Faults::default()
    });
    let sync = Sync::new(&running, mode, json!({"slice_range": 20, "num_workers": 3}));
    let mut moments = Moments(seed);
    let mut seen = BTreeMap::new();
    let before = all_ids(emu, &platform_test());
    let (full, kills) = killed_sync(&sync, emu, &mut moments, &mut seen, &[], "full", 8).await;
    for stream in STREAMS {
        assert_eq!(
            full[stream], before[stream],
            "full, {mode:?}: every {stream} id"
        );
    }
    let report = emu.advance(&Advance {
        seconds: 3600,
        creates: 8,
        updates: 8,
        deletes: 2,
        ..Advance::default()
    });
    let changes: Vec<(String, String, i64)> = report
        .changes
        .iter()
        .filter(|c| !c.event_type.is_empty())
        .map(|c| (c.stream.clone(), c.id.clone(), c.at))
        .collect();
    let first_change = changes.iter().map(|c| c.2).min().unwrap_or(i64::MAX);
    let expected = expected_changes(emu, &platform_test(), &before, &report);
    let (incremental, kills_incremental) = killed_sync(
        &sync,
        emu,
        &mut moments,
        &mut seen,
        &changes,
        "incremental",
        // An incremental sync is a handful of requests: kill early in it.
        3,
    )
    .await;
    for stream in STREAMS {
        let got: BTreeSet<String> = match mode {
            // The folder holds the first sync too: only the new versions matter here.
            Mode::Parquet => crate::parquet::read_stream(&sync.dir, stream)
                .iter()
                .filter(|row| {
                    let id = row.record["id"].as_str().unwrap_or_default();
                    !before[stream].contains(id)
                        || row.record["updated"].as_i64().unwrap_or(0) >= first_change
                })
                .map(|row| row.record["id"].as_str().unwrap_or_default().to_owned())
                .collect(),
            Mode::Airbyte => incremental[stream].clone(),
        };
        assert!(
            expected[stream].is_subset(&got),
            "incremental, {mode:?}: {stream} misses {:?}",
            expected[stream].difference(&got).collect::<Vec<_>>()
        );
    }
    assert!(
        // An incremental run saves state as it goes, so it may complete before 20 kills.
        kills >= KILLS / 2 && kills_incremental >= 1,
        "{mode:?}: the syncs were killed ({kills}, {kills_incremental} times)"
    );
    eprintln!(
        "kills: {mode:?}: full sync killed {kills} times, incremental {kills_incremental} times: every id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn airbyte_sync_killed_anywhere_loses_nothing() {
    kill_anywhere(Mode::Airbyte, 15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_sync_killed_anywhere_loses_nothing() {
    kill_anywhere(Mode::Parquet, 16).await;
}
