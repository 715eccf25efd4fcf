//! What the engine reads of an object (its head: id, created, own `updated`, type) and
//! the record it writes: the object as Stripe sent it plus our fields.

use crate::error::Error;
use crate::stripe;

/// The fields of a record the engine looks at, borrowed from the scan that found them.
pub(super) struct Head<'a> {
    pub(super) id: &'a str,
    /// `created`, or for invoice items, which have none, their `date`.
    pub(super) created: Option<i64>,
    /// The object has an `updated` of its own.
    pub(super) updated: bool,
    pub(super) object: Option<&'a str>,
}

/// The record as Stripe sent it, with our fields: `updated` (replacing Stripe's own
/// where the object has one, which only products do: `has_updated`), `is_deleted` and
/// `stripe_account`. The text is copied as is, the fields appended; only a record whose
/// `updated` is replaced goes through a parse.
pub(super) fn decorate(
    raw: &str,
    has_updated: bool,
    updated: Option<i64>,
    deleted: bool,
    account: Option<&str>,
) -> String {
    if let (true, Some(updated)) = (has_updated, updated)
        && let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(raw)
    {
        object.insert("updated".to_owned(), updated.into());
        if deleted {
            object.insert("is_deleted".to_owned(), true.into());
        }
        if let Some(account) = account {
            object.insert("stripe_account".to_owned(), account.into());
        }
        return serde_json::Value::Object(object).to_string();
    }
    let mut extra = String::new();
    if let (false, Some(updated)) = (has_updated, updated) {
        extra.push_str(&format!(",\"updated\":{updated}"));
    }
    if deleted {
        extra.push_str(",\"is_deleted\":true");
    }
    if let Some(account) = account {
        extra.push_str(",\"stripe_account\":");
        extra.push_str(&serde_json::Value::from(account).to_string());
    }
    if extra.is_empty() {
        return raw.to_owned();
    }
    let trimmed = raw.trim_end();
    let body = trimmed.strip_suffix('}').unwrap_or(trimmed);
    let mut out = String::with_capacity(body.len() + extra.len() + 1);
    out.push_str(body);
    out.push_str(&extra);
    out.push('}');
    out
}

/// Scans one object's text (an event's `data.object`) for its head: [`head_of`] reads it.
pub(super) fn scan(stream: &str, raw: &str) -> Result<stripe::scan::Head, Error> {
    stripe::scan::head(raw).map_err(|refusal| {
        let (stripe::scan::Refusal::Syntax(why) | stripe::scan::Refusal::Shape(why)) = refusal;
        invalid(stream, &why)
    })
}

/// The engine's head of an object a scan read ([`stripe::scan`]).
pub(super) fn head_of<'a>(stream: &str, head: &'a stripe::scan::Head) -> Result<Head<'a>, Error> {
    let id = head
        .id
        .as_deref()
        .ok_or_else(|| invalid(stream, "missing field `id`"))?;
    Ok(Head {
        id,
        created: head.created.or(head.date),
        updated: head.updated,
        object: head.object.as_deref(),
    })
}

fn invalid(stream: &str, why: &str) -> Error {
    Error::Stripe(stripe::Error::InvalidResponse {
        path: stream.to_owned(),
        message: format!("an object has no id or created: {why}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorate_appends_fields_and_keeps_the_rest_verbatim() {
        let raw = r#"{"id":"cus_1","created":5,"amount":1.50} "#;
        assert_eq!(
            decorate(raw, false, Some(7), true, Some("acct_1")),
            r#"{"id":"cus_1","created":5,"amount":1.50,"updated":7,"is_deleted":true,"stripe_account":"acct_1"}"#
        );
        let product = r#"{"id":"prod_1","created":5,"updated":9}"#;
        assert_eq!(decorate(product, true, None, false, None), product);
        let replaced: serde_json::Value =
            serde_json::from_str(&decorate(product, true, Some(12), true, None)).unwrap();
        assert_eq!(
            replaced,
            serde_json::json!({"id": "prod_1", "created": 5, "updated": 12, "is_deleted": true})
        );
    }
}
