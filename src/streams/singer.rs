//! The Singer catalog: what the tap's `--discover` prints, and the catalog (or the
//! older `--properties` file) a Singer runner such as Meltano passes back with its
//! selection, checked against the stream table.
//!
//! Every stream has one entry: `tap_stream_id` and `stream` are the stream's name,
//! `schema` its JSON schema, `key_properties` `["id"]`, and `metadata` with a stream
//! breadcrumb (`[]`: inclusion, selection default, replication keys and method, key
//! properties) and one breadcrumb per top-level property (`id` and the cursor are
//! `automatic`, the rest `available`).
//!
//! Reading honours stream selection (`selected` in the stream's metadata, else the
//! entry's top-level `selected` as older runners write it, else `selected-by-default`)
//! and the replication method (`INCREMENTAL` or `FULL_TABLE`; by default incremental
//! where the stream has a cursor). Property selection is not applied: records are
//! Stripe's whole objects, as in the Airbyte mode.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::StreamDef;
use super::catalog::{Selected, SyncMode};

/// A user-input error in the Singer catalog. Always a `config_error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the catalog file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the catalog is not a Singer catalog: {0}. Pass the output of `--discover`, with the streams to read selected"
    )]
    Parse(String),
    #[error(
        "the catalog names stream `{0}`, which this tap does not have; run `--discover` for the list of streams"
    )]
    UnknownStream(String),
    #[error("the catalog names stream `{0}` twice")]
    DuplicateStream(String),
    #[error(
        "stream `{stream}` does not support replication method `{method}`; it supports {supported}. Change `replication-method` in the stream's metadata"
    )]
    UnsupportedReplicationMethod {
        stream: String,
        method: String,
        supported: &'static str,
    },
    #[error(
        "stream `{stream}` cannot replicate by `{key}`; its replication key is {valid}. Change `replication-key` in the stream's metadata"
    )]
    UnsupportedReplicationKey {
        stream: String,
        key: String,
        valid: String,
    },
    #[error(
        "the catalog selects no streams: mark the streams to read with `\"selected\": true` in their metadata (breadcrumb [])"
    )]
    Empty,
}

/// The Singer replication method of a stream that a sync mode stands for.
fn replication_method(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::FullRefresh => "FULL_TABLE",
        SyncMode::Incremental => "INCREMENTAL",
    }
}

/// The JSON schema of a stream. Never `Null` in practice: the table test
/// `streams::tests::table_is_consistent` parses every schema file.
pub fn schema(stream: &StreamDef) -> Value {
    serde_json::from_str(stream.schema).unwrap_or(Value::Null)
}

/// The catalog `--discover` prints.
pub fn discover() -> Value {
    let streams: Vec<Value> = super::all().map(entry).collect();
    json!({ "streams": streams })
}

fn entry(stream: &StreamDef) -> Value {
    let schema = schema(stream);
    let cursor = stream.cursor_field();
    let mut top = json!({
        "inclusion": "available",
        "selected-by-default": true,
        "table-key-properties": stream.primary_key().into_iter().collect::<Vec<_>>(),
        "valid-replication-keys": cursor.map_or_else(Vec::new, |c| vec![c]),
    });
    match cursor {
        Some(cursor) => {
            top["replication-method"] = json!(replication_method(SyncMode::Incremental));
            top["replication-key"] = json!(cursor);
        }
        None => {
            top["forced-replication-method"] = json!(replication_method(SyncMode::FullRefresh));
        }
    }
    let mut metadata = vec![json!({ "breadcrumb": [], "metadata": top })];
    if let Some(properties) = schema["properties"].as_object() {
        for name in properties.keys() {
            let automatic = name == "id" || Some(name.as_str()) == cursor;
            metadata.push(json!({
                "breadcrumb": ["properties", name],
                "metadata": { "inclusion": if automatic { "automatic" } else { "available" } },
            }));
        }
    }
    let mut entry = json!({
        "tap_stream_id": stream.name,
        "stream": stream.name,
        "schema": schema,
        "key_properties": stream.primary_key().into_iter().collect::<Vec<_>>(),
        "metadata": metadata,
    });
    if let Some(cursor) = cursor {
        entry["replication_key"] = json!(cursor);
    }
    entry
}

