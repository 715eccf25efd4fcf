//! Per-stream state: what a sync saves so the next one (or a resumed one) reads only
//! what it has not seen, and loses nothing.
//!
//! Shapes (Airbyte per-stream state, `stream_state`):
//! - `{"created": T}` for streams that never change: every object created before `T`
//!   (unix seconds) has been read.
//! - `{"updated": T}` for streams that change: every change Stripe recorded as an event
//!   before `T` has been read.
//! - `{"updated": T, "backfill_from_created": C}` while the first full read of such a
//!   stream is under way: objects created before `C` are read, the rest of the read
//!   continues from `C`, and events from `T` on follow once it is done.
//!
//! - `created_done: [[gte, lt], …]` beside the cursor (or alone, for a full refresh under
//!   way): ranges of `created` above the cursor that are read completely. Windows finish
//!   out of order; a resumed sync reads only what is neither below the cursor nor in one
//!   of these ranges, so it repeats at most the windows that were in flight.
//! - `{"__ab_full_refresh_sync_complete": true}`: a full refresh finished (Airbyte's
//!   resumable full refresh marker); the next full refresh reads everything again.
//!
//! With `connected_accounts`, each stream's state holds one such state per account:
//! `{"accounts": {"acct_…": {"updated": T}, …}}`.
//!
//! A Singer STATE's value (`{"bookmarks": {"<stream>": <stream_state>, …}}`) holds the
//! same per-stream states, so either mode's state works for the other.
//!
//! States written by Airbyte's Stripe source 6.x carry over: cursor values may be integers
//! or numeric strings; `created` and `updated` are accepted for either kind of stream, and
//! a parent's cursor (`invoice_updated`, `subscription_updated`,
//! `checkout_session_updated`, …) when the stream has none of its own. Its concurrent
//! cursor's `{"state_type": "date-range", "slices": […]}` resumes from the end of the first
//! complete slice, and a per-partition state (`states`, `state`, `parent_state`, …) from
//! its global `state`, or else from the oldest partition's cursor: never later than what
//! was read. A cursor in the future (Airbyte's tests use `10000000000`) reads nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Value, json};

use crate::streams::Cursor;

/// A user-input error in the state file. Always a `config_error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the state file is not valid: {0}. Pass the last STATE messages of a previous sync, or no state for a full sync"
    )]
    Invalid(String),
    #[error(
        "the state of stream `{stream}` is not valid: {message}. Expected {{\"{cursor}\": <unix seconds>}}; remove the stream's state to read it in full"
    )]
    Stream {
        stream: String,
        cursor: &'static str,
        message: String,
    },
}

/// One stream's saved position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamState {
    /// The cursor (unix seconds): see the module docs.
    pub cursor: i64,
    /// A first full read of an event-driven stream is under way from this `created`.
    pub backfill_from_created: Option<i64>,
    /// `[gte, lt)` ranges of `created` above the read's low-water mark that are complete,
    /// sorted and disjoint.
    pub created_done: Vec<(i64, i64)>,
}

impl StreamState {
    pub fn to_json(&self, cursor: Cursor) -> Value {
        let mut value = json!({ cursor.field(): self.cursor });
        if let Some(from) = self.backfill_from_created {
            value["backfill_from_created"] = json!(from);
        }
        if !self.created_done.is_empty() {
            value["created_done"] = ranges_json(&self.created_done);
        }
        value
    }
}

/// `[[gte, lt], …]`.
pub fn ranges_json(ranges: &[(i64, i64)]) -> Value {
    Value::Array(ranges.iter().map(|(a, b)| json!([a, b])).collect())
}

/// The key of Airbyte's resumable full refresh marker: the full refresh is complete.
pub const FULL_REFRESH_COMPLETE: &str = "__ab_full_refresh_sync_complete";

/// The raw state of every stream the input names, by stream name.
#[derive(Debug, Clone, Default)]
pub struct InputState {
    streams: HashMap<String, Value>,
}

