//! The commerce streams: golden records for fixed emulator objects, totals that reconcile
//! with the raw streams for every account, incremental changes, no extra requests, and
//! exact decimals in Parquet summed by DuckDB.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use source_stripe::commerce::amount::{DECIMAL_SCALE, exponent, parse_scaled};
use source_stripe::emulator::{self, Advance, Emulator, Running};

use crate::util::{self, Files};

/// 2026-01-01T00:00:00Z: the emulator's clock start in these tests.
const NOW: i64 = 1_767_225_600;
const DAY: i64 = 86_400;
/// When the golden objects begin (40 days before the clock start).
const T: i64 = NOW - 40 * DAY;

const COMMERCE: [&str; 6] = [
    "commerce_company_info",
    "commerce_customers",
    "commerce_disputes",
    "commerce_payments",
    "commerce_products",
    "commerce_transactions",
];

async fn start(golden: bool, connected_accounts: usize) -> Running {
    Emulator::start(emulator::Config {
        size: 40,
        now: Some(NOW),
        frozen_clock: true,
        golden,
        connected_accounts,
        ..emulator::Config::default()
    })
    .await
    .expect("the emulator starts")
}

fn catalog(files: &Files, streams: &[&str], mode: &str) -> std::path::PathBuf {
    let list: Vec<(&str, &str)> = streams
        .iter()
        .map(|s| {
            let full = matches!(*s, "commerce_company_info" | "account");
            (*s, if full { "full_refresh" } else { mode })
        })
        .collect();
    files.catalog(&list)
}

fn by_id<'a>(records: &[&'a Value]) -> BTreeMap<String, &'a Value> {
    records
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), *r))
        .collect()
}

/// Scaled to `10^DECIMAL_SCALE`, from decimal text.
fn scaled(text: &Value) -> i128 {
    parse_scaled(text.as_str().unwrap(), DECIMAL_SCALE)
        .unwrap_or_else(|| panic!("{text} is exact decimal text"))
}

/// A minor-unit integer scaled to `10^DECIMAL_SCALE` of the major unit.
fn minor_scaled(minor: i64, currency: &str) -> i128 {
    i128::from(minor) * 10i128.pow(DECIMAL_SCALE - exponent(currency))
}

