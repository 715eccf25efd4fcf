//! The read planner: reads a stream's `created` range as a few ranges in parallel, each
//! paged newest first, so the rate limit is busy from the first second to the last with
//! few wasted requests (every range ends in one partial page, and an empty one costs a
//! request).
//!
//! - How many ranges: as many as keep the stream's endpoint busy (its rate × the measured
//!   latency, Little's law) and no more than the stream's share of the account's budget,
//!   the share following each stream's estimated pages left, so the biggest streams get
//!   the most ranges and small ones one each.
//! - Where: a range is split only when it is estimated (from the `created` span of its
//!   last full page) to hold at least [`MIN_SPLIT_PAGES`] more pages; idle capacity takes
//!   the older half of the rest of the range with the most pages left, while its reader
//!   goes on from where it is. The lower bound of a range moves up under a lock that the
//!   reader also takes to accept a page, so no object is read twice or missed.
//! - Checkpoints: each range belongs to a window; [`Checkpoints`] says when a STATE may
//!   claim a window's end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::checkpoint::Checkpoints;
use super::{Ctx, PAGE_LIMIT, decorate, head, list_page};
use crate::error::{Error, FailureType};
use crate::streams::StreamDef;

/// A range is split only when the rest of it is estimated to hold at least this many
/// pages: a split costs about one partial page.
const MIN_SPLIT_PAGES: i64 = 3;
/// Ranges in flight per unit of (rate × latency): a little more than Little's law asks,
/// for the spread of latencies.
const HEADROOM: f64 = 1.3;
/// The latency assumed before the first answer.
const DEFAULT_LATENCY: Duration = Duration::from_millis(300);
/// Objects per full page.
const FULL_PAGE: usize = 100;

/// The ranges being read across every stream of one account.
pub(crate) struct Budget {
    active: Mutex<HashMap<&'static str, (usize, i64)>>,
    /// Bumped whenever a range makes progress or ends: planners re-plan.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget {
            active: Mutex::new(HashMap::new()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records a stream's ranges and estimated pages left; returns the ranges of every
    /// stream, and this stream's share of the pages left.
    fn report(&self, stream: &'static str, ranges: usize, pages_left: i64) -> (usize, f64) {
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(stream, (ranges, pages_left));
        let ranges = map.values().map(|(r, _)| r).sum();
        let total: i64 = map.values().map(|(_, p)| p).sum();
        let share = if total > 0 {
            pages_left as f64 / total as f64
        } else {
            1.0
        };
        (ranges, share)
    }
}

/// What a range's reader and the planner share.
#[derive(Debug)]
struct Bounds {
    /// The range reads `created >= gte`; raised when its older part goes to a new range.
    gte: i64,
    /// `created` of the last object read: `[gte, frontier]` is left.
    frontier: i64,
    /// Seconds of `created` one full page of this range spans (0 until one was read).
    span: i64,
    /// The reader has finished.
    done: bool,
}

/// A part of a stream's `created` range, read newest first.
pub(crate) struct Range {
    window: usize,
    /// `created < lt`; `None` for the top of a full refresh.
    lt: Option<i64>,
    /// Resume after this object (the page before was read already).
    after: Option<String>,
    bounds: Arc<Mutex<Bounds>>,
}

impl Range {
    /// `[gte, lt)` in checkpoint window `window`, resuming after `after` whose `created`
    /// is `frontier` (or `lt - 1` for a fresh range); `span` as [`Bounds::span`].
    pub(crate) fn new(
        window: usize,
        gte: i64,
        lt: Option<i64>,
        after: Option<String>,
        frontier: i64,
        span: i64,
    ) -> Range {
        Range {
            window,
            lt,
            after,
            bounds: Arc::new(Mutex::new(Bounds {
                gte,
                frontier,
                span,
                done: false,
            })),
        }
    }
}

fn lock(bounds: &Mutex<Bounds>) -> std::sync::MutexGuard<'_, Bounds> {
    bounds.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pages left in a range, by its own span or `fallback`.
fn pages_left(bounds: &Bounds, fallback: i64) -> i64 {
    if bounds.done {
        return 0;
    }
    let span = if bounds.span > 0 {
        bounds.span
    } else {
        fallback
    };
    ((bounds.frontier - bounds.gte + 1) / span.max(1)).max(1)
}

/// Takes the older half of the rest of the range with the most pages left, when that is
/// worth a request; the range's reader goes on above the cut.
fn steal<'a>(active: impl Iterator<Item = (usize, &'a Arc<Mutex<Bounds>>)>) -> Option<Range> {
    let (window, bounds) = active
        .filter(|(_, b)| {
            let b = lock(b);
            !b.done && b.span > 0 && pages_left(&b, 1) >= MIN_SPLIT_PAGES
        })
        .max_by_key(|(_, b)| pages_left(&lock(b), 1))?;
    let mut b = lock(bounds);
    if b.done || b.frontier <= b.gte {
        return None;
    }
    let cut = b.gte + (b.frontier - b.gte + 1) / 2;
    let stolen = Range::new(window, b.gte, Some(cut), None, cut - 1, b.span);
    b.gte = cut;
    Some(stolen)
}

