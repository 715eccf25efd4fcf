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
    /// Event types whose `data.object` is a new version of one of this stream's objects
    /// (on a child stream: its own events, routed by the shared events pass to it).
    pub event_types: &'static [&'static str],
    /// Query parameters sent on every list request.
    pub query: &'static [(&'static str, &'static str)],
    /// The endpoint is one object, not a list.
    pub single: bool,
    /// JSON schema of the records.
    pub schema: &'static str,
    /// The list endpoint filters on `created[gte|lt]`. Without it (accounts, checkout
    /// sessions, credit notes, early fraud warnings) the list is read by cursor
    /// pagination alone, newest first, and `start_date` is applied to each object.
    pub created_filter: bool,
    /// `Stripe-Version` sent to this endpoint instead of the configured one, for
    /// endpoints that only exist from a newer API version on.
    pub stripe_version: Option<&'static str>,
    /// A child stream: its records hang off the objects of a parent stream
    /// (`src/sync/children.rs` reads them). `path` is then the child endpoint.
    pub child: Option<Child>,
}

/// How a child stream hangs off its parent.
#[derive(Debug)]
pub struct Child {
    /// The parent stream (a row of [`STREAMS`]): one list of it feeds all its children.
    pub parent: &'static str,
    /// The parent's field holding the first page of its children, a Stripe list
    /// (`{"data": […], "has_more": …}`), e.g. an invoice's `lines`. `None`: the parent
    /// does not embed them (a checkout session's line items, a customer's balance
    /// transactions), so the child endpoint is called once per parent.
    pub embedded: Option<&'static str>,
    /// Query parameters of the child endpoint (the row's `path`, where `{id}` is the
    /// parent's id); `{id}` in a value is the parent's id too.
    pub query: &'static [(&'static str, &'static str)],
    /// Fields added to each record from its parent, as Airbyte's Stripe source names
    /// them.
    pub parent_fields: &'static [(&'static str, ParentField)],
    /// The cursor field: the parent's `updated`, under the name of `parent_fields`; or,
    /// for children that never change after creation (transfer reversals, setup
    /// attempts, customer balance transactions), their own `created`. `None`: full
    /// refresh only (usage record summaries).
    pub cursor_field: Option<&'static str>,
    /// Children of a deleted parent arrive with `is_deleted: true`.
    pub deletable: bool,
    /// The records have a stable `id`, the primary key (a usage record summary's is
    /// not: Airbyte's source declares none).
    pub keyed: bool,
}

/// A value of the parent copied onto its children's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentField {
    Id,
    Created,
    /// The parent's `updated` (its event's time, or its `created` from the list).
    Updated,
    /// The parent's top-level field of that name (e.g. a checkout session's `expires_at`).
    Field(&'static str),
}

impl StreamDef {
    pub fn supports_incremental(&self) -> bool {
        self.cursor.is_some()
    }

