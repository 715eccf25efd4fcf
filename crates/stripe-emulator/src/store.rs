//! In-memory storage of one scope's data: the streams, pre-rendered object versions, the
//! ordered per-stream indexes that make cursors and `created` filters O(log n), and page
//! assembly.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;

use super::rng::Rng;

/// The list streams backed by a scope's data (accounts are kept by the Connect registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Stream {
    Customers,
    Charges,
    PaymentIntents,
    Refunds,
    Disputes,
    Products,
    Prices,
    BalanceTransactions,
    Events,
    Invoices,
    Subscriptions,
    Payouts,
}

impl Stream {
    pub(crate) const ALL: [Stream; 12] = [
        Stream::Customers,
        Stream::Charges,
        Stream::PaymentIntents,
        Stream::Refunds,
        Stream::Disputes,
        Stream::Products,
        Stream::Prices,
        Stream::BalanceTransactions,
        Stream::Events,
        Stream::Invoices,
        Stream::Subscriptions,
        Stream::Payouts,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The URL and stream name, e.g. `payment_intents`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Customers => "customers",
            Stream::Charges => "charges",
            Stream::PaymentIntents => "payment_intents",
            Stream::Refunds => "refunds",
            Stream::Disputes => "disputes",
            Stream::Products => "products",
            Stream::Prices => "prices",
            Stream::BalanceTransactions => "balance_transactions",
            Stream::Events => "events",
            Stream::Invoices => "invoices",
            Stream::Subscriptions => "subscriptions",
            Stream::Payouts => "payouts",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The `object` value and schema name, e.g. `payment_intent`.
    pub(crate) fn object(self) -> &'static str {
        match self {
            Stream::Customers => "customer",
            Stream::Charges => "charge",
            Stream::PaymentIntents => "payment_intent",
            Stream::Refunds => "refund",
            Stream::Disputes => "dispute",
            Stream::Products => "product",
            Stream::Prices => "price",
            Stream::BalanceTransactions => "balance_transaction",
            Stream::Events => "event",
            Stream::Invoices => "invoice",
            Stream::Subscriptions => "subscription",
            Stream::Payouts => "payout",
        }
    }

    /// The id prefix, e.g. `pi`.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Stream::Customers => "cus",
            Stream::Charges => "ch",
            Stream::PaymentIntents => "pi",
            Stream::Refunds => "re",
            Stream::Disputes => "dp",
            Stream::Products => "prod",
            Stream::Prices => "price",
            Stream::BalanceTransactions => "txn",
            Stream::Events => "evt",
            Stream::Invoices => "in",
            Stream::Subscriptions => "sub",
            Stream::Payouts => "po",
        }
    }

    /// The stream an id belongs to, from its prefix.
    pub(crate) fn of_id(id: &str) -> Option<Stream> {
        let prefix = id.split('_').next()?;
        Stream::ALL.into_iter().find(|s| s.prefix() == prefix)
    }

    /// Top-level fields copied into [`Obj::fields`] for list filters.
    fn filter_fields(self) -> &'static [&'static str] {
        match self {
            Stream::Customers => &["email"],
            Stream::Charges => &["customer", "payment_intent", "transfer_group"],
            Stream::PaymentIntents => &["customer"],
            Stream::Refunds | Stream::Disputes => &["charge", "payment_intent"],
            Stream::Products => &["active", "shippable", "url"],
            Stream::Prices => &["product", "active", "type", "currency", "lookup_key"],
            Stream::BalanceTransactions => &["type", "source", "currency"],
            Stream::Events => &["type"],
            Stream::Invoices => &["customer", "subscription", "status", "collection_method"],
            Stream::Subscriptions => &["customer", "status", "collection_method"],
            Stream::Payouts => &["status", "destination"],
        }
    }
}

/// One version of an object, rendered once.
#[derive(Debug)]
pub(crate) struct Obj {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) json: Arc<str>,
    /// Values of filterable fields (plus hidden ones such as a balance transaction's payout).
    pub(crate) fields: Vec<(&'static str, String)>,
}

impl Obj {
    pub(crate) fn new(stream: Stream, value: &Value) -> Obj {
        let mut fields = Vec::new();
        for name in stream.filter_fields() {
            let text = match value.get(*name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_string),
                _ => None,
            };
            if let Some(t) = text {
                fields.push((*name, t));
            }
        }
        if stream == Stream::Subscriptions {
            let prices = value
                .pointer("/items/data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| item.pointer("/price/id").and_then(Value::as_str));
            for p in prices {
                fields.push(("price", p.to_string()));
            }
        }
        Obj {
            id: value
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            created: value.get("created").and_then(Value::as_i64).unwrap_or(0),
            json: Arc::from(value.to_string()),
            fields,
        }
    }

