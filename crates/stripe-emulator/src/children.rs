//! Child lists of the emulator: an invoice's line items (`/v1/invoices/{id}/lines`) and a
//! subscription's items (`/v1/subscription_items?subscription=…`). The children live in
//! their parent: the parent embeds its first page (at most [`EMBED_LIMIT`], `has_more`
//! when there are more, as Stripe does), and the rest of a long list is derived from the
//! parent alone ([`extra_lines`]), so the parent, its events and the child endpoint always
//! agree: a line item points at its invoice, an item at its subscription.
//!
//! It must not keep children apart from their parent: an advance that changes or deletes
//! a parent changes or deletes its children with it.

use serde_json::{Value, json};

use super::data::Gen;
use super::kids;
use super::rng::Rng;
use super::routes::{ApiError, base_name, parse_query, render_page, unknown_param};
use super::store::{ScopeData, Stream};
use super::{Change, ChangeKind};

/// Entries of a nested list Stripe embeds in its parent (and in an event's object).
pub(crate) const EMBED_LIMIT: usize = 10;
/// Line items of a long invoice: more than the embedded page holds.
const LONG_INVOICE_LINES: usize = 12;

/// Whether an invoice has more lines than its embedded list shows: about one in four,
/// chosen by its id so that the parent alone says it.
fn is_long(invoice_id: &str) -> bool {
    invoice_id.bytes().map(u32::from).sum::<u32>() % 4 == 0
}

/// A zero-amount line `k` of a long invoice, made from its first line.
fn free_line(invoice_id: &str, first: &Value, k: usize) -> Value {
    let mut line = first.clone();
    let suffix = invoice_id.strip_prefix("in_").unwrap_or(invoice_id);
    line["id"] = json!(format!("il_{suffix}{k:02}"));
    line["amount"] = json!(0);
    line["quantity"] = json!(0);
    line["description"] = json!("0 × free item");
    if let Some(o) = line.as_object_mut() {
        o.remove("discount_amounts");
    }
    line
}

/// Fills a new invoice's embedded `lines`: a long invoice gets zero-amount lines up to
/// [`EMBED_LIMIT`] and `has_more: true` (the rest are [`extra_lines`]).
pub(crate) fn pad_lines(invoice: &mut Value) {
    let id = invoice["id"].as_str().unwrap_or_default().to_owned();
    if !is_long(&id) {
        return;
    }
    let Some(first) = invoice.pointer("/lines/data/0").cloned() else {
        return;
    };
    let lines: Vec<Value> = std::iter::once(first.clone())
        .chain((1..EMBED_LIMIT).map(|k| free_line(&id, &first, k)))
        .collect();
    invoice["lines"]["data"] = json!(lines);
    invoice["lines"]["has_more"] = json!(true);
}

/// The lines of an invoice beyond its embedded page.
fn extra_lines(invoice: &Value) -> Vec<Value> {
    let id = invoice["id"].as_str().unwrap_or_default();
    let cut = invoice.pointer("/lines/has_more") == Some(&json!(true));
    match invoice.pointer("/lines/data/0") {
        Some(first) if cut => (EMBED_LIMIT..LONG_INVOICE_LINES)
            .map(|k| free_line(id, first, k))
            .collect(),
        _ => Vec::new(),
    }
}

/// Changes `count` invoices and `count` subscriptions through their children, at the
/// times `at` gives out, with the parent's event (Stripe has none for the child): a line
/// added to each invoice whose embedded list has room, the quantity of each
/// subscription's first item raised. Returns the parents' changes.
pub(crate) fn advance(
    g: &Gen<'_>,
    data: &mut ScopeData,
    rng: &mut Rng,
    count: usize,
    mut at: impl FnMut() -> i64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let invoices: Vec<Value> = data
        .col(Stream::Invoices)
        .iter_asc()
        .map(|o| o.value())
        .filter(|v| {
            v.pointer("/lines/has_more") != Some(&json!(true))
                && v.pointer("/lines/data")
                    .and_then(Value::as_array)
                    .is_some_and(|l| !l.is_empty() && l.len() < EMBED_LIMIT)
        })
        .take(count)
        .collect();
    let subscriptions: Vec<Value> = data
        .col(Stream::Subscriptions)
        .iter_asc()
        .map(|o| o.value())
        .filter(|v| v.pointer("/items/data/0").is_some())
        .take(count)
        .collect();
    let mut change = |data: &mut ScopeData, rng: &mut Rng, stream: Stream, v: &Value, event| {
        let t = at();
        data.put(stream, v);
        let e = g.event(rng, event, t, v, None, false);
        data.put(Stream::Events, &e);
        changes.push(Change {
            stream: stream.name().to_owned(),
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            kind: ChangeKind::Updated,
            event_type: event.to_owned(),
            at: t,
        });
    };
    for mut v in invoices {
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        let lines = v["lines"]["data"].as_array().cloned().unwrap_or_default();
        // Numbered past the lines a long invoice derives: ids stay unique.
        let line = free_line(&id, &lines[0], 20 + lines.len());
        if let Some(data) = v["lines"]["data"].as_array_mut() {
            data.push(line);
        }
        change(data, rng, Stream::Invoices, &v, "invoice.updated");
    }
    for mut v in subscriptions {
        let quantity = v["items"]["data"][0]["quantity"].as_i64().unwrap_or(1);
        v["items"]["data"][0]["quantity"] = json!(quantity + 1);
        change(
            data,
            rng,
            Stream::Subscriptions,
            &v,
            "customer.subscription.updated",
        );
    }
    changes
}

