//! The read engine: turns the validated config, the selected streams and their state
//! into requests, records and states.
//!
//! [`ReadPlan::build`] checks every input once; [`ReadPlan::run`] reads. How each
//! stream is read:
//! - full refresh: the list endpoint from `start_date`, in `created` windows;
//! - incremental, `created` cursor: windows from the cursor (minus the lookback) up to
//!   the server's clock at the start of the sync, a STATE after every window;
//! - incremental, `updated` cursor: without state, a first full read in windows (a
//!   STATE after every window, so a killed first sync resumes); with state, one shared
//!   pass over `/v1/events` for all such streams, in windows, each event routed to the
//!   stream of its object; a cursor older than Stripe's 30-day event window falls back
//!   to a full read, said in a LOG line.
//!
//! Windows are read concurrently and split further when they hold many pages; a STATE
//! is only emitted for a point below which every window is complete. All requests go
//! through one [`Client`], which caps requests in flight and their rate.

pub mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{self, StreamExt, TryStreamExt};
use futures::{FutureExt, future::BoxFuture};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::error::{Error, FailureType};
use crate::protocol::AirbyteMessage;
use crate::protocol::airbyte::StreamStatus;
use crate::sinks::Output;
use crate::streams::catalog::{Selected, SyncMode};
use crate::streams::{Cursor, StreamDef};
use crate::stripe::{self, Client, Page};
use state::{InputState, StreamState};

/// Stripe keeps events for 30 days.
pub const EVENTS_RETENTION_SECS: i64 = 30 * 86_400;
/// A cursor this close to the edge of the event window is treated as outside it: events
/// at the edge may expire while the sync reads.
const EVENTS_MARGIN_SECS: i64 = 3_600;
/// Events windows are at most a day, so an events pass checkpoints often.
const EVENTS_WINDOW_SECS: i64 = 86_400;
/// Stripe accepts at most this many names in `types[]`.
const MAX_EVENT_TYPES: usize = 20;
const PAGE_LIMIT: &str = "100";

/// How one selected stream will be read.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// One object (`/v1/account`).
    Single,
    /// Everything from `start_date`, no state.
    Full,
    /// `created` windows from `from` up to the sync's clock, state `{"created": …}`.
    Created { from: i64 },
    /// A full read in `created` windows from `from`; changes from `events_from` on
    /// come through events afterwards. `events_from: None` means the sync's clock.
    Backfill {
        from: i64,
        events_from: Option<i64>,
        reason: Option<&'static str>,
    },
    /// Changes through the events pass, from `from` (the cursor minus the lookback).
    Events { cursor: i64, from: i64 },
}

#[derive(Debug)]
struct PlannedStream {
    def: &'static StreamDef,
    state: Option<StreamState>,
    mode: SyncMode,
}

/// A validated read: config, streams and their state. Built before any request.
#[derive(Debug)]
pub struct ReadPlan {
    config: Config,
    streams: Vec<PlannedStream>,
}