/// Reads `ranges` of `def` (the first to start first) with as many in parallel as pay,
/// sending a STATE from `checkpoint(end)` whenever [`Checkpoints`] lets one claim `end`.
///
/// # Errors
/// The first failed request (after the client's retries) or a closed output.
pub(crate) async fn read_ranges(
    ctx: &Arc<Ctx>,
    def: &'static StreamDef,
    updated: bool,
    ranges: Vec<Range>,
    mut checkpoints: Checkpoints,
    checkpoint: &(dyn Fn(i64) -> Option<serde_json::Value> + Send + Sync),
) -> Result<(), Error> {
    let fallback_span = ranges
        .iter()
        .map(|r| lock(&r.bounds).span)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut pending: VecDeque<Range> = ranges.into();
    let mut active: Vec<(tokio::task::Id, usize, Arc<Mutex<Bounds>>)> = Vec::new();
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
    let mut changed = ctx.budget.changed.subscribe();
    let endpoint_rate = ctx.client.endpoint_rate(def.path);
    let secs_left = |active: &[(tokio::task::Id, usize, Arc<Mutex<Bounds>>)],
                     pending: &VecDeque<Range>| {
        let left = |b: &Bounds| {
            if b.done {
                0
            } else {
                (b.frontier - b.gte + 1).max(0)
            }
        };
        active.iter().map(|(_, _, b)| left(&lock(b))).sum::<i64>()
            + pending.iter().map(|r| left(&lock(&r.bounds))).sum::<i64>()
    };
    let range_secs = secs_left(&active, &pending);
    let result = loop {
        let left: i64 = active
            .iter()
            .map(|(_, _, b)| pages_left(&lock(b), fallback_span))
            .chain(
                pending
                    .iter()
                    .map(|r| pages_left(&lock(&r.bounds), fallback_span)),
            )
            .sum();
        let (all_ranges, share) = ctx.budget.report(def.name, active.len(), left);
        ctx.emit
            .progress
            .plan(def.name, range_secs, secs_left(&active, &pending), left);
        let latency = ctx
            .client
            .latency()
            .unwrap_or(DEFAULT_LATENCY)
            .as_secs_f64();
        let total = ((ctx.client.rate_limit() * latency * HEADROOM).ceil() as usize + 1)
            .min(ctx.client.max_in_flight());
        let own = (endpoint_rate * latency * HEADROOM).ceil() as usize + 1;
        let fair = (total as f64 * share).ceil() as usize + 1;
        let allowed = own.min(fair).max(1);
        let mut started = 0;
        while active.len() < allowed && (all_ranges + started < total || active.is_empty()) {
            let next = match pending.pop_front() {
                Some(range) => Some(range),
                None => steal(active.iter().map(|(_, w, b)| (*w, b)))
                    .inspect(|range| checkpoints.split(range.window)),
            };
            let Some(range) = next else {
                break;
            };
            let (window, bounds) = (range.window, range.bounds.clone());
            let handle = tasks.spawn(read_range(ctx.clone(), def, updated, range));
            active.push((handle.id(), window, bounds));
            started += 1;
        }
        if started > 0 {
            ctx.budget.report(def.name, active.len(), left);
            ctx.budget.notify();
        }
        if tasks.is_empty() {
            break Ok(());
        }
        tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                Some(Ok((id, Ok(())))) => {
                    let index = active.iter().position(|(task, ..)| *task == id);
                    if let Some(index) = index {
                        let (_, window, _) = active.swap_remove(index);
                        ctx.budget.report(def.name, active.len(), left);
                        ctx.budget.notify();
                        if let Some(state) = checkpoints.done(window).and_then(checkpoint) {
                            ctx.state(def.name, state).await?;
                        }
                    }
                }
                Some(Ok((_, Err(err)))) => break Err(err),
                Some(Err(err)) => {
                    break Err(Error::StreamsFailed {
                        message: format!("a read task of {} failed: {err}", def.name),
                        failure_type: FailureType::SystemError,
                    });
                }
                None => break Ok(()),
            },
            _ = changed.changed() => {}
        }
    };
    ctx.budget.report(def.name, 0, 0);
    ctx.budget.notify();
    result?;
    debug_assert!(checkpoints.finished());
    Ok(())
}

