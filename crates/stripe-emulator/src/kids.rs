//! Child resources the emulator keeps apart from their parent, one row of [`KIDS`] each
//! (`kid_rows.rs`): application fee refunds and transfer reversals (which their parent
//! also embeds, first [`EMBED_LIMIT`]), checkout session line items, setup attempts,
//! customer balance transactions, bank accounts, payment methods, a connected account's
//! persons and external accounts, a subscription item's usage summaries (which it does
//! not), and a payout's balance transactions (the scope's balance transactions it paid
//! out). This file owns their building, their list routes
//! (`children.rs` dispatches to them) and their advances: a new child comes with its
//! parent's change and event (a refund with `application_fee.refunded`, a reversal with
//! `transfer.reversed`, an attempt with `setup_intent.succeeded`, a balance entry with
//! `customer.updated`), so parent, events and child list always agree; a child with
//! events of its own (a customer's bank accounts, `customer.source.*`) is created,
//! updated and deleted with those instead.
//!
//! It must not let a child and its parent disagree: the parent's embedded list is
//! re-rendered from the children each time one is added.

use serde_json::{Value, json};

use super::children::{EMBED_LIMIT, Page};
use super::data::{BuildParams, Gen};
use super::resources::{self, Src};
use super::rng::Rng;
use super::routes::{ApiError, unknown_param};
use super::store::{Collection, ScopeData, Stream};
use super::{Change, ChangeKind};

pub(crate) use super::kid_rows::{KIDS, Kid, NEWER_VERSION, ParamChange, Store};

/// Whether a row's parents are the platform's connected accounts (`Emulator::ids`
/// lists them from the registry).
pub(crate) fn parent_is_account(stream: &str) -> bool {
    kid(stream).is_some_and(|k| matches!(k.parent, Src::Account))
}

pub(crate) fn kid(stream: &str) -> Option<&'static Kid> {
    KIDS.iter().find(|k| k.stream == stream)
}

fn parent_col(data: &ScopeData, src: Src) -> Option<&Collection> {
    match src {
        Src::Stream(s) => Some(data.col(s)),
        Src::Resource(name) => resources::collection(data, name),
        Src::Account | Src::Child(_) => None,
    }
}

fn put_parent(data: &mut ScopeData, src: Src, v: &Value) {
    match src {
        Src::Stream(s) => data.put(s, v),
        Src::Resource(name) => resources::put(data, name, v),
        // A usage summary changes nothing of its subscription item.
        Src::Account | Src::Child(_) => {}
    }
}

fn parent_stream(src: Src) -> &'static str {
    match src {
        Src::Stream(s) => s.name(),
        Src::Resource(name) => name,
        Src::Account => "accounts",
        Src::Child(name) => name,
    }
}

fn parent_object(src: Src) -> &'static str {
    match src {
        Src::Stream(s) => s.object(),
        Src::Resource(name) => resources::find(name).map_or(name, |(_, r)| r.object),
        Src::Account => "account",
        Src::Child(name) => super::children::object_of(name),
    }
}

/// Every child of one parent, newest first (`None`: no such parent).
fn kids_of(data: &ScopeData, k: &Kid, parent_id: &str) -> Option<Vec<Value>> {
    if let Src::Account = k.parent {
        // The platform keeps its connected accounts' children, one entry per account.
        return data.kids.get(k.stream)?.get(parent_id).cloned();
    }
    if let Src::Child(name) = k.parent {
        super::children::ids(data, name)?
            .iter()
            .find(|id| *id == parent_id)?;
    } else {
        parent_col(data, k.parent)?.get(parent_id)?;
    }
    Some(match k.store {
        Store::Own => data
            .kids
            .get(k.stream)
            .and_then(|m| m.get(parent_id))
            .cloned()
            .unwrap_or_default(),
        Store::PaidOut => data
            .col(Stream::BalanceTransactions)
            .iter_desc()
            .filter(|o| o.has("payout", parent_id))
            .map(|o| o.value())
            .collect(),
    })
}

