"""parquet_check.py for an object store: reads a Parquet output prefix on an S3-compatible
server the way an analyst would, DuckDB through its httpfs extension (from the
duckdb-extension-httpfs package: DuckDB downloads extensions at run time, which CI
cannot) and pyarrow through its S3 filesystem, and prints the same JSON object.

    python s3_check.py ENDPOINT s3://BUCKET/PREFIX     # credentials from AWS_* variables
"""
import json
import os
import sys
from urllib.parse import urlparse

import duckdb
import duckdb_extension_httpfs
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from parquet_check import summarise


def main():
    endpoint, url = sys.argv[1], sys.argv[2].rstrip("/")
    host = urlparse(endpoint).netloc
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    con = duckdb.connect()
    ext = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions",
                       "v" + duckdb.__version__, "httpfs.duckdb_extension")
    con.execute(f"LOAD '{ext}'")
    con.execute(f"""CREATE SECRET moto (TYPE s3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
        SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', REGION 'us-east-1',
        ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)""")
    views = con.execute(f"SELECT content FROM read_text('{url}/views.sql')").fetchall()[0][0]
    con.execute(views)
    s3 = pafs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                           secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                           endpoint_override=endpoint, scheme="http", region="us-east-1")
    listing = s3.get_file_info(pafs.FileSelector(f"{bucket}/{prefix}"))
    streams = sorted(os.path.basename(i.path) for i in listing if i.type == pafs.FileType.Directory)
    print(json.dumps(summarise(con, streams, lambda stream: ds.dataset(
        f"{bucket}/{prefix}/{stream}", filesystem=s3, format="parquet", partitioning="hive"))))


if __name__ == "__main__":
    main()
