//! Tests of the emulator as a whole: objects and pages against Stripe's OpenAPI spec, the
//! routes' parameters against the spec, pagination, filters, errors, events after clock
//! advances, authentication, Connect and OAuth, faults and the request log (over HTTP with
//! reqwest against `Emulator::start`).
use std::collections::{HashMap, HashSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const SPEC: &str = include_str!("../reference/stripe-openapi/spec3.trimmed.json");
const NOW: i64 = 1_700_000_000;
const STREAMS: [&str; 12] = [
    "customers",
    "charges",
    "payment_intents",
    "refunds",
    "disputes",
    "products",
    "prices",
    "balance_transactions",
    "events",
    "invoices",
    "subscriptions",
    "payouts",
];

fn config(size: usize) -> Config {
    Config {
        size,
        now: Some(NOW),
        frozen_clock: true,
        connected_accounts: 2,
        ..Config::default()
    }
}

fn test_scope() -> Scope {
    Scope::platform_test()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Resp {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn get_with(run: &Running, key: Option<&str>, account: Option<&str>, path: &str) -> Resp {
    let mut req = client().get(format!("{}{}", run.base_url(), path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(a) = account {
        req = req.header("Stripe-Account", a);
    }
    // As the connector does: endpoints newer than the default version get theirs.
    if let Some(version) = version_for(path) {
        req = req.header("Stripe-Version", version);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(run: &Running, path: &str) -> Resp {
    get_with(run, Some(DEFAULT_TEST_KEY), None, path).await
}

fn ids_of(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// Walks all pages forward; returns the ids and every page body.
async fn walk(
    run: &Running,
    key: &str,
    account: Option<&str>,
    path: &str,
    limit: usize,
) -> (Vec<String>, Vec<Value>) {
    let mut ids = Vec::new();
    let mut pages = Vec::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&starting_after={c}"));
        }
        let r = get_with(run, Some(key), account, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        let page = ids_of(&r.body);
        assert!(page.len() <= limit);
        let more = r.body["has_more"].as_bool().unwrap();
        ids.extend(page.iter().cloned());
        pages.push(r.body);
        if !more {
            break;
        }
        assert!(!page.is_empty());
        cursor = page.last().cloned();
    }
    (ids, pages)
}

fn assert_stripe_error(r: &Resp, status: StatusCode, kind: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["type"], kind, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

// ---------- OpenAPI schemas ----------

/// OpenAPI 3.0 → JSON Schema: `nullable` becomes `anyOf [.., null]`, refs point to
/// `definitions`.
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            let mut nullable = false;
            for (k, x) in m {
                match k.as_str() {
                    "nullable" => nullable = x == &Value::Bool(true),
                    "$ref" => {
                        let r = x
                            .as_str()
                            .unwrap()
                            .replace("#/components/schemas/", "#/definitions/");
                        out.insert(k.clone(), Value::String(r));
                    }
                    _ => {
                        out.insert(k.clone(), convert(x));
                    }
                }
            }
            let converted = Value::Object(out);
            if nullable {
                json!({"anyOf": [converted, {"type": "null"}]})
            } else {
                converted
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(convert).collect()),
        other => other.clone(),
    }
}

struct Schemas {
    spec: Value,
    defs: Value,
    cache: HashMap<String, jsonschema::Validator>,
}

impl Schemas {
    fn new() -> Schemas {
        let spec: Value = serde_json::from_str(SPEC).unwrap();
        let defs = convert(&spec["components"]["schemas"]);
        Schemas {
            spec,
            defs,
            cache: HashMap::new(),
        }
    }

    fn validator(
        &mut self,
        key: &str,
        schema: impl FnOnce(&Value) -> Value,
    ) -> &jsonschema::Validator {
        if !self.cache.contains_key(key) {
            let mut root = schema(&self.spec);
            root["definitions"] = self.defs.clone();
            let v = jsonschema::draft7::new(&root).unwrap();
            self.cache.insert(key.to_string(), v);
        }
        &self.cache[key]
    }

    fn check_object(&mut self, name: &str, value: &Value) {
        let v = self.validator(name, |_| json!({"$ref": format!("#/definitions/{name}")}));
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name} {}: {errors:?}", value["id"]);
    }

    fn check_page(&mut self, path: &str, page: &Value) {
        let p = path.to_string();
        let v = self.validator(path, |spec| {
            convert(&spec["paths"][&p]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
        });
        let errors: Vec<String> = v
            .iter_errors(page)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_object_validates_against_the_spec() {
    let run = Emulator::start(Config {
        golden: true,
        ..config(20)
    })
    .await
    .unwrap();
    let emu = run.emulator().clone();
    let connected = emu.connected_account_ids()[0].clone();
    // Some changes first, so advance-made objects are checked too.
    for (account, livemode) in [(None, false), (Some(connected.clone()), false)] {
        emu.advance(&Advance {
            seconds: 600,
            creates: 4,
            updates: 12,
            deletes: 3,
            resources: 2,
            account,
            livemode,
        });
    }
    let mut schemas = Schemas::new();
    let scopes = [
        (DEFAULT_TEST_KEY, None),
        (DEFAULT_LIVE_KEY, None),
        (DEFAULT_TEST_KEY, Some(connected.as_str())),
    ];
    for (key, account) in scopes {
        for (path, _) in list_routes() {
            if path == "/v1/account" || path == "/v1/balance" {
                let r = get_with(&run, Some(key), account, path).await;
                assert_eq!(r.status, StatusCode::OK);
                schemas.check_page(path, &r.body);
                continue;
            }
            if path == "/v1/accounts" && account.is_some() {
                continue;
            }
            if super::children::serves(path) {
                // Child lists, one per parent: tests/it/children.rs walks them.
                continue;
            }
            if path.starts_with("/v1/issuing/") && account.is_some() {
                // Connected accounts here do not use Issuing: Stripe's 400 instead.
                let r = get_with(&run, Some(key), account, path).await;
                assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
                let message = r.body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("is not set up to use Issuing"),
                    "{message}"
                );
                continue;
            }
            let (ids, pages) = walk(&run, key, account, path, 100).await;
            if path != "/v1/accounts" {
                assert!(!ids.is_empty(), "{path} is empty");
            }
            for page in &pages {
                schemas.check_page(path, page);
                for obj in page["data"].as_array().unwrap() {
                    let name = obj["object"].as_str().unwrap();
                    schemas.check_object(name, obj);
                    assert_eq!(
                        obj["livemode"].as_bool().unwrap_or(key == DEFAULT_LIVE_KEY),
                        key == DEFAULT_LIVE_KEY
                    );
                    if name == "event" {
                        let inner = &obj["data"]["object"];
                        schemas.check_object(inner["object"].as_str().unwrap(), inner);
                    }
                }
            }
        }
    }
}

/// Every child row kept apart from its parent (`children::KIDS`), before and after an
/// advance, on the platform and a connected account: each parent's child list walks (two
/// per page) to exactly the emulator's children of it, newest first, every page and
/// object valid against the spec, each child pointing at its parent; a parent that
/// embeds its children embeds the list's first page as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_lists_validate_and_point_at_their_parent() {
    use super::kids::KIDS;
    let run = Emulator::start(config(40)).await.unwrap();
    let emu = run.emulator().clone();
    let connected = emu.connected_account_ids()[0].clone();
    let mut schemas = Schemas::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for round in 0..2 {
        for account in [None, Some(connected.as_str())] {
            let scope = Scope {
                account: account.map(str::to_owned),
                livemode: false,
            };
            if round == 1 {
                emu.advance(&Advance {
                    seconds: 600,
                    resources: 2,
                    account: scope.account.clone(),
                    ..Advance::default()
                });
            }
            for k in KIDS {
                let parent_stream = match k.parent {
                    resources::Src::Stream(s) => s.name(),
                    resources::Src::Resource(name) => name,
                    resources::Src::Account => "accounts",
                    resources::Src::Child(name) => name,
                };
                for parent in emu.ids(&scope, parent_stream) {
                    let mut path = match k.parent_param {
                        Some(name) => format!("{}?{name}={parent}", k.route),
                        None => {
                            let open = k.route.find('{').unwrap();
                            let close = k.route.find('}').unwrap();
                            format!("{}{parent}{}", &k.route[..open], &k.route[close + 1..])
                        }
                    };
                    // Rows sharing a route (external accounts) by their filter.
                    if let Some((name, value)) = k.filter {
                        let sep = if path.contains('?') { '&' } else { '?' };
                        path = format!("{path}{sep}{name}={value}");
                    }
                    let (ids, pages) = walk(&run, DEFAULT_TEST_KEY, account, &path, 2).await;
                    let expected = emu.child_ids(&scope, k.stream, &parent).unwrap();
                    assert_eq!(ids, expected, "{path}");
                    *seen.entry(k.stream).or_default() += ids.len();
                    let spec_path = k.route;
                    for page in &pages {
                        schemas.check_page(spec_path, page);
                        for child in page["data"].as_array().unwrap() {
                            assert_eq!(child["object"], k.object, "{path}");
                            schemas.check_object(k.object, child);
                            if let Some(field) = k.points_at {
                                assert_eq!(child.pointer(field).unwrap(), parent.as_str());
                            }
                        }
                    }
                    let Some(field) = k.embedded else { continue };
                    let object = emu.object(&scope, parent_stream, &parent).unwrap();
                    let embedded = &object[field];
                    let first: Vec<String> = expected.iter().take(10).cloned().collect();
                    assert_eq!(ids_of(embedded), first, "{parent}: the embedded page");
                    assert_eq!(embedded["has_more"], expected.len() > 10);
                }
            }
        }
    }
    for k in KIDS {
        assert!(
            seen.get(k.stream).copied().unwrap_or(0) > 0,
            "{} has children",
            k.stream
        );
    }
    // A parent that does not exist: Stripe's 404, naming the parameter.
    let r = get(&run, "/v1/setup_attempts?setup_intent=seti_missing").await;
    assert_stripe_error(&r, StatusCode::NOT_FOUND, "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "setup_intent");
    let r = get(&run, "/v1/setup_attempts").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = get(&run, "/v1/transfers/tr_missing/reversals").await;
    assert_stripe_error(&r, StatusCode::NOT_FOUND, "invalid_request_error");
}

/// The child routes whose parameters changed after the 2022 spec answer an older
/// `Stripe-Version` as that spec says (a customer's payment methods need `type`, a
/// connected account's external accounts know no `object`), and the newer one as the
/// supplement says; a `type` or `object` filter keeps only the children it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_routes_follow_the_stripe_version_they_are_asked_in() {
    let run = Emulator::start(config(40)).await.unwrap();
    let emu = run.emulator().clone();
    let scope = Scope::platform_test();
    let customer = emu
        .ids(&scope, "customers")
        .into_iter()
        .find(|c| {
            emu.child_ids(&scope, "payment_methods", c)
                .is_some_and(|ids| !ids.is_empty())
        })
        .expect("a customer with payment methods");
    let account = emu.connected_account_ids()[0].clone();
    let old = |path: String| {
        let req = client()
            .get(format!("{}{path}", run.base_url()))
            .bearer_auth(DEFAULT_TEST_KEY)
            .header("Stripe-Version", "2022-04-12");
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = old(format!("/v1/customers/{customer}/payment_methods")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "type");
    let (status, body) = old(format!(
        "/v1/customers/{customer}/payment_methods?type=card"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = old(format!(
        "/v1/accounts/{account}/external_accounts?object=card"
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "object");
    // The newer version (`get` sends it): no `type` lists every type; a type filters.
    let all = get(&run, &format!("/v1/customers/{customer}/payment_methods")).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        ids_of(&all.body),
        emu.child_ids(&scope, "payment_methods", &customer).unwrap()
    );
    let none = get(
        &run,
        &format!("/v1/customers/{customer}/payment_methods?type=sepa_debit"),
    )
    .await;
    assert!(ids_of(&none.body).is_empty(), "{}", none.body);
    // External accounts: each object type by its filter; the emulator needs one.
    for (object, stream) in [
        ("bank_account", "external_account_bank_accounts"),
        ("card", "external_account_cards"),
    ] {
        let r = get(
            &run,
            &format!("/v1/accounts/{account}/external_accounts?object={object}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            ids_of(&r.body),
            emu.child_ids(&scope, stream, &account).unwrap()
        );
        assert!(
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["object"] == object)
        );
    }
    let r = get(&run, &format!("/v1/accounts/{account}/external_accounts")).await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "object");
}

#[test]
fn list_routes_accept_only_parameters_the_spec_lists() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    let routes = list_routes();
    for (path, params) in &routes {
        let op = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} not in spec"))["get"];
        let names: HashSet<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in params {
            let base = p.split('[').next().unwrap();
            assert!(
                names.contains(base),
                "{path} accepts {p}, the spec does not list it"
            );
        }
    }
    // Every path the spec trims to is served.
    for path in paths.keys() {
        assert!(routes.iter().any(|(p, _)| p == path), "{path} not served");
    }
}

// ---------- pagination and filters ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walks_every_id_once_newest_first() {
    let run = Emulator::start(config(60)).await.unwrap();
    let emu = run.emulator();
    for stream in ["charges", "customers", "events", "balance_transactions"] {
        let expected = emu.ids(&test_scope(), stream);
        assert!(expected.len() > 7, "{stream}");
        let created: Vec<i64> = expected
            .iter()
            .map(|id| {
                emu.object(&test_scope(), stream, id).unwrap()["created"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert!(
            created.windows(2).all(|w| w[0] >= w[1]),
            "{stream} not newest first"
        );
        for limit in [1, 7, 100] {
            let (ids, _) = walk(
                &run,
                DEFAULT_TEST_KEY,
                None,
                &format!("/v1/{stream}"),
                limit,
            )
            .await;
            assert_eq!(ids, expected, "{stream} limit {limit}");
        }
        // Walk back from the oldest with ending_before.
        let mut back: Vec<String> = vec![expected.last().unwrap().clone()];
        loop {
            let r = get(
                &run,
                &format!(
                    "/v1/{stream}?limit=7&ending_before={}",
                    back.last().unwrap()
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            let page = ids_of(&r.body);
            back.extend(page.iter().rev().cloned());
            if !r.body["has_more"].as_bool().unwrap() {
                break;
            }
        }
        back.reverse();
        assert_eq!(back, expected, "{stream} ending_before");
        // Created filters.
        let pivot = created[created.len() / 2];
        type Keep = fn(i64, i64) -> bool;
        let ops: [(&str, Keep); 5] = [
            ("created", |c, p| c == p),
            ("created[gt]", |c, p| c > p),
            ("created[gte]", |c, p| c >= p),
            ("created[lt]", |c, p| c < p),
            ("created[lte]", |c, p| c <= p),
        ];
        for (op, keep) in ops {
            let want: Vec<String> = expected
                .iter()
                .zip(&created)
                .filter(|(_, c)| keep(**c, pivot))
                .map(|(id, _)| id.clone())
                .collect();
            let (ids, _) = walk(
                &run,
                DEFAULT_TEST_KEY,
                None,
                &format!("/v1/{stream}?{op}={pivot}"),
                5,
            )
            .await;
            assert_eq!(ids, want, "{stream} {op}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_expansions() {
    let run = Emulator::start(config(60)).await.unwrap();
    let emu = run.emulator();
    let scope = test_scope();
    let charge_ids = emu.ids(&scope, "charges");
    let charge = emu.object(&scope, "charges", &charge_ids[3]).unwrap();
    let customer = charge["customer"].as_str().unwrap();
    let (ids, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        &format!("/v1/charges?customer={customer}"),
        100,
    )
    .await;
    let want: Vec<String> = charge_ids
        .iter()
        .filter(|id| emu.object(&scope, "charges", id).unwrap()["customer"] == customer)
        .cloned()
        .collect();
    assert_eq!(ids, want);

    let r = get(&run, "/v1/charges?limit=5&expand[]=data.customer&expand[]=data.balance_transaction&expand[]=data.refunds").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for c in r.body["data"].as_array().unwrap() {
        assert_eq!(c["customer"]["object"], "customer");
        if !c["balance_transaction"].is_null() {
            assert_eq!(c["balance_transaction"]["object"], "balance_transaction");
        }
    }
    let r = get(&run, "/v1/refunds?limit=3&expand[]=data.charge.customer").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"][0]["charge"]["customer"]["object"],
        "customer"
    );
    let r = get(&run, "/v1/charges?expand[]=data.foo").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = get(&run, "/v1/charges?expand[]=customer").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");

    let all = emu.ids(&scope, "subscriptions");
    let (default_ids, pages) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/subscriptions", 100).await;
    let (all_ids, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        "/v1/subscriptions?status=all",
        100,
    )
    .await;
    assert_eq!(all_ids, all);
    assert!(pages.iter().all(|p| {
        p["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "canceled")
    }));
    assert!(default_ids.len() <= all_ids.len());

    let r = get(&run, "/v1/prices?active=maybe").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let prod = emu.ids(&scope, "products")[0].clone();
    let (prices, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        &format!("/v1/prices?product={prod}"),
        100,
    )
    .await;
    assert_eq!(prices.len(), 2);
    let (bts, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        "/v1/balance_transactions?type=payout",
        100,
    )
    .await;
    assert_eq!(bts.len(), emu.ids(&scope, "payouts").len());
    let payout = emu.ids(&scope, "payouts").last().unwrap().clone();
    let (paid, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        &format!("/v1/balance_transactions?payout={payout}"),
        100,
    )
    .await;
    assert!(!paid.is_empty());

    let (custs, _) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        "/v1/events?type=customer.*",
        100,
    )
    .await;
    for id in &custs {
        let t = emu.object(&scope, "events", id).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(t.starts_with("customer."), "{t}");
    }
    let r = get(&run, &format!("/v1/charges/{}", charge_ids[0])).await;
    assert_eq!(r.body["id"], charge_ids[0].as_str());
    let r = get(&run, "/v1/charges/ch_nope").await;
    assert_stripe_error(&r, StatusCode::NOT_FOUND, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "resource_missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_errors_are_stripe_shaped() {
    let run = Emulator::start(config(10)).await.unwrap();
    for limit in ["0", "101"] {
        let r = get(&run, &format!("/v1/customers?limit={limit}")).await;
        assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
        assert_eq!(r.body["error"]["param"], "limit");
    }
    let r = get(&run, "/v1/customers?foo=bar").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "parameter_unknown");
    assert_eq!(r.body["error"]["param"], "foo");
    assert_eq!(
        r.body["error"]["message"],
        "Received unknown parameter: foo"
    );
    let r = get(&run, "/v1/customers?payment_intent=pi_x").await;
    assert_eq!(r.body["error"]["code"], "parameter_unknown");
    let r = get(
        &run,
        "/v1/customers?starting_after=cus_a&ending_before=cus_b",
    )
    .await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = get(&run, "/v1/customers?starting_after=cus_doesnotexist").await;
    assert_stripe_error(&r, StatusCode::NOT_FOUND, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert_eq!(r.body["error"]["param"], "starting_after");
    assert_eq!(
        r.body["error"]["message"],
        "No such customer: 'cus_doesnotexist'"
    );
    let r = get(&run, "/v1/customers?created[foo]=1").await;
    assert_eq!(r.body["error"]["code"], "parameter_unknown");
    let r = get(&run, "/v1/customers?created[gte]=abc").await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = get(&run, "/v1/nothing").await;
    assert_stripe_error(&r, StatusCode::NOT_FOUND, "invalid_request_error");
    let types: String = (0..21).map(|i| format!("&types[]=customer.t{i}")).collect();
    let r = get(&run, &format!("/v1/events?limit=3{types}")).await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = get(
        &run,
        "/v1/events?type=customer.created&types[]=charge.succeeded",
    )
    .await;
    assert_stripe_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    let r = client()
        .post(format!("{}/v1/customers", run.base_url()))
        .bearer_auth(DEFAULT_TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(run.emulator().write_request_count(), 1);
}

// ---------- events and advances ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advance_emits_events_with_objects_after_the_change() {
    let run = Emulator::start(config(40)).await.unwrap();
    let emu = run.emulator();
    let scope = test_scope();
    let old = emu.now();
    let customers_before = emu.ids(&scope, "customers");
    let report = emu.advance(&Advance {
        seconds: 300,
        creates: 4,
        updates: 12,
        deletes: 3,
        ..Advance::default()
    });
    assert_eq!(report.now, old + 300);
    assert_eq!(emu.now(), old + 300);
    let mut last = old;
    for c in &report.changes {
        assert!(c.at > old && c.at < report.now, "{c:?}");
        assert!(c.at >= last);
        last = c.at;
    }
    let kinds: HashSet<&str> = report
        .changes
        .iter()
        .map(|c| c.event_type.as_str())
        .collect();
    for t in [
        "customer.created",
        "charge.succeeded",
        "payment_intent.created",
        "customer.updated",
        "charge.refunded",
        "refund.created",
        "product.updated",
        "customer.deleted",
    ] {
        assert!(kinds.contains(t), "{t} missing from {kinds:?}");
    }
    // Events of the interval, over HTTP.
    let (event_ids, pages) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        &format!("/v1/events?created[gt]={old}&created[lt]={}", report.now),
        100,
    )
    .await;
    let events: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    assert_eq!(event_ids.len(), events.len());
    for c in report.changes.iter().filter(|c| !c.event_type.is_empty()) {
        assert!(
            events.iter().any(|e| e["type"] == c.event_type.as_str()
                && e["data"]["object"]["id"] == c.id.as_str()),
            "no event for {c:?}"
        );
    }
    // The newest event about each surviving object shows its current state (except for
    // objects that changed without an event, like a payment intent whose charge was refunded).
    let silent: HashSet<String> = report
        .changes
        .iter()
        .filter(|c| c.event_type.is_empty())
        .map(|c| c.id.clone())
        .collect();
    let mut seen = HashSet::new();
    for e in &events {
        assert_eq!(e["api_version"], API_VERSION);
        assert_eq!(e["object"], "event");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        let obj = &e["data"]["object"];
        let id = obj["id"].as_str().unwrap().to_string();
        let stream = format!("{}s", obj["object"].as_str().unwrap());
        if !seen.insert(id.clone()) || silent.contains(&id) {
            continue;
        }
        if e["type"].as_str().unwrap().ends_with(".deleted") {
            assert!(emu.object(&scope, &stream, &id).is_none());
            continue;
        }
        if let Some(current) = emu.object(&scope, &stream, &id) {
            assert_eq!(obj, &current, "{}", e["type"]);
        }
        if e["type"].as_str().unwrap().ends_with(".updated") {
            assert!(e["data"]["previous_attributes"].is_object());
        }
    }
    // Deleted customers are gone from lists.
    let customers_after = emu.ids(&scope, "customers");
    let (listed, _) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/customers", 100).await;
    assert_eq!(listed, customers_after);
    for c in report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
    {
        assert!(!emu.ids(&scope, &c.stream).contains(&c.id));
        if c.stream == "customers" {
            assert!(customers_before.contains(&c.id));
            assert!(!listed.contains(&c.id));
        }
    }
    // The Date header follows the clock.
    let r = get(&run, "/v1/customers?limit=1").await;
    assert_eq!(
        r.headers["date"].to_str().unwrap(),
        clock::http_date(report.now)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_30_days_are_gone() {
    let run = Emulator::start(config(40)).await.unwrap();
    let emu = run.emulator();
    let before = emu.ids(&test_scope(), "events");
    assert!(!before.is_empty());
    for id in &before {
        let created = emu.object(&test_scope(), "events", id).unwrap()["created"]
            .as_i64()
            .unwrap();
        assert!(created > NOW - EVENT_RETENTION_SECS && created < NOW);
    }
    let oldest = before.last().unwrap().clone();
    emu.advance(&Advance {
        seconds: 31 * 86_400,
        ..Advance::default()
    });
    assert!(emu.ids(&test_scope(), "events").is_empty());
    let r = get(&run, "/v1/events").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["data"].as_array().unwrap().is_empty());
    let r = get(&run, &format!("/v1/events?starting_after={oldest}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // New changes have events again.
    let report = emu.advance(&Advance {
        seconds: 10,
        creates: 1,
        ..Advance::default()
    });
    let (ids, _) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/events", 100).await;
    assert_eq!(ids, emu.ids(&test_scope(), "events"));
    assert!(ids.len() >= report.changes.len() - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_endpoints_for_scripts() {
    let run = Emulator::start(config(20)).await.unwrap();
    let c = client();
    let report: Value = c
        .post(format!("{}/_emulator/advance", run.base_url()))
        .json(&json!({"seconds": 30, "creates": 2, "updates": 1, "deletes": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["now"], NOW + 30);
    assert!(!report["changes"].as_array().unwrap().is_empty());
    let ids: Vec<String> = c
        .get(format!(
            "{}/_emulator/ids?stream=customers&livemode=false",
            run.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids, run.emulator().ids(&test_scope(), "customers"));
    get(&run, "/v1/charges").await;
    let counts: Value = c
        .get(format!("{}/_emulator/requests", run.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        counts["by_route"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "/v1/charges" && r["count"] == 1)
    );
}

// ---------- auth ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_modes() {
    let run = Emulator::start(config(20)).await.unwrap();
    let r = get_with(&run, None, None, "/v1/charges").await;
    assert_stripe_error(&r, StatusCode::UNAUTHORIZED, "invalid_request_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key.")
    );
    let bad = "sk_test_notarealkeyWXYZ";
    let r = get_with(&run, Some(bad), None, "/v1/charges").await;
    assert_stripe_error(&r, StatusCode::UNAUTHORIZED, "invalid_request_error");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("sk_test_****WXYZ"), "{msg}");
    assert!(!msg.contains(bad));
    // Basic auth with the key as user.
    let r = client()
        .get(format!("{}/v1/charges?limit=2", run.base_url()))
        .basic_auth(DEFAULT_TEST_KEY, Some(""))
        .header("Stripe-Version", "2019-12-03")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["stripe-version"], "2019-12-03");
    assert!(
        r.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(r.headers()["date"].to_str().unwrap(), clock::http_date(NOW));
    // Live key sees live data.
    let test = get(&run, "/v1/charges?limit=5").await;
    let live = get_with(&run, Some(DEFAULT_LIVE_KEY), None, "/v1/charges?limit=5").await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["data"][0]["livemode"], true);
    assert_eq!(test.body["data"][0]["livemode"], false);
    let live_ids: HashSet<String> = ids_of(&live.body).into_iter().collect();
    assert!(ids_of(&test.body).iter().all(|id| !live_ids.contains(id)));
    assert_eq!(
        ids_of(&live.body),
        run.emulator().ids(
            &Scope {
                account: None,
                livemode: true
            },
            "charges"
        )[..5]
            .to_vec()
    );
    // Restricted key.
    let r = get_with(&run, Some(DEFAULT_RESTRICTED_KEY), None, "/v1/disputes").await;
    assert_stripe_error(&r, StatusCode::FORBIDDEN, "invalid_request_error");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("rak_dispute_read") && !msg.contains(DEFAULT_RESTRICTED_KEY),
        "{msg}"
    );
    let r = get_with(&run, Some(DEFAULT_RESTRICTED_KEY), None, "/v1/charges").await;
    assert_eq!(r.status, StatusCode::OK);
}

// ---------- Connect ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_accounts_are_isolated() {
    let run = Emulator::start(config(20)).await.unwrap();
    let emu = run.emulator();
    let accounts = emu.connected_account_ids();
    assert_eq!(accounts.len(), 2);
    let platform = get(&run, "/v1/charges?limit=100").await;
    let mut seen: HashSet<String> = ids_of(&platform.body).into_iter().collect();
    for a in &accounts {
        let scope = Scope {
            account: Some(a.clone()),
            livemode: false,
        };
        let (ids, _) = walk(&run, DEFAULT_TEST_KEY, Some(a), "/v1/charges", 100).await;
        assert_eq!(ids, emu.ids(&scope, "charges"));
        assert_eq!(ids.len(), 10);
        for id in &ids {
            assert!(seen.insert(id.clone()), "{id} shared between accounts");
        }
        let r = get_with(&run, Some(DEFAULT_TEST_KEY), Some(a), "/v1/account").await;
        assert_eq!(r.body["id"], a.as_str());
        let r = get_with(&run, Some(DEFAULT_TEST_KEY), Some(a), "/v1/accounts").await;
        assert_stripe_error(&r, StatusCode::FORBIDDEN, "invalid_request_error");
        let r = get_with(&run, Some(DEFAULT_TEST_KEY), Some(a), "/v1/events?limit=1").await;
        if let Some(e) = r.body["data"].as_array().unwrap().first() {
            assert_eq!(e["account"], a.as_str());
        }
    }
    let r = get(&run, "/v1/account").await;
    assert_eq!(r.body["id"], emu.platform_account_id().as_str());
    let (listed, _) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/accounts", 1).await;
    assert_eq!(listed, emu.ids(&test_scope(), "accounts"));
    assert_eq!(
        listed.iter().cloned().collect::<HashSet<_>>(),
        accounts.iter().cloned().collect()
    );
    let r = get_with(
        &run,
        Some(DEFAULT_TEST_KEY),
        Some("acct_1Unknown0000000"),
        "/v1/charges",
    )
    .await;
    assert_stripe_error(&r, StatusCode::FORBIDDEN, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "account_invalid");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("acct_1Unknown0000000") && msg.contains("sk_test_****form"),
        "{msg}"
    );
    assert!(emu.request_count_for("GET", "/v1/charges", Some(accounts[0].as_str())) >= 1);
}

/// Events about objects a connected account owns (its own `account.updated`, its
/// persons' and external accounts' events) are in that account's events list, listed
/// under `Stripe-Account` with the `account` attribute and valid against the spec, and
/// never in the platform's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_accounts_own_events_are_listed_only_under_its_header() {
    let run = Emulator::start(config(20)).await.unwrap();
    let emu = run.emulator();
    let old = emu.now();
    let report = emu.advance(&Advance {
        seconds: 600,
        resources: 1,
        ..Advance::default()
    });
    let owned: Vec<&Change> = report
        .changes
        .iter()
        .filter(|c| {
            c.event_type == "account.updated"
                || c.event_type.starts_with("person.")
                || c.event_type.starts_with("account.external_account.")
        })
        .collect();
    let kinds: HashSet<&str> = owned.iter().map(|c| c.event_type.as_str()).collect();
    for kind in [
        "account.updated",
        "person.created",
        "person.updated",
        "person.deleted",
        "account.external_account.created",
        "account.external_account.updated",
        "account.external_account.deleted",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    let window = format!("/v1/events?created[gt]={old}&created[lt]={}", report.now);
    let (_, pages) = walk(&run, DEFAULT_TEST_KEY, None, &window, 100).await;
    let platform: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    assert!(!platform.is_empty(), "the platform's own events are there");
    for e in &platform {
        let kind = e["type"].as_str().unwrap();
        assert!(!kinds.contains(kind), "{kind} listed for the platform");
        assert!(e.get("account").is_none(), "{e}");
    }
    let mut schemas = Schemas::new();
    let mut found = 0;
    for account in emu.connected_account_ids() {
        let (_, pages) = walk(&run, DEFAULT_TEST_KEY, Some(&account), &window, 100).await;
        let events: Vec<&Value> = pages
            .iter()
            .flat_map(|p| p["data"].as_array().unwrap())
            .collect();
        for c in owned.iter() {
            let object_account = if c.stream == "accounts" {
                c.id.clone()
            } else {
                // The child's parent: the account it points at.
                let e = events
                    .iter()
                    .chain(platform.iter())
                    .find(|e| e["data"]["object"]["id"] == c.id.as_str());
                match e {
                    Some(e) => e["data"]["object"]["account"].as_str().unwrap().to_owned(),
                    None => continue,
                }
            };
            let listed = events.iter().any(|e| {
                e["type"] == c.event_type.as_str() && e["data"]["object"]["id"] == c.id.as_str()
            });
            assert_eq!(listed, object_account == account, "{c:?} under {account}");
            found += usize::from(listed);
        }
        for page in &pages {
            schemas.check_page("/v1/events", page);
        }
        for e in events
            .iter()
            .filter(|e| kinds.contains(e["type"].as_str().unwrap()))
        {
            assert_eq!(e["account"], account.as_str());
            schemas.check_object("event", e);
            let inner = &e["data"]["object"];
            schemas.check_object(inner["object"].as_str().unwrap(), inner);
        }
    }
    assert_eq!(
        found,
        owned.len(),
        "every owned event is in its account's list"
    );
    // An updated account shows its change, as its event says.
    let updated = owned.iter().find(|c| c.stream == "accounts").unwrap();
    let account = emu.object(&test_scope(), "accounts", &updated.id).unwrap();
    assert_eq!(
        account["metadata"]["emulator_change"],
        updated.at.to_string()
    );
}

/// The card network's update of a payment method: every second update of an advance is
/// a `payment_method.automatically_updated` (no request), the card renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_methods_are_also_updated_automatically() {
    let run = Emulator::start(config(40)).await.unwrap();
    let emu = run.emulator();
    let old = emu.now();
    let report = emu.advance(&Advance {
        seconds: 600,
        resources: 2,
        ..Advance::default()
    });
    let auto = report
        .changes
        .iter()
        .find(|c| c.event_type == "payment_method.automatically_updated")
        .expect("one automatic update");
    assert_eq!(auto.stream, "payment_methods");
    assert_eq!(auto.kind, ChangeKind::Updated);
    let (_, pages) = walk(
        &run,
        DEFAULT_TEST_KEY,
        None,
        &format!("/v1/events?types[]=payment_method.automatically_updated&created[gt]={old}"),
        100,
    )
    .await;
    let events: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    let e = events[0];
    assert_eq!(e["data"]["object"]["id"], auto.id.as_str());
    assert!(e["request"]["id"].is_null(), "no request made it");
    let before = e["data"]["previous_attributes"]["card"]["exp_year"]
        .as_i64()
        .unwrap();
    assert_eq!(e["data"]["object"]["card"]["exp_year"], before + 1);
    let mut schemas = Schemas::new();
    schemas.check_object("event", e);
    schemas.check_object("payment_method", &e["data"]["object"]);
}

fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_round_trip_and_deauthorize() {
    let run = Emulator::start(config(20)).await.unwrap();
    let emu = run.emulator();
    let c = client();
    let base = run.base_url();
    let authorize = |client_id: &str, scope: &str| {
        format!(
            "{base}/oauth/authorize?response_type=code&client_id={client_id}&scope={scope}&state=st%2B1&redirect_uri=https%3A%2F%2Fplatform.example%2Fcb"
        )
    };
    let r = c
        .get(authorize(OAUTH_CLIENT_ID_TEST, "read_only"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("https://platform.example/cb?"));
    let q = query_of(&loc);
    assert_eq!(q["state"], "st+1");
    assert_eq!(q["scope"], "read_only");
    let code = q["code"].clone();
    assert!(code.starts_with("ac_"));
    // Bad client id and bad scope.
    for (cid, scope) in [
        ("ca_unknown", "read_only"),
        (OAUTH_CLIENT_ID_TEST, "everything"),
    ] {
        let r = c.get(authorize(cid, scope)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let q = query_of(r.headers()["location"].to_str().unwrap());
        assert_eq!(q["error"], "invalid_request");
        assert!(!q.contains_key("code"));
    }
    let r = c
        .get(format!(
            "{base}/oauth/authorize?client_id=ca_unknown&response_type=code"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Token exchange.
    let token = |code: String| {
        c.post(format!("{base}/oauth/token"))
            .bearer_auth(DEFAULT_TEST_KEY)
            .form(&[
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
            ])
            .send()
    };
    let r = token(code.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["livemode"], false);
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["scope"], "read_only");
    assert!(t["refresh_token"].as_str().unwrap().starts_with("rt_"));
    assert!(
        t["stripe_publishable_key"]
            .as_str()
            .unwrap()
            .starts_with("pk_test_")
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    assert!(access.starts_with("sk_test_"));
    let account = t["stripe_user_id"].as_str().unwrap().to_string();
    assert!(emu.connected_account_ids().contains(&account));
    let scope = Scope {
        account: Some(account.clone()),
        livemode: false,
    };
    let (ids, _) = walk(&run, &access, None, "/v1/charges", 100).await;
    assert_eq!(ids, emu.ids(&scope, "charges"));
    assert!(!ids.is_empty());
    let (ids2, _) = walk(&run, DEFAULT_TEST_KEY, Some(&account), "/v1/charges", 100).await;
    assert_eq!(ids, ids2);
    let (listed, _) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/accounts", 100).await;
    assert!(listed.contains(&account));
    // A used code is invalid.
    let r = token(code.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(
        e["error_description"],
        format!("Authorization code does not exist: {code}")
    );
    // Deauthorize.
    let r = c
        .post(format!("{base}/oauth/deauthorize"))
        .bearer_auth(DEFAULT_TEST_KEY)
        .form(&[
            ("client_id", OAUTH_CLIENT_ID_TEST),
            ("stripe_user_id", account.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["stripe_user_id"], account.as_str());
    let r = get_with(&run, Some(DEFAULT_TEST_KEY), Some(&account), "/v1/charges").await;
    assert_stripe_error(&r, StatusCode::FORBIDDEN, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "account_invalid");
    let r = get_with(&run, Some(&access), None, "/v1/charges").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (listed, _) = walk(&run, DEFAULT_TEST_KEY, None, "/v1/accounts", 100).await;
    assert!(!listed.contains(&account));
    assert!(!emu.connected_account_ids().contains(&account));
    // Deauthorizing a pre-linked account works the same way.
    let first = emu.connected_account_ids()[0].clone();
    let r = c
        .post(format!("{base}/oauth/deauthorize"))
        .form(&[
            ("client_id", OAUTH_CLIENT_ID_TEST),
            ("stripe_user_id", first.as_str()),
            ("client_secret", DEFAULT_TEST_KEY),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get_with(&run, Some(DEFAULT_TEST_KEY), Some(&first), "/v1/customers").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Live mode still linked.
    let r = get_with(&run, Some(DEFAULT_LIVE_KEY), Some(&first), "/v1/customers").await;
    assert_eq!(r.status, StatusCode::OK);
}

// ---------- faults and the request log ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_request_log() {
    let run = Emulator::start(config(20)).await.unwrap();
    let emu = run.emulator();
    let account = emu.connected_account_ids()[0].clone();
    emu.set_faults(Faults {
        rate_limit_per_sec: Some(2.0),
        ..Faults::default()
    });
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&run, "/v1/customers?limit=1").await);
    }
    assert_eq!(statuses[0].status, StatusCode::OK);
    let limited = statuses
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("no 429");
    assert_eq!(limited.body["error"]["code"], "rate_limit");
    assert_eq!(limited.body["error"]["type"], "invalid_request_error");
    assert_eq!(limited.headers["stripe-should-retry"], "true");
    // Another account has its own bucket.
    let r = get_with(
        &run,
        Some(DEFAULT_TEST_KEY),
        Some(&account),
        "/v1/customers?limit=1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    emu.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let r = get(&run, "/v1/charges").await;
    assert_stripe_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "api_error");

    emu.set_faults(Faults {
        too_many_requests_rate: 1.0,
        ..Faults::default()
    });
    let r = get(&run, "/v1/charges").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    emu.set_faults(Faults {
        truncate_rate: 1.0,
        ..Faults::default()
    });
    let resp = client()
        .get(format!("{}/v1/charges?limit=50", run.base_url()))
        .bearer_auth(DEFAULT_TEST_KEY)
        .send()
        .await;
    let failed = match resp {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "truncated body read completely");

    emu.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let resp = client()
        .get(format!("{}/v1/charges", run.base_url()))
        .bearer_auth(DEFAULT_TEST_KEY)
        .send()
        .await;
    let failed = match resp {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "dropped request got a response");

    emu.set_faults(Faults::default());
    let r = get(&run, "/v1/charges?limit=1").await;
    assert_eq!(r.status, StatusCode::OK);

    let log = emu.request_log();
    assert_eq!(emu.request_count("GET", "/v1/customers"), 5);
    assert_eq!(
        emu.request_count_for("GET", "/v1/customers", Some(&account)),
        1
    );
    assert_eq!(emu.request_count_for("GET", "/v1/customers", None), 4);
    assert_eq!(emu.request_count("GET", "/v1/charges"), 5);
    assert!(
        log.iter().any(|r| r.status == 0),
        "dropped request not logged"
    );
    assert!(log.iter().any(|r| r.query == "limit=50"));
    assert_eq!(emu.write_request_count(), 0);
}

#[test]
fn same_config_same_data() {
    let a = Emulator::new(config(30));
    let b = Emulator::new(config(30));
    let c = Emulator::new(Config {
        seed: 7,
        ..config(30)
    });
    assert_eq!(a.platform_account_id(), b.platform_account_id());
    assert_ne!(a.platform_account_id(), c.platform_account_id());
    for s in STREAMS {
        let ia = a.ids(&test_scope(), s);
        assert_eq!(ia, b.ids(&test_scope(), s), "{s}");
        assert_ne!(ia, c.ids(&test_scope(), s), "{s}");
        for id in ia.iter().take(5) {
            assert_eq!(
                a.object(&test_scope(), s, id),
                b.object(&test_scope(), s, id)
            );
        }
    }
    // At least a few of every kind even for a tiny size.
    let tiny = Emulator::new(config(10));
    for s in STREAMS {
        assert!(tiny.ids(&test_scope(), s).len() >= 2, "{s}");
    }
}

#[test]
fn default_size_builds_quickly_enough_for_tests() {
    let emu = Emulator::new(Config {
        now: Some(NOW),
        frozen_clock: true,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(emu.ids(&test_scope(), "charges").len(), 1000);
    eprintln!("size 1000 built in {:?}", started.elapsed());
}

/// The benchmark's data shapes: `recent_share` puts that share of the objects in the last
/// 30 days, `large_objects` builds them from Stripe's 2026 examples (a charge ≈ 3 KB).
#[test]
fn data_shapes_recent_share_and_large_objects() {
    let charges = |config: Config| {
        let emu = Emulator::new(config);
        let scope = test_scope();
        emu.ids(&scope, "charges")
            .iter()
            .map(|id| emu.object(&scope, "charges", id).unwrap())
            .collect::<Vec<Value>>()
    };
    let recent = |objects: &[Value]| {
        objects
            .iter()
            .filter(|o| o["created"].as_i64().unwrap() >= NOW - 30 * 86_400)
            .count() as f64
            / objects.len() as f64
    };
    let even = charges(config(400));
    let young = charges(Config {
        recent_share: 0.9,
        ..config(400)
    });
    assert!(recent(&even) < 0.1, "even: {}", recent(&even));
    assert!(recent(&young) > 0.85, "young: {}", recent(&young));
    let size = |objects: &[Value]| {
        objects.iter().map(|o| o.to_string().len()).sum::<usize>() / objects.len()
    };
    let large = charges(Config {
        large_objects: true,
        ..config(50)
    });
    assert!(size(&large) > 3_000, "2026 charge: {} bytes", size(&large));
    assert!(size(&large) > size(&even) * 3 / 2);
}
