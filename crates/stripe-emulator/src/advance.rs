//! Clock advances: moving the emulator clock and applying creates, updates and deletes to
//! one scope's data, with the events Stripe would emit for them.
use serde_json::{Value, json};

use super::data::{ChargeArgs, CustomerRef, Gen, apply_refund, fee_of, set_dispute_status};
use super::resources;
use super::rng::Rng;
use super::store::{ScopeData, Stream};
use super::{Advance, AdvanceReport, Change, ChangeKind, Inner, Scope, write};

/// Applies an advance: changes are stamped at increasing times in
/// `[old_now + 1, new_now - 1]`, then the clock moves to `new_now`.
pub(crate) fn run(inner: &Inner, adv: &Advance) -> AdvanceReport {
    let total = adv.creates + adv.updates + adv.deletes + adv.resources;
    let mut seconds = adv.seconds.max(0);
    if total > 0 {
        seconds = seconds.max(2);
    }
    let scope = Scope {
        account: adv.account.clone(),
        livemode: adv.livemode,
    };
    let cell = if total > 0 {
        inner.scope_cell(&scope)
    } else {
        None
    };
    let Some(lock) = cell.as_ref().and_then(|c| c.get()) else {
        inner.clock.advance(seconds);
        return AdvanceReport {
            now: inner.clock.now(),
            changes: Vec::new(),
        };
    };
    let linked: Vec<String> = match &scope.account {
        None => lock_registry_accounts(inner),
        Some(_) => Vec::new(),
    };
    let mut data = write(lock);
    let old = inner.clock.now();
    let account = data.account.clone();
    let g = Gen {
        fx: &inner.fixtures,
        account: &account,
        connected: data.connected,
        livemode: data.livemode,
        currency: data.currency,
    };
    let rng = data.rng.clone();
    let mut m = Mutator {
        data: &mut data,
        g,
        rng,
        changes: Vec::new(),
        now: old + seconds,
    };
    let step_at = |i: usize| -> i64 {
        let steps = (total as i64 - 1).max(1);
        old + 1 + (i as i64 * (seconds - 2)) / steps
    };
    let mut i = 0;
    for _ in 0..adv.creates {
        m.create(step_at(i));
        i += 1;
    }
    for _ in 0..adv.updates {
        m.update(step_at(i));
        i += 1;
    }
    for _ in 0..adv.deletes {
        m.delete(step_at(i));
        i += 1;
    }
    let Mutator {
        mut rng,
        mut changes,
        g,
        ..
    } = m;
    // Events about objects a connected account owns, for its own events list.
    let mut owned: Vec<(String, Value)> = Vec::new();
    if adv.resources > 0 {
        // Table-driven resources change after the others, at increasing times that
        // stay before the new clock.
        // (and invoices and subscriptions through their children: two more per count)
        // (and the parents of the other child rows, one more each)
        // (and the connected accounts, one more)
        let bound =
            ((resources::RESOURCES.len() * 3 + 3 + super::kids::KIDS.len()) * adv.resources) as i64;
        let mut k = 0;
        let start = changes.last().map_or(old + 1, |c| c.at);
        let span = (old + seconds - 1 - start).max(0);
        let at = || {
            k += 1;
            start + (k * span / bound.max(1)).min(span)
        };
        let maker = resources::Maker {
            g: &g,
            accounts: &linked,
        };
        let mut at = at;
        let more = resources::advance(&maker, &mut data, &mut rng, adv.resources, &mut at);
        changes.extend(more);
        let more = super::children::advance(&g, &mut data, &mut rng, adv.resources, &mut at);
        changes.extend(more);
        let more = super::kids::advance(
            &g,
            &mut data,
            &mut rng,
            adv.resources,
            &linked,
            &mut owned,
            &mut at,
        );
        changes.extend(more);
        if scope.account.is_none() {
            let more = update_accounts(inner, &g, &mut rng, adv.resources, &mut owned, &mut at);
            changes.extend(more);
        }
    }
    data.rng = rng;
    // Move the clock while still holding the write lock, so that a reader who sees the new
    // time also sees every change (the accounts' own events included).
    deliver(inner, scope.livemode, owned);
    inner.clock.advance(seconds);
    drop(data);
    AdvanceReport {
        now: inner.clock.now(),
        changes,
    }
}

