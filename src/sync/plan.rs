//! The read planner: reads a list stream's `created` range as a few ranges in parallel,
//! each paged newest first, so that the rate limit is busy from the first second to the
//! last with few wasted requests. A request that returns a partial or an empty page is
//! waste: every range ends in one, so the planner makes ranges only where it knows there
//! are pages, and only as many as keep the stream's share of the rate limit busy.
//!
//! - One range per gap of the stream's checkpoint to start with (one for a fresh read).
//!   Its first page is the newest of the range and says how dense the objects are there
//!   (the `created` span of a full page).
//! - How many ranges a stream reads at once: enough to keep pace with the time the rate
//!   limits allow for the rest of the sync, from every stream's estimated pages left (one
//!   [`Budget`] per account, across streams; [`pace`], [`ranges_wanted`]): the biggest
//!   streams as many as their endpoint's limit pays for (its rate × the measured
//!   latency, Little's law), the others what that leaves of the account's rate, a small
//!   stream one.
//! - Where: idle capacity steals the older part (by estimated pages) of the unread part of
//!   the range with the most pages left, while that range's reader goes on from where it
//!   is: the older half for one free slot, equal shares at once for several (a freshly
//!   measured range is shared by as many readers as it pays for). Only a range
//!   that has read a full page (so has pages) is split, and only when it is estimated to
//!   hold at least [`MIN_SPLIT_PAGES`] more: a split costs about one partial page. A
//!   stolen range's first request is at once its probe and its first full page: finding
//!   where the objects are (a `start_date` years before the first) costs no requests of
//!   its own, and an empty older half costs one.
//! - The lower bound of a range moves up under the lock the reader takes to accept a
//!   page, so no object is read twice or missed: a page's objects below the new bound
//!   belong to the stolen range and are dropped.
//! - Checkpoints: everything above a reader's last sent object is complete, and a finished
//!   range is complete down to its lower bound. The planner tells the stream's
//!   [`Checkpoint`] (`checkpoint.rs` keeps the bookkeeping) and sends the STATE it returns
//!   when a range finishes, and when a reader has gone `slice_range` further down since its
//!   last STATE; records always reach the output before the STATE that covers them.
//!
//! It owns no output format and no HTTP: pages come from [`super::list_page`], records go
//! to the [`super::Emitter`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::checkpoint::{Checkpoint, Kind};
use super::record::{decorate, head_of};
use super::{Ctx, PAGE_LIMIT, list_page};
use crate::error::{Error, FailureType};
use crate::streams::StreamDef;

/// A range is split only when the rest of it is estimated to hold at least this many
/// pages: a split costs about one partial page, and saves round trips only on a long
/// range.
const MIN_SPLIT_PAGES: i64 = 4;
/// Ranges in flight per unit of (rate × latency): a little more than Little's law asks,
/// for the spread of latencies and the time a page takes to parse and hand on.
const HEADROOM: f64 = 1.3;
/// How long a planner that has measured its stream waits for the others' first pages
/// before it splits anyway: the shares are only right once every stream is measured.
const MEASURE_WAIT: Duration = Duration::from_secs(2);
/// The latency assumed before the first answer.
const DEFAULT_LATENCY: Duration = Duration::from_millis(300);
/// A range is estimated to hold at most this many pages per full page it has read (and
/// one more): a burst in one second cannot claim years of pages, yet a big stream is
/// not held far below its size while its first pages come in. At 64, the three big
/// streams of a 1,000,000-object sync each looked like 128 pages after their first
/// page (they hold ~2,800): the pace then had the account, not `balance_transactions`'
/// endpoint, set the sync's length, and that stream ran at 14–19 requests/s for 20 s.
const EVIDENCE_FACTOR: i64 = 512;
/// A range past the account's total costs a partial page: it pays only where each of a
/// stream's ranges holds at least this many pages ([`may_start`]).
const LONG_RANGE_PAGES: i64 = 16;
/// Objects on a full page (`limit=100`).
const FULL_PAGE: usize = 100;