/// For the emulator's fixed objects, every commerce record equals the one written here
/// by hand, field by field: a JPY and a BHD charge, a refunded and a disputed charge, a
/// product with three prices, a payout. The commerce streams are selected alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_records_equal_hand_written_expectations() {
    let running = start(true, 0).await;
    let files = Files::new();
    let config = files.config(&running, emulator::DEFAULT_TEST_KEY, json!({}));
    let run = util::read(&config, &catalog(&files, &COMMERCE, "incremental"), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.records("charges").is_empty(),
        "raw sources are not emitted"
    );

    let payments = run.records("commerce_payments");
    let payments = by_id(&payments);
    let charge = |id: &str, amount: &str, currency: &str, created: i64| {
        json!({
            "id": id, "source_type": "charge", "charge_id": id, "amount": amount,
            "currency": currency, "status": "Paid", "payment_method_ref": "pm_golden",
            "payment_provider": "Stripe", "customer_id": "cus_golden",
            "description": format!("Golden {id}"), "due_date": null,
            "created": created, "updated": created,
        })
    };
    let expected = [
        charge("ch_golden_jpy", "5000", "JPY", T + 100),
        charge("ch_golden_bhd", "12.340", "BHD", T + 200),
        charge("ch_golden_refunded", "20.00", "USD", T + 300),
        charge("ch_golden_disputed", "42.00", "USD", T + 400),
        json!({
            "id": "re_golden", "source_type": "refund", "charge_id": "ch_golden_refunded",
            "amount": "-5.00", "currency": "USD", "status": "Paid",
            "payment_method_ref": "pm_golden", "payment_provider": "Stripe",
            "customer_id": "cus_golden", "description": "requested_by_customer",
            "due_date": null, "created": T + DAY, "updated": T + DAY,
        }),
    ];
    for want in expected {
        let id = want["id"].as_str().unwrap();
        assert_eq!(payments[id], &want, "commerce_payments {id}");
    }

    let transactions = run.records("commerce_transactions");
    let transactions = by_id(&transactions);
    let txn = |id: &str,
               amount: &str,
               kind: &str,
               sub: &str,
               source: (&str, &str),
               description: &str,
               created: i64| {
        json!({
            "id": id, "balance_transaction_id": id.trim_end_matches(":fee"),
            "total_amount": amount, "currency": "USD", "type": kind, "sub_type": sub,
            "transaction_source_ref": {"id": source.0, "type": source.1},
            "status": "available", "description": description, "created": created,
        })
    };
    let fees = "Stripe processing fees";
    let expected = [
        txn(
            "txn_golden_jpy",
            "33.50",
            "Payment",
            "charge",
            ("ch_golden_jpy", "Payment"),
            "Golden ch_golden_jpy",
            T + 100,
        ),
        txn(
            "txn_golden_jpy:fee",
            "-1.27",
            "PaymentFee",
            "stripe_fee",
            ("ch_golden_jpy", "Payment"),
            fees,
            T + 100,
        ),
        txn(
            "txn_golden_bhd",
            "32.73",
            "Payment",
            "charge",
            ("ch_golden_bhd", "Payment"),
            "Golden ch_golden_bhd",
            T + 200,
        ),
        txn(
            "txn_golden_bhd:fee",
            "-1.24",
            "PaymentFee",
            "stripe_fee",
            ("ch_golden_bhd", "Payment"),
            fees,
            T + 200,
        ),
        txn(
            "txn_golden_refund",
            "-5.00",
            "Refund",
            "refund",
            ("re_golden", "Refund"),
            "REFUND FOR CHARGE",
            T + DAY,
        ),
        txn(
            "txn_golden_dispute",
            "-42.00",
            "Unknown",
            "adjustment",
            ("dp_golden", "Dispute"),
            "Chargeback withdrawal for ch_golden_disputed",
            T + 2 * DAY,
        ),
        txn(
            "txn_golden_dispute:fee",
            "-15.00",
            "PaymentFee",
            "stripe_fee",
            ("dp_golden", "Dispute"),
            fees,
            T + 2 * DAY,
        ),
        txn(
            "txn_golden_payout",
            "-100.00",
            "Payout",
            "payout",
            ("po_golden", "Payout"),
            "STRIPE PAYOUT",
            T + 6 * DAY,
        ),
    ];
    for want in expected {
        let id = want["id"].as_str().unwrap();
        assert_eq!(transactions[id], &want, "commerce_transactions {id}");
    }
    assert!(
        !transactions.contains_key("txn_golden_payout:fee"),
        "no fee, no fee row"
    );
    assert!(!transactions.contains_key("txn_golden_refund:fee"));

    let disputes = run.records("commerce_disputes");
    assert_eq!(
        by_id(&disputes)["dp_golden"],
        &json!({
            "id": "dp_golden",
            "disputed_transactions": [{"id": "txn_golden_dispute", "type": "Payment"}],
            "total_amount": "42.00", "currency": "USD", "status": "EvidenceRequired",
            "reason": "fraudulent", "due_date": T + 10 * DAY - 1,
            "charge_id": "ch_golden_disputed", "created": T + 2 * DAY, "updated": T + 2 * DAY,
        })
    );

    let customers = run.records("commerce_customers");
    assert_eq!(
        by_id(&customers)["cus_golden"],
        &json!({
            "id": "cus_golden", "customer_name": "Golden Customer",
            "email_address": "golden@example.com", "phone": "+15555550100",
            "default_currency": "USD",
            "addresses": [
                {"type": "Billing", "line1": "1 Rue de Rivoli", "line2": "Apt 2", "city": "Paris",
                 "region": null, "country": "FR", "postal_code": "75001"},
                {"type": "Delivery", "line1": "5 Quai Perrache", "line2": null, "city": "Lyon",
                 "region": "ARA", "country": "FR", "postal_code": "69002"},
            ],
            "note": "Golden test customer", "created": T, "updated": T,
        })
    );

    let products = run.records("commerce_products");
    let products = by_id(&products);
    let at = T + 3 * DAY;
    assert_eq!(
        products["prod_golden"],
        &json!({
            "id": "prod_golden", "kind": "product", "product_id": "prod_golden",
            "name": "Golden T-shirt", "description": "Three prices in three currencies",
            "categorization": null, "is_gift_card": false, "status": "Published",
            "is_tax_enabled": false, "unit_of_measure": "shirt", "shipping_required": true,
            "sku": null, "barcode": null, "vat_percentage": null, "currency": null,
            "unit_price": null, "created": at, "updated": at,
        })
    );
    let variant = |id: &str, currency: &str, price: &str, unit: Value, created: i64| {
        json!({
            "id": id, "kind": "variant", "product_id": "prod_golden",
            "name": format!("Golden {}", currency.to_lowercase()), "description": null,
            "categorization": null, "is_gift_card": false, "status": "Published",
            "is_tax_enabled": true, "unit_of_measure": unit, "shipping_required": null,
            "sku": null, "barcode": null, "vat_percentage": null, "currency": currency,
            "unit_price": price, "created": created, "updated": created,
        })
    };
    for want in [
        variant("price_golden_usd", "USD", "19.99", Value::Null, at),
        variant("price_golden_eur", "EUR", "17.99", Value::Null, at + 1),
        variant("price_golden_jpy", "JPY", "2500", json!("month"), at + 2),
    ] {
        let id = want["id"].as_str().unwrap();
        assert_eq!(products[id], &want, "commerce_products {id}");
    }
    let variants: Vec<&str> = products
        .values()
        .filter(|p| p["product_id"] == "prod_golden" && p["kind"] == "variant")
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(variants.len(), 3, "one variant per price: {variants:?}");

    let info = run.records("commerce_company_info");
    assert_eq!(info.len(), 1, "one account, one row");
    let platform = running.emulator().platform_account_id();
    assert_eq!(info[0]["id"], platform.as_str());
    assert_eq!(info[0]["commerce_platform_ref"], platform.as_str());
    assert_eq!(info[0]["base_currency"], "USD");

    for stream in COMMERCE {
        let statuses = run.statuses(stream);
        assert_eq!(
            statuses.first().map(String::as_str),
            Some("STARTED"),
            "{stream}"
        );
        assert_eq!(
            statuses.last().map(String::as_str),
            Some("COMPLETE"),
            "{stream}"
        );
        // Every record fits its stream's schema.
        let discovered = util::run(&["discover", "--config", util::path(&config)]).await;
        let validator =
            util::stream_validator(&discovered.of_type("CATALOG")[0]["catalog"], stream);
        for record in run.records(stream) {
            assert!(validator.is_valid(record), "{stream}: {record}");
        }
    }
}

