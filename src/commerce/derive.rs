//! The commerce stage at the sink: a [`Sink`] wrapper that sees every raw record, state and
//! stream status the engine emits and adds the commerce streams' own, in order: a commerce
//! record right after the raw page it comes from, a commerce STATE right after its
//! source's. Raw streams read only for a commerce stream (hidden) are not passed on.
//!
//! - Records: each raw record goes through the [`RULES`](super::map::RULES) for its stream;
//!   company info joins each account's `account` record with its `balance` (held until both
//!   arrived, or until one of the two streams ends).
//! - States: a commerce stream's state is `{"sources": {"<raw stream>": <its state>}}`, the
//!   latest state of each source, so the next sync resumes each source where it was.
//! - Stream statuses: a commerce stream starts with its first source and ends when all its
//!   sources ended, INCOMPLETE if one of them did; a source's error is repeated for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use serde_json::{Map, Value, json};

use super::{map, sources_of};
use crate::protocol::AirbyteMessage;
use crate::protocol::airbyte::StreamStatus;
use crate::sinks::Sink;

/// What the sink derives in one read (built by [`super::expand`]).
#[derive(Debug)]
pub struct Derive {
    /// Selected commerce streams.
    commerce: Vec<&'static str>,
    /// Raw streams read only for commerce streams.
    hidden: BTreeSet<&'static str>,
    /// The latest state of each commerce stream's sources.
    states: BTreeMap<&'static str, Map<String, Value>>,
    /// Per commerce stream: the sources that ended, and whether one was incomplete.
    ended: HashMap<&'static str, (BTreeSet<String>, bool)>,
    started: BTreeSet<&'static str>,
    /// Company info waiting for its other half, by account (`None`: the one account).
    accounts: BTreeMap<Option<String>, Value>,
    balances: BTreeMap<Option<String>, Value>,
}

impl Derive {
    pub(super) fn new(
        commerce: Vec<&'static str>,
        hidden: BTreeSet<&'static str>,
        states: BTreeMap<&'static str, Map<String, Value>>,
    ) -> Derive {
        Derive {
            commerce,
            hidden,
            states,
            ended: HashMap::new(),
            started: BTreeSet::new(),
            accounts: BTreeMap::new(),
            balances: BTreeMap::new(),
        }
    }

    /// Whether a raw stream is read only for commerce streams (and not emitted).
    pub fn is_hidden(&self, stream: &str) -> bool {
        self.hidden.contains(stream)
    }

    /// The selected commerce streams built from `source`.
    fn targets(&self, source: &str) -> Vec<&'static str> {
        self.commerce
            .iter()
            .copied()
            .filter(|c| sources_of(c).contains(&source))
            .collect()
    }

    fn company_info_wanted(&self) -> bool {
        self.commerce.contains(&"commerce_company_info")
    }
}

/// A sink that adds the commerce streams to what reaches `inner` (see the module docs).
pub struct DeriveSink<S> {
    inner: S,
    derive: Option<Derive>,
}

impl<S: Sink> DeriveSink<S> {
    pub fn new(inner: S, derive: Option<Derive>) -> Self {
        DeriveSink { inner, derive }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn parse(stream: &str, record: &str) -> io::Result<Value> {
    serde_json::from_str(record).map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {stream} record is not JSON: {err}"),
        )
    })
}