const UPDATE_KINDS: usize = 6;
const DELETE_KINDS: usize = 3;

struct Mutator<'a, 'g> {
    data: &'a mut ScopeData,
    g: Gen<'g>,
    rng: Rng,
    changes: Vec<Change>,
    now: i64,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Mutator<'_, '_> {
    fn change(&mut self, stream: Stream, id: &str, kind: ChangeKind, event_type: &str, at: i64) {
        self.changes.push(Change {
            stream: stream.name().to_string(),
            id: id.to_string(),
            kind,
            event_type: event_type.to_string(),
            at,
        });
    }

    /// Stores a new version of an object, emits its event and reports the change.
    fn record(
        &mut self,
        stream: Stream,
        obj: &Value,
        kind: ChangeKind,
        event_type: &str,
        at: i64,
        prev: Option<Value>,
    ) {
        self.data.put(stream, obj);
        self.event(event_type, at, obj, prev);
        self.change(stream, &s(obj, "id"), kind, event_type, at);
    }

    fn event(&mut self, kind: &str, at: i64, obj: &Value, prev: Option<Value>) {
        let e = self.g.event(&mut self.rng, kind, at, obj, prev, false);
        self.data.put(Stream::Events, &e);
    }

    /// A random object of a stream satisfying `pred` (a few random probes, then a scan).
    fn pick(&mut self, stream: Stream, pred: impl Fn(&ScopeData, &Value) -> bool) -> Option<Value> {
        let len = self.data.col(stream).len();
        if len == 0 {
            return None;
        }
        for _ in 0..24 {
            let idx = self.rng.index(len);
            let v = self.data.col(stream).nth_asc(idx)?.value();
            if pred(self.data, &v) {
                return Some(v);
            }
        }
        self.data
            .col(stream)
            .iter_desc()
            .map(|o| o.value())
            .find(|v| pred(self.data, v))
    }

    fn create(&mut self, at: i64) {
        let turn = self.data.turns[2];
        self.data.turns[2] += 1;
        let cv = self.g.customer(&mut self.rng, at);
        self.record(
            Stream::Customers,
            &cv,
            ChangeKind::Created,
            "customer.created",
            at,
            None,
        );
        let customer = CustomerRef::of(&cv);
        self.charge(at, &customer, None);
        if turn.is_multiple_of(3) {
            let prod = self.g.product(&mut self.rng, at);
            let pid = s(&prod, "id");
            self.data.put(Stream::Products, &prod);
            self.event("product.created", at, &prod, None);
            self.change(
                Stream::Products,
                &pid,
                ChangeKind::Created,
                "product.created",
                at,
            );
            for recurring in [false, true] {
                let price = self.g.price(&mut self.rng, &pid, at, recurring);
                self.record(
                    Stream::Prices,
                    &price,
                    ChangeKind::Created,
                    "price.created",
                    at,
                    None,
                );
            }
        } else if turn % 3 == 1 {
            let id = self.g.id(&mut self.rng, Stream::PaymentIntents);
            let amount = self.rng.range(5, 300) * 100;
            let pi = self.g.payment_intent_open(
                &mut self.rng,
                &id,
                at,
                &customer.id,
                amount,
                self.g.currency,
            );
            self.data.put(Stream::PaymentIntents, &pi);
            self.event("payment_intent.created", at, &pi, None);
            self.change(
                Stream::PaymentIntents,
                &id,
                ChangeKind::Created,
                "payment_intent.created",
                at,
            );
        }
    }

    /// A succeeded charge for `customer`, on a new payment intent or on `open` (an existing
    /// one waiting for a payment method).
    fn charge(&mut self, at: i64, customer: &CustomerRef, open: Option<Value>) {
        let currency = self.g.currency;
        let amount = open
            .as_ref()
            .and_then(|p| p["amount"].as_i64())
            .unwrap_or_else(|| self.rng.range(5, 500) * 100);
        let ch_id = self.g.id(&mut self.rng, Stream::Charges);
        let bt_id = self.g.id(&mut self.rng, Stream::BalanceTransactions);
        let existing = open.is_some();
        let pi_open = match open {
            Some(p) => p,
            None => {
                let id = self.g.id(&mut self.rng, Stream::PaymentIntents);
                let p = self.g.payment_intent_open(
                    &mut self.rng,
                    &id,
                    at,
                    &customer.id,
                    amount,
                    currency,
                );
                self.event("payment_intent.created", at, &p, None);
                p
            }
        };
        let pi_id = s(&pi_open, "id");
        let charge = self.g.charge(
            &mut self.rng,
            &ChargeArgs {
                id: ch_id.clone(),
                created: at,
                customer,
                amount,
                currency,
                payment_intent: pi_id.clone(),
                balance_transaction: Some(bt_id.clone()),
            },
        );
        let pi = self.g.payment_intent_after(&pi_open, &charge);
        let bt = self.g.balance_transaction(
            &bt_id,
            at,
            amount,
            fee_of(amount),
            "charge",
            "charge",
            &ch_id,
            &s(&charge, "description"),
            None,
            self.now,
        );
        self.data.put(Stream::Charges, &charge);
        self.data.put(Stream::PaymentIntents, &pi);
        self.data.put(Stream::BalanceTransactions, &bt);
        self.event("charge.succeeded", at, &charge, None);
        self.event("payment_intent.succeeded", at, &pi, None);
        self.change(
            Stream::Charges,
            &ch_id,
            ChangeKind::Created,
            "charge.succeeded",
            at,
        );
        if existing {
            self.change(
                Stream::PaymentIntents,
                &pi_id,
                ChangeKind::Updated,
                "payment_intent.succeeded",
                at,
            );
        } else {
            self.change(
                Stream::PaymentIntents,
                &pi_id,
                ChangeKind::Created,
                "payment_intent.created",
                at,
            );
        }
        self.change(
            Stream::BalanceTransactions,
            &bt_id,
            ChangeKind::Created,
            "",
            at,
        );
    }

    fn update(&mut self, at: i64) {
        let turn = self.data.turns[0];
        self.data.turns[0] += 1;
        for attempt in 0..UPDATE_KINDS {
            let done = match (turn + attempt) % UPDATE_KINDS {
                0 => self.update_customer(at),
                1 => self.refund_charge(at),
                2 => self.update_dispute(at),
                3 => self.update_product(at),
                4 => self.update_price(at),
                _ => self.update_payment_intent(at, turn),
            };
            if done {
                return;
            }
        }
    }

    fn update_customer(&mut self, at: i64) -> bool {
        let Some(mut v) = self.pick(Stream::Customers, |_, _| true) else {
            return false;
        };
        let prev = json!({"email": v["email"], "name": v["name"], "metadata": v["metadata"]});
        let fresh = self.g.customer(&mut self.rng, at);
        v["email"] = fresh["email"].clone();
        v["name"] = fresh["name"].clone();
        v["metadata"] = json!({"crm_id": format!("C-{:06}", self.rng.below(1_000_000)), "updated_by": "emulator"});
        self.record(
            Stream::Customers,
            &v,
            ChangeKind::Updated,
            "customer.updated",
            at,
            Some(prev),
        );
        true
    }

    fn refund_charge(&mut self, at: i64) -> bool {
        let Some(mut charge) = self.pick(Stream::Charges, |_, v| {
            v["paid"] == true && v["refunded"] == false && v["disputed"] == false
        }) else {
            return false;
        };
        let amount = charge["amount"].as_i64().unwrap_or(0);
        let remaining = amount - charge["amount_refunded"].as_i64().unwrap_or(0);
        let refund_amount = if remaining >= 2 && self.rng.chance(0.5) {
            remaining / 2
        } else {
            remaining
        };
        let ch_id = s(&charge, "id");
        let re_id = self.g.id(&mut self.rng, Stream::Refunds);
        let bt_id = self.g.id(&mut self.rng, Stream::BalanceTransactions);
        let refund = self
            .g
            .refund(&mut self.rng, &re_id, &charge, refund_amount, at, &bt_id);
        let currency = s(&charge, "currency");
        let (settled, xr) = self.g.settle(refund_amount, &currency);
        let bt = self.g.balance_transaction(
            &bt_id,
            at,
            -settled,
            0,
            "refund",
            "refund",
            &re_id,
            "REFUND FOR CHARGE",
            xr,
            self.now,
        );
        let prev = json!({
            "amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"],
            "refunds": charge["refunds"],
        });
        apply_refund(&mut charge, &refund);
        self.data.put(Stream::Refunds, &refund);
        self.data.put(Stream::BalanceTransactions, &bt);
        self.data.put(Stream::Charges, &charge);
        self.event("charge.refunded", at, &charge, Some(prev));
        self.event("refund.created", at, &refund, None);
        self.change(
            Stream::Refunds,
            &re_id,
            ChangeKind::Created,
            "refund.created",
            at,
        );
        self.change(
            Stream::BalanceTransactions,
            &bt_id,
            ChangeKind::Created,
            "",
            at,
        );
        self.change(
            Stream::Charges,
            &ch_id,
            ChangeKind::Updated,
            "charge.refunded",
            at,
        );
        // The payment intent embeds its charges.
        let pi_id = s(&charge, "payment_intent");
        if let Some(mut pi) = self
            .data
            .col(Stream::PaymentIntents)
            .get(&pi_id)
            .map(|o| o.value())
        {
            pi["charges"]["data"] = json!([charge]);
            self.data.put(Stream::PaymentIntents, &pi);
            self.change(Stream::PaymentIntents, &pi_id, ChangeKind::Updated, "", at);
        }
        true
    }

