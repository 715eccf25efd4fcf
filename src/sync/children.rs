//! Child streams (invoice → `invoice_line_items`, subscription → `subscription_items`,
//! application fee → `application_fees_refunds`, checkout session →
//! `checkout_sessions_line_items`, …): records that hang off the objects of a parent
//! stream, described by the row's
//! [`Child`](crate::streams::Child). This file owns:
//! - the families: a selected child is read through its parent, which is listed once per
//!   sync for itself (when selected) and every selected child of it, and listed for the
//!   children alone when it is not selected ([`fold`]); a grandchild (a subscription
//!   item's usage summaries) is a child of its parent's family, itself a child of the
//!   top-level row's, so one list of that row feeds every level;
//! - the groups: a family shares one read in one sync mode, so the selected streams are
//!   read in a group per mode ([`by_mode`]), a child in another mode than its parent
//!   with a read of the parent of its own;
//! - the child records: the parent's embedded first page used as it is, the child
//!   endpoint called only when that list says `has_more` (an event's object cuts nested
//!   lists at 10) or the parent does not embed it, the parent's fields added (Airbyte's
//!   names), `is_deleted` on the children of a deleted parent ([`emit`]);
//! - the states: a child's state is its family's read, said under the child's name
//!   after the parent's records and the children's are out, so a killed sync resumes each
//!   child where the parent read stopped, without re-reading every parent.
//!
//! Incrementally the parent's events (in the one shared events pass, or the connected
//! accounts' own events for a connected account's children) carry the changed
//! parents, so only those parents' children are read again; a child with events of its
//! own (bank accounts: `customer.source.*`) also gets those from the same pass
//! ([`own_event_stream`]), deletes flagged. It must not plan ranges or
//! pace requests: the parent's read (`mod.rs`) and the client do.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Ctx, Error, PAGE_LIMIT, PlannedStream, StreamResults, copy_error};
use crate::streams::catalog::SyncMode;
use crate::streams::{ParentField, StreamDef};
use crate::sync::state::StreamState;

/// The selected children of one parent stream.
#[derive(Debug)]
pub(super) struct Family {
    pub(super) children: Vec<&'static StreamDef>,
    /// The parent is selected itself: its records and states go out too.
    pub(super) emit_parent: bool,
}

/// Families by parent stream name.
pub(super) type Families = HashMap<&'static str, Family>;

/// The selected streams in groups of one sync mode each, a full refresh only stream
/// (no cursor) with the full refreshes: a family shares one read, so a child selected in
/// another mode than its parent gets a read of the parent of its own, in its mode.
pub(super) fn by_mode(streams: &[PlannedStream]) -> Vec<Vec<PlannedStream>> {
    let mode = |s: &PlannedStream| match s.def.cursor {
        Some(_) => s.mode,
        None => SyncMode::FullRefresh,
    };
    let mut groups: Vec<Vec<PlannedStream>> = Vec::new();
    for wanted in [SyncMode::Incremental, SyncMode::FullRefresh] {
        let group: Vec<PlannedStream> = streams
            .iter()
            .filter(|s| mode(s) == wanted)
            .map(|s| PlannedStream {
                def: s.def,
                mode: s.mode,
            })
            .collect();
        if !group.is_empty() {
            groups.push(group);
        }
    }
    groups
}