/// A new child of `parent` created at `at`, pointing at its parent.
fn make_kid(g: &Gen<'_>, rng: &mut Rng, k: &Kid, parent: &Value, at: i64) -> Value {
    let mut v = g.fx.get(k.object);
    v["id"] = json!(g.long_id(rng, k.prefix));
    v["object"] = json!(k.object);
    if v.get("created").is_some() {
        v["created"] = json!(at);
    }
    if v.get("livemode").is_some() {
        v["livemode"] = json!(g.livemode);
    }
    if v.get("currency").is_some() {
        v["currency"] = match parent["currency"].as_str() {
            Some(c) => json!(c),
            None => json!(g.currency),
        };
    }
    if let Some(field) = k.points_at {
        v[&field[1..]] = parent["id"].clone();
    }
    v
}

/// Adds `kid` (newest) to its parent, re-renders the parent's embedded list, stores
/// both; returns the parent's new version and what `attach` says changed.
fn add_kid(
    data: &mut ScopeData,
    k: &Kid,
    mut parent: Value,
    kid: Option<Value>,
    at: i64,
) -> (Value, Option<Value>) {
    let id = parent["id"].as_str().unwrap_or_default().to_owned();
    let mut kid = kid;
    let previous = (k.attach)(&mut parent, kid.as_mut(), at);
    let list = data
        .kids
        .entry(k.stream)
        .or_default()
        .entry(id.clone())
        .or_default();
    if let Some(kid) = kid {
        list.insert(0, kid);
    }
    if let Some(field) = k.embedded {
        parent[field] = json!({
            "object": "list",
            "data": list.iter().take(EMBED_LIMIT).collect::<Vec<_>>(),
            "has_more": list.len() > EMBED_LIMIT,
            "url": k.route.replace(route_param(k.route), &id),
        });
    }
    put_parent(data, k.parent, &parent);
    // A parent with children is never deleted by an advance (as invoices' and
    // subscriptions' references are not): its children stay listable.
    data.pinned.insert(id);
    (parent, previous)
}

/// The `{…}` part of a route.
fn route_param(route: &str) -> &str {
    match (route.find('{'), route.find('}')) {
        (Some(a), Some(b)) if a < b => &route[a..=b],
        _ => "{}",
    }
}

/// Gives the built history its children: every parent of a `with_parent` row, one in
/// `built_one_in` of the others (without events: the history before the event window
/// is not replayed).
pub(crate) fn build(g: &Gen<'_>, data: &mut ScopeData, p: &BuildParams, accounts: &[String]) {
    let mut rng = Rng::derive(p.seed, &[p.index, u64::from(p.livemode), 11]);
    let start = p.start - 1;
    for k in KIDS.iter().filter(|k| k.store == Store::Own) {
        let parents = parents(data, k, accounts);
        if let Src::Account = k.parent {
            let entries = data.kids.entry(k.stream).or_default();
            for a in accounts {
                entries.entry(a.clone()).or_default();
            }
        }
        for (n, parent) in parents.into_iter().enumerate() {
            if !(k.with_parent || (k.built_one_in > 0 && (n as u64).is_multiple_of(k.built_one_in)))
            {
                continue;
            }
            fill(g, data, &mut rng, k, parent, start);
        }
    }
}

/// A row's parents, oldest first: connected accounts (`Src::Account`) are the
/// platform's, `accounts`; they have no objects in the scope, only ids.
fn parents(data: &ScopeData, k: &Kid, accounts: &[String]) -> Vec<Value> {
    match k.parent {
        Src::Account => accounts.iter().map(|id| json!({ "id": id })).collect(),
        Src::Child(name) => super::children::objects(data, name),
        src => parent_col(data, src)
            .map(|c| c.iter_asc().map(|o| o.value()).collect())
            .unwrap_or_default(),
    }
}