impl InputState {
    /// # Errors
    /// `Read` or `Invalid` naming what is wrong.
    pub fn from_file(path: &Path) -> Result<InputState, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        InputState::parse(&text)
    }

    /// Accepts a list of Airbyte STATE messages (per-stream, or the state objects
    /// alone), a Singer state (`{"bookmarks": {stream: state}}`), or the legacy
    /// `{stream: state}` object.
    ///
    /// # Errors
    /// `Invalid` naming what is wrong.
    pub fn parse(text: &str) -> Result<InputState, Error> {
        if text.trim().is_empty() {
            return Ok(InputState::default());
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Error::Invalid(format!("not JSON ({err})")))?;
        let mut streams = HashMap::new();
        match value {
            Value::Array(messages) => {
                for message in messages {
                    let state = if message["type"] == "STATE" {
                        &message["state"]
                    } else {
                        &message
                    };
                    match state["type"].as_str() {
                        Some("STREAM") => {
                            let name = state["stream"]["stream_descriptor"]["name"]
                                .as_str()
                                .ok_or_else(|| {
                                    Error::Invalid(
                                        "a STREAM state has no stream.stream_descriptor.name"
                                            .to_owned(),
                                    )
                                })?;
                            let stream_state = state["stream"]
                                .get("stream_state")
                                .cloned()
                                .unwrap_or(Value::Null);
                            streams.insert(name.to_owned(), stream_state);
                        }
                        Some("LEGACY") | None if state["data"].is_object() => {
                            legacy(&state["data"], &mut streams)?;
                        }
                        other => {
                            return Err(Error::Invalid(format!(
                                "state type {} is not supported; this connector writes per-stream (STREAM) state",
                                other.unwrap_or("(missing)")
                            )));
                        }
                    }
                }
            }
            Value::Object(ref object) if object.contains_key("bookmarks") => {
                if let Some(key) = object
                    .keys()
                    .find(|k| !matches!(k.as_str(), "bookmarks" | "currently_syncing"))
                {
                    return Err(Error::Invalid(format!(
                        "a Singer state has `bookmarks` and no other key, but this one has `{key}`"
                    )));
                }
                legacy(&value["bookmarks"], &mut streams)?;
            }
            Value::Object(_) => legacy(&value, &mut streams)?,
            _ => {
                return Err(Error::Invalid(
                    "expected a list of STATE messages or an object".to_owned(),
                ));
            }
        }
        Ok(InputState { streams })
    }

    /// Every stream's raw state, as given.
    pub fn streams(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.streams
            .iter()
            .map(|(name, state)| (name.as_str(), state))
    }

    /// The state of one stream of a single-account sync, if the input has one.
    ///
    /// # Errors
    /// `Stream` naming the stream and what is wrong with its state.
    pub fn stream(&self, name: &str, cursor: Cursor) -> Result<Option<StreamState>, Error> {
        let Some(value) = self.streams.get(name) else {
            return Ok(None);
        };
        if value.get("accounts").is_some() {
            return Err(stream_error(
                name,
                cursor,
                "it is kept per connected account (written by a sync with connected_accounts), but this config reads one account".to_owned(),
            ));
        }
        parse_stream_state(name, cursor, value)
    }

    /// The ranges of `created` a full refresh under way has read, for one account (`None`)
    /// or one connected account. Empty when there is no such state, or when the last full
    /// refresh completed: then everything is read again.
    ///
    /// # Errors
    /// `Stream` naming the stream when its `created_done` is malformed.
    pub fn full_refresh(
        &self,
        name: &str,
        account: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, Error> {
        let value = match (self.streams.get(name), account) {
            (None, _) => return Ok(Vec::new()),
            (Some(value), None) => value,
            (Some(value), Some(account)) => {
                match value.get("accounts").and_then(|a| a.get(account)) {
                    Some(value) => value,
                    None => return Ok(Vec::new()),
                }
            }
        };
        if value.get(FULL_REFRESH_COMPLETE).and_then(Value::as_bool) == Some(true) {
            return Ok(Vec::new());
        }
        match value.get("created_done") {
            None => Ok(Vec::new()),
            Some(ranges) => {
                parse_ranges(ranges).map_err(|message| stream_error(name, Cursor::Created, message))
            }
        }
    }

    /// The per-account states of one stream of a multi-account sync.
    ///
    /// # Errors
    /// `Stream` naming the stream (and account) and what is wrong with its state.
    pub fn stream_accounts(
        &self,
        name: &str,
        cursor: Cursor,
    ) -> Result<BTreeMap<String, StreamState>, Error> {
        let mut out = BTreeMap::new();
        let Some(value) = self.streams.get(name) else {
            return Ok(out);
        };
        let accounts = match value.get("accounts") {
            Some(Value::Object(accounts)) => accounts,
            Some(other) => {
                return Err(stream_error(
                    name,
                    cursor,
                    format!("`accounts` is {other}, not an object"),
                ));
            }
            None if value.is_null() || value.as_object().is_some_and(|o| o.is_empty()) => {
                return Ok(out);
            }
            None => {
                return Err(stream_error(
                    name,
                    cursor,
                    "it is for one account, but this config reads connected_accounts (state per account: {\"accounts\": {\"acct_…\": …}})".to_owned(),
                ));
            }
        };
        for (account, state) in accounts {
            if let Some(state) =
                parse_stream_state(&format!("{name}` of account `{account}"), cursor, state)?
            {
                out.insert(account.clone(), state);
            }
        }
        Ok(out)
    }
}

