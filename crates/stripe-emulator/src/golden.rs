//! Fixed objects for golden tests (emulator option `golden`): in the platform's test-mode
//! data, with readable ids and fixed amounts, 40 to 34 days before the clock start (so
//! outside the events window: they are what a full read sees, no event needed):
//!
//! | id | what |
//! |---|---|
//! | `cus_golden` | a customer with billing and delivery addresses |
//! | `ch_golden_jpy` | ¥5,000 (zero-decimal), settled as 33.50 USD (`txn_golden_jpy`, fee 1.27) |
//! | `ch_golden_bhd` | BHD 12.340 (three decimals), settled as 32.73 USD (`txn_golden_bhd`, fee 1.24) |
//! | `ch_golden_refunded` | 20.00 USD with a 5.00 USD refund `re_golden` (`txn_golden_refunded`, `txn_golden_refund`) |
//! | `ch_golden_disputed` | 42.00 USD, disputed by `dp_golden` (needs response, withdrawal `txn_golden_dispute` with a 15.00 fee) |
//! | `prod_golden` | a product with three prices: 19.99 USD, 17.99 EUR, ¥2,500 a month |
//! | `po_golden` | a 100.00 USD payout (`txn_golden_payout`) |
use serde_json::{Value, json};

use super::data::{ChargeArgs, CustomerRef, Gen, apply_refund, fee_of, set_dispute_status};
use super::rng::Rng;
use super::store::{ScopeData, Stream};

const DAY: i64 = 86_400;

/// When the golden objects begin: this long before the clock start.
pub(crate) const FIRST_SECS_BEFORE_START: i64 = 40 * DAY;

