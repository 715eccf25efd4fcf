//! Per-endpoint rules of Stripe's wider read surface, apart from the windowed read in
//! `mod.rs`:
//! - endpoints without a `created` filter (accounts, checkout sessions, credit notes,
//!   early fraud warnings; the row's `created_filter: false`) are read by cursor
//!   pagination alone, newest first, and the range is applied to each object;
//! - a product the account does not use (Issuing not set up, Connect on an account that
//!   is not a platform) is an empty stream with a `LOG` warning saying so, never a
//!   failure; a permission error still fails the stream.
//!
//! It must not guess: only the two answer shapes [`stripe::Error::NotEnabled`] names
//! count as "not enabled", so a missing permission is never a silent empty stream.

use super::record::{decorate, head_of};
use super::{Ctx, PAGE_LIMIT};
use crate::error::Error;
use crate::protocol::AirbyteMessage;
use crate::streams::StreamDef;
use crate::stripe::{self, PageRef};

/// Reads every object of an endpoint without a `created` filter whose `created` is in
/// `[from, lt)` (`lt: None`: no upper bound). Stripe lists newest first, so the walk
/// stops at the first page that reaches below `from`. The caller saves the state once
/// the walk is done: newest first, no point below which everything is read exists
/// before the end.
///
/// # Errors
/// What the client returns; an object without an id.
pub(super) async fn read_unfiltered(
    ctx: &Ctx,
    def: &'static StreamDef,
    updated: bool,
    from: i64,
    lt: Option<i64>,
) -> Result<(), Error> {
    let mut starting_after: Option<String> = None;
    loop {
        let mut query: Vec<(&str, String)> = vec![("limit", PAGE_LIMIT.to_owned())];
        if let Some(after) = &starting_after {
            query.push(("starting_after", after.clone()));
        }
        query.extend(def.query.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let permit = ctx.emit.page_permit().await?;
        let page = client_for(&ctx.client, def).list(def.path, &query).await?;
        let PageRef {
            data,
            heads,
            has_more,
        } = page.parse()?;
        let mut records = Vec::with_capacity(data.len());
        let mut below = false;
        let mut last_id = None;
        for (raw, h) in data.iter().zip(heads) {
            let head = head_of(def.name, h)?;
            let created = head.created.unwrap_or(0);
            last_id = Some(head.id);
            if created < from {
                below = true;
                continue;
            }
            if lt.is_some_and(|lt| created >= lt) {
                continue;
            }
            let has_updated = head.updated;
            records.push(decorate(
                raw,
                has_updated,
                (updated && !has_updated).then_some(created),
                false,
                ctx.account.as_deref(),
            ));
        }
        ctx.records(def.name, records).await?;
        drop(permit);
        match (last_id, has_more && !below) {
            (Some(id), true) => starting_after = Some(id.to_owned()),
            _ => return Ok(()),
        }
    }
}

/// The client for `def`'s endpoint: the configured one, or one sending the row's
/// `Stripe-Version` (e.g. `invoice_payments` only exists from 2025-03-31.basil on).
pub(super) fn client_for(client: &stripe::Client, def: &StreamDef) -> stripe::Client {
    match def.stripe_version {
        Some(version) => client.with_stripe_version(version),
        None => client.clone(),
    }
}

/// A stream's outcome, with "the account does not use this product" turned into an
/// empty stream and a `LOG` warning. Any other error is returned as it is.
///
/// # Errors
/// `result`'s error unless it is [`stripe::Error::NotEnabled`]; the output closing.
pub(super) async fn unless_not_enabled(
    ctx: &Ctx,
    def: &'static StreamDef,
    result: Result<(), Error>,
) -> Result<(), Error> {
    let Err(Error::Stripe(stripe::Error::NotEnabled {
        path,
        status,
        message,
    })) = result
    else {
        return result;
    };
    let whose = ctx
        .account
        .as_deref()
        .map_or(String::new(), |a| format!(" of account {a}"));
    // Every selected stream of the read: the parent's children are empty too.
    for name in super::children::selected_names(&ctx.families, def.name) {
        ctx.emit
            .message(AirbyteMessage::log(
                "WARN",
                format!(
                    "stream {name}{whose} is empty: the account does not use the Stripe product behind {path} (Stripe answered {status}: {message}). Enable the product in the Stripe dashboard to read it, or deselect the stream",
                ),
            ))
            .await?;
    }
    Ok(())
}