    /// The primary key field, when the records have one.
    pub fn primary_key(&self) -> Option<&'static str> {
        match &self.child {
            Some(child) if !child.keyed => None,
            _ => Some("id"),
        }
    }

    /// The record field the cursor is in, as discover names it (a child's is its
    /// parent's `updated` under the child's name, e.g. `invoice_updated`).
    pub fn cursor_field(&self) -> Option<&'static str> {
        match &self.child {
            Some(child) => self.cursor.and(child.cursor_field),
            None => self.cursor.map(Cursor::field),
        }
    }

    /// An event saying the object is gone: `*.deleted`, or a payment method detached
    /// from its customer (`payment_method.detached`: no longer in the customer's list).
    pub fn is_deletion(event_type: &str) -> bool {
        event_type.ends_with(".deleted") || event_type == "payment_method.detached"
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
        created_filter: false,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
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
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    // Connected accounts of the platform; read without a `created` filter, as Airbyte reads it.
    StreamDef {
        name: "accounts",
        path: "/v1/accounts",
        object: "account",
        cursor: Some(Cursor::Updated),
        event_types: &["account.updated"],
        query: &[],
        single: false,
        schema: schema!("accounts"),
        created_filter: false,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "application_fees",
        path: "/v1/application_fees",
        object: "application_fee",
        cursor: Some(Cursor::Updated),
        event_types: &["application_fee.created", "application_fee.refunded"],
        query: &[],
        single: false,
        schema: schema!("application_fees"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "authorizations",
        path: "/v1/issuing/authorizations",
        object: "issuing.authorization",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "issuing_authorization.created",
            "issuing_authorization.request",
            "issuing_authorization.updated",
        ],
        query: &[],
        single: false,
        schema: schema!("authorizations"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "cardholders",
        path: "/v1/issuing/cardholders",
        object: "issuing.cardholder",
        cursor: Some(Cursor::Updated),
        event_types: &["issuing_cardholder.created", "issuing_cardholder.updated"],
        query: &[],
        single: false,
        schema: schema!("cardholders"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "cards",
        path: "/v1/issuing/cards",
        object: "issuing.card",
        cursor: Some(Cursor::Updated),
        event_types: &["issuing_card.created", "issuing_card.updated"],
        query: &[],
        single: false,
        schema: schema!("cards"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    // No `created` filter on this endpoint.
    StreamDef {
        name: "checkout_sessions",
        path: "/v1/checkout/sessions",
        object: "checkout.session",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
        ],
        query: &[],
        single: false,
        schema: schema!("checkout_sessions"),
        created_filter: false,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "coupons",
        path: "/v1/coupons",
        object: "coupon",
        cursor: Some(Cursor::Updated),
        event_types: &["coupon.created", "coupon.updated", "coupon.deleted"],
        query: &[],
        single: false,
        schema: schema!("coupons"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    // No `created` filter on this endpoint.
    StreamDef {
        name: "credit_notes",
        path: "/v1/credit_notes",
        object: "credit_note",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "credit_note.created",
            "credit_note.updated",
            "credit_note.voided",
        ],
        query: &[],
        single: false,
        schema: schema!("credit_notes"),
        created_filter: false,
        stripe_version: None,
        child: None,
    },
    // No `created` filter on this endpoint.
    StreamDef {
        name: "early_fraud_warnings",
        path: "/v1/radar/early_fraud_warnings",
        object: "radar.early_fraud_warning",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "radar.early_fraud_warning.created",
            "radar.early_fraud_warning.updated",
        ],
        query: &[],
        single: false,
        schema: schema!("early_fraud_warnings"),
        created_filter: false,
        stripe_version: None,
        child: None,
    },
    // Files endpoints have a limit of their own: 20 requests/s.
    StreamDef {
        name: "file_links",
        path: "/v1/file_links",
        object: "file_link",
        cursor: Some(Cursor::Created),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("file_links"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    // Files endpoints have a limit of their own: 20 requests/s.
    StreamDef {
        name: "files",
        path: "/v1/files",
        object: "file",
        cursor: Some(Cursor::Created),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("files"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "invoice_items",
        path: "/v1/invoiceitems",
        object: "invoiceitem",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "invoiceitem.created",
            "invoiceitem.updated",
            "invoiceitem.deleted",
        ],
        query: &[],
        single: false,
        schema: schema!("invoice_items"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    // The endpoint exists from API version 2025-03-31.basil on.
    StreamDef {
        name: "invoice_payments",
        path: "/v1/invoice_payments",
        object: "invoice_payment",
        cursor: Some(Cursor::Updated),
        event_types: &["invoice_payment.paid"],
        query: &[],
        single: false,
        schema: schema!("invoice_payments"),
        created_filter: true,
        stripe_version: Some("2025-03-31.basil"),
        child: None,
    },
    StreamDef {
        name: "plans",
        path: "/v1/plans",
        object: "plan",
        cursor: Some(Cursor::Updated),
        event_types: &["plan.created", "plan.updated", "plan.deleted"],
        query: &[],
        single: false,
        schema: schema!("plans"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "promotion_codes",
        path: "/v1/promotion_codes",
        object: "promotion_code",
        cursor: Some(Cursor::Updated),
        event_types: &["promotion_code.created", "promotion_code.updated"],
        query: &[],
        single: false,
        schema: schema!("promotion_codes"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "reviews",
        path: "/v1/reviews",
        object: "review",
        cursor: Some(Cursor::Updated),
        event_types: &["review.opened", "review.closed"],
        query: &[],
        single: false,
        schema: schema!("reviews"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "setup_intents",
        path: "/v1/setup_intents",
        object: "setup_intent",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "setup_intent.created",
            "setup_intent.succeeded",
            "setup_intent.canceled",
            "setup_intent.requires_action",
            "setup_intent.setup_failed",
        ],
        query: &[],
        single: false,
        schema: schema!("setup_intents"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "shipping_rates",
        path: "/v1/shipping_rates",
        object: "shipping_rate",
        cursor: Some(Cursor::Created),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("shipping_rates"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "subscription_schedule",
        path: "/v1/subscription_schedules",
        object: "subscription_schedule",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "subscription_schedule.created",
            "subscription_schedule.updated",
            "subscription_schedule.canceled",
            "subscription_schedule.completed",
            "subscription_schedule.released",
            "subscription_schedule.aborted",
            "subscription_schedule.expiring",
        ],
        query: &[],
        single: false,
        schema: schema!("subscription_schedule"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "top_ups",
        path: "/v1/topups",
        object: "topup",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "topup.created",
            "topup.succeeded",
            "topup.failed",
            "topup.canceled",
            "topup.reversed",
        ],
        query: &[],
        single: false,
        schema: schema!("top_ups"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "transactions",
        path: "/v1/issuing/transactions",
        object: "issuing.transaction",
        cursor: Some(Cursor::Updated),
        event_types: &["issuing_transaction.created", "issuing_transaction.updated"],
        query: &[],
        single: false,
        schema: schema!("transactions"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "transfers",
        path: "/v1/transfers",
        object: "transfer",
        cursor: Some(Cursor::Updated),
        event_types: &["transfer.created", "transfer.updated", "transfer.reversed"],
        query: &[],
        single: false,
        schema: schema!("transfers"),
        created_filter: true,
        stripe_version: None,
        child: None,
    },
    StreamDef {
        name: "invoice_line_items",
        path: "/v1/invoices/{id}/lines",
        object: "line_item",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("invoice_line_items"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "invoices",
            embedded: Some("lines"),
            query: &[],
            parent_fields: &[
                ("invoice_id", ParentField::Id),
                ("invoice_created", ParentField::Created),
                ("invoice_updated", ParentField::Updated),
            ],
            cursor_field: Some("invoice_updated"),
            deletable: true,
            keyed: true,
        }),
    },
    StreamDef {
        name: "subscription_items",
        path: "/v1/subscription_items",
        object: "subscription_item",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("subscription_items"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "subscriptions",
            embedded: Some("items"),
            query: &[("subscription", "{id}")],
            parent_fields: &[("subscription_updated", ParentField::Updated)],
            cursor_field: Some("subscription_updated"),
            deletable: true,
            keyed: true,
        }),
    },
    // Application fees embed their first 10 refunds in `refunds`.
    StreamDef {
        name: "application_fees_refunds",
        path: "/v1/application_fees/{id}/refunds",
        object: "fee_refund",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("application_fees_refunds"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "application_fees",
            embedded: Some("refunds"),
            query: &[],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: false,
            keyed: true,
        }),
    },
    // Transfers embed their first 10 reversals in `reversals`; a reversal never changes.
    StreamDef {
        name: "transfer_reversals",
        path: "/v1/transfers/{id}/reversals",
        object: "transfer_reversal",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("transfer_reversals"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "transfers",
            embedded: Some("reversals"),
            query: &[],
            parent_fields: &[],
            cursor_field: Some("created"),
            deletable: false,
            keyed: true,
        }),
    },
    // Sessions do not embed their line items (only `expand[]=line_items` would).
    StreamDef {
        name: "checkout_sessions_line_items",
        path: "/v1/checkout/sessions/{id}/line_items",
        object: "item",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("checkout_sessions_line_items"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "checkout_sessions",
            embedded: None,
            query: &[],
            parent_fields: &[
                ("checkout_session_id", ParentField::Id),
                ("checkout_session_created", ParentField::Created),
                (
                    "checkout_session_expires_at",
                    ParentField::Field("expires_at"),
                ),
                ("checkout_session_updated", ParentField::Updated),
            ],
            cursor_field: Some("checkout_session_updated"),
            deletable: false,
            keyed: true,
        }),
    },
    // `setup_intent` is a required parameter; an attempt never changes.
    StreamDef {
        name: "setup_attempts",
        path: "/v1/setup_attempts",
        object: "setup_attempt",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("setup_attempts"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "setup_intents",
            embedded: None,
            query: &[("setup_intent", "{id}")],
            parent_fields: &[],
            cursor_field: Some("created"),
            deletable: false,
            keyed: true,
        }),
    },
    // The balance transactions a payout paid out.
    StreamDef {
        name: "payout_balance_transactions",
        path: "/v1/balance_transactions",
        object: "balance_transaction",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("payout_balance_transactions"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "payouts",
            embedded: None,
            query: &[("payout", "{id}")],
            parent_fields: &[
                ("payout", ParentField::Id),
                ("updated", ParentField::Updated),
            ],
            cursor_field: Some("updated"),
            deletable: false,
            keyed: true,
        }),
    },
    // A customer's balance ledger; an entry never changes, and a new one changes the
    // customer's `balance` (a `customer.updated` event).
    StreamDef {
        name: "customer_balance_transactions",
        path: "/v1/customers/{id}/balance_transactions",
        object: "customer_balance_transaction",
        cursor: Some(Cursor::Updated),
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("customer_balance_transactions"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "customers",
            embedded: None,
            query: &[],
            parent_fields: &[],
            cursor_field: Some("created"),
            deletable: false,
            keyed: true,
        }),
    },
    // A customer's bank accounts (sources): not embedded without `expand[]=data.sources`;
    // their changes come as their own `customer.source.*` events (object `bank_account`;
    // the same events with object `card` are not this stream's).
    StreamDef {
        name: "bank_accounts",
        path: "/v1/customers/{id}/bank_accounts",
        object: "bank_account",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "customer.source.created",
            "customer.source.updated",
            "customer.source.deleted",
        ],
        query: &[],
        single: false,
        schema: schema!("bank_accounts"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "customers",
            embedded: None,
            query: &[],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: true,
            keyed: true,
        }),
    },
    // A connected account's persons: not embedded; their changes come as their own
    // `person.*` events.
    StreamDef {
        name: "persons",
        path: "/v1/accounts/{id}/persons",
        object: "person",
        cursor: Some(Cursor::Updated),
        event_types: &["person.created", "person.updated", "person.deleted"],
        query: &[],
        single: false,
        schema: schema!("persons"),
        created_filter: false,
        stripe_version: None,
        child: Some(Child {
            parent: "accounts",
            embedded: None,
            query: &[],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: true,
            keyed: true,
        }),
    },
    // A customer's payment methods: not embedded; their changes come as their own
    // `payment_method.*` events (a detached one is gone from the list: `is_deleted`).
    // The 2022 spec requires `type` (one list per payment method type); from
    // 2025-03-31.basil on it is optional and the list has every type, so one call per
    // customer (`reference/stripe-openapi/supplement.2025-03-31.basil.json`).
    StreamDef {
        name: "payment_methods",
        path: "/v1/customers/{id}/payment_methods",
        object: "payment_method",
        cursor: Some(Cursor::Updated),
        event_types: &[
            "payment_method.attached",
            "payment_method.updated",
            "payment_method.detached",
            "payment_method.automatically_updated",
        ],
        query: &[],
        single: false,
        schema: schema!("payment_methods"),
        created_filter: false,
        stripe_version: Some("2025-03-31.basil"),
        child: Some(Child {
            parent: "customers",
            embedded: None,
            query: &[],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: true,
            keyed: true,
        }),
    },
    // A connected account's external accounts of one object type (`object`, a filter the
    // 2022 spec lacks: 2025-03-31.basil, as for payment methods). An account embeds
    // them only for a platform that controls it (not a Standard account linked by
    // OAuth), so one call per account; their changes come as their own
    // `account.external_account.*` events, routed by the object's type.
    StreamDef {
        name: "external_account_bank_accounts",
        path: "/v1/accounts/{id}/external_accounts",
        object: "bank_account",
        cursor: Some(Cursor::Updated),
        event_types: EXTERNAL_ACCOUNT_EVENTS,
        query: &[],
        single: false,
        schema: schema!("external_account_bank_accounts"),
        created_filter: false,
        stripe_version: Some("2025-03-31.basil"),
        child: Some(Child {
            parent: "accounts",
            embedded: None,
            query: &[("object", "bank_account")],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: true,
            keyed: true,
        }),
    },
    StreamDef {
        name: "external_account_cards",
        path: "/v1/accounts/{id}/external_accounts",
        object: "card",
        cursor: Some(Cursor::Updated),
        event_types: EXTERNAL_ACCOUNT_EVENTS,
        query: &[],
        single: false,
        schema: schema!("external_account_cards"),
        created_filter: false,
        stripe_version: Some("2025-03-31.basil"),
        child: Some(Child {
            parent: "accounts",
            embedded: None,
            query: &[("object", "card")],
            parent_fields: &[("updated", ParentField::Updated)],
            cursor_field: Some("updated"),
            deletable: true,
            keyed: true,
        }),
    },
    // A subscription item's usage record summaries (a grandchild: subscriptions →
    // subscription items → summaries, one list of subscriptions feeding both). Stripe
    // sends no event when usage is reported, so full refresh only, as Airbyte's; the
    // endpoint is gone from 2025-03-31.basil on (the configured version is sent).
    StreamDef {
        name: "usage_records",
        path: "/v1/subscription_items/{id}/usage_record_summaries",
        object: "usage_record_summary",
        cursor: None,
        event_types: &[],
        query: &[],
        single: false,
        schema: schema!("usage_records"),
        created_filter: false,
        // Stripe removed usage records in 2025-03-31.basil: a newer configured version
        // would get a 404 for every item, which reads as "the parent is gone" and an
        // empty stream. The spec's version keeps the endpoint there.
        stripe_version: Some("2022-04-12"),
        child: Some(Child {
            parent: "subscription_items",
            embedded: None,
            query: &[],
            parent_fields: &[],
            cursor_field: None,
            deletable: false,
            keyed: false,
        }),
    },
];

/// The events of a connected account's external accounts: a bank account's belong to
/// `external_account_bank_accounts`, a card's to `external_account_cards`.
const EXTERNAL_ACCOUNT_EVENTS: &[&str] = &[
    "account.external_account.created",
    "account.external_account.updated",
    "account.external_account.deleted",
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
            if let Some(field) = stream.cursor_field() {
                assert!(
                    props[field].is_object(),
                    "{}: cursor {field} is in the schema",
                    stream.name,
                );
            }
            if let Some(child) = &stream.child {
                // A child learns its changes from its parent's events, and from its own
                // where Stripe has them (then it is deletable: `*.deleted` events).
                let parent = find(child.parent).expect("the parent is a row");
                // At most two levels: a grandchild's parent hangs off a top-level row.
                if let Some(up) = &parent.child {
                    let root = find(up.parent).expect("the grandparent is a row");
                    assert!(root.child.is_none(), "{}: two levels at most", stream.name);
                }
                if !stream.event_types.is_empty() {
                    assert!(child.deletable, "{}", stream.name);
                    assert_eq!(child.cursor_field, Some("updated"), "{}", stream.name);
                }
                // Incremental with its parent, or full refresh only.
                assert!(
                    stream.cursor.is_none() || stream.cursor == parent.cursor,
                    "{}",
                    stream.name
                );
                assert_eq!(stream.cursor.is_some(), child.cursor_field.is_some());
                assert_eq!(
                    props["is_deleted"].is_object(),
                    child.deletable,
                    "{}: is_deleted where deletable",
                    stream.name
                );
                for (field, _) in child.parent_fields {
                    assert!(props[*field].is_object(), "{}: {field}", stream.name);
                }
            } else if stream.cursor == Some(Cursor::Updated) {
                assert!(!stream.event_types.is_empty(), "{}", stream.name);
                assert!(props["is_deleted"].is_object(), "{}", stream.name);
            } else {
                assert!(stream.event_types.is_empty(), "{}", stream.name);
            }
            assert!(stream.path.starts_with("/v1/"), "{}", stream.name);
        }
    }

    /// An event goes to the stream of its type and its object's type: two streams share
    /// an event type only for different objects (a connected account's bank accounts and
    /// cards).
    #[test]
    fn each_event_type_belongs_to_one_stream() {
        let mut seen = std::collections::HashMap::new();
        for stream in STREAMS {
            for event_type in stream.event_types {
                assert!(
                    seen.insert((*event_type, stream.object), stream.name)
                        .is_none(),
                    "{event_type} is listed twice for {}",
                    stream.object
                );
            }
        }
        assert_eq!(
            seen.get(&("account.external_account.created", "card")),
            Some(&"external_account_cards")
        );
    }

    /// Airbyte's Stripe source 6.1 as its discover reports it (name, key, cursor,
    /// modes), `reference/airbyte-stripe-streams.tsv`.
    fn airbyte_streams() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
        include_str!("../../reference/airbyte-stripe-streams.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0], f[1], f[2], f[3])
            })
            .collect()
    }

    #[test]
    fn rows_match_airbytes_streams() {
        let airbyte = airbyte_streams();
        assert_eq!(airbyte.len(), 48);
        // `-`: none.
        let field = |f: &'static str| (f != "-").then_some(f);
        for stream in STREAMS.iter().filter(|s| s.name != "account") {
            let (_, key, cursor, modes) = airbyte
                .iter()
                .find(|a| a.0 == stream.name)
                .unwrap_or_else(|| panic!("{} is one of Airbyte's streams", stream.name));
            assert_eq!(field(key), stream.primary_key(), "{}", stream.name);
            assert_eq!(field(cursor), stream.cursor_field(), "{}", stream.name);
            let ours = if stream.supports_incremental() {
                "full_refresh,incremental"
            } else {
                "full_refresh"
            };
            assert_eq!(*modes, ours, "{}", stream.name);
        }
        // Every one of Airbyte's streams is a row.
        let missing: Vec<&str> = airbyte
            .iter()
            .map(|a| a.0)
            .filter(|name| find(name).is_none())
            .collect();
        assert_eq!(missing, Vec::<&str>::new());
        assert_eq!(STREAMS.len(), 49, "Airbyte's 48 and `account`");
    }

    /// A row reads with `created[gte|lt]` exactly where Stripe's spec lists `created`
    /// for the endpoint; `accounts` is read without, as Airbyte reads it.
    #[test]
    fn created_filter_follows_the_spec() {
        let spec: serde_json::Value = serde_json::from_str(include_str!(
            "../../crates/stripe-emulator/reference/stripe-openapi/spec3.trimmed.json"
        ))
        .unwrap();
        for stream in STREAMS
            .iter()
            .filter(|s| !s.single && s.name != "accounts" && s.child.is_none())
        {
            let params = spec["paths"][stream.path]["get"]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{} is in the spec", stream.path));
            let has_created = params.iter().any(|p| p["name"] == "created");
            assert_eq!(has_created, stream.created_filter, "{}", stream.name);
        }
        assert!(!find("accounts").unwrap().created_filter);
    }
}
