//! One pass over a list page's JSON: checks that it is complete, well-formed JSON, and
//! finds where each object of `data` lies and the few top-level fields of it the engine
//! reads (`id`, `created`, `date`, `object`, whether it has its own `updated`).
//!
//! Until this pass, a page was parsed twice with serde_json: once to find its objects
//! and once per object for those fields, and the two parses were half of the
//! connector's CPU time. Nothing is built here but the fields: the objects stay the
//! text Stripe sent, copied out as they are.
//!
//! The grammar checked is JSON's (RFC 8259), as serde_json checks it; the property
//! tests in this file hold the scanner to serde_json's verdict on pages, pages cut
//! short or with a byte changed, and any text. Two differences, both for answers
//! Stripe does not send: nesting deeper than 128 is refused (serde_json skips it), and
//! a field of the head with the wrong type (`created: "x"`) is read as absent.

use std::ops::Range;

/// serde_json's limit: deeper nesting is refused rather than recursed into.
const MAX_DEPTH: usize = 128;

/// The bytes that end a run of plain characters in a string: its closing quote, an
/// escape, and the control characters JSON forbids there.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Why a body is not a list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or cut short: worth another request.
    Syntax(String),
    /// JSON, but not a list page (no `data` array of objects, no `has_more`).
    Shape(String),
}

/// The top-level fields of one object the engine looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// `None` when the object has no string `id`.
    pub id: Option<String>,
    pub created: Option<i64>,
    /// Invoice items carry `date` where other objects carry `created`.
    pub date: Option<i64>,
    /// The object has an `updated` of its own (not null).
    pub updated: bool,
    pub object: Option<String>,
}

/// One object of a page: where it lies in the body, and its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub range: Range<usize>,
    pub head: Head,
}

/// A list page, scanned: its objects, its `has_more`, and its text on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// Where each object lies in [`List::text`].
    pub items: Vec<Item>,
    pub has_more: bool,
    /// The page without the whitespace between its tokens, when it had any (Stripe's
    /// pretty-printed layout); `None` when the page was compact already.
    pub compacted: Option<String>,
}

impl List {
    /// The text the items' ranges point into: the compacted page, or `page` itself.
    pub fn text<'a>(&'a self, page: &'a str) -> &'a str {
        self.compacted.as_deref().unwrap_or(page)
    }
}

/// Scans a list page: its objects in order, and its `has_more`. The same pass takes the
/// whitespace between tokens out ([`List::compacted`], as [`compact`] does), so a
/// pretty-printed page is walked once, not once here and once per record by a writer.
///
/// # Errors
/// [`Refusal::Syntax`] when the text is not complete JSON, [`Refusal::Shape`] when it
/// is JSON but not a list page.
pub fn list(text: &str) -> Result<List, Refusal> {
    let mut s = Scanner::new(text);
    let mut items = None;
    let mut has_more = None;
    s.ws();
    if s.peek() != Some(b'{') {
        s.value(0)?;
        s.end()?;
        return Err(Refusal::Shape("the answer is not a JSON object".to_owned()));
    }
    let mut shape = None;
    s.object(0, |s, key| {
        s.ws();
        if (key == "data" && items.is_some()) || (key == "has_more" && has_more.is_some()) {
            shape.get_or_insert("a field appears twice");
        }
        match key {
            "data" => match s.peek() {
                Some(b'[') => items = Some(s.objects()?),
                _ => {
                    s.value(1)?;
                    shape.get_or_insert("`data` is not a list of objects");
                }
            },
            "has_more" => match s.literal_bool() {
                Some(value) => has_more = Some(value),
                None => {
                    s.value(1)?;
                    shape.get_or_insert("`has_more` is not true or false");
                }
            },
            _ => s.value(1)?,
        }
        Ok(())
    })?;
    s.end()?;
    if let Some(why) = shape {
        return Err(Refusal::Shape(why.to_owned()));
    }
    match (items, has_more) {
        (Some(Ok(items)), Some(has_more)) => Ok(List {
            items,
            has_more,
            compacted: s.compacted(),
        }),
        (Some(Err(why)), _) => Err(Refusal::Shape(why)),
        (None, _) => Err(Refusal::Shape("missing field `data`".to_owned())),
        (_, None) => Err(Refusal::Shape("missing field `has_more`".to_owned())),
    }
}

