//! Stripe's published rate-limit facts, in one place for the two sides that need them:
//! the connector's client paces itself by them (`source_stripe::stripe::limits`) and the
//! emulator enforces them (`stripe_emulator`'s faults). Neither depends on the other, so
//! the facts live here, in a crate with no dependencies.
//!
//! Stripe's rate-limits page (2026; `DESIGN.md`, "Stripe facts"): 100 requests/s per
//! account in live mode and 25/s in test mode, and each API endpoint 25/s by default,
//! the Files API 20/s. This crate holds the per-endpoint part: what an endpoint is and
//! which limit it has. It must stay pure: no I/O, no clocks, no dependencies.

/// Stripe's default per-endpoint limit, requests per second.
pub const STRIPE_ENDPOINT_LIMIT: f64 = 25.0;
/// Stripe's limit for the Files API, requests per second.
pub const STRIPE_FILES_LIMIT: f64 = 20.0;

/// The endpoint of a request path: its segments with object ids replaced by `*`, so
/// `/v1/invoices/in_1Mx/lines` and `/v1/invoices/in_2Qz/lines` are one endpoint.
///
/// An id is a segment with a digit or an upper-case letter after the version segment:
/// Stripe's resource names are lower case with underscores (`payment_intents`), its ids
/// a prefix and a random base-62 part (`cus_NffrFeUfNV2Hib`).
pub fn endpoint_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (index, segment) in path.trim_end_matches('/').split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        // `{id}`: a child endpoint's template, as the stream table writes it.
        let is_id = index > 1
            && (segment.starts_with('{')
                || segment
                    .chars()
                    .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        out.push_str(if is_id { "*" } else { segment });
    }
    out
}

/// The limit of an endpoint, given the default one: Files (and file links, issue 10) get
/// Stripe's 20/25 of it.
pub fn endpoint_limit(endpoint: &str, default: f64) -> f64 {
    if is_files_api(endpoint) {
        default * STRIPE_FILES_LIMIT / STRIPE_ENDPOINT_LIMIT
    } else {
        default
    }
}

/// Whether an endpoint is one of the Files API's (`/v1/files…`, `/v1/file_links…`), whose
/// own limit is 20/s.
pub fn is_files_api(endpoint: &str) -> bool {
    ["/v1/files", "/v1/file_links"]
        .iter()
        .any(|p| endpoint == *p || endpoint.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_drop_ids() {
        assert_eq!(endpoint_of("/v1/charges"), "/v1/charges");
        assert_eq!(endpoint_of("/v1/payment_intents/"), "/v1/payment_intents");
        assert_eq!(
            endpoint_of("/v1/invoices/in_1MtHbELkdIwHu7ix/lines"),
            "/v1/invoices/*/lines"
        );
        assert_eq!(
            endpoint_of("/v1/customers/cus_NffrFeUfNV2Hib"),
            "/v1/customers/*"
        );
        assert_eq!(
            endpoint_of("/v1/customers/{id}/bank_accounts"),
            "/v1/customers/*/bank_accounts"
        );
        assert_eq!(endpoint_limit("/v1/files", 25.0), 20.0);
        assert_eq!(endpoint_limit("/v1/file_links", 25.0), 20.0);
        assert_eq!(endpoint_limit("/v1/file_links/*", 25.0), 20.0);
        assert_eq!(endpoint_limit("/v1/filesx", 25.0), 25.0);
        assert_eq!(endpoint_limit("/v1/charges", 25.0), 25.0);
    }
}
