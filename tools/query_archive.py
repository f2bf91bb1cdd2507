"""Reads a local copy of the archive with DuckDB, as Athena or a data lake would: Hive partitions
from the path, gzip NDJSON, explicit columns for the common fields (unknown fields ignored).

Usage: query_archive.py <dir holding the prefix's objects> — prints one JSON object:
{"rows": n, "distinct_ids": n, "by_hour": {"YYYY-MM-DD HH": n}, "mismatched_partitions": n,
 "sample": {"<id>": {"type": ..., "created_at": ..., "organization_id": ..., "actor_type": ...}}}

       query_archive.py --lines FILE... — DuckDB's own gzip reader decodes each object and prints
{"<file>": ["<line>", ...]}: every line as text, untouched (no JSON parsing), in file order, so a
test can compare it byte for byte with what the API served.
"""

import json
import sys

import duckdb


def main(root: str) -> None:
    con = duckdb.connect()
    source = f"""read_json('{root}/year=*/month=*/day=*/hour=*/*.json.gz',
        format = 'newline_delimited', hive_partitioning = true, hive_types_autocast = false, compression = 'gzip',
        columns = {{id: 'VARCHAR', created_at: 'VARCHAR', type: 'VARCHAR',
                    organization_id: 'VARCHAR', actor: 'JSON'}})"""
    rows, distinct = con.sql(f"select count(*), count(distinct id) from {source}").fetchall()[0]
    by_hour = {
        f"{y}-{m}-{d} {h}": n
        for y, m, d, h, n in con.sql(
            f"select year, month, day, hour, count(*) from {source} group by all order by all"
        ).fetchall()
    }
    mismatched = con.sql(
        f"""select count(*) from {source}
            where strftime(cast(created_at as timestamp), '%Y%m%d%H')
                  != concat(year, month, day, hour)"""
    ).fetchall()[0][0]
    sample = {
        i: {"type": t, "created_at": c, "organization_id": o, "actor_type": a}
        for i, t, c, o, a in con.sql(
            f"select id, type, created_at, organization_id, actor->>'type' from {source} order by id limit 50"
        ).fetchall()
    }
    json.dump(
        {"rows": rows, "distinct_ids": distinct, "by_hour": by_hour,
         "mismatched_partitions": mismatched, "sample": sample},
        sys.stdout,
    )


def lines(files: list[str]) -> None:
    con = duckdb.connect()
    # One VARCHAR column, a delimiter and quote that never occur: DuckDB hands back each line as
    # it decompressed it.
    out = {
        f: [
            line
            for (line,) in con.execute(
                """select line from read_csv(?, columns = {'line': 'VARCHAR'}, delim = E'\\x01',
                   quote = '', escape = '', header = false, auto_detect = false,
                   compression = 'gzip', strict_mode = false)""",
                [f],
            ).fetchall()
        ]
        for f in files
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    if sys.argv[1] == "--lines":
        lines(sys.argv[2:])
    else:
        main(sys.argv[1])