fn account_of(record: &Value) -> Option<String> {
    record
        .get("stripe_account")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl<S: Sink> DeriveSink<S> {
    /// Emits the company info of every account whose `account` record has arrived; with
    /// `all`, also those still without a balance.
    fn flush_company_info(&mut self, all: bool) -> io::Result<()> {
        let Some(derive) = &mut self.derive else {
            return Ok(());
        };
        let ready: Vec<Option<String>> = derive
            .accounts
            .keys()
            .filter(|k| all || derive.balances.contains_key(*k))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for key in ready {
            if let Some(account) = derive.accounts.remove(&key) {
                let balance = derive.balances.remove(&key);
                out.push(map::company_info(&account, balance.as_ref()).to_string());
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        self.inner.records("commerce_company_info", &out)
    }
}

impl<S: Sink> Sink for DeriveSink<S> {
    fn records(&mut self, stream: &str, records: &[String]) -> io::Result<()> {
        let Some(derive) = &mut self.derive else {
            return self.inner.records(stream, records);
        };
        if !derive.is_hidden(stream) {
            self.inner.records(stream, records)?;
        }
        let company = derive.company_info_wanted() && matches!(stream, "account" | "balance");
        let rules: Vec<&map::Rule> = map::RULES
            .iter()
            .filter(|r| r.source == stream && derive.commerce.contains(&r.target))
            .collect();
        if rules.is_empty() && !company {
            return Ok(());
        }
        let mut by_target: Vec<(&'static str, Vec<String>)> = Vec::new();
        for record in records {
            let value = parse(stream, record)?;
            if company {
                let slot = if stream == "account" {
                    &mut derive.accounts
                } else {
                    &mut derive.balances
                };
                slot.insert(account_of(&value), value.clone());
            }
            for rule in &rules {
                let index = match by_target.iter().position(|(t, _)| *t == rule.target) {
                    Some(index) => index,
                    None => {
                        by_target.push((rule.target, Vec::new()));
                        by_target.len() - 1
                    }
                };
                by_target[index]
                    .1
                    .extend((rule.map)(&value).iter().map(Value::to_string));
            }
        }
        for (target, out) in by_target {
            self.inner.records(target, &out)?;
        }
        if company {
            self.flush_company_info(false)?;
        }
        Ok(())
    }

    fn state(&mut self, stream: &str, state: &Value) -> io::Result<()> {
        let Some(derive) = &mut self.derive else {
            return self.inner.state(stream, state);
        };
        if !derive.is_hidden(stream) {
            self.inner.state(stream, state)?;
        }
        let mut out = Vec::new();
        for target in derive.targets(stream) {
            let sources = derive.states.entry(target).or_default();
            sources.insert(stream.to_owned(), state.clone());
            out.push((target, json!({ "sources": sources })));
        }
        for (target, state) in out {
            self.inner.state(target, &state)?;
        }
        Ok(())
    }

    fn message(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        let Some(derive) = &mut self.derive else {
            return self.inner.message(message);
        };
        let AirbyteMessage::Trace { trace } = message else {
            return self.inner.message(message);
        };
        let stream = trace
            .stream_status
            .as_ref()
            .map(|s| s.stream_descriptor.name.clone())
            .or_else(|| {
                trace
                    .error
                    .as_ref()
                    .and_then(|e| e.stream_descriptor.as_ref())
                    .map(|d| d.name.clone())
            });
        let Some(stream) = stream else {
            return self.inner.message(message);
        };
        let hidden = derive.is_hidden(&stream);
        let targets = derive.targets(&stream);
        let mut derived: Vec<AirbyteMessage> = Vec::new();
        let mut flush = false;
        if let Some(status) = &trace.stream_status {
            for target in &targets {
                match status.status {
                    StreamStatus::Started if derive.started.insert(target) => {
                        derived.push(AirbyteMessage::stream_status(target, StreamStatus::Started));
                    }
                    StreamStatus::Complete | StreamStatus::Incomplete => {
                        let (ended, incomplete) = derive.ended.entry(target).or_default();
                        ended.insert(stream.clone());
                        *incomplete |= status.status == StreamStatus::Incomplete;
                        if *target == "commerce_company_info" {
                            flush = true;
                        }
                        if sources_of(target).iter().all(|s| ended.contains(*s)) {
                            let status = if *incomplete {
                                StreamStatus::Incomplete
                            } else {
                                StreamStatus::Complete
                            };
                            derived.push(AirbyteMessage::stream_status(target, status));
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(error) = &trace.error {
            for target in &targets {
                derived.push(AirbyteMessage::error(
                    error.message.clone(),
                    error.internal_message.clone(),
                    error.failure_type,
                    Some(target),
                ));
            }
        }
        if !hidden {
            self.inner.message(message)?;
        }
        if flush {
            // A source of company info ended: what is still waiting will not get its
            // other half; it goes out before the stream's end.
            self.flush_company_info(true)?;
        }
        for message in &derived {
            self.inner.message(message)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush_company_info(true)?;
        self.inner.finish()
    }
}
