#!/usr/bin/env python3
"""Copy the parts of Stripe's OpenAPI spec and the Airbyte protocol that this project uses.

Run from the repository root with the full reference folder as argument:

    python3 tools/trim_reference.py ../shared/reference

Writes, in the emulator's crate (`crates/stripe-emulator/reference/stripe-openapi/`, the
one copy that the emulator builds from and the connector's tests read):
`spec3.trimmed.json` (the component schemas reachable from the objects we serve, and the
GET operations of the paths we serve), `fixtures3.2022-04-12.json` (Stripe's example
objects), `fixtures.supplement.json` (the examples of the supplement's objects, from
fixtures3.2026-08-21.json, which the 2022 set lacks); and in the connector's
`reference/airbyte-protocol/airbyte_protocol.json` (the protocol schema as JSON).
"""
import json
import shutil
import sys

import yaml

OBJECTS = [
    "account", "customer", "deleted_customer", "charge", "payment_intent", "refund",
    "dispute", "product", "deleted_product", "price", "balance_transaction", "event",
    "invoice", "deleted_invoice", "subscription", "payout", "error", "balance",
    # issue 10, phase 1: the other top-level streams
    "application_fee", "issuing.authorization", "issuing.cardholder", "issuing.card",
    "issuing.transaction", "checkout.session", "coupon", "deleted_coupon", "credit_note",
    "radar.early_fraud_warning", "file", "file_link", "invoiceitem", "deleted_invoiceitem",
    "plan", "deleted_plan", "promotion_code", "review", "setup_intent", "shipping_rate",
    "subscription_schedule", "topup", "transfer",
    # issue 10, child streams
    "fee_refund", "transfer_reversal", "item", "setup_attempt", "customer_balance_transaction",
    "bank_account", "person", "payment_method", "card", "usage_record_summary",
]
PATHS = [
    "/v1/account", "/v1/accounts", "/v1/customers", "/v1/charges", "/v1/payment_intents",
    "/v1/refunds", "/v1/disputes", "/v1/products", "/v1/prices", "/v1/balance_transactions",
    "/v1/events", "/v1/invoices", "/v1/subscriptions", "/v1/payouts", "/v1/balance",
    "/v1/application_fees", "/v1/issuing/authorizations", "/v1/issuing/cardholders",
    "/v1/issuing/cards", "/v1/issuing/transactions", "/v1/checkout/sessions", "/v1/coupons",
    "/v1/credit_notes", "/v1/radar/early_fraud_warnings", "/v1/files", "/v1/file_links",
    "/v1/invoiceitems", "/v1/plans", "/v1/promotion_codes", "/v1/reviews", "/v1/setup_intents",
    "/v1/shipping_rates", "/v1/subscription_schedules", "/v1/topups", "/v1/transfers",
    # issue 10, child endpoints
    "/v1/invoices/{invoice}/lines", "/v1/subscription_items",
    "/v1/application_fees/{id}/refunds", "/v1/transfers/{id}/reversals",
    "/v1/checkout/sessions/{session}/line_items", "/v1/setup_attempts",
    "/v1/customers/{customer}/balance_transactions", "/v1/customers/{customer}/bank_accounts",
    "/v1/accounts/{account}/persons",
    "/v1/subscription_items/{subscription_item}/usage_record_summaries",
    # (the supplement's newer forms of /v1/customers/{customer}/payment_methods and
    # /v1/accounts/{account}/external_accounts replace the 2022 ones)
]
# Where Stripe's files go: the emulator's crate carries them.
OPENAPI = "crates/stripe-emulator/reference/stripe-openapi"
# Objects and paths newer than the 2022 spec, written by hand from Stripe's API reference
# (see the file's description): merged in as they are.
SUPPLEMENT = f"{OPENAPI}/supplement.2025-03-31.basil.json"


def refs(node, out):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                out.add(value.split("/")[-1])
            else:
                refs(value, out)
    elif isinstance(node, list):
        for value in node:
            refs(value, out)


def main(src):
    spec = json.load(open(f"{src}/stripe-openapi/spec3.2022-04-12.json"))
    schemas = spec["components"]["schemas"]
    supplement = json.load(open(SUPPLEMENT))
    schemas.update(supplement["schemas"])
    spec["paths"].update(supplement["paths"])
    seen, stack = set(), list(OBJECTS)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        found = set()
        refs(schemas[name], found)
        stack.extend(found - seen)
    paths = {}
    for path in PATHS + sorted(supplement["paths"]):
        op = dict(spec["paths"][path]["get"])
        op.pop("requestBody", None)
        paths[path] = {"get": op}
        refs(op, seen)
    trimmed = {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": paths,
        "components": {"schemas": {k: schemas[k] for k in sorted(seen) if k in schemas}},
    }
    with open(f"{OPENAPI}/spec3.trimmed.json", "w") as f:
        json.dump(trimmed, f, separators=(",", ":"), sort_keys=True)
    shutil.copy(f"{src}/stripe-openapi/fixtures3.2022-04-12.json", f"{OPENAPI}/")
    newer = json.load(open(f"{src}/stripe-openapi/fixtures3.2026-08-21.json"))["resources"]
    with open(f"{OPENAPI}/fixtures.supplement.json", "w") as f:
        resources = {name: newer[name] for name in sorted(supplement["schemas"])}
        json.dump({"resources": resources}, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copy(f"{src}/stripe-openapi/LICENSE", f"{OPENAPI}/LICENSE")
    protocol = yaml.safe_load(open(f"{src}/airbyte-protocol/airbyte_protocol.yaml"))
    with open("reference/airbyte-protocol/airbyte_protocol.json", "w") as f:
        json.dump(protocol, f, indent=1, sort_keys=True)
    shutil.copy(f"{src}/airbyte-protocol/LICENSE", "reference/airbyte-protocol/LICENSE")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference")