    /// Whether a filter field has this value (multi-valued fields match any).
    pub(crate) fn has(&self, name: &str, want: &str) -> bool {
        self.fields.iter().any(|(n, v)| *n == name && v == want)
    }

    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The object as a JSON value (parsed from its rendering).
    pub(crate) fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

type Key = (i64, u64);

/// One stream: objects ordered by (created, insertion sequence); lists walk it backwards.
#[derive(Default)]
pub(crate) struct Collection {
    by_key: BTreeMap<Key, Arc<Obj>>,
    by_id: HashMap<String, Key>,
    /// Every key, oldest first: the `i`-th object without walking the map.
    order: Vec<Key>,
    /// Kept by [`Collection::index_strings`]: per top-level field, the keys of the objects
    /// whose text has a string there (`"field":"`), so a pick of an object with that
    /// field does not walk the objects without it.
    strings: Vec<(&'static str, String, BTreeSet<Key>)>,
    next_seq: u64,
}

/// Where a page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    None,
    After(String),
    Before(String),
}

/// What a list request asks for.
pub(crate) struct PageQuery<'a> {
    pub(crate) limit: usize,
    pub(crate) cursor: Cursor,
    /// Inclusive bounds on `created`.
    pub(crate) min_created: Option<i64>,
    pub(crate) max_created: Option<i64>,
    pub(crate) filter: &'a dyn Fn(&Obj) -> bool,
}

pub(crate) struct Page {
    pub(crate) items: Vec<Arc<Obj>>,
    pub(crate) has_more: bool,
}

impl Collection {
    /// Inserts a new object or replaces the current version of an existing one (same place
    /// in the order).
    pub(crate) fn put(&mut self, obj: Obj) {
        let key = match self.by_id.get(&obj.id) {
            Some(key) => *key,
            None => {
                let key = (obj.created, self.next_seq);
                self.next_seq += 1;
                self.by_id.insert(obj.id.clone(), key);
                // Objects mostly come in order: then this is a push.
                let at = self.order.partition_point(|k| *k < key);
                self.order.insert(at, key);
                key
            }
        };
        for (_, needle, keys) in &mut self.strings {
            if obj.json.contains(needle.as_str()) {
                keys.insert(key);
            } else {
                keys.remove(&key);
            }
        }
        self.by_key.insert(key, Arc::new(obj));
    }

    /// Keeps from now on the keys of the objects with a string at top-level `field` (see
    /// [`Collection::with_string`]).
    pub(crate) fn index_strings(&mut self, field: &'static str) {
        if self.strings.iter().any(|(f, ..)| *f == field) {
            return;
        }
        let needle = format!("\"{field}\":\"");
        let keys = self
            .by_key
            .iter()
            .filter(|(_, o)| o.json.contains(needle.as_str()))
            .map(|(k, _)| *k)
            .collect();
        self.strings.push((field, needle, keys));
    }

