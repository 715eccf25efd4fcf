//! Progress of a read, for a person and for Airbyte: counters per stream that the
//! planner and the readers update, and the reporter that shows them.
//!
//! - On a terminal (stderr is a TTY): one live line per stream drawn with `indicatif`:
//!   records, pages, share of the `created` range done, requests/s against the limit,
//!   429s and retries, an estimated time left. Nothing of it when stderr is not a
//!   terminal.
//! - Always: every [`LOG_EVERY`] an Airbyte `TRACE` `ESTIMATE` per stream (rows estimated
//!   from the page density seen so far) and a `LOG` line with the same figures; at the end
//!   a `LOG` summary per stream (records, requests, 429s, retries, time).
//!
//! It only reads counters; it never changes what is read.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::AirbyteMessage;
use crate::stripe::Client;

/// How often the Airbyte figures (LOG and ESTIMATE) are sent; the environment variable
/// [`LOG_EVERY_VAR`] (seconds) changes it.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(30);
pub(crate) const LOG_EVERY_VAR: &str = "SOURCE_STRIPE_PROGRESS_SECS";
/// How often the terminal lines are redrawn.
const DRAW_EVERY: Duration = Duration::from_millis(250);

/// What is known of one stream's read.
#[derive(Debug, Clone, Default)]
struct StreamProgress {
    /// The endpoint its requests go to (for the client's counters).
    path: &'static str,
    records: u64,
    /// Seconds of `created` to read, and of those not read yet.
    range_secs: i64,
    left_secs: i64,
    /// Pages estimated left.
    left_pages: i64,
    started: Option<Instant>,
    finished: Option<Instant>,
}

/// Counters of every stream of a read. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Progress {
    started: Instant,
    streams: Mutex<BTreeMap<&'static str, StreamProgress>>,
}

/// The figures of one stream at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figures {
    pub(crate) stream: &'static str,
    pub(crate) records: u64,
    pub(crate) requests: u64,
    pub(crate) rate_limited: u64,
    pub(crate) retries: u64,
    /// Share of the `created` range read, 0..=1.
    pub(crate) done: f64,
    pub(crate) requests_per_sec: f64,
    pub(crate) limit_per_sec: f64,
    /// Rows this sync will likely emit for the stream.
    pub(crate) row_estimate: u64,
    pub(crate) eta_secs: Option<f64>,
    pub(crate) elapsed_secs: f64,
    pub(crate) finished: bool,
}

impl Progress {
    pub(crate) fn new() -> Arc<Progress> {
        Arc::new(Progress {
            started: Instant::now(),
            streams: Mutex::new(BTreeMap::new()),
        })
    }

    fn with(&self, stream: &'static str, f: impl FnOnce(&mut StreamProgress)) {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(stream).or_default());
    }

    /// A stream's read starts, on `path`.
    pub(crate) fn start(&self, stream: &'static str, path: &'static str) {
        self.with(stream, |s| {
            s.path = path;
            s.started.get_or_insert_with(Instant::now);
        });
    }

    /// `records` more records of `stream` went to the sink.
    pub(crate) fn records(&self, stream: &'static str, records: usize) {
        self.with(stream, |s| s.records += records as u64);
    }

    /// The planner's view: the seconds of `created` to read in all, those left, and the
    /// pages estimated left. With several accounts the figures add up.
    pub(crate) fn plan(&self, stream: &'static str, range_secs: i64, left_secs: i64, pages: i64) {
        self.with(stream, |s| {
            s.range_secs = s.range_secs.max(range_secs);
            s.left_secs = left_secs;
            s.left_pages = pages;
            // Another account's read of the stream: not finished after all.
            s.finished = None;
        });
    }

    /// The stream is read.
    pub(crate) fn finish(&self, stream: &'static str) {
        self.with(stream, |s| {
            s.left_secs = 0;
            s.left_pages = 0;
            s.finished = Some(Instant::now());
        });
    }

    /// Every stream's figures now.
    pub(crate) fn figures(&self, client: &Client) -> Vec<Figures> {
        let map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(stream, s)| {
                let counts = client.stats().endpoint(s.path);
                let start = s.started.unwrap_or(self.started);
                let end = s.finished.unwrap_or_else(Instant::now);
                let elapsed = end.duration_since(start).as_secs_f64().max(0.001);
                let done = if s.finished.is_some() || s.range_secs <= 0 {
                    if s.finished.is_some() { 1.0 } else { 0.0 }
                } else {
                    (1.0 - s.left_secs as f64 / s.range_secs as f64).clamp(0.0, 1.0)
                };
                let rate = counts.requests as f64 / elapsed;
                let per_page = if counts.requests > 0 {
                    s.records as f64 / counts.requests as f64
                } else {
                    0.0
                };
                Figures {
                    stream,
                    records: s.records,
                    requests: counts.requests,
                    rate_limited: counts.rate_limited,
                    retries: counts.retries,
                    done,
                    requests_per_sec: rate,
                    limit_per_sec: client.endpoint_rate(s.path),
                    row_estimate: s.records + (s.left_pages.max(0) as f64 * per_page) as u64,
                    eta_secs: (s.finished.is_none() && rate > 0.0)
                        .then(|| s.left_pages.max(0) as f64 / rate),
                    elapsed_secs: elapsed,
                    finished: s.finished.is_some(),
                }
            })
            .collect()
    }
}

