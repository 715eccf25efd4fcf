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
//! List streams are read by the planner (`plan.rs`): ranges read concurrently, split
//! where the pages are, one budget of ranges shared across streams; a STATE only claims
//! what is complete (`checkpoint.rs`). All requests go through one [`Client`], which caps
//! requests in flight and keeps to the account's and each endpoint's rate limit.

pub mod checkpoint;
mod children;
mod endpoints;
mod plan;
mod progress;
pub mod state;

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use futures::{FutureExt, future::BoxFuture};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use std::collections::HashMap;

use crate::config::{Accounts, Config};
use crate::error::{Error, FailureType};
use crate::protocol::AirbyteMessage;
use crate::protocol::airbyte::StreamStatus;
use crate::sinks::Output;
use crate::streams::catalog::{Selected, SyncMode};
use crate::streams::{Cursor, StreamDef};
use crate::stripe::{self, Client, Page, PageRef};
use checkpoint::{Checkpoint, Kind};
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
        let budget = Arc::new(plan::Budget::new());
        let mut groups = Vec::new();
        // A group per sync mode, read at once: a family shares one read, in one mode.
        for group in children::by_mode(&self.streams) {
            // Child streams are read through their parent: one list of it feeds them all.
            let (streams, families) = children::fold(&group);
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
            if !events_streams.is_empty() {
                let ctx = ctx.clone();
                jobs.push(
                    async move {
                        let result = read_events(&ctx, &events_streams).await;
                        for stream in &events_streams {
                            ctx.finish(stream.def.name);
                        }
                        events_streams
                            .iter()
                            .map(|s| (s.def.name, result.as_ref().map(|_| ()).map_err(copy_error)))
                            .collect()
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
    let mut ids = Vec::new();
    let mut starting_after: Option<String> = None;
    loop {
        let mut query = vec![("limit", PAGE_LIMIT.to_owned())];
        if let Some(after) = &starting_after {
            query.push(("starting_after", after.clone()));
        }
        let page = client.list("/v1/accounts", &query).await?;
        let PageRef {
            heads, has_more, ..
        } = page.parse()?;
        for h in heads {
            ids.push(head_of("accounts", h)?.id);
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

/// The sending half of the output channel.
#[derive(Clone)]
struct Emitter {
    out: mpsc::Sender<Output>,
    /// With several accounts: the latest state of every account, by stream. A STATE
    /// carries all of them; the lock is held until it is sent so STATEs never go out of
    /// order.
    by_account: Option<Arc<tokio::sync::Mutex<AccountStates>>>,
    /// Pages between request and hand-over to the sink, across all tasks: a page is
    /// held from its request until its records are in the channel, so memory stays
    /// bounded by this and the channel, whatever the data size and the splitting.
    pages: Arc<tokio::sync::Semaphore>,
    /// What a person or Airbyte is shown of the read (`progress.rs`).
    progress: Arc<progress::Progress>,
}

/// The per-account states of every stream, and when each stream's STATE last went out.
///
/// A STATE of a stream carries every account's state, so sending one per window would
/// cost O(accounts) each time, O(accounts²) per sync. At most one goes out per stream per
/// [`ACCOUNT_STATE_INTERVAL`]; the others are held (marked dirty) and sent by
/// [`Emitter::flush_states`] at the end. Holding a state back is always safe: it only
/// covers records that were already sent.
struct AccountStates {
    states: HashMap<&'static str, serde_json::Map<String, serde_json::Value>>,
    sent: HashMap<&'static str, std::time::Instant>,
    dirty: std::collections::BTreeSet<&'static str>,
}

/// The shortest time between two STATEs of a stream that carries many accounts.
const ACCOUNT_STATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Emitter {
    fn new(
        out: mpsc::Sender<Output>,
        by_account: Option<HashMap<&'static str, serde_json::Map<String, serde_json::Value>>>,
        pages_in_memory: usize,
    ) -> Emitter {
        Emitter {
            out,
            by_account: by_account.map(|states| {
                Arc::new(tokio::sync::Mutex::new(AccountStates {
                    states,
                    sent: HashMap::new(),
                    dirty: std::collections::BTreeSet::new(),
                }))
            }),
            pages: Arc::new(tokio::sync::Semaphore::new(pages_in_memory.max(1))),
            progress: progress::Progress::new(),
        }
    }

    /// A place for one page in memory; hold it until the page's records are sent.
    async fn page_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Error> {
        self.pages
            .acquire()
            .await
            .map_err(|_| Error::Output(std::io::Error::other("the page budget was closed")))
    }

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
        self.progress.records(stream, records.len());
        self.send(Output::Records { stream, records }).await
    }

    async fn state(
        &self,
        stream: &'static str,
        account: Option<&str>,
        state: serde_json::Value,
    ) -> Result<(), Error> {
        match (&self.by_account, account) {
            (Some(states), Some(account)) => {
                let mut states = states.lock().await;
                states
                    .states
                    .entry(stream)
                    .or_default()
                    .insert(account.to_owned(), state);
                let recent = states
                    .sent
                    .get(stream)
                    .is_some_and(|at| at.elapsed() < ACCOUNT_STATE_INTERVAL);
                if recent {
                    states.dirty.insert(stream);
                    return Ok(());
                }
                self.send_accounts(&mut states, stream).await
            }
            _ => self.send(Output::State { stream, state }).await,
        }
    }

    /// Sends the STATE of every stream whose accounts' states were held back.
    async fn flush_states(&self) -> Result<(), Error> {
        let Some(states) = &self.by_account else {
            return Ok(());
        };
        let mut states = states.lock().await;
        while let Some(stream) = states.dirty.pop_first() {
            self.send_accounts(&mut states, stream).await?;
        }
        Ok(())
    }

    /// Sends one stream's STATE with every account's state (the lock held by the caller).
    async fn send_accounts(
        &self,
        states: &mut AccountStates,
        stream: &'static str,
    ) -> Result<(), Error> {
        let accounts = states.states.get(stream).cloned().unwrap_or_default();
        let state = serde_json::json!({ "accounts": accounts });
        states.dirty.remove(stream);
        states.sent.insert(stream, std::time::Instant::now());
        self.send(Output::State { stream, state }).await
    }

    async fn message(&self, message: AirbyteMessage) -> Result<(), Error> {
        self.send(Output::Message(message)).await
    }
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
struct Head {
    id: String,
    /// `created`, or for invoice items, which have none, their `date`.
    created: Option<i64>,
    /// The object has an `updated` of its own.
    updated: bool,
    object: Option<String>,
}

/// The record as Stripe sent it, with our fields: `updated` (replacing Stripe's own
/// where the object has one, which only products do: `has_updated`), `is_deleted` and
/// `stripe_account`. The text is copied as is, the fields appended; only a record whose
/// `updated` is replaced goes through a parse.
fn decorate(
    raw: &str,
    has_updated: bool,
    updated: Option<i64>,
    deleted: bool,
    account: Option<&str>,
) -> String {
    if let (true, Some(updated)) = (has_updated, updated)
        && let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(raw)
    {
        object.insert("updated".to_owned(), updated.into());
        if deleted {
            object.insert("is_deleted".to_owned(), true.into());
        }
        if let Some(account) = account {
            object.insert("stripe_account".to_owned(), account.into());
        }
        return serde_json::Value::Object(object).to_string();
    }
    let mut extra = String::new();
    if let (false, Some(updated)) = (has_updated, updated) {
        extra.push_str(&format!(",\"updated\":{updated}"));
    }
    if deleted {
        extra.push_str(",\"is_deleted\":true");
    }
    if let Some(account) = account {
        extra.push_str(",\"stripe_account\":");
        extra.push_str(&serde_json::Value::from(account).to_string());
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

fn head(stream: &str, raw: &str) -> Result<Head, Error> {
    let head = stripe::scan::head(raw).map_err(|refusal| {
        let (stripe::scan::Refusal::Syntax(why) | stripe::scan::Refusal::Shape(why)) = refusal;
        invalid(stream, &why)
    })?;
    head_of(stream, &head)
}

/// The engine's head of an object a page's scan read ([`stripe::scan`]).
fn head_of(stream: &str, head: &stripe::scan::Head) -> Result<Head, Error> {
    let id = head
        .id
        .clone()
        .ok_or_else(|| invalid(stream, "missing field `id`"))?;
    Ok(Head {
        id,
        created: head.created.or(head.date),
        updated: head.updated,
        object: head.object.clone(),
    })
}

fn invalid(stream: &str, why: &str) -> Error {
    Error::Stripe(stripe::Error::InvalidResponse {
        path: stream.to_owned(),
        message: format!("an object has no id or created: {why}"),
    })
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

/// One page of `def`'s list endpoint in `[gte, lt)`.
async fn list_page(
    ctx: &Ctx,
    def: &'static StreamDef,
    gte: i64,
    lt: Option<i64>,
    starting_after: Option<&str>,
    limit: &str,
) -> Result<Page, Error> {
    let mut query: Vec<(&str, String)> = vec![
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
    let client = endpoints::client_for(ctx, def);
    Ok(client.list(def.path, &query).await?)
}

/// A stream whose changes come from the events pass.
#[derive(Clone)]
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
async fn read_events(ctx: &Arc<Ctx>, streams: &[EventsStream]) -> Result<(), Error> {
    let from = streams
        .iter()
        .map(|s| s.from)
        .min()
        .unwrap_or(ctx.events_until);
    let mut types: Vec<&'static str> = Vec::new();
    // Each type once: streams of different objects share some (a connected account's
    // bank accounts and cards, `account.external_account.*`).
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
    let shared: Arc<Vec<EventsStream>> = Arc::new(streams.to_vec());
    let mut done = InOrder::spawn_all(
        windows(from, ctx.events_until, EVENTS_WINDOW_SECS)
            .into_iter()
            .map(|(gte, lt)| {
                let (ctx, streams, types) = (ctx.clone(), shared.clone(), types.clone());
                async move {
                    let chunks = types
                        .chunks(MAX_EVENT_TYPES)
                        .map(|chunk| read_events_range(&ctx, &streams, chunk, gte, lt));
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
        let permit = ctx.emit.page_permit().await?;
        let page = ctx.client.list("/v1/events", &query).await?;
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
            let object = head("events", event.data.object.get())?;
            last_id = Some(event.id);
            let target = streams.iter().position(|s| {
                s.def.event_types.contains(&event.kind.as_str())
                    && object.object.as_deref() == Some(s.def.object)
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
                            object.object.as_deref(),
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

    #[test]
    fn decorate_appends_fields_and_keeps_the_rest_verbatim() {
        let raw = r#"{"id":"cus_1","created":5,"amount":1.50} "#;
        assert_eq!(
            decorate(raw, false, Some(7), true, Some("acct_1")),
            r#"{"id":"cus_1","created":5,"amount":1.50,"updated":7,"is_deleted":true,"stripe_account":"acct_1"}"#
        );
        let product = r#"{"id":"prod_1","created":5,"updated":9}"#;
        assert_eq!(decorate(product, true, None, false, None), product);
        let replaced: serde_json::Value =
            serde_json::from_str(&decorate(product, true, Some(12), true, None)).unwrap();
        assert_eq!(
            replaced,
            serde_json::json!({"id": "prod_1", "created": 5, "updated": 12, "is_deleted": true})
        );
    }
}
