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
//!   stream of its object (for the streams whose events are each connected account's
//!   own, the row's `events_in`: one read of each account's events instead); a cursor
//!   older than Stripe's 30-day event window falls back to a full read, said in a LOG
//!   line.
//!
//! This file owns the plan per stream and the run per account; each other concern has
//! its file:
//! - `plan.rs`: list streams' ranges, read concurrently, split where the pages are, one
//!   budget of ranges shared across streams;
//! - `endpoints.rs`: endpoints without a `created` filter, walked newest first;
//! - `events.rs`: the one events pass of a sync;
//! - `connected_events.rs`: the streams whose events are each connected account's own
//!   (a connected account, its persons and external accounts): one events read per
//!   account, with `Stripe-Account`;
//! - `children.rs`: child streams, read through their parent's pages and events;
//! - `checkpoint.rs` and `state.rs`: what a STATE claims (only what is complete), and
//!   the state a sync starts from;
//! - `record.rs`: what is read of an object, and the record written for it;
//! - `emit.rs`: the output channel (records, STATEs, messages);
//! - `progress.rs`: what a person or Airbyte is shown while it runs.
//!
//! All requests go through one [`Client`], which caps requests in flight and keeps to
//! the account's and each endpoint's rate limit.

pub mod checkpoint;
mod children;
mod connected_events;
mod emit;
mod endpoints;
mod events;
mod first_pages;
mod plan;
mod progress;
mod record;
pub mod state;

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use futures::{FutureExt, future::BoxFuture};
use tokio::sync::mpsc;

use std::collections::HashMap;

use crate::config::{Accounts, Config};
use crate::error::{Error, FailureType};
use crate::protocol::AirbyteMessage;
use crate::protocol::airbyte::StreamStatus;
use crate::sinks::Output;
use crate::streams::catalog::{Selected, SyncMode};
use crate::streams::{Cursor, EventsIn, StreamDef};
use crate::stripe::{self, Client, Page, PageRef};
use checkpoint::{Checkpoint, Kind};
use emit::Emitter;
use events::{EventsStream, read_events};
use record::{decorate, head_of};
use state::{InputState, StreamState};

/// Stripe keeps events for 30 days.
pub const EVENTS_RETENTION_SECS: i64 = 30 * 86_400;
/// A cursor this close to the edge of the event window is treated as outside it: events
/// at the edge may expire while the sync reads.
const EVENTS_MARGIN_SECS: i64 = 3_600;
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
    mode: SyncMode,
}

