//! The stream table: one row per stream, and everything about a stream is in its row
//! (endpoint, cursor, event types, fixed query parameters, schema). Adding a stream is
//! adding a row and a schema file.

pub mod catalog;
pub mod singer;
mod table;

pub use table::STREAMS;

/// How an incremental sync learns about a stream's new and changed objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The objects never change after creation: read `created[gte]` windows.
    Created,
    /// The objects change: a first full read of the list endpoint, then `/v1/events`.
    Updated,
}

impl Cursor {
    pub fn field(self) -> &'static str {
        match self {
            Cursor::Created => "created",
            Cursor::Updated => "updated",
        }
    }
}

/// Whose `/v1/events` holds a stream's events. An event about an object a connected
/// account owns is that account's, not the platform's (Stripe's Connect webhooks guide;
/// a Stripe engineer in stripe/stripe-go#315: filtering the platform's events on
/// `account.external_account.created` returns nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsIn {
    /// The synced account's own events: the shared events pass (`src/sync/events.rs`).
    Account,
    /// Each connected account's events, listed with `Stripe-Account: <account>`: a
    /// connected account's `account.updated`, its persons' and external accounts' events
    /// (`src/sync/connected_events.rs`).
    ConnectedAccounts,
}

/// One stream.
#[derive(Debug)]
pub struct StreamDef {
    /// Stream name, as Airbyte's Stripe source names it.
    pub name: &'static str,
    /// API path of the list endpoint (or the single object).
    pub path: &'static str,
    /// Stripe's `object` value of the records: routes events to streams.
    pub object: &'static str,
    /// `None`: full refresh only.
    pub cursor: Option<Cursor>,
    /// Event types whose `data.object` is a new version of one of this stream's objects
    /// (on a child stream: its own events, routed by the shared events pass to it).
    pub event_types: &'static [&'static str],
    /// Whose events list holds those events.
    pub events_in: EventsIn,
    /// Query parameters sent on every list request.
    pub query: &'static [(&'static str, &'static str)],
    /// The endpoint is one object, not a list.
    pub single: bool,
    /// JSON schema of the records.
    pub schema: &'static str,
    /// The list endpoint filters on `created[gte|lt]`. Without it (accounts, checkout
    /// sessions, credit notes, early fraud warnings) the list is read by cursor
    /// pagination alone, newest first, and `start_date` is applied to each object.
    pub created_filter: bool,
    /// `Stripe-Version` sent to this endpoint instead of the configured one, for
    /// endpoints that only exist from a newer API version on.
    pub stripe_version: Option<&'static str>,
    /// A child stream: its records hang off the objects of a parent stream
    /// (`src/sync/children.rs` reads them). `path` is then the child endpoint.
    pub child: Option<Child>,
}

/// How a child stream hangs off its parent.
#[derive(Debug)]
pub struct Child {
    /// The parent stream (a row of [`STREAMS`]): one list of it feeds all its children.
    pub parent: &'static str,
    /// The parent's field holding the first page of its children, a Stripe list
    /// (`{"data": […], "has_more": …}`), e.g. an invoice's `lines`. `None`: the parent
    /// does not embed them (a checkout session's line items, a customer's balance
    /// transactions), so the child endpoint is called once per parent.
    pub embedded: Option<&'static str>,
    /// Query parameters of the child endpoint (the row's `path`, where `{id}` is the
    /// parent's id); `{id}` in a value is the parent's id too.
    pub query: &'static [(&'static str, &'static str)],
    /// Fields added to each record from its parent, as Airbyte's Stripe source names
    /// them.
    pub parent_fields: &'static [(&'static str, ParentField)],
    /// The cursor field: the parent's `updated`, under the name of `parent_fields`; or,
    /// for children that never change after creation (transfer reversals, setup
    /// attempts, customer balance transactions), their own `created`. `None`: full
    /// refresh only (usage record summaries).
    pub cursor_field: Option<&'static str>,
    /// Children of a deleted parent arrive with `is_deleted: true`.
    pub deletable: bool,
    /// The records have a stable `id`, the primary key (a usage record summary's is
    /// not: Airbyte's source declares none).
    pub keyed: bool,
}

