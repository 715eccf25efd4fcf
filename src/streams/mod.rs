//! The stream table: one row per stream, and everything about a stream is in its row
//! (endpoint, cursor, event types, fixed query parameters, schema). Adding a stream is
//! adding a row and a schema file.

pub mod catalog;
pub mod singer;

/// How an incremental sync learns about a stream's new and changed objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The objects never change after creation: read `created[gte]` windows.
    Created,
    /// The objects change: a first full read of the list endpoint, then `/v1/events`.
    Updated,
}

impl Cursor {
    pub fn field(self) -> &'static str {
        match self {
            Cursor::Created => "created",
            Cursor::Updated => "updated",
        }
    }
}

/// One stream.
#[derive(Debug)]
pub struct StreamDef {
    /// Stream name, as Airbyte's Stripe source names it.
    pub name: &'static str,
    /// API path of the list endpoint (or the single object).
    pub path: &'static str,
    /// Stripe's `object` value of the records: routes events to streams.
    pub object: &'static str,
    /// `None`: full refresh only.
    pub cursor: Option<Cursor>,
    /// Event types whose `data.object` is a new version of one of this stream's objects.
    pub event_types: &'static [&'static str],
    /// Query parameters sent on every list request.
    pub query: &'static [(&'static str, &'static str)],
    /// The endpoint is one object, not a list.
    pub single: bool,
    /// JSON schema of the records.
    pub schema: &'static str,
}

impl StreamDef {
    pub fn supports_incremental(&self) -> bool {
        self.cursor.is_some()
    }

    pub fn is_deletion(event_type: &str) -> bool {
        event_type.ends_with(".deleted")
    }
}

macro_rules! schema {
    ($name:literal) => {
        include_str!(concat!("../../schemas/", $name, ".json"))
    };
}

/// Every stream the connector reads.
pub const STREAMS: &[StreamDef] = &[
    StreamDef {
        name: "account",
        path: "/v1/account",
        object: "account",
        cursor: None,
        event_types: &[],
        query: &[],
        single: true,
        schema: schema!("account"),
    },
    StreamDef {
        name: "balance_transactions",
        path: "/v1/balance_transactions",
        object: "balance_transaction",
        cursor: Some(Cursor::Created),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("balance_transactions"),
    },
    StreamDef {
        name: "charges",
        path: "/v1/charges",
        object: "charge",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "charge.captured",
            "charge.expired",
            "charge.failed",
            "charge.pending",
            "charge.refunded",
            "charge.succeeded",
            "charge.updated",
        ],
        // Refunds are no longer embedded from API version 2022-11-15 on.
        query: &[("expand[]", "data.refunds")],
        single: false,
        schema: schema!("charges"),
    },
    StreamDef {
        name: "customers",
        path: "/v1/customers",
        object: "customer",
        cursor: Some(Cursor::Updated),
        event_types: &["customer.created", "customer.updated", "customer.deleted"],
        query: &[],
        single: false,
        schema: schema!("customers"),
    },
    StreamDef {
        name: "disputes",
        path: "/v1/disputes",
        object: "dispute",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "charge.dispute.funds_reinstated",
            "charge.dispute.funds_withdrawn",
        ],
        query: &[],
        single: false,
        schema: schema!("disputes"),
    },
    StreamDef {
        name: "events",
        path: "/v1/events",
        object: "event",
        cursor: Some(Cursor::Created),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("events"),
    },
    StreamDef {
        name: "invoices",
        path: "/v1/invoices",
        object: "invoice",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "invoice.created",
            "invoice.updated",
            "invoice.deleted",
            "invoice.finalized",
            "invoice.finalization_failed",
            "invoice.paid",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice.payment_action_required",
            "invoice.marked_uncollectible",
            "invoice.sent",
            "invoice.voided",
            "invoice.overdue",
            "invoice.will_be_due",
        ],
        query: &[],
        single: false,
        schema: schema!("invoices"),
    },
    StreamDef {
        name: "payment_intents",
        path: "/v1/payment_intents",
        object: "payment_intent",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "payment_intent.created",
            "payment_intent.succeeded",
            "payment_intent.canceled",
            "payment_intent.processing",
            "payment_intent.requires_action",
            "payment_intent.payment_failed",
            "payment_intent.partially_funded",
            "payment_intent.amount_capturable_updated",
        ],
        query: &[],
        single: false,
        schema: schema!("payment_intents"),
    },
    StreamDef {
        name: "payouts",
        path: "/v1/payouts",
        object: "payout",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "payout.created",
            "payout.updated",
            "payout.paid",
            "payout.failed",
            "payout.canceled",
            "payout.reconciliation_completed",
        ],
        query: &[],
        single: false,
        schema: schema!("payouts"),
    },
    StreamDef {
        name: "prices",
        path: "/v1/prices",
        object: "price",
        cursor: Some(Cursor::Updated),
        event_types: &["price.created", "price.updated", "price.deleted"],
        query: &[],
        single: false,
        schema: schema!("prices"),
    },
    StreamDef {
        name: "products",
        path: "/v1/products",
        object: "product",
        cursor: Some(Cursor::Updated),
        event_types: &["product.created", "product.updated", "product.deleted"],
        query: &[],
        single: false,
        schema: schema!("products"),
    },
    StreamDef {
        name: "refunds",
        path: "/v1/refunds",
        object: "refund",
        cursor: Some(Cursor::Updated),
        event_types: &["refund.created", "refund.updated", "charge.refund.updated"],
        query: &[],
        single: false,
        schema: schema!("refunds"),
    },
    StreamDef {
        name: "subscriptions",
        path: "/v1/subscriptions",
        object: "subscription",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.trial_will_end",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
        ],
        // Without it the list leaves out canceled subscriptions.
        query: &[("status", "all")],
        single: false,
        schema: schema!("subscriptions"),
    },
];

/// The stream of that name (raw or commerce).
pub fn find(name: &str) -> Option<&'static StreamDef> {
    all().find(|s| s.name == name)
}

/// Every selectable stream: the raw streams, then the commerce streams derived from them.
pub fn all() -> impl Iterator<Item = &'static StreamDef> {
    STREAMS.iter().chain(crate::commerce::STREAMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut names: Vec<_> = STREAMS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STREAMS.len(), "stream names are unique");
        for stream in STREAMS {
            let schema: serde_json::Value = serde_json::from_str(stream.schema)
                .unwrap_or_else(|e| panic!("{}: schema is not JSON: {e}", stream.name));
            let props = &schema["properties"];
            assert!(props["id"].is_object(), "{}: schema has id", stream.name);
            if let Some(cursor) = stream.cursor {
                assert!(
                    props[cursor.field()].is_object(),
                    "{}: cursor {} is in the schema",
                    stream.name,
                    cursor.field()
                );
            }
            if stream.cursor == Some(Cursor::Updated) {
                assert!(!stream.event_types.is_empty(), "{}", stream.name);
                assert!(props["is_deleted"].is_object(), "{}", stream.name);
            } else {
                assert!(stream.event_types.is_empty(), "{}", stream.name);
            }
            assert!(stream.path.starts_with("/v1/"), "{}", stream.name);
        }
    }

    #[test]
    fn each_event_type_belongs_to_one_stream() {
        let mut seen = std::collections::HashMap::new();
        for stream in STREAMS {
            for event_type in stream.event_types {
                assert!(
                    seen.insert(*event_type, stream.name).is_none(),
                    "{event_type} is listed twice"
                );
            }
        }
    }
}