/// Gives `parent` its children as of its creation (`with_parent`: one or two; else
/// one, created between the parent's creation and `until`).
fn fill(g: &Gen<'_>, data: &mut ScopeData, rng: &mut Rng, k: &Kid, parent: Value, until: i64) {
    let created = parent["created"].as_i64().unwrap_or(until);
    let mut parent = parent;
    let count = if k.with_parent { 1 + rng.index(2) } else { 1 };
    for _ in 0..count {
        let at = if k.with_parent {
            created
        } else {
            rng.range(created, until.max(created + 1))
        };
        let kid = make_kid(g, rng, k, &parent, at);
        parent = add_kid(data, k, parent, Some(kid), at).0;
    }
}

/// Applies `count` child changes per row at the times `at` gives out: new parents of
/// `with_parent` rows get their children; `count` eligible parents (oldest first) of
/// the others get a new child and their event. Returns the parents' changes.
///
/// The events of a connected account's children (persons, external accounts) are not
/// the platform's: the account owns them, so they go to `owned` (account id, event),
/// for that account's own events list (Stripe's Connect webhooks guide).
pub(crate) fn advance(
    g: &Gen<'_>,
    data: &mut ScopeData,
    rng: &mut Rng,
    count: usize,
    accounts: &[String],
    owned: &mut Vec<(String, Value)>,
    mut at: impl FnMut() -> i64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for k in KIDS {
        let parents = parents(data, k, accounts);
        if let (Src::Account, Store::Own) = (k.parent, k.store) {
            // A connected account linked since the data was built gets its children as
            // the built ones have them (and, like them, without events).
            let known = data.kids.get(k.stream);
            let new: Vec<Value> = parents
                .iter()
                .filter(|p| known.is_none_or(|m| !m.contains_key(p["id"].as_str().unwrap_or(""))))
                .cloned()
                .collect();
            for parent in new {
                let t = at();
                fill(g, data, rng, k, parent, t);
            }
        }
        if k.with_parent {
            let known = data.kids.get(k.stream);
            let new: Vec<Value> = parents
                .into_iter()
                .filter(|p| known.is_none_or(|m| !m.contains_key(p["id"].as_str().unwrap_or(""))))
                .collect();
            for parent in new {
                let t = parent["created"].as_i64().unwrap_or_default();
                fill(g, data, rng, k, parent, t);
            }
            continue;
        }
        if let Some(events) = k.own_events {
            changes.extend(advance_own(
                g, data, rng, k, events, parents, count, owned, &mut at,
            ));
            continue;
        }
        let Some(event) = k.event else {
            continue;
        };
        for parent in parents.into_iter().filter(|p| (k.eligible)(p)).take(count) {
            let t = at();
            let kid = (k.store == Store::Own).then(|| make_kid(g, rng, k, &parent, t));
            let (parent, previous) = add_kid(data, k, parent, kid, t);
            let e = g.event(rng, event, t, &parent, previous, false);
            data.put(Stream::Events, &e);
            changes.push(Change {
                stream: parent_stream(k.parent).to_owned(),
                id: parent["id"].as_str().unwrap_or_default().to_owned(),
                kind: ChangeKind::Updated,
                event_type: event.to_owned(),
                at: t,
            });
        }
    }
    changes
}