/// Reads one range to its end (or to its lower bound, which may rise meanwhile).
async fn read_range(
    ctx: Arc<Ctx>,
    def: &'static StreamDef,
    updated: bool,
    range: Range,
) -> Result<(), Error> {
    let Range {
        lt,
        mut after,
        bounds,
        ..
    } = range;
    let finish = |bounds: &Mutex<Bounds>| lock(bounds).done = true;
    loop {
        let permit = ctx.emit.page_permit().await?;
        let gte = lock(&bounds).gte;
        let page = match list_page(&ctx, def, gte, lt, after.as_deref(), PAGE_LIMIT).await {
            Ok(page) => page,
            Err(err) => {
                finish(&bounds);
                return Err(err);
            }
        };
        let page = page.parse()?;
        let mut heads = Vec::with_capacity(page.data.len());
        for raw in &page.data {
            heads.push((head(def.name, raw)?, *raw));
        }
        // Accept the page against the current lower bound, under the lock a split takes:
        // what lies below it is another range's now.
        let (keep, last) = {
            let mut b = lock(&bounds);
            let keep = heads
                .iter()
                .position(|(h, _)| h.created.unwrap_or(0) < b.gte)
                .unwrap_or(heads.len());
            let last = heads[..keep]
                .last()
                .map(|(h, _)| (h.id.clone(), h.created.unwrap_or(0)));
            let more = keep == heads.len() && page.has_more;
            match (&last, more) {
                (Some((_, created)), true) => {
                    if heads.len() >= FULL_PAGE {
                        let first = heads[0].0.created.unwrap_or(0);
                        b.span = (first - created).max(1);
                    }
                    b.frontier = *created;
                }
                _ => b.done = true,
            }
            (keep, last.filter(|_| !b.done))
        };
        let records: Vec<String> = heads[..keep]
            .iter()
            .map(|(h, raw)| {
                let has_updated = h.updated.is_some();
                let updated = (updated && !has_updated).then_some(h.created.unwrap_or(0));
                decorate(
                    raw.get(),
                    has_updated,
                    updated,
                    false,
                    ctx.account.as_deref(),
                )
            })
            .collect();
        ctx.emit.records(def.name, records).await?;
        drop(permit);
        ctx.budget.notify();
        match last {
            Some((id, _)) => after = Some(id),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steal_takes_the_older_half_of_the_biggest_range() {
        let small = Range::new(0, 0, Some(100), None, 99, 50);
        let big = Range::new(1, 1_000, Some(20_000), None, 10_999, 100);
        let fresh = Range::new(2, 0, Some(1_000_000), None, 999_999, 0);
        let active = [(0, &small.bounds), (1, &big.bounds), (2, &fresh.bounds)];
        let stolen = steal(active.into_iter()).expect("the big range has 100 pages left");
        assert_eq!(stolen.window, 1);
        assert_eq!(stolen.lt, Some(6_000));
        assert_eq!(lock(&stolen.bounds).gte, 1_000);
        assert_eq!(lock(&stolen.bounds).frontier, 5_999);
        assert_eq!(
            lock(&big.bounds).gte,
            6_000,
            "the reader keeps the newer half"
        );
        // Ranges not read yet (no span yet), small ones and finished ones are left alone.
        lock(&big.bounds).done = true;
        assert!(steal(active.into_iter()).is_none());
    }
}
