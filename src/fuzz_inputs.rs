//! Property tests of the input parsers: arbitrary JSON (and arbitrary text) as the
//! config, the catalog and the state never panics, and a config error never carries
//! the key, wherever in the config the key was put.

use proptest::prelude::*;
use serde_json::Value;

const KEY: &str = "sk_test_fuzzABCDEFGH12345678";

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,20}".prop_map(Value::String),
        Just(Value::String(KEY.to_owned())),
        prop_oneof![
            "customers",
            "charges",
            "incremental",
            "full_refresh",
            "STREAM",
            "acct_1",
            "all"
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keys = prop_oneof![
            "[a-z_]{1,12}",
            Just("client_secret".to_owned()),
            Just("streams".to_owned()),
            Just("stream".to_owned()),
            Just("name".to_owned()),
            Just("sync_mode".to_owned()),
            Just("stream_state".to_owned()),
            Just("stream_descriptor".to_owned()),
            Just("type".to_owned()),
            Just("updated".to_owned()),
            Just("created".to_owned()),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A config that is valid but for one field set to an arbitrary value.
fn config() -> impl Strategy<Value = Value> {
    let fields = prop_oneof![
        "client_secret",
        "account_id",
        "connected_accounts",
        "mode",
        "start_date",
        "lookback_window_days",
        "slice_range",
        "num_workers",
        "call_rate_limit",
        "api_base",
        "stripe_version",
        "request_timeout_secs",
        "event_settle_secs",
    ];
    (fields, json()).prop_map(|(field, value)| {
        let mut config = serde_json::json!({"client_secret": KEY});
        config[field] = value;
        config
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics_nor_leaks_the_key(config in config()) {
        if let Err(err) = crate::config::Config::from_json(&config.to_string()) {
            let shown = crate::secret::redact_secrets(&err.to_string());
            prop_assert!(!shown.contains(KEY), "{shown}");
            prop_assert!(!shown.contains("fuzzABCDEFGH1234"), "{shown}");
        }
    }

    #[test]
    fn arbitrary_json_as_config_catalog_or_state_never_panics(value in json()) {
        let text = value.to_string();
        if let Err(err) = crate::config::Config::from_json(&text) {
            prop_assert!(!crate::secret::redact_secrets(&err.to_string()).contains(KEY));
        }
        let _catalog = crate::streams::catalog::parse(&text);
        let _state = crate::sync::state::InputState::parse(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _config = crate::config::Config::from_json(&text);
        let _catalog = crate::streams::catalog::parse(&text);
        let _state = crate::sync::state::InputState::parse(&text);
    }
}
