//! The catalog: what `discover` prints, and the configured catalog `read` is given,
//! checked against the stream table.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::StreamDef;

/// A user-input error in the configured catalog. Always a `config_error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the catalog file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the catalog is not a configured Airbyte catalog: {0}")]
    Parse(String),
    #[error(
        "the catalog names stream `{0}`, which this connector does not have; run `discover` for the list of streams"
    )]
    UnknownStream(String),
    #[error("the catalog names stream `{0}` twice")]
    DuplicateStream(String),
    #[error(
        "stream `{stream}` does not support sync_mode `{mode}`; it supports {supported}. Change the stream's sync mode in the catalog"
    )]
    UnsupportedSyncMode {
        stream: String,
        mode: String,
        supported: String,
    },
    #[error("the catalog selects no streams")]
    Empty,
    #[error(
        "--streams names stream `{name}`, which this connector does not have; streams: {known}"
    )]
    UnknownStreamName { name: String, known: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

/// A stream selected for reading, in the mode the catalog asks for.
#[derive(Debug, Clone, Copy)]
pub struct Selected {
    pub def: &'static StreamDef,
    pub mode: SyncMode,
}

#[derive(Deserialize)]
struct ConfiguredCatalog {
    streams: Vec<ConfiguredStream>,
}

#[derive(Deserialize)]
struct ConfiguredStream {
    stream: StreamName,
    sync_mode: String,
}

#[derive(Deserialize)]
struct StreamName {
    name: String,
}

/// The `catalog` of a CATALOG message.
pub fn discover() -> Value {
    let streams: Vec<Value> = super::all()
        .map(|stream| {
            let schema: Value = serde_json::from_str(stream.schema).unwrap_or(Value::Null);
            let mut entry = json!({
                "name": stream.name,
                "json_schema": schema,
                "supported_sync_modes": if stream.supports_incremental() {
                    json!(["full_refresh", "incremental"])
                } else {
                    json!(["full_refresh"])
                },
                "is_resumable": stream.supports_incremental(),
            });
            if let Some(key) = stream.primary_key() {
                entry["source_defined_primary_key"] = json!([[key]]);
            }
            if let Some(cursor) = stream.cursor_field() {
                entry["source_defined_cursor"] = json!(true);
                entry["default_cursor_field"] = json!([cursor]);
            }
            entry
        })
        .collect();
    json!({ "streams": streams })
}

/// Reads and checks a configured catalog.
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

/// Parses and checks a configured catalog.
///
/// # Errors
/// An [`Error`] naming the stream or the problem.
pub fn parse(text: &str) -> Result<Vec<Selected>, Error> {
    let catalog: ConfiguredCatalog =
        serde_json::from_str(text).map_err(|err| Error::Parse(err.to_string()))?;
    let mut selected: Vec<Selected> = Vec::new();
    for configured in catalog.streams {
        let name = configured.stream.name;
        let def = super::find(&name).ok_or_else(|| Error::UnknownStream(name.clone()))?;
        if selected.iter().any(|s| s.def.name == name) {
            return Err(Error::DuplicateStream(name));
        }
        let mode = match configured.sync_mode.as_str() {
            "full_refresh" => SyncMode::FullRefresh,
            "incremental" if def.supports_incremental() => SyncMode::Incremental,
            // A stream without a cursor has no increment: it is read in full, as
            // Airbyte's CDK does. PyAirbyte asks `incremental` for every stream.
            "incremental" => SyncMode::FullRefresh,
            other => {
                return Err(Error::UnsupportedSyncMode {
                    stream: name,
                    mode: other.to_owned(),
                    supported: if def.supports_incremental() {
                        "full_refresh and incremental".to_owned()
                    } else {
                        "only full_refresh".to_owned()
                    },
                });
            }
        };
        selected.push(Selected { def, mode });
    }
    if selected.is_empty() {
        return Err(Error::Empty);
    }
    Ok(selected)
}

/// Every stream, incremental where it can be: the catalog of the `demo` command.
pub fn all_incremental() -> Vec<Selected> {
    super::all()
        .map(|def| Selected {
            def,
            mode: if def.supports_incremental() {
                SyncMode::Incremental
            } else {
                SyncMode::FullRefresh
            },
        })
        .collect()
}

/// The streams `--streams` names (all when `None`), incremental where they can be.
///
/// # Errors
/// [`Error::UnknownStreamName`] listing the streams there are, or [`Error::Empty`].
pub fn named(names: Option<&[String]>) -> Result<Vec<Selected>, Error> {
    let Some(names) = names else {
        return Ok(all_incremental());
    };
    let all = all_incremental();
    let mut selected: Vec<Selected> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let stream =
            all.iter()
                .find(|s| s.def.name == name)
                .ok_or_else(|| Error::UnknownStreamName {
                    name: name.to_owned(),
                    known: super::all().map(|s| s.name).collect::<Vec<_>>().join(", "),
                })?;
        if !selected.iter().any(|s| s.def.name == name) {
            selected.push(*stream);
        }
    }
    if selected.is_empty() {
        return Err(Error::Empty);
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(streams: &[(&str, &str)]) -> String {
        let streams: Vec<Value> = streams
            .iter()
            .map(|(name, mode)| {
                json!({"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                       "sync_mode": mode, "destination_sync_mode": "append"})
            })
            .collect();
        json!({ "streams": streams }).to_string()
    }

    #[test]
    fn streams_by_name() {
        assert_eq!(named(None).unwrap().len(), crate::streams::all().count());
        let names = [
            "customers".to_owned(),
            "account".to_owned(),
            "customers".to_owned(),
        ];
        let selected = named(Some(&names)).unwrap();
        assert_eq!(selected.len(), 2);
        assert_eq!(selected[0].mode, SyncMode::Incremental);
        assert_eq!(selected[1].mode, SyncMode::FullRefresh);
        let err = named(Some(&["customer".to_owned()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`customer`") && err.contains("customers"),
            "{err}"
        );
    }

    #[test]
    fn parses_a_configured_catalog() {
        let selected = parse(&catalog(&[
            ("customers", "incremental"),
            ("account", "full_refresh"),
        ]))
        .unwrap();
        assert_eq!(selected.len(), 2);
        assert_eq!(selected[0].def.name, "customers");
        assert_eq!(selected[0].mode, SyncMode::Incremental);
    }

    #[test]
    fn incremental_on_a_stream_without_cursor_reads_it_in_full() {
        let selected = parse(&catalog(&[("account", "incremental")])).unwrap();
        assert_eq!(selected[0].mode, SyncMode::FullRefresh);
    }

    #[test]
    fn rejects_bad_catalogs_with_the_stream_named() {
        let cases = [
            (catalog(&[("customer", "incremental")]), "`customer`"),
            (catalog(&[("account", "sometimes")]), "only full_refresh"),
            (catalog(&[("charges", "sometimes")]), "sometimes"),
            (
                catalog(&[("charges", "incremental"), ("charges", "incremental")]),
                "twice",
            ),
            (catalog(&[]), "no streams"),
            ("{\"streams\": 3}".to_owned(), "not a configured"),
        ];
        for (text, needle) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text} → {err}");
        }
    }

    #[test]
    fn discover_lists_every_stream_with_cursor_and_key() {
        let catalog = discover();
        let streams = catalog["streams"].as_array().unwrap();
        assert_eq!(streams.len(), crate::streams::all().count());
        let customers = streams.iter().find(|s| s["name"] == "customers").unwrap();
        assert_eq!(customers["default_cursor_field"], json!(["updated"]));
        assert_eq!(customers["source_defined_primary_key"], json!([["id"]]));
        assert!(customers["json_schema"]["properties"]["email"].is_object());
    }
}