/// Every child of a parent object, in list order.
fn all_children(stream: &str, parent: &Value) -> Vec<Value> {
    let (field, extra) = match stream {
        "invoice_line_items" => ("lines", extra_lines(parent)),
        "subscription_items" => ("items", Vec::new()),
        _ => return Vec::new(),
    };
    let mut out: Vec<Value> = parent[field]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    out.extend(extra);
    out
}

/// The parent stream of a child stream.
fn parent_of(stream: &str) -> Option<Stream> {
    match stream {
        "invoice_line_items" => Some(Stream::Invoices),
        "subscription_items" => Some(Stream::Subscriptions),
        _ => None,
    }
}

/// Every child of a child stream of this file, parents oldest first.
pub(crate) fn objects(data: &ScopeData, stream: &str) -> Vec<Value> {
    let Some(parent) = parent_of(stream) else {
        return Vec::new();
    };
    data.col(parent)
        .iter_asc()
        .flat_map(|o| all_children(stream, &o.value()))
        .collect()
}

/// The `object` of a child stream of this file.
pub(crate) fn object_of(stream: &str) -> &'static str {
    match stream {
        "invoice_line_items" => "line_item",
        _ => "subscription_item",
    }
}

/// Ids of every child of a child stream, parents newest first (`None`: not a child
/// stream).
pub(crate) fn ids(data: &ScopeData, stream: &str) -> Option<Vec<String>> {
    if let Some(ids) = kids::ids(data, stream) {
        return Some(ids);
    }
    let parent = parent_of(stream)?;
    Some(
        data.col(parent)
            .iter_desc()
            .flat_map(|o| all_children(stream, &o.value()))
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Ids of the children of one parent (`None`: no such parent, or not a child stream).
pub(crate) fn ids_of(data: &ScopeData, stream: &str, parent_id: &str) -> Option<Vec<String>> {
    if kids::kid(stream).is_some() {
        return kids::ids_of(data, stream, parent_id);
    }
    let parent = data.col(parent_of(stream)?).get(parent_id)?.value();
    Some(
        all_children(stream, &parent)
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// The list routes with the query parameters each accepts (base names).
pub(crate) fn routes() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "/v1/invoices/{invoice}/lines",
            vec!["ending_before", "expand", "limit", "starting_after"],
        ),
        (
            "/v1/subscription_items",
            vec![
                "ending_before",
                "expand",
                "limit",
                "starting_after",
                "subscription",
            ],
        ),
    ]
    .into_iter()
    .chain(kids::routes())
    .collect()
}

/// Whether `stream` is a child stream the emulator serves.
pub(crate) fn is_child_stream(stream: &str) -> bool {
    parent_of(stream).is_some() || kids::kid(stream).is_some()
}

/// Whether `path` is a child list route (`serve` answers it).
pub(crate) fn serves(path: &str) -> bool {
    path == "/v1/subscription_items"
        || (path.starts_with("/v1/invoices/") && path.ends_with("/lines"))
        || kids::kid_for_path(path).is_some()
}

/// Serves a child list endpoint; `None` when `path` is not one.
/// `version`: the request's `Stripe-Version`.
pub(crate) fn serve(
    data: &ScopeData,
    version: &str,
    path: &str,
    query: &str,
) -> Option<Result<String, ApiError>> {
    let params = parse_query(query);
    if let Some(k) = kids::kid_for(path, &params, version) {
        return Some(k.and_then(|k| kids::page(data, k, path, &params)));
    }
    if path == "/v1/subscription_items" {
        return Some(subscription_items(data, &params));
    }
    let invoice = path
        .strip_prefix("/v1/invoices/")?
        .strip_suffix("/lines")
        .filter(|id| !id.contains('/'))?;
    Some(invoice_lines(data, invoice, &params))
}

fn invoice_lines(
    data: &ScopeData,
    id: &str,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    let page = Page::parse(params, &[])?;
    let invoice = data
        .col(Stream::Invoices)
        .get(id)
        .ok_or_else(|| ApiError::missing("invoice", id, "invoice"))?
        .value();
    page.render(
        &format!("/v1/invoices/{id}/lines"),
        all_children("invoice_line_items", &invoice),
    )
}

fn subscription_items(data: &ScopeData, params: &[(String, String)]) -> Result<String, ApiError> {
    let page = Page::parse(params, &["subscription"])?;
    let Some((_, id)) = params.iter().find(|(k, _)| k == "subscription") else {
        return Err(ApiError::bad("Missing required param: subscription.").param("subscription"));
    };
    let subscription = data
        .col(Stream::Subscriptions)
        .get(id)
        .ok_or_else(|| ApiError::missing("subscription", id, "subscription"))?
        .value();
    page.render(
        "/v1/subscription_items",
        all_children("subscription_items", &subscription),
    )
}

/// Pagination parameters of a child list.
pub(super) struct Page {
    limit: usize,
    after: Option<String>,
    before: Option<String>,
}

impl Page {
    pub(super) fn parse(params: &[(String, String)], filters: &[&str]) -> Result<Page, ApiError> {
        let mut page = Page {
            limit: 10,
            after: None,
            before: None,
        };
        for (k, v) in params {
            match base_name(k) {
                "limit" => {
                    let n: i64 = v
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::bad(format!("Invalid integer: {v}")).param(k))?;
                    if !(1..=100).contains(&n) {
                        return Err(ApiError::bad(if n < 1 {
                            "This value must be greater than or equal to 1."
                        } else {
                            "This value must be less than or equal to 100."
                        })
                        .param("limit"));
                    }
                    page.limit = n as usize;
                }
                "starting_after" if !v.is_empty() => page.after = Some(v.clone()),
                "ending_before" if !v.is_empty() => page.before = Some(v.clone()),
                "starting_after" | "ending_before" => {}
                "expand" => {
                    return Err(
                        ApiError::bad(format!("This property cannot be expanded ({v}).")).param(k),
                    );
                }
                f if filters.contains(&f) => {}
                other => return Err(unknown_param(other)),
            }
        }
        if page.after.is_some() && page.before.is_some() {
            return Err(ApiError::bad(
                "You may only specify one of these parameters: starting_after, ending_before.",
            )
            .param("ending_before"));
        }
        Ok(page)
    }

    /// One page of `items` (in list order) after/before the cursor.
    pub(super) fn render(&self, url: &str, items: Vec<Value>) -> Result<String, ApiError> {
        let pos = |id: &str, param: &str| {
            items
                .iter()
                .position(|c| c["id"] == id)
                .ok_or_else(|| ApiError::missing("line_item", id, param))
        };
        let (start, end) = match (&self.after, &self.before) {
            (Some(after), _) => {
                let start = pos(after, "starting_after")? + 1;
                (start, (start + self.limit).min(items.len()))
            }
            (None, Some(before)) => {
                let end = pos(before, "ending_before")?;
                (end.saturating_sub(self.limit), end)
            }
            (None, None) => (0, self.limit.min(items.len())),
        };
        let has_more = match &self.before {
            Some(_) => start > 0,
            None => end < items.len(),
        };
        Ok(render_page(
            url,
            items[start..end].iter().map(Value::to_string),
            has_more,
        ))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_long_invoice_embeds_ten_lines_and_derives_the_rest() {
        let id = (0..200)
            .map(|i| format!("in_test{i}"))
            .find(|id| is_long(id))
            .unwrap();
        let mut invoice = json!({"id": id, "lines": {"data": [{"id": "il_first", "amount": 5}], "has_more": false}});
        pad_lines(&mut invoice);
        assert_eq!(
            invoice["lines"]["data"].as_array().unwrap().len(),
            EMBED_LIMIT
        );
        assert_eq!(invoice["lines"]["has_more"], true);
        let all = all_children("invoice_line_items", &invoice);
        assert_eq!(all.len(), LONG_INVOICE_LINES);
        let mut ids: Vec<&str> = all.iter().map(|l| l["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), LONG_INVOICE_LINES, "ids are unique");
        let page = Page::parse(
            &[(
                "starting_after".into(),
                all[9]["id"].as_str().unwrap().into(),
            )],
            &[],
        )
        .unwrap()
        .render("/x", all.clone())
        .unwrap();
        let page: Value = serde_json::from_str(&page).unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["has_more"], false);
    }
}
