//! Money: Stripe's integer amounts in a currency's minor unit turned into exact decimals in
//! its major unit, by the currency's exponent as the Stripe API uses it, and currency codes
//! in ISO 4217's upper case. Only integer and string arithmetic: never a float.
//!
//! Exponents (<https://docs.stripe.com/currencies>):
//! - 0 for Stripe's zero-decimal currencies (BIF, CLP, DJF, GNF, JPY, KMF, KRW, MGA, PYG,
//!   RWF, VND, VUV, XAF, XOF, XPF): `500` JPY is ¥500;
//! - 3 for the three-decimal currencies (BHD, JOD, KWD, OMR, TND): `12340` BHD is 12.340;
//! - 2 for every other currency, including Stripe's special cases ISK, HUF, TWD and UGX.
//!   ISK and UGX are zero-decimal in practice, but "backwards compatibility requires you to
//!   represent it as a two-decimal value, where the decimal amount is always 00" (`500` UGX
//!   is 5 UGX); HUF and TWD are two-decimal for charges and only payouts need whole units.

/// The number of digits after the decimal point: `scale` of the Parquet DECIMAL columns.
/// Every currency's exponent (0, 2 or 3) fits it exactly.
pub const DECIMAL_SCALE: u32 = 3;

const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF",
    "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// ISO 4217 code in upper case, as the commerce model writes it; `XXX` ("no currency") when
/// Stripe sent none.
pub fn currency_code(stripe: Option<&str>) -> String {
    match stripe.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => code.to_ascii_uppercase(),
        None => "XXX".to_owned(),
    }
}

/// Digits after the decimal point of amounts in this currency in the Stripe API.
pub fn exponent(currency: &str) -> u32 {
    let upper = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&upper.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&upper.as_str()) {
        3
    } else {
        2
    }
}

/// An integer amount in the minor unit as exact decimal text in the major unit, with
/// exactly the currency's exponent of decimals: `1234` USD → `"12.34"`, `-5` USD →
/// `"-0.05"`, `500` JPY → `"500"`, `12340` BHD → `"12.340"`.
pub fn major(minor: i64, currency: &str) -> String {
    shift(
        &minor.unsigned_abs().to_string(),
        minor < 0,
        exponent(currency),
    )
}

/// A decimal text in the minor unit (Stripe's `unit_amount_decimal`, e.g. `"1250.5"`) in
/// the major unit: the point moves left by the exponent, digits kept exactly. `None` when
/// the text is not a plain decimal number.
pub fn major_from_decimal_text(minor: &str, currency: &str) -> Option<String> {
    let text = minor.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let exp = exponent(currency) as usize;
    // All digits, and where the point goes counted from the right.
    let all = format!("{int}{frac}");
    let point_from_right = frac.len() + exp;
    let padded = format!("{:0>width$}", all, width = point_from_right + 1);
    let (whole, fraction) = padded.split_at(padded.len() - point_from_right);
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    // Keep at least the currency's exponent of decimals, drop zeros beyond it.
    let mut fraction = fraction.to_owned();
    while fraction.len() > exp && fraction.ends_with('0') {
        fraction.pop();
    }
    let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    Some(if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    })
}

fn shift(digits: &str, negative: bool, exp: u32) -> String {
    let exp = exp as usize;
    let sign = if negative { "-" } else { "" };
    if exp == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{:0>width$}", digits, width = exp + 1);
    let (whole, fraction) = padded.split_at(padded.len() - exp);
    format!("{sign}{whole}.{fraction}")
}

/// Parses decimal text (as [`major`] writes it) into an integer scaled by `10^scale`, for
/// Parquet DECIMAL columns. `None` when the text is not a decimal number, has more than
/// `scale` decimals (that would need rounding) or does not fit.
pub fn parse_scaled(text: &str, scale: u32) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || frac.len() > scale as usize
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || digits.ends_with('.')
    {
        return None;
    }
    let mut value: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    for _ in frac.len()..scale as usize {
        value = value.checked_mul(10)?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_become_major_units_by_the_currency_exponent() {
        let cases = [
            (1234, "usd", "12.34"),
            (5, "usd", "0.05"),
            (-5, "eur", "-0.05"),
            (-123_456, "gbp", "-1234.56"),
            (0, "usd", "0.00"),
            (500, "jpy", "500"),
            (-500, "JPY", "-500"),
            (1000, "krw", "1000"),
            (12_340, "bhd", "12.340"),
            (5, "kwd", "0.005"),
            (-1_000, "tnd", "-1.000"),
            // Stripe's special cases are two-decimal in the API.
            (500, "ugx", "5.00"),
            (10_000, "isk", "100.00"),
            (1_045, "huf", "10.45"),
            (2_000, "twd", "20.00"),
            (i64::MIN, "usd", "-92233720368547758.08"),
        ];
        for (minor, currency, want) in cases {
            assert_eq!(major(minor, currency), want, "{minor} {currency}");
        }
    }

    #[test]
    fn decimal_text_in_minor_units_moves_its_point_exactly() {
        let cases = [
            ("1999", "usd", Some("19.99")),
            ("1250.5", "usd", Some("12.505")),
            ("0.0001", "usd", Some("0.000001")),
            ("2500", "jpy", Some("2500")),
            ("12340", "bhd", Some("12.340")),
            ("-7", "usd", Some("-0.07")),
            ("1.50", "jpy", Some("1.5")),
            ("abc", "usd", None),
            ("", "usd", None),
            ("1e5", "usd", None),
        ];
        for (text, currency, want) in cases {
            assert_eq!(
                major_from_decimal_text(text, currency).as_deref(),
                want,
                "{text} {currency}"
            );
        }
    }

    #[test]
    fn currency_codes_are_upper_case_iso() {
        assert_eq!(currency_code(Some("usd")), "USD");
        assert_eq!(currency_code(Some("BhD")), "BHD");
        assert_eq!(currency_code(None), "XXX");
        assert_eq!(currency_code(Some("")), "XXX");
    }

    #[test]
    fn scaled_integers_for_parquet_decimals() {
        assert_eq!(parse_scaled("12.34", 3), Some(12_340));
        assert_eq!(parse_scaled("-0.05", 3), Some(-50));
        assert_eq!(parse_scaled("500", 3), Some(500_000));
        assert_eq!(parse_scaled("12.340", 3), Some(12_340));
        assert_eq!(parse_scaled("0.0001", 3), None, "needs rounding");
        assert_eq!(parse_scaled("1.", 3), None);
        assert_eq!(parse_scaled("x", 3), None);
        assert_eq!(
            parse_scaled(&major(i64::MAX, "usd"), 3),
            Some(i128::from(i64::MAX) * 10)
        );
    }
}
