//! Typed columns for a stream: its JSON schema mapped to an Arrow schema, and JSON records
//! encoded into Arrow record batches of that schema. Used by the Parquet sink; knows
//! nothing about files.
//!
//! # The mapping (one rule per JSON schema type; `null` is always allowed)
//!
//! | JSON schema | Arrow (Parquet) |
//! |---|---|
//! | `integer` with `"format": "unix-time"` | `Timestamp(Millisecond, "UTC")` (Parquet `TIMESTAMP(MILLIS, isAdjustedToUTC)`): the seconds × 1000, so `epoch_ms(col) // 1000` is the integer Stripe sent |
//! | `integer` | `Int64` |
//! | `number` | `Float64` |
//! | `boolean` | `Boolean` |
//! | `string` with `"format": "decimal"` (the commerce streams' amounts) | `Decimal128(38, 3)` (Parquet `DECIMAL(38, 3)`): the exact decimal text, scale 3 holds every currency's exponent; text that does not fit goes to `_extra` |
//! | `string` | `Utf8` |
//! | `["string", "object"]` (an expandable id) | `Utf8`: the id, or the expanded object's JSON text |
//! | `object` with `properties` | `Struct` of the properties, mapped by these rules |
//! | `object` without `properties` (maps such as `metadata`, polymorphic or deeper objects) | `Utf8`, JSON text |
//! | `array` | `List` of the mapped `items` |
//! | anything else (unions of scalars, untyped) | `Utf8`, JSON text |
//!
//! Columns holding JSON text carry the field metadata `source_stripe.encoding = json`
//! (`id_or_json` for expandable ids), so a reader can tell them from plain strings.
//!
//! Nothing is dropped: whatever part of a record the typed columns cannot hold (a field
//! the schema does not know, at any depth, or a value of another type than its column's)
//! goes into the `_extra` column, as JSON text shaped like the record itself (objects by
//! key, arrays by position with `null` for "nothing extra"). Merging `_extra` into the
//! typed columns gives the record back.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, ListArray,
    RecordBatch, StringBuilder, StructArray, TimestampMillisecondBuilder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use serde_json::{Map, Value};

use crate::commerce::amount::{DECIMAL_SCALE, parse_scaled};

/// Digits of the commerce streams' DECIMAL columns.
const DECIMAL_PRECISION: u8 = 38;
/// 10^38: decimals of 38 digits are below it.
const MAX_DECIMAL: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// Field metadata key naming how a `Utf8` column encodes its values.
pub const ENCODING_KEY: &str = "source_stripe.encoding";
/// The column with what the typed columns cannot hold (JSON text of an object).
pub const EXTRA: &str = "_extra";
/// When the run that wrote the row started (the same for every row of a run).
pub const SYNCED_AT: &str = "_synced_at";
/// The row's position in its run's output (0, 1, 2, … across all streams).
pub const SEQ: &str = "_seq";
/// The connected account of a record; a directory level, not a column.
pub const ACCOUNT: &str = "stripe_account";

/// How one JSON value maps to a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Col {
    Int,
    Float,
    Bool,
    Str,
    /// Unix seconds.
    Time,
    /// An exact decimal number written as text.
    Decimal,
    /// Any value, as JSON text.
    Json,
    /// An expandable reference: a string as it is, an object as JSON text.
    IdOrJson,
    /// Properties sorted by name.
    Struct(Vec<(String, Col)>),
    List(Box<Col>),
}