impl Figures {
    /// One line for a person.
    pub(crate) fn line(&self) -> String {
        let eta = match (self.finished, self.eta_secs) {
            (true, _) => "done".to_owned(),
            (false, Some(eta)) => format!("ETA {eta:.0}s"),
            (false, None) => "ETA ?".to_owned(),
        };
        format!(
            "{}: {} records, {} pages, {:.0}% of range, {:.1}/{:.0} req/s, {} 429s, {} retries, {eta}",
            self.stream,
            self.records,
            self.requests,
            self.done * 100.0,
            self.requests_per_sec,
            self.limit_per_sec,
            self.rate_limited,
            self.retries,
        )
    }

    /// The end-of-run summary line.
    pub(crate) fn summary(&self) -> String {
        format!(
            "stream {} done: {} records, {} requests, {} 429s, {} retries, {:.1} s",
            self.stream,
            self.records,
            self.requests,
            self.rate_limited,
            self.retries,
            self.elapsed_secs
        )
    }
}

/// Terminal lines, one per stream, when stderr is a terminal.
pub(crate) struct Display {
    multi: indicatif::MultiProgress,
    bars: BTreeMap<&'static str, indicatif::ProgressBar>,
}

impl Display {
    /// `None` when stderr is not a terminal: nothing is drawn.
    pub(crate) fn for_stderr() -> Option<Display> {
        std::io::stderr().is_terminal().then(|| Display {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            ),
            bars: BTreeMap::new(),
        })
    }

    fn draw(&mut self, figures: &[Figures]) {
        for f in figures {
            let bar = self.bars.entry(f.stream).or_insert_with(|| {
                let bar = self.multi.add(indicatif::ProgressBar::new(1000));
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{bar:20.cyan/blue} {msg}")
                {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_position((f.done * 1000.0) as u64);
            bar.set_message(f.line());
        }
    }

    fn finish(self, figures: &[Figures]) {
        let mut this = self;
        this.draw(figures);
        for bar in this.bars.values() {
            bar.finish();
        }
    }
}

/// A task aborted when its handle is dropped: the reporter of a read that is dropped
/// half way must not live on, holding the output open.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Shows `progress` until `stop` fires: terminal lines (if any) every 250 ms, Airbyte
/// figures every [`LOG_EVERY`] through `send`; then the summary.
///
/// # Errors
/// Only `send`'s (a closed output).
pub(crate) async fn report<F, Fut>(
    progress: Arc<Progress>,
    client: Client,
    mut display: Option<Display>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    send: F,
) -> Result<(), crate::error::Error>
where
    F: Fn(AirbyteMessage) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::error::Error>>,
{
    let mut draw = tokio::time::interval(DRAW_EVERY);
    let every = std::env::var(LOG_EVERY_VAR)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|secs| *secs > 0.0)
        .map_or(LOG_EVERY, Duration::from_secs_f64);
    let mut log = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = draw.tick() => {
                if let Some(display) = display.as_mut() {
                    display.draw(&progress.figures(&client));
                }
            }
            _ = log.tick() => {
                let figures = progress.figures(&client);
                for f in &figures {
                    send(AirbyteMessage::estimate(f.stream, f.row_estimate)).await?;
                }
                let lines: Vec<String> = figures.iter().map(Figures::line).collect();
                send(AirbyteMessage::log("INFO", format!("progress: {}", lines.join("; ")))).await?;
            }
        }
    }
    let figures = progress.figures(&client);
    if let Some(display) = display {
        display.finish(&figures);
    }
    for line in summary(&figures) {
        send(AirbyteMessage::log("INFO", line)).await?;
    }
    Ok(())
}

/// The end-of-run lines: one per stream that read records or met trouble (429s,
/// retries), and one naming the streams that had nothing to read, so a continuous sync's
/// idle periods or a catalog of many empty streams do not fill the log.
fn summary(figures: &[Figures]) -> Vec<String> {
    let (busy, idle): (Vec<&Figures>, Vec<&Figures>) = figures
        .iter()
        .partition(|f| f.records > 0 || f.rate_limited > 0 || f.retries > 0);
    let mut lines: Vec<String> = busy.iter().map(|f| f.summary()).collect();
    if !idle.is_empty() {
        let names: Vec<&str> = idle.iter().map(|f| f.stream).collect();
        lines.push(format!(
            "no records for {} stream(s): {}",
            names.len(),
            names.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_counters() {
        let progress = Progress::new();
        progress.start("charges", "/v1/charges");
        progress.records("charges", 250);
        progress.plan("charges", 1000, 250, 3);
        let client = crate::stripe::Client::try_new(crate::stripe::ClientConfig {
            api_base: url::Url::parse("http://127.0.0.1:9").unwrap(),
            key: crate::secret::Secret::new("sk_test_x".to_owned()),
            stripe_version: "2020-08-27".to_owned(),
            account: None,
            rate_limit: 20.0,
            endpoint_rate_limit: 10.0,
            max_in_flight: 4,
            request_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let figures = progress.figures(&client);
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert_eq!((f.stream, f.records, f.requests), ("charges", 250, 0));
        assert!((f.done - 0.75).abs() < 1e-9);
        assert_eq!(f.limit_per_sec, 10.0);
        assert!(
            f.line()
                .starts_with("charges: 250 records, 0 pages, 75% of range")
        );
        progress.finish("charges");
        let f = &progress.figures(&client)[0];
        assert!(f.finished && f.done == 1.0 && f.row_estimate == 250);
        assert!(f.summary().contains("250 records"));
        let idle = Figures {
            stream: "disputes",
            records: 0,
            ..f.clone()
        };
        assert_eq!(
            summary(&[f.clone(), idle]),
            [
                f.summary(),
                "no records for 1 stream(s): disputes".to_owned()
            ]
        );
    }
}
