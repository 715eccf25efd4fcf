"""Reads a Parquet output folder the way an analyst would, with DuckDB and pyarrow, and
prints what it saw as one JSON object (the Rust test in tests/it/parquet.rs asserts on it).

    python parquet_check.py FOLDER      # run from FOLDER's parent (views.sql paths are relative)

For every stream folder: rows in all files (DuckDB and pyarrow), the ids and `updated` of
the latest-version view (the one views.sql defines, the README's query), and the types
DuckDB and pyarrow give a few columns.
"""
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds

COLUMNS = ["id", "created", "updated", "is_deleted", "amount", "livemode", "metadata",
           "outcome", "refunds", "_extra", "_synced_at", "_seq", "stripe_account"]


def main():
    folder = sys.argv[1]
    con = duckdb.connect()
    with open(os.path.join(folder, "views.sql")) as f:
        con.execute(f.read())
    streams = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    print(json.dumps(summarise(con, streams, lambda stream: ds.dataset(
        os.path.join(folder, stream), format="parquet", partitioning="hive"))))


def summarise(con, streams, dataset):
    """What DuckDB (views.sql already run on `con`) and pyarrow (`dataset(stream)`) see of
    each stream: rows of all versions, the latest-version view, and column types."""
    out = {}
    for stream in streams:
        versions = con.execute(f"SELECT count(*) FROM {stream}_versions").fetchall()[0][0]
        latest = con.execute(
            f"SELECT id, epoch_ms(updated) // 1000 FROM {stream} ORDER BY id"
        ).fetchall()
        described = {r[0]: r[1] for r in con.execute(f"DESCRIBE {stream}_versions").fetchall()}
        table = dataset(stream).to_table()
        out[stream] = {
            "versions": versions,
            "latest": [[i, u] for i, u in latest],
            "duckdb_types": {c: described[c] for c in COLUMNS if c in described},
            "pyarrow_rows": table.num_rows,
            "pyarrow_types": {c: str(table.schema.field(c).type)
                              for c in COLUMNS if c in table.schema.names},
        }
    return out


if __name__ == "__main__":
    main()
