//! The deterministic data set of a scope: Stripe's example objects (fixtures) varied into
//! customers, charges, payment intents, refunds, disputes, products, prices, balance
//! transactions, invoices, subscriptions, payouts and their events, with consistent
//! references. Also the object builders that clock advances reuse.
use std::collections::HashMap;

use serde_json::{Value, json};

use super::rng::Rng;
use super::store::{Obj, ScopeData, Stream};
use super::{API_VERSION, EVENT_RETENTION_SECS};

const FIXTURES_JSON: &str = include_str!("../reference/stripe-openapi/fixtures3.2022-04-12.json");

/// Stripe's 2026 example objects of the core types (a charge is about 3.4 KB of JSON,
/// against 1.9 KB in 2022), for data sets as large as today's objects.
const FIXTURES_2026_JSON: &str =
    include_str!("../reference/stripe-openapi/fixtures3.2026-08-21.core.json");

const DAY: i64 = 86_400;

const FIRST_NAMES: &[&str] = &[
    "Jenny", "Liam", "Olivia", "Noah", "Emma", "Ava", "Lucas", "Mia", "Ethan", "Amelia", "Hugo",
    "Chloe", "Mateo", "Ines", "Yuki", "Aarav", "Zoe", "Felix", "Nora", "Omar",
];
const LAST_NAMES: &[&str] = &[
    "Rosen", "Smith", "Garcia", "Muller", "Dubois", "Rossi", "Tanaka", "Kowalski", "Silva",
    "Nguyen", "Brown", "Jensen", "Novak", "Haddad", "Okafor", "Larsen",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "US", "94103"),
    ("New York", "US", "10001"),
    ("London", "GB", "EC1A 1BB"),
    ("Paris", "FR", "75002"),
    ("Berlin", "DE", "10115"),
    ("Dublin", "IE", "D02 X285"),
];
const PRODUCTS: &[(&str, &str)] = &[
    ("T-shirt", "Comfortable gray cotton t-shirt"),
    ("Mug", "Ceramic mug, 350 ml"),
    ("Hoodie", "Warm hoodie with front pocket"),
    ("Sticker pack", "Ten vinyl stickers"),
    ("Gold plan", "Monthly access to every feature"),
    ("Notebook", "A5 dotted notebook"),
    ("Backpack", "Water resistant backpack, 20 l"),
    ("Cap", "Embroidered baseball cap"),
];
const CARDS: &[(&str, &str)] = &[
    ("visa", "4242"),
    ("visa", "1881"),
    ("mastercard", "4444"),
    ("mastercard", "8210"),
    ("amex", "8431"),
];
/// Units of each currency per US dollar.
const RATES: &[(&str, f64)] = &[
    ("usd", 1.0),
    ("eur", 0.92),
    ("gbp", 0.79),
    ("cad", 1.36),
    ("aud", 1.52),
];

/// Stripe's example object per type, parsed once.
pub(crate) struct Fixtures {
    map: HashMap<String, Value>,
}

impl Fixtures {
    pub(crate) fn load() -> Fixtures {
        Fixtures {
            map: resources(FIXTURES_JSON),
        }
    }

    /// The 2022 fixtures with the core types replaced by Stripe's 2026 examples.
    pub(crate) fn load_2026() -> Fixtures {
        let mut map = resources(FIXTURES_JSON);
        map.extend(resources(FIXTURES_2026_JSON));
        Fixtures { map }
    }

    /// A copy of the example object of a type (an empty object if unknown).
    pub(crate) fn get(&self, name: &str) -> Value {
        self.map
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// The `resources` of a fixtures file. The files are embedded at compile time and a unit
/// test parses them, so the fallback to an empty map cannot happen in a built emulator.
fn resources(json: &str) -> HashMap<String, Value> {
    let parsed: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    match parsed.get("resources") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => HashMap::new(),
    }
}

/// Rate to convert `from` into `to`.
fn rate(from: &str, to: &str) -> f64 {
    let r = |c: &str| RATES.iter().find(|(k, _)| *k == c).map_or(1.0, |(_, r)| *r);
    r(to) / r(from)
}

/// Who the objects belong to and how ids look.
pub(crate) struct Gen<'a> {
    pub(crate) fx: &'a super::data::Fixtures,
    pub(crate) account: &'a str,
    pub(crate) connected: bool,
    pub(crate) livemode: bool,
    pub(crate) currency: &'static str,
}

/// Light references kept while building.
#[derive(Clone)]
pub(crate) struct CustomerRef {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) invoice_prefix: String,
}

impl CustomerRef {
    pub(crate) fn of(v: &Value) -> CustomerRef {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        CustomerRef {
            id: s("id"),
            created: v.get("created").and_then(Value::as_i64).unwrap_or(0),
            email: s("email"),
            name: s("name"),
            invoice_prefix: s("invoice_prefix"),
        }
    }
}