/// Creates, updates and deletes `count` children of a row with events of its own, each
/// with its event (the child's object; a deleted one as it was).
#[allow(clippy::too_many_arguments)]
fn advance_own(
    g: &Gen<'_>,
    data: &mut ScopeData,
    rng: &mut Rng,
    k: &Kid,
    [created, updated, deleted]: [&'static str; 3],
    parents: Vec<Value>,
    count: usize,
    owned: &mut Vec<(String, Value)>,
    at: &mut impl FnMut() -> i64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut change =
        |data: &mut ScopeData, rng: &mut Rng, v: &Value, kind, event: &str, t, previous| {
            let automatic = Some(event) == k.auto_update;
            let mut e = g.event(rng, event, t, v, previous, automatic);
            match (k.parent, k.points_at.and_then(|f| v.pointer(f)?.as_str())) {
                // The connected account's own event, in its events list.
                (Src::Account, Some(account)) => {
                    e["account"] = json!(account);
                    owned.push((account.to_owned(), e));
                }
                _ => data.put(Stream::Events, &e),
            }
            changes.push(Change {
                stream: k.stream.to_owned(),
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                kind,
                event_type: event.to_owned(),
                at: t,
            });
        };
    if parents.is_empty() {
        return changes;
    }
    // The oldest children, before this advance adds any: updated, then deleted.
    let existing: Vec<(String, Value)> = parents
        .iter()
        .filter_map(|p| p["id"].as_str())
        .flat_map(|id| {
            let list = data.kids.get(k.stream).and_then(|m| m.get(id));
            list.into_iter()
                .flatten()
                .rev()
                .map(move |c| (id.to_owned(), c.clone()))
        })
        .collect();
    for _ in 0..count {
        let t = at();
        let parent = parents[rng.index(parents.len())].clone();
        let kid = make_kid(g, rng, k, &parent, t);
        add_kid(data, k, parent, Some(kid.clone()), t);
        change(data, rng, &kid, ChangeKind::Created, created, t, None);
    }
    let mut targets = existing.into_iter();
    for (n, (parent, mut kid)) in targets.by_ref().take(count).enumerate() {
        let t = at();
        let auto = k
            .auto_update
            .filter(|_| n % 2 == 1 && kid["card"].is_object());
        let previous = if auto.is_some() {
            // The network renewed the card.
            let previous = json!({"card": {"exp_year": kid["card"]["exp_year"]}});
            let year = kid["card"]["exp_year"].as_i64().unwrap_or(2030);
            kid["card"]["exp_year"] = json!(year + 1);
            previous
        } else {
            let previous = json!({"metadata": kid["metadata"]});
            kid["metadata"]["emulator_change"] = json!(t.to_string());
            previous
        };
        if let Some(c) = data
            .kids
            .get_mut(k.stream)
            .and_then(|m| m.get_mut(&parent))
            .and_then(|l| l.iter_mut().find(|c| c["id"] == kid["id"]))
        {
            *c = kid.clone();
        }
        change(
            data,
            rng,
            &kid,
            ChangeKind::Updated,
            auto.unwrap_or(updated),
            t,
            Some(previous),
        );
    }
    for (parent, kid) in targets.take(count) {
        let t = at();
        if let Some(list) = data.kids.get_mut(k.stream).and_then(|m| m.get_mut(&parent)) {
            list.retain(|c| c["id"] != kid["id"]);
        }
        change(data, rng, &kid, ChangeKind::Deleted, deleted, t, None);
    }
    changes
}

/// The row whose list route `path` is.
pub(crate) fn kid_for_path(path: &str) -> Option<&'static Kid> {
    KIDS.iter().filter(|k| k.store == Store::Own).find(|k| {
        let param = route_param(k.route);
        match k.route.split_once(param) {
            Some((head, tail)) => path
                .strip_prefix(head)
                .and_then(|rest| rest.strip_suffix(tail))
                .is_some_and(|id| !id.is_empty() && !id.contains('/')),
            None => path == k.route,
        }
    })
}

