"""Runs Airbyte's standard tests against our executable: starts the emulator (the binary's
`emulator` command) for the session and writes the configs acceptance-test-config.yml
names. The binary is $SOURCE_STRIPE_BIN (the release build by default)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parents[2]
BIN = Path(os.environ.get("SOURCE_STRIPE_BIN", REPO / "target" / "release" / "source-stripe"))

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

_emulator: subprocess.Popen[bytes] | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_configure(config) -> None:  # noqa: ANN001
    global _emulator
    if not BIN.is_file():
        raise RuntimeError(f"{BIN} is missing: build it with `cargo build --release`")
    port = _free_port()
    _emulator = subprocess.Popen(
        [str(BIN), "emulator", "--port", str(port), "--size", "300"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or _emulator.poll() is not None:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    request = urllib.request.Request(
        f"{base}/v1/account", headers={"Authorization": "Bearer sk_test_emulator_platform"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        account_id = json.load(answer)["id"]
    secrets = HERE / "secrets"
    secrets.mkdir(exist_ok=True)
    common = {"client_secret": "sk_test_emulator_platform", "api_base": base}
    configs = {
        "config.json": {**common, "start_date": "2017-01-25T00:00:00Z", "call_rate_limit": 500},
        # Every field of Airbyte's Stripe source 6.x, as its users have them.
        "config_airbyte_6.json": {
            **common,
            "account_id": account_id,
            "start_date": "2017-01-25T00:00:00Z",
            "lookback_window_days": 0,
            "slice_range": 365,
            "num_workers": 10,
            "call_rate_limit": 100,
            "api_retention_streams": ["customers", "invoices"],
        },
        "config_connected_accounts.json": {
            **common,
            "call_rate_limit": 500,
            "connected_accounts": {"accounts": "all"},
        },
        "invalid_key.json": {**common, "client_secret": "sk_test_thisKeyDoesNotExist1234"},
    }
    for name, value in configs.items():
        (secrets / name).write_text(json.dumps(value))


_IMAGE_SKIP = (
    "Docker image tests: they build the image FROM a base image pulled from Docker Hub, which "
    "this CI cannot reach; the same spec/check/discover/read checks run in-process against "
    "the binary in this suite"
)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    import pytest

    for item in items:
        if item.get_closest_marker("image_tests"):
            item.add_marker(pytest.mark.skip(reason=_IMAGE_SKIP))


def pytest_unconfigure(config) -> None:  # noqa: ANN001
    if _emulator is not None:
        _emulator.terminate()
        _emulator.wait(timeout=30)
