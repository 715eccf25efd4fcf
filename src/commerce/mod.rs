//! The commerce view: six derived streams in the shape lenders and accounting platforms
//! use for every commerce platform (Codat's Commerce model: Company info, Customers,
//! Disputes, Payments, Products, Transactions), built from the same Stripe pages and events
//! as the raw streams.
//!
//! - [`STREAMS`]: the commerce streams' rows (name, cursor, schema) and [`SOURCES`], the raw
//!   streams each is built from.
//! - [`expand`]: before a read, replaces the selected commerce streams by their raw sources
//!   (read but not emitted when they are not selected themselves) and translates the saved
//!   state; a raw stream is read once whoever needs it.
//! - [`derive::DeriveSink`]: at the sink, turns every raw record into its commerce records by
//!   the rules of [`map`] (amounts exact by [`amount`]), and raw states and stream statuses
//!   into the commerce streams' own.
//!
//! It never calls Stripe: what it needs comes from the raw streams' pages and events.

pub mod amount;
pub mod derive;
pub mod map;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::streams::catalog::{Selected, SyncMode};
use crate::streams::{Cursor, EventsIn, StreamDef};
use crate::sync::state::{self, InputState, StreamState};

pub use derive::{Derive, DeriveSink};

macro_rules! derived {
    ($name:literal, $cursor:expr) => {
        StreamDef {
            name: $name,
            path: "",
            object: "",
            cursor: $cursor,
            event_types: &[],
            events_in: EventsIn::Account,
            query: &[],
            single: false,
            schema: include_str!(concat!("../../schemas/", $name, ".json")),
            created_filter: false,
            stripe_version: None,
            child: None,
        }
    };
}

/// The commerce streams. They have no endpoint (`path` is empty): [`SOURCES`] says what
/// they are read from.
pub const STREAMS: &[StreamDef] = &[
    derived!("commerce_company_info", None),
    derived!("commerce_customers", Some(Cursor::Updated)),
    derived!("commerce_disputes", Some(Cursor::Updated)),
    derived!("commerce_payments", Some(Cursor::Updated)),
    derived!("commerce_products", Some(Cursor::Updated)),
    derived!("commerce_transactions", Some(Cursor::Created)),
];

/// The raw streams each commerce stream is built from.
pub const SOURCES: &[(&str, &[&str])] = &[
    ("commerce_company_info", &["account", BALANCE.name]),
    ("commerce_customers", &["customers"]),
    ("commerce_disputes", &["disputes"]),
    ("commerce_payments", &["charges"]),
    ("commerce_products", &["products", "prices"]),
    ("commerce_transactions", &["balance_transactions"]),
];

/// The account's balance (`/v1/balance`): a source of company info only, never emitted
/// itself (Stripe's balance has no id and is not one of Airbyte's streams).
pub const BALANCE: StreamDef = StreamDef {
    name: "balance",
    path: "/v1/balance",
    object: "balance",
    cursor: None,
    event_types: &[],
    events_in: EventsIn::Account,
    query: &[],
    single: true,
    schema: "{}",
    created_filter: false,
    stripe_version: None,
    child: None,
};

/// Whether a stream is one of the commerce streams.
pub fn is_commerce(name: &str) -> bool {
    STREAMS.iter().any(|s| s.name == name)
}

/// The raw sources of a commerce stream.
pub fn sources_of(name: &str) -> &'static [&'static str] {
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, sources)| sources)
}

fn source_def(name: &str) -> Option<&'static StreamDef> {
    if name == BALANCE.name {
        return Some(&BALANCE);
    }
    crate::streams::STREAMS.iter().find(|s| s.name == name)
}

/// What [`expand`] makes of a selection.
#[derive(Debug)]
pub struct Expanded {
    /// The raw streams to read, each once.
    pub selected: Vec<Selected>,
    /// The state translated for them (`None`: the input state as it is).
    pub state: Option<InputState>,
    /// What the sink derives (`None`: no commerce stream is selected).
    pub derive: Option<Derive>,
}

