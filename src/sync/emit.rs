//! The sending half of the output channel: records, STATEs (per account, merged when
//! several accounts are read) and other messages, with the page budget that keeps the
//! read no further ahead of the sink than the channel holds.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::progress;
use crate::error::Error;
use crate::protocol::AirbyteMessage;
use crate::sinks::Output;

/// The sending half of the output channel.
#[derive(Clone)]
pub(super) struct Emitter {
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
    pub(super) progress: Arc<progress::Progress>,
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
    pub(super) fn new(
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
    pub(super) async fn page_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Error> {
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

    pub(super) async fn records(
        &self,
        stream: &'static str,
        records: Vec<String>,
    ) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        self.progress.records(stream, records.len());
        self.send(Output::Records { stream, records }).await
    }

    pub(super) async fn state(
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
    pub(super) async fn flush_states(&self) -> Result<(), Error> {
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

    pub(super) async fn message(&self, message: AirbyteMessage) -> Result<(), Error> {
        self.send(Output::Message(message)).await
    }
}