/// Adds the golden objects to a scope's data.
pub(crate) fn add(data: &mut ScopeData, g: &Gen<'_>, start: i64) {
    let t = start - FIRST_SECS_BEFORE_START;
    let mut rng = Rng::derive(0, &[0x601d]);
    let mut customer = g.customer(&mut rng, t);
    customer["id"] = json!("cus_golden");
    customer["name"] = json!("Golden Customer");
    customer["email"] = json!("golden@example.com");
    customer["phone"] = json!("+15555550100");
    customer["description"] = json!("Golden test customer");
    customer["address"] = json!({"city": "Paris", "country": "FR", "line1": "1 Rue de Rivoli",
        "line2": "Apt 2", "postal_code": "75001", "state": null});
    customer["shipping"] = json!({"address": {"city": "Lyon", "country": "FR",
        "line1": "5 Quai Perrache", "line2": null, "postal_code": "69002", "state": "ARA"},
        "name": "Golden Customer", "phone": null});
    data.put(Stream::Customers, &customer);
    let c = CustomerRef::of(&customer);

    let mut charge =
        |id: &str, at: i64, amount: i64, currency: &str, settled: i64, xr: Option<f64>| {
            let bt_id = format!("txn_{}", id.trim_start_matches("ch_"));
            let mut ch = g.charge(
                &mut rng,
                &ChargeArgs {
                    id: id.to_owned(),
                    created: at,
                    customer: &c,
                    amount,
                    currency,
                    payment_intent: format!("pi_{}", id.trim_start_matches("ch_")),
                    balance_transaction: Some(bt_id.clone()),
                },
            );
            ch["description"] = json!(format!("Golden {id}"));
            ch["payment_method"] = json!("pm_golden");
            let pi_id = format!("pi_{}", id.trim_start_matches("ch_"));
            let open = g.payment_intent_open(&mut rng, &pi_id, at, &c.id, amount, currency);
            data.put(Stream::PaymentIntents, &g.payment_intent_after(&open, &ch));
            let bt = g.balance_transaction(
                &bt_id,
                at,
                settled,
                fee_of(settled),
                "charge",
                "charge",
                id,
                &format!("Golden {id}"),
                xr,
                start,
            );
            data.put(Stream::BalanceTransactions, &bt);
            ch
        };
    let jpy = charge("ch_golden_jpy", t + 100, 5_000, "jpy", 3_350, Some(0.0067));
    let bhd = charge(
        "ch_golden_bhd",
        t + 200,
        12_340,
        "bhd",
        3_273,
        Some(2.652_4),
    );
    let mut refunded = charge("ch_golden_refunded", t + 300, 2_000, "usd", 2_000, None);
    let mut disputed = charge("ch_golden_disputed", t + 400, 4_200, "usd", 4_200, None);

    let refund_at = t + DAY;
    let mut refund = g.refund(
        &mut rng,
        "re_golden",
        &refunded,
        500,
        refund_at,
        "txn_golden_refund",
    );
    refund["reason"] = json!("requested_by_customer");
    let refund_bt = g.balance_transaction(
        "txn_golden_refund",
        refund_at,
        -500,
        0,
        "refund",
        "refund",
        "re_golden",
        "REFUND FOR CHARGE",
        None,
        start,
    );
    apply_refund(&mut refunded, &refund);
    data.put(Stream::Refunds, &refund);
    data.put(Stream::BalanceTransactions, &refund_bt);

    let dispute_at = t + 2 * DAY;
    let dispute_bt = g.balance_transaction(
        "txn_golden_dispute",
        dispute_at,
        -4_200,
        1_500,
        "adjustment",
        "dispute",
        "dp_golden",
        "Chargeback withdrawal for ch_golden_disputed",
        None,
        start,
    );
    let mut dispute = g.dispute(
        &mut rng,
        "dp_golden",
        &disputed,
        dispute_at,
        "needs_response",
        vec![dispute_bt.clone()],
        start,
    );
    dispute["reason"] = json!("fraudulent");
    set_dispute_status(&mut dispute, "needs_response", start);
    disputed["disputed"] = json!(true);
    data.put(Stream::BalanceTransactions, &dispute_bt);
    data.put(Stream::Disputes, &dispute);
    for ch in [&jpy, &bhd, &refunded, &disputed] {
        data.put(Stream::Charges, ch);
    }

    let product_at = t + 3 * DAY;
    let mut product = g.product(&mut rng, product_at);
    product["id"] = json!("prod_golden");
    product["name"] = json!("Golden T-shirt");
    product["description"] = json!("Three prices in three currencies");
    product["active"] = json!(true);
    product["shippable"] = json!(true);
    product["unit_label"] = json!("shirt");
    product["tax_code"] = Value::Null;
    data.put(Stream::Products, &product);
    let prices: [(&str, i64, &str, bool); 3] = [
        ("price_golden_usd", 1_999, "usd", false),
        ("price_golden_eur", 1_799, "eur", false),
        ("price_golden_jpy", 2_500, "jpy", true),
    ];
    for (i, (id, amount, currency, recurring)) in prices.into_iter().enumerate() {
        let mut price = g.price(&mut rng, "prod_golden", product_at + i as i64, recurring);
        price["id"] = json!(id);
        price["currency"] = json!(currency);
        price["unit_amount"] = json!(amount);
        price["unit_amount_decimal"] = json!(amount.to_string());
        price["active"] = json!(true);
        price["nickname"] = json!(format!("Golden {currency}"));
        if recurring {
            price["recurring"]["interval"] = json!("month");
        }
        price["lookup_key"] = Value::Null;
        price["tax_behavior"] = json!("exclusive");
        data.put(Stream::Prices, &price);
        // Never changed or deleted by advances: the golden expectations stay valid.
        data.pinned.insert(id.to_owned());
    }
    data.pinned.insert("cus_golden".to_owned());

    let payout_at = t + 6 * DAY;
    let payout = g.payout(
        "po_golden",
        payout_at,
        10_000,
        "txn_golden_payout",
        "ba_golden",
        start,
    );
    let payout_bt = g.balance_transaction(
        "txn_golden_payout",
        payout_at,
        -10_000,
        0,
        "payout",
        "payout",
        "po_golden",
        "STRIPE PAYOUT",
        None,
        start,
    );
    data.put(Stream::Payouts, &payout);
    data.put(Stream::BalanceTransactions, &payout_bt);
}
