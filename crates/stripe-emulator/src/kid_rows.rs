//! The emulator's child resources kept apart from their parent, as a table: one [`Kid`]
//! row each (fixture, id prefix, parent, route, embedding, how children come with their
//! parent's changes or their own events, filters and the API version their route
//! changed in). `kids.rs` owns their building, routes and advances.

use serde_json::{Value, json};

use super::resources::Src;
use super::store::Stream;

/// Where a row's children are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    /// In [`ScopeData::kids`], by parent id, newest first (and rendered into the
    /// parent's embedded list when the row has one).
    Own,
    /// The scope's balance transactions a payout paid out (their hidden `payout` field):
    /// `/v1/balance_transactions?payout=…` serves them.
    PaidOut,
}

/// One child resource: its fixture, id prefix, parent, route, whether the parent embeds
/// it, and how children come with their parent's changes.
pub(crate) struct Kid {
    /// Stream name (the connector's), e.g. `application_fees_refunds`.
    pub(crate) stream: &'static str,
    /// Fixture name and `object` value.
    pub(crate) object: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) parent: Src,
    pub(crate) store: Store,
    /// The list route as the spec names it: `{…}` is the parent's id.
    pub(crate) route: &'static str,
    /// The query parameter naming the parent, when it is not in the path (required).
    pub(crate) parent_param: Option<&'static str>,
    /// The parent's field embedding the first [`EMBED_LIMIT`] children.
    pub(crate) embedded: Option<&'static str>,
    /// The child's field holding its parent's id.
    pub(crate) points_at: Option<&'static str>,
    /// One parent in this many has a child in the built history (0: none).
    pub(crate) built_one_in: u64,
    /// Every new parent gets its children at once, and they never change (a checkout
    /// session's line items).
    pub(crate) with_parent: bool,
    /// The parent's event when an advance gives it a new child (`None`: never).
    pub(crate) event: Option<&'static str>,
    /// Which parents an advance may give a new child.
    pub(crate) eligible: fn(&Value) -> bool,
    /// Makes a parent agree with its new child (`None` for [`Store::PaidOut`], whose
    /// advance only changes the parent) at `at`; returns the parent's previous values.
    pub(crate) attach: fn(&mut Value, Option<&mut Value>, i64) -> Option<Value>,
    /// The child's own events (created, updated, deleted), when Stripe sends them: an
    /// advance then creates, updates (metadata) and deletes children with them, and
    /// the parent does not change.
    pub(crate) own_events: Option<[&'static str; 3]>,
    /// Stripe's event when the card network updates a child without a request (a
    /// payment method's card details: `payment_method.automatically_updated`): every
    /// second update of an advance is one, raising the card's `exp_year`.
    pub(crate) auto_update: Option<&'static str>,
    /// A query parameter and its value that select this row among the rows sharing its
    /// route (a connected account's `external_accounts`, `object=bank_account|card`);
    /// the emulator requires it there.
    pub(crate) filter: Option<(&'static str, &'static str)>,
    /// The route's form is the supplement's from this `Stripe-Version` on; an older
    /// version gets the 2022 spec's answer instead ([`Since`]).
    pub(crate) since: Option<Since>,
}

/// Where an endpoint's parameters changed after the 2022 spec
/// (`reference/stripe-openapi/supplement.2025-03-31.basil.json`).
pub(crate) struct Since {
    /// The first `Stripe-Version` (a date prefix) with the newer form.
    pub(crate) version: &'static str,
    /// The parameter that changed.
    pub(crate) param: &'static str,
    pub(crate) change: ParamChange,
}

/// How a parameter changed; an older version's request gets Stripe's 400 for the 2022
/// form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamChange {
    /// Required before (a customer's payment methods' `type`).
    MadeOptional,
    /// Unknown before (a connected account's external accounts' `object`).
    Added,
}

/// The `Stripe-Version` sent where an endpoint needs a newer one.
pub(crate) const NEWER_VERSION: &str = "2025-03-31.basil";

fn always(_: &Value) -> bool {
    true
}

fn amount_of(v: &Value) -> i64 {
    v["amount"].as_i64().unwrap_or(0)
}