/// A value of the parent copied onto its children's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentField {
    Id,
    Created,
    /// The parent's `updated` (its event's time, or its `created` from the list).
    Updated,
    /// The parent's top-level field of that name (e.g. a checkout session's `expires_at`).
    Field(&'static str),
}

impl StreamDef {
    pub fn supports_incremental(&self) -> bool {
        self.cursor.is_some()
    }

    /// The primary key field, when the records have one.
    pub fn primary_key(&self) -> Option<&'static str> {
        match &self.child {
            Some(child) if !child.keyed => None,
            _ => Some("id"),
        }
    }

    /// The record field the cursor is in, as discover names it (a child's is its
    /// parent's `updated` under the child's name, e.g. `invoice_updated`).
    pub fn cursor_field(&self) -> Option<&'static str> {
        match &self.child {
            Some(child) => self.cursor.and(child.cursor_field),
            None => self.cursor.map(Cursor::field),
        }
    }

    /// An event saying the object is gone: `*.deleted`, or a payment method detached
    /// from its customer (`payment_method.detached`: no longer in the customer's list).
    pub fn is_deletion(event_type: &str) -> bool {
        event_type.ends_with(".deleted") || event_type == "payment_method.detached"
    }
}

/// The stream of that name (raw or commerce).
pub fn find(name: &str) -> Option<&'static StreamDef> {
    all().find(|s| s.name == name)
}

