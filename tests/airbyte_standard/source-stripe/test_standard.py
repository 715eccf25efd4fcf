"""Airbyte's FAST standard tests (airbyte_cdk.test.standard_tests), unchanged, run against
our executable: `SourceStripeRs` is the small adapter they need. It is an airbyte-cdk
`Source` whose spec/check/discover/read run the binary and hand back the messages it
printed, so the CDK's entrypoint and the suites' assertions see exactly the connector's
output (config and catalog files are passed through as they are, unparsed)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConnectorSpecification,
    FailureType,
    Type,
)
from airbyte_cdk.sources import Source
from airbyte_cdk.test import standard_tests
from airbyte_cdk.test.standard_tests._spec_compatibility import compare_specs
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from conftest import BIN, HERE


def _messages(lines: Iterable[str]) -> Iterator[AirbyteMessage]:
    for line in lines:
        if line.strip():
            yield AirbyteMessageSerializer.load(json.loads(line))


def _raise_from(messages: list[AirbyteMessage], what: str, code: int) -> None:
    """The connector failed: raise its last TRACE error as the CDK would have."""
    errors = [m.trace.error for m in messages if m.type == Type.TRACE and m.trace.error]
    if errors:
        error = errors[-1]
        raise AirbyteTracedException(
            message=error.message,
            internal_message=error.internal_message,
            failure_type=error.failure_type or FailureType.system_error,
        )
    raise AirbyteTracedException(message=f"`{what}` exited with code {code} and no TRACE error")


class SourceStripeRs(Source):
    """Runs the `source-stripe` executable."""

    def _config_file(self, config: Mapping[str, Any]) -> str:
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        with handle:
            json.dump(config, handle)
        return handle.name

    def _run(self, *args: str) -> list[AirbyteMessage]:
        done = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=600)
        messages = list(_messages(done.stdout.splitlines()))
        if done.returncode != 0:
            _raise_from(messages, args[0], done.returncode)
        return messages

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        (spec,) = [m.spec for m in self._run("spec") if m.type == Type.SPEC]
        return spec

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        messages = self._run("check", "--config", self._config_file(config))
        (status,) = [m.connectionStatus for m in messages if m.type == Type.CONNECTION_STATUS]
        return status

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        messages = self._run("discover", "--config", self._config_file(config))
        (catalog,) = [m.catalog for m in messages if m.type == Type.CATALOG]
        return catalog

    # The binary reads the catalog and state files itself.
    def read_catalog(self, catalog_path: str) -> str:  # type: ignore[override]
        return catalog_path

    def read_state(self, state_path: str | None) -> str | None:  # type: ignore[override]
        return state_path

    def read(  # type: ignore[override]
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: str,
        state: str | None = None,
    ) -> Iterator[AirbyteMessage]:
        args = ["read", "--config", self._config_file(config), "--catalog", catalog]
        if state:
            args += ["--state", state]
        process = subprocess.Popen(
            [str(BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert process.stdout is not None
        seen: list[AirbyteMessage] = []
        for message in _messages(process.stdout):
            if message.type == Type.TRACE:
                seen.append(message)
            yield message
        code = process.wait(timeout=600)
        if code != 0:
            _raise_from(seen, "read", code)


class TestSourceStripeRs(standard_tests.SourceTestSuiteBase):
    """Airbyte's standard source tests, as they are."""

    connector = SourceStripeRs


REFERENCE_SPEC = HERE / "integration_tests" / "airbyte_source_stripe_6_spec.json"


def test_spec_is_backward_compatible_with_airbyte_source_stripe_6() -> None:
    """The registry comparison of `test_docker_image_spec_backward_compatibility`, offline:
    our spec against Airbyte's Stripe source 6.x as the previous version, with the CDK's own
    `compare_specs`. No config that spec accepts may be refused by ours."""
    previous = json.loads(REFERENCE_SPEC.read_text())
    done = subprocess.run([str(BIN), "spec"], capture_output=True, text=True, check=True)
    (current,) = [
        m["spec"] for m in map(json.loads, done.stdout.splitlines()) if m.get("type") == "SPEC"
    ]
    comparison = compare_specs(previous, current)
    assert comparison.is_backward_compatible, "\n".join(comparison.breaking)