impl Gen<'_> {
    /// The 10 characters Stripe embeds from the account id in long ids.
    fn tag(&self) -> &str {
        let n = self.account.len();
        self.account
            .get(n.saturating_sub(10)..)
            .unwrap_or("EMULATOR00")
    }

    /// A long id like `ch_1KmRa0ARuRTs9TwLDMxnsd6N` (24 characters after the prefix).
    pub(crate) fn long_id(&self, rng: &mut Rng, prefix: &str) -> String {
        format!("{prefix}_1{}{}{}", rng.alnum(5), self.tag(), rng.alnum(8))
    }

    /// A short id like `cus_LTOMaDA1ov9ZEp` (14 characters after the prefix).
    pub(crate) fn short_id(&self, rng: &mut Rng, prefix: &str) -> String {
        format!("{prefix}_{}", rng.alnum(14))
    }

    pub(crate) fn id(&self, rng: &mut Rng, stream: Stream) -> String {
        match stream {
            Stream::Customers | Stream::Products => self.short_id(rng, stream.prefix()),
            _ => self.long_id(rng, stream.prefix()),
        }
    }

    fn base(&self, kind: &str, id: &str, created: i64) -> Value {
        let mut v = self.fx.get(kind);
        v["id"] = json!(id);
        v["created"] = json!(created);
        v["livemode"] = json!(self.livemode);
        v
    }

    pub(crate) fn customer(&self, rng: &mut Rng, created: i64) -> Value {
        let id = self.id(rng, Stream::Customers);
        let mut v = self.base("customer", &id, created);
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let name = format!("{first} {last}");
        let email = format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.below(1000)
        );
        v["name"] = json!(name);
        v["email"] = json!(email);
        v["currency"] = json!(self.currency);
        v["invoice_prefix"] = json!(rng.hex_upper(8));
        v["next_invoice_sequence"] = json!(1);
        if rng.chance(0.4) {
            let (city, country, postal) = rng.pick(CITIES);
            v["address"] = json!({
                "city": city, "country": country, "line1": format!("{} Main Street", rng.range(1, 400)),
                "line2": null, "postal_code": postal, "state": null
            });
            v["phone"] = json!(format!("+1555{:07}", rng.below(10_000_000)));
        }
        if rng.chance(0.3) {
            v["description"] = json!(format!("Customer since {}", 2015 + rng.below(8)));
        }
        if rng.chance(0.5) {
            v["metadata"] = json!({"crm_id": format!("C-{:06}", rng.below(1_000_000))});
        }
        if rng.chance(0.2) {
            v["preferred_locales"] = json!([rng.pick(&["en", "fr", "de", "es"])]);
        }
        v
    }

    pub(crate) fn product(&self, rng: &mut Rng, created: i64) -> Value {
        let id = self.id(rng, Stream::Products);
        let mut v = self.base("product", &id, created);
        let (name, description) = rng.pick(PRODUCTS);
        v["name"] = json!(format!("{name} {}", rng.alnum(3).to_uppercase()));
        v["description"] = json!(description);
        v["updated"] = json!(created);
        v["active"] = json!(rng.chance(0.9));
        if rng.chance(0.5) {
            v["metadata"] = json!({"sku": format!("SKU-{}", rng.hex_upper(6))});
        }
        v
    }

    pub(crate) fn price(
        &self,
        rng: &mut Rng,
        product: &str,
        created: i64,
        recurring: bool,
    ) -> Value {
        let id = self.id(rng, Stream::Prices);
        let mut v = self.base("price", &id, created);
        let amount = rng.range(5, 200) * 100 - rng.pick(&[0, 1, 5]);
        v["product"] = json!(product);
        v["currency"] = json!(self.currency);
        v["unit_amount"] = json!(amount);
        v["unit_amount_decimal"] = json!(amount.to_string());
        v["active"] = json!(rng.chance(0.9));
        if recurring {
            let interval = if rng.chance(0.8) { "month" } else { "year" };
            v["type"] = json!("recurring");
            v["recurring"] = json!({
                "aggregate_usage": null, "interval": interval, "interval_count": 1,
                "usage_type": "licensed"
            });
            v["nickname"] = json!(format!("{}ly", interval));
        } else {
            v["type"] = json!("one_time");
            v["recurring"] = Value::Null;
            v["nickname"] = Value::Null;
        }
        v
    }

    /// A charge paid by `customer` (before any refund or dispute).
    pub(crate) fn charge(&self, rng: &mut Rng, c: &ChargeArgs<'_>) -> Value {
        let mut v = self.base("charge", &c.id, c.created);
        let (brand, last4) = rng.pick(CARDS);
        v["amount"] = json!(c.amount);
        v["currency"] = json!(c.currency);
        v["customer"] = json!(c.customer.id);
        v["payment_intent"] = json!(c.payment_intent);
        v["description"] = json!(format!("Order #{}", rng.range(10_000, 99_999)));
        v["billing_details"]["name"] = json!(c.customer.name);
        v["billing_details"]["email"] = json!(c.customer.email);
        v["receipt_email"] = json!(c.customer.email);
        v["calculated_statement_descriptor"] = json!("EMULATOR SHOP");
        v["payment_method"] = json!(self.long_id(rng, "pm"));
        let card = &mut v["payment_method_details"]["card"];
        card["brand"] = json!(brand);
        card["network"] = json!(brand);
        card["last4"] = json!(last4);
        card["exp_month"] = json!(rng.range(1, 12));
        card["exp_year"] = json!(2026 + rng.range(0, 5));
        card["fingerprint"] = json!(rng.alnum(16));
        card["funding"] = json!(if rng.chance(0.7) { "credit" } else { "debit" });
        card["checks"]["cvc_check"] = json!("pass");
        v["receipt_url"] = json!(format!(
            "https://pay.stripe.com/receipts/{}/{}/rcpt_{}",
            self.account,
            c.id,
            rng.alnum(32)
        ));
        v["refunds"] = json!({
            "data": [], "has_more": false, "object": "list",
            "url": format!("/v1/charges/{}/refunds", c.id)
        });
        if let Some(bt) = &c.balance_transaction {
            v["status"] = json!("succeeded");
            v["paid"] = json!(true);
            v["captured"] = json!(true);
            v["amount_captured"] = json!(c.amount);
            v["balance_transaction"] = json!(bt);
            v["outcome"] = json!({
                "network_status": "approved_by_network", "reason": null,
                "risk_level": "normal", "risk_score": rng.range(0, 60),
                "seller_message": "Payment complete.", "type": "authorized"
            });
        } else {
            v["status"] = json!("failed");
            v["paid"] = json!(false);
            v["captured"] = json!(false);
            v["amount_captured"] = json!(0);
            v["balance_transaction"] = Value::Null;
            v["failure_code"] = json!("card_declined");
            v["failure_message"] = json!("Your card was declined.");
            v["outcome"] = json!({
                "network_status": "declined_by_network", "reason": "generic_decline",
                "risk_level": "normal", "risk_score": rng.range(0, 60),
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"
            });
        }
        v
    }

    /// A payment intent as first created (no payment attempt yet).
    pub(crate) fn payment_intent_open(
        &self,
        rng: &mut Rng,
        id: &str,
        created: i64,
        customer: &str,
        amount: i64,
        currency: &str,
    ) -> Value {
        let mut v = self.base("payment_intent", id, created);
        v["amount"] = json!(amount);
        v["currency"] = json!(currency);
        v["customer"] = json!(customer);
        v["client_secret"] = json!(format!("{id}_secret_{}", rng.alnum(25)));
        v["canceled_at"] = Value::Null;
        v["status"] = json!("requires_payment_method");
        v["amount_received"] = json!(0);
        v["charges"] = json!({
            "data": [], "has_more": false, "object": "list",
            "url": format!("/v1/charges?payment_intent={id}")
        });
        v
    }

    /// The payment intent after `charge` (its latest attempt) ran.
    pub(crate) fn payment_intent_after(&self, open: &Value, charge: &Value) -> Value {
        let mut v = open.clone();
        let ok = charge.get("paid").and_then(Value::as_bool).unwrap_or(false);
        v["charges"]["data"] = json!([charge]);
        v["description"] = charge["description"].clone();
        v["receipt_email"] = charge["receipt_email"].clone();
        if ok {
            v["status"] = json!("succeeded");
            v["amount_received"] = charge["amount"].clone();
            v["payment_method"] = charge["payment_method"].clone();
        } else {
            v["status"] = json!("requires_payment_method");
            v["amount_received"] = json!(0);
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn balance_transaction(
        &self,
        id: &str,
        created: i64,
        amount: i64,
        fee: i64,
        kind: &str,
        category: &str,
        source: &str,
        description: &str,
        exchange_rate: Option<f64>,
        now: i64,
    ) -> Value {
        let mut v = self.base("balance_transaction", id, created);
        let available_on = created - created.rem_euclid(DAY) + 2 * DAY;
        v["amount"] = json!(amount);
        v["fee"] = json!(fee);
        v["net"] = json!(amount - fee);
        v["currency"] = json!(self.currency);
        v["type"] = json!(kind);
        v["reporting_category"] = json!(category);
        v["source"] = json!(source);
        v["description"] = json!(description);
        v["available_on"] = json!(available_on);
        v["status"] = json!(if available_on <= now {
            "available"
        } else {
            "pending"
        });
        v["exchange_rate"] = exchange_rate.map_or(Value::Null, |r| json!(r));
        v["fee_details"] = if fee == 0 {
            json!([])
        } else {
            json!([{
                "amount": fee, "application": null, "currency": self.currency,
                "description": "Stripe processing fees", "type": "stripe_fee"
            }])
        };
        v
    }

    /// Settlement amount and exchange rate of an amount in `currency`.
    pub(crate) fn settle(&self, amount: i64, currency: &str) -> (i64, Option<f64>) {
        if currency == self.currency {
            (amount, None)
        } else {
            let r = (rate(currency, self.currency) * 1e6).round() / 1e6;
            ((amount as f64 * r).round() as i64, Some(r))
        }
    }

    pub(crate) fn refund(
        &self,
        rng: &mut Rng,
        id: &str,
        charge: &Value,
        amount: i64,
        created: i64,
        balance_transaction: &str,
    ) -> Value {
        let mut v = self.fx.get("refund");
        v["id"] = json!(id);
        v["created"] = json!(created);
        v["amount"] = json!(amount);
        v["charge"] = charge["id"].clone();
        v["currency"] = charge["currency"].clone();
        v["payment_intent"] = charge["payment_intent"].clone();
        v["balance_transaction"] = json!(balance_transaction);
        v["reason"] = rng
            .pick(&[Some("requested_by_customer"), Some("duplicate"), None])
            .map_or(Value::Null, |r| json!(r));
        v["status"] = json!("succeeded");
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispute(
        &self,
        rng: &mut Rng,
        id: &str,
        charge: &Value,
        created: i64,
        status: &str,
        balance_transactions: Vec<Value>,
        now: i64,
    ) -> Value {
        let mut v = self.base("dispute", id, created);
        let due_by = created - created.rem_euclid(DAY) + 8 * DAY - 1;
        v["amount"] = charge["amount"].clone();
        v["currency"] = charge["currency"].clone();
        v["charge"] = charge["id"].clone();
        v["payment_intent"] = charge["payment_intent"].clone();
        v["reason"] = json!(rng.pick(&[
            "general",
            "fraudulent",
            "product_not_received",
            "duplicate",
            "subscription_canceled",
            "unrecognized",
        ]));
        set_dispute_status(&mut v, status, now);
        v["evidence_details"]["due_by"] = json!(due_by);
        v["balance_transactions"] = Value::Array(balance_transactions);
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn subscription(
        &self,
        rng: &mut Rng,
        id: &str,
        created: i64,
        customer: &str,
        price: &Value,
        status: &str,
        latest_invoice: &str,
        now: i64,
    ) -> Value {
        let mut v = self.base("subscription", id, created);
        let yearly = price.pointer("/recurring/interval").and_then(Value::as_str) == Some("year");
        let period = if yearly { 365 * DAY } else { 30 * DAY };
        let mut item = self.fx.get("subscription_item");
        item["id"] = json!(self.short_id(rng, "si"));
        item["created"] = json!(created);
        item["price"] = price.clone();
        item["subscription"] = json!(id);
        item["quantity"] = json!(rng.range(1, 3));
        v["items"] = json!({
            "data": [item], "has_more": false, "object": "list",
            "url": format!("/v1/subscription_items?subscription={id}")
        });
        v["customer"] = json!(customer);
        v["billing_cycle_anchor"] = json!(created);
        v["start_date"] = json!(created);
        v["latest_invoice"] = json!(latest_invoice);
        v["next_pending_invoice_item_invoice"] = Value::Null;
        v["cancel_at"] = Value::Null;
        v["status"] = json!(status);
        let mut until = now;
        if status == "canceled" {
            let at = rng.range(created + 1, now.max(created + 1));
            v["canceled_at"] = json!(at);
            v["ended_at"] = json!(at);
            until = at;
        } else {
            v["canceled_at"] = Value::Null;
            v["ended_at"] = Value::Null;
        }
        if status == "trialing" {
            v["trial_start"] = json!(created);
            v["trial_end"] = json!(created + 14 * DAY);
        } else {
            v["trial_start"] = Value::Null;
            v["trial_end"] = Value::Null;
        }
        let k = ((until - created).max(0)) / period;
        v["current_period_start"] = json!(created + k * period);
        v["current_period_end"] = json!(created + (k + 1) * period);
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn invoice(
        &self,
        rng: &mut Rng,
        id: &str,
        created: i64,
        customer: &CustomerRef,
        number: u64,
        subscription: Option<(&str, &str)>,
        price: &Value,
        quantity: i64,
        status: &str,
    ) -> Value {
        let mut v = self.base("invoice", id, created);
        let unit = price
            .get("unit_amount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let total = unit * quantity;
        let mut line = v
            .pointer("/lines/data/0")
            .cloned()
            .unwrap_or_else(|| json!({}));
        line["id"] = json!(self.short_id(rng, "il"));
        line["amount"] = json!(total);
        line["currency"] = json!(self.currency);
        line["livemode"] = json!(self.livemode);
        line["price"] = price.clone();
        line["quantity"] = json!(quantity);
        line["period"] = json!({"end": created, "start": created});
        match subscription {
            Some((sub, item)) => {
                line["type"] = json!("subscription");
                line["subscription"] = json!(sub);
                line["subscription_item"] = json!(item);
                if let Some(o) = line.as_object_mut() {
                    o.remove("invoice_item");
                }
                line["description"] = json!(format!("{quantity} × subscription"));
                v["billing_reason"] = json!("subscription_create");
            }
            None => {
                line["type"] = json!("invoiceitem");
                line["subscription"] = Value::Null;
                line["invoice_item"] = json!(self.long_id(rng, "ii"));
                line["description"] = json!(format!("{quantity} × one-off item"));
                v["billing_reason"] = json!("manual");
            }
        }
        v["lines"] = json!({
            "data": [line], "has_more": false, "object": "list",
            "url": format!("/v1/invoices/{id}/lines")
        });
        super::children::pad_lines(&mut v);
        v["subscription"] = subscription.map_or(Value::Null, |(s, _)| json!(s));
        v["customer"] = json!(customer.id);
        v["customer_email"] = json!(customer.email);
        v["customer_name"] = json!(customer.name);
        v["currency"] = json!(self.currency);
        v["subtotal"] = json!(total);
        v["total"] = json!(total);
        v["amount_due"] = json!(total);
        v["period_start"] = json!(created);
        v["period_end"] = json!(created);
        v["webhooks_delivered_at"] = json!(created);
        v["due_date"] = Value::Null;
        v["next_payment_attempt"] = Value::Null;
        v["ending_balance"] = json!(0);
        v["account_name"] = json!("Emulator Shop");
        let finalized = created + rng.range(60, 3600);
        v["status_transitions"] = json!({
            "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null
        });
        if status != "draft" {
            v["number"] = json!(format!("{}-{:04}", customer.invoice_prefix, number));
            v["status_transitions"]["finalized_at"] = json!(finalized);
            v["auto_advance"] = json!(status == "open");
            v["attempt_count"] = json!(1);
            v["attempted"] = json!(true);
        } else {
            v["number"] = Value::Null;
            v["ending_balance"] = Value::Null;
            v["attempted"] = json!(false);
            v["attempt_count"] = json!(0);
        }
        v["status"] = json!(status);
        let paid = status == "paid";
        v["paid"] = json!(paid);
        v["paid_out_of_band"] = json!(paid);
        v["amount_paid"] = json!(if paid { total } else { 0 });
        v["amount_remaining"] = json!(if paid { 0 } else { total });
        match status {
            "paid" => v["status_transitions"]["paid_at"] = json!(finalized),
            "open" => v["next_payment_attempt"] = json!(finalized + 3 * DAY),
            "void" => v["status_transitions"]["voided_at"] = json!(finalized + DAY),
            "uncollectible" => {
                v["status_transitions"]["marked_uncollectible_at"] = json!(finalized + DAY)
            }
            _ => {}
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn payout(
        &self,
        id: &str,
        created: i64,
        amount: i64,
        balance_transaction: &str,
        destination: &str,
        now: i64,
    ) -> Value {
        let mut v = self.base("payout", id, created);
        let arrival = created - created.rem_euclid(DAY) + 2 * DAY;
        v["amount"] = json!(amount);
        v["currency"] = json!(self.currency);
        v["arrival_date"] = json!(arrival);
        v["balance_transaction"] = json!(balance_transaction);
        v["destination"] = json!(destination);
        v["status"] = json!(if arrival < now { "paid" } else { "in_transit" });
        v
    }

    /// An event about `object`.
    pub(crate) fn event(
        &self,
        rng: &mut Rng,
        kind: &str,
        created: i64,
        object: &Value,
        previous: Option<Value>,
        automatic: bool,
    ) -> Value {
        let id = self.id(rng, Stream::Events);
        let mut data = json!({ "object": object });
        if let Some(p) = previous {
            data["previous_attributes"] = p;
        }
        let request = if automatic {
            json!({"id": null, "idempotency_key": null})
        } else {
            json!({"id": format!("req_{}", rng.alnum(14)), "idempotency_key": null})
        };
        let mut v = json!({
            "id": id, "object": "event", "api_version": API_VERSION, "created": created,
            "data": data, "livemode": self.livemode, "pending_webhooks": 0,
            "request": request, "type": kind,
        });
        if self.connected {
            v["account"] = json!(self.account);
        }
        v
    }
}

/// Sets a dispute's status and the fields that follow from it.
pub(crate) fn set_dispute_status(v: &mut Value, status: &str, now: i64) {
    let warning = status.starts_with("warning");
    let answered = !matches!(status, "needs_response" | "warning_needs_response");
    v["status"] = json!(status);
    v["is_charge_refundable"] = json!(warning && status != "warning_closed");
    v["evidence_details"]["has_evidence"] = json!(answered);
    v["evidence_details"]["submission_count"] = json!(i64::from(answered));
    let due = v
        .pointer("/evidence_details/due_by")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    v["evidence_details"]["past_due"] = json!(!answered && due < now);
}

/// What a charge is made of.
pub(crate) struct ChargeArgs<'a> {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) customer: &'a CustomerRef,
    pub(crate) amount: i64,
    pub(crate) currency: &'a str,
    pub(crate) payment_intent: String,
    /// `None` for a failed charge.
    pub(crate) balance_transaction: Option<String>,
}

/// Stripe's processing fee of an amount.
pub(crate) fn fee_of(amount: i64) -> i64 {
    amount * 29 / 1000 + 30
}

/// Parameters of one scope's data set.
pub(crate) struct BuildParams {
    pub(crate) seed: u64,
    pub(crate) index: u64,
    pub(crate) account: String,
    pub(crate) connected: bool,
    pub(crate) livemode: bool,
    pub(crate) size: usize,
    pub(crate) history_days: i64,
    /// Share of the objects created in the last 30 days (the rest spread over the history).
    pub(crate) recent_share: f64,
    pub(crate) start: i64,
}

/// The settlement currency of an account by its index (the platform settles in usd).
pub(crate) fn account_currency(index: u64) -> &'static str {
    match index % 4 {
        1 => "eur",
        2 => "gbp",
        _ => "usd",
    }
}

/// Events kept while building: only those that will be in the 30-day window.
struct Events {
    from: i64,
    /// As text, like every stored object: a million events held as `Value`s while the
    /// data is built took more memory than the machine has.
    list: Vec<Obj>,
}

impl Events {
    fn emit(&mut self, g: &Gen<'_>, rng: &mut Rng, kind: &str, at: i64, obj: &Value) {
        if at >= self.from {
            self.keep(&g.event(rng, kind, at, obj, None, false));
        }
    }

    fn emit_with(
        &mut self,
        g: &Gen<'_>,
        rng: &mut Rng,
        kind: &str,
        at: i64,
        obj: &Value,
        prev: Value,
    ) {
        if at >= self.from {
            self.keep(&g.event(rng, kind, at, obj, Some(prev), false));
        }
    }

    fn keep(&mut self, event: &Value) {
        self.list.push(Obj::new(Stream::Events, event));
    }
}

/// Sorted times in [lo, hi], `recent` of them in its last 30 days and the rest uniform
/// over it, `share` of them repeating the previous second.
fn times(rng: &mut Rng, n: usize, (lo, hi, recent): (i64, i64, f64), share: f64) -> Vec<i64> {
    let recent_lo = (hi - 30 * DAY).max(lo);
    let mut t: Vec<i64> = (0..n)
        .map(|_| {
            if recent > 0.0 && rng.chance(recent) {
                rng.range(recent_lo, hi)
            } else {
                rng.range(lo, hi)
            }
        })
        .collect();
    t.sort_unstable();
    for i in 1..t.len() {
        if rng.chance(share) {
            t[i] = t[i - 1];
        }
    }
    t
}

/// Index of a random element whose time is <= `at` in sorted `created` (0 if none).
fn pick_before(rng: &mut Rng, created: &[i64], at: i64) -> usize {
    let k = created.partition_point(|c| *c <= at);
    rng.index(k.max(1))
}

/// Builds the whole data set of a scope.
pub(crate) fn build(fx: &Fixtures, p: &BuildParams) -> ScopeData {
    let mut rng = Rng::derive(p.seed, &[p.index, u64::from(p.livemode), 1]);
    let currency = account_currency(p.index);
    let g = Gen {
        fx,
        account: &p.account,
        connected: p.connected,
        livemode: p.livemode,
        currency,
    };
    let mut data = ScopeData::new(
        p.account.clone(),
        p.connected,
        p.livemode,
        currency,
        Rng::derive(p.seed, &[p.index, u64::from(p.livemode), 2]),
    );
    let n = p.size.max(1);
    let now = p.start;
    let t1 = p.start - 1;
    let t0 = (p.start - p.history_days * DAY).min(t1 - DAY);
    let mut ev = Events {
        from: p.start - EVENT_RETENTION_SECS + 1,
        list: Vec::new(),
    };
    let mut out: Vec<(Stream, Obj)> = Vec::new();

    // Customers.
    let n_customers = (n / 2).max(3);
    let mut customers: Vec<CustomerRef> = Vec::with_capacity(n_customers);
    for t in times(&mut rng, n_customers, (t0, t1, p.recent_share), 0.05) {
        let v = g.customer(&mut rng, t);
        ev.emit(&g, &mut rng, "customer.created", t, &v);
        customers.push(CustomerRef::of(&v));
        out.push((Stream::Customers, Obj::new(Stream::Customers, &v)));
    }
    let customer_times: Vec<i64> = customers.iter().map(|c| c.created).collect();

    // Products, two prices each.
    let n_products = (n / 50).max(5);
    let mut prices: Vec<Value> = Vec::new();
    for t in times(&mut rng, n_products, (t0, t1, p.recent_share), 0.0) {
        let prod = g.product(&mut rng, t);
        let pid = prod["id"].as_str().unwrap_or_default().to_string();
        ev.emit(&g, &mut rng, "product.created", t, &prod);
        out.push((Stream::Products, Obj::new(Stream::Products, &prod)));
        for recurring in [false, true] {
            let at = (t + rng.range(0, 3 * DAY)).min(t1);
            let price = g.price(&mut rng, &pid, at, recurring);
            ev.emit(&g, &mut rng, "price.created", at, &price);
            out.push((Stream::Prices, Obj::new(Stream::Prices, &price)));
            prices.push(price);
        }
    }
    prices.sort_by_key(|v| v["created"].as_i64().unwrap_or(0));

    // Charges with their payment intents, refunds, disputes and balance transactions.
    let charge_times = times(&mut rng, n, (t0, t1, p.recent_share), 0.1);
    let failed: Vec<bool> = (0..n).map(|_| rng.chance(0.05)).collect();
    let mut candidates: Vec<usize> = (0..n)
        .filter(|i| !failed[*i] && charge_times[*i] < t1 - 2 * 3600)
        .collect();
    let mut fate = vec![0u8; n]; // 1 = refunded, 2 = disputed
    for (count, mark) in [((n / 10).max(2), 1u8), ((n / 50).max(2), 2u8)] {
        for _ in 0..count {
            if candidates.is_empty() {
                break;
            }
            let i = rng.index(candidates.len());
            fate[candidates.swap_remove(i)] = mark;
        }
    }
    // (balance transaction, its net, when it becomes available)
    let mut bts: Vec<(Obj, i64, i64)> = Vec::new();
    fn add_bt(bts: &mut Vec<(Obj, i64, i64)>, v: &Value) {
        let net = v["net"].as_i64().unwrap_or(0);
        let avail = v["available_on"].as_i64().unwrap_or(0);
        bts.push((Obj::new(Stream::BalanceTransactions, v), net, avail));
    }
    for i in 0..n {
        let mut t = charge_times[i];
        let ci = pick_before(&mut rng, &customer_times, t);
        let customer = &customers[ci];
        t = t.max(customer.created);
        let currency = if rng.chance(0.9) {
            currency
        } else {
            rng.pick(&["usd", "eur", "gbp", "cad", "aud"])
        };
        let amount = rng.range(5, 500) * 100 - rng.pick(&[0, 1, 5, 50]);
        let ch_id = g.id(&mut rng, Stream::Charges);
        let pi_id = g.id(&mut rng, Stream::PaymentIntents);
        let bt_id = (!failed[i]).then(|| g.id(&mut rng, Stream::BalanceTransactions));
        let mut charge = g.charge(
            &mut rng,
            &ChargeArgs {
                id: ch_id.clone(),
                created: t,
                customer,
                amount,
                currency,
                payment_intent: pi_id.clone(),
                balance_transaction: bt_id.clone(),
            },
        );
        let pi_open = g.payment_intent_open(&mut rng, &pi_id, t, &customer.id, amount, currency);
        ev.emit(&g, &mut rng, "payment_intent.created", t, &pi_open);
        if failed[i] {
            ev.emit(&g, &mut rng, "charge.failed", t, &charge);
            if t >= ev.from {
                let pi = g.payment_intent_after(&pi_open, &charge);
                ev.emit(&g, &mut rng, "payment_intent.payment_failed", t, &pi);
            }
        } else {
            ev.emit(&g, &mut rng, "charge.succeeded", t, &charge);
            if t >= ev.from {
                let pi = g.payment_intent_after(&pi_open, &charge);
                ev.emit(&g, &mut rng, "payment_intent.succeeded", t, &pi);
            }
        }
        let (settled, xr) = g.settle(amount, currency);
        if let Some(bt_id) = &bt_id {
            let fee = fee_of(settled);
            let bt = g.balance_transaction(
                bt_id,
                t,
                settled,
                fee,
                "charge",
                "charge",
                &ch_id,
                charge["description"].as_str().unwrap_or_default(),
                xr,
                now,
            );
            add_bt(&mut bts, &bt);
        }
        match fate[i] {
            1 => {
                let at = (t + rng.range(3600, 30 * DAY)).min(t1);
                let refund_amount = if rng.chance(0.6) { amount } else { amount / 2 };
                let re_id = g.id(&mut rng, Stream::Refunds);
                let rbt_id = g.id(&mut rng, Stream::BalanceTransactions);
                let refund = g.refund(&mut rng, &re_id, &charge, refund_amount, at, &rbt_id);
                let (rs, _) = g.settle(refund_amount, currency);
                let rbt = g.balance_transaction(
                    &rbt_id,
                    at,
                    -rs,
                    0,
                    "refund",
                    "refund",
                    &re_id,
                    "REFUND FOR CHARGE",
                    xr,
                    now,
                );
                add_bt(&mut bts, &rbt);
                let prev = json!({
                    "amount_refunded": 0, "refunded": false, "refunds": charge["refunds"].clone()
                });
                apply_refund(&mut charge, &refund);
                ev.emit_with(&g, &mut rng, "charge.refunded", at, &charge, prev);
                ev.emit(&g, &mut rng, "refund.created", at, &refund);
                out.push((Stream::Refunds, Obj::new(Stream::Refunds, &refund)));
            }
            2 => {
                let at = (t + rng.range(DAY, 60 * DAY)).min(t1);
                let status = rng.pick(&[
                    "warning_needs_response",
                    "warning_closed",
                    "needs_response",
                    "under_review",
                    "won",
                    "lost",
                ]);
                let dp_id = g.id(&mut rng, Stream::Disputes);
                let (ds, _) = g.settle(amount, currency);
                let mut dbts = Vec::new();
                if !status.starts_with("warning") {
                    let id = g.id(&mut rng, Stream::BalanceTransactions);
                    let bt = g.balance_transaction(
                        &id,
                        at,
                        -ds,
                        1500,
                        "adjustment",
                        "dispute",
                        &dp_id,
                        &format!("Chargeback withdrawal for {ch_id}"),
                        xr,
                        now,
                    );
                    add_bt(&mut bts, &bt);
                    dbts.push(bt);
                }
                if status == "won" {
                    let won_at = (at + rng.range(DAY, 20 * DAY)).min(t1);
                    let id = g.id(&mut rng, Stream::BalanceTransactions);
                    let bt = g.balance_transaction(
                        &id,
                        won_at,
                        ds,
                        -1500,
                        "adjustment",
                        "dispute_reversal",
                        &dp_id,
                        &format!("Chargeback reversal for {ch_id}"),
                        xr,
                        now,
                    );
                    add_bt(&mut bts, &bt);
                    dbts.push(bt);
                }
                let dispute = g.dispute(&mut rng, &dp_id, &charge, at, status, dbts, now);
                charge["disputed"] = json!(true);
                if at >= ev.from {
                    let mut first = dispute.clone();
                    let initial = if status.starts_with("warning") {
                        "warning_needs_response"
                    } else {
                        "needs_response"
                    };
                    set_dispute_status(&mut first, initial, at);
                    if let Some(list) = first["balance_transactions"].as_array_mut() {
                        list.truncate(1);
                    }
                    ev.emit(&g, &mut rng, "charge.dispute.created", at, &first);
                }
                out.push((Stream::Disputes, Obj::new(Stream::Disputes, &dispute)));
            }
            _ => {}
        }
        let pi = g.payment_intent_after(&pi_open, &charge);
        out.push((Stream::Charges, Obj::new(Stream::Charges, &charge)));
        out.push((
            Stream::PaymentIntents,
            Obj::new(Stream::PaymentIntents, &pi),
        ));
    }

    // Payment intents still waiting for a payment method.
    for t in times(
        &mut rng,
        n / 50 + 2,
        ((t1 - 90 * DAY).max(t0), t1, 0.0),
        0.0,
    ) {
        let ci = pick_before(&mut rng, &customer_times, t);
        let customer = &customers[ci];
        let t = t.max(customer.created);
        let id = g.id(&mut rng, Stream::PaymentIntents);
        let amount = rng.range(5, 300) * 100;
        let pi = g.payment_intent_open(&mut rng, &id, t, &customer.id, amount, currency);
        ev.emit(&g, &mut rng, "payment_intent.created", t, &pi);
        out.push((
            Stream::PaymentIntents,
            Obj::new(Stream::PaymentIntents, &pi),
        ));
    }

    // Subscriptions, each with its first invoice, then one-off invoices.
    let recurring: Vec<&Value> = prices.iter().filter(|p| p["type"] == "recurring").collect();
    let one_time: Vec<&Value> = prices.iter().filter(|p| p["type"] == "one_time").collect();
    let recurring_times: Vec<i64> = recurring
        .iter()
        .map(|p| p["created"].as_i64().unwrap_or(0))
        .collect();
    let one_time_times: Vec<i64> = one_time
        .iter()
        .map(|p| p["created"].as_i64().unwrap_or(0))
        .collect();
    let mut invoice_numbers: HashMap<String, u64> = HashMap::new();
    let n_subs = (n / 10).max(2);
    for t in times(&mut rng, n_subs, (t0 + DAY, t1, p.recent_share), 0.0) {
        let ci = pick_before(&mut rng, &customer_times, t);
        let customer = &customers[ci];
        let Some(price) = recurring.get(pick_before(&mut rng, &recurring_times, t)) else {
            break;
        };
        let t = t
            .max(customer.created)
            .max(price["created"].as_i64().unwrap_or(0));
        let mut status = rng.pick(&[
            "active", "active", "active", "active", "past_due", "canceled", "trialing",
        ]);
        if status == "trialing" && t < now - 14 * DAY {
            status = "active";
        }
        let sub_id = g.id(&mut rng, Stream::Subscriptions);
        let in_id = g.id(&mut rng, Stream::Invoices);
        let sub = g.subscription(
            &mut rng,
            &sub_id,
            t,
            &customer.id,
            price,
            status,
            &in_id,
            now,
        );
        let quantity = sub
            .pointer("/items/data/0/quantity")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let number = invoice_numbers.entry(customer.id.clone()).or_insert(0);
        *number += 1;
        let inv_status = if status == "past_due" { "open" } else { "paid" };
        let item_id = sub
            .pointer("/items/data/0/id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let inv = g.invoice(
            &mut rng,
            &in_id,
            t,
            customer,
            *number,
            Some((&sub_id, item_id)),
            price,
            quantity,
            inv_status,
        );
        ev.emit(&g, &mut rng, "customer.subscription.created", t, &sub);
        ev.emit(&g, &mut rng, "invoice.created", t, &inv);
        data.pinned.insert(customer.id.clone());
        data.pinned
            .insert(price["id"].as_str().unwrap_or_default().to_string());
        out.push((Stream::Subscriptions, Obj::new(Stream::Subscriptions, &sub)));
        out.push((Stream::Invoices, Obj::new(Stream::Invoices, &inv)));
    }
    let n_invoices = (n / 5).max(3).saturating_sub(n_subs).max(1);
    for t in times(&mut rng, n_invoices, (t0, t1, p.recent_share), 0.0) {
        let ci = pick_before(&mut rng, &customer_times, t);
        let customer = &customers[ci];
        let Some(price) = one_time.get(pick_before(&mut rng, &one_time_times, t)) else {
            break;
        };
        let t = t
            .max(customer.created)
            .max(price["created"].as_i64().unwrap_or(0));
        let status = rng.pick(&[
            "paid",
            "paid",
            "paid",
            "paid",
            "open",
            "open",
            "draft",
            "void",
            "uncollectible",
        ]);
        let number = invoice_numbers.entry(customer.id.clone()).or_insert(0);
        *number += 1;
        let id = g.id(&mut rng, Stream::Invoices);
        let quantity = rng.range(1, 3);
        let inv = g.invoice(
            &mut rng, &id, t, customer, *number, None, price, quantity, status,
        );
        ev.emit(&g, &mut rng, "invoice.created", t, &inv);
        data.pinned.insert(customer.id.clone());
        data.pinned
            .insert(price["id"].as_str().unwrap_or_default().to_string());
        out.push((Stream::Invoices, Obj::new(Stream::Invoices, &inv)));
    }

    // Payouts: each pays out what became available since the previous one.
    let n_payouts = (n / 100).max(3);
    let destination = g.long_id(&mut rng, "ba");
    bts.sort_by_key(|(_, _, avail)| *avail);
    let span = (t1 - t0).max(1);
    let mut next_bt = 0;
    for k in 0..n_payouts {
        let at = t0 + span * (k as i64 + 1) / n_payouts as i64 - rng.range(0, DAY / 2);
        let at = at.clamp(t0, t1);
        let po_id = g.id(&mut rng, Stream::Payouts);
        let bt_id = g.id(&mut rng, Stream::BalanceTransactions);
        let mut sum = 0;
        while next_bt < bts.len() && bts[next_bt].2 <= at {
            if bts[next_bt].0.created <= at {
                sum += bts[next_bt].1;
                bts[next_bt].0.fields.push(("payout", po_id.clone()));
            }
            next_bt += 1;
        }
        let amount = sum.max(100);
        let payout = g.payout(&po_id, at, amount, &bt_id, &destination, now);
        let bt = g.balance_transaction(
            &bt_id,
            at,
            -amount,
            0,
            "payout",
            "payout",
            &po_id,
            "STRIPE PAYOUT",
            None,
            now,
        );
        let mut obj = Obj::new(Stream::BalanceTransactions, &bt);
        obj.fields.push(("payout", po_id.clone()));
        bts.push((obj, 0, i64::MAX));
        ev.emit(&g, &mut rng, "payout.created", at, &payout);
        if payout["status"] == "paid" {
            let arrival = payout["arrival_date"].as_i64().unwrap_or(at);
            if arrival >= ev.from && arrival < now {
                ev.keep(&g.event(&mut rng, "payout.paid", arrival, &payout, None, true));
            }
        }
        out.push((Stream::Payouts, Obj::new(Stream::Payouts, &payout)));
    }
    for (obj, _, _) in bts {
        out.push((Stream::BalanceTransactions, obj));
    }

    // Store everything in created order (stable for ties).
    out.sort_by_key(|(_, o)| o.created);
    for (stream, obj) in out {
        data.col_mut(stream).put(obj);
    }
    ev.list.sort_by_key(|e| e.created);
    for e in ev.list {
        data.col_mut(Stream::Events).put(e);
    }
    data
}

/// Adds a refund to a charge's amounts and embedded refunds list.
pub(crate) fn apply_refund(charge: &mut Value, refund: &Value) {
    let amount = charge["amount"].as_i64().unwrap_or(0);
    let refunded =
        charge["amount_refunded"].as_i64().unwrap_or(0) + refund["amount"].as_i64().unwrap_or(0);
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded >= amount);
    if let Some(list) = charge["refunds"]["data"].as_array_mut() {
        list.insert(0, refund.clone());
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::collections::HashSet;

    fn params(size: usize) -> BuildParams {
        BuildParams {
            seed: 7,
            index: 0,
            account: "acct_1EmuTESTACCOUNT0".into(),
            connected: false,
            livemode: false,
            size,
            history_days: 730,
            recent_share: 0.0,
            start: 1_700_000_000,
        }
    }

    #[test]
    fn fixtures_parse() {
        let fx = Fixtures::load();
        assert_eq!(fx.get("charge")["object"], "charge");
        assert_eq!(fx.get("customer")["object"], "customer");
    }

    #[test]
    fn build_is_deterministic_and_consistent() {
        let fx = Fixtures::load();
        let a = build(&fx, &params(50));
        let b = build(&fx, &params(50));
        for s in Stream::ALL {
            let ia: Vec<_> = a.col(s).iter_desc().map(|o| o.json.clone()).collect();
            let ib: Vec<_> = b.col(s).iter_desc().map(|o| o.json.clone()).collect();
            assert_eq!(ia, ib, "{s:?}");
            assert!(a.col(s).len() > 0, "{s:?} empty");
        }
        assert_eq!(a.col(Stream::Charges).len(), 50);
        for ch in a.col(Stream::Charges).iter_asc() {
            let v = ch.value();
            assert!(a.find(v["customer"].as_str().unwrap()).is_some());
            assert!(a.find(v["payment_intent"].as_str().unwrap()).is_some());
            if let Some(bt) = v["balance_transaction"].as_str() {
                assert!(a.find(bt).is_some());
            }
            for r in v["refunds"]["data"].as_array().unwrap() {
                assert!(a.find(r["id"].as_str().unwrap()).is_some());
            }
        }
        for re in a.col(Stream::Refunds).iter_asc() {
            let v = re.value();
            let ch = a.find(v["charge"].as_str().unwrap()).unwrap().value();
            assert!(
                ch["refunds"]["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["id"] == v["id"])
            );
            assert!(a.find(v["balance_transaction"].as_str().unwrap()).is_some());
        }
        for p in a.col(Stream::Prices).iter_asc() {
            assert!(a.find(p.value()["product"].as_str().unwrap()).is_some());
        }
        for s in a.col(Stream::Subscriptions).iter_asc() {
            let v = s.value();
            assert!(a.find(v["customer"].as_str().unwrap()).is_some());
            assert!(a.find(v["latest_invoice"].as_str().unwrap()).is_some());
            for it in v["items"]["data"].as_array().unwrap() {
                assert!(a.find(it["price"]["id"].as_str().unwrap()).is_some());
            }
        }
        for d in a.col(Stream::Disputes).iter_asc() {
            let v = d.value();
            assert!(a.find(v["charge"].as_str().unwrap()).is_some());
            assert!(a.find(v["payment_intent"].as_str().unwrap()).is_some());
        }
        let ids: HashSet<String> = Stream::ALL
            .iter()
            .flat_map(|s| {
                a.col(*s)
                    .iter_asc()
                    .map(|o| o.id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let total: usize = Stream::ALL.iter().map(|s| a.col(*s).len()).sum();
        assert_eq!(ids.len(), total, "ids are unique");
    }
}