impl ReadPlan {
    /// # Errors
    /// A state `config_error` naming the stream whose state is malformed.
    pub fn build(
        config: Config,
        selected: Vec<Selected>,
        input: &InputState,
    ) -> Result<ReadPlan, Error> {
        let streams = selected
            .into_iter()
            .map(|Selected { def, mode }| {
                let state = match (mode, def.cursor) {
                    (SyncMode::Incremental, Some(cursor)) => input.stream(def.name, cursor)?,
                    _ => None,
                };
                Ok(PlannedStream { def, state, mode })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(ReadPlan { config, streams })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides how each stream is read, given the server's clock.
    fn plan(&self, stream: &PlannedStream, now: i64) -> Plan {
        let config = &self.config;
        let (SyncMode::Incremental, Some(cursor)) = (stream.mode, stream.def.cursor) else {
            return if stream.def.single {
                Plan::Single
            } else {
                Plan::Full
            };
        };
        let state = stream.state;
        match cursor {
            Cursor::Created => {
                let from = state.map_or(config.start_date, |s| {
                    (s.cursor - config.lookback_secs).max(config.start_date)
                });
                Plan::Created { from }
            }
            Cursor::Updated => match state {
                None => Plan::Backfill {
                    from: config.start_date,
                    events_from: None,
                    reason: None,
                },
                Some(StreamState {
                    cursor,
                    backfill_from_created: Some(from),
                }) => Plan::Backfill {
                    from,
                    events_from: Some(cursor),
                    reason: None,
                },
                Some(StreamState { cursor, .. })
                    if cursor < now - EVENTS_RETENTION_SECS + EVENTS_MARGIN_SECS =>
                {
                    Plan::Backfill {
                        from: config.start_date,
                        events_from: None,
                        reason: Some("is older than the 30 days Stripe keeps events"),
                    }
                }
                Some(StreamState { cursor, .. }) => Plan::Events {
                    cursor,
                    from: (cursor - config.lookback_secs)
                        .max(now - EVENTS_RETENTION_SECS + EVENTS_MARGIN_SECS),
                },
            },
        }
    }

    /// Reads every stream, sending records, states and messages to `out`.
    ///
    /// A stream that fails (a 403, retries used up) is reported with a TRACE error and
    /// INCOMPLETE status; the others go on.
    ///
    /// # Errors
    /// A key Stripe rejects, or an inaccessible account, ends the read at once; failed
    /// streams end it with [`Error::StreamsFailed`] after the others finished.
    pub async fn run(self, client: Client, out: mpsc::Sender<Output>) -> Result<(), Error> {
        let emit = Emitter { out };
        // The first request checks the key and the account, and gives the server's
        // clock: every window ends there, so the local clock's skew does not matter.
        let account = match client.get_object("/v1/account").await {
            Ok(account) => Ok(account),
            Err(err @ (stripe::Error::PermissionDenied { .. } | stripe::Error::Exhausted { .. })) => {
                Err(err)
            }
            Err(err) => return Err(err.into()),
        };
        let now = client.server_time().unwrap_or_else(|| crate::protocol::now_ms() / 1000);
        let ctx = Arc::new(Ctx {
            client,
            emit: emit.clone(),
            slice_secs: self.config.slice_secs,
            start_date: self.config.start_date,
            now,
            split_budget: self.config.num_workers * 2,
        });

        let mut jobs: Vec<BoxFuture<'static, Vec<(&'static str, Result<(), Error>)>>> = Vec::new();
        let mut events_streams = Vec::new();
        for stream in &self.streams {
            let name = stream.def.name;
            emit.message(AirbyteMessage::stream_status(name, StreamStatus::Started))
                .await?;
            let plan = self.plan(stream, now);
            tracing::info!(stream = name, ?plan, "planned");
            match plan {
                Plan::Events { cursor, from } => events_streams.push(EventsStream {
                    def: stream.def,
                    cursor,
                    from,
                }),
                Plan::Single => {
                    let result = match &account {
                        Ok(account) => emit.records(name, vec![account.get().to_owned()]).await,
                        Err(err) => Err(clone_stripe_error(err).into()),
                    };
                    jobs.push(futures::future::ready(vec![(name, result)]).boxed());
                }
                plan => {
                    if let Plan::Backfill {
                        reason: Some(reason),
                        ..
                    } = plan
                    {
                        let cursor = stream.state.map_or(0, |s| s.cursor);
                        emit.message(AirbyteMessage::log(
                            "WARN",
                            format!(
                                "stream {name}: the saved cursor {} {reason}; reading the stream in full from start_date so no change is lost",
                                format_time(cursor)
                            ),
                        ))
                        .await?;
                    }
                    let ctx = ctx.clone();
                    let def = stream.def;
                    jobs.push(
                        async move { vec![(def.name, read_list(&ctx, def, plan).await)] }.boxed(),
                    );
                }
            }
        }
        if !events_streams.is_empty() {
            let ctx = ctx.clone();
            jobs.push(
                async move {
                    let result = read_events(&ctx, &events_streams).await;
                    events_streams
                        .iter()
                        .map(|s| (s.def.name, result.as_ref().map(|_| ()).map_err(copy_error)))
                        .collect()
                }
                .boxed(),
            );
        }

        let results: Vec<(&'static str, Result<(), Error>)> =
            futures::future::join_all(jobs).await.into_iter().flatten().collect();
        let mut failed = Vec::new();
        let mut failure_type = FailureType::ConfigError;
        for (name, result) in results {
            match result {
                Ok(()) => {
                    emit.message(AirbyteMessage::stream_status(name, StreamStatus::Complete))
                        .await?;
                }
                Err(Error::Output(err)) => return Err(Error::Output(err)),
                Err(err) => {
                    if err.failure_type() != FailureType::ConfigError {
                        failure_type = err.failure_type();
                    }
                    emit.message(AirbyteMessage::error(
                        format!("stream {name} failed: {err}"),
                        None,
                        err.failure_type(),
                        Some(name),
                    ))
                    .await?;
                    emit.message(AirbyteMessage::stream_status(name, StreamStatus::Incomplete))
                        .await?;
                    failed.push(name);
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::StreamsFailed {
                message: format!(
                    "{} of {} streams did not sync: {}; the others completed",
                    failed.len(),
                    self.streams.len(),
                    failed.join(", ")
                ),
                failure_type,
            })
        }
    }
}

/// Errors are not `Clone`; a shared failure (the events pass, the account probe) is
/// reported on every stream it affects, with the same message and failure type.
fn copy_error(err: &Error) -> Error {
    Error::StreamsFailed {
        message: err.to_string(),
        failure_type: err.failure_type(),
    }
}

fn clone_stripe_error(err: &stripe::Error) -> Error {
    Error::StreamsFailed {
        message: err.to_string(),
        failure_type: err.failure_type(),
    }
}

fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// The sending half of the output channel.
#[derive(Clone)]
struct Emitter {
    out: mpsc::Sender<Output>,
}

impl Emitter {
    async fn send(&self, output: Output) -> Result<(), Error> {
        self.out.send(output).await.map_err(|_| {
            Error::Output(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the output closed before the sync finished",
            ))
        })
    }

    async fn records(&self, stream: &'static str, records: Vec<String>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        self.send(Output::Records { stream, records }).await
    }

    async fn state(&self, stream: &'static str, state: serde_json::Value) -> Result<(), Error> {
        self.send(Output::State { stream, state }).await
    }

    async fn message(&self, message: AirbyteMessage) -> Result<(), Error> {
        self.send(Output::Message(message)).await
    }
}

/// What every read task shares.
struct Ctx {
    client: Client,
    emit: Emitter,
    slice_secs: i64,
    start_date: i64,
    /// The server's clock at the start of the sync (unix seconds).
    now: i64,
    /// Ranges that may be read at once before a range stops splitting.
    split_budget: usize,
}

/// `[from, to)` cut into windows of `size` seconds.
fn windows(from: i64, to: i64, size: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = start.saturating_add(size).min(to);
        out.push((start, end));
        start = end;
    }
    out
}

/// The fields of a record the engine looks at.
#[derive(Deserialize)]
struct Head {
    id: String,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    updated: Option<IgnoredAny>,
    #[serde(default)]
    object: Option<String>,
}

/// The record as Stripe sent it, with `updated` (unless Stripe's object has its own)
/// and `is_deleted` appended.
fn decorate(raw: &str, head: &Head, updated: Option<i64>, deleted: bool) -> String {
    let mut extra = String::new();
    if let (Some(updated), None) = (updated, &head.updated) {
        extra.push_str(&format!(",\"updated\":{updated}"));
    }
    if deleted {
        extra.push_str(",\"is_deleted\":true");
    }
    if extra.is_empty() {
        return raw.to_owned();
    }
    let trimmed = raw.trim_end();
    let body = trimmed.strip_suffix('}').unwrap_or(trimmed);
    let mut out = String::with_capacity(body.len() + extra.len() + 1);
    out.push_str(body);
    out.push_str(&extra);
    out.push('}');
    out
}

fn head(stream: &str, raw: &RawValue) -> Result<Head, Error> {
    serde_json::from_str(raw.get()).map_err(|err| {
        Error::Stripe(stripe::Error::InvalidResponse {
            path: stream.to_owned(),
            message: format!("an object has no id or created: {err}"),
        })
    })
}

/// Reads a list stream per its plan, with its STATEs.
async fn read_list(ctx: &Ctx, def: &'static StreamDef, plan: Plan) -> Result<(), Error> {
    type Checkpoint = Box<dyn Fn(i64) -> serde_json::Value + Send + Sync>;
    let (from, to, checkpoint): (i64, i64, Option<Checkpoint>) = match plan {
        Plan::Full => (ctx.start_date, ctx.now, None),
        Plan::Created { from } => (
            from,
            ctx.now,
            Some(Box::new(|end| {
                StreamState {
                    cursor: end,
                    backfill_from_created: None,
                }
                .to_json(Cursor::Created)
            })),
        ),
        Plan::Backfill {
            from, events_from, ..
        } => {
            let events_from = events_from.unwrap_or(ctx.now);
            (
                from,
                events_from,
                Some(Box::new(move |end| {
                    StreamState {
                        cursor: events_from,
                        backfill_from_created: (end < events_from).then_some(end),
                    }
                    .to_json(Cursor::Updated)
                })),
            )
        }
        Plan::Single | Plan::Events { .. } => return Ok(()),
    };
    let updated = def.cursor == Some(Cursor::Updated);
    let active = Arc::new(AtomicUsize::new(0));
    let mut windows: Vec<(i64, Option<i64>)> = windows(from, to, ctx.slice_secs)
        .into_iter()
        .map(|(gte, lt)| (gte, Some(lt)))
        .collect();
    if checkpoint.is_none() {
        // A full refresh reads everything, including what was created after the
        // sync's clock: its last window is open-ended.
        match windows.last_mut() {
            Some(last) => last.1 = None,
            None => windows.push((from, None)),
        }
    }
    let Some(checkpoint) = checkpoint else {
        return stream::iter(windows)
            .map(|(gte, lt)| read_range(ctx, def, updated, gte, lt, None, active.clone()))
            .buffer_unordered(ctx.split_budget.max(1))
            .try_collect::<()>()
            .await;
    };
    if windows.is_empty() {
        // Nothing to read: the state stays where it was, said again.
        return ctx.emit.state(def.name, checkpoint(from.max(to))).await;
    }
    let mut done = stream::iter(windows)
        .map(|(gte, lt)| {
            let active = active.clone();
            async move {
                read_range(ctx, def, updated, gte, lt, None, active).await?;
                Ok::<_, Error>(lt.unwrap_or(to))
            }
        })
        .buffered(ctx.split_budget.max(1));
    while let Some(end) = done.try_next().await? {
        ctx.emit.state(def.name, checkpoint(end)).await?;
    }
    Ok(())
}

/// Reads `[gte, lt)` of a list endpoint, newest first, from `starting_after` on.
/// After the first page it estimates how many pages remain from the `created` span of
/// that page; if many do, the rest of the range is split and read concurrently.
fn read_range<'a>(
    ctx: &'a Ctx,
    def: &'static StreamDef,
    updated: bool,
    gte: i64,
    lt: Option<i64>,
    mut starting_after: Option<String>,
    active: Arc<AtomicUsize>,
) -> BoxFuture<'a, Result<(), Error>> {
    async move {
        active.fetch_add(1, Ordering::Relaxed);
        let _guard = ActiveGuard(active.clone());
        loop {
            let mut query: Vec<(&str, String)> = vec![
                ("limit", PAGE_LIMIT.to_owned()),
                ("created[gte]", gte.to_string()),
            ];
            if let Some(lt) = lt {
                query.push(("created[lt]", lt.to_string()));
            }
            if let Some(after) = &starting_after {
                query.push(("starting_after", after.clone()));
            }
            query.extend(def.query.iter().map(|(k, v)| (*k, (*v).to_owned())));
            let Page { data, has_more } = ctx.client.list(def.path, &query).await?;
            let mut records = Vec::with_capacity(data.len());
            let mut first_created = None;
            let mut last = None;
            for raw in &data {
                let head = head(def.name, raw)?;
                let created = head.created.unwrap_or(0);
                first_created.get_or_insert(created);
                records.push(decorate(raw.get(), &head, updated.then_some(created), false));
                last = Some((head.id, created));
            }
            ctx.emit.records(def.name, records).await?;
            let (Some((last_id, last_created)), true) = (last, has_more) else {
                return Ok(());
            };
            let span = (first_created.unwrap_or(last_created) - last_created).max(1);
            let remaining_pages = (last_created - gte) / span;
            let room = ctx.split_budget.saturating_sub(active.load(Ordering::Relaxed));
            let parts = (remaining_pages / 2).clamp(0, 8).min(room as i64);
            if parts >= 2 && last_created - gte >= parts {
                // The boundary second goes on from the last object; the rest of the
                // range is cut into `parts` ranges read at once.
                let mut tasks = vec![read_range(
                    ctx,
                    def,
                    updated,
                    last_created,
                    Some(last_created + 1),
                    Some(last_id),
                    active.clone(),
                )];
                let step = (last_created - gte) / parts;
                for i in 0..parts {
                    let start = gte + i * step;
                    let end = if i == parts - 1 { last_created } else { start + step };
                    tasks.push(read_range(ctx, def, updated, start, Some(end), None, active.clone()));
                }
                futures::future::try_join_all(tasks).await?;
                return Ok(());
            }
            starting_after = Some(last_id);
        }
    }
    .boxed()
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream whose changes come from the events pass.
struct EventsStream {
    def: &'static StreamDef,
    cursor: i64,
    /// Events before this are not for this stream (cursor minus lookback).
    from: i64,
}

#[derive(Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Box<RawValue>,
}

