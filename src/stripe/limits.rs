//! Stripe's two rate limits, kept on the client side: one for the account (100/s live,
//! 25/s test) and one per API endpoint (25/s by default, Files 20/s), which also counts
//! against the account's (Stripe's rate-limits page, 2026; `DESIGN.md`, "Stripe facts").
//!
//! A request may go once both its account and its endpoint have room: [`Pacer::ready`]
//! takes both at once, under one short lock. `governor` keeps one limit per limiter and
//! cannot take two atomically (taking the endpoint's cell and then waiting for the
//! account's would let an endpoint's requests bunch up behind the account), hence this
//! small pair of GCRA cells. Each endpoint also has a cap on requests in flight in
//! proportion to its share of the account's rate, so one big stream waiting for its
//! endpoint's pace never holds the in-flight slots the other endpoints could use.
//!
//! When requests of several endpoints wait for the account's next slot, the endpoint with
//! the most time left goes first ([`Pacer::set_priority`]: longest remaining time first,
//! which ends every endpoint's reads soonest): an endpoint held at its own limit, with
//! the most pages left, is not slowed by small ones while the account's rate is short.
//!
//! It knows nothing of streams: an endpoint is a request path with its ids taken out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

// Stripe's per-endpoint facts live in `stripe_limits`, where the emulator enforces them
// too; re-exported so the client's callers keep writing `limits::endpoint_of`.
pub use stripe_limits::{
    STRIPE_ENDPOINT_LIMIT, STRIPE_FILES_LIMIT, endpoint_limit, endpoint_of, is_files_api,
};

/// A GCRA cell: the theoretical arrival time of the next request.
#[derive(Debug, Clone, Copy)]
struct Cell {
    next: Instant,
}

impl Cell {
    /// After a grant at `now`: the next one is one period later, less the part of a
    /// period a late waiter lost (at most a quarter of a period: a timer is late by a
    /// millisecond or so), so timer lateness does not lower the rate; any window of `w`
    /// seconds holds at most `(w + period / 4) / period + 1` grants (25 in any second at
    /// 24.5/s, Stripe's 25 less 2%).
    fn advance(&mut self, now: Instant, period: Duration) {
        let floor = now.checked_sub(period / 4).unwrap_or(now);
        self.next = self.next.max(floor) + period;
    }
}

/// The pacing state of one endpoint.
#[derive(Debug)]
struct EndpointState {
    cell: Cell,
    /// Seconds of reads it has left, as its reader last said; `None`: first in line.
    priority: Option<f64>,
    /// Requests waiting for a slot.
    waiting: usize,
}

impl EndpointState {
    fn new(now: Instant) -> EndpointState {
        EndpointState {
            cell: Cell { next: now },
            priority: None,
            waiting: 0,
        }
    }

    /// Whether its requests go before `other`'s.
    fn outranks(&self, other: Option<f64>) -> bool {
        match (self.priority, other) {
            (None, Some(_)) => true,
            (Some(mine), Some(theirs)) => mine > theirs,
            (_, None) => false,
        }
    }
}

/// The pacing state of one account.
struct PaceState {
    account: Cell,
    endpoints: HashMap<String, EndpointState>,
}

impl PaceState {
    fn endpoint(&mut self, endpoint: &str, now: Instant) -> &mut EndpointState {
        if !self.endpoints.contains_key(endpoint) {
            self.endpoints
                .insert(endpoint.to_owned(), EndpointState::new(now));
        }
        self.endpoints
            .get_mut(endpoint)
            .expect("inserted just above")
    }
}

/// Both limits of one account. Cheap to share (`Arc`).
pub struct Pacer {
    account_period: Duration,
    endpoint_rate: f64,
    state: Mutex<PaceState>,
    /// Requests in flight per endpoint.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_in_flight: usize,
    account_rate: f64,
}

fn period(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(0.01))
}