    fn update_dispute(&mut self, at: i64) -> bool {
        let Some(mut d) = self.pick(Stream::Disputes, |_, v| {
            matches!(
                v["status"].as_str(),
                Some(
                    "warning_needs_response"
                        | "warning_under_review"
                        | "needs_response"
                        | "under_review"
                )
            )
        }) else {
            return false;
        };
        let old = s(&d, "status");
        let next = match old.as_str() {
            "warning_needs_response" => "warning_under_review",
            "warning_under_review" => "warning_closed",
            "needs_response" => "under_review",
            _ => {
                if self.rng.chance(0.5) {
                    "won"
                } else {
                    "lost"
                }
            }
        };
        let id = s(&d, "id");
        let prev = json!({"status": old});
        set_dispute_status(&mut d, next, at);
        if next == "won" {
            let bt_id = self.g.id(&mut self.rng, Stream::BalanceTransactions);
            let amount = d["amount"].as_i64().unwrap_or(0);
            let (settled, xr) = self.g.settle(amount, &s(&d, "currency"));
            let bt = self.g.balance_transaction(
                &bt_id,
                at,
                settled,
                -1500,
                "adjustment",
                "dispute_reversal",
                &id,
                &format!("Chargeback reversal for {}", s(&d, "charge")),
                xr,
                self.now,
            );
            self.data.put(Stream::BalanceTransactions, &bt);
            self.change(
                Stream::BalanceTransactions,
                &bt_id,
                ChangeKind::Created,
                "",
                at,
            );
            if let Some(list) = d["balance_transactions"].as_array_mut() {
                list.push(bt);
            }
        }
        self.data.put(Stream::Disputes, &d);
        self.event("charge.dispute.updated", at, &d, Some(prev));
        if matches!(next, "won" | "lost" | "warning_closed") {
            self.event("charge.dispute.closed", at, &d, None);
        }
        self.change(
            Stream::Disputes,
            &id,
            ChangeKind::Updated,
            "charge.dispute.updated",
            at,
        );
        true
    }