/// The head of one object's text (an event's `data.object`, an object's body).
///
/// # Errors
/// [`Refusal::Syntax`] when the text is not one complete JSON value,
/// [`Refusal::Shape`] when it is not an object.
pub fn head(text: &str) -> Result<Head, Refusal> {
    let mut s = Scanner::new(text);
    s.ws();
    if s.peek() != Some(b'{') {
        s.value(0)?;
        s.end()?;
        return Err(Refusal::Shape("not a JSON object".to_owned()));
    }
    let head = s.head(0)?;
    s.end()?;
    Ok(head)
}

/// JSON text on one line: the whitespace between its tokens taken out when it has a
/// line break, the text itself when it has none (no allocation).
///
/// Stripe pretty-prints its answers (two-space indents, a field a line), so an object
/// copied out of a body as it was sent spans many lines, and a RECORD line around it
/// would be many lines of the Airbyte or Singer protocol. A JSON string cannot hold a raw
/// line break, so every line break is between tokens; only those spaces and breaks go,
/// every value stays byte for byte as Stripe sent it. The cutting is the scanner's, as
/// for list pages ([`List::compacted`]), which arrive compacted already. A text that is
/// not JSON is left as it is: every text the writers get was checked as JSON.
pub fn compact(text: &str) -> std::borrow::Cow<'_, str> {
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut s = Scanner::new(text);
    match s.value(0).and_then(|()| s.end()) {
        Ok(()) => s
            .compacted()
            .map_or(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Owned),
        Err(_) => std::borrow::Cow::Borrowed(text),
    }
}

/// Where the run of plain string characters from `at` ends: at a quote, a backslash, a
/// control character or the end. Eight bytes at a time, as serde_json does it: a
/// byte's top bit is set in `found` where it is one of those (the lowest set bit is
/// exact; a borrow can only mark bytes above it).
fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let found = has_zero(v ^ (ONES * u64::from(b'"')))
            | has_zero(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && !STRING_STOP[bytes[at] as usize] {
        at += 1;
    }
    at
}

