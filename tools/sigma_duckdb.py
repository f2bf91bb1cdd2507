#!/usr/bin/env python3
"""The cross-engine test's second engine (tests/cross_engine.rs): every shipped Sigma rule converted
with pySigma's DuckDB backend and run over a local copy of the archive.

    .venv-sigma/bin/python tools/sigma_duckdb.py [--rules detections] ARCHIVE_DIR

ARCHIVE_DIR holds the prefix's objects as the collector wrote them
(year=YYYY/month=MM/day=DD/hour=HH/*.json.gz). DuckDB reads them (gzip NDJSON, Hive partitions);
the activities become the table `logs` (sigma_engine.load_logs: dotted paths as columns, one row per
any-member alternative of an array) and each detection rule's SQL runs over it. The backend's
correlation SQL ignores the timespan, so a correlation's windows are computed by
sigma_engine.fired_windows over its base rules' matches: the model of the detector's contract, not a
second engine.

Prints one JSON object:
  {"activities": N,
   "rules": {"<rule id>": {"file": "<pack>/<rule>.yml", "correlation": bool, "alerts": bool,
                           "ids": [matched activity ids, sorted]}},
   "windows": {"<correlation id>": [[activity ids of one fired window, sorted], ...]}}
`alerts` is false for a rule that only feeds a correlation (no `generate`); a correlation's `ids`
are the activities of its fired windows.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import duckdb
from sigma_backend_duckdb.backend import DuckDBBackend  # type: ignore[import-not-found]
from sigma.processing.pipeline import ProcessingPipeline

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import sigma_engine  # noqa: E402
import sigma_rules  # noqa: E402


def read_archive(con: duckdb.DuckDBPyConnection, root: pathlib.Path) -> list[dict]:
    """Every activity of the archive, in key order then line order, as DuckDB reads the objects."""
    source = f"""read_json_objects('{root}/year=*/month=*/day=*/hour=*/*.json.gz',
        format = 'newline_delimited', compression = 'gzip', hive_partitioning = true,
        filename = true)"""
    rows = con.sql(f"SELECT json, filename FROM {source} ORDER BY filename").fetchall()
    return [json.loads(text) for text, _ in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=pathlib.Path, help="a local copy of the prefix's objects")
    parser.add_argument("--rules", type=pathlib.Path, default=pathlib.Path("detections"))
    args = parser.parse_args()
    files, whole = sigma_rules.load(args.rules)
    con = duckdb.connect()
    activities = read_archive(con, args.archive)
    plain = [f for f in files if not f.is_correlation]
    fields: set[str] = set()
    for f in plain:
        fields |= sigma_engine.rule_fields(f.rule)
    sigma_engine.load_logs(con, activities, fields)
    rules: dict[str, dict] = {}
    matched: dict[str, set[str]] = {}
    for f in plain:
        backend = DuckDBBackend(processing_pipeline=ProcessingPipeline())
        (sql,) = sigma_rules.convert(backend, f, [], "default")
        matched[f.rule_id] = sigma_engine.selected_ids(con, sql)
        rules[f.rule_id] = {"file": f"{f.pack}/{f.path.name}", "correlation": False,
                            "alerts": f.output, "ids": sorted(matched[f.rule_id])}
    by_id = {a.get("id"): a for a in activities}
    windows: dict[str, list[list[str]]] = {}
    for f in files:
        if not f.is_correlation:
            continue
        correlation = next(r for r in whole.rules if str(r.id) == f.rule_id)
        ids: set[str] = set()
        for reference in correlation.rules:
            # Resolved by sigma_rules.load: the base rule itself.
            ids |= matched[str(reference.rule.id)]
        fired = sigma_engine.fired_windows(correlation, [by_id[i] for i in ids])
        windows[f.rule_id] = sorted(sorted(str(a["id"]) for a in w) for w in fired)
        rules[f.rule_id] = {"file": f"{f.pack}/{f.path.name}", "correlation": True,
                            "alerts": f.output, "ids": sorted({i for w in windows[f.rule_id] for i in w})}
    json.dump({"activities": len(activities), "rules": rules, "windows": windows}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