impl Pacer {
    /// `account_rate` and `endpoint_rate` in requests per second; `max_in_flight` is
    /// the client's cap on requests in flight, shared out to endpoints by their rates.
    pub fn new(account_rate: f64, endpoint_rate: f64, max_in_flight: usize) -> Pacer {
        let now = Instant::now();
        Pacer {
            account_period: period(account_rate),
            endpoint_rate,
            state: Mutex::new(PaceState {
                account: Cell { next: now },
                endpoints: HashMap::new(),
            }),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: max_in_flight.max(1),
            account_rate,
        }
    }

    /// Requests per second allowed on `endpoint`.
    pub fn endpoint_rate(&self, endpoint: &str) -> f64 {
        endpoint_limit(endpoint, self.endpoint_rate).min(self.account_rate)
    }

    /// The in-flight cap of `endpoint`: its share of the client's, by rate (at least 1).
    pub fn endpoint_slots(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(endpoint.to_owned())
            .or_insert_with(|| {
                let share = self.endpoint_rate(endpoint) / self.account_rate.max(0.01);
                let slots = (self.max_in_flight as f64 * share).ceil() as usize;
                Arc::new(Semaphore::new(slots.clamp(1, self.max_in_flight)))
            })
            .clone()
    }

    /// Sets how many seconds of reads `endpoint` has left: its requests go before those
    /// of endpoints with less, when both wait for the account.
    pub fn set_priority(&self, endpoint: &str, secs_left: f64) {
        let mut state = self.lock_state();
        state.endpoint(endpoint, Instant::now()).priority = Some(secs_left);
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until both the account and `endpoint` have room, and no endpoint that
    /// outranks it has a request waiting that its own limit lets go now; takes the room.
    ///
    /// Cancel-safe: nothing is taken until it returns.
    pub async fn ready(&self, endpoint: &str) {
        let endpoint_period = period(self.endpoint_rate(endpoint));
        // Declared before the lock below is taken, so dropped after it is released.
        let mut waiting = Waiting {
            pacer: self,
            endpoint,
            counted: false,
        };
        loop {
            let wait_until = {
                let mut state = self.lock_state();
                let now = Instant::now();
                let account_next = state.account.next;
                let me = state.endpoint(endpoint, now);
                let ready_at = account_next.max(me.cell.next);
                let priority = me.priority;
                if !waiting.counted {
                    me.waiting += 1;
                    waiting.counted = true;
                }
                if ready_at > now {
                    ready_at
                } else if state.endpoints.iter().any(|(name, other)| {
                    name != endpoint
                        && other.waiting > 0
                        && other.cell.next <= now
                        && other.outranks(priority)
                }) {
                    // The slot is theirs: they are awake (their time has come too).
                    now + OUTRANKED_WAIT
                } else {
                    // `waiting` is no longer counted once it drops, after the lock.
                    state
                        .endpoint(endpoint, now)
                        .cell
                        .advance(now, endpoint_period);
                    state.account.advance(now, self.account_period);
                    return;
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

/// How long a request the slot went to another endpoint's waits to try again.
const OUTRANKED_WAIT: Duration = Duration::from_millis(1);

/// A request counted as waiting on its endpoint, until `ready` returns or is dropped.
struct Waiting<'a> {
    pacer: &'a Pacer,
    endpoint: &'a str,
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut state = self.pacer.lock_state();
            if let Some(e) = state.endpoints.get_mut(self.endpoint) {
                e.waiting = e.waiting.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grants over a simulated 10 s, with many waiters on one big endpoint and a few on
    /// others: no second holds more than either limit allows, and the account's rate is
    /// used up.
    #[tokio::test(start_paused = true)]
    async fn both_limits_hold_and_the_account_rate_is_used() {
        let pacer = Arc::new(Pacer::new(20.0, 8.0, 40));
        let start = Instant::now();
        let grants = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (endpoint, waiters) in [
            ("/v1/charges", 30),
            ("/v1/customers", 5),
            ("/v1/refunds", 5),
        ] {
            for _ in 0..waiters {
                let (pacer, grants) = (pacer.clone(), grants.clone());
                tasks.push(tokio::spawn(async move {
                    while start.elapsed() < Duration::from_secs(10) {
                        pacer.ready(endpoint).await;
                        grants
                            .lock()
                            .unwrap()
                            .push((start.elapsed().as_millis() as u64, endpoint));
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        let grants = grants.lock().unwrap();
        for second in 0..10 {
            let in_second = |name: Option<&str>| {
                grants
                    .iter()
                    .filter(|(ms, e)| ms / 1000 == second && name.is_none_or(|n| n == *e))
                    .count()
            };
            assert!(
                in_second(None) <= 21,
                "second {second}: {}",
                in_second(None)
            );
            for name in ["/v1/charges", "/v1/customers", "/v1/refunds"] {
                assert!(in_second(Some(name)) <= 9, "{name} in second {second}");
            }
        }
        let total = grants.iter().filter(|(ms, _)| *ms < 10_000).count();
        assert!(total >= 190, "the account's 20/s was used: {total} in 10 s");
        assert_eq!(pacer.endpoint_slots("/v1/charges").available_permits(), 16);
        assert_eq!(pacer.endpoint_slots("/v1/files").available_permits(), 13);
    }

    /// At the default 98% of Stripe's 25/s, no window of one second (not only the
    /// seconds of the clock) holds more than 25 of an endpoint's requests.
    #[tokio::test(start_paused = true)]
    async fn any_second_of_an_endpoint_holds_at_most_stripes_limit() {
        let pacer = Arc::new(Pacer::new(95.0, 25.0 * 0.98, 76));
        let start = Instant::now();
        let grants = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..30 {
            let (pacer, grants) = (pacer.clone(), grants.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(10) {
                    pacer.ready("/v1/charges").await;
                    grants.lock().unwrap().push(start.elapsed());
                    // A little work between requests, so waiters come late.
                    tokio::time::sleep(Duration::from_micros(1_300)).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let mut grants = grants.lock().unwrap().clone();
        grants.sort();
        for (i, &at) in grants.iter().enumerate() {
            let in_window = grants[i..]
                .iter()
                .take_while(|&&g| g < at + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 25,
                "{in_window} requests in the second from {at:?}"
            );
        }
        assert!(
            grants.len() >= 240,
            "the endpoint's pace was used: {}",
            grants.len()
        );
    }

    /// The account's 20/s is short of what three endpoints at 8/s each want: the two
    /// with the most time left keep their endpoint's whole pace, the third gets the rest.
    #[tokio::test(start_paused = true)]
    async fn the_endpoint_with_most_time_left_keeps_its_pace_when_the_account_is_short() {
        async fn grants(priorities: &[(&'static str, f64)]) -> HashMap<&'static str, usize> {
            let pacer = Arc::new(Pacer::new(20.0, 8.0, 60));
            for (endpoint, secs) in priorities {
                pacer.set_priority(endpoint, *secs);
            }
            let start = Instant::now();
            let counts = Arc::new(Mutex::new(HashMap::new()));
            let mut tasks = Vec::new();
            for endpoint in ["/v1/charges", "/v1/customers", "/v1/refunds"] {
                for _ in 0..10 {
                    let (pacer, counts) = (pacer.clone(), counts.clone());
                    tasks.push(tokio::spawn(async move {
                        loop {
                            pacer.ready(endpoint).await;
                            if start.elapsed() >= Duration::from_secs(10) {
                                break;
                            }
                            *counts.lock().unwrap().entry(endpoint).or_insert(0) += 1;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }));
                }
            }
            for task in tasks {
                task.await.unwrap();
            }
            Arc::try_unwrap(counts).unwrap().into_inner().unwrap()
        }
        // Both ways round: the priorities decide, not the order of the waiters.
        for (top, second, last) in [
            ("/v1/charges", "/v1/customers", "/v1/refunds"),
            ("/v1/refunds", "/v1/customers", "/v1/charges"),
        ] {
            let got = grants(&[(top, 30.0), (second, 10.0), (last, 5.0)]).await;
            assert!(got[top] >= 78, "{got:?}");
            assert!(got[second] >= 78, "{got:?}");
            assert!(got[last] <= 45, "{got:?}");
            let total: usize = got.values().sum();
            assert!((195..=201).contains(&total), "the account's pace: {got:?}");
        }
    }
}