/// Every child row kept apart from its parent, parents built before them.
pub(crate) const KIDS: &[Kid] = &[
    Kid {
        stream: "application_fees_refunds",
        object: "fee_refund",
        prefix: "fr",
        parent: Src::Resource("application_fees"),
        store: Store::Own,
        route: "/v1/application_fees/{id}/refunds",
        parent_param: None,
        embedded: Some("refunds"),
        points_at: Some("/fee"),
        built_one_in: 3,
        with_parent: false,
        event: Some("application_fee.refunded"),
        eligible: |fee| fee["refunded"] == false,
        // A full refund.
        attach: |fee, refund, _| {
            let previous =
                json!({"refunded": fee["refunded"], "amount_refunded": fee["amount_refunded"]});
            if let Some(refund) = refund {
                refund["amount"] = json!(amount_of(fee));
            }
            fee["refunded"] = json!(true);
            fee["amount_refunded"] = json!(amount_of(fee));
            Some(previous)
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "transfer_reversals",
        object: "transfer_reversal",
        prefix: "trr",
        parent: Src::Resource("transfers"),
        store: Store::Own,
        route: "/v1/transfers/{id}/reversals",
        parent_param: None,
        embedded: Some("reversals"),
        points_at: Some("/transfer"),
        built_one_in: 3,
        with_parent: false,
        event: Some("transfer.reversed"),
        eligible: |transfer| transfer["reversed"] == false,
        // A full reversal.
        attach: |transfer, reversal, _| {
            let previous = json!({"reversed": transfer["reversed"], "amount_reversed": transfer["amount_reversed"]});
            if let Some(reversal) = reversal {
                reversal["amount"] = json!(amount_of(transfer));
            }
            transfer["reversed"] = json!(true);
            transfer["amount_reversed"] = json!(amount_of(transfer));
            Some(previous)
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "checkout_sessions_line_items",
        object: "item",
        prefix: "li",
        parent: Src::Resource("checkout_sessions"),
        store: Store::Own,
        route: "/v1/checkout/sessions/{session}/line_items",
        parent_param: None,
        embedded: None,
        points_at: None,
        built_one_in: 1,
        with_parent: true,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "setup_attempts",
        object: "setup_attempt",
        prefix: "setatt",
        parent: Src::Resource("setup_intents"),
        store: Store::Own,
        route: "/v1/setup_attempts",
        parent_param: Some("setup_intent"),
        embedded: None,
        points_at: Some("/setup_intent"),
        built_one_in: 3,
        with_parent: false,
        event: Some("setup_intent.succeeded"),
        eligible: |intent| intent["status"] != "succeeded",
        // The intent succeeds with this attempt.
        attach: |intent, attempt, _| {
            let previous =
                json!({"status": intent["status"], "latest_attempt": intent["latest_attempt"]});
            if let Some(attempt) = attempt {
                attempt["customer"] = intent["customer"].clone();
                attempt["status"] = json!("succeeded");
                intent["latest_attempt"] = attempt["id"].clone();
                if attempt["payment_method"].is_string() {
                    intent["payment_method"] = attempt["payment_method"].clone();
                }
            }
            intent["status"] = json!("succeeded");
            Some(previous)
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "payout_balance_transactions",
        object: "balance_transaction",
        prefix: "txn",
        parent: Src::Stream(Stream::Payouts),
        store: Store::PaidOut,
        route: "/v1/balance_transactions",
        parent_param: Some("payout"),
        embedded: None,
        points_at: None,
        built_one_in: 0,
        with_parent: false,
        event: Some("payout.updated"),
        eligible: always,
        // Its transactions are fixed: a payout changes its metadata only.
        attach: |payout, _, at| {
            let previous = json!({"metadata": payout["metadata"]});
            payout["metadata"]["emulator_change"] = json!(at.to_string());
            Some(previous)
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "customer_balance_transactions",
        object: "customer_balance_transaction",
        prefix: "cbtxn",
        parent: Src::Stream(Stream::Customers),
        store: Store::Own,
        route: "/v1/customers/{customer}/balance_transactions",
        parent_param: None,
        embedded: None,
        points_at: Some("/customer"),
        built_one_in: 3,
        with_parent: false,
        event: Some("customer.updated"),
        eligible: always,
        // A credit: the customer's balance moves by its amount.
        attach: |customer, entry, _| {
            let previous = json!({"balance": customer["balance"]});
            if let Some(entry) = entry {
                let balance = customer["balance"].as_i64().unwrap_or(0) + amount_of(entry);
                customer["balance"] = json!(balance);
                entry["ending_balance"] = json!(balance);
            }
            Some(previous)
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "bank_accounts",
        object: "bank_account",
        prefix: "ba",
        parent: Src::Stream(Stream::Customers),
        store: Store::Own,
        route: "/v1/customers/{customer}/bank_accounts",
        parent_param: None,
        embedded: None,
        points_at: Some("/customer"),
        built_one_in: 4,
        with_parent: false,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: Some([
            "customer.source.created",
            "customer.source.updated",
            "customer.source.deleted",
        ]),
        auto_update: None,
        filter: None,
        since: None,
    },
    Kid {
        stream: "persons",
        object: "person",
        prefix: "person",
        parent: Src::Account,
        store: Store::Own,
        route: "/v1/accounts/{account}/persons",
        parent_param: None,
        embedded: None,
        points_at: Some("/account"),
        built_one_in: 1,
        with_parent: false,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: Some(["person.created", "person.updated", "person.deleted"]),
        auto_update: None,
        filter: None,
        since: None,
    },
    // Attached and detached with their own events; the list has every type only from
    // 2025-03-31.basil on (before, `type` is required).
    Kid {
        stream: "payment_methods",
        object: "payment_method",
        prefix: "pm",
        parent: Src::Stream(Stream::Customers),
        store: Store::Own,
        route: "/v1/customers/{customer}/payment_methods",
        parent_param: None,
        embedded: None,
        points_at: Some("/customer"),
        // The customers with a balance entry: no more customers pinned (never deleted).
        built_one_in: 3,
        with_parent: false,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: Some([
            "payment_method.attached",
            "payment_method.updated",
            "payment_method.detached",
        ]),
        auto_update: Some("payment_method.automatically_updated"),
        filter: None,
        since: Some(Since {
            version: "2025-03-31",
            param: "type",
            change: ParamChange::MadeOptional,
        }),
    },
    // A connected account's external accounts, one row per object type on one route.
    Kid {
        stream: "external_account_bank_accounts",
        object: "bank_account",
        prefix: "ba",
        parent: Src::Account,
        store: Store::Own,
        route: "/v1/accounts/{account}/external_accounts",
        parent_param: None,
        embedded: None,
        points_at: Some("/account"),
        built_one_in: 1,
        with_parent: false,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: Some(EXTERNAL_ACCOUNT_EVENTS),
        auto_update: None,
        filter: Some(("object", "bank_account")),
        since: Some(EXTERNAL_ACCOUNT_OBJECT),
    },
    Kid {
        stream: "external_account_cards",
        object: "card",
        prefix: "card",
        parent: Src::Account,
        store: Store::Own,
        route: "/v1/accounts/{account}/external_accounts",
        parent_param: None,
        embedded: None,
        points_at: Some("/account"),
        built_one_in: 1,
        with_parent: false,
        event: None,
        eligible: always,
        attach: |_, _, _| None,
        own_events: Some(EXTERNAL_ACCOUNT_EVENTS),
        auto_update: None,
        filter: Some(("object", "card")),
        since: Some(EXTERNAL_ACCOUNT_OBJECT),
    },
    // A subscription item's usage record summaries: one per item at start; Stripe sends
    // no event when usage is reported (the stream is full refresh only).
    Kid {
        stream: "usage_records",
        object: "usage_record_summary",
        prefix: "sis",
        parent: Src::Child("subscription_items"),
        store: Store::Own,
        route: "/v1/subscription_items/{subscription_item}/usage_record_summaries",
        parent_param: None,
        embedded: None,
        points_at: Some("/subscription_item"),
        built_one_in: 1,
        with_parent: false,
        event: None,
        eligible: always,
        // The current period, from the item's creation, not billed yet.
        attach: |item, summary, at| {
            if let Some(summary) = summary {
                summary["invoice"] = Value::Null;
                summary["period"] = json!({"start": item["created"], "end": at});
            }
            None
        },
        own_events: None,
        auto_update: None,
        filter: None,
        since: None,
    },
];

const EXTERNAL_ACCOUNT_EVENTS: [&str; 3] = [
    "account.external_account.created",
    "account.external_account.updated",
    "account.external_account.deleted",
];

/// The 2022 spec has no `object` filter on a connected account's external accounts.
const EXTERNAL_ACCOUNT_OBJECT: Since = Since {
    version: "2025-03-31",
    param: "object",
    change: ParamChange::Added,
};