/// The streams to read: the selected ones with their children folded into their parent
/// (a parent not selected is read for its children, in their mode), and the families.
/// A grandchild (a subscription item's usage summaries) is a child of its parent's
/// family, which hangs off the top-level row as one of its children, selected or not:
/// one list of the top-level parent feeds every level.
pub(super) fn fold(streams: &[PlannedStream]) -> (Vec<PlannedStream>, Families) {
    let mut out: Vec<PlannedStream> = streams
        .iter()
        .filter(|s| s.def.child.is_none())
        .map(|s| PlannedStream {
            def: s.def,
            mode: s.mode,
        })
        .collect();
    let selected = |name: &str| streams.iter().any(|s| s.def.name == name);
    let mut families = Families::new();
    for stream in streams.iter().filter(|s| s.def.child.is_some()) {
        let mut def = stream.def;
        // Up the tree: each level a child of its parent's family, until a top-level row.
        while let Some(child) = &def.child {
            // The table test proves every parent is a row.
            let Some(parent) = crate::streams::find(child.parent) else {
                break;
            };
            let family = families.entry(parent.name).or_insert_with(|| Family {
                children: Vec::new(),
                emit_parent: selected(parent.name),
            });
            if !family.children.iter().any(|c| c.name == def.name) {
                family.children.push(def);
            }
            if parent.child.is_none() && !out.iter().any(|p| p.def.name == parent.name) {
                out.push(PlannedStream {
                    def: parent,
                    mode: stream.mode,
                });
            }
            def = parent;
        }
    }
    (out, families)
}

/// The selected streams a read of `parent`'s family serves: the parent (when selected),
/// then its children, and theirs (a child that is a family itself: its selected
/// members).
fn members(parent: &'static str, families: &Families) -> Vec<&'static str> {
    let Some(family) = families.get(parent) else {
        return vec![parent];
    };
    let mut out: Vec<&'static str> = family.emit_parent.then_some(parent).into_iter().collect();
    for child in &family.children {
        out.extend(members(child.name, families));
    }
    out
}

/// The state a stream's read starts from: its own, or for a parent with children the
/// one its members share. Members with different states (a child selected for the
/// first time) share none: the family reads from the start, so nobody misses anything.
pub(super) fn shared_state<'a>(
    parent: &'static str,
    families: &Families,
    state_of: impl Fn(&'static str) -> Option<&'a StreamState>,
) -> Option<&'a StreamState> {
    let mut states = members(parent, families).into_iter().map(&state_of);
    let first = states.next().flatten();
    if states.all(|s| s == first) {
        first
    } else {
        None
    }
}

/// Like [`shared_state`], for the ranges a resumed full refresh has done.
///
/// # Errors
/// A malformed saved progress (`done_of`'s error).
pub(super) fn shared_done(
    parent: &'static str,
    families: &Families,
    done_of: impl Fn(&'static str) -> Result<Vec<(i64, i64)>, Error>,
) -> Result<Vec<(i64, i64)>, Error> {
    let mut all = Vec::new();
    for name in members(parent, families) {
        all.push(done_of(name)?);
    }
    Ok(match all.split_first() {
        Some((first, rest)) if rest.iter().all(|d| d == first) => first.clone(),
        _ => Vec::new(),
    })
}

/// Each stream's outcome, a parent's repeated for its children (their records come
/// from its read) and left out when the parent was read for them alone.
pub(super) fn spread(results: StreamResults, families: &Families) -> StreamResults {
    let mut out = Vec::with_capacity(results.len());
    for (name, result) in results {
        let names = members(name, families);
        for member in names.iter().filter(|m| **m != name) {
            out.push((*member, result.as_ref().map(|_| ()).map_err(copy_error)));
        }
        if names.contains(&name) {
            out.push((name, result));
        }
    }
    out
}

/// The selected streams a read of `stream` serves: itself when selected (or without a
/// family), then its selected children.
pub(super) fn selected_names(families: &Families, stream: &'static str) -> Vec<&'static str> {
    members(stream, families)
}

/// The event types of the children of `parent` that have events of their own (a
/// customer's bank accounts: `customer.source.*`), for the shared events pass.
pub(super) fn own_event_types<'a>(
    families: &'a Families,
    parent: &str,
) -> impl Iterator<Item = &'static str> + 'a {
    families
        .get(parent)
        .into_iter()
        .flat_map(|f| f.children.iter())
        .flat_map(|c| c.event_types.iter().copied())
}

/// The child stream of `parent` an event of this type about an object of this type
/// belongs to (its own events: the event's object is the child, as it is now).
pub(super) fn own_event_stream(
    families: &Families,
    parent: &str,
    event_type: &str,
    object: Option<&str>,
) -> Option<&'static StreamDef> {
    families
        .get(parent)?
        .children
        .iter()
        .copied()
        .find(|c| c.event_types.contains(&event_type) && object == Some(c.object))
}