/// The row that answers `GET path?params` at `version`: among the rows on the route,
/// the one its [`Kid::filter`] selects.
///
/// # Errors
/// An older version's answer where the route changed since ([`Since`]); no filter
/// value where the route is shared.
pub(crate) fn kid_for(
    path: &str,
    params: &[(String, String)],
    version: &str,
) -> Option<Result<&'static Kid, ApiError>> {
    let first = kid_for_path(path)?;
    if let Some(since) = first.since.as_ref().filter(|s| version < s.version) {
        let sent = params.iter().any(|(k, _)| k == since.param);
        match since.change {
            ParamChange::MadeOptional if !sent => {
                return Some(Err(ApiError::bad(format!(
                    "Missing required param: {}.",
                    since.param
                ))
                .param(since.param)));
            }
            ParamChange::Added if sent => return Some(Err(unknown_param(since.param))),
            _ => {}
        }
    }
    let Some((name, _)) = first.filter else {
        return Some(Ok(first));
    };
    let value = params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let rows = KIDS.iter().filter(|k| k.route == first.route);
    let values: Vec<&str> = rows.clone().filter_map(|k| k.filter.map(|f| f.1)).collect();
    Some(
        rows.into_iter()
            .find(|k| k.filter.map(|f| f.1) == value)
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "The emulator serves {} by `{name}`: pass {name}={}.",
                    first.route,
                    values.join(" or {name}=").replace("{name}", name)
                ))
                .param(name)
            }),
    )
}

/// The `Stripe-Version` a client must send to a child route whose form changed after
/// the 2022 spec.
pub(crate) fn version_for(path: &str) -> Option<&'static str> {
    kid_for_path(path)
        .and_then(|k| k.since.as_ref())
        .map(|_| NEWER_VERSION)
}

pub(crate) fn page(
    data: &ScopeData,
    k: &Kid,
    path: &str,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    let filters: Vec<&str> = k
        .parent_param
        .into_iter()
        .chain(k.filter.map(|f| f.0))
        .chain(k.since.as_ref().map(|s| s.param))
        .collect();
    let page = Page::parse(params, &filters)?;
    let parent_id = match k.parent_param {
        Some(name) => params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ApiError::bad(format!("Missing required param: {name}.")).param(name))?,
        None => {
            let (head, tail) = k
                .route
                .split_once(route_param(k.route))
                .unwrap_or((k.route, ""));
            path[head.len()..path.len() - tail.len()].to_owned()
        }
    };
    let param = k
        .parent_param
        .unwrap_or_else(|| route_param(k.route).trim_matches(|c| c == '{' || c == '}'));
    let mut kids = kids_of(data, k, &parent_id)
        .ok_or_else(|| ApiError::missing(parent_object(k.parent), &parent_id, param))?;
    // A filter (`object`, `type`) keeps the children whose field of that name has the value.
    for name in k
        .filter
        .map(|f| f.0)
        .into_iter()
        .chain(k.since.as_ref().map(|s| s.param))
    {
        if let Some((_, value)) = params.iter().find(|(key, _)| key == name) {
            kids.retain(|c| c[name] == value.as_str());
        }
    }
    page.render(path, kids)
}

/// Ids of every child of a row's stream, parents newest first (`None`: not a row).
pub(crate) fn ids(data: &ScopeData, stream: &str) -> Option<Vec<String>> {
    let k = kid(stream)?;
    let parents: Vec<String> = match k.parent {
        Src::Child(name) => super::children::ids(data, name).unwrap_or_default(),
        src => parent_col(data, src)
            .map(|c| c.iter_desc().map(|o| o.id.clone()).collect())
            .unwrap_or_default(),
    };
    Some(
        parents
            .iter()
            .flat_map(|p| kids_of(data, k, p).unwrap_or_default())
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Ids of one parent's children (`None`: not a row, or no such parent).
pub(crate) fn ids_of(data: &ScopeData, stream: &str, parent_id: &str) -> Option<Vec<String>> {
    Some(
        kids_of(data, kid(stream)?, parent_id)?
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// The rows' list routes with the query parameters each accepts (base names).
pub(crate) fn routes() -> Vec<(&'static str, Vec<&'static str>)> {
    KIDS.iter()
        .filter(|k| k.store == Store::Own)
        .map(|k| {
            let mut params = vec!["ending_before", "expand", "limit", "starting_after"];
            params.extend(k.parent_param);
            params.extend(k.filter.map(|f| f.0));
            params.extend(k.since.as_ref().map(|s| s.param));
            params.sort_unstable();
            (k.route, params)
        })
        .collect()
}
