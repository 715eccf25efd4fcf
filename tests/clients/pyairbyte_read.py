"""PyAirbyte runs our binary as a local executable and reads every stream into its
default DuckDB cache (`.cache/` under the working directory). Driven by
tests/it/pyairbyte.rs, which starts the emulator and checks what this reports.

    pyairbyte_read.py BINARY CONFIG_JSON RESULT_JSON

Run it twice in the same directory: the second read starts from the state PyAirbyte
kept in the cache. RESULT_JSON gets the records this read processed and, per stream,
the rows and distinct ids now in the cache and the ids this read extracted.
"""

import json
import sys
from datetime import datetime, timezone

import airbyte as ab


def main() -> None:
    binary, config_path, result_path = sys.argv[1:4]
    with open(config_path) as f:
        config = json.load(f)
    source = ab.get_source(
        "source-stripe",
        config=config,
        local_executable=binary,
        streams="*",
    )
    source.check()
    cache = ab.get_default_cache()
    started = datetime.now(timezone.utc)
    result = source.read(cache=cache)
    streams = {}
    for name in source.get_selected_streams():
        table = cache[name].to_sql_table()
        sql_table = f'{table.schema}."{table.name}"'
        rows, distinct = cache.run_sql_query(
            f"SELECT count(*), count(DISTINCT id) FROM {sql_table}"
        )[0].values()
        read_ids = [
            row["id"]
            for row in cache.run_sql_query(
                f"SELECT DISTINCT id FROM {sql_table} "
                f"WHERE _airbyte_extracted_at >= '{started.isoformat()}'"
            )
        ]
        streams[name] = {"rows": rows, "distinct_ids": distinct, "read_ids": read_ids}
    with open(result_path, "w") as f:
        json.dump({"processed_records": result.processed_records, "streams": streams}, f)


if __name__ == "__main__":
    main()