    fn update_product(&mut self, at: i64) -> bool {
        let Some(mut p) = self.pick(Stream::Products, |_, _| true) else {
            return false;
        };
        let prev = json!({"name": p["name"], "updated": p["updated"], "metadata": p["metadata"]});
        let rev = self.rng.range(2, 99);
        let base = s(&p, "name");
        let base = base.split(" v").next().unwrap_or_default().to_string();
        p["name"] = json!(format!("{base} v{rev}"));
        p["updated"] = json!(at);
        p["metadata"] = json!({"revision": rev.to_string()});
        self.record(
            Stream::Products,
            &p,
            ChangeKind::Updated,
            "product.updated",
            at,
            Some(prev),
        );
        true
    }

    fn update_price(&mut self, at: i64) -> bool {
        // Prices embedded in subscriptions and invoices are left alone.
        let Some(mut p) = self.pick(Stream::Prices, |d, v| !d.pinned.contains(&s(v, "id"))) else {
            return false;
        };
        let prev = json!({"nickname": p["nickname"], "metadata": p["metadata"]});
        let rev = self.rng.range(2, 99);
        p["nickname"] = json!(format!("Revision {rev}"));
        p["metadata"] = json!({"revision": rev.to_string()});
        self.record(
            Stream::Prices,
            &p,
            ChangeKind::Updated,
            "price.updated",
            at,
            Some(prev),
        );
        true
    }