/// One pass over `/v1/events` for every event-driven stream: windows of a day from the
/// earliest cursor to the sync's clock, the event types in groups of 20, each event's
/// object routed to the stream whose type and `object` match. After each window a STATE
/// for every stream.
async fn read_events(ctx: &Ctx, streams: &[EventsStream]) -> Result<(), Error> {
    let from = streams.iter().map(|s| s.from).min().unwrap_or(ctx.now);
    let types: Vec<&str> = streams
        .iter()
        .flat_map(|s| s.def.event_types.iter().copied())
        .collect();
    let windows = windows(from, ctx.now, EVENTS_WINDOW_SECS);
    let mut done = stream::iter(windows)
        .map(|(gte, lt)| {
            let types = &types;
            async move {
                let chunks = types
                    .chunks(MAX_EVENT_TYPES)
                    .map(|chunk| read_events_range(ctx, streams, chunk, gte, lt));
                futures::future::try_join_all(chunks).await?;
                Ok::<_, Error>(lt)
            }
        })
        .buffered(ctx.split_budget.max(1));
    while let Some(end) = done.try_next().await? {
        for stream in streams.iter().filter(|s| end > s.cursor) {
            ctx.emit
                .state(
                    stream.def.name,
                    StreamState { cursor: end, backfill_from_created: None }.to_json(Cursor::Updated),
                )
                .await?;
        }
    }
    for stream in streams.iter().filter(|s| s.cursor >= ctx.now) {
        // Nothing new: say the state again so the platform keeps it.
        ctx.emit
            .state(
                stream.def.name,
                StreamState { cursor: stream.cursor, backfill_from_created: None }.to_json(Cursor::Updated),
            )
            .await?;
    }
    Ok(())
}

