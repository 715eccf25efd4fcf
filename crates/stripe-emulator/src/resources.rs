//! Table-driven resources: every top-level Stripe resource beyond the hand-written ones
//! of `data.rs` (coupons, plans, invoice items, Issuing, Checkout, credit notes, files,
//! transfers, …) is one row of [`RESOURCES`]: fixture, id prefix, list path, references,
//! event types, whether it is deletable and whether its list filters on `created`.
//! From the rows this file builds each scope's objects (deterministic, references
//! consistent with the scope's other objects), serves their list and retrieve endpoints
//! with Stripe's parameters and errors, and applies clock advances to them (creates,
//! updates and deletes with their events).
//!
//! It must not touch the hand-written resources: they keep their builders in `data.rs`
//! and their routes in `routes.rs` (issue 10 phase 2 moves them into this table).

use std::sync::Arc;

use serde_json::{Value, json};

use super::data::{BuildParams, Fixtures, Gen};
use super::rng::Rng;
use super::routes::{ApiError, base_name, list_cursor, parse_query, render_page, unknown_param};
use super::store::{Collection, Cursor, Obj, PageQuery, ScopeData, Stream};
use super::{Change, ChangeKind, EVENT_RETENTION_SECS};

/// Examples of objects newer than the 2022 fixtures (`invoice_payment`), from Stripe's
/// 2026 fixtures (see `tools/trim_reference.py`).
const SUPPLEMENT_JSON: &str = include_str!("../reference/stripe-openapi/fixtures.supplement.json");

const DAY: i64 = 86_400;

/// Where a referenced object comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Src {
    /// A hand-written stream of `data.rs`.
    Stream(Stream),
    /// An earlier row of [`RESOURCES`], by stream name.
    Resource(&'static str),
    /// A connected account of the platform (the scope's own account on a connected one).
    Account,
    /// The children of a child stream of `children.rs`, by stream name (subscription
    /// items, which live in their subscription): only a `kids.rs` row's parent.
    Child(&'static str),
}

/// How a field of a new object is filled in.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ref {
    /// The id of an object of `Src` created no later than this one.
    Id(Src),
    /// Like `Id`, among the objects whose value at the pointer is a non-null string.
    IdWith(Src, &'static str),
    /// The whole object of `Src`, embedded (Issuing cards embed their cardholder).
    Embed(Src),
    /// The value at a pointer of the object whose id another field of this one holds:
    /// (that field, its source, the pointer), e.g. a credit note's `customer` is its
    /// invoice's.
    Of(&'static str, Src, &'static str),
    /// The value at another pointer of this object.
    Copy(&'static str),
}

/// A value an update or the initial state sets.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val {
    Str(&'static str),
    Bool(bool),
    /// The time of the change (unix seconds).
    Now,
    /// The time of the change as a string (for `metadata`, a map of strings).
    NowText,
    /// The value at another pointer of the object.
    Copy(&'static str),
}

/// What an update does: its event type and the fields it sets.
#[derive(Debug)]
pub(crate) struct Update {
    pub(crate) event: &'static str,
    pub(crate) set: &'static [(&'static str, Val)],
}

/// One resource.
#[derive(Debug)]
pub(crate) struct Resource {
    /// Stream name (the connector's), e.g. `coupons`.
    pub(crate) stream: &'static str,
    /// Fixture name and `object` value, e.g. `issuing.card`.
    pub(crate) object: &'static str,
    /// List path; `{path}/{id}` retrieves one object.
    pub(crate) path: &'static str,
    /// Id prefix, e.g. `ic`.
    pub(crate) prefix: &'static str,
    /// The field holding the creation time (`date` on invoice items).
    pub(crate) created_field: &'static str,
    /// The list filters on `created` (the spec lists the parameter).
    pub(crate) created_filter: bool,
    /// An Issuing resource: an account without Issuing (every connected account here)
    /// answers 400 "Your account is not set up to use Issuing", as Stripe does.
    pub(crate) issuing: bool,
    /// The endpoint exists from this `Stripe-Version` on (an older one gets a 404).
    pub(crate) min_version: Option<&'static str>,
    /// Objects per scope: `max(size / per, 3)`.
    pub(crate) per: usize,
    /// Fields filled in from other objects.
    pub(crate) refs: &'static [(&'static str, Ref)],
    /// Fields set on every new object.
    pub(crate) init: &'static [(&'static str, Val)],
    /// Event of a new object (`None`: Stripe sends none, e.g. checkout sessions).
    pub(crate) created_event: Option<&'static str>,
    /// How the object changes after creation (`None`: it never does).
    pub(crate) update: Option<Update>,
    /// Event of a deletion (`None`: not deletable).
    pub(crate) deleted_event: Option<&'static str>,
}