    fn update_payment_intent(&mut self, at: i64, turn: usize) -> bool {
        let Some(mut pi) = self.pick(Stream::PaymentIntents, |_, v| {
            v["status"] == "requires_payment_method"
        }) else {
            return false;
        };
        let customer = self
            .data
            .col(Stream::Customers)
            .get(&s(&pi, "customer"))
            .map(|o| CustomerRef::of(&o.value()));
        let no_attempt = pi["charges"]["data"].as_array().is_none_or(Vec::is_empty);
        match customer {
            Some(c) if no_attempt && (turn / UPDATE_KINDS).is_multiple_of(2) => {
                self.charge(at, &c, Some(pi));
            }
            _ => {
                let id = s(&pi, "id");
                pi["status"] = json!("canceled");
                pi["canceled_at"] = json!(at);
                pi["cancellation_reason"] = json!("abandoned");
                self.data.put(Stream::PaymentIntents, &pi);
                self.event("payment_intent.canceled", at, &pi, None);
                self.change(
                    Stream::PaymentIntents,
                    &id,
                    ChangeKind::Updated,
                    "payment_intent.canceled",
                    at,
                );
            }
        }
        true
    }

    fn delete(&mut self, at: i64) {
        let turn = self.data.turns[1];
        self.data.turns[1] += 1;
        for attempt in 0..DELETE_KINDS {
            let done = match (turn + attempt) % DELETE_KINDS {
                0 => self.delete_customer(at),
                1 => self.delete_product(at),
                _ => self.delete_price(at),
            };
            if done {
                return;
            }
        }
    }

    fn remove(&mut self, stream: Stream, v: &Value, event_type: &str, at: i64) {
        let id = s(v, "id");
        self.data.col_mut(stream).remove(&id);
        let stub = json!({"deleted": true, "id": id, "object": stream.object()});
        self.data
            .deleted
            .insert(id.clone(), stub.to_string().into());
        self.event(event_type, at, v, None);
        self.change(stream, &id, ChangeKind::Deleted, event_type, at);
    }