/// A validated read: config, streams and their saved states. Built before any request.
#[derive(Debug)]
pub struct ReadPlan {
    config: Config,
    streams: Vec<PlannedStream>,
    /// Saved states by stream and account (`None` when the sync reads one account).
    states: HashMap<(&'static str, Option<String>), StreamState>,
    /// What the sink derives for the selected commerce streams (their raw sources are
    /// in `streams`).
    commerce: Option<crate::commerce::Derive>,
    /// The saved state of every stream, for the progress of a full refresh under way.
    input: InputState,
    /// `--shard`: only the connected accounts of this shard are read.
    shard: Option<crate::shard::Shard>,
}

/// The outcome of each stream of one account.
type StreamResults = Vec<(&'static str, Result<(), Error>)>;

impl ReadPlan {
    /// # Errors
    /// A state `config_error` naming the stream whose state is malformed.
    pub fn build(
        config: Config,
        selected: Vec<Selected>,
        input: &InputState,
    ) -> Result<ReadPlan, Error> {
        let crate::commerce::Expanded {
            selected,
            state: translated,
            derive: commerce,
        } = crate::commerce::expand(selected, input, config.accounts.is_multi())?;
        let input = translated.as_ref().unwrap_or(input);
        let mut states = HashMap::new();
        for Selected { def, mode } in &selected {
            let (SyncMode::Incremental, Some(cursor)) = (mode, def.cursor) else {
                continue;
            };
            if config.accounts.is_multi() {
                for (account, state) in input.stream_accounts(def.name, cursor)? {
                    states.insert((def.name, Some(account)), state);
                }
            } else if let Some(state) = input.stream(def.name, cursor)? {
                states.insert((def.name, None), state);
            }
        }
        let streams: Vec<PlannedStream> = selected
            .into_iter()
            .map(|Selected { def, mode }| PlannedStream { def, mode })
            .collect();
        // A full refresh under way (resumable full refresh): malformed progress is an
        // error now, before any request.
        for stream in &streams {
            let PlannedStream { def, mode } = stream;
            if *mode == SyncMode::FullRefresh || def.cursor.is_none() {
                input.full_refresh(def.name, None).map(|_| ())?;
            }
        }
        Ok(ReadPlan {
            config,
            streams,
            states,
            commerce,
            input: input.clone(),
            shard: None,
        })
    }

    /// What the sink must derive for the selected commerce streams, once.
    pub fn take_commerce(&mut self) -> Option<crate::commerce::Derive> {
        self.commerce.take()
    }

    /// Reads only the connected accounts of `shard` (see [`crate::shard`]).
    pub fn with_shard(mut self, shard: Option<crate::shard::Shard>) -> ReadPlan {
        self.shard = shard;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides how a stream is read, given its saved state and the server's clock.
    fn plan(&self, stream: &PlannedStream, state: Option<&StreamState>, now: i64) -> Plan {
        let config = &self.config;
        let (SyncMode::Incremental, Some(cursor)) = (stream.mode, stream.def.cursor) else {
            return if stream.def.single {
                Plan::Single
            } else {
                Plan::Full
            };
        };
        match cursor {
            Cursor::Created => {
                let from = state.map_or(config.start_date, |s| {
                    if s.cursor >= now {
                        // A cursor at or past the clock: nothing to read, and the state
                        // stays where it is (not moved back by the lookback).
                        s.cursor
                    } else {
                        (s.cursor - config.lookback_secs).max(config.start_date)
                    }
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
                    ..
                }) => Plan::Backfill {
                    from: *from,
                    events_from: Some(*cursor),
                    reason: None,
                },
                Some(&StreamState { cursor, .. })
                    if cursor < now - EVENTS_RETENTION_SECS + EVENTS_MARGIN_SECS =>
                {
                    Plan::Backfill {
                        from: config.start_date,
                        events_from: None,
                        reason: Some("is older than the 30 days Stripe keeps events"),
                    }
                }
                Some(&StreamState { cursor, .. }) => Plan::Events {
                    cursor,
                    from: (cursor - config.lookback_secs)
                        .max(now - EVENTS_RETENTION_SECS + EVENTS_MARGIN_SECS),
                },
            },
        }
    }

    /// Reads every stream of every account, sending records, states and messages to
    /// `out`.
    ///
    /// A stream that fails (a 403, retries used up), or every stream of a connected
    /// account Stripe refuses, is reported with a TRACE error naming the stream and
    /// the account, and ends INCOMPLETE; the others go on.
    ///
    /// # Errors
    /// A key Stripe rejects, or (for a single account) an inaccessible account, ends
    /// the read at once; failed streams end it with [`Error::StreamsFailed`] after the
    /// others finished.
    pub async fn run(self, client: Client, out: mpsc::Sender<Output>) -> Result<(), Error> {
        let multi = self.config.accounts.is_multi();
        let emit = Emitter::new(
            out,
            multi.then(|| self.saved_states_by_account()),
            self.config.num_workers,
        );
        for stream in &self.streams {
            emit.progress.start(stream.def.name, stream.def.path);
            emit.message(AirbyteMessage::stream_status(
                stream.def.name,
                StreamStatus::Started,
            ))
            .await?;
        }
        let accounts: Vec<Option<String>> = match &self.config.accounts {
            Accounts::One(_) => vec![None],
            Accounts::List(ids) => ids.iter().cloned().map(Some).collect(),
            Accounts::All => {
                let ids = list_connected_accounts(&client).await?;
                emit.message(AirbyteMessage::log(
                    "INFO",
                    format!(
                        "the platform has {} connected accounts; reading each",
                        ids.len()
                    ),
                ))
                .await?;
                ids.into_iter().map(Some).collect()
            }
        };
        let accounts: Vec<Option<String>> = match self.shard {
            Some(shard) => accounts
                .into_iter()
                .filter(|a| a.as_deref().is_none_or(|id| shard.includes(id)))
                .collect(),
            None => accounts,
        };
        // From here on nothing returns before the reporter is stopped: it holds the output
        // open (and a dropped read aborts it).
        let (stop_reporter, stopped) = tokio::sync::oneshot::channel();
        let mut reporter = {
            let (emit, client) = (emit.clone(), client.clone());
            progress::AbortOnDrop(tokio::spawn(progress::report(
                emit.progress.clone(),
                client,
                progress::Display::for_stderr(),
                stopped,
                move |message| {
                    let emit = emit.clone();
                    async move { emit.message(message).await }
                },
            )))
        };
        let this = &self;
        let emit_ref = &emit;
        let client_ref = &client;
        let mut by_account: Vec<(Option<String>, Result<StreamResults, Error>)> =
            stream::iter(accounts)
                .map(|account| async move {
                    let result = match &account {
                        None => this.run_account(client_ref.clone(), None, emit_ref).await,
                        Some(id) => match client_ref.for_account(Some(id.clone())) {
                            Ok(client) => this.run_account(client, Some(id), emit_ref).await,
                            Err(err) => Err(err.into()),
                        },
                    };
                    (account, result)
                })
                .buffer_unordered(self.config.num_workers.max(1))
                .collect()
                .await;
        by_account.sort_by(|a, b| a.0.cmp(&b.0));
        let flushed = emit.flush_states().await;
        // The reporter's summary goes out before the final stream statuses.
        stop_reporter.send(()).ok();
        match (&mut reporter.0).await {
            Ok(result) => result?,
            Err(err) => tracing::warn!("the progress reporter failed: {err}"),
        }
        flushed?;

        let mut failures: Vec<(&'static str, Option<String>, Error)> = Vec::new();
        for (account, result) in by_account {
            match result {
                Ok(streams) => {
                    for (name, result) in streams {
                        if let Err(err) = result {
                            failures.push((name, account.clone(), err));
                        }
                    }
                }
                // The key itself is refused, or the one account read is: nothing
                // else can succeed.
                Err(err @ Error::Stripe(stripe::Error::Unauthorized { .. })) => return Err(err),
                Err(err) if account.is_none() => return Err(err),
                Err(err) => {
                    for stream in &self.streams {
                        failures.push((stream.def.name, account.clone(), copy_error(&err)));
                    }
                }
            }
        }
        let mut failure_type = FailureType::ConfigError;
        for (name, account, err) in &failures {
            if let Error::Output(err) = err {
                return Err(Error::Output(std::io::Error::new(
                    err.kind(),
                    err.to_string(),
                )));
            }
            if err.failure_type() != FailureType::ConfigError {
                failure_type = err.failure_type();
            }
            let whose = account
                .as_deref()
                .map_or(String::new(), |a| format!(" for account {a}"));
            emit.message(AirbyteMessage::error(
                format!("stream {name} failed{whose}: {err}"),
                None,
                err.failure_type(),
                Some(name),
            ))
            .await?;
        }
        let mut failed = Vec::new();
        for stream in &self.streams {
            let name = stream.def.name;
            let status = if failures.iter().any(|(n, ..)| *n == name) {
                failed.push(name);
                StreamStatus::Incomplete
            } else {
                StreamStatus::Complete
            };
            emit.message(AirbyteMessage::stream_status(name, status))
                .await?;
        }
        if failed.is_empty() {
            return Ok(());
        }
        let mut accounts: Vec<&str> = failures
            .iter()
            .filter_map(|(_, a, _)| a.as_deref())
            .collect();
        accounts.dedup();
        Err(Error::StreamsFailed {
            message: format!(
                "{} of {} streams did not sync completely: {}{}; everything else completed",
                failed.len(),
                self.streams.len(),
                failed.join(", "),
                if accounts.is_empty() {
                    String::new()
                } else {
                    format!(" (accounts {})", accounts.join(", "))
                }
            ),
            failure_type,
        })
    }

    /// Every saved per-account state, as JSON, by stream: kept in the output even for
    /// accounts this sync does not read, so removing an account loses nobody's state.
    fn saved_states_by_account(
        &self,
    ) -> HashMap<&'static str, serde_json::Map<String, serde_json::Value>> {
        let mut out: HashMap<&'static str, serde_json::Map<String, serde_json::Value>> =
            HashMap::new();
        for ((name, account), state) in &self.states {
            let (Some(account), Some(cursor)) =
                (account, crate::streams::find(name).and_then(|d| d.cursor))
            else {
                continue;
            };
            out.entry(*name)
                .or_default()
                .insert(account.clone(), state.to_json(cursor));
        }
        out
    }

    /// Reads every stream of one account.
    ///
    /// # Errors
    /// When Stripe refuses the key or the account: nothing of it can be read.
    async fn run_account(
        &self,
        client: Client,
        account: Option<&str>,
        emit: &Emitter,
    ) -> Result<StreamResults, Error> {
        // A group per sync mode, read at once: a family shares one read, in one mode.
        // Child streams are read through their parent: one list of it feeds them all.
        let groups_streams: Vec<_> = children::by_mode(&self.streams)
            .iter()
            .map(|group| children::fold(group))
            .collect();
        // The first page of each fresh full refresh goes with the account's request.
        let first_pages = Arc::new(first_pages::FirstPages::default());
        for (streams, families) in &groups_streams {
            for stream in streams {
                let fresh = || {
                    children::shared_done(stream.def.name, families, |n| {
                        self.input.full_refresh(n, account).map_err(Error::from)
                    })
                    .is_ok_and(|done| done.is_empty())
                };
                if stream.def.created_filter
                    && matches!(self.plan(stream, None, 0), Plan::Full)
                    && fresh()
                {
                    let query =
                        page_query(stream.def, self.config.start_date, None, None, PAGE_LIMIT);
                    first_pages.start(
                        endpoints::client_for(&client, stream.def),
                        stream.def,
                        query,
                    );
                }
            }
        }
        // The first request checks the key and the account, and gives the server's
        // clock: every window ends there, so the local clock's skew does not matter.
        let profile = match client.get_object("/v1/account").await {
            Ok(profile) => Ok(profile),
            Err(
                err @ (stripe::Error::PermissionDenied { .. } | stripe::Error::Exhausted { .. }),
            ) => Err(err),
            Err(err) => return Err(err.into()),
        };
        let now = client
            .server_time()
            .unwrap_or_else(|| crate::protocol::now_ms() / 1000);
        // The ranges of every list stream, across the groups.
        let budget = Arc::new(plan::Budget::new(client.rate_limit()));
        let mut groups = Vec::new();
        for (streams, families) in groups_streams {
            let ctx = Arc::new(Ctx {
                families: Arc::new(families),
                client: client.clone(),
                emit: emit.clone(),
                account: account.map(str::to_owned),
                slice_secs: self.config.slice_secs,
                start_date: self.config.start_date,
                now,
                events_until: now - self.config.event_settle_secs,
                split_budget: self.config.num_workers * 2,
                budget: budget.clone(),
                first_pages: first_pages.clone(),
            });
            let mut jobs: Vec<BoxFuture<'static, StreamResults>> = Vec::new();
            let mut events_streams = Vec::new();
            for stream in &streams {
                let name = stream.def.name;
                let state = children::shared_state(name, &ctx.families, |n| {
                    self.states.get(&(n, account.map(str::to_owned)))
                });
                let plan = self.plan(stream, state, now);
                tracing::info!(stream = name, account, ?plan, "planned");
                match plan {
                    Plan::Events { cursor, from } => {
                        // Its requests are the events pass's.
                        for name in children::selected_names(&ctx.families, name) {
                            emit.progress.start(name, "/v1/events");
                        }
                        events_streams.push(EventsStream {
                            def: stream.def,
                            cursor,
                            from,
                        })
                    }
                    Plan::Single if stream.def.path != "/v1/account" => {
                        // Another single object (the balance, for company info).
                        let (ctx, def) = (ctx.clone(), stream.def);
                        jobs.push(
                            async move {
                                let result = read_single(&ctx, def).await;
                                ctx.finish(def.name);
                                vec![(def.name, result)]
                            }
                            .boxed(),
                        );
                    }
                    Plan::Single => {
                        let result = match &profile {
                            Ok(profile) => {
                                let record = match &ctx.account {
                                    Some(account) => {
                                        decorate(profile.get(), false, None, false, Some(account))
                                    }
                                    None => profile.get().to_owned(),
                                };
                                emit.records(name, vec![record]).await
                            }
                            Err(err) => Err(clone_stripe_error(err)),
                        };
                        ctx.finish(name);
                        jobs.push(futures::future::ready(vec![(name, result)]).boxed());
                    }
                    plan => {
                        if let Plan::Backfill {
                            reason: Some(reason),
                            ..
                        } = plan
                        {
                            let cursor = state.map_or(0, |s| s.cursor);
                            let whose =
                                account.map_or(String::new(), |a| format!(" of account {a}"));
                            emit.message(AirbyteMessage::log(
                            "WARN",
                            format!(
                                "stream {name}{whose}: the saved cursor {} {reason}; reading the stream in full from start_date so no change is lost",
                                format_time(cursor)
                            ),
                        ))
                        .await?;
                        }
                        let ctx = ctx.clone();
                        let def = stream.def;
                        // The ranges a resumed read has done already.
                        let done = match plan {
                            Plan::Full => children::shared_done(name, &ctx.families, |n| {
                                self.input.full_refresh(n, account).map_err(Error::from)
                            })?,
                            _ => state.map(|s| s.created_done.clone()).unwrap_or_default(),
                        };
                        jobs.push(
                            async move {
                                let result = read_list(&ctx, def, plan, done).await;
                                let result = endpoints::unless_not_enabled(&ctx, def, result).await;
                                ctx.finish(def.name);
                                vec![(def.name, result)]
                            }
                            .boxed(),
                        );
                    }
                }
            }
            // A connected account's own events are in its events list, not this one's
            // (`connected_events.rs`).
            let (connected_streams, events_streams): (Vec<_>, Vec<_>) = events_streams
                .into_iter()
                .partition(|s| s.def.events_in == EventsIn::ConnectedAccounts);
            if !connected_streams.is_empty() {
                let ctx = ctx.clone();
                jobs.push(
                    async move {
                        let result =
                            connected_events::read_connected_events(&ctx, &connected_streams).await;
                        let def = connected_streams[0].def;
                        let result = endpoints::unless_not_enabled(&ctx, def, result).await;
                        ctx.finish_shared(&connected_streams, &result)
                    }
                    .boxed(),
                );
            }
            if !events_streams.is_empty() {
                let ctx = ctx.clone();
                jobs.push(
                    async move {
                        let result = read_events(&ctx, &events_streams).await;
                        ctx.finish_shared(&events_streams, &result)
                    }
                    .boxed(),
                );
            }
            let families = ctx.families.clone();
            groups.push(async move {
                let results = futures::future::join_all(jobs)
                    .await
                    .into_iter()
                    .flatten()
                    .collect();
                children::spread(results, &families)
            });
        }
        Ok(futures::future::join_all(groups)
            .await
            .into_iter()
            .flatten()
            .collect())
    }
}

/// A single-object endpoint other than `/v1/account`, as one record.
async fn read_single(ctx: &Ctx, def: &'static StreamDef) -> Result<(), Error> {
    let object = ctx.client.get_object(def.path).await?;
    let record = decorate(object.get(), false, None, false, ctx.account.as_deref());
    ctx.emit.records(def.name, vec![record]).await
}

/// Every account connected to the platform, from `/v1/accounts`.
pub(crate) async fn list_connected_accounts(client: &Client) -> Result<Vec<String>, Error> {
    walk_connected_accounts(client, |_, _| {}).await
}

/// Walks `/v1/accounts` (newest first): every connected account's id, in order, and
/// each account's text and head handed to `each` on the way.
async fn walk_connected_accounts(
    client: &Client,
    mut each: impl FnMut(&str, &record::Head<'_>),
) -> Result<Vec<String>, Error> {
    let mut ids = Vec::new();
    let mut starting_after: Option<String> = None;
    loop {
        let mut query = vec![("limit", PAGE_LIMIT.to_owned())];
        if let Some(after) = &starting_after {
            query.push(("starting_after", after.clone()));
        }
        let page = client.list("/v1/accounts", &query).await?;
        let PageRef {
            data,
            heads,
            has_more,
        } = page.parse()?;
        for (raw, h) in data.iter().zip(heads) {
            let head = head_of("accounts", h)?;
            each(raw, &head);
            ids.push(head.id.to_owned());
        }
        match (ids.last(), has_more) {
            (Some(last), true) => starting_after = Some(last.clone()),
            _ => return Ok(ids),
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
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// What every read task of one account shares.
struct Ctx {
    /// The selected child streams, by parent (`children.rs`).
    families: Arc<children::Families>,
    client: Client,
    emit: Emitter,
    /// The connected account, when the sync reads several (records carry it).
    account: Option<String>,
    slice_secs: i64,
    start_date: i64,
    /// The server's clock at the start of the sync (unix seconds).
    now: i64,
    /// Where reads of `/v1/events` end: `now` less `event_settle_secs`, because an
    /// event can become listable after its `created` time (DESIGN.md, Stripe facts).
    events_until: i64,
    /// Event windows that may be read at once.
    split_budget: usize,
    /// The ranges of every list stream being read, shared by their planners (and by
    /// the groups of one account's read).
    budget: Arc<plan::Budget>,
    /// First pages asked for with the account's first request (`first_pages.rs`).
    first_pages: Arc<first_pages::FirstPages>,
}

impl Ctx {
    /// Sends a stream's state; a parent's is its children's too (`children.rs`).
    async fn state(&self, stream: &'static str, state: serde_json::Value) -> Result<(), Error> {
        for name in children::selected_names(&self.families, stream) {
            self.emit
                .state(name, self.account.as_deref(), state.clone())
                .await?;
        }
        Ok(())
    }

    /// The progress of a stream's read and of its children (`progress.rs`): `range_secs`
    /// of `created` to read, `left_secs` of them and `pages` (estimated) left.
    fn progress(&self, stream: &'static str, range_secs: i64, left_secs: i64, pages: i64) {
        for name in children::selected_names(&self.families, stream) {
            self.emit.progress.plan(name, range_secs, left_secs, pages);
        }
    }

    /// A stream's read and its children's are done.
    fn finish(&self, stream: &'static str) {
        for name in children::selected_names(&self.families, stream) {
            self.emit.progress.finish(name);
        }
    }

    /// The streams one shared read served (an events pass) are done, each with its result.
    fn finish_shared(&self, streams: &[EventsStream], result: &Result<(), Error>) -> StreamResults {
        streams
            .iter()
            .map(|s| {
                self.finish(s.def.name);
                (s.def.name, result.as_ref().map(|_| ()).map_err(copy_error))
            })
            .collect()
    }

    /// Sends a page of a stream's records; a parent's feed its children first
    /// (`children.rs`), and go out only when the parent is selected itself.
    async fn records(&self, stream: &'static str, records: Vec<String>) -> Result<(), Error> {
        if let Some(family) = self.families.get(stream) {
            children::emit(self, family, &records).await?;
            if !family.emit_parent {
                return Ok(());
            }
        }
        self.emit.records(stream, records).await
    }
}

/// Reads a list stream per its plan, with its STATEs. `done`: the ranges of `created` a
/// resumed read has read already (from its saved state); only the rest is read.
async fn read_list(
    ctx: &Arc<Ctx>,
    def: &'static StreamDef,
    plan: Plan,
    done: Vec<(i64, i64)>,
) -> Result<(), Error> {
    let (kind, from, to) = match plan {
        Plan::Full => (Kind::Full, ctx.start_date, ctx.now),
        Plan::Created { from } => {
            // The events stream stays behind Stripe's clock like the events pass: an
            // event can become listable a little after its `created`.
            let to = if def.path == "/v1/events" {
                ctx.events_until
            } else {
                ctx.now
            };
            (Kind::Created, from, to)
        }
        Plan::Backfill {
            from, events_from, ..
        } => {
            let events_from = events_from.unwrap_or(ctx.now);
            (Kind::Backfill { events_from }, from, events_from)
        }
        Plan::Single | Plan::Events { .. } => return Ok(()),
    };
    let mut checkpoint = Checkpoint::new(kind, from, to, done);
    let todo = checkpoint.todo();
    if todo.is_empty() {
        // Nothing to read: the state stays where it was, said again.
        return ctx.state(def.name, checkpoint.state()).await;
    }
    // A full refresh also reads what was created after the sync's clock: its newest range
    // has no upper bound (when it reaches the clock: a range above a resumed gap is
    // complete). The newest gap first: its first page is the stream's newest.
    let open_top = kind == Kind::Full;
    let ranges = todo
        .into_iter()
        .rev()
        .map(|(gte, lt)| (gte, (!(open_top && lt >= to)).then_some(lt), lt));
    let updated = def.cursor == Some(Cursor::Updated);
    if def.created_filter {
        let ranges = ranges
            .map(|(gte, lt, top)| plan::Range::new(gte, lt, top))
            .collect();
        plan::read_ranges(ctx, def, updated, ranges, &mut checkpoint, ctx.slice_secs).await?;
    } else {
        // No `created` filter on this endpoint: one newest-first walk per gap
        // (`endpoints.rs`), its STATE once the walk is done.
        for (gte, lt, top) in ranges {
            endpoints::read_unfiltered(ctx, def, updated, gte, lt).await?;
            checkpoint.done(gte, top);
            plan::send_state(ctx, def, &checkpoint).await?;
        }
    }
    if kind == Kind::Full {
        // Airbyte's resumable full refresh marker: the next full refresh starts over.
        ctx.state(def.name, checkpoint.state()).await?;
    }
    Ok(())
}

/// One page of `def`'s list endpoint in `[gte, lt)`.
async fn list_page(
    ctx: &Ctx,
    def: &'static StreamDef,
    gte: i64,
    lt: Option<i64>,
    starting_after: Option<&str>,
    limit: &str,
) -> Result<Page, Error> {
    let query = page_query(def, gte, lt, starting_after, limit);
    if let Some(page) = ctx.first_pages.take(def, &query).await {
        return Ok(page);
    }
    let client = endpoints::client_for(&ctx.client, def);
    Ok(client.list(def.path, &query).await?)
}

/// The query of a page of `def`'s list: `created` in `[gte, lt)`, after an id.
fn page_query(
    def: &'static StreamDef,
    gte: i64,
    lt: Option<i64>,
    starting_after: Option<&str>,
    limit: &str,
) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = vec![
        ("limit", limit.to_owned()),
        ("created[gte]", gte.to_string()),
    ];
    if let Some(lt) = lt {
        query.push(("created[lt]", lt.to_string()));
    }
    if let Some(after) = starting_after {
        query.push(("starting_after", after.to_owned()));
    }
    query.extend(def.query.iter().map(|(k, v)| (*k, (*v).to_owned())));
    query
}
