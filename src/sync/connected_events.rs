//! The connected accounts' own events: the changes of the streams whose events live in
//! each connected account's events list ([`EventsIn::ConnectedAccounts`]: a connected
//! account's `account.updated`, its persons' `person.*`, its external accounts'
//! `account.external_account.*`). Stripe lists those only under `Stripe-Account:
//! <account>`, never in the platform's `/v1/events` (Stripe's Connect webhooks guide;
//! stripe/stripe-go#315), so an incremental sync of these streams:
//! - lists the platform's connected accounts (`/v1/accounts`, the parent read), and
//!   sends the accounts created since the cursor as records, with all their children
//!   (they have no events from before);
//! - reads each account's events once, `[from, events_until)` in one window, with the
//!   client's `Stripe-Account` copy (the account's own rate limit, the shared cap on
//!   requests in flight), the accounts read at once;
//! - routes each event as the shared events pass does (`events.rs`): an update re-reads
//!   that parent's children, a child's own event goes to its stream, deletes flagged;
//! - says the streams' states only once every account's events are read: a killed or
//!   failed sync reads them again, never skips any.
//!
//! A connected account Stripe refuses (a 403, an account gone since the list) is a
//! clear error naming it, as a child read's refusal is: the streams fail, their cursor
//! stays, the other accounts are still read. It must not page the accounts' events in
//! windows of its own or pace requests: one call per account (plus pages), and the
//! client paces.
//!
//! [`EventsIn::ConnectedAccounts`]: crate::streams::EventsIn::ConnectedAccounts

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::Ctx;
use super::events::{self, EventsStream, MAX_EVENT_TYPES};
use super::record::decorate;
use crate::error::{Error, FailureType};
use crate::stripe;

/// The list of the platform's connected accounts (the `accounts` stream's endpoint).
const ACCOUNTS_PATH: &str = "/v1/accounts";

/// Reads the connected accounts' own events for `streams` (the top-level ones: their
/// selected children come with them), then their states.
///
/// # Errors
/// The accounts list failing; any account whose events cannot be read (all of them
/// named, after the others were read); the output closing.
pub(super) async fn read_connected_events(
    ctx: &Arc<Ctx>,
    streams: &[EventsStream],
) -> Result<(), Error> {
    let from = events::earliest(ctx, streams);
    let types = events::pass_types(ctx, streams);
    let accounts = list_accounts(ctx, streams).await?;
    let until = ctx.events_until;
    if from < until && !types.is_empty() {
        let results: Vec<(String, Result<(), Error>)> = stream::iter(accounts)
            .map(|account| {
                let types = &types;
                async move {
                    let result = match ctx.client.for_account(Some(account.clone())) {
                        Ok(client) => {
                            let chunks = types.chunks(MAX_EVENT_TYPES).map(|chunk| {
                                events::read_events_range(ctx, &client, streams, chunk, from, until)
                            });
                            futures::future::try_join_all(chunks).await.map(|_| ())
                        }
                        Err(err) => Err(err.into()),
                    };
                    (account, result)
                }
            })
            .buffer_unordered(ctx.split_budget.max(1))
            .collect()
            .await;
        let mut failed: Vec<(String, Error)> = Vec::new();
        for (account, result) in results {
            match result {
                Ok(()) => {}
                // Nothing else can succeed: the output is gone, or the key is refused.
                Err(
                    err @ (Error::Output(_) | Error::Stripe(stripe::Error::Unauthorized { .. })),
                ) => {
                    return Err(err);
                }
                Err(err) => failed.push((account, err)),
            }
        }
        if !failed.is_empty() {
            failed.sort_by(|a, b| a.0.cmp(&b.0));
            return Err(refused(&failed));
        }
    }
    events::send_states(ctx, streams, until).await
}

/// Every connected account of the platform, from `/v1/accounts` (newest first); the
/// ones created since the accounts stream's `from` go out as records, which reads their
/// children too. They are few (the accounts linked since the last sync), so they are
/// sent once the list is walked.
async fn list_accounts(ctx: &Ctx, streams: &[EventsStream]) -> Result<Vec<String>, Error> {
    let accounts = streams.iter().find(|s| s.def.path == ACCOUNTS_PATH);
    let mut records = Vec::new();
    let ids = super::walk_connected_accounts(&ctx.client, |raw, head| {
        let created = head.created.unwrap_or(0);
        if accounts.is_some_and(|s| created >= s.from) {
            records.push(decorate(
                raw,
                head.updated,
                (!head.updated).then_some(created),
                false,
                ctx.account.as_deref(),
            ));
        }
    })
    .await?;
    if let Some(stream) = accounts {
        ctx.records(stream.def.name, records).await?;
    }
    Ok(ids)
}

/// One error for every account whose events could not be read, naming each (the
/// accounts with the same answer together, ten of them at most, the rest counted).
fn refused(failed: &[(String, Error)]) -> Error {
    let failure_type = failed
        .iter()
        .map(|(_, err)| err.failure_type())
        .find(|t| *t != FailureType::ConfigError)
        .unwrap_or(FailureType::ConfigError);
    let mut by_answer: Vec<(String, Vec<&str>)> = Vec::new();
    for (account, err) in failed {
        let answer = err.to_string();
        match by_answer.iter_mut().find(|(a, _)| *a == answer) {
            Some((_, accounts)) => accounts.push(account),
            None => by_answer.push((answer, vec![account])),
        }
    }
    let groups: Vec<String> = by_answer
        .iter()
        .map(|(answer, accounts)| {
            let named = accounts
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = match accounts.len().saturating_sub(10) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!("{named}{more}: {answer}")
        })
        .collect();
    Error::StreamsFailed {
        message: format!(
            "the events of {} connected account(s) could not be read ({}); the cursor stays where it was and the next sync reads them again. Check that the platform can still read these accounts (a deauthorized or deleted account drops out of /v1/accounts)",
            failed.len(),
            groups.join("; "),
        ),
        failure_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused account is named with what Stripe said, and the error says the cursor
    /// stays; past ten accounts the rest are counted.
    #[test]
    fn refused_accounts_are_named() {
        let failed: Vec<(String, Error)> = (0..12)
            .map(|i| {
                (
                    format!("acct_{i:02}"),
                    Error::Stripe(stripe::Error::InvalidResponse {
                        path: "/v1/events".to_owned(),
                        message: "no".to_owned(),
                    }),
                )
            })
            .collect();
        let err = refused(&failed[..1]);
        let message = err.to_string();
        assert!(message.contains("acct_00"), "{message}");
        assert!(message.contains("cursor stays"), "{message}");
        let message = refused(&failed).to_string();
        assert!(message.contains("acct_09") && !message.contains("acct_10"));
        assert!(message.contains("and 2 more"), "{message}");
    }
}
