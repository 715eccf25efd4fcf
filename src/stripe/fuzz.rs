//! Property tests of the client's answer handling: any status, headers and bytes as
//! Stripe's answer never panic, and no key echoed in an answer reaches an error.

use proptest::prelude::*;

use super::*;

const KEY: &str = "sk_live_fuzzABCDEFGH12345678";

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        // JSON-ish: Stripe's shapes, broken or echoing the key.
        "[ -~]{0,200}".prop_map(|s| s.into_bytes()),
        ("[ -~]{0,40}", any::<bool>(), 0usize..3).prop_map(|(msg, more, n)| {
            let data: Vec<String> = (0..n).map(|i| format!("{{\"id\":\"x{i}\"}}")).collect();
            format!(
                "{{\"error\":{{\"message\":\"{msg} {KEY}\",\"code\":\"account_invalid\"}},\"data\":[{}],\"has_more\":{more}}}",
                data.join(",")
            )
            .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_answer_is_handled_without_a_panic_or_the_key(
        status in 100u16..600,
        should_retry in proptest::option::of(prop_oneof!["true", "false", "[ -~]{0,8}"]),
        body in body(),
        list in any::<bool>(),
    ) {
        if (200..300).contains(&status) {
            let checked = if list {
                index_list("/v1/x", bytes::Bytes::from(body.clone())).err()
            } else {
                check_body("/v1/x", &body)
            };
            match checked {
                Some(Attempt::Fail(err)) => prop_assert!(!err.to_string().contains(KEY)),
                Some(Attempt::Retry { why, .. }) => prop_assert!(!why.contains(KEY)),
                Some(Attempt::Done(_)) | None => {}
            }
            if let Ok(page) = Page::try_new("/v1/x", bytes::Bytes::from(body.clone())) {
                let parsed = page.parse().unwrap();
                // A page the sync is given always has a cursor to go on from.
                prop_assert!(!parsed.has_more || !parsed.data.is_empty());
            }
        } else {
            let outcome = classify_error(
                "/v1/x",
                Some("acct_1"),
                status,
                should_retry.as_deref(),
                None,
                "req_1".into(),
                &body,
            );
            match outcome {
                Attempt::Fail(err) => prop_assert!(!err.to_string().contains(KEY), "{err}"),
                Attempt::Retry { why, .. } => prop_assert!(!why.contains(KEY), "{why}"),
                Attempt::Done(_) => prop_assert!(false, "an error status is never done"),
            }
        }
    }
}