fn stream_error(stream: &str, cursor: Cursor, message: String) -> Error {
    Error::Stream {
        stream: stream.to_owned(),
        cursor: cursor.field(),
        message,
    }
}

/// One cursor state (`{"updated": T}` and the like).
fn parse_stream_state(
    name: &str,
    cursor: Cursor,
    value: &Value,
) -> Result<Option<StreamState>, Error> {
    let fail = |message: String| stream_error(name, cursor, message);
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        other => return Err(fail(format!("{other} is not an object"))),
    };
    // Airbyte's per-partition state: the global `state` when it has one, else the oldest
    // partition's cursor, so nothing after it is skipped.
    if object.contains_key("states") || object.contains_key("parent_state") {
        if let Some(global) = object.get("state")
            && let Some(state) = parse_stream_state(name, cursor, global)?
        {
            return Ok(Some(state));
        }
        let mut oldest: Option<StreamState> = None;
        if let Some(Value::Array(partitions)) = object.get("states") {
            for partition in partitions {
                if let Some(state) = parse_stream_state(name, cursor, &partition["cursor"])?
                    && oldest.as_ref().is_none_or(|o| state.cursor < o.cursor)
                {
                    oldest = Some(state);
                }
            }
        }
        return Ok(oldest);
    }
    // Airbyte's concurrent cursor: the end of the first complete slice.
    if object.get("state_type").and_then(Value::as_str) == Some("date-range") {
        let mut slices: Vec<(i64, i64)> = Vec::new();
        for slice in object
            .get("slices")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let bound = |key: &str| {
                timestamp(&slice[key]).ok_or_else(|| {
                    fail(format!(
                        "a slice's `{key}` is {}, not unix seconds",
                        slice[key]
                    ))
                })
            };
            slices.push((bound("start")?, bound("end")?));
        }
        slices.sort_unstable();
        let Some(&(_, mut end)) = slices.first() else {
            return match object.get("legacy") {
                Some(legacy) => parse_stream_state(name, cursor, legacy),
                None => Ok(None),
            };
        };
        for &(start, next_end) in &slices[1..] {
            if start > end + 1 {
                break;
            }
            end = end.max(next_end);
        }
        return Ok(Some(StreamState {
            cursor: end,
            ..StreamState::default()
        }));
    }
    let mut own = None;
    let mut other = None;
    let mut parent = None;
    let mut backfill_from_created = None;
    let mut created_done = Vec::new();
    for (key, value) in object {
        let seconds = || {
            timestamp(value).ok_or_else(|| fail(format!("`{key}` is {value}, not unix seconds")))
        };
        match key.as_str() {
            // The stream's own cursor field wins over the other one.
            k if k == cursor.field() => own = Some(seconds()?),
            "created" | "updated" => other = Some(seconds()?),
            "backfill_from_created" => backfill_from_created = Some(seconds()?),
            "created_done" => created_done = parse_ranges(value).map_err(fail)?,
            // A parent's cursor, as Airbyte's child streams keep it (`invoice_updated`).
            k if k.ends_with("_updated") || k.ends_with("_created") => {
                let parsed = seconds()?;
                parent = Some(parent.map_or(parsed, |p: i64| p.min(parsed)));
            }
            // Airbyte's CDK adds its own markers; they carry no position.
            key if key.starts_with("__ab_") => {}
            // Per-partition bookkeeping of Airbyte's CDK, without a position of its own.
            "lookback_window" | "use_global_cursor" | "legacy" => {}
            other => return Err(fail(format!("unknown key `{other}`"))),
        }
    }
    match own.or(other).or(parent) {
        None if backfill_from_created.is_some() => {
            Err(fail("`backfill_from_created` without a cursor".to_owned()))
        }
        None => Ok(None),
        Some(cursor) => Ok(Some(StreamState {
            cursor,
            backfill_from_created,
            created_done,
        })),
    }
}

