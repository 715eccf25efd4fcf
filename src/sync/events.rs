//! The one events pass of a sync: `/v1/events` read once for every stream whose changes
//! come as events in the account's own list (`types[]` in groups of at most 20, a day
//! per window, windows read at once and emitted in order), each event's object handed
//! to its stream, or to its parent's children. A connected account's own events are
//! `connected_events.rs`'s, which reads and routes their pages with this file's code.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::record::{decorate, head_of, scan};
use super::state::StreamState;
use super::{Ctx, PAGE_LIMIT, children};
use crate::error::{Error, FailureType};
use crate::streams::{Cursor, StreamDef};
use crate::stripe::{self, PageRef};

/// Events windows are at most a day, so an events pass checkpoints often.
const EVENTS_WINDOW_SECS: i64 = 86_400;
/// Stripe accepts at most this many names in `types[]`.
pub(super) const MAX_EVENT_TYPES: usize = 20;

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

/// Jobs run as tasks of their own, their outputs taken in job order.
///
/// Why tasks and not a `buffered` stream: the caller awaits the channel to the sink
/// between outputs. Tokio's channel hands its free slots to waiters in arrival order; a
/// job inside a stream that is not being polled would keep the slots it was handed and
/// never send, and the caller behind it would wait for ever once the sink is slower than
/// Stripe. Tasks are polled by the runtime whatever the caller awaits.
struct InOrder<T> {
    tasks: tokio::task::JoinSet<(usize, Result<T, Error>)>,
    /// Jobs not started yet: at most `limit` run at once.
    waiting: std::vec::IntoIter<BoxFuture<'static, Result<T, Error>>>,
    started: usize,
    limit: usize,
    ready: std::collections::BTreeMap<usize, T>,
    next: usize,
}

impl<T: Send + 'static> InOrder<T> {
    fn spawn_all(
        jobs: impl IntoIterator<Item = BoxFuture<'static, Result<T, Error>>>,
        limit: usize,
    ) -> Self {
        let mut this = InOrder {
            tasks: tokio::task::JoinSet::new(),
            waiting: jobs.into_iter().collect::<Vec<_>>().into_iter(),
            started: 0,
            limit: limit.max(1),
            ready: std::collections::BTreeMap::new(),
            next: 0,
        };
        this.start_more();
        this
    }

    fn start_more(&mut self) {
        while self.tasks.len() < self.limit {
            let Some(job) = self.waiting.next() else {
                return;
            };
            let index = self.started;
            self.started += 1;
            self.tasks.spawn(async move { (index, job.await) });
        }
    }

    /// The next job's output, in job order; `None` after the last. The first error
    /// ends it (dropping `InOrder` aborts the jobs still running).
    async fn next(&mut self) -> Result<Option<T>, Error> {
        loop {
            if let Some(output) = self.ready.remove(&self.next) {
                self.next += 1;
                return Ok(Some(output));
            }
            match self.tasks.join_next().await {
                None => return Ok(None),
                Some(Ok((index, Ok(output)))) => {
                    self.ready.insert(index, output);
                    self.start_more();
                }
                Some(Ok((_, Err(err)))) => return Err(err),
                Some(Err(err)) => {
                    return Err(Error::StreamsFailed {
                        message: format!("a read task failed: {err}"),
                        failure_type: FailureType::SystemError,
                    });
                }
            }
        }
    }
}