/// Every selectable stream: the raw streams, then the commerce streams derived from them.
pub fn all() -> impl Iterator<Item = &'static StreamDef> {
    STREAMS.iter().chain(crate::commerce::STREAMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut names: Vec<_> = STREAMS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STREAMS.len(), "stream names are unique");
        for stream in STREAMS {
            let schema: serde_json::Value = serde_json::from_str(stream.schema)
                .unwrap_or_else(|e| panic!("{}: schema is not JSON: {e}", stream.name));
            let props = &schema["properties"];
            assert!(props["id"].is_object(), "{}: schema has id", stream.name);
            if let Some(field) = stream.cursor_field() {
                assert!(
                    props[field].is_object(),
                    "{}: cursor {field} is in the schema",
                    stream.name,
                );
            }
            if let Some(child) = &stream.child {
                // A child learns its changes from its parent's events, and from its own
                // where Stripe has them (then it is deletable: `*.deleted` events).
                let parent = find(child.parent).expect("the parent is a row");
                // At most two levels: a grandchild's parent hangs off a top-level row.
                if let Some(up) = &parent.child {
                    let root = find(up.parent).expect("the grandparent is a row");
                    assert!(root.child.is_none(), "{}: two levels at most", stream.name);
                }
                // A child's own events are read in its parent's events pass: in the same
                // events list as the parent's.
                assert_eq!(stream.events_in, parent.events_in, "{}", stream.name);
                if !stream.event_types.is_empty() {
                    assert!(child.deletable, "{}", stream.name);
                    assert_eq!(child.cursor_field, Some("updated"), "{}", stream.name);
                }
                // Incremental with its parent, or full refresh only.
                assert!(
                    stream.cursor.is_none() || stream.cursor == parent.cursor,
                    "{}",
                    stream.name
                );
                assert_eq!(stream.cursor.is_some(), child.cursor_field.is_some());
                assert_eq!(
                    props["is_deleted"].is_object(),
                    child.deletable,
                    "{}: is_deleted where deletable",
                    stream.name
                );
                for (field, _) in child.parent_fields {
                    assert!(props[*field].is_object(), "{}: {field}", stream.name);
                }
            } else if stream.cursor == Some(Cursor::Updated) {
                assert!(!stream.event_types.is_empty(), "{}", stream.name);
                assert!(props["is_deleted"].is_object(), "{}", stream.name);
            } else {
                assert!(stream.event_types.is_empty(), "{}", stream.name);
            }
            assert!(stream.path.starts_with("/v1/"), "{}", stream.name);
        }
    }

    /// The streams whose events are each connected account's own: a connected account
    /// (read from the platform's `/v1/accounts`) and its children, with exactly the
    /// events Stripe keeps in the account's list.
    #[test]
    fn connected_accounts_events_are_their_own() {
        for stream in STREAMS
            .iter()
            .filter(|s| s.events_in == EventsIn::ConnectedAccounts)
        {
            let top = match &stream.child {
                Some(child) => find(child.parent).expect("a row"),
                None => stream,
            };
            assert_eq!(top.path, "/v1/accounts", "{}", stream.name);
            for kind in stream.event_types {
                assert!(
                    *kind == "account.updated"
                        || kind.starts_with("person.")
                        || kind.starts_with("account.external_account."),
                    "{kind}"
                );
            }
        }
        for stream in STREAMS.iter().filter(|s| s.events_in == EventsIn::Account) {
            for kind in stream.event_types {
                assert!(
                    !kind.starts_with("person.") && !kind.starts_with("account."),
                    "{}: {kind} is a connected account's",
                    stream.name
                );
            }
        }
    }

    /// An event goes to the stream of its type and its object's type: two streams share
    /// an event type only for different objects (a connected account's bank accounts and
    /// cards).
    #[test]
    fn each_event_type_belongs_to_one_stream() {
        let mut seen = std::collections::HashMap::new();
        for stream in STREAMS {
            for event_type in stream.event_types {
                assert!(
                    seen.insert((*event_type, stream.object), stream.name)
                        .is_none(),
                    "{event_type} is listed twice for {}",
                    stream.object
                );
            }
        }
        assert_eq!(
            seen.get(&("account.external_account.created", "card")),
            Some(&"external_account_cards")
        );
    }

    /// Airbyte's Stripe source 6.1 as its discover reports it (name, key, cursor,
    /// modes), `reference/airbyte-stripe-streams.tsv`.
    fn airbyte_streams() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
        include_str!("../../reference/airbyte-stripe-streams.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0], f[1], f[2], f[3])
            })
            .collect()
    }

    #[test]
    fn rows_match_airbytes_streams() {
        let airbyte = airbyte_streams();
        assert_eq!(airbyte.len(), 48);
        // `-`: none.
        let field = |f: &'static str| (f != "-").then_some(f);
        for stream in STREAMS.iter().filter(|s| s.name != "account") {
            let (_, key, cursor, modes) = airbyte
                .iter()
                .find(|a| a.0 == stream.name)
                .unwrap_or_else(|| panic!("{} is one of Airbyte's streams", stream.name));
            assert_eq!(field(key), stream.primary_key(), "{}", stream.name);
            assert_eq!(field(cursor), stream.cursor_field(), "{}", stream.name);
            let ours = if stream.supports_incremental() {
                "full_refresh,incremental"
            } else {
                "full_refresh"
            };
            assert_eq!(*modes, ours, "{}", stream.name);
        }
        // Every one of Airbyte's streams is a row.
        let missing: Vec<&str> = airbyte
            .iter()
            .map(|a| a.0)
            .filter(|name| find(name).is_none())
            .collect();
        assert_eq!(missing, Vec::<&str>::new());
        assert_eq!(STREAMS.len(), 49, "Airbyte's 48 and `account`");
    }

    /// A row reads with `created[gte|lt]` exactly where Stripe's spec lists `created`
    /// for the endpoint; `accounts` is read without, as Airbyte reads it.
    #[test]
    fn created_filter_follows_the_spec() {
        let spec: serde_json::Value = serde_json::from_str(include_str!(
            "../../crates/stripe-emulator/reference/stripe-openapi/spec3.trimmed.json"
        ))
        .unwrap();
        for stream in STREAMS
            .iter()
            .filter(|s| !s.single && s.name != "accounts" && s.child.is_none())
        {
            let params = spec["paths"][stream.path]["get"]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{} is in the spec", stream.path));
            let has_created = params.iter().any(|p| p["name"] == "created");
            assert_eq!(has_created, stream.created_filter, "{}", stream.name);
        }
        assert!(!find("accounts").unwrap().created_filter);
    }
}
