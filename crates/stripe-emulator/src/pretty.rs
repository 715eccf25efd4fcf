//! Stripe's layout of an answer: JSON pretty-printed with two-space indents, a field or
//! an element a line, `"key": value`, and `{}` / `[]` for empty ones (as serde_json's
//! pretty printer lays it out). Clients must not depend on the layout; a connector that
//! copies objects out of a page as they were sent gets lines of JSON, not one.
//!
//! Re-laid from the compact text the routes render, in one pass (no parse): the answers
//! are the emulator's own, so the text is known to be compact JSON.

/// `compact` (JSON without whitespace) laid out as Stripe sends it.
pub(crate) fn pretty(compact: &str) -> String {
    let bytes = compact.as_bytes();
    let mut out = String::with_capacity(compact.len() + compact.len() / 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at = (at + 1).min(bytes.len());
                out.push_str(&compact[start..at]);
                continue;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                if bytes.get(at + 1) == Some(&close) {
                    out.push_str(&compact[at..at + 2]);
                    at += 2;
                    continue;
                }
                out.push(open as char);
                depth += 1;
                newline(&mut out, depth);
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(close as char);
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            b':' => out.push_str(": "),
            _ => {
                while at < bytes.len() && !b"\"{}[],:".contains(&bytes[at]) {
                    at += 1;
                }
                out.push_str(&compact[start..at]);
                continue;
            }
        }
        at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lays_out_as_serde_json_pretty_prints() {
        let value = json!({
            "object": "list",
            "data": [{"id": "ch_1", "amount": 1.5, "metadata": {}, "refunds": [],
                      "note": "a \"quoted\" {brace}, [bracket]: colon \\ é"}],
            "has_more": false, "url": null, "n": [1, -2e10, true]
        });
        assert_eq!(
            pretty(&value.to_string()),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}