    fn delete_customer(&mut self, at: i64) -> bool {
        let Some(v) = self.pick(Stream::Customers, |d, v| !d.pinned.contains(&s(v, "id"))) else {
            return false;
        };
        self.remove(Stream::Customers, &v, "customer.deleted", at);
        true
    }

    fn price_ids_of(&self, product: &str) -> Vec<String> {
        self.data
            .col(Stream::Prices)
            .iter_asc()
            .filter(|o| o.has("product", product))
            .map(|o| o.id.clone())
            .collect()
    }

    fn delete_product(&mut self, at: i64) -> bool {
        let pick = self.pick(Stream::Products, |d, v| {
            let id = s(v, "id");
            d.col(Stream::Prices)
                .iter_asc()
                .filter(|o| o.has("product", &id))
                .all(|o| !d.pinned.contains(&o.id))
        });
        let Some(v) = pick else {
            return false;
        };
        // Like the Dashboard, deleting a product deletes its prices first.
        for price_id in self.price_ids_of(&s(&v, "id")) {
            if let Some(p) = self
                .data
                .col(Stream::Prices)
                .get(&price_id)
                .map(|o| o.value())
            {
                self.remove(Stream::Prices, &p, "price.deleted", at);
            }
        }
        self.remove(Stream::Products, &v, "product.deleted", at);
        true
    }

    fn delete_price(&mut self, at: i64) -> bool {
        let Some(v) = self.pick(Stream::Prices, |d, v| !d.pinned.contains(&s(v, "id"))) else {
            return false;
        };
        self.remove(Stream::Prices, &v, "price.deleted", at);
        true
    }
}

/// Ids of the platform's connected accounts, which table-driven resources reference.
fn lock_registry_accounts(inner: &Inner) -> Vec<String> {
    super::lock(&inner.registry)
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .collect()
}

/// Updates the `count` oldest connected accounts linked in `g`'s mode (their
/// `metadata`), each with its `account.updated`: an event of the account itself, so in
/// `owned`, for its own events list, with its `account` attribute.
fn update_accounts(
    inner: &Inner,
    g: &Gen<'_>,
    rng: &mut Rng,
    count: usize,
    owned: &mut Vec<(String, Value)>,
    at: &mut impl FnMut() -> i64,
) -> Vec<Change> {
    let mut reg = super::lock(&inner.registry);
    let oldest: Vec<String> = reg
        .linked_sorted(g.livemode)
        .iter()
        .rev()
        .take(count)
        .map(|a| a.id.clone())
        .collect();
    let mut changes = Vec::new();
    for id in oldest {
        let Some(entry) = reg.accounts.iter_mut().find(|a| a.id == id) else {
            continue;
        };
        let t = at();
        let previous = json!({"metadata": entry.to_value(g.fx)["metadata"]});
        entry.changed_at = Some(t);
        let mut e = g.event(
            rng,
            "account.updated",
            t,
            &entry.to_value(g.fx),
            Some(previous),
            false,
        );
        e["account"] = json!(id);
        owned.push((id.clone(), e));
        changes.push(Change {
            stream: "accounts".to_owned(),
            id,
            kind: ChangeKind::Updated,
            event_type: "account.updated".to_owned(),
            at: t,
        });
    }
    changes
}

/// Puts each event of `owned` into its connected account's events (in `livemode`'s
/// data), where `Stripe-Account: <account>` lists them and the platform's list does not.
fn deliver(inner: &Inner, livemode: bool, owned: Vec<(String, Value)>) {
    for (account, event) in owned {
        let scope = Scope {
            account: Some(account),
            livemode,
        };
        if let Some(lock) = inner.scope_cell(&scope).as_ref().and_then(|c| c.get()) {
            write(lock).put(Stream::Events, &event);
        }
    }
}