/// Per-currency sum of a list of (decimal text, currency) rows.
fn sums<'a>(rows: impl Iterator<Item = (i128, &'a str)>) -> BTreeMap<String, i128> {
    let mut out = BTreeMap::new();
    for (amount, currency) in rows {
        *out.entry(currency.to_uppercase()).or_default() += amount;
    }
    out
}

/// For every connected account of an emulator data set: transactions sum to the balance
/// transactions' `net` per currency, payments per charge to the charge's amount minus its
/// refunds, and company info (one row per account) holds the balance the balance
/// transactions add up to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_reconcile_for_every_account() {
    let running = start(false, 3).await;
    let files = Files::new();
    let config = files.config(
        &running,
        emulator::DEFAULT_TEST_KEY,
        json!({"connected_accounts": "all"}),
    );
    let streams = [
        "balance_transactions",
        "charges",
        "commerce_transactions",
        "commerce_payments",
        "commerce_company_info",
    ];
    let run = util::read(&config, &catalog(&files, &streams, "full_refresh"), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let accounts = running.emulator().connected_account_ids();
    assert_eq!(accounts.len(), 3);
    let of = |stream: &str, account: &str| -> Vec<Value> {
        run.records(stream)
            .into_iter()
            .filter(|r| r["stripe_account"] == account)
            .cloned()
            .collect()
    };
    for stream in [
        "commerce_transactions",
        "commerce_payments",
        "commerce_company_info",
    ] {
        assert!(
            run.records(stream)
                .iter()
                .all(|r| r["stripe_account"].is_string()),
            "{stream}: every record carries its account"
        );
    }
    let info = run.records("commerce_company_info");
    let info_accounts: BTreeSet<&str> = info.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        info.len(),
        accounts.len(),
        "one company info row per account"
    );
    assert_eq!(info_accounts, accounts.iter().map(String::as_str).collect());
    for account in &accounts {
        let bts = of("balance_transactions", account);
        assert!(!bts.is_empty());
        let net = sums(bts.iter().map(|bt| {
            let currency = bt["currency"].as_str().unwrap();
            (
                minor_scaled(bt["net"].as_i64().unwrap(), currency),
                currency,
            )
        }));
        let transactions = of("commerce_transactions", account);
        let total = sums(
            transactions
                .iter()
                .map(|t| (scaled(&t["total_amount"]), t["currency"].as_str().unwrap())),
        );
        assert_eq!(
            total, net,
            "{account}: transactions sum to the net per currency"
        );
        assert!(
            transactions.len() > bts.len(),
            "{account}: fee rows are there"
        );

        let payments = of("commerce_payments", account);
        let mut per_charge: BTreeMap<&str, i128> = BTreeMap::new();
        for p in &payments {
            *per_charge
                .entry(p["charge_id"].as_str().unwrap())
                .or_default() += scaled(&p["amount"]);
        }
        let charges = of("charges", account);
        assert_eq!(
            per_charge.len(),
            charges.len(),
            "{account}: every charge has payments"
        );
        let mut refunded = 0;
        for ch in &charges {
            let currency = ch["currency"].as_str().unwrap();
            let expected = minor_scaled(
                ch["amount"].as_i64().unwrap() - ch["amount_refunded"].as_i64().unwrap(),
                currency,
            );
            let id = ch["id"].as_str().unwrap();
            assert_eq!(
                per_charge[id], expected,
                "{account} {id}: amount minus refunds"
            );
            refunded += i32::from(ch["amount_refunded"].as_i64().unwrap() > 0);
        }
        assert!(refunded > 0, "{account}: the data set has refunds");

        let row = info.iter().find(|r| r["id"] == account.as_str()).unwrap();
        assert_eq!(row["stripe_account"], account.as_str());
        let balances = sums(row["account_balances"].as_array().unwrap().iter().map(|b| {
            (
                scaled(&b["available"]) + scaled(&b["pending"]),
                b["currency"].as_str().unwrap(),
            )
        }));
        assert_eq!(
            balances, net,
            "{account}: the balance is the balance transactions' net"
        );
    }
}