/// Where the run of spaces from `at` ends, eight bytes at a time (as [`plain_run`]).
fn space_run(bytes: &[u8], mut at: usize) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    const LOW: u64 = u64::from_ne_bytes([0x7f; 8]);
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // A byte of `x` is zero where the text has a space. Its top bit is set in
        // `not_space` where it is not zero: exact per byte, as the sums of the low seven
        // bits cannot carry into the next byte.
        let x = u64::from_le_bytes(word) ^ SPACES;
        let not_space = (((x & LOW).wrapping_add(LOW)) | x) & !LOW;
        if not_space != 0 {
            return at + (not_space.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The text before `kept`, without its whitespace between tokens (empty while there
    /// was none); `text[kept..at]` is to be kept and is not copied yet.
    out: String,
    kept: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            at: 0,
            out: String::new(),
            kept: 0,
        }
    }

    /// Where byte `at` of the text (at or after `kept`) lands in the compacted text.
    fn out_at(&self, at: usize) -> usize {
        self.out.len() + at - self.kept
    }

    /// The whole text without its whitespace between tokens; `None` when it had none.
    fn compacted(&mut self) -> Option<String> {
        if self.out.is_empty() && self.kept == 0 {
            return None;
        }
        self.out.push_str(&self.text[self.kept..]);
        self.kept = self.text.len();
        Some(std::mem::take(&mut self.out))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips whitespace, and leaves it out of the compacted text. Inlined: between most
    /// tokens there is none, or in Stripe's layout one space after a `:`.
    #[inline]
    fn ws(&mut self) {
        if let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.skip_ws();
        }
    }

    /// The whitespace at the cursor, cut out. Cuts fall on whitespace, which is ASCII,
    /// so every piece kept is whole UTF-8.
    fn skip_ws(&mut self) {
        if self.out.capacity() == 0 {
            // Empty, so valid UTF-8.
            self.out = String::from_utf8(super::buffers::take(self.text.len())).unwrap_or_default();
        }
        self.out.push_str(&self.text[self.kept..self.at]);
        self.at += 1;
        loop {
            // An indent, eight spaces at a time.
            self.at = space_run(self.bytes, self.at);
            match self.peek() {
                Some(b' ' | b'\n' | b'\r' | b'\t') => self.at += 1,
                _ => break,
            }
        }
        self.kept = self.at;
    }

    fn fail<T>(&self, what: &str) -> Result<T, Refusal> {
        Err(Refusal::Syntax(match self.peek() {
            None => format!("{what} at byte {}, where the answer ends", self.at),
            Some(_) => format!("{what} at byte {}", self.at),
        }))
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), Refusal> {
        self.ws();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    /// Nothing but whitespace follows.
    fn end(&mut self) -> Result<(), Refusal> {
        self.ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("trailing characters"),
        }
    }

    /// A string at the cursor: the text between its quotes, escapes left as they are.
    fn string(&mut self) -> Result<Range<usize>, Refusal> {
        self.expect(b'"', "expected a string")?;
        let start = self.at;
        loop {
            self.at = plain_run(self.bytes, self.at);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(start..self.at - 1);
                }
                Some(b'\\') => self.escape()?,
                // A raw control character would end the record's line in the output.
                Some(_) => return self.fail("control character in a string"),
                None => return self.fail("unterminated string"),
            }
        }
    }

    /// An escape at the cursor: `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t` or `\uXXXX`.
    fn escape(&mut self) -> Result<(), Refusal> {
        match self.bytes.get(self.at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
            Some(b'u') => {
                let hex = self.bytes.get(self.at + 2..self.at + 6);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    self.at += 2;
                    return self.fail("invalid \\u escape");
                }
                self.at += 6;
            }
            _ => {
                self.at += 1;
                return self.fail("invalid escape");
            }
        }
        Ok(())
    }

    /// A number at the cursor, checked against JSON's grammar: its text.
    fn number(&mut self) -> Result<&'a str, Refusal> {
        let start = self.at;
        let digits = |s: &mut Self| {
            let from = s.at;
            while s.peek().is_some_and(|b| b.is_ascii_digit()) {
                s.at += 1;
            }
            s.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return self.fail("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !digits(self) {
                return self.fail("invalid number");
            }
        }
        Ok(&self.text[start..self.at])
    }

    fn word(&mut self, word: &[u8]) -> Result<(), Refusal> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            self.fail("expected a value")
        }
    }

    /// `true` or `false` at the cursor, taken; `None` (nothing taken) for anything else.
    fn literal_bool(&mut self) -> Option<bool> {
        self.ws();
        for (word, value) in [(&b"true"[..], true), (b"false", false)] {
            if self.bytes[self.at..].starts_with(word) {
                self.at += word.len();
                return Some(value);
            }
        }
        None
    }

    /// Any value at the cursor, skipped. `depth`: the containers it is inside.
    fn value(&mut self, depth: usize) -> Result<(), Refusal> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth, |s, _| s.value(depth + 1)),
            Some(b'[') => self.array(depth, |s| s.value(depth + 1)),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => self.fail("expected a value"),
        }
    }

    /// An object at the cursor: `member` is called with each key, the cursor before its
    /// value, and must take the value.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, &'a str) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        if depth >= MAX_DEPTH {
            return Err(Refusal::Shape(format!("nested deeper than {MAX_DEPTH}")));
        }
        self.expect(b'{', "expected an object")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':', "expected `:`")?;
            member(self, &self.text[key])?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return self.fail("expected a key");
                    }
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return self.fail("expected `,` or `}`"),
            }
        }
    }

    fn array(
        &mut self,
        depth: usize,
        mut element: impl FnMut(&mut Self) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        if depth >= MAX_DEPTH {
            return Err(Refusal::Shape(format!("nested deeper than {MAX_DEPTH}")));
        }
        self.expect(b'[', "expected an array")?;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return self.fail("expected `,` or `]`"),
            }
        }
    }

    /// `data`'s array: its objects. The inner `Err` is a shape problem (an element that
    /// is not an object), reported once the whole body is known to be JSON.
    fn objects(&mut self) -> Result<Result<Vec<Item>, String>, Refusal> {
        let mut items = Vec::with_capacity(100);
        let mut shape = None;
        self.array(1, |s| {
            s.ws();
            if s.peek() == Some(b'{') {
                let start = s.out_at(s.at);
                let head = s.head(2)?;
                items.push(Item {
                    range: start..s.out_at(s.at),
                    head,
                });
            } else {
                s.value(2)?;
                shape.get_or_insert_with(|| "an element of `data` is not an object".to_owned());
            }
            Ok(())
        })?;
        Ok(match shape {
            Some(why) => Err(why),
            None => Ok(items),
        })
    }

    /// An object at the cursor, skipped but for its head's fields.
    fn head(&mut self, depth: usize) -> Result<Head, Refusal> {
        let mut head = Head::default();
        self.object(depth, |s, key| {
            s.ws();
            match key {
                "id" | "object" if s.peek() == Some(b'"') => {
                    let text = s.string_value()?;
                    if key == "id" {
                        head.id = Some(text);
                    } else {
                        head.object = Some(text);
                    }
                    Ok(())
                }
                "created" | "date" if matches!(s.peek(), Some(b'-' | b'0'..=b'9')) => {
                    let number = s.number()?.parse().ok();
                    if key == "created" {
                        head.created = number;
                    } else {
                        head.date = number;
                    }
                    Ok(())
                }
                "updated" => {
                    head.updated = s.peek() != Some(b'n');
                    s.value(depth + 1)
                }
                _ => s.value(depth + 1),
            }
        })?;
        Ok(head)
    }

    /// A string at the cursor, unescaped.
    fn string_value(&mut self) -> Result<String, Refusal> {
        let range = self.string()?;
        let raw = &self.text[range.clone()];
        if !raw.contains('\\') {
            return Ok(raw.to_owned());
        }
        serde_json::from_str(&self.text[range.start - 1..range.end + 1])
            .map_err(|err| Refusal::Syntax(format!("invalid string: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;

    /// What the two serde_json parses found before this scanner.
    #[derive(Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        data: Vec<&'a RawValue>,
        has_more: bool,
    }

    #[derive(Deserialize)]
    struct SerdeHead {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        created: Option<i64>,
        #[serde(default)]
        date: Option<i64>,
        #[serde(default)]
        updated: Option<IgnoredAny>,
        #[serde(default)]
        object: Option<String>,
    }

    /// serde_json's head of an object, where it reads one (`None`: a field of the wrong
    /// type, which the scanner reads as absent).
    fn serde_head(raw: &str) -> Option<Head> {
        let h: SerdeHead = serde_json::from_str(raw).ok()?;
        Some(Head {
            id: h.id,
            created: h.created,
            date: h.date,
            updated: h.updated.is_some(),
            object: h.object,
        })
    }

    /// The scanner judges `text` as serde_json does: not JSON (syntax), JSON but not a
    /// list page of objects (shape), or the same objects at the same places with the
    /// same fields.
    fn agree(text: &str) -> Result<(), TestCaseError> {
        let ours = list(text);
        if let Err(err) = serde_json::from_str::<IgnoredAny>(text) {
            prop_assert!(err.is_syntax() || err.is_eof());
            prop_assert!(
                matches!(ours, Err(Refusal::Syntax(_))),
                "serde_json: {err}, scanner: {ours:?}, for {text}"
            );
            return Ok(());
        }
        let page = match serde_json::from_str::<List<'_>>(text) {
            Ok(page) if page.data.iter().all(|raw| raw.get().starts_with('{')) => page,
            theirs => {
                prop_assert!(
                    matches!(ours, Err(Refusal::Shape(_))),
                    "serde_json: {:?}, scanner: {ours:?}, for {text}",
                    theirs.err()
                );
                return Ok(());
            }
        };
        let Ok(listed) = ours else {
            return Err(TestCaseError::fail(format!(
                "scanner: {ours:?}, for {text}"
            )));
        };
        // The page without whitespace between tokens, and still the same JSON.
        let one_line = listed.text(text);
        let stripped = strip_whitespace(text);
        prop_assert_eq!(one_line, &stripped);
        prop_assert_eq!(listed.compacted.is_some(), stripped != text);
        // (Both `None` for a number out of `Value`'s range, which IgnoredAny accepted.)
        prop_assert_eq!(
            serde_json::from_str::<serde_json::Value>(one_line).ok(),
            serde_json::from_str::<serde_json::Value>(text).ok()
        );
        prop_assert_eq!(listed.has_more, page.has_more);
        prop_assert_eq!(listed.items.len(), page.data.len());
        for (item, raw) in listed.items.iter().zip(&page.data) {
            prop_assert_eq!(&one_line[item.range.clone()], strip_whitespace(raw.get()));
            if let Some(head) = serde_head(raw.get()) {
                prop_assert_eq!(&item.head, &head);
            }
        }
        Ok(())
    }

    /// JSON text without the whitespace outside its strings, a character at a time.
    fn strip_whitespace(text: &str) -> String {
        let (mut in_string, mut escaped) = (false, false);
        text.chars()
            .filter(|&c| {
                let keep = in_string || !matches!(c, ' ' | '\n' | '\r' | '\t');
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_string => escaped = true,
                    '"' => in_string = !in_string,
                    _ => {}
                }
                keep
            })
            .collect()
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[ -~\u{e9}\u{1F600}\"\\\\]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("id".to_owned()),
                        Just("created".to_owned()),
                        Just("updated".to_owned()),
                        Just("object".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn page() -> impl Strategy<Value = String> {
        use serde_json::{Value, json};
        (
            proptest::collection::vec(json(), 0..4),
            prop_oneof![Just(json!(true)), Just(json!(false)), json()],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(data, has_more, pretty, with_url)| {
                let data: Vec<Value> = data
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Object(mut m) if i % 2 == 0 => {
                            m.insert("id".into(), json!(format!("ch_{i}")));
                            m.insert("created".into(), json!(1_700_000_000 + i));
                            Value::Object(m)
                        }
                        other => other,
                    })
                    .collect();
                let mut page = json!({"object": "list", "data": data, "has_more": has_more});
                if with_url {
                    page["url"] = json!("/v1/charges");
                }
                if pretty {
                    serde_json::to_string_pretty(&page).expect("JSON")
                } else {
                    page.to_string()
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn a_page_scans_as_serde_json_parses_it(text in page()) {
            agree(&text)?;
        }

        #[test]
        fn a_page_cut_anywhere_is_refused_as_serde_json_refuses_it(
            text in page(),
            cut in any::<prop::sample::Index>(),
        ) {
            let end = cut.index(text.len() + 1);
            if let Some(prefix) = text.get(..end) {
                agree(prefix)?;
            }
        }

        #[test]
        fn a_page_with_one_byte_changed_is_judged_as_serde_json_judges_it(
            text in page(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(&b"{}[],:\"\\0-+.eEtfnu \x7f\n\x01"[..]),
        ) {
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Ok(text) = String::from_utf8(bytes) {
                agree(&text)?;
            }
        }

        #[test]
        fn any_text_is_judged_as_serde_json_judges_it(text in "[ -~]{0,60}") {
            agree(&text)?;
        }
    }

    proptest! {
        #[test]
        fn compact_text_is_the_same_json_on_one_line(value in json()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let compact = compact(&pretty);
            prop_assert!(!compact.contains('\n') && !compact.contains('\r'));
            prop_assert_eq!(compact.as_ref(), value.to_string());
            let plain = value.to_string();
            prop_assert!(matches!(super::compact(&plain), std::borrow::Cow::Borrowed(_)));
        }

        #[test]
        fn any_text_compacts_without_a_panic(text in "[\n {}\\[\\],:\"\\\\aé€1]{0,40}") {
            // JSON with a line break loses exactly its whitespace between tokens; any
            // other text stays (one line already, as `1 ` is, or not JSON).
            let compact = compact(&text);
            if text.contains('\n') && serde_json::from_str::<IgnoredAny>(&text).is_ok() {
                prop_assert_eq!(compact.as_ref(), strip_whitespace(&text));
            } else {
                prop_assert_eq!(compact.as_ref(), text.as_str());
            }
        }
    }

    #[test]
    fn a_run_of_spaces_ends_at_the_first_other_byte() {
        for text in [
            "",
            "x",
            " ",
            "        ",
            "         x",
            "   \n ",
            "\u{80}",
            "  \u{a0}",
        ] {
            for from in 0..=text.len() {
                let expected = from
                    + text.as_bytes()[from..]
                        .iter()
                        .take_while(|&&b| b == b' ')
                        .count();
                assert_eq!(
                    space_run(text.as_bytes(), from),
                    expected,
                    "{text:?} from {from}"
                );
            }
        }
        let mut indent = " ".repeat(19);
        indent.push('"');
        assert_eq!(space_run(indent.as_bytes(), 0), 19);
    }

    #[test]
    fn compact_keeps_strings_as_sent() {
        let pretty =
            "{\n  \"a b\": \"x  y\\n\\\"z\\\\\",\n  \"c\": [\n    1.50,\n    \"é \"\n  ]\n}";
        assert_eq!(compact(pretty), r#"{"a b":"x  y\n\"z\\","c":[1.50,"é "]}"#);
    }

    #[test]
    fn an_objects_head_is_its_top_level_fields_only() {
        let text = r#"{"object":"list","data":[{"id":"in_1","date":5,"updated":null,
            "lines":{"data":[{"id":"il_1","created":9,"updated":3}]},"object":"invoiceitem"}],
            "has_more":false}"#;
        let listed = list(text).unwrap();
        let items = &listed.items;
        assert!(!listed.has_more);
        assert_eq!(
            items[0].head,
            Head {
                id: Some("in_1".into()),
                created: None,
                date: Some(5),
                updated: false,
                object: Some("invoiceitem".into()),
            }
        );
        assert!(listed.text(text)[items[0].range.clone()].ends_with("\"invoiceitem\"}"));
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed_into() {
        let text = format!(
            "{{\"data\":[{}{}],\"has_more\":false}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(list(&text), Err(Refusal::Shape(_))));
    }
}
