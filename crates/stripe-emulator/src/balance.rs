//! `/v1/balance`: the account's balance, computed from its balance transactions so the two
//! always agree: per currency, the `net` of every balance transaction available by the
//! clock (`available_on` passed) is `available`, the rest `pending`.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::store::{ScopeData, Stream};

/// The balance object of a scope at `now`.
pub(crate) fn render(data: &ScopeData, now: i64) -> Value {
    // currency → (available, pending)
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    sums.insert(data.currency.to_owned(), (0, 0));
    for obj in data.col(Stream::BalanceTransactions).iter_asc() {
        let v = obj.value();
        let currency = v["currency"].as_str().unwrap_or(data.currency).to_owned();
        let net = v["net"].as_i64().unwrap_or(0);
        let entry = sums.entry(currency).or_default();
        if v["available_on"].as_i64().unwrap_or(0) <= now {
            entry.0 += net;
        } else {
            entry.1 += net;
        }
    }
    let list = |pick: fn(&(i64, i64)) -> i64| -> Vec<Value> {
        sums.iter()
            .map(|(currency, s)| {
                json!({"amount": pick(s), "currency": currency, "source_types": {"card": pick(s)}})
            })
            .collect()
    };
    json!({
        "object": "balance",
        "available": list(|s| s.0),
        "pending": list(|s| s.1),
        "connect_reserved": [{"amount": 0, "currency": data.currency}],
        "livemode": data.livemode,
    })
}