/// `[[gte, lt], …]`, sorted and merged.
fn parse_ranges(value: &Value) -> Result<Vec<(i64, i64)>, String> {
    let bad = || format!("`created_done` is {value}, not a list of [gte, lt] unix-second pairs");
    let mut ranges = Vec::new();
    for pair in value.as_array().ok_or_else(bad)? {
        match pair.as_array().map(Vec::as_slice) {
            Some([a, b]) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) if a < b => ranges.push((a, b)),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        }
    }
    Ok(super::checkpoint::merge(ranges))
}

fn legacy(data: &Value, streams: &mut HashMap<String, Value>) -> Result<(), Error> {
    let Some(object) = data.as_object() else {
        return Err(Error::Invalid(
            "legacy state data is not an object".to_owned(),
        ));
    };
    for (name, state) in object {
        streams.insert(name.clone(), state.clone());
    }
    Ok(())
}

/// Unix seconds from an integer or a numeric string; plausible values only: after
/// 2000-01-01 and below 10^11 (so milliseconds are refused, while a cursor far in the
/// future, as Airbyte's tests write, `10000000000`, is taken and reads nothing).
fn timestamp(value: &Value) -> Option<i64> {
    let seconds = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64)?,
        _ => return None,
    };
    (946_684_800..100_000_000_000)
        .contains(&seconds)
        .then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_per_stream_messages_and_legacy_objects() {
        let messages = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"customers"},"stream_state":{"updated":"1700000000"}}},
            {"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"created":1700000001}}}}]"#;
        let state = InputState::parse(messages).unwrap();
        assert_eq!(
            state.stream("customers", Cursor::Updated).unwrap(),
            Some(StreamState {
                cursor: 1_700_000_000,
                ..StreamState::default()
            })
        );
        assert_eq!(
            state
                .stream("events", Cursor::Created)
                .unwrap()
                .unwrap()
                .cursor,
            1_700_000_001
        );
        assert_eq!(state.stream("charges", Cursor::Updated).unwrap(), None);

        let legacy = InputState::parse(
            r#"{"charges": {"created": 1600000000, "__ab_no_cursor_state_message": true}}"#,
        )
        .unwrap();
        assert_eq!(
            legacy
                .stream("charges", Cursor::Updated)
                .unwrap()
                .unwrap()
                .cursor,
            1_600_000_000
        );
        assert!(InputState::parse("").unwrap().streams.is_empty());
        assert!(InputState::parse("[]").unwrap().streams.is_empty());
    }

    #[test]
    fn reads_a_singer_state() {
        let text = r#"{"bookmarks": {"customers": {"updated": 1700000000}, "events": {"created": "1700000001"}}}"#;
        let state = InputState::parse(text).unwrap();
        assert_eq!(
            state
                .stream("customers", Cursor::Updated)
                .unwrap()
                .unwrap()
                .cursor,
            1_700_000_000
        );
        assert_eq!(state.streams().count(), 2);
        let err = InputState::parse(r#"{"bookmarks": {}, "version": 2}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`version`"), "{err}");
        let err = InputState::parse(r#"{"bookmarks": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an object"), "{err}");
    }

    #[test]
    fn round_trips_a_backfill_state() {
        let state = StreamState {
            cursor: 1_700_000_000,
            backfill_from_created: Some(1_600_000_000),
            created_done: vec![(1_650_000_000, 1_660_000_000)],
        };
        let json = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "prices"}, "stream_state": state.to_json(Cursor::Updated)}}]);
        let parsed = InputState::parse(&json.to_string()).unwrap();
        assert_eq!(
            parsed.stream("prices", Cursor::Updated).unwrap(),
            Some(state)
        );
    }

    #[test]
    fn multi_account_states_are_kept_per_account() {
        let text = r#"{"charges": {"accounts": {"acct_1": {"updated": 1700000000}, "acct_2": {"updated": "1700000500"}}}}"#;
        let state = InputState::parse(text).unwrap();
        let accounts = state.stream_accounts("charges", Cursor::Updated).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts["acct_2"].cursor, 1_700_000_500);
        let err = state
            .stream("charges", Cursor::Updated)
            .unwrap_err()
            .to_string();
        assert!(err.contains("per connected account"), "{err}");
        let single = InputState::parse(r#"{"charges": {"updated": 1700000000}}"#).unwrap();
        let err = single
            .stream_accounts("charges", Cursor::Updated)
            .unwrap_err()
            .to_string();
        assert!(err.contains("one account"), "{err}");
        let bad = InputState::parse(r#"{"charges": {"accounts": {"acct_1": {"updated": "x"}}}}"#)
            .unwrap();
        let err = bad
            .stream_accounts("charges", Cursor::Updated)
            .unwrap_err()
            .to_string();
        assert!(err.contains("acct_1"), "{err}");
    }

    /// Airbyte's own abnormal state: a cursor far in the future is a valid cursor.
    #[test]
    fn a_cursor_far_in_the_future_is_taken() {
        let state = InputState::parse(
            r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"updated":10000000000}}}]"#,
        )
        .unwrap();
        assert_eq!(
            state
                .stream("charges", Cursor::Updated)
                .unwrap()
                .unwrap()
                .cursor,
            10_000_000_000
        );
        // Milliseconds are still refused.
        let ms = InputState::parse(r#"{"charges": {"updated": 1700000000000}}"#).unwrap();
        assert!(ms.stream("charges", Cursor::Updated).is_err());
    }

    /// The state shapes Airbyte's Stripe source 6.x writes resume without loss: never
    /// from a point later than what it had read.
    #[test]
    fn states_of_airbytes_stripe_source_6_carry_over() {
        let cases = [
            // Plain cursors, as strings or numbers.
            (
                r#"{"updated": "1700000000"}"#,
                Cursor::Updated,
                Some(1_700_000_000),
            ),
            (
                r#"{"created": 1700000000}"#,
                Cursor::Created,
                Some(1_700_000_000),
            ),
            // A child stream's parent cursor.
            (
                r#"{"invoice_updated": 1700000000}"#,
                Cursor::Updated,
                Some(1_700_000_000),
            ),
            (
                r#"{"subscription_updated": "1700000001"}"#,
                Cursor::Updated,
                Some(1_700_000_001),
            ),
            (
                r#"{"checkout_session_updated": 1700000002}"#,
                Cursor::Updated,
                Some(1_700_000_002),
            ),
            // The concurrent cursor: the end of the first complete run of slices.
            (
                r#"{"state_type": "date-range", "slices": [{"start": 1600000000, "end": 1650000000}, {"start": 1650000001, "end": 1690000000}, {"start": 1695000000, "end": 1700000000}]}"#,
                Cursor::Updated,
                Some(1_690_000_000),
            ),
            (
                r#"{"state_type": "date-range", "slices": [], "legacy": {"updated": 1600000000}}"#,
                Cursor::Updated,
                Some(1_600_000_000),
            ),
            // Per-partition state: the global cursor, or the oldest partition's.
            (
                r#"{"states": [{"partition": {"parent_slice": {}, "customer_id": "cus_1"}, "cursor": {"created": "1700000000"}}], "state": {"created": "1690000000"}, "use_global_cursor": false, "lookback_window": 0, "parent_state": {"customers": {"updated": 1700000000}}}"#,
                Cursor::Created,
                Some(1_690_000_000),
            ),
            (
                r#"{"states": [{"partition": {"id": "a"}, "cursor": {"created": 1700000000}}, {"partition": {"id": "b"}, "cursor": {"created": 1650000000}}], "parent_state": {}}"#,
                Cursor::Created,
                Some(1_650_000_000),
            ),
            (
                r#"{"parent_state": {"invoices": {"updated": 1700000000}}}"#,
                Cursor::Updated,
                None,
            ),
            // Resumable full refresh markers carry no cursor.
            (
                r#"{"__ab_full_refresh_sync_complete": true}"#,
                Cursor::Updated,
                None,
            ),
        ];
        for (text, cursor, expected) in cases {
            let state = InputState::parse(&format!(r#"{{"s": {text}}}"#)).unwrap();
            let got = state
                .stream("s", cursor)
                .unwrap_or_else(|err| panic!("{text}: {err}"))
                .map(|s| s.cursor);
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn full_refresh_progress_reads_back() {
        let state = InputState::parse(
            r#"{"charges": {"created_done": [[10, 20], [0, 10], [30, 40]]}, "refunds": {"__ab_full_refresh_sync_complete": true},
                "prices": {"accounts": {"acct_1": {"created_done": [[5, 6]]}}}, "bad": {"created_done": [[3, 1]]}}"#,
        )
        .unwrap();
        assert_eq!(
            state.full_refresh("charges", None).unwrap(),
            vec![(0, 20), (30, 40)]
        );
        assert!(state.full_refresh("refunds", None).unwrap().is_empty());
        assert!(state.full_refresh("missing", None).unwrap().is_empty());
        assert_eq!(
            state.full_refresh("prices", Some("acct_1")).unwrap(),
            vec![(5, 6)]
        );
        let err = state.full_refresh("bad", None).unwrap_err().to_string();
        assert!(err.contains("created_done"), "{err}");
    }

    #[test]
    fn malformed_states_are_errors_that_name_the_problem() {
        let cases = [
            ("{not json", "not JSON"),
            ("42", "expected a list"),
            (r#"[{"type":"GLOBAL","global":{}}]"#, "GLOBAL"),
            (r#"{"customers": {"updated": "yesterday"}}"#, "`updated`"),
            (r#"{"customers": {"updated": 5}}"#, "`updated`"),
            (
                r#"{"customers": {"cursor": 1700000000}}"#,
                "unknown key `cursor`",
            ),
            (r#"{"customers": [1]}"#, "not an object"),
        ];
        for (text, needle) in cases {
            let err = InputState::parse(text)
                .and_then(|s| s.stream("customers", Cursor::Updated).map(|_| ()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text} → {err}");
        }
    }
}