/// Child endpoint calls of one page of parents in flight at once (a parent that embeds
/// all its children makes none): at 250 ms a call, one at a time would hold a page of
/// 100 parents for 25 s.
const CHILD_CALLS_AT_ONCE: usize = 16;

/// What a child record takes from its parent.
struct ParentHead<'a> {
    object: &'a Map<String, Value>,
    id: &'a str,
    created: Option<i64>,
    updated: Option<i64>,
    deleted: bool,
}

/// Sends the children of a page of parent records (as the engine decorated them:
/// `updated` and `is_deleted` are there) to each selected child stream, before the
/// parent's records and the state that covers them.
///
/// # Errors
/// A parent record that is not an object with an id; what the client returns for a child
/// endpoint; the output closing.
pub(super) async fn emit(ctx: &Ctx, family: &Family, parents: &[String]) -> Result<(), Error> {
    let first = family.children[0].name;
    let objects = parents
        .iter()
        .map(|raw| {
            serde_json::from_str::<Map<String, Value>>(raw)
                .map_err(|err| invalid(first, format!("a parent is not an object: {err}")))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let heads = objects
        .iter()
        .map(|parent| {
            let Some(id) = parent.get("id").and_then(Value::as_str) else {
                return Err(invalid(first, "a parent object has no id".to_owned()));
            };
            Ok(ParentHead {
                object: parent,
                id,
                created: parent
                    .get("created")
                    .or_else(|| parent.get("date"))
                    .and_then(Value::as_i64),
                updated: parent.get("updated").and_then(Value::as_i64),
                deleted: parent.get("is_deleted") == Some(&Value::Bool(true)),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // Every child stream at once (each has an endpoint and a limit of its own), and in
    // each up to CHILD_CALLS_AT_ONCE of the parents' child calls (the client paces them
    // to the endpoint's limit); records in the parents' order.
    let mut streams = Vec::with_capacity(family.children.len());
    for def in &family.children {
        streams.push(children_of_page(ctx, def, &heads));
    }
    let records = futures::future::try_join_all(streams).await?;
    for (def, records) in family.children.iter().zip(records) {
        // A child that is a family itself (subscription items) feeds its own children
        // first, and goes out only when selected.
        Box::pin(ctx.records(def.name, records)).await?;
    }
    Ok(())
}

/// One child stream's records for a page of parents.
async fn children_of_page(
    ctx: &Ctx,
    def: &'static StreamDef,
    heads: &[ParentHead<'_>],
) -> Result<Vec<String>, Error> {
    use futures::StreamExt;
    // The row's `Stripe-Version` where its endpoint needs a newer one (payment methods).
    let client = super::endpoints::client_for(&ctx.client, def);
    let mut records = Vec::new();
    let mut calls = futures::stream::FuturesOrdered::new();
    for head in heads {
        calls.push_back(children_of(ctx, &client, def, head));
        if calls.len() >= CHILD_CALLS_AT_ONCE
            && let Some(done) = calls.next().await
        {
            records.extend(done?);
        }
    }
    while let Some(done) = calls.next().await {
        records.extend(done?);
    }
    Ok(records)
}

/// The children of one parent for one child stream: the embedded page, and the rest
/// from the child endpoint when the embedded list says there is more.
async fn children_of(
    ctx: &Ctx,
    client: &crate::stripe::Client,
    def: &'static StreamDef,
    head: &ParentHead<'_>,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let Some(child) = &def.child else {
        return Ok(out);
    };
    let embedded = child
        .embedded
        .and_then(|field| head.object.get(field))
        .filter(|v| v.is_object());
    let mut after: Option<String> = None;
    let more = match embedded {
        Some(list) => {
            for item in list
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = item.get("id").and_then(Value::as_str) {
                    after = Some(id.to_owned());
                }
                out.push(record(ctx, def, item.clone(), head));
            }
            list.get("has_more") == Some(&Value::Bool(true))
        }
        // Not embedded (a row without `embedded`, or a parent object without the field):
        // the endpoint has them all.
        None => true,
    };
    // A deleted parent's children cannot be listed any more: its object (the event's)
    // is all there is.
    if !more || head.deleted {
        return Ok(out);
    }
    let path = def.path.replace("{id}", head.id);
    loop {
        let mut query: Vec<(&str, String)> = vec![("limit", PAGE_LIMIT.to_owned())];
        query.extend(
            child
                .query
                .iter()
                .map(|(k, v)| (*k, v.replace("{id}", head.id))),
        );
        if let Some(after) = &after {
            query.push(("starting_after", after.clone()));
        }
        let page = match client.list(&path, &query).await {
            Ok(page) => page,
            // The parent was deleted since its event or its list page (a customer
            // updated, then deleted): its children cannot be listed any more, and its
            // deletion comes as an event of its own. Only on a first page: a 404 for a
            // `starting_after` child is not the parent's and still fails.
            Err(crate::stripe::Error::Rejected { status: 404, .. }) if after.is_none() => {
                tracing::info!(
                    stream = def.name,
                    parent = head.id,
                    "the parent is gone: no children to read"
                );
                return Ok(out);
            }
            Err(err) => return Err(err.into()),
        };
        let page = page.parse()?;
        for raw in &page.data {
            let item: Value = serde_json::from_str(raw)
                .map_err(|err| invalid(def.name, format!("a child is not JSON: {err}")))?;
            let Some(id) = item.get("id").and_then(Value::as_str) else {
                return Err(invalid(def.name, "a child object has no id".to_owned()));
            };
            after = Some(id.to_owned());
            out.push(record(ctx, def, item, head));
        }
        if !page.has_more || page.data.is_empty() {
            return Ok(out);
        }
    }
}

/// A child object as a record: Stripe's object plus its parent's fields, `is_deleted`
/// for a deleted parent's children, and the connected account when a sync reads several.
fn record(ctx: &Ctx, def: &'static StreamDef, item: Value, parent: &ParentHead<'_>) -> String {
    let Value::Object(mut object) = item else {
        return item.to_string();
    };
    if let Some(child) = &def.child {
        for (field, what) in child.parent_fields {
            let value = match what {
                ParentField::Id => Value::from(parent.id),
                ParentField::Created => parent.created.map_or(Value::Null, Value::from),
                ParentField::Updated => parent
                    .updated
                    .or(parent.created)
                    .map_or(Value::Null, Value::from),
                ParentField::Field(name) => {
                    parent.object.get(*name).cloned().unwrap_or(Value::Null)
                }
            };
            object.insert((*field).to_owned(), value);
        }
        if parent.deleted && child.deletable {
            object.insert("is_deleted".to_owned(), Value::Bool(true));
        }
    }
    if let Some(account) = &ctx.account {
        object.insert("stripe_account".to_owned(), Value::from(account.as_str()));
    }
    Value::Object(object).to_string()
}

/// An answer that is not what Stripe sends, for a child stream.
fn invalid(stream: &str, message: String) -> Error {
    Error::Stripe(crate::stripe::Error::InvalidResponse {
        path: stream.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, mode: SyncMode) -> PlannedStream {
        PlannedStream {
            def: crate::streams::find(name).unwrap(),
            mode,
        }
    }

    #[test]
    fn children_fold_into_their_parent_once() {
        let inc = SyncMode::Incremental;
        let (streams, families) = fold(&[
            planned("invoice_line_items", inc),
            planned("customers", inc),
            planned("subscription_items", inc),
            planned("subscriptions", inc),
        ]);
        let names: Vec<&str> = streams.iter().map(|s| s.def.name).collect();
        assert_eq!(names, ["customers", "subscriptions", "invoices"]);
        assert!(
            !families["invoices"].emit_parent,
            "invoices is read for its lines"
        );
        assert!(families["subscriptions"].emit_parent);
        assert_eq!(
            families["subscriptions"].children[0].name,
            "subscription_items"
        );
    }

    #[test]
    fn a_family_shares_a_state_only_when_its_members_agree() {
        let (_, families) = fold(&[
            planned("invoice_line_items", SyncMode::Incremental),
            planned("invoices", SyncMode::Incremental),
        ]);
        let a = StreamState {
            cursor: 5,
            ..StreamState::default()
        };
        let b = StreamState {
            cursor: 9,
            ..StreamState::default()
        };
        assert_eq!(shared_state("invoices", &families, |_| Some(&a)), Some(&a));
        let mixed = |n: &str| (n == "invoices").then_some(&b).or(Some(&a));
        assert_eq!(shared_state("invoices", &families, mixed), None);
        let new_child = |n: &str| (n == "invoices").then_some(&a);
        assert_eq!(shared_state("invoices", &families, new_child), None);
        assert_eq!(shared_state("customers", &families, |_| Some(&b)), Some(&b));
    }

    /// A child in another mode than its parent gets a read of the parent of its own, in
    /// its mode; a full refresh only child (usage summaries) reads with the full
    /// refreshes.
    #[test]
    fn each_sync_mode_reads_its_own_families() {
        let groups = by_mode(&[
            planned("invoices", SyncMode::FullRefresh),
            planned("invoice_line_items", SyncMode::Incremental),
            planned("subscriptions", SyncMode::Incremental),
            planned("usage_records", SyncMode::Incremental),
        ]);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.def.name).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["invoice_line_items", "subscriptions"],
                vec!["invoices", "usage_records"]
            ]
        );
        let (streams, families) = fold(&groups[0]);
        let read: Vec<&str> = streams.iter().map(|s| s.def.name).collect();
        assert_eq!(read, ["subscriptions", "invoices"]);
        assert!(!families["invoices"].emit_parent);
        let (streams, families) = fold(&groups[1]);
        let read: Vec<&str> = streams.iter().map(|s| s.def.name).collect();
        assert_eq!(
            read,
            ["invoices", "subscriptions"],
            "usage summaries' own read"
        );
        assert!(!families["subscriptions"].emit_parent);
        assert_eq!(
            selected_names(&families, "subscriptions"),
            ["usage_records"]
        );
    }

    /// A grandchild hangs off its parent's family, which hangs off the top-level row:
    /// one read of subscriptions serves subscriptions, their items and the items' usage
    /// summaries, each said once.
    #[test]
    fn a_grandchild_reads_through_one_list_of_the_top_parent() {
        let full = SyncMode::FullRefresh;
        let (streams, families) = fold(&[
            planned("usage_records", full),
            planned("subscriptions", full),
            planned("subscription_items", full),
        ]);
        let read: Vec<&str> = streams.iter().map(|s| s.def.name).collect();
        assert_eq!(read, ["subscriptions"]);
        assert_eq!(families["subscriptions"].children.len(), 1);
        assert!(families["subscription_items"].emit_parent);
        assert_eq!(
            selected_names(&families, "subscriptions"),
            ["subscriptions", "subscription_items", "usage_records"]
        );
        // Without the items selected: read for their summaries alone.
        let (streams, families) = fold(&[planned("usage_records", full)]);
        assert_eq!(streams.len(), 1);
        assert!(!families["subscriptions"].emit_parent);
        assert!(!families["subscription_items"].emit_parent);
        assert_eq!(
            selected_names(&families, "subscriptions"),
            ["usage_records"]
        );
    }
}
