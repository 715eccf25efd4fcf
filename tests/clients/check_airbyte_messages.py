"""Parses Airbyte messages with Airbyte's own protocol models (`airbyte-protocol-models`
from PyPI), the models Airbyte's Python CDK and PyAirbyte are built on.

tests/it/util.rs starts this once per test run and feeds it every stdout line the end-to-
end tests parse, in batches: the lines of one run, then a line `END`. For each batch it
answers one line: `ok N`, or `error <what is wrong>` naming the first bad line.
"""

import sys

from airbyte_protocol.models import AirbyteMessage

# The field of the message each type must carry.
PAYLOAD = {
    "RECORD": "record",
    "STATE": "state",
    "LOG": "log",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog",
    "TRACE": "trace",
    "CONTROL": "control",
}


def check(line: str) -> str | None:
    try:
        message = AirbyteMessage.parse_raw(line)
    except Exception as err:  # noqa: BLE001 - any failure is the answer
        return str(err).replace("\n", " ")
    field = PAYLOAD.get(message.type.value)
    if field is None or getattr(message, field) is None:
        return f"a {message.type.value} message without `{field}`"
    return None


def main() -> None:
    count, error = 0, None
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if line == "END":
            print(f"error {error}" if error else f"ok {count}", flush=True)
            count, error = 0, None
            continue
        count += 1
        if error is None:
            problem = check(line)
            if problem:
                error = f"line {count}: {problem}: {line[:300]}"


if __name__ == "__main__":
    main()