/// The read that `selected` needs: raw streams only (the commerce streams replaced by
/// their sources, each raw stream once), the state translated for them, and what the sink
/// must derive (`None` when no commerce stream is selected).
///
/// A raw stream wanted by several (itself and commerce streams, or two commerce streams)
/// is read once: incremental if any of them asks so, from the least advanced of their
/// states; with no state (a full read) when one of them asks full refresh or has none, or
/// when their states cannot be ordered (one is in the middle of a first full read).
///
/// # Errors
/// A commerce stream's saved state that is not `{"sources": {…}}` or holds a malformed
/// source state: a `config_error` naming the stream.
pub fn expand(
    selected: Vec<Selected>,
    input: &InputState,
    multi: bool,
) -> Result<Expanded, state::Error> {
    let (commerce, raw): (Vec<Selected>, Vec<Selected>) =
        selected.into_iter().partition(|s| is_commerce(s.def.name));
    if commerce.is_empty() {
        return Ok(Expanded {
            selected: raw,
            state: None,
            derive: None,
        });
    }
    let saved: BTreeMap<&str, &Value> = input.streams().collect();
    // Each commerce stream's saved source states.
    let mut commerce_states: BTreeMap<&'static str, Map<String, Value>> = BTreeMap::new();
    for c in &commerce {
        let sources = match saved.get(c.def.name) {
            None | Some(Value::Null) => Map::new(),
            Some(value) => match value.get("sources") {
                Some(Value::Object(sources)) if c.mode == SyncMode::Incremental => sources.clone(),
                Some(Value::Object(_)) => Map::new(),
                _ => {
                    return Err(state::Error::Invalid(format!(
                        "the state of stream `{}` is {value}; a commerce stream's state is {{\"sources\": {{\"<raw stream>\": <its state>}}}}. Remove the stream's state to read it in full",
                        c.def.name
                    )));
                }
            },
        };
        commerce_states.insert(c.def.name, sources);
    }
    let mut needed: BTreeSet<&'static str> = BTreeSet::new();
    for c in &commerce {
        needed.extend(sources_of(c.def.name).iter().copied());
    }
    let mut out: Vec<Selected> = Vec::new();
    let mut hidden = BTreeSet::new();
    let mut states: Map<String, Value> = Map::new();
    for (name, value) in &saved {
        if !is_commerce(name) {
            states.insert((*name).to_owned(), (*value).clone());
        }
    }
    for s in &raw {
        if !needed.contains(s.def.name) {
            out.push(*s);
        }
    }
    for source in needed {
        let Some(def) = source_def(source) else {
            continue;
        };
        // (who, mode, saved state) of everyone who wants this stream.
        let mut wanted: Vec<(String, SyncMode, Option<Value>)> = Vec::new();
        let own = raw.iter().find(|s| s.def.name == source);
        if let Some(s) = own {
            wanted.push((
                source.to_owned(),
                s.mode,
                saved.get(source).map(|v| (*v).clone()),
            ));
        } else {
            hidden.insert(source);
        }
        for c in &commerce {
            if sources_of(c.def.name).contains(&source) {
                let value = commerce_states
                    .get(c.def.name)
                    .and_then(|m| m.get(source))
                    .cloned();
                wanted.push((format!("{} (source {source})", c.def.name), c.mode, value));
            }
        }
        let incremental = def.cursor.is_some()
            && wanted
                .iter()
                .any(|(_, mode, _)| *mode == SyncMode::Incremental);
        let mode = if incremental {
            SyncMode::Incremental
        } else {
            SyncMode::FullRefresh
        };
        out.push(Selected { def, mode });
        states.remove(source);
        if let (true, Some(cursor)) = (incremental, def.cursor)
            && let Some(value) = merge_states(&wanted, cursor, multi)?
        {
            states.insert(source.to_owned(), value);
        }
    }
    let translated = InputState::parse(&Value::Object(states).to_string())?;
    let derive = Derive::new(
        commerce.iter().map(|c| c.def.name).collect(),
        hidden,
        commerce_states,
    );
    Ok(Expanded {
        selected: out,
        state: Some(translated),
        derive: Some(derive),
    })
}