#[derive(Deserialize)]
struct Catalog {
    streams: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    tap_stream_id: Option<String>,
    stream: Option<String>,
    /// Older runners select streams here (`--properties`).
    selected: Option<bool>,
    /// Older runners set the method here.
    replication_method: Option<String>,
    #[serde(default)]
    metadata: Vec<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    breadcrumb: Vec<String>,
    metadata: serde_json::Map<String, Value>,
}

/// Reads and checks a Singer catalog.
///
/// # Errors
/// An [`Error`] naming the stream or the problem.
pub fn from_file(path: &Path) -> Result<Vec<Selected>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses a Singer catalog into the streams it selects, each in its replication mode.
///
/// # Errors
/// An [`Error`] naming the stream or the problem.
pub fn parse(text: &str) -> Result<Vec<Selected>, Error> {
    let catalog: Catalog =
        serde_json::from_str(text).map_err(|err| Error::Parse(err.to_string()))?;
    let mut selected: Vec<Selected> = Vec::new();
    for entry in catalog.streams {
        let name = entry
            .tap_stream_id
            .or(entry.stream)
            .ok_or_else(|| Error::Parse("a stream has neither tap_stream_id nor stream".into()))?;
        let def = super::find(&name).ok_or_else(|| Error::UnknownStream(name.clone()))?;
        let top = entry
            .metadata
            .iter()
            .find(|m| m.breadcrumb.is_empty())
            .map(|m| &m.metadata);
        let get = |key: &str| top.and_then(|m| m.get(key));
        let is_selected = get("selected")
            .and_then(Value::as_bool)
            .or(entry.selected)
            .or_else(|| get("selected-by-default").and_then(Value::as_bool))
            .unwrap_or(false);
        if !is_selected {
            continue;
        }
        if selected.iter().any(|s| s.def.name == name) {
            return Err(Error::DuplicateStream(name));
        }
        let method = get("replication-method")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(entry.replication_method);
        let mode = match method.as_deref() {
            None if def.supports_incremental() => SyncMode::Incremental,
            None | Some("FULL_TABLE") => SyncMode::FullRefresh,
            Some("INCREMENTAL") if def.supports_incremental() => SyncMode::Incremental,
            Some(other) => {
                return Err(Error::UnsupportedReplicationMethod {
                    stream: name,
                    method: other.to_owned(),
                    supported: if def.supports_incremental() {
                        "INCREMENTAL and FULL_TABLE"
                    } else {
                        "only FULL_TABLE"
                    },
                });
            }
        };
        if let (SyncMode::Incremental, Some(key)) =
            (mode, get("replication-key").and_then(Value::as_str))
        {
            let cursor = def.cursor_field();
            if Some(key) != cursor {
                return Err(Error::UnsupportedReplicationKey {
                    stream: name,
                    key: key.to_owned(),
                    valid: cursor.map_or_else(|| "none".to_owned(), |c| format!("`{c}`")),
                });
            }
        }
        selected.push(Selected { def, mode });
    }
    if selected.is_empty() {
        return Err(Error::Empty);
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discovered catalog with `edit` applied to each stream's top metadata.
    fn discovered_with(edit: impl Fn(&str, &mut Value)) -> String {
        let mut catalog = discover();
        for stream in catalog["streams"].as_array_mut().unwrap() {
            let name = stream["tap_stream_id"].as_str().unwrap().to_owned();
            edit(&name, &mut stream["metadata"][0]["metadata"]);
        }
        catalog.to_string()
    }

    #[test]
    fn discover_has_the_singer_fields_and_breadcrumbs() {
        let catalog = discover();
        let streams = catalog["streams"].as_array().unwrap();
        assert_eq!(streams.len(), crate::streams::all().count());
        for stream in streams {
            for field in ["tap_stream_id", "stream", "schema", "key_properties"] {
                assert!(!stream[field].is_null(), "{field} in {}", stream["stream"]);
            }
            assert_eq!(stream["metadata"][0]["breadcrumb"], json!([]));
        }
        let customers = streams.iter().find(|s| s["stream"] == "customers").unwrap();
        let top = &customers["metadata"][0]["metadata"];
        assert_eq!(top["valid-replication-keys"], json!(["updated"]));
        assert_eq!(top["replication-method"], "INCREMENTAL");
        assert_eq!(top["table-key-properties"], json!(["id"]));
        assert_eq!(top["inclusion"], "available");
        assert_eq!(top["selected-by-default"], true);
        let id = customers["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["breadcrumb"] == json!(["properties", "id"]))
            .unwrap();
        assert_eq!(id["metadata"]["inclusion"], "automatic");
        let account = streams.iter().find(|s| s["stream"] == "account").unwrap();
        assert_eq!(
            account["metadata"][0]["metadata"]["forced-replication-method"],
            "FULL_TABLE"
        );
    }

    #[test]
    fn the_discovered_catalog_reads_every_stream_incrementally_where_it_can() {
        let selected = parse(&discover().to_string()).unwrap();
        assert_eq!(selected.len(), crate::streams::all().count());
        for s in selected {
            let expected = if s.def.supports_incremental() {
                SyncMode::Incremental
            } else {
                SyncMode::FullRefresh
            };
            assert_eq!(s.mode, expected, "{}", s.def.name);
        }
    }

    #[test]
    fn honours_selection_and_replication_method() {
        let text = discovered_with(|name, top| {
            top["selected"] = json!(matches!(name, "customers" | "events"));
            if name == "events" {
                top["replication-method"] = json!("FULL_TABLE");
            }
        });
        let selected = parse(&text).unwrap();
        let got: Vec<_> = selected.iter().map(|s| (s.def.name, s.mode)).collect();
        assert_eq!(
            got,
            [
                ("customers", SyncMode::Incremental),
                ("events", SyncMode::FullRefresh)
            ]
        );
    }

    #[test]
    fn reads_older_properties_files() {
        let text = json!({"streams": [
            {"tap_stream_id": "charges", "selected": true, "replication_method": "FULL_TABLE", "schema": {}},
            {"stream": "customers", "selected": true, "schema": {}},
            {"stream": "refunds", "schema": {}},
        ]})
        .to_string();
        let selected = parse(&text).unwrap();
        let got: Vec<_> = selected.iter().map(|s| (s.def.name, s.mode)).collect();
        assert_eq!(
            got,
            [
                ("charges", SyncMode::FullRefresh),
                ("customers", SyncMode::Incremental)
            ]
        );
    }

    #[test]
    fn rejects_bad_catalogs_naming_the_problem() {
        let cases = [
            (
                discovered_with(|_, top| top["selected"] = json!(false)),
                "selects no streams",
            ),
            (
                discovered_with(|name, top| {
                    if name == "account" {
                        top["replication-method"] = json!("INCREMENTAL");
                    }
                }),
                "only FULL_TABLE",
            ),
            (
                discovered_with(|_, top| top["replication-method"] = json!("LOG_BASED")),
                "LOG_BASED",
            ),
            (
                discovered_with(|name, top| {
                    if name == "charges" {
                        top["replication-key"] = json!("created");
                    }
                }),
                "`updated`",
            ),
            (
                json!({"streams": [{"tap_stream_id": "customer", "selected": true}]}).to_string(),
                "`customer`",
            ),
            (
                json!({"streams": [{"tap_stream_id": "charges", "selected": true},
                                    {"tap_stream_id": "charges", "selected": true}]})
                .to_string(),
                "twice",
            ),
            ("{\"streams\": 3}".to_owned(), "not a Singer catalog"),
        ];
        for (text, needle) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle} → {err}");
        }
    }
}
