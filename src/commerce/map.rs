//! The mapping rules: one function per Stripe object, each turning one raw record into the
//! commerce records it makes, and [`RULES`], the table that says which raw stream feeds
//! which commerce stream through which function. Pure functions of one record (company
//! info: of the account and its balance), so a record maps the same way whether it came
//! from a list page or an event.
//!
//! Every commerce record carries, from its source record: `updated` and `is_deleted` (when
//! the source has them) and `stripe_account` (with connected accounts).

use serde_json::{Map, Value, json};

use super::amount::{currency_code, major, major_from_decimal_text};

/// One mapping rule: records of `source` become records of `target` through `map`.
pub struct Rule {
    pub source: &'static str,
    pub target: &'static str,
    pub map: fn(&Value) -> Vec<Value>,
}

/// Every record-by-record rule. Company info joins two sources and is
/// [`company_info`], driven by the sink (see `commerce::derive`).
pub const RULES: &[Rule] = &[
    Rule {
        source: "charges",
        target: "commerce_payments",
        map: payments,
    },
    Rule {
        source: "balance_transactions",
        target: "commerce_transactions",
        map: transactions,
    },
    Rule {
        source: "disputes",
        target: "commerce_disputes",
        map: dispute,
    },
    Rule {
        source: "customers",
        target: "commerce_customers",
        map: customer,
    },
    Rule {
        source: "products",
        target: "commerce_products",
        map: product,
    },
    Rule {
        source: "prices",
        target: "commerce_products",
        map: variant,
    },
];

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The id of an expandable reference (a string, or an expanded object's `id`).
fn id_of(v: &Value) -> Value {
    match v {
        Value::String(s) => json!(s),
        Value::Object(o) => o.get("id").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn amount(v: &Value, key: &str, currency: &str) -> Value {
    v.get(key)
        .and_then(Value::as_i64)
        .map_or(Value::Null, |minor| json!(major(minor, currency)))
}

/// Adds `updated`, `is_deleted` and `stripe_account` of the source record.
fn carry(source: &Value, mut out: Map<String, Value>) -> Value {
    for key in ["updated", "is_deleted", "stripe_account"] {
        if let Some(value) = source.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(out)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A charge's payment status: Pending, Authorized (succeeded, not captured), Paid,
/// Failed, Cancelled (an authorization released without capture) or Unknown.
pub fn charge_status(charge: &Value) -> &'static str {
    let captured = charge.get("captured").and_then(Value::as_bool);
    let refunded = charge.get("refunded").and_then(Value::as_bool) == Some(true);
    match (str_of(charge, "status"), captured) {
        (Some("succeeded"), Some(false)) if refunded => "Cancelled",
        (Some("succeeded"), Some(false)) => "Authorized",
        (Some("succeeded"), _) => "Paid",
        (Some("pending"), _) => "Pending",
        (Some("failed"), _) => "Failed",
        _ => "Unknown",
    }
}

/// A refund's payment status.
pub fn refund_status(refund: &Value) -> &'static str {
    match str_of(refund, "status") {
        Some("succeeded") => "Paid",
        Some("pending" | "requires_action") => "Pending",
        Some("failed") => "Failed",
        Some("canceled") => "Cancelled",
        _ => "Unknown",
    }
}

/// Payments of a charge: the charge itself (its `amount`, positive) and one payment per
/// refund embedded in it (`refunds.data`, negative amounts).
pub fn payments(charge: &Value) -> Vec<Value> {
    let currency = str_of(charge, "currency").unwrap_or_default();
    let charge_id = charge.get("id").cloned().unwrap_or(Value::Null);
    let method = id_of(charge.get("payment_method").unwrap_or(&Value::Null));
    let mut out = vec![carry(
        charge,
        object(json!({
            "id": charge_id,
            "source_type": "charge",
            "charge_id": charge_id,
            "amount": amount(charge, "amount", currency),
            "currency": currency_code(Some(currency)),
            "status": charge_status(charge),
            "payment_method_ref": method,
            "payment_provider": "Stripe",
            "customer_id": id_of(charge.get("customer").unwrap_or(&Value::Null)),
            "description": charge.get("description").cloned().unwrap_or(Value::Null),
            "due_date": null,
            "created": charge.get("created").cloned().unwrap_or(Value::Null),
        })),
    )];
    let refunds = charge
        .pointer("/refunds/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for refund in refunds {
        let currency = str_of(refund, "currency").unwrap_or(currency);
        let negative = refund
            .get("amount")
            .and_then(Value::as_i64)
            .map_or(Value::Null, |a| json!(major(-a, currency)));
        let mut record = object(json!({
            "id": refund.get("id").cloned().unwrap_or(Value::Null),
            "source_type": "refund",
            "charge_id": charge_id,
            "amount": negative,
            "currency": currency_code(Some(currency)),
            "status": refund_status(refund),
            "payment_method_ref": method,
            "payment_provider": "Stripe",
            "customer_id": id_of(charge.get("customer").unwrap_or(&Value::Null)),
            "description": refund.get("reason").cloned().unwrap_or(Value::Null),
            "due_date": null,
            "created": refund.get("created").cloned().unwrap_or(Value::Null),
        }));
        // A refund changes with its charge: it carries the charge's `updated`, but never
        // one before the refund existed (a charge read from a list has its `created`).
        let mut refund_payment = carry(charge, std::mem::take(&mut record));
        if let (Some(updated), Some(created)) = (
            refund_payment.get("updated").and_then(Value::as_i64),
            refund.get("created").and_then(Value::as_i64),
        ) && created > updated
        {
            refund_payment["updated"] = json!(created);
        }
        out.push(refund_payment);
    }
    out
}

/// Codat's transaction type for a balance transaction's Stripe `type`.
pub fn transaction_type(stripe_type: &str) -> &'static str {
    match stripe_type {
        "charge" | "payment" => "Payment",
        "refund"
        | "payment_refund"
        | "refund_failure"
        | "payment_failure_refund"
        | "payment_reversal" => "Refund",
        "payout" => "Payout",
        "payout_cancel" | "payout_failure" => "FailedPayout",
        "transfer"
        | "transfer_cancel"
        | "transfer_failure"
        | "transfer_refund"
        | "connect_collection_transfer" => "Transfer",
        "stripe_fee" | "application_fee" | "tax_fee" | "stripe_fx_fee" => "PaymentFee",
        "application_fee_refund" => "PaymentFeeRefund",
        _ => "Unknown",
    }
}

/// What kind of object a balance transaction's `source` is, from its id prefix.
fn source_type(id: &str) -> &'static str {
    match id.split('_').next().unwrap_or_default() {
        "ch" | "py" => "Payment",
        "re" | "pyr" => "Refund",
        "po" => "Payout",
        "dp" | "du" => "Dispute",
        "tr" => "Transfer",
        "fee" | "fr" => "Fee",
        _ => "Unknown",
    }
}

/// A balance transaction's transactions: itself (its gross `amount`) and, when it has a
/// fee, a fee row `txn_…:fee` of `-fee` (type PaymentFee; PaymentFeeRefund for a fee given
/// back, i.e. a negative fee). Together they sum to the balance transaction's `net`.
pub fn transactions(bt: &Value) -> Vec<Value> {
    let currency = str_of(bt, "currency").unwrap_or_default();
    let id = str_of(bt, "id").unwrap_or_default();
    let stripe_type = str_of(bt, "type").unwrap_or_default();
    let source = id_of(bt.get("source").unwrap_or(&Value::Null));
    let source_ref = match source.as_str() {
        Some(s) => json!({"id": s, "type": source_type(s)}),
        None => Value::Null,
    };
    let mut out = vec![carry(
        bt,
        object(json!({
            "id": id,
            "balance_transaction_id": id,
            "total_amount": amount(bt, "amount", currency),
            "currency": currency_code(Some(currency)),
            "type": transaction_type(stripe_type),
            "sub_type": stripe_type,
            "transaction_source_ref": source_ref,
            "status": bt.get("status").cloned().unwrap_or(Value::Null),
            "description": bt.get("description").cloned().unwrap_or(Value::Null),
            "created": bt.get("created").cloned().unwrap_or(Value::Null),
        })),
    )];
    let fee = bt.get("fee").and_then(Value::as_i64).unwrap_or(0);
    if fee != 0 {
        out.push(carry(
            bt,
            object(json!({
                "id": format!("{id}:fee"),
                "balance_transaction_id": id,
                "total_amount": major(-fee, currency),
                "currency": currency_code(Some(currency)),
                "type": if fee > 0 { "PaymentFee" } else { "PaymentFeeRefund" },
                "sub_type": fee_sub_type(bt),
                "transaction_source_ref": source_ref,
                "status": bt.get("status").cloned().unwrap_or(Value::Null),
                "description": fee_description(bt),
                "created": bt.get("created").cloned().unwrap_or(Value::Null),
            })),
        ));
    }
    out
}

/// `stripe_fee`, or the fee types of `fee_details` when there are others.
fn fee_sub_type(bt: &Value) -> String {
    let mut types: Vec<&str> = bt
        .get("fee_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| str_of(d, "type"))
        .collect();
    types.dedup();
    if types.is_empty() {
        "stripe_fee".to_owned()
    } else {
        types.join(",")
    }
}

fn fee_description(bt: &Value) -> Value {
    bt.pointer("/fee_details/0/description")
        .cloned()
        .unwrap_or_else(|| json!("Stripe fee"))
}

/// Codat's dispute status for Stripe's.
pub fn dispute_status(stripe: &str) -> &'static str {
    match stripe {
        "warning_needs_response" => "InquiryEvidenceRequired",
        "warning_under_review" => "InquiryProcessing",
        "warning_closed" => "InquiryClosed",
        "needs_response" => "EvidenceRequired",
        "under_review" => "Processing",
        "won" => "Won",
        "lost" => "Lost",
        "charge_refunded" => "ChargeRefunded",
        _ => "Unknown",
    }
}

/// A dispute, with its balance transactions as the disputed transactions.
pub fn dispute(d: &Value) -> Vec<Value> {
    let currency = str_of(d, "currency").unwrap_or_default();
    let disputed: Vec<Value> = d
        .get("balance_transactions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|bt| json!({"id": id_of(bt), "type": "Payment"}))
        .collect();
    vec![carry(
        d,
        object(json!({
            "id": d.get("id").cloned().unwrap_or(Value::Null),
            "disputed_transactions": disputed,
            "total_amount": amount(d, "amount", currency),
            "currency": currency_code(Some(currency)),
            "status": dispute_status(str_of(d, "status").unwrap_or_default()),
            "reason": d.get("reason").cloned().unwrap_or(Value::Null),
            "due_date": d.pointer("/evidence_details/due_by").cloned().unwrap_or(Value::Null),
            "charge_id": id_of(d.get("charge").unwrap_or(&Value::Null)),
            "created": d.get("created").cloned().unwrap_or(Value::Null),
        })),
    )]
}

fn address(kind: &str, a: &Value) -> Option<Value> {
    if !a.is_object()
        || a.as_object()
            .is_some_and(|o| o.values().all(Value::is_null))
    {
        return None;
    }
    let field = |k: &str| a.get(k).cloned().unwrap_or(Value::Null);
    Some(json!({
        "type": kind,
        "line1": field("line1"),
        "line2": field("line2"),
        "city": field("city"),
        "region": field("state"),
        "country": field("country"),
        "postal_code": field("postal_code"),
    }))
}

/// A customer, with a Billing address (`address`) and a Delivery address
/// (`shipping.address`) when Stripe has them.
pub fn customer(c: &Value) -> Vec<Value> {
    let addresses: Vec<Value> = [
        ("Billing", c.get("address")),
        ("Delivery", c.pointer("/shipping/address")),
    ]
    .into_iter()
    .filter_map(|(kind, a)| a.and_then(|a| address(kind, a)))
    .collect();
    vec![carry(
        c,
        object(json!({
            "id": c.get("id").cloned().unwrap_or(Value::Null),
            "customer_name": c.get("name").cloned().unwrap_or(Value::Null),
            "email_address": c.get("email").cloned().unwrap_or(Value::Null),
            "phone": c.get("phone").cloned().unwrap_or(Value::Null),
            "default_currency": str_of(c, "currency").map_or(Value::Null, |cur| json!(currency_code(Some(cur)))),
            "addresses": addresses,
            "note": c.get("description").cloned().unwrap_or(Value::Null),
            "created": c.get("created").cloned().unwrap_or(Value::Null),
        })),
    )]
}

fn published(v: &Value) -> Value {
    match v.get("active").and_then(Value::as_bool) {
        Some(true) => json!("Published"),
        Some(false) => json!("Unpublished"),
        None => json!("Unknown"),
    }
}

/// A product row (`kind` `product`) of commerce_products.
pub fn product(p: &Value) -> Vec<Value> {
    let id = p.get("id").cloned().unwrap_or(Value::Null);
    vec![carry(
        p,
        object(json!({
            "id": id,
            "kind": "product",
            "product_id": id,
            "name": p.get("name").cloned().unwrap_or(Value::Null),
            "description": p.get("description").cloned().unwrap_or(Value::Null),
            "categorization": null,
            "is_gift_card": false,
            "status": published(p),
            "is_tax_enabled": p.get("tax_code").map(|t| !t.is_null()),
            "unit_of_measure": p.get("unit_label").cloned().unwrap_or(Value::Null),
            "shipping_required": p.get("shippable").cloned().unwrap_or(Value::Null),
            "sku": null,
            "barcode": null,
            "vat_percentage": null,
            "currency": null,
            "unit_price": null,
            "created": p.get("created").cloned().unwrap_or(Value::Null),
        })),
    )]
}

/// A variant row (`kind` `variant`): one per Stripe price, with its one currency and unit
/// price (`unit_amount`, or `unit_amount_decimal` when the price has fractions of the minor
/// unit; null for tiered prices).
pub fn variant(price: &Value) -> Vec<Value> {
    let currency = str_of(price, "currency").unwrap_or_default();
    let unit_price = match price.get("unit_amount").and_then(Value::as_i64) {
        Some(minor) => json!(major(minor, currency)),
        None => str_of(price, "unit_amount_decimal")
            .and_then(|text| major_from_decimal_text(text, currency))
            .map_or(Value::Null, |t| json!(t)),
    };
    let tax = match str_of(price, "tax_behavior") {
        Some("inclusive" | "exclusive") => json!(true),
        Some("unspecified") => json!(false),
        _ => Value::Null,
    };
    vec![carry(
        price,
        object(json!({
            "id": price.get("id").cloned().unwrap_or(Value::Null),
            "kind": "variant",
            "product_id": id_of(price.get("product").unwrap_or(&Value::Null)),
            "name": price.get("nickname").cloned().unwrap_or(Value::Null),
            "description": null,
            "categorization": null,
            "is_gift_card": false,
            "status": published(price),
            "is_tax_enabled": tax,
            "unit_of_measure": price.pointer("/recurring/interval").cloned().unwrap_or(Value::Null),
            "shipping_required": null,
            "sku": price.get("lookup_key").cloned().unwrap_or(Value::Null),
            "barcode": null,
            "vat_percentage": null,
            "currency": currency_code(Some(currency)),
            "unit_price": unit_price,
            "created": price.get("created").cloned().unwrap_or(Value::Null),
        })),
    )]
}

/// Company info of an account, with its balance per currency when the balance was read.
pub fn company_info(account: &Value, balance: Option<&Value>) -> Value {
    let mut addresses = Vec::new();
    for (kind, pointer) in [
        ("Billing", "/company/address"),
        ("Delivery", "/business_profile/support_address"),
    ] {
        if let Some(a) = account.pointer(pointer).and_then(|a| address(kind, a)) {
            addresses.push(a);
        }
    }
    let mut phones = Vec::new();
    for (kind, pointer) in [
        ("Primary", "/company/phone"),
        ("Landline", "/business_profile/support_phone"),
    ] {
        if let Some(number) = account.pointer(pointer).and_then(Value::as_str) {
            phones.push(json!({"number": number, "type": kind}));
        }
    }
    let mut links = Vec::new();
    if let Some(url) = account
        .pointer("/business_profile/url")
        .and_then(Value::as_str)
    {
        links.push(json!({"type": "Website", "url": url}));
    }
    let name = account
        .pointer("/business_profile/name")
        .or_else(|| account.pointer("/settings/dashboard/display_name"))
        .cloned()
        .unwrap_or(Value::Null);
    let balances = balance.map_or(Value::Null, |b| json!(account_balances(b)));
    carry(
        account,
        object(json!({
            "id": account.get("id").cloned().unwrap_or(Value::Null),
            "company_name": name,
            "company_legal_name": account.pointer("/company/name").cloned().unwrap_or(Value::Null),
            "commerce_platform_ref": account.get("id").cloned().unwrap_or(Value::Null),
            "addresses": addresses,
            "phone_numbers": phones,
            "web_links": links,
            "registration_number": null,
            "base_currency": str_of(account, "default_currency").map_or(Value::Null, |c| json!(currency_code(Some(c)))),
            "country": account.get("country").cloned().unwrap_or(Value::Null),
            "account_balances": balances,
            "created": account.get("created").cloned().unwrap_or(Value::Null),
        })),
    )
}

/// `available`, `pending` and `reserved` (`connect_reserved`) per currency, sorted by
/// currency; a currency missing from one of the lists is `0` there.
fn account_balances(balance: &Value) -> Vec<Value> {
    let mut by_currency: std::collections::BTreeMap<String, [i64; 3]> = Default::default();
    for (slot, key) in ["available", "pending", "connect_reserved"]
        .iter()
        .enumerate()
    {
        for entry in balance
            .get(*key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(currency), Some(amount)) = (
                str_of(entry, "currency"),
                entry.get("amount").and_then(Value::as_i64),
            ) else {
                continue;
            };
            by_currency
                .entry(currency.to_ascii_lowercase())
                .or_default()[slot] += amount;
        }
    }
    by_currency
        .into_iter()
        .map(|(currency, [available, pending, reserved])| {
            json!({
                "currency": currency_code(Some(&currency)),
                "available": major(available, &currency),
                "pending": major(pending, &currency),
                "reserved": major(reserved, &currency),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_fixed_lists() {
        let charge = |status: &str, captured: bool, refunded: bool| json!({"status": status, "captured": captured, "refunded": refunded});
        assert_eq!(charge_status(&charge("succeeded", true, false)), "Paid");
        assert_eq!(charge_status(&charge("succeeded", true, true)), "Paid");
        assert_eq!(
            charge_status(&charge("succeeded", false, false)),
            "Authorized"
        );
        assert_eq!(
            charge_status(&charge("succeeded", false, true)),
            "Cancelled"
        );
        assert_eq!(charge_status(&charge("pending", false, false)), "Pending");
        assert_eq!(charge_status(&charge("failed", false, false)), "Failed");
        assert_eq!(charge_status(&json!({"status": "new"})), "Unknown");
        for (stripe, codat) in [
            ("warning_needs_response", "InquiryEvidenceRequired"),
            ("warning_under_review", "InquiryProcessing"),
            ("warning_closed", "InquiryClosed"),
            ("needs_response", "EvidenceRequired"),
            ("under_review", "Processing"),
            ("won", "Won"),
            ("lost", "Lost"),
            ("charge_refunded", "ChargeRefunded"),
            ("prevented", "Unknown"),
        ] {
            assert_eq!(dispute_status(stripe), codat);
        }
        assert_eq!(transaction_type("charge"), "Payment");
        assert_eq!(transaction_type("payout_failure"), "FailedPayout");
        assert_eq!(transaction_type("adjustment"), "Unknown");
    }

    #[test]
    fn transactions_with_their_fee_sum_to_net() {
        let bt = json!({"id": "txn_1", "amount": 1000, "fee": 59, "net": 941, "currency": "usd",
                        "type": "charge", "source": "ch_1", "created": 5, "status": "available"});
        let rows = transactions(&bt);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["total_amount"], "10.00");
        assert_eq!(rows[1]["id"], "txn_1:fee");
        assert_eq!(rows[1]["total_amount"], "-0.59");
        assert_eq!(rows[1]["type"], "PaymentFee");
        let refund = json!({"id": "txn_2", "amount": 1000, "fee": -1500, "currency": "usd", "type": "adjustment"});
        assert_eq!(transactions(&refund)[1]["type"], "PaymentFeeRefund");
        assert_eq!(transactions(&refund)[1]["total_amount"], "15.00");
        let no_fee =
            json!({"id": "txn_3", "amount": -500, "fee": 0, "currency": "jpy", "type": "payout"});
        assert_eq!(transactions(&no_fee).len(), 1);
        assert_eq!(transactions(&no_fee)[0]["total_amount"], "-500");
    }

    #[test]
    fn our_fields_are_carried_over() {
        let c = json!({"id": "cus_1", "created": 1, "updated": 9, "is_deleted": true,
                       "stripe_account": "acct_1", "currency": "eur",
                       "address": {"line1": "1 Main St", "city": "Paris", "country": "FR", "line2": null, "postal_code": "75002", "state": null},
                       "shipping": null});
        let out = &customer(&c)[0];
        assert_eq!(out["updated"], 9);
        assert_eq!(out["is_deleted"], true);
        assert_eq!(out["stripe_account"], "acct_1");
        assert_eq!(out["default_currency"], "EUR");
        assert_eq!(out["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(out["addresses"][0]["type"], "Billing");
        assert_eq!(out["addresses"][0]["region"], Value::Null);
    }
}