impl Col {
    /// The column for a JSON schema node (see the module docs for the rules).
    pub fn from_schema(node: &Value) -> Col {
        let types: Vec<&str> = match &node["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match types.as_slice() {
            ["integer"] if node["format"] == "unix-time" => Col::Time,
            ["integer"] => Col::Int,
            ["number"] => Col::Float,
            ["boolean"] => Col::Bool,
            ["string"] if node["format"] == "decimal" => Col::Decimal,
            ["string"] => Col::Str,
            ["string", "object"] | ["object", "string"] => Col::IdOrJson,
            ["object"] => match node["properties"].as_object() {
                Some(props) if !props.is_empty() => {
                    let mut children: Vec<(String, Col)> = props
                        .iter()
                        .map(|(name, child)| (name.clone(), Col::from_schema(child)))
                        .collect();
                    children.sort_by(|a, b| a.0.cmp(&b.0));
                    Col::Struct(children)
                }
                _ => Col::Json,
            },
            ["array"] => Col::List(Box::new(match node.get("items") {
                Some(items) => Col::from_schema(items),
                None => Col::Json,
            })),
            _ => Col::Json,
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Col::Int => DataType::Int64,
            Col::Float => DataType::Float64,
            Col::Bool => DataType::Boolean,
            Col::Decimal => DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE as i8),
            Col::Str | Col::Json | Col::IdOrJson => DataType::Utf8,
            // Parquet has no seconds unit: arrow-rs would write seconds as a plain INT64.
            Col::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Col::Struct(children) => DataType::Struct(struct_fields(children)),
            Col::List(item) => DataType::List(Arc::new(item.field("item"))),
        }
    }

    fn field(&self, name: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        let encoding = match self {
            Col::Json => "json",
            Col::IdOrJson => "id_or_json",
            _ => return field,
        };
        field.with_metadata([(ENCODING_KEY, encoding)])
    }

    fn builder(&self) -> Builder {
        match self {
            Col::Int => Builder::Int(Int64Builder::new()),
            Col::Float => Builder::Float(Float64Builder::new()),
            Col::Bool => Builder::Bool(BooleanBuilder::new()),
            Col::Decimal => Builder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE as i8)
                    // 38 digits and scale 3 are within Decimal128's limits, so this only
                    // fails on a programming error, which the unit tests would show.
                    .unwrap_or_default(),
            ),
            Col::Str => Builder::Str(StringBuilder::new()),
            Col::Json => Builder::Json(StringBuilder::new()),
            Col::IdOrJson => Builder::IdOrJson(StringBuilder::new()),
            Col::Time => Builder::Time(TimestampMillisecondBuilder::new().with_timezone("UTC")),
            Col::Struct(children) => Builder::Struct {
                fields: struct_fields(children),
                names: children.iter().map(|(name, _)| name.clone()).collect(),
                children: children.iter().map(|(_, col)| col.builder()).collect(),
                nulls: NullBufferBuilder::new(0),
            },
            Col::List(item) => Builder::List {
                field: Arc::new(item.field("item")),
                item: Box::new(item.builder()),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
            },
        }
    }
}

fn struct_fields(children: &[(String, Col)]) -> Fields {
    children
        .iter()
        .map(|(name, col)| col.field(name))
        .collect::<Vec<Field>>()
        .into()
}

/// The columns of one stream: its schema's properties, our fields, and the bookkeeping
/// columns.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Top-level record properties, sorted by name.
    fields: Vec<(String, Col)>,
    schema: SchemaRef,
}

