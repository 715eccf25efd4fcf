#!/usr/bin/env python3
"""Generate one JSON Schema (draft-07) per connector stream from Stripe's OpenAPI spec.

Run from the repository root, without arguments:

    python3 tools/gen_schemas.py

Reads  `crates/stripe-emulator/reference/stripe-openapi/spec3.trimmed.json` (components.schemas).
Writes `schemas/<stream>.json` for every stream in STREAMS, with
`json.dump(indent=2, sort_keys=True)` plus a newline, so re-running gives identical files.

A record is the Stripe object exactly as the API returns it, and destinations (Airbyte, a
Parquet writer) type their columns from these schemas, so the schemas describe types only
and must never reject a real record, including records from newer API versions:

- Root: {"$schema": draft-07, "type": "object", "description", "properties"}. Never
  `additionalProperties: false`; unknown fields pass.
- Every property is nullable: {"type": ["null", T]}. `enum`, `format`, `maxLength`,
  `pattern`, `title`, `required` and `x-*` keys are dropped; only top-level properties keep
  a `description` (its first sentence). Exception: integers Stripe marks
  `"format": "unix-time"` (unix seconds) keep it, so the Parquet output can type them as
  timestamps; validators ignore formats they do not know.
- A `$ref` (or a single-branch `anyOf`) to an object schema is inlined as a nested object,
  down to 3 object levels below the record (top-level properties are level 1). Deeper, or
  when the schema is already on the current path (recursion): {"type": ["null", "object"]}.
- Expandable reference (`anyOf` of a string id and one or more `$ref`s):
  {"type": ["null", "string", "object"]} without properties. Any other `anyOf`/`oneOf` with
  several object branches: {"type": ["null", "object"]}; all branches the same scalar
  type: that type (mixed scalars: their union).
- Arrays: {"type": ["null", "array"], "items": <converted item>}; arrays add no level.
  Stripe list objects (object/data/has_more/url) are ordinary nested objects this way.
- Maps (`additionalProperties: {type: string}`, e.g. metadata):
  {"type": ["null", "object"], "additionalProperties": {"type": ["null", "string"]}}.
- integer, number, boolean and string keep their type.
- Streams learned through the Events API (EVENT_STREAMS) get two more top-level
  properties, `updated` and `is_deleted` (see CONNECTOR_FIELDS).
"""
import json
import os
import re

SPEC = "crates/stripe-emulator/reference/stripe-openapi/spec3.trimmed.json"
OUT_DIR = "schemas"
MAX_LEVEL = 3

# stream (file name) -> Stripe component schema
STREAMS = {
    "account": "account",
    "customers": "customer",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "refunds": "refund",
    "disputes": "dispute",
    "products": "product",
    "prices": "price",
    "balance_transactions": "balance_transaction",
    "events": "event",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "payouts": "payout",
    "accounts": "account",
    "application_fees": "application_fee",
    "authorizations": "issuing.authorization",
    "cardholders": "issuing.cardholder",
    "cards": "issuing.card",
    "checkout_sessions": "checkout.session",
    "coupons": "coupon",
    "credit_notes": "credit_note",
    "early_fraud_warnings": "radar.early_fraud_warning",
    "file_links": "file_link",
    "files": "file",
    "invoice_items": "invoiceitem",
    "invoice_payments": "invoice_payment",
    "plans": "plan",
    "promotion_codes": "promotion_code",
    "reviews": "review",
    "setup_intents": "setup_intent",
    "shipping_rates": "shipping_rate",
    "subscription_schedule": "subscription_schedule",
    "top_ups": "topup",
    "transactions": "issuing.transaction",
    "transfers": "transfer",
    # Child streams (issue 10): records are the children, with their parent's fields.
    "invoice_line_items": "line_item",
    "subscription_items": "subscription_item",
    "application_fees_refunds": "fee_refund",
    "transfer_reversals": "transfer_reversal",
    "checkout_sessions_line_items": "item",
    "setup_attempts": "setup_attempt",
    "payout_balance_transactions": "balance_transaction",
    "customer_balance_transactions": "customer_balance_transaction",
    "bank_accounts": "bank_account",
    "persons": "person",
    "payment_methods": "payment_method",
    "external_account_bank_accounts": "bank_account",
    "external_account_cards": "card",
    "usage_records": "usage_record_summary",
}
# Fields the connector adds to a child stream's records, as Airbyte's Stripe source 6.1
# names them: its parent's id, and the parent's times (the cursor is the parent's `updated`).
PARENT_FIELDS = {
    "invoice_line_items": {
        "invoice_id": {"type": ["null", "string"], "description": "The invoice's id."},
        "invoice_created": {"type": ["null", "integer"], "format": "unix-time",
                            "description": "The invoice's created time."},
        "invoice_updated": {"type": ["null", "integer"], "format": "unix-time",
                            "description": "The invoice's last change the connector saw"
                            " (the cursor)."},
    },
    "subscription_items": {
        "subscription_updated": {"type": ["null", "integer"], "format": "unix-time",
                                 "description": "The subscription's last change the"
                                 " connector saw (the cursor)."},
    },
    "application_fees_refunds": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "The application fee's last change the connector saw"
                    " (the cursor)."},
    },
    "checkout_sessions_line_items": {
        "checkout_session_id": {"type": ["null", "string"],
                                "description": "The checkout session's id."},
        "checkout_session_created": {"type": ["null", "integer"], "format": "unix-time",
                                     "description": "The checkout session's created time."},
        "checkout_session_expires_at": {"type": ["null", "integer"], "format": "unix-time",
                                        "description": "The checkout session's expiry time."},
        "checkout_session_updated": {"type": ["null", "integer"], "format": "unix-time",
                                     "description": "The checkout session's last change the"
                                     " connector saw (the cursor)."},
    },
    "payout_balance_transactions": {
        "payout": {"type": ["null", "string"], "description": "The payout's id."},
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "The payout's last change the connector saw (the cursor)."},
    },
    "bank_accounts": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "Unix seconds of the last change the connector saw: the"
                    " created time of the customer.source.* event that carried this version,"
                    " or the customer's `updated` when read from the customer's list."},
    },
    "persons": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "Unix seconds of the last change the connector saw: the"
                    " created time of the person.* event that carried this version, or the"
                    " account's `updated` when read from the account's list."},
    },
    "payment_methods": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "Unix seconds of the last change the connector saw: the"
                    " created time of the payment_method.* event that carried this version, or the"
                    " customer's `updated` when read from the customer's list."},
    },
    "external_account_bank_accounts": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "Unix seconds of the last change the connector saw: the"
                    " created time of the account.external_account.* event that carried this version, or the"
                    " account's `updated` when read from the account's list."},
    },
    "external_account_cards": {
        "updated": {"type": ["null", "integer"], "format": "unix-time",
                    "description": "Unix seconds of the last change the connector saw: the"
                    " created time of the account.external_account.* event that carried this version, or the"
                    " account's `updated` when read from the account's list."},
    },
    # A subscription item's usage summaries: full refresh only, nothing added.
    "usage_records": {},
    # Children that never change after creation: their own `created` is the cursor.
    "transfer_reversals": {},
    "setup_attempts": {},
    "customer_balance_transactions": {},
}
# Child streams whose records arrive with `is_deleted` when their parent is deleted.
DELETABLE_CHILDREN = {"invoice_line_items", "subscription_items", "bank_accounts", "persons",
                      "payment_methods", "external_account_bank_accounts",
                      "external_account_cards"}