async fn read_events_range(
    ctx: &Ctx,
    streams: &[EventsStream],
    types: &[&str],
    gte: i64,
    lt: i64,
) -> Result<(), Error> {
    let mut starting_after: Option<String> = None;
    loop {
        let mut query: Vec<(&str, String)> = vec![
            ("limit", PAGE_LIMIT.to_owned()),
            ("created[gte]", gte.to_string()),
            ("created[lt]", lt.to_string()),
        ];
        query.extend(types.iter().map(|t| ("types[]", (*t).to_owned())));
        if let Some(after) = &starting_after {
            query.push(("starting_after", after.clone()));
        }
        let Page { data, has_more } = ctx.client.list("/v1/events", &query).await?;
        let mut routed: Vec<Vec<String>> = vec![Vec::new(); streams.len()];
        let mut last_id = None;
        for raw in &data {
            let event: EventHead = serde_json::from_str(raw.get()).map_err(|err| {
                Error::Stripe(stripe::Error::InvalidResponse {
                    path: "/v1/events".to_owned(),
                    message: format!("an event has no type, created or data.object: {err}"),
                })
            })?;
            let object = head("events", &event.data.object)?;
            last_id = Some(event.id);
            let target = streams.iter().position(|s| {
                s.def.event_types.contains(&event.kind.as_str())
                    && object.object.as_deref() == Some(s.def.object)
                    && event.created >= s.from
            });
            if let Some(index) = target {
                routed[index].push(decorate(
                    event.data.object.get(),
                    &object,
                    Some(event.created),
                    StreamDef::is_deletion(&event.kind),
                ));
            }
        }
        for (stream, records) in streams.iter().zip(routed) {
            ctx.emit.records(stream.def.name, records).await?;
        }
        match (last_id, has_more) {
            (Some(id), true) => starting_after = Some(id),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_once() {
        assert_eq!(windows(0, 10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(windows(0, 8, 4), vec![(0, 4), (4, 8)]);
        assert!(windows(5, 5, 4).is_empty());
        assert!(windows(6, 5, 4).is_empty());
    }

    #[test]
    fn decorate_appends_fields_and_keeps_the_rest_verbatim() {
        let raw = r#"{"id":"cus_1","created":5,"amount":1.50} "#;
        let head: Head = serde_json::from_str(raw).unwrap();
        assert_eq!(
            decorate(raw, &head, Some(7), true),
            r#"{"id":"cus_1","created":5,"amount":1.50,"updated":7,"is_deleted":true}"#
        );
        let product = r#"{"id":"prod_1","created":5,"updated":9}"#;
        let head: Head = serde_json::from_str(product).unwrap();
        assert_eq!(decorate(product, &head, Some(7), false), product);
    }
}