impl Columns {
    /// The columns for a stream's JSON schema (a `schemas/<stream>.json` text).
    ///
    /// Every stream gets `updated` (a timestamp) and `is_deleted` (a boolean) even when its
    /// schema does not list them (they are NULL there), so one query shape fits every
    /// stream; then `_extra`, `_synced_at` and `_seq`. `stripe_account` is not a column:
    /// the sink puts it in the directory name.
    ///
    /// # Errors
    /// When the schema is not JSON.
    pub fn for_schema(schema: &str) -> Result<Columns, serde_json::Error> {
        let schema: Value = serde_json::from_str(schema)?;
        let mut fields: Vec<(String, Col)> = schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .filter(|(name, _)| !is_reserved(name))
                    .map(|(name, node)| (name.clone(), Col::from_schema(node)))
                    .collect()
            })
            .unwrap_or_default();
        for (name, col) in [("updated", Col::Time), ("is_deleted", Col::Bool)] {
            if !fields.iter().any(|(n, _)| n == name) {
                fields.push((name.to_owned(), col));
            }
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut arrow_fields: Vec<Field> =
            fields.iter().map(|(name, col)| col.field(name)).collect();
        arrow_fields.push(Col::Json.field(EXTRA));
        arrow_fields.push(Field::new(
            SYNCED_AT,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ));
        arrow_fields.push(Field::new(SEQ, DataType::Int64, false));
        Ok(Columns {
            fields,
            schema: Arc::new(Schema::new(arrow_fields)),
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn encoder(&self) -> Encoder {
        Encoder {
            columns: self.fields.iter().map(|(_, col)| col.builder()).collect(),
            names: self.fields.iter().map(|(name, _)| name.clone()).collect(),
            extra: StringBuilder::new(),
            synced_at: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            seq: Int64Builder::new(),
            schema: self.schema.clone(),
            rows: 0,
            bytes: 0,
        }
    }
}

/// Names our bookkeeping columns use, and `stripe_account` (a directory level).
fn is_reserved(name: &str) -> bool {
    matches!(name, EXTRA | SYNCED_AT | SEQ | ACCOUNT)
}

/// Builds one record batch from records appended one at a time.
pub struct Encoder {
    columns: Vec<Builder>,
    names: Vec<String>,
    extra: StringBuilder,
    synced_at: TimestampMillisecondBuilder,
    seq: Int64Builder,
    schema: SchemaRef,
    rows: usize,
    /// JSON bytes appended since the last batch: an estimate of the memory held.
    bytes: usize,
}

impl Encoder {
    /// Appends one record (a JSON object; its `stripe_account` is left out).
    /// `json_len` is the size of its JSON text, for [`Encoder::bytes`].
    pub fn append(
        &mut self,
        record: &Map<String, Value>,
        json_len: usize,
        synced_at: i64,
        seq: i64,
    ) {
        let mut extra = Map::new();
        for (name, builder) in self.names.iter().zip(self.columns.iter_mut()) {
            if let Some(rest) = builder.append(record.get(name)) {
                extra.insert(name.clone(), rest);
            }
        }
        for (key, value) in record {
            if key != ACCOUNT && self.names.binary_search(key).is_err() {
                extra.insert(key.clone(), value.clone());
            }
        }
        if extra.is_empty() {
            self.extra.append_null();
        } else {
            self.extra.append_value(Value::Object(extra).to_string());
        }
        self.synced_at.append_value(synced_at);
        self.seq.append_value(seq);
        self.rows += 1;
        self.bytes += json_len;
    }

    /// Rows appended since the last batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// JSON bytes appended since the last batch.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The rows appended so far as a batch; the encoder starts empty again.
    ///
    /// # Errors
    /// An Arrow error would mean a bug: every builder gets one value per row.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 3);
        for builder in &mut self.columns {
            arrays.push(builder.finish()?);
        }
        arrays.push(Arc::new(self.extra.finish()));
        arrays.push(Arc::new(self.synced_at.finish()));
        arrays.push(Arc::new(self.seq.finish()));
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

enum Builder {
    Int(Int64Builder),
    Decimal(Decimal128Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Json(StringBuilder),
    IdOrJson(StringBuilder),
    /// Unix seconds in, milliseconds out.
    Time(TimestampMillisecondBuilder),
    Struct {
        fields: Fields,
        names: Vec<String>,
        children: Vec<Builder>,
        nulls: NullBufferBuilder,
    },
    List {
        field: FieldRef,
        item: Box<Builder>,
        /// Start of every list, then the end of the last one.
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
    },
}

impl Builder {
    /// Appends a value (`None`: the field is missing) and returns what the column could
    /// not hold, if anything: the value itself when its type does not fit.
    fn append(&mut self, value: Option<&Value>) -> Option<Value> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            self.append_null();
            return None;
        };
        match (self, value) {
            (Builder::Int(b), Value::Number(n)) if n.as_i64().is_some() => {
                b.append_option(n.as_i64());
            }
            (Builder::Time(b), Value::Number(n))
                if n.as_i64().and_then(|s| s.checked_mul(1000)).is_some() =>
            {
                b.append_option(n.as_i64().and_then(|s| s.checked_mul(1000)));
            }
            (Builder::Float(b), Value::Number(n)) => b.append_option(n.as_f64()),
            (Builder::Decimal(b), Value::String(s))
                if parse_scaled(s, DECIMAL_SCALE)
                    .is_some_and(|v| v.unsigned_abs() < MAX_DECIMAL) =>
            {
                b.append_option(parse_scaled(s, DECIMAL_SCALE));
            }
            (Builder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Builder::Str(b) | Builder::IdOrJson(b), Value::String(s)) => b.append_value(s),
            (Builder::IdOrJson(b), Value::Object(_)) | (Builder::Json(b), _) => {
                b.append_value(value.to_string());
            }
            (
                Builder::Struct {
                    names,
                    children,
                    nulls,
                    ..
                },
                Value::Object(object),
            ) => {
                nulls.append_non_null();
                let mut extra = Map::new();
                for (name, child) in names.iter().zip(children.iter_mut()) {
                    if let Some(rest) = child.append(object.get(name)) {
                        extra.insert(name.clone(), rest);
                    }
                }
                for (key, value) in object {
                    if names.binary_search(key).is_err() {
                        extra.insert(key.clone(), value.clone());
                    }
                }
                return (!extra.is_empty()).then_some(Value::Object(extra));
            }
            (
                Builder::List {
                    item,
                    offsets,
                    nulls,
                    ..
                },
                Value::Array(values),
            ) => {
                nulls.append_non_null();
                let mut rest: Vec<Value> = Vec::new();
                for (i, value) in values.iter().enumerate() {
                    if let Some(extra) = item.append(Some(value)) {
                        rest.resize(i, Value::Null);
                        rest.push(extra);
                    }
                }
                let end = offsets.last().copied().unwrap_or(0);
                offsets.push(end.saturating_add(values.len() as i32));
                if rest.is_empty() {
                    return None;
                }
                rest.resize(values.len(), Value::Null);
                return Some(Value::Array(rest));
            }
            (builder, value) => {
                builder.append_null();
                return Some(value.clone());
            }
        }
        None
    }

    fn append_null(&mut self) {
        match self {
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Decimal(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Str(b) | Builder::Json(b) | Builder::IdOrJson(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Struct {
                children, nulls, ..
            } => {
                nulls.append_null();
                for child in children {
                    child.append_null();
                }
            }
            Builder::List { offsets, nulls, .. } => {
                nulls.append_null();
                let end = offsets.last().copied().unwrap_or(0);
                offsets.push(end);
            }
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Str(b) | Builder::Json(b) | Builder::IdOrJson(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Struct {
                fields,
                children,
                nulls,
                ..
            } => {
                let arrays = children
                    .iter_mut()
                    .map(Builder::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(
                    fields.clone(),
                    arrays,
                    nulls.finish(),
                )?)
            }
            Builder::List {
                field,
                item,
                offsets,
                nulls,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                Arc::new(ListArray::try_new(
                    field.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    item.finish()?,
                    nulls.finish(),
                )?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, TimestampMillisecondType};
    use serde_json::json;

    #[test]
    fn every_schema_type_has_its_column() {
        let cases = [
            (
                json!({"type": ["null", "integer"], "format": "unix-time"}),
                Col::Time,
            ),
            (json!({"type": ["null", "integer"]}), Col::Int),
            (json!({"type": ["null", "number"]}), Col::Float),
            (json!({"type": ["null", "boolean"]}), Col::Bool),
            (json!({"type": ["null", "string"]}), Col::Str),
            (json!({"type": ["null", "string", "object"]}), Col::IdOrJson),
            (json!({"type": ["null", "object"]}), Col::Json),
            (
                json!({"type": ["null", "object"], "additionalProperties": {"type": ["null", "string"]}}),
                Col::Json,
            ),
            (
                json!({"type": ["null", "object"], "properties": {}}),
                Col::Json,
            ),
            (json!({"type": ["null", "integer", "string"]}), Col::Json),
            (json!({}), Col::Json),
            (
                json!({"type": ["null", "array"], "items": {"type": ["null", "string"]}}),
                Col::List(Box::new(Col::Str)),
            ),
            (
                json!({"type": ["null", "object"], "properties": {"b": {"type": ["null", "integer"]}, "a": {"type": ["null", "boolean"]}}}),
                Col::Struct(vec![("a".into(), Col::Bool), ("b".into(), Col::Int)]),
            ),
        ];
        for (schema, col) in cases {
            assert_eq!(Col::from_schema(&schema), col, "{schema}");
        }
    }

    #[test]
    fn every_stream_schema_maps_and_encodes_an_empty_batch() {
        for stream in crate::streams::STREAMS {
            let columns = Columns::for_schema(stream.schema).unwrap();
            let names: Vec<&str> = columns
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            for name in ["id", "updated", "is_deleted", EXTRA, SYNCED_AT, SEQ] {
                assert!(names.contains(&name), "{}: {name}", stream.name);
            }
            assert!(!names.contains(&ACCOUNT), "{}", stream.name);
            let batch = columns.encoder().finish().unwrap();
            assert_eq!(batch.num_rows(), 0);
        }
    }

    #[test]
    fn what_the_columns_cannot_hold_goes_to_extra() {
        let schema = json!({"properties": {
            "id": {"type": ["null", "string"]},
            "created": {"type": ["null", "integer"], "format": "unix-time"},
            "amount": {"type": ["null", "integer"]},
            "customer": {"type": ["null", "string", "object"]},
            "metadata": {"type": ["null", "object"], "additionalProperties": {"type": ["null", "string"]}},
            "outcome": {"type": ["null", "object"], "properties": {"type": {"type": ["null", "string"]}}},
            "lines": {"type": ["null", "array"], "items": {"type": ["null", "object"], "properties": {"n": {"type": ["null", "integer"]}}}},
        }});
        let columns = Columns::for_schema(&schema.to_string()).unwrap();
        let mut encoder = columns.encoder();
        let record = json!({
            "id": "ch_1", "created": 1700000000, "amount": "12", "customer": {"id": "cus_1"},
            "metadata": {"k": "v"}, "outcome": {"type": "ok", "new": 1},
            "lines": [{"n": 1}, {"n": 2, "x": true}, null], "brand_new": [1],
            "stripe_account": "acct_1",
        });
        encoder.append(record.as_object().unwrap(), 10, 5, 0);
        encoder.append(json!({"id": "ch_2"}).as_object().unwrap(), 10, 5, 1);
        let batch = encoder.finish().unwrap();
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let extra = column(EXTRA);
        let extra = extra.as_string::<i32>();
        let parsed: Value = serde_json::from_str(extra.value(0)).unwrap();
        assert_eq!(
            parsed,
            json!({"amount": "12", "outcome": {"new": 1}, "lines": [null, {"x": true}, null], "brand_new": [1]})
        );
        assert!(extra.is_null(1));
        assert!(column("amount").is_null(0));
        assert_eq!(
            column("created")
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_700_000_000_000
        );
        assert_eq!(
            column("customer").as_string::<i32>().value(0),
            r#"{"id":"cus_1"}"#
        );
        assert_eq!(
            column("metadata").as_string::<i32>().value(0),
            r#"{"k":"v"}"#
        );
        let lines = column("lines");
        let lines = lines.as_list::<i32>();
        assert_eq!(lines.value_length(0), 3);
        assert!(lines.is_null(1));
        let seq = column(SEQ);
        assert_eq!(seq.as_primitive::<Int64Type>().value(1), 1);
        // The next batch starts empty.
        assert_eq!(encoder.finish().unwrap().num_rows(), 0);
    }
}