    /// The objects of the first `pool` (oldest first) whose text has a string at
    /// top-level `field`, from the `first`-th object on and then from the oldest: the
    /// order of a walk of positions `first, first + 1, …` round the pool. `None` when
    /// `field` is not indexed.
    pub(crate) fn with_string(
        &self,
        field: &str,
        pool: usize,
        first: usize,
    ) -> Option<impl Iterator<Item = &Arc<Obj>>> {
        let (_, _, keys) = self.strings.iter().find(|(f, ..)| *f == field)?;
        let key_at = |i: usize| self.order.get(i).copied();
        let start = key_at(first)?;
        let end = match key_at(pool) {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        let from_first = keys.range((Bound::Included(start), end));
        let before_first = keys.range(..start);
        Some(
            from_first
                .chain(before_first)
                .filter_map(|k| self.by_key.get(k)),
        )
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Obj>> {
        self.by_id.get(id).and_then(|k| self.by_key.get(k))
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Arc<Obj>> {
        let key = self.by_id.remove(id)?;
        for (.., keys) in &mut self.strings {
            keys.remove(&key);
        }
        if let Ok(at) = self.order.binary_search(&key) {
            self.order.remove(at);
        }
        self.by_key.remove(&key)
    }

    /// The `index`-th object, oldest first.
    pub(crate) fn nth_asc(&self, index: usize) -> Option<&Arc<Obj>> {
        self.order.get(index).and_then(|k| self.by_key.get(k))
    }

    /// How many objects were created at or before `at`: the first that many, oldest
    /// first.
    pub(crate) fn created_by(&self, at: i64) -> usize {
        self.order.partition_point(|(created, _)| *created <= at)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Newest first.
    pub(crate) fn iter_desc(&self) -> impl Iterator<Item = &Arc<Obj>> {
        self.by_key.values().rev()
    }

    /// Oldest first.
    pub(crate) fn iter_asc(&self) -> impl Iterator<Item = &Arc<Obj>> {
        self.by_key.values()
    }

    /// A page in Stripe's order (newest first). `Err(id)` when the cursor object does not
    /// exist.
    pub(crate) fn page(&self, q: &PageQuery<'_>) -> Result<Page, String> {
        let lo = q.min_created.unwrap_or(i64::MIN);
        let hi = q.max_created.unwrap_or(i64::MAX);
        if lo > hi {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
        let lo_key: Bound<Key> = Bound::Included((lo, 0));
        let hi_key: Bound<Key> = Bound::Included((hi, u64::MAX));
        match &q.cursor {
            Cursor::None | Cursor::After(_) => {
                let upper = match &q.cursor {
                    Cursor::After(id) => {
                        let key = *self.by_id.get(id).ok_or_else(|| id.clone())?;
                        if key.0 > hi {
                            hi_key
                        } else {
                            Bound::Excluded(key)
                        }
                    }
                    _ => hi_key,
                };
                if let (Bound::Excluded(k), Bound::Included(l)) = (upper, lo_key)
                    && k <= l
                {
                    return Ok(Page {
                        items: Vec::new(),
                        has_more: false,
                    });
                }
                let mut items = Vec::with_capacity(q.limit.min(128));
                let mut has_more = false;
                for obj in self.by_key.range((lo_key, upper)).rev().map(|(_, o)| o) {
                    if !(q.filter)(obj) {
                        continue;
                    }
                    if items.len() == q.limit {
                        has_more = true;
                        break;
                    }
                    items.push(obj.clone());
                }
                Ok(Page { items, has_more })
            }
            Cursor::Before(id) => {
                let key = *self.by_id.get(id).ok_or_else(|| id.clone())?;
                if key.0 < lo {
                    // Everything in range is newer than the cursor.
                    return self.page_from_oldest(q, lo_key, hi_key);
                }
                if key.0 > hi {
                    return Ok(Page {
                        items: Vec::new(),
                        has_more: false,
                    });
                }
                self.page_from_oldest(q, Bound::Excluded(key), hi_key)
            }
        }
    }

    /// The `limit` objects just newer than `lower`, returned newest first.
    fn page_from_oldest(
        &self,
        q: &PageQuery<'_>,
        lower: Bound<Key>,
        upper: Bound<Key>,
    ) -> Result<Page, String> {
        let mut items = Vec::with_capacity(q.limit.min(128));
        let mut has_more = false;
        for obj in self.by_key.range((lower, upper)).map(|(_, o)| o) {
            if !(q.filter)(obj) {
                continue;
            }
            if items.len() == q.limit {
                has_more = true;
                break;
            }
            items.push(obj.clone());
        }
        items.reverse();
        Ok(Page { items, has_more })
    }
}

/// One scope's data: every stream plus what advances need.
pub(crate) struct ScopeData {
    pub(crate) account: String,
    pub(crate) connected: bool,
    pub(crate) livemode: bool,
    pub(crate) currency: &'static str,
    cols: Vec<Collection>,
    /// Rendered `deleted_*` stubs of deleted objects, for expansions.
    pub(crate) deleted: HashMap<String, Arc<str>>,
    /// Randomness of later advances.
    pub(crate) rng: Rng,
    /// Rotation positions of advance updates, deletes and creates.
    pub(crate) turns: [usize; 3],
    /// Ids referenced by subscriptions and invoices (never deleted by advances).
    pub(crate) pinned: HashSet<String>,
    /// The table-driven resources, by row of `resources::RESOURCES`.
    pub(crate) resources: Vec<Collection>,
    /// Children kept apart from their parent (`children::KIDS`): by child stream, then
    /// parent id, newest first.
    pub(crate) kids: HashMap<&'static str, HashMap<String, Vec<Value>>>,
}

impl ScopeData {
    pub(crate) fn new(
        account: String,
        connected: bool,
        livemode: bool,
        currency: &'static str,
        rng: Rng,
    ) -> ScopeData {
        ScopeData {
            account,
            connected,
            livemode,
            currency,
            cols: Stream::ALL.iter().map(|_| Collection::default()).collect(),
            deleted: HashMap::new(),
            rng,
            turns: [0; 3],
            pinned: HashSet::new(),
            resources: Vec::new(),
            kids: HashMap::new(),
        }
    }

    pub(crate) fn col(&self, s: Stream) -> &Collection {
        &self.cols[s.index()]
    }

    pub(crate) fn col_mut(&mut self, s: Stream) -> &mut Collection {
        &mut self.cols[s.index()]
    }

    /// Renders and stores a version of an object.
    pub(crate) fn put(&mut self, s: Stream, value: &Value) {
        self.col_mut(s).put(Obj::new(s, value));
    }

    /// The current version of an object by id (any stream, from the id prefix).
    pub(crate) fn find(&self, id: &str) -> Option<&Arc<Obj>> {
        Stream::of_id(id).and_then(|s| self.col(s).get(id))
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    fn col(n: usize) -> Collection {
        let mut c = Collection::default();
        for i in 0..n {
            // Pairs share a second to exercise tie order.
            let v =
                json!({"id": format!("cus_{i}"), "created": 100 + (i / 2) as i64, "email": "x"});
            c.put(Obj::new(Stream::Customers, &v));
        }
        c
    }

    fn ids(p: &Page) -> Vec<String> {
        p.items.iter().map(|o| o.id.clone()).collect()
    }

    /// The index of objects with a string at a field gives exactly the objects a walk of
    /// positions `first, first + 1, …` round the pool would find with the field, in that
    /// order, and follows puts, replacements and removals.
    #[test]
    fn string_index_is_the_walk_without_the_misses() {
        let mut c = Collection::default();
        let with = |i: usize| i.is_multiple_of(7) || i % 5 == 3;
        let object = |i: usize, has: bool| {
            let mut v = json!({"id": format!("in_{i}"), "created": 100 + (i / 3) as i64});
            if has {
                v["payment_intent"] = json!(format!("pi_{i}"));
            } else {
                v["payment_intent"] = Value::Null;
            }
            Obj::new(Stream::Invoices, &v)
        };
        for i in 0..20 {
            c.put(object(i, with(i)));
        }
        c.index_strings("payment_intent");
        for i in 20..40 {
            c.put(object(i, with(i)));
        }
        c.put(object(3, false));
        c.put(object(4, true));
        c.remove("in_14");
        let has = |o: &Obj| o.json.contains("\"payment_intent\":\"");
        for pool in 1..=c.len() {
            for first in 0..pool {
                let walk: Vec<String> = (0..pool)
                    .filter_map(|k| c.nth_asc((first + k) % pool))
                    .filter(|o| has(o))
                    .map(|o| o.id.clone())
                    .collect();
                let indexed: Vec<String> = c
                    .with_string("payment_intent", pool, first)
                    .expect("indexed")
                    .map(|o| o.id.clone())
                    .collect();
                assert_eq!(indexed, walk, "pool {pool}, first {first}");
            }
        }
        let all: Vec<String> = c
            .with_string("payment_intent", c.len(), 0)
            .unwrap()
            .map(|o| o.id.clone())
            .collect();
        assert!(all.contains(&"in_4".to_string()) && !all.contains(&"in_3".to_string()));
        assert!(!all.contains(&"in_14".to_string()) && all.contains(&"in_35".to_string()));
        assert!(c.with_string("customer", c.len(), 0).is_none());
    }

    #[test]
    fn pages_forward_and_backward() {
        let c = col(10);
        let all = |_: &Obj| true;
        let q = |cursor, limit| PageQuery {
            limit,
            cursor,
            min_created: None,
            max_created: None,
            filter: &all,
        };
        let p = c.page(&q(Cursor::None, 3)).unwrap();
        assert_eq!(ids(&p), ["cus_9", "cus_8", "cus_7"]);
        assert!(p.has_more);
        let p = c.page(&q(Cursor::After("cus_7".into()), 3)).unwrap();
        assert_eq!(ids(&p), ["cus_6", "cus_5", "cus_4"]);
        let p = c.page(&q(Cursor::Before("cus_4".into()), 2)).unwrap();
        assert_eq!(ids(&p), ["cus_6", "cus_5"]);
        assert!(p.has_more);
        let p = c.page(&q(Cursor::Before("cus_1".into()), 10)).unwrap();
        assert_eq!(p.items.len(), 8);
        assert!(!p.has_more);
        assert_eq!(
            c.page(&q(Cursor::After("nope".into()), 3)).err(),
            Some("nope".into())
        );
        let p = c
            .page(&PageQuery {
                limit: 100,
                cursor: Cursor::None,
                min_created: Some(101),
                max_created: Some(102),
                filter: &all,
            })
            .unwrap();
        assert_eq!(ids(&p), ["cus_5", "cus_4", "cus_3", "cus_2"]);
    }
}