/// A stream whose changes come from the events pass.
#[derive(Clone)]
pub(super) struct EventsStream {
    pub(super) def: &'static StreamDef,
    pub(super) cursor: i64,
    /// Events before this are not for this stream (cursor minus lookback).
    pub(super) from: i64,
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
pub(super) async fn read_events(ctx: &Arc<Ctx>, streams: &[EventsStream]) -> Result<(), Error> {
    let from = earliest(ctx, streams);
    let types = pass_types(ctx, streams);
    let shared: Arc<Vec<EventsStream>> = Arc::new(streams.to_vec());
    let mut done = InOrder::spawn_all(
        windows(from, ctx.events_until, EVENTS_WINDOW_SECS)
            .into_iter()
            .map(|(gte, lt)| {
                let (ctx, streams, types) = (ctx.clone(), shared.clone(), types.clone());
                async move {
                    let chunks = types.chunks(MAX_EVENT_TYPES).map(|chunk| {
                        read_events_range(&ctx, &ctx.client, &streams, chunk, gte, lt)
                    });
                    futures::future::try_join_all(chunks).await?;
                    Ok(lt)
                }
                .boxed()
            }),
        ctx.split_budget,
    );
    while let Some(end) = done.next().await? {
        for stream in streams.iter().filter(|s| end > s.cursor) {
            ctx.state(
                stream.def.name,
                StreamState {
                    cursor: end,
                    ..StreamState::default()
                }
                .to_json(Cursor::Updated),
            )
            .await?;
        }
    }
    for stream in streams.iter().filter(|s| s.cursor >= ctx.events_until) {
        // Nothing new: say the state again so the platform keeps it.
        ctx.state(
            stream.def.name,
            StreamState {
                cursor: stream.cursor,
                ..StreamState::default()
            }
            .to_json(Cursor::Updated),
        )
        .await?;
    }
    Ok(())
}

/// Where a read of `streams`' events starts: the earliest of their `from`.
pub(super) fn earliest(ctx: &Ctx, streams: &[EventsStream]) -> i64 {
    streams
        .iter()
        .map(|s| s.from)
        .min()
        .unwrap_or(ctx.events_until)
}

/// The event types a read of `streams`' events asks for: theirs and their selected
/// children's own, each once (streams of different objects share some: a connected
/// account's bank accounts and cards, `account.external_account.*`).
pub(super) fn pass_types(ctx: &Ctx, streams: &[EventsStream]) -> Vec<&'static str> {
    let mut types: Vec<&'static str> = Vec::new();
    for kind in streams
        .iter()
        .flat_map(|s| s.def.event_types.iter().copied())
        .chain(
            streams
                .iter()
                .flat_map(|s| children::own_event_types(&ctx.families, s.def.name)),
        )
    {
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    types
}

/// The states of `streams` once their events up to `end` are out: the new cursor where
/// it moved, the saved one said again where nothing was new (so the platform keeps it).
pub(super) async fn send_states(
    ctx: &Ctx,
    streams: &[EventsStream],
    end: i64,
) -> Result<(), Error> {
    for stream in streams {
        ctx.state(
            stream.def.name,
            StreamState {
                cursor: end.max(stream.cursor),
                ..StreamState::default()
            }
            .to_json(Cursor::Updated),
        )
        .await?;
    }
    Ok(())
}

/// The events of `types` in `[gte, lt)` from `client`'s events list (the account's own,
/// or a connected account's under `Stripe-Account`), each routed as the pass routes it:
/// to the stream of its type and object, or to a child's own stream. Children of a
/// changed parent are read with `ctx`'s client, as every child read is.
pub(super) async fn read_events_range(
    ctx: &Ctx,
    client: &stripe::Client,
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
        let permit = ctx.emit.page_permit().await?;
        let page = client.list("/v1/events", &query).await?;
        let PageRef { data, has_more, .. } = page.parse()?;
        let mut routed: Vec<Vec<String>> = vec![Vec::new(); streams.len()];
        let mut own: Vec<(&'static str, String)> = Vec::new();
        let mut last_id = None;
        for raw in data {
            let event: EventHead = serde_json::from_str(raw).map_err(|err| {
                Error::Stripe(stripe::Error::InvalidResponse {
                    path: "/v1/events".to_owned(),
                    message: format!("an event has no type, created or data.object: {err}"),
                })
            })?;
            let scanned = scan("events", event.data.object.get())?;
            let object = head_of("events", &scanned)?;
            last_id = Some(event.id);
            let target = streams.iter().position(|s| {
                s.def.event_types.contains(&event.kind.as_str())
                    && object.object == Some(s.def.object)
                    && event.created >= s.from
            });
            if let Some(index) = target {
                routed[index].push(decorate(
                    event.data.object.get(),
                    object.updated,
                    Some(event.created),
                    StreamDef::is_deletion(&event.kind),
                    ctx.account.as_deref(),
                ));
            } else if let Some(child) =
                streams
                    .iter()
                    .filter(|s| event.created >= s.from)
                    .find_map(|s| {
                        children::own_event_stream(
                            &ctx.families,
                            s.def.name,
                            &event.kind,
                            object.object,
                        )
                    })
            {
                // A child's own event (`children.rs`): the child as it is now.
                own.push((
                    child.name,
                    decorate(
                        event.data.object.get(),
                        object.updated,
                        Some(event.created),
                        StreamDef::is_deletion(&event.kind),
                        ctx.account.as_deref(),
                    ),
                ));
            }
        }
        for (stream, records) in streams.iter().zip(routed) {
            ctx.records(stream.def.name, records).await?;
        }
        for (child, record) in own {
            ctx.emit.records(child, vec![record]).await?;
        }
        drop(permit);
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
}