# Streams that never change after creation (cursor `created`), or have no cursor.
CREATED_STREAMS = {"account", "balance_transactions", "events", "file_links", "files",
                   "shipping_rates", "usage_records"}
# Streams whose changes are learned through the Events API.
EVENT_STREAMS = set(STREAMS) - CREATED_STREAMS
CONNECTOR_FIELDS = {
    "updated": {
        "type": ["null", "integer"],
        "format": "unix-time",
        "description": "Unix seconds of the last change the connector saw: the created time of"
        " the event that carried this version, or the object's created time when read from"
        " the list endpoint.",
    },
    "is_deleted": {
        "type": ["null", "boolean"],
        "description": "True when the record comes from a *.deleted event: the object as it"
        " was before deletion.",
    },
}
SCALARS = {"integer", "number", "boolean", "string"}
OBJECT = {"type": ["null", "object"]}


def ref_name(node):
    return node["$ref"].split("/")[-1]


def first_sentence(text):
    text = " ".join(text.split())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z`\[])", text, maxsplit=1)[0]


def convert(node, schemas, level, path):
    """Convert one spec node found at object level `level`; `path` holds the component
    names being inlined around it (for recursion)."""
    if "$ref" in node:
        name = ref_name(node)
        if name in path or level > MAX_LEVEL:
            return dict(OBJECT)
        return convert(schemas[name], schemas, level, path + (name,))
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        if len(branches) == 1:
            return convert(branches[0], schemas, level, path)
        has_ref = any("$ref" in b for b in branches)
        types = {b.get("type") for b in branches if "$ref" not in b}
        if has_ref and types == {"string"}:
            return {"type": ["null", "string", "object"]}  # expandable: id, or the object
        if not has_ref and types <= SCALARS:
            return {"type": ["null"] + sorted(types)}  # one scalar type, or a union
        return dict(OBJECT)
    kind = node.get("type")
    if kind == "array":
        return {"type": ["null", "array"], "items": convert(node["items"], schemas, level, path)}
    if kind == "object":
        if isinstance(node.get("additionalProperties"), dict):
            value = node["additionalProperties"].get("type", "string")
            return {"type": ["null", "object"], "additionalProperties": {"type": ["null", value]}}
        if "properties" not in node or level > MAX_LEVEL:
            return dict(OBJECT)
        props = node["properties"]
        return {
            "type": ["null", "object"],
            "properties": {k: convert(v, schemas, level + 1, path) for k, v in props.items()},
        }
    if kind in SCALARS:
        if kind == "integer" and node.get("format") == "unix-time":
            # Kept so typed destinations (the Parquet writer) can read it as a time;
            # validators ignore formats they do not know.
            return {"type": ["null", kind], "format": "unix-time"}
        return {"type": ["null", kind]}
    return {}  # untyped: accept anything


def stream_schema(stream, component, schemas):
    root = schemas[component]
    properties = {}
    for key, node in root["properties"].items():
        prop = convert(node, schemas, 1, (component,))
        if node.get("description"):
            prop["description"] = first_sentence(node["description"])
        properties[key] = prop
    if stream in PARENT_FIELDS:
        properties.update(PARENT_FIELDS[stream])
        if stream in DELETABLE_CHILDREN:
            properties["is_deleted"] = CONNECTOR_FIELDS["is_deleted"]
    elif stream in EVENT_STREAMS:
        properties.update(CONNECTOR_FIELDS)  # note: overrides product.updated (same type)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "description": f"Stripe `{component}` object, as the API returns it.",
        "type": "object",
        "properties": properties,
    }


def main():
    with open(SPEC) as f:
        schemas = json.load(f)["components"]["schemas"]
    os.makedirs(OUT_DIR, exist_ok=True)
    for stream, component in STREAMS.items():
        path = os.path.join(OUT_DIR, f"{stream}.json")
        with open(path, "w") as f:
            json.dump(stream_schema(stream, component, schemas), f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