/// The ranges being read across every list stream of one account.
pub(crate) struct Budget {
    /// The account's rate limit (requests/s).
    account_rate: f64,
    /// By stream: what it reads and has left.
    active: Mutex<HashMap<&'static str, Share>>,
    /// Bumped whenever a range makes progress or ends: planners plan again.
    changed: tokio::sync::watch::Sender<u64>,
}

/// One stream's part of an account's [`Budget`].
#[derive(Debug, Clone, Copy)]
struct Share {
    /// Ranges being read.
    ranges: usize,
    /// Estimated pages left.
    pages_left: i64,
    /// Whether that estimate is measured (a full page was read) rather than a guess.
    known: bool,
    /// The stream's endpoint's rate limit (requests/s).
    endpoint_rate: f64,
}

impl Budget {
    pub(crate) fn new(account_rate: f64) -> Budget {
        Budget {
            account_rate,
            active: Mutex::new(HashMap::new()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records a stream's ranges, estimated pages left and endpoint rate; returns what
    /// every stream of the account has left.
    fn report(
        &self,
        stream: &'static str,
        ranges: usize,
        pages_left: i64,
        known: bool,
        endpoint_rate: f64,
    ) -> Load {
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            stream,
            Share {
                ranges,
                pages_left,
                known: known || ranges == 0,
                endpoint_rate,
            },
        );
        let shares: Vec<(i64, f64)> = map
            .values()
            .map(|s| (s.pages_left, s.endpoint_rate))
            .collect();
        Load {
            ranges: map.values().map(|s| s.ranges).sum(),
            pages_left: map.values().map(|s| s.pages_left).sum(),
            pace: pace(&shares, self.account_rate),
            unknown: map.values().filter(|s| !s.known).count(),
        }
    }
}

/// What every stream of an account has left, as [`Budget::report`] sees it.
#[derive(Debug, Clone, Copy)]
struct Load {
    ranges: usize,
    pages_left: i64,
    /// The time ([`pace`]) every stream's requests/s are set by.
    pace: f64,
    /// Streams whose size is not measured yet (their first page is on its way).
    unknown: usize,
}

/// The time `t` by which each stream, reading its pages left at `pages ÷ t` requests/s
/// but never faster than its endpoint allows, together use the account's whole rate
/// (`streams`: pages left and endpoint rate of each): water-filling.
///
/// When the account's rate is what holds the sync back, that is the time the rest of it
/// takes at best (every stream's pages ÷ account rate), and every stream keeps pace to
/// end together. When the endpoints are (a few big streams, each at its endpoint's
/// limit), the others share what those leave of the account's rate rather than slow
/// down to end with the biggest: an estimate too high for one stream (years with no
/// objects not yet read) then costs the others nothing. Zero when nothing is left.
fn pace(streams: &[(i64, f64)], account_rate: f64) -> f64 {
    let total: i64 = streams.iter().map(|(pages, _)| pages.max(&0)).sum();
    if total <= 0 || account_rate <= 0.0 {
        return 0.0;
    }
    let used = |t: f64| -> f64 {
        streams
            .iter()
            .map(|&(pages, rate)| (pages.max(0) as f64 / t).min(rate))
            .sum()
    };
    // Up to the first stream's pages ÷ its endpoint's rate, every stream is at its
    // endpoint's limit: if that fits the account, nobody need wait for anybody.
    let all_at_limit = streams
        .iter()
        .filter(|(pages, _)| *pages > 0)
        .map(|&(pages, rate)| pages as f64 / rate)
        .fold(f64::INFINITY, f64::min);
    if used(all_at_limit) <= account_rate {
        return all_at_limit;
    }
    // `used` falls as `t` grows, and is at most the account's rate at pages ÷ rate.
    let (mut low, mut high) = (all_at_limit, total as f64 / account_rate);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if used(mid) > account_rate {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// How many ranges a stream with `left` pages left reads at once, at the account's
/// `pace` ([`pace`]), its endpoint's rate (requests/s) and the latency (s).
///
/// A stream keeps pace at `left ÷ pace` requests/s (at most its endpoint's rate), which
/// takes that rate × latency ranges in flight (Little's law). A stream held back by its
/// endpoint's limit gets [`HEADROOM`] on top, so it is never short of requests; the
/// others get none, so together they leave the bound streams the account's rate they
/// need.
fn ranges_wanted(left: i64, pace: f64, endpoint_rate: f64, latency: f64) -> usize {
    if pace <= 0.0 {
        return 1;
    }
    let rate = (left as f64 / pace).min(endpoint_rate);
    let headroom = if rate >= 0.9 * endpoint_rate {
        HEADROOM
    } else {
        1.0
    };
    ((rate * latency * headroom).ceil() as usize).max(1)
}

/// Whether a stream with `active` ranges (`allowed` wanted) and `left` pages left may
/// start another, while the account has `ranges` in flight of the `total` it pays for.
/// A stream always has one. A long stream held back by its endpoint's limit (its pages
/// left take longer at `endpoint_rate` than the account's `pace`, and its ranges are
/// [`LONG_RANGE_PAGES`] long) may go past the account's total: it is the one that sets the sync's length, and the
/// ranges smaller streams took while every size was still a guess from a first page (a
/// 1,000,000-object sync's `customers` took six, `balance_transactions` was left five of
/// the nine it needed for 20 s) must not hold it below its limit. Its requests still
/// wait for the client's in-flight slots and pace. In a short sync (10,000 objects, a
/// few pages a range) the extra ranges' partial pages would cost more than they save.
fn may_start(
    (active, allowed): (usize, usize),
    (ranges, total): (usize, usize),
    left: i64,
    pace: f64,
    endpoint_rate: f64,
) -> bool {
    let bound = pace > 0.0
        && left as f64 / endpoint_rate.max(0.01) >= pace
        && left >= LONG_RANGE_PAGES * allowed as i64;
    active == 0 || (active < allowed && (ranges < total || (bound && active < total)))
}

/// What a range's reader and the planner share.
#[derive(Debug)]
struct Bounds {
    /// The range reads `created >= gte`; raised when its older part goes to a new range.
    gte: i64,
    /// `created` of the last object accepted: `[gte, frontier]` is left to read.
    frontier: i64,
    /// `created` of the last object whose record is sent: every object of the range
    /// created after it is in the output.
    emitted: i64,
    /// Seconds of `created` one full page of this range spans (0 until one was read).
    span: i64,
    /// Full pages this range has read.
    full_pages: i64,
    /// The reader accepted its last page: nothing left to split.
    closed: bool,
}

/// A part of a stream's `created` range, read newest first.
pub(crate) struct Range {
    /// `created < lt`; `None` for the top of a full refresh (objects created during the
    /// sync are read too).
    lt: Option<i64>,
    /// The upper end of what the range completes in the checkpoint.
    top: i64,
    bounds: Arc<Mutex<Bounds>>,
}

impl Range {
    /// `[gte, lt)`, completing `[gte, top)` in the checkpoint.
    pub(crate) fn new(gte: i64, lt: Option<i64>, top: i64) -> Range {
        Range {
            lt,
            top,
            bounds: Arc::new(Mutex::new(Bounds {
                gte,
                frontier: top - 1,
                emitted: top - 1,
                span: 0,
                full_pages: 0,
                closed: false,
            })),
        }
    }
}

fn lock(bounds: &Mutex<Bounds>) -> std::sync::MutexGuard<'_, Bounds> {
    bounds.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pages left in a range: by its own span, else the stream's (`fallback`), else one;
/// at most [`EVIDENCE_FACTOR`] times the full pages it has read and one more, so that a
/// density measured on a few pages (the dense recent end of a stream, a burst) does not
/// claim years of such pages and take every other stream's share.
fn pages_left(bounds: &Bounds, fallback: i64) -> i64 {
    if bounds.closed {
        return 0;
    }
    let span = if bounds.span > 0 {
        bounds.span
    } else {
        fallback
    };
    if span <= 0 {
        return 1;
    }
    let cap = EVIDENCE_FACTOR * (bounds.full_pages + 1);
    ((bounds.frontier - bounds.gte + 1) / span).clamp(1, cap)
}

/// Seconds of `created` a range has left to read.
fn secs_left(bounds: &Bounds) -> i64 {
    if bounds.closed {
        0
    } else {
        (bounds.frontier - bounds.gte + 1).max(0)
    }
}

/// Cuts the rest of the range with the most pages left into `pieces` parts of about
/// equal estimated pages (fewer where it holds fewer than [`MIN_SPLIT_PAGES`] each), when
/// that is worth a request; the range's reader goes on in the newest part, the older
/// parts are returned, newest first.
///
/// Cut at once rather than halved again and again: halving a freshly measured range into
/// eight leaves half of it to one reader (and an eighth to six others), which then has to
/// be split again, a partial page per split.
fn steal<'a>(active: impl Iterator<Item = &'a Arc<Mutex<Bounds>>>, pieces: usize) -> Vec<Range> {
    let Some(bounds) = active
        .filter(|b| {
            let b = lock(b);
            b.span > 0 && pages_left(&b, 0) >= MIN_SPLIT_PAGES
        })
        .max_by_key(|b| pages_left(&lock(b), 0))
    else {
        return Vec::new();
    };
    let mut b = lock(bounds);
    let pages = pages_left(&b, 0);
    let pieces = (pieces as i64)
        .min(pages / (MIN_SPLIT_PAGES / 2).max(1))
        .max(1);
    if b.closed || pieces < 2 {
        return Vec::new();
    }
    // Cut `j` of `pieces` sits `j` shares of the estimated pages below the reader, by the
    // density it measures where it reads; never above the `j`-th share of the time
    // left. Where the estimate is held back by the evidence (a dense recent end, years
    // of nothing before it), the cuts stay in the dense part, so the stolen ranges start
    // on full pages and the oldest takes the empty stretch.
    let (gte, top) = (b.gte, b.frontier + 1);
    let cut = |j: i64| {
        let by_density = top - (pages * j / pieces) * b.span;
        let by_time = top - (top - gte) * j / pieces;
        by_density.max(by_time)
    };
    let mut cuts: Vec<i64> = (1..pieces)
        .map(cut)
        .filter(|&c| c > gte && c < top)
        .collect();
    cuts.dedup();
    let Some(&newest_cut) = cuts.first() else {
        return Vec::new();
    };
    let mut stolen = Vec::with_capacity(cuts.len());
    for (i, &upper) in cuts.iter().enumerate() {
        let lower = cuts.get(i + 1).copied().unwrap_or(gte);
        stolen.push(Range::new(lower, Some(upper), upper));
    }
    b.gte = newest_cut;
    stolen
}

/// A range being read.
struct Active {
    id: tokio::task::Id,
    top: i64,
    bounds: Arc<Mutex<Bounds>>,
    /// The checkpoint has `[marked, top)` of this range as complete.
    marked: i64,
}

/// Reads `ranges` of `def` (the first to start first) with as many in parallel as pay,
/// telling `checkpoint` what completes and sending its STATEs (`slice_secs`: the most
/// `created` a reader goes down between two of its STATEs). A full refresh's final
/// STATE is left to the caller.
///
/// # Errors
/// The first failed request (after the client's retries) or a closed output.
pub(crate) async fn read_ranges(
    ctx: &Arc<Ctx>,
    def: &'static StreamDef,
    updated: bool,
    ranges: Vec<Range>,
    checkpoint: &mut Checkpoint,
    slice_secs: i64,
) -> Result<(), Error> {
    let mut pending: VecDeque<Range> = ranges.into();
    let mut active: Vec<Active> = Vec::new();
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
    let mut changed = ctx.budget.changed.subscribe();
    let endpoint_rate = ctx.client.endpoint_rate(def.path);
    // Seconds of `created` a full page spans, as last measured on this stream.
    let mut stream_span = 0;
    let started_at = tokio::time::Instant::now();
    let range_secs: i64 = pending.iter().map(|r| secs_left(&lock(&r.bounds))).sum();
    let result = loop {
        // What completed since the last round: a STATE says so.
        let mut progressed = false;
        for range in &mut active {
            let b = lock(&range.bounds);
            if b.span > 0 {
                stream_span = b.span;
            }
            let complete_from = b.emitted.saturating_add(1);
            if range.marked.saturating_sub(complete_from) >= slice_secs.max(1) {
                checkpoint.done(complete_from, range.top);
                range.marked = complete_from;
                progressed = true;
            }
        }
        if progressed {
            send_state(ctx, def, checkpoint).await?;
        }
        // A range cut off another has read no page yet: the stream's density is its
        // estimate (not one page, which would make a freshly split stream look small).
        let left: i64 = active
            .iter()
            .map(|a| pages_left(&lock(&a.bounds), stream_span))
            .chain(
                pending
                    .iter()
                    .map(|r| pages_left(&lock(&r.bounds), stream_span)),
            )
            .sum();
        // Longest time left first, when the account's rate is short.
        ctx.client
            .set_priority(def.path, left as f64 / endpoint_rate.max(0.01));
        let load = ctx
            .budget
            .report(def.name, active.len(), left, stream_span > 0, endpoint_rate);
        let unread: i64 = active
            .iter()
            .map(|a| secs_left(&lock(&a.bounds)))
            .chain(pending.iter().map(|r| secs_left(&lock(&r.bounds))))
            .sum();
        ctx.progress(def.name, range_secs, unread, left);
        let latency = ctx
            .client
            .latency()
            .unwrap_or(DEFAULT_LATENCY)
            .as_secs_f64();
        let total = ((ctx.client.rate_limit() * latency * HEADROOM).ceil() as usize + 1)
            .min(ctx.client.max_in_flight());
        let allowed = if load.unknown > 0 && started_at.elapsed() < MEASURE_WAIT {
            // Not every stream is measured: splitting now would give this one a share
            // that is only right for the streams measured so far.
            active.len().max(1)
        } else {
            ranges_wanted(left, load.pace, endpoint_rate, latency)
        };
        tracing::debug!(
            stream = def.name,
            left,
            active = active.len(),
            allowed,
            total_left = load.pages_left,
            pace = load.pace,
            unknown = load.unknown,
            "plan"
        );
        let mut started = 0;
        while may_start(
            (active.len(), allowed),
            (load.ranges + started, total),
            left,
            load.pace,
            endpoint_rate,
        ) {
            if pending.is_empty() {
                // One cut for every free slot, so a measured range is shared at once.
                let slots = (allowed - active.len())
                    .min(total.saturating_sub(load.ranges + started))
                    .max(1);
                pending.extend(steal(active.iter().map(|a| &a.bounds), slots + 1));
            }
            let Some(range) = pending.pop_front() else {
                break;
            };
            let bounds = range.bounds.clone();
            let (lt, top) = (range.lt, range.top);
            let handle = tasks.spawn(read_range(ctx.clone(), def, updated, lt, bounds.clone()));
            active.push(Active {
                id: handle.id(),
                top,
                bounds,
                marked: top,
            });
            started += 1;
        }
        if started > 0 {
            ctx.budget
                .report(def.name, active.len(), left, stream_span > 0, endpoint_rate);
            ctx.budget.notify();
        }
        if tasks.is_empty() {
            break Ok(());
        }
        tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                Some(Ok((id, Ok(())))) => {
                    if let Some(index) = active.iter().position(|a| a.id == id) {
                        let range = active.swap_remove(index);
                        let gte = lock(&range.bounds).gte;
                        checkpoint.done(gte, range.top);
                        ctx.budget
                            .report(def.name, active.len(), left, stream_span > 0, endpoint_rate);
                        ctx.budget.notify();
                        send_state(ctx, def, checkpoint).await?;
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
    ctx.budget.report(def.name, 0, 0, true, endpoint_rate);
    ctx.budget.notify();
    result
}

/// Sends the checkpoint's state, except a full refresh's last one (the caller says it
/// once, when every gap is read).
pub(super) async fn send_state(
    ctx: &Ctx,
    def: &'static StreamDef,
    checkpoint: &Checkpoint,
) -> Result<(), Error> {
    if checkpoint.kind() == Kind::Full && checkpoint.is_complete() {
        return Ok(());
    }
    ctx.state(def.name, checkpoint.state()).await
}

/// Reads one range to its end, or to its lower bound, which may rise meanwhile.
async fn read_range(
    ctx: Arc<Ctx>,
    def: &'static StreamDef,
    updated: bool,
    lt: Option<i64>,
    bounds: Arc<Mutex<Bounds>>,
) -> Result<(), Error> {
    let mut after: Option<String> = None;
    // `created` of the range's first object and the full pages read: the span of a page
    // is measured over all of them, so a burst of objects in one second (a payout's
    // balance transactions) does not make the range look millions of pages long.
    let mut first_created: Option<i64> = None;
    let mut full_pages: i64 = 0;
    loop {
        let permit = ctx.emit.page_permit().await?;
        let gte = lock(&bounds).gte;
        let page = list_page(&ctx, def, gte, lt, after.as_deref(), PAGE_LIMIT).await?;
        let page = page.parse()?;
        let mut heads = Vec::with_capacity(page.data.len());
        for h in &page.heads {
            heads.push(head_of(def.name, h)?);
        }
        // Accept the page against the current lower bound, under the lock a split takes:
        // what lies below it is another range's now.
        let (keep, more) = {
            let mut b = lock(&bounds);
            let keep = heads
                .iter()
                .position(|h| h.created.unwrap_or(0) < b.gte)
                .unwrap_or(heads.len());
            let more = keep == heads.len() && page.has_more && keep > 0;
            if more {
                let last = heads[keep - 1].created.unwrap_or(0);
                let first = *first_created.get_or_insert(heads[0].created.unwrap_or(0));
                if heads.len() >= FULL_PAGE {
                    full_pages += 1;
                    b.span = ((first - last) / full_pages).max(1);
                    b.full_pages = full_pages;
                }
                b.frontier = last;
            } else {
                b.closed = true;
            }
            (keep, more)
        };
        let records: Vec<String> = heads[..keep]
            .iter()
            .zip(&page.data)
            .map(|(h, raw)| {
                // From a list, an object's own `updated` (products) is its last change.
                let has_updated = h.updated;
                let updated = (updated && !has_updated).then_some(h.created.unwrap_or(0));
                decorate(raw, has_updated, updated, false, ctx.account.as_deref())
            })
            .collect();
        ctx.records(def.name, records).await?;
        drop(permit);
        if !more {
            ctx.budget.notify();
            return Ok(());
        }
        let last = &heads[keep - 1];
        lock(&bounds).emitted = last.created.unwrap_or(0);
        after = Some(last.id.to_owned());
        ctx.budget.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(gte: i64, lt: i64, frontier: i64, span: i64) -> Range {
        let range = Range::new(gte, Some(lt), lt);
        {
            let mut b = lock(&range.bounds);
            b.frontier = frontier;
            b.span = span;
            b.full_pages = 1;
        }
        range
    }

    #[test]
    fn a_steal_takes_the_older_half_of_the_biggest_range() {
        let small = range(0, 100, 99, 50);
        let big = range(1_000, 20_000, 10_999, 100);
        let fresh = Range::new(0, Some(1_000_000), 1_000_000);
        let active = [&small.bounds, &big.bounds, &fresh.bounds];
        let stolen = steal(active.into_iter(), 2);
        let [stolen] = &stolen[..] else {
            panic!(
                "the big range has 100 pages left: one older half, got {}",
                stolen.len()
            );
        };
        assert_eq!(stolen.lt, Some(6_000));
        assert_eq!(stolen.top, 6_000);
        assert_eq!(lock(&stolen.bounds).gte, 1_000);
        assert_eq!(lock(&stolen.bounds).frontier, 5_999);
        assert_eq!(
            lock(&stolen.bounds).span,
            0,
            "a stolen range measures its own"
        );
        assert_eq!(
            lock(&big.bounds).gte,
            6_000,
            "the reader keeps the newer half"
        );
        // Ranges without a full page yet, small ones and closed ones are left alone.
        lock(&big.bounds).closed = true;
        assert!(steal(active.into_iter(), 2).is_empty());
    }

    #[test]
    fn a_steal_for_many_slots_cuts_equal_shares_at_once() {
        // 100 pages at 100 s a page: four readers get 25 pages each.
        let big = range(1_000, 20_000, 10_999, 100);
        // Each stolen range as `(gte, lt)`.
        let parts = |stolen: Vec<Range>| -> Vec<(i64, Option<i64>)> {
            stolen.iter().map(|r| (lock(&r.bounds).gte, r.lt)).collect()
        };
        assert_eq!(
            parts(steal([&big.bounds].into_iter(), 4)),
            [
                (6_000, Some(8_500)),
                (3_500, Some(6_000)),
                (1_000, Some(3_500))
            ]
        );
        assert_eq!(
            lock(&big.bounds).gte,
            8_500,
            "the reader keeps the newest share"
        );
        // A dense newest end (a page a second) with years before it: the cuts stay in
        // the dense part and the oldest range takes the rest.
        // It is estimated at the evidence's cap of 2 × EVIDENCE_FACTOR pages, so each of
        // the four pieces is a quarter of that many seconds.
        let dense = range(0, 100_000_000, 99_999_999, 1);
        let share = 2 * EVIDENCE_FACTOR / 4;
        let cut = |j: i64| 100_000_000 - j * share;
        assert_eq!(
            parts(steal([&dense.bounds].into_iter(), 4)),
            [
                (cut(2), Some(cut(1))),
                (cut(3), Some(cut(2))),
                (0, Some(cut(3)))
            ]
        );
        // Never pieces of less than two pages: a 5-page range splits in two.
        let small = range(0, 1_000, 499, 100);
        assert_eq!(steal([&small.bounds].into_iter(), 8).len(), 1);
    }

    #[test]
    fn the_pace_fills_the_accounts_rate_around_the_streams_held_by_their_endpoint() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.max(1.0);
        let streams = [
            (300, 25.0),
            (300, 25.0),
            (120, 25.0),
            (90, 25.0),
            (90, 25.0),
        ];
        // Test mode (25/s for the account): the account sets the pace, 900 ÷ 25 s.
        assert!(close(pace(&streams, 25.0), 36.0));
        // Live (100/s): the two biggest streams are held at 25/s by their endpoints for
        // 12 s; the others share the 50/s they leave and end by 300 ÷ 50 = 6 s, rather
        // than slow down to end with the biggest.
        assert!(close(pace(&streams, 100.0), 6.0));
        // Two endpoints at their limit leave the account room: nobody waits for
        // anybody, each stream at 25/s (the pace of the smaller, 5 ÷ 25 s).
        let small = [(10, 25.0), (5, 25.0)];
        assert!(close(pace(&small, 100.0), 0.2));
        assert_eq!(ranges_wanted(10, 0.2, 25.0, 0.25), 9);
        assert_eq!(pace(&[(0, 25.0)], 100.0), 0.0);
        // An estimate far too high for one stream (years of nothing not yet read) does
        // not slow the others: they keep the pace they would have without it.
        let inflated = [
            (900, 25.0),
            (300, 25.0),
            (120, 25.0),
            (90, 25.0),
            (90, 25.0),
        ];
        assert!(close(pace(&inflated, 100.0), 6.0));
    }

    #[test]
    fn bound_streams_get_headroom_and_the_others_their_pace() {
        // Live: 100/s for the account, 25/s per endpoint, 0.25 s per page, a pace of
        // 10 s: a stream of 250 pages is held by its endpoint.
        assert_eq!(ranges_wanted(250, 10.0, 25.0, 0.25), 9);
        assert_eq!(ranges_wanted(100, 10.0, 25.0, 0.25), 3);
        assert_eq!(ranges_wanted(5, 10.0, 25.0, 0.25), 1);
        // Test mode: the account's 25/s sets the pace (32 s); no stream is bound by
        // its endpoint.
        assert_eq!(ranges_wanted(250, 32.0, 25.0, 0.25), 2);
        // Nothing left anywhere: one range, to finish.
        assert_eq!(ranges_wanted(1, 0.0, 25.0, 0.25), 1);
    }

    #[test]
    fn a_long_stream_held_by_its_endpoint_may_start_ranges_past_the_accounts_total() {
        // The 1,000,000-object sync: the account's 34 ranges are taken, the pace is 100 s.
        let full = (34, 34);
        // `balance_transactions`: 2,800 pages at 24.5/s take 114 s, 311 pages a range.
        assert!(may_start((5, 9), full, 2_800, 100.0, 24.5));
        // `customers`: 1,100 pages take 45 s at its limit, within the pace: it waits.
        assert!(!may_start((2, 3), full, 1_100, 100.0, 24.5));
        // A short sync's stream held by its endpoint, 3 pages a range: it waits too.
        assert!(!may_start((5, 9), full, 27, 1.0, 24.5));
        // Nothing left to pace (no estimate): no stream goes past the total.
        assert!(!may_start((5, 9), full, 2_800, 0.0, 24.5));
        // Never past what the stream wants, nor past the total for one stream.
        assert!(!may_start((9, 9), (20, 34), 2_800, 100.0, 24.5));
        assert!(!may_start((2, 9), (40, 2), 2_800, 100.0, 24.5));
        // Within the total, any stream that wants more; always one range.
        assert!(may_start((3, 4), (20, 34), 10, 100.0, 24.5));
        assert!(!may_start((4, 4), (20, 34), 10, 100.0, 24.5));
        assert!(may_start((0, 1), (40, 34), 10, 100.0, 24.5));
    }

    #[test]
    fn pages_left_falls_back_to_the_streams_span_then_to_one() {
        let fresh = Range::new(0, Some(10_000), 10_000);
        assert_eq!(pages_left(&lock(&fresh.bounds), 0), 1);
        assert_eq!(pages_left(&lock(&fresh.bounds), 1_000), 10);
        let known = range(0, 10_000, 4_999, 500);
        assert_eq!(pages_left(&lock(&known.bounds), 1_000), 10);
        lock(&known.bounds).closed = true;
        assert_eq!(pages_left(&lock(&known.bounds), 1_000), 0);
        // A burst (a page within one second) claims no more than the evidence allows.
        let burst = range(0, 100_000_000, 99_999_999, 1);
        assert_eq!(pages_left(&lock(&burst.bounds), 0), 2 * EVIDENCE_FACTOR);
        lock(&burst.bounds).full_pages = 3;
        assert_eq!(pages_left(&lock(&burst.bounds), 0), 4 * EVIDENCE_FACTOR);
    }
}