/// After the emulator creates, updates and deletes objects, the second (incremental)
/// sync's commerce records are exactly those of the changed objects: changed charges
/// update their payments, new balance transactions add transactions, deleted products
/// and prices come back deleted, new prices add variants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_commerce_follows_creates_updates_and_deletes() {
    let running = start(false, 0).await;
    let emulator = running.emulator();
    let scope = util::platform_test();
    let files = Files::new();
    let config = files.config(&running, emulator::DEFAULT_TEST_KEY, json!({}));
    let streams: Vec<&str> = COMMERCE
        .iter()
        .copied()
        .filter(|s| *s != "commerce_company_info")
        .collect();
    let catalog = catalog(&files, &streams, "incremental");
    let first = util::read(&config, &catalog, None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    for stream in &streams {
        let state = &first.stream_states()[*stream];
        assert!(state["sources"].is_object(), "{stream}: {state}");
    }
    let before = util::all_ids(emulator, &scope);
    let report = emulator.advance(&Advance {
        seconds: 3_600,
        creates: 6,
        updates: 18,
        deletes: 6,
        ..Advance::default()
    });
    let changed = util::expected_changes(emulator, &scope, &before, &report);
    let state = files.write("state.json", &first.state_file());
    let second = util::read(&config, &catalog, Some(&state)).await;
    assert_eq!(second.code, 0, "{}", second.stderr);

    // Payments: every changed charge and its refunds, as the charge is now.
    let mut want_payments = BTreeSet::new();
    for id in &changed["charges"] {
        want_payments.insert(id.clone());
        let charge = emulator.object(&scope, "charges", id).unwrap();
        for refund in charge["refunds"]["data"].as_array().unwrap() {
            want_payments.insert(refund["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(!want_payments.is_empty());
    let payments = second.records("commerce_payments");
    let got: BTreeSet<String> = payments
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got, want_payments,
        "commerce_payments: the changed charges' payments"
    );
    let refunded: Vec<&&Value> = payments
        .iter()
        .filter(|p| p["source_type"] == "refund")
        .collect();
    assert!(!refunded.is_empty(), "the advance refunded a charge");
    for p in refunded {
        let charge = emulator
            .object(&scope, "charges", p["charge_id"].as_str().unwrap())
            .unwrap();
        assert!(charge["amount_refunded"].as_i64().unwrap() > 0);
    }

    // Transactions: the new balance transactions and their fee rows.
    let mut want_txns = BTreeSet::new();
    for id in &changed["balance_transactions"] {
        want_txns.insert(id.clone());
        let bt = emulator.object(&scope, "balance_transactions", id).unwrap();
        if bt["fee"].as_i64().unwrap() != 0 {
            want_txns.insert(format!("{id}:fee"));
        }
    }
    assert_eq!(second.unique_ids("commerce_transactions"), want_txns);

    // Customers and disputes: the changed ones, deletions marked.
    let customers: BTreeSet<String> = second
        .record_ids("commerce_customers")
        .into_iter()
        .collect();
    assert_eq!(customers, changed["customers"]);
    assert_eq!(
        second
            .record_ids("commerce_disputes")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        changed["disputes"]
    );
    let deleted: BTreeSet<String> = report
        .changes
        .iter()
        .filter(|c| c.kind == emulator::ChangeKind::Deleted)
        .map(|c| c.id.clone())
        .collect();
    for prefix in ["prod_", "price_", "cus_"] {
        assert!(
            deleted.iter().any(|id| id.starts_with(prefix)),
            "the advance deleted a {prefix}"
        );
    }
    // An object changed and then deleted in the same hour has two records, the deletion
    // one of them; nothing that was not deleted is marked deleted.
    let marked: BTreeSet<String> = second
        .records("commerce_customers")
        .into_iter()
        .chain(second.records("commerce_products"))
        .filter(|r| r["is_deleted"] == true)
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(marked, deleted, "is_deleted exactly on the deleted objects");

    // Products: changed products and prices; a deleted product's prices are deleted
    // variants; new prices are variants of their product.
    let products = second.records("commerce_products");
    let got: BTreeSet<String> = products
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = changed["products"]
        .union(&changed["prices"])
        .cloned()
        .collect();
    assert_eq!(
        got, want,
        "commerce_products: the changed products and prices"
    );
    let created_prices: Vec<&str> = report
        .changes
        .iter()
        .filter(|c| c.stream == "prices" && c.kind == emulator::ChangeKind::Created)
        .map(|c| c.id.as_str())
        .collect();
    assert!(!created_prices.is_empty(), "the advance created prices");
    for id in created_prices {
        let variant = products.iter().find(|p| p["id"] == id).unwrap();
        assert_eq!(variant["kind"], "variant");
        // The price may have been deleted again in the same hour.
        if let Some(price) = emulator.object(&scope, "prices", id) {
            assert_eq!(variant["product_id"], price["product"]);
            assert_eq!(variant["is_deleted"], Value::Null);
        }
    }
    let deleted_products: Vec<&str> = products
        .iter()
        .filter(|p| p["kind"] == "product" && p["is_deleted"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(!deleted_products.is_empty());
    let mut deleted_variants = 0;
    for pid in &deleted_products {
        // Its prices went with it (Stripe refuses to delete a product that has prices):
        // whatever variant of it this sync saw was deleted too.
        for v in products
            .iter()
            .filter(|v| v["kind"] == "variant" && v["product_id"] == *pid)
        {
            if v["is_deleted"] == true {
                deleted_variants += 1;
            } else {
                assert!(
                    products
                        .iter()
                        .any(|w| w["id"] == v["id"] && w["is_deleted"] == true),
                    "{pid}: variant {} outlives its product",
                    v["id"]
                );
            }
        }
    }
    assert!(
        deleted_variants > 0,
        "a deleted product's variants are deleted"
    );

    // The states moved on, each source's own.
    for stream in &streams {
        let before = &first.stream_states()[*stream]["sources"];
        let after = &second.stream_states()[*stream]["sources"];
        assert_ne!(before, after, "{stream}");
    }
}

/// The request log: the commerce streams selected with their raw sources cost no request
/// more than the sources alone (company info: one `/v1/balance`); alone, a commerce stream
/// reads only its sources' endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_streams_cost_no_extra_request() {
    let running = start(true, 0).await;
    let emulator = running.emulator();
    let files = Files::new();
    let config = files.config(&running, emulator::DEFAULT_TEST_KEY, json!({}));
    let raw = [
        "account",
        "balance_transactions",
        "charges",
        "customers",
        "disputes",
        "prices",
        "products",
    ];
    let requests = |from: usize| -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = emulator.request_log()[from..]
            .iter()
            .map(|r| (r.path.clone(), r.query.clone()))
            .collect();
        list.sort();
        list
    };
    let start_a = emulator.request_log().len();
    let a = util::read(&config, &catalog(&files, &raw, "incremental"), None).await;
    assert_eq!(a.code, 0, "{}", a.stderr);
    let alone = requests(start_a);

    let start_b = emulator.request_log().len();
    let both: Vec<&str> = raw.iter().chain(COMMERCE.iter()).copied().collect();
    let b = util::read(&config, &catalog(&files, &both, "incremental"), None).await;
    assert_eq!(b.code, 0, "{}", b.stderr);
    let mut with = requests(start_b);
    let balance: Vec<_> = with
        .iter()
        .filter(|(p, _)| p == "/v1/balance")
        .cloned()
        .collect();
    assert_eq!(balance.len(), 1, "company info reads the balance once");
    with.retain(|(p, _)| p != "/v1/balance");
    assert_eq!(
        with, alone,
        "the same requests with and without the commerce streams"
    );
    for stream in raw {
        assert_eq!(
            b.unique_ids(stream),
            a.unique_ids(stream),
            "{stream}: the raw stream is unchanged"
        );
    }
    assert!(!b.records("commerce_payments").is_empty());

    let start_c = emulator.request_log().len();
    let c = util::read(
        &config,
        &catalog(&files, &["commerce_payments"], "incremental"),
        None,
    )
    .await;
    assert_eq!(c.code, 0, "{}", c.stderr);
    let paths: BTreeSet<String> = requests(start_c).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["/v1/account", "/v1/charges"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        "commerce_payments alone reads charges (and the account probe every sync makes)"
    );
    assert_eq!(
        c.unique_ids("commerce_payments"),
        b.unique_ids("commerce_payments")
    );
    let emitted: BTreeSet<&str> = c
        .of_type("RECORD")
        .iter()
        .map(|m| m["record"]["stream"].as_str().unwrap())
        .collect();
    assert_eq!(emitted, BTreeSet::from(["commerce_payments"]));
    let states: BTreeSet<String> = c.stream_states().into_keys().collect();
    assert_eq!(states, BTreeSet::from(["commerce_payments".to_owned()]));
}

/// Parquet: the commerce amounts are DECIMAL(38, 3) columns, and DuckDB's sums per
/// currency equal the exact sums of the protocol's decimal texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_decimals_are_summed_exactly_by_duckdb() {
    let running = start(true, 0).await;
    let files = Files::new();
    let config = files.config(&running, emulator::DEFAULT_TEST_KEY, json!({}));
    let protocol = util::read(
        &config,
        &catalog(
            &files,
            &["commerce_payments", "commerce_transactions"],
            "incremental",
        ),
        None,
    )
    .await;
    assert_eq!(protocol.code, 0, "{}", protocol.stderr);
    let dir = files.dir.path().join("out");
    let output = tokio::process::Command::new(util::BIN)
        .args([
            "read",
            "--config",
            util::path(&config),
            "--output-dir",
            util::path(&dir),
            "--streams",
            "commerce_payments,commerce_transactions",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let script = r#"
import json, sys, duckdb
out = {}
for stream, column in [("commerce_payments", "amount"), ("commerce_transactions", "total_amount")]:
    rel = f"read_parquet('{sys.argv[1]}/{stream}/*.parquet')"
    out[stream] = {
        "type": duckdb.sql(f"SELECT typeof({column}) FROM {rel} LIMIT 1").fetchall()[0][0],
        "sums": {c: format(s, "f") for c, s in duckdb.sql(f"SELECT currency, sum({column}) FROM {rel} GROUP BY currency").fetchall()},
        "month": [list(map(str, r)) for r in duckdb.sql(
            f"SELECT strftime(date_trunc('month', created), '%Y-%m'), currency, sum({column}) FROM {rel} GROUP BY ALL ORDER BY ALL LIMIT 3").fetchall()],
    }
print(json.dumps(out))
"#;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/clients/analytics/bin/python");
    assert!(
        python.exists(),
        "run tools/setup-clients.sh (it installs duckdb)"
    );
    let duck = tokio::process::Command::new(python)
        .args(["-c", script, util::path(&dir)])
        .output()
        .await
        .unwrap();
    assert!(
        duck.status.success(),
        "{}",
        String::from_utf8_lossy(&duck.stderr)
    );
    let seen: Value = serde_json::from_slice(&duck.stdout).unwrap();
    for (stream, column) in [
        ("commerce_payments", "amount"),
        ("commerce_transactions", "total_amount"),
    ] {
        assert_eq!(seen[stream]["type"], "DECIMAL(38,3)", "{stream}");
        let exact = sums(
            protocol
                .records(stream)
                .into_iter()
                .map(|r| (scaled(&r[column]), r["currency"].as_str().unwrap())),
        );
        let duck: BTreeMap<String, i128> = seen[stream]["sums"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(c, s)| {
                (
                    c.clone(),
                    parse_scaled(s.as_str().unwrap(), DECIMAL_SCALE).unwrap(),
                )
            })
            .collect();
        assert_eq!(duck, exact, "{stream}: DuckDB's sums are exact");
        assert!(
            exact.contains_key("JPY") && exact.contains_key("BHD") || stream != "commerce_payments"
        );
        assert!(!seen[stream]["month"].as_array().unwrap().is_empty());
    }
}