const METADATA: &[(&str, Val)] = &[("/metadata/emulator_change", Val::NowText)];

/// Every table-driven resource, references before the resources that use them.
pub(crate) const RESOURCES: &[Resource] = &[
    Resource {
        stream: "coupons",
        object: "coupon",
        path: "/v1/coupons",
        prefix: "co",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[],
        init: &[],
        created_event: Some("coupon.created"),
        update: Some(Update {
            event: "coupon.updated",
            set: METADATA,
        }),
        deleted_event: Some("coupon.deleted"),
    },
    Resource {
        stream: "promotion_codes",
        object: "promotion_code",
        path: "/v1/promotion_codes",
        prefix: "promo",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/coupon", Ref::Embed(Src::Resource("coupons")))],
        init: &[],
        created_event: Some("promotion_code.created"),
        update: Some(Update {
            event: "promotion_code.updated",
            set: &[("/active", Val::Bool(false))],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "plans",
        object: "plan",
        path: "/v1/plans",
        prefix: "plan",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/product", Ref::Id(Src::Stream(Stream::Products)))],
        init: &[],
        created_event: Some("plan.created"),
        update: Some(Update {
            event: "plan.updated",
            set: &[("/nickname", Val::Str("Renamed plan"))],
        }),
        deleted_event: Some("plan.deleted"),
    },
    Resource {
        stream: "invoice_items",
        object: "invoiceitem",
        path: "/v1/invoiceitems",
        prefix: "ii",
        created_field: "date",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            ("/customer", Ref::Id(Src::Stream(Stream::Customers))),
            ("/price", Ref::Embed(Src::Stream(Stream::Prices))),
            ("/currency", Ref::Copy("/price/currency")),
        ],
        init: &[],
        created_event: Some("invoiceitem.created"),
        update: Some(Update {
            event: "invoiceitem.updated",
            set: &[("/description", Val::Str("Adjusted item"))],
        }),
        deleted_event: Some("invoiceitem.deleted"),
    },
    Resource {
        stream: "invoice_payments",
        object: "invoice_payment",
        path: "/v1/invoice_payments",
        prefix: "inpay",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: Some("2025-03-31"),
        per: 25,
        refs: &[
            (
                "/invoice",
                Ref::IdWith(Src::Stream(Stream::Invoices), "/payment_intent"),
            ),
            (
                "/payment/payment_intent",
                Ref::Of("/invoice", Src::Stream(Stream::Invoices), "/payment_intent"),
            ),
            (
                "/currency",
                Ref::Of("/invoice", Src::Stream(Stream::Invoices), "/currency"),
            ),
            (
                "/amount_requested",
                Ref::Of("/invoice", Src::Stream(Stream::Invoices), "/amount_due"),
            ),
        ],
        init: &[("/status", Val::Str("open"))],
        created_event: None,
        update: Some(Update {
            event: "invoice_payment.paid",
            set: &[
                ("/status", Val::Str("paid")),
                ("/amount_paid", Val::Copy("/amount_requested")),
                ("/status_transitions/paid_at", Val::Now),
            ],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "credit_notes",
        object: "credit_note",
        path: "/v1/credit_notes",
        prefix: "cn",
        created_field: "created",
        created_filter: false,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            ("/invoice", Ref::Id(Src::Stream(Stream::Invoices))),
            (
                "/customer",
                Ref::Of("/invoice", Src::Stream(Stream::Invoices), "/customer"),
            ),
            (
                "/currency",
                Ref::Of("/invoice", Src::Stream(Stream::Invoices), "/currency"),
            ),
        ],
        init: &[],
        created_event: Some("credit_note.created"),
        update: Some(Update {
            event: "credit_note.voided",
            set: &[("/status", Val::Str("void")), ("/voided_at", Val::Now)],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "subscription_schedule",
        object: "subscription_schedule",
        path: "/v1/subscription_schedules",
        prefix: "sub_sched",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/customer", Ref::Id(Src::Stream(Stream::Customers)))],
        init: &[],
        created_event: Some("subscription_schedule.created"),
        update: Some(Update {
            event: "subscription_schedule.updated",
            set: METADATA,
        }),
        deleted_event: None,
    },
    Resource {
        stream: "setup_intents",
        object: "setup_intent",
        path: "/v1/setup_intents",
        prefix: "seti",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/customer", Ref::Id(Src::Stream(Stream::Customers)))],
        init: &[("/status", Val::Str("requires_payment_method"))],
        created_event: Some("setup_intent.created"),
        // An intent succeeds with a setup attempt (`children.rs`).
        update: None,
        deleted_event: None,
    },
    Resource {
        stream: "checkout_sessions",
        object: "checkout.session",
        path: "/v1/checkout/sessions",
        prefix: "cs",
        created_field: "created",
        created_filter: false,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            (
                "/payment_intent",
                Ref::Id(Src::Stream(Stream::PaymentIntents)),
            ),
            (
                "/customer",
                Ref::Of(
                    "/payment_intent",
                    Src::Stream(Stream::PaymentIntents),
                    "/customer",
                ),
            ),
        ],
        init: &[
            ("/status", Val::Str("open")),
            ("/payment_status", Val::Str("unpaid")),
        ],
        // Stripe sends no event when a session is created.
        created_event: None,
        update: Some(Update {
            event: "checkout.session.completed",
            set: &[
                ("/status", Val::Str("complete")),
                ("/payment_status", Val::Str("paid")),
            ],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "reviews",
        object: "review",
        path: "/v1/reviews",
        prefix: "prv",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            ("/charge", Ref::Id(Src::Stream(Stream::Charges))),
            (
                "/payment_intent",
                Ref::Of("/charge", Src::Stream(Stream::Charges), "/payment_intent"),
            ),
        ],
        init: &[("/open", Val::Bool(true))],
        created_event: Some("review.opened"),
        update: Some(Update {
            event: "review.closed",
            set: &[
                ("/open", Val::Bool(false)),
                ("/closed_reason", Val::Str("approved")),
            ],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "early_fraud_warnings",
        object: "radar.early_fraud_warning",
        path: "/v1/radar/early_fraud_warnings",
        prefix: "issfr",
        created_field: "created",
        created_filter: false,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/charge", Ref::Id(Src::Stream(Stream::Charges)))],
        init: &[("/actionable", Val::Bool(true))],
        created_event: Some("radar.early_fraud_warning.created"),
        update: Some(Update {
            event: "radar.early_fraud_warning.updated",
            set: &[("/actionable", Val::Bool(false))],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "application_fees",
        object: "application_fee",
        path: "/v1/application_fees",
        prefix: "fee",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            ("/account", Ref::Id(Src::Account)),
            ("/charge", Ref::Id(Src::Stream(Stream::Charges))),
            (
                "/balance_transaction",
                Ref::Id(Src::Stream(Stream::BalanceTransactions)),
            ),
        ],
        init: &[("/refunded", Val::Bool(false))],
        created_event: Some("application_fee.created"),
        // A fee is refunded with a refund in its `refunds` (`children.rs`).
        update: None,
        deleted_event: None,
    },
    Resource {
        stream: "transfers",
        object: "transfer",
        path: "/v1/transfers",
        prefix: "tr",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[
            ("/destination", Ref::Id(Src::Account)),
            (
                "/balance_transaction",
                Ref::Id(Src::Stream(Stream::BalanceTransactions)),
            ),
        ],
        init: &[],
        created_event: Some("transfer.created"),
        update: Some(Update {
            event: "transfer.updated",
            set: &[("/description", Val::Str("Updated transfer"))],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "top_ups",
        object: "topup",
        path: "/v1/topups",
        prefix: "tu",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[],
        init: &[("/status", Val::Str("pending"))],
        created_event: Some("topup.created"),
        update: Some(Update {
            event: "topup.succeeded",
            set: &[("/status", Val::Str("succeeded"))],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "shipping_rates",
        object: "shipping_rate",
        path: "/v1/shipping_rates",
        prefix: "shr",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[],
        init: &[],
        created_event: None,
        update: None,
        deleted_event: None,
    },
    Resource {
        stream: "files",
        object: "file",
        path: "/v1/files",
        prefix: "file",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/filename", Ref::Copy("/id"))],
        init: &[],
        created_event: None,
        update: None,
        deleted_event: None,
    },
    Resource {
        stream: "file_links",
        object: "file_link",
        path: "/v1/file_links",
        prefix: "link",
        created_field: "created",
        created_filter: true,
        issuing: false,
        min_version: None,
        per: 25,
        refs: &[("/file", Ref::Id(Src::Resource("files")))],
        init: &[],
        created_event: None,
        update: None,
        deleted_event: None,
    },
    Resource {
        stream: "cardholders",
        object: "issuing.cardholder",
        path: "/v1/issuing/cardholders",
        prefix: "ich",
        created_field: "created",
        created_filter: true,
        issuing: true,
        min_version: None,
        per: 25,
        refs: &[],
        init: &[],
        created_event: Some("issuing_cardholder.created"),
        update: Some(Update {
            event: "issuing_cardholder.updated",
            set: METADATA,
        }),
        deleted_event: None,
    },
    Resource {
        stream: "cards",
        object: "issuing.card",
        path: "/v1/issuing/cards",
        prefix: "ic",
        created_field: "created",
        created_filter: true,
        issuing: true,
        min_version: None,
        per: 25,
        refs: &[("/cardholder", Ref::Embed(Src::Resource("cardholders")))],
        init: &[("/status", Val::Str("active"))],
        created_event: Some("issuing_card.created"),
        update: Some(Update {
            event: "issuing_card.updated",
            set: &[("/status", Val::Str("inactive"))],
        }),
        deleted_event: None,
    },
    Resource {
        stream: "authorizations",
        object: "issuing.authorization",
        path: "/v1/issuing/authorizations",
        prefix: "iauth",
        created_field: "created",
        created_filter: true,
        issuing: true,
        min_version: None,
        per: 25,
        refs: &[
            ("/card", Ref::Embed(Src::Resource("cards"))),
            ("/cardholder", Ref::Copy("/card/cardholder/id")),
        ],
        init: &[],
        created_event: Some("issuing_authorization.created"),
        update: Some(Update {
            event: "issuing_authorization.updated",
            set: METADATA,
        }),
        deleted_event: None,
    },
    Resource {
        stream: "transactions",
        object: "issuing.transaction",
        path: "/v1/issuing/transactions",
        prefix: "ipi",
        created_field: "created",
        created_filter: true,
        issuing: true,
        min_version: None,
        per: 25,
        refs: &[
            ("/authorization", Ref::Id(Src::Resource("authorizations"))),
            (
                "/card",
                Ref::Of(
                    "/authorization",
                    Src::Resource("authorizations"),
                    "/card/id",
                ),
            ),
            (
                "/cardholder",
                Ref::Of(
                    "/authorization",
                    Src::Resource("authorizations"),
                    "/cardholder",
                ),
            ),
        ],
        init: &[],
        created_event: Some("issuing_transaction.created"),
        update: Some(Update {
            event: "issuing_transaction.updated",
            set: METADATA,
        }),
        deleted_event: None,
    },
];

/// The row of a stream name.
pub(crate) fn find(stream: &str) -> Option<(usize, &'static Resource)> {
    RESOURCES
        .iter()
        .enumerate()
        .find(|(_, r)| r.stream == stream)
}

/// The row of a list path.
fn by_path(path: &str) -> Option<(usize, &'static Resource)> {
    RESOURCES.iter().enumerate().find(|(_, r)| r.path == path)
}

/// The `Stripe-Version` a client must send to `path`, where the endpoint is newer than
/// the emulator's default version.
pub fn version_for(path: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|r| path.starts_with(r.path))
        .and_then(|r| r.min_version)
        .map(|_| "2025-03-31.basil")
        .or_else(|| super::kids::version_for(path.split('?').next().unwrap_or(path)))
}

/// The list routes with the query parameters each accepts (base names).
pub(crate) fn routes() -> Vec<(&'static str, Vec<&'static str>)> {
    RESOURCES
        .iter()
        .map(|r| {
            let mut params = vec!["ending_before", "limit", "starting_after"];
            if r.created_filter {
                params.push("created");
            }
            params.sort_unstable();
            (r.path, params)
        })
        .collect()
}

/// Whether the scope has data for this resource (no Issuing on connected accounts).
fn enabled(r: &Resource, data: &ScopeData) -> bool {
    !(r.issuing && data.connected)
}

/// A copy of the example object of a type (the 2026 supplement for newer ones).
fn fixture(fx: &Fixtures, object: &str) -> Value {
    let v = fx.get(object);
    if v.as_object().is_some_and(|m| !m.is_empty()) {
        return v;
    }
    let supplement: Value = serde_json::from_str(SUPPLEMENT_JSON).unwrap_or(Value::Null);
    supplement["resources"][object].clone()
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let mut slot = v;
    for key in pointer.split('/').skip(1) {
        if !slot.is_object() {
            *slot = json!({});
        }
        slot = &mut slot[key];
    }
    *slot = value;
}

/// Everything a build or an advance needs to make objects of one scope.
pub(crate) struct Maker<'a> {
    pub(crate) g: &'a Gen<'a>,
    /// Ids of the connected accounts an object may reference (`Src::Account`).
    pub(crate) accounts: &'a [String],
}

impl Maker<'_> {
    /// A random object of `src` created no later than `at` (any, if none is), with a
    /// non-null string at `with` when given.
    fn pick(
        &self,
        data: &ScopeData,
        rng: &mut Rng,
        src: Src,
        at: i64,
        with: Option<&str>,
    ) -> Option<Value> {
        let col = match src {
            Src::Stream(s) => data.col(s),
            Src::Resource(name) => &data.resources[find(name)?.0],
            Src::Account => {
                let id = match self.accounts {
                    [] => data.account.clone(),
                    ids => ids[rng.index(ids.len())].clone(),
                };
                return Some(json!({ "id": id }));
            }
            Src::Child(_) => return None,
        };
        let ok = |v: &Value| {
            with.is_none_or(|p| {
                v.pointer(p)
                    .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            })
        };
        // Oldest first, so those created by `at` are a prefix; the first that fits from a
        // random start round the prefix (then round all). Where the field is indexed
        // (`index_picked_fields`), only the objects with a string there are looked at:
        // walking every object for a field few have made a large scope's build quadratic.
        let field = with.and_then(top_level_field);
        let (before, all) = (col.created_by(at), col.len());
        let start = rng.index(all.max(1));
        for pool in [before, all] {
            if pool == 0 {
                continue;
            }
            let first = start % pool;
            let found = match field.and_then(|f| col.with_string(f, pool, first)) {
                Some(candidates) => candidates.map(|o| o.value()).find(|v| ok(v)),
                None => (0..pool)
                    .filter_map(|k| col.nth_asc((first + k) % pool))
                    .map(|o| o.value())
                    .find(|v| ok(v)),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// A new object of `r` created at `at`.
    pub(crate) fn make(&self, data: &ScopeData, rng: &mut Rng, r: &Resource, at: i64) -> Value {
        let mut v = fixture(self.g.fx, r.object);
        let id = self.g.long_id(rng, r.prefix);
        v["id"] = json!(id);
        v["object"] = json!(r.object);
        v[r.created_field] = json!(at);
        if r.created_field != "created" && v.get("created").is_some() {
            v["created"] = json!(at);
        }
        if r.object == "checkout.session" {
            // Sessions carry `created` from API version 2022-08-01 on; the cursor needs it.
            v["created"] = json!(at);
            v["expires_at"] = json!(at + DAY);
        }
        if v.get("livemode").is_some() {
            v["livemode"] = json!(self.g.livemode);
        }
        if v.get("client_secret").is_some_and(Value::is_string) {
            v["client_secret"] = json!(format!("{id}_secret_{}", rng.alnum(24)));
        }
        for (pointer, how) in r.refs {
            let value = match *how {
                Ref::Id(src) => self.pick(data, rng, src, at, None).map(|o| o["id"].clone()),
                Ref::IdWith(src, with) => self
                    .pick(data, rng, src, at, Some(with))
                    .map(|o| o["id"].clone()),
                Ref::Embed(src) => self.pick(data, rng, src, at, None),
                Ref::Of(field, src, inner) => {
                    let id = v.pointer(field).and_then(Value::as_str).unwrap_or_default();
                    let found = match src {
                        Src::Stream(s) => data.col(s).get(id).map(|o| o.value()),
                        Src::Resource(name) => find(name)
                            .and_then(|(i, _)| data.resources[i].get(id))
                            .map(|o| o.value()),
                        Src::Account | Src::Child(_) => None,
                    };
                    found.and_then(|o| o.pointer(inner).cloned())
                }
                Ref::Copy(from) => v.pointer(from).cloned(),
            };
            if let Some(value) = value {
                set(&mut v, pointer, value);
            }
        }
        apply(&mut v, r.init, at);
        v
    }
}

/// Applies `set` to an object changed (or made) at `at`.
fn apply(v: &mut Value, fields: &[(&str, Val)], at: i64) {
    for (pointer, val) in fields {
        let value = match *val {
            Val::Str(s) => json!(s),
            Val::Bool(b) => json!(b),
            Val::Now => json!(at),
            Val::NowText => json!(at.to_string()),
            Val::Copy(from) => v.pointer(from).cloned().unwrap_or(Value::Null),
        };
        set(v, pointer, value);
    }
}

/// An object's creation time as the store orders it.
fn obj(r: &Resource, v: &Value) -> Obj {
    let mut o = Obj::new(Stream::Events, v);
    o.fields.clear();
    o.created = v.get(r.created_field).and_then(Value::as_i64).unwrap_or(0);
    o
}

/// Adds every table-driven resource to a freshly built scope: `max(size / per, 3)`
/// objects each, created uniformly over the history, with their `created` events when
/// they fall in the 30-day event window.
pub(crate) fn build(fx: &Fixtures, p: &BuildParams, accounts: &[String], data: &mut ScopeData) {
    let mut rng = Rng::derive(p.seed, &[p.index, u64::from(p.livemode), 10]);
    let account = data.account.clone();
    let g = Gen {
        fx,
        account: &account,
        connected: data.connected,
        livemode: data.livemode,
        currency: data.currency,
    };
    let maker = Maker { g: &g, accounts };
    let t1 = p.start - 1;
    let t0 = (p.start - p.history_days.max(1) * DAY).min(t1 - DAY);
    let events_from = p.start - EVENT_RETENTION_SECS + 1;
    data.resources = RESOURCES.iter().map(|_| Collection::default()).collect();
    index_picked_fields(data);
    for (index, r) in RESOURCES.iter().enumerate() {
        if !enabled(r, data) {
            continue;
        }
        let n = (p.size / r.per).max(3);
        let mut times: Vec<i64> = (0..n).map(|_| rng.range(t0, t1)).collect();
        times.sort_unstable();
        for at in times {
            let v = maker.make(data, &mut rng, r, at);
            if let Some(kind) = r.created_event.filter(|_| at >= events_from) {
                let e = g.event(&mut rng, kind, at, &v, None, false);
                data.put(Stream::Events, &e);
            }
            data.resources[index].put(obj(r, &v));
        }
    }
}

/// The field a JSON pointer names when it names one at the top level (`/payment_intent`).
fn top_level_field(pointer: &str) -> Option<&str> {
    pointer.strip_prefix('/').filter(|f| !f.contains('/'))
}

/// Indexes the fields a reference needs a string at ([`Ref::IdWith`]) in the collections
/// it picks from, so builds and advances find such objects without walking the others.
fn index_picked_fields(data: &mut ScopeData) {
    for (_, how) in RESOURCES.iter().flat_map(|r| r.refs) {
        let Ref::IdWith(src, with) = *how else {
            continue;
        };
        let Some(field) = top_level_field(with) else {
            continue;
        };
        let col = match src {
            Src::Stream(s) => data.col_mut(s),
            Src::Resource(name) => match find(name) {
                Some((i, _)) => &mut data.resources[i],
                None => continue,
            },
            Src::Account | Src::Child(_) => continue,
        };
        col.index_strings(field);
    }
}

/// Applies `count` creates, updates and deletes to every table-driven resource of a
/// scope (updates where the resource changes, deletes where it is deletable), at the
/// times `at` gives out, with their events; returns the changes.
pub(crate) fn advance(
    maker: &Maker<'_>,
    data: &mut ScopeData,
    rng: &mut Rng,
    count: usize,
    mut at: impl FnMut() -> i64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut record = |data: &mut ScopeData,
                      rng: &mut Rng,
                      r: &Resource,
                      v: &Value,
                      kind: ChangeKind,
                      event: Option<&str>,
                      at: i64| {
        if let Some(event) = event {
            let e = maker.g.event(rng, event, at, v, None, false);
            data.put(Stream::Events, &e);
        }
        changes.push(Change {
            stream: r.stream.to_string(),
            id: v["id"].as_str().unwrap_or_default().to_string(),
            kind,
            event_type: event.unwrap_or_default().to_string(),
            at,
        });
    };
    for (index, r) in RESOURCES.iter().enumerate() {
        if !enabled(r, data) {
            continue;
        }
        for _ in 0..count {
            let t = at();
            let v = maker.make(data, rng, r, t);
            data.resources[index].put(obj(r, &v));
            record(data, rng, r, &v, ChangeKind::Created, r.created_event, t);
        }
        if let Some(update) = &r.update {
            // The oldest objects not changed yet by this kind of update.
            let targets: Vec<Value> = data.resources[index]
                .iter_asc()
                .map(|o| o.value())
                .filter(|v| {
                    update.set.iter().any(|(p, val)| match val {
                        Val::Str(s) => v.pointer(p) != Some(&json!(s)),
                        Val::Bool(b) => v.pointer(p) != Some(&json!(b)),
                        _ => true,
                    })
                })
                .take(count)
                .collect();
            for mut v in targets {
                let t = at();
                apply(&mut v, update.set, t);
                data.resources[index].put(obj(r, &v));
                record(data, rng, r, &v, ChangeKind::Updated, Some(update.event), t);
            }
        }
        if let Some(event) = r.deleted_event {
            let targets: Vec<Value> = data.resources[index]
                .iter_asc()
                .take(count)
                .map(|o| o.value())
                .collect();
            for v in targets {
                let t = at();
                let id = v["id"].as_str().unwrap_or_default().to_string();
                data.resources[index].remove(&id);
                let stub = json!({"id": id, "object": r.object, "deleted": true});
                data.deleted.insert(id, Arc::from(stub.to_string()));
                record(data, rng, r, &v, ChangeKind::Deleted, Some(event), t);
            }
        }
    }
    changes
}

/// Stores a new version of a resource's object (a parent whose children changed).
pub(crate) fn put(data: &mut ScopeData, stream: &str, v: &Value) {
    if let Some((index, r)) = find(stream)
        && let Some(col) = data.resources.get_mut(index)
    {
        col.put(obj(r, v));
    }
}

/// The objects of a resource (`None`: not a table-driven resource, or not built).
pub(crate) fn collection<'a>(data: &'a ScopeData, stream: &str) -> Option<&'a Collection> {
    data.resources.get(find(stream)?.0)
}

/// Ids of a resource's objects, newest first (`None`: not a table-driven resource).
pub(crate) fn ids(data: &ScopeData, stream: &str) -> Option<Vec<String>> {
    let (index, _) = find(stream)?;
    Some(
        data.resources
            .get(index)
            .map(|c| c.iter_desc().map(|o| o.id.clone()).collect())
            .unwrap_or_default(),
    )
}

/// The current version of an object (`None` when the stream is not table-driven or the
/// object does not exist).
pub(crate) fn object(data: &ScopeData, stream: &str, id: &str) -> Option<Value> {
    let (index, _) = find(stream)?;
    data.resources.get(index)?.get(id).map(|o| o.value())
}

/// Serves `GET path?query` when `path` is a table-driven resource's list or retrieve
/// endpoint; `None` otherwise. `version`: the request's `Stripe-Version`.
pub(crate) fn serve(
    data: &ScopeData,
    version: &str,
    path: &str,
    query: &str,
) -> Option<Result<String, ApiError>> {
    let (route, id) = match by_path(path) {
        Some(found) => (found, None),
        None => {
            let (base, id) = path.rsplit_once('/')?;
            (by_path(base)?, Some(id))
        }
    };
    let (index, r) = route;
    if r.min_version.is_some_and(|min| version < min) {
        return None; // the endpoint does not exist at this version: "Unrecognized URL"
    }
    if !enabled(r, data) {
        return Some(Err(ApiError::bad(
            "Your account is not set up to use Issuing. Please visit https://dashboard.stripe.com/issuing/overview to get started.",
        )));
    }
    let col = data.resources.get(index)?;
    let params = parse_query(query);
    Some(match id {
        Some(id) => retrieve(col, r, id, &params),
        None => list(col, r, &params),
    })
}

fn retrieve(
    col: &Collection,
    r: &Resource,
    id: &str,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    if let Some((k, _)) = params.iter().find(|(k, _)| base_name(k) != "expand") {
        return Err(unknown_param(base_name(k)));
    }
    no_expand(params, false)?;
    col.get(id)
        .map(|o| o.json.to_string())
        .ok_or_else(|| ApiError::missing(r.object, id, "id"))
}

/// This table serves no expansions yet: any `expand[]` is refused as Stripe refuses an
/// unknown one.
fn no_expand(params: &[(String, String)], list: bool) -> Result<(), ApiError> {
    match params.iter().find(|(k, _)| base_name(k) == "expand") {
        Some((_, v)) if list && !v.starts_with("data.") => Err(ApiError::bad(format!(
            "This property cannot be expanded ({v}). You may want to try expanding 'data.{v}' instead."
        ))
        .param("expand[0]")),
        Some((_, v)) => {
            Err(ApiError::bad(format!("This property cannot be expanded ({v}).")).param("expand[0]"))
        }
        None => Ok(()),
    }
}

fn list(col: &Collection, r: &Resource, params: &[(String, String)]) -> Result<String, ApiError> {
    let mut limit = 10;
    let (mut after, mut before) = (None, None);
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    for (k, v) in params {
        let base = base_name(k);
        let int = || {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad(format!("Invalid integer: {v}")).param(k))
        };
        match base {
            "limit" => {
                let n = int()?;
                if !(1..=100).contains(&n) {
                    return Err(ApiError::bad(if n < 1 {
                        "This value must be greater than or equal to 1."
                    } else {
                        "This value must be less than or equal to 100."
                    })
                    .param("limit"));
                }
                limit = n as usize;
            }
            "starting_after" if !v.is_empty() => after = Some(v.clone()),
            "ending_before" if !v.is_empty() => before = Some(v.clone()),
            "starting_after" | "ending_before" | "expand" => {}
            "created" if r.created_filter => {
                let n = int()?;
                let (l, h) = match k.as_str() {
                    "created" => (Some(n), Some(n)),
                    "created[gt]" => (Some(n.saturating_add(1)), None),
                    "created[gte]" => (Some(n), None),
                    "created[lt]" => (None, Some(n.saturating_sub(1))),
                    "created[lte]" => (None, Some(n)),
                    _ => return Err(unknown_param(k)),
                };
                lo = l.map_or(lo, |l| Some(lo.map_or(l, |m| m.max(l))));
                hi = h.map_or(hi, |h| Some(hi.map_or(h, |m| m.min(h))));
            }
            _ => return Err(unknown_param(base)),
        }
    }
    no_expand(params, true)?;
    let cursor = list_cursor(after, before)?;
    let param = match cursor {
        Cursor::Before(_) => "ending_before",
        _ => "starting_after",
    };
    let all = |_: &Obj| true;
    let page = col
        .page(&PageQuery {
            limit,
            cursor,
            min_created: lo,
            max_created: hi,
            filter: &all,
        })
        .map_err(|id| ApiError::missing(r.object, &id, param))?;
    Ok(render_page(
        r.path,
        page.items.iter().map(|o| o.json.clone()),
        page.has_more,
    ))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let fx = Fixtures::load();
        for (i, r) in RESOURCES.iter().enumerate() {
            assert!(
                fixture(&fx, r.object)["object"] == r.object,
                "{}: the fixture exists",
                r.stream
            );
            assert!(r.path.starts_with("/v1/"), "{}", r.stream);
            for (_, how) in r.refs {
                if let Ref::Id(Src::Resource(name))
                | Ref::Embed(Src::Resource(name))
                | Ref::IdWith(Src::Resource(name), _)
                | Ref::Of(_, Src::Resource(name), _) = how
                {
                    let (j, _) = find(name).unwrap_or_else(|| panic!("{name} is a row"));
                    assert!(j < i, "{}: {name} is built before it", r.stream);
                }
            }
            assert_eq!(
                RESOURCES.iter().filter(|x| x.prefix == r.prefix).count(),
                1,
                "{}: its id prefix is its own",
                r.stream
            );
            assert!(
                Stream::ALL.iter().all(|s| s.prefix() != r.prefix),
                "{}: the prefix is not a hand-written stream's",
                r.stream
            );
        }
    }
}