/// The state a shared raw stream is read from (see [`expand`]).
fn merge_states(
    wanted: &[(String, SyncMode, Option<Value>)],
    cursor: Cursor,
    multi: bool,
) -> Result<Option<Value>, state::Error> {
    let mut values = Vec::new();
    for (who, mode, value) in wanted {
        match (mode, value) {
            (SyncMode::Incremental, Some(value)) if !value.is_null() => {
                values.push((who.as_str(), value))
            }
            _ => return Ok(None),
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    let one = |who: &str, value: &Value| -> Result<InputState, state::Error> {
        InputState::parse(&json!({ who: value }).to_string())
    };
    if !multi {
        let mut parsed = Vec::new();
        for (who, value) in &values {
            match one(who, value)?.stream(who, cursor)? {
                Some(s) => parsed.push(s),
                None => return Ok(None),
            }
        }
        return Ok(least(&parsed).map(|s| s.to_json(cursor)));
    }
    let mut per_account: BTreeMap<String, Vec<StreamState>> = BTreeMap::new();
    for (who, value) in &values {
        for (account, s) in one(who, value)?.stream_accounts(who, cursor)? {
            per_account.entry(account).or_default().push(s);
        }
    }
    let mut accounts = Map::new();
    for (account, list) in per_account {
        if list.len() == values.len()
            && let Some(s) = least(&list)
        {
            accounts.insert(account, s.to_json(cursor));
        }
    }
    Ok(Some(json!({ "accounts": accounts })))
}

/// The least advanced of several states: the earliest cursor when none is in the middle
/// of a first full read; `None` (read in full) when they differ and one is.
fn least(states: &[StreamState]) -> Option<StreamState> {
    let first = states.first()?.clone();
    if states.iter().all(|s| *s == first) {
        return Some(first);
    }
    if states.iter().any(|s| s.backfill_from_created.is_some()) {
        return None;
    }
    states.iter().min_by_key(|s| s.cursor).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selected(name: &str, mode: SyncMode) -> Selected {
        Selected {
            def: crate::streams::find(name).unwrap(),
            mode,
        }
    }

    #[test]
    fn table_is_consistent() {
        for stream in STREAMS {
            let schema: Value = serde_json::from_str(stream.schema).unwrap();
            let props = &schema["properties"];
            assert!(props["id"].is_object(), "{}", stream.name);
            assert!(props["stripe_account"].is_object(), "{}", stream.name);
            if let Some(cursor) = stream.cursor {
                assert!(props[cursor.field()].is_object(), "{}", stream.name);
            }
            let sources = sources_of(stream.name);
            assert!(!sources.is_empty(), "{}", stream.name);
            for source in sources {
                let def = source_def(source).unwrap();
                // A commerce stream's cursor is its sources' cursor.
                if def.name != "account" && def.name != BALANCE.name {
                    assert_eq!(def.cursor, stream.cursor, "{} ← {source}", stream.name);
                }
            }
            for rule in map::RULES.iter().filter(|r| r.target == stream.name) {
                assert!(sources.contains(&rule.source), "{}", rule.source);
            }
        }
        assert_eq!(SOURCES.len(), STREAMS.len());
    }

    #[test]
    fn a_commerce_stream_alone_reads_its_sources_hidden() {
        let Expanded {
            selected: read,
            state,
            derive,
        } = expand(
            vec![selected("commerce_products", SyncMode::Incremental)],
            &InputState::default(),
            false,
        )
        .unwrap();
        let names: Vec<_> = read.iter().map(|s| s.def.name).collect();
        assert_eq!(names, ["prices", "products"]);
        assert!(read.iter().all(|s| s.mode == SyncMode::Incremental));
        assert!(state.unwrap().streams().next().is_none());
        let derive = derive.unwrap();
        assert!(derive.is_hidden("prices") && derive.is_hidden("products"));
    }

    #[test]
    fn a_shared_source_is_read_once_from_the_least_advanced_state() {
        let input = InputState::parse(
            &json!({
                "charges": {"updated": 1_700_000_500},
                "commerce_payments": {"sources": {"charges": {"updated": 1_700_000_100}}},
                "customers": {"updated": 1_700_000_900},
            })
            .to_string(),
        )
        .unwrap();
        let Expanded {
            selected: read,
            state,
            derive,
        } = expand(
            vec![
                selected("charges", SyncMode::Incremental),
                selected("customers", SyncMode::Incremental),
                selected("commerce_payments", SyncMode::Incremental),
            ],
            &input,
            false,
        )
        .unwrap();
        let names: Vec<_> = read.iter().map(|s| s.def.name).collect();
        assert_eq!(names, ["customers", "charges"]);
        let state = state.unwrap();
        let charges = state.stream("charges", Cursor::Updated).unwrap().unwrap();
        assert_eq!(charges.cursor, 1_700_000_100);
        let customers = state.stream("customers", Cursor::Updated).unwrap().unwrap();
        assert_eq!(customers.cursor, 1_700_000_900);
        assert!(!derive.unwrap().is_hidden("charges"));
    }

    #[test]
    fn without_a_commerce_state_the_source_is_read_in_full() {
        let input =
            InputState::parse(&json!({"charges": {"updated": 1_700_000_500}}).to_string()).unwrap();
        let Expanded { state, .. } = expand(
            vec![
                selected("charges", SyncMode::Incremental),
                selected("commerce_payments", SyncMode::Incremental),
            ],
            &input,
            false,
        )
        .unwrap();
        assert!(
            state
                .unwrap()
                .stream("charges", Cursor::Updated)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_commerce_states_name_the_stream() {
        let input =
            InputState::parse(&json!({"commerce_payments": {"updated": 5}}).to_string()).unwrap();
        let err = expand(
            vec![selected("commerce_payments", SyncMode::Incremental)],
            &input,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("commerce_payments") && err.contains("sources"),
            "{err}"
        );
        let input = InputState::parse(
            &json!({"commerce_payments": {"sources": {"charges": {"updated": "soon"}}}})
                .to_string(),
        )
        .unwrap();
        let err = expand(
            vec![selected("commerce_payments", SyncMode::Incremental)],
            &input,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("commerce_payments (source charges)"), "{err}");
    }
}
