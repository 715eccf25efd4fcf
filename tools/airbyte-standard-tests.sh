#!/usr/bin/env bash
# Runs Airbyte's standard tests (airbyte_cdk.test.standard_tests) against the release
# binary and the emulator: tests/airbyte_standard/source-stripe/. Needs
# tools/setup-clients.sh (the airbyte-cdk environment) and `cargo build --release`.
#
#   tools/airbyte-standard-tests.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$PWD/target/clients/airbyte-cdk/bin/python
if [ ! -x "$python" ]; then
    echo "missing $python: run tools/setup-clients.sh" >&2
    exit 1
fi
export SOURCE_STRIPE_BIN="${SOURCE_STRIPE_BIN:-$PWD/target/release/source-stripe}"
cd tests/airbyte_standard/source-stripe
# -rs: every skipped test with its reason. Exit 5 (no test collected) is a failure too.
status=0
timeout 600 "$python" -m pytest -q -rs -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: the standard tests did not run" >&2
fi
exit "$status"
