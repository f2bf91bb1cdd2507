"""What the Python side of the Sigma checks shares (check_rule_tests.py, sigma_duckdb.py): activities
as rows of a DuckDB table for pySigma's DuckDB SQL, and the correlation window model.

Rows: an activity spreads into one row per any-member alternative (an array yields one alternative
per element, so `audience.type: public` matches when any member matches, as in the detector), with
the dotted JSON paths as column names (`actor.email_address`) and the activity id in ID_COLUMN.

Windows: DuckDB's correlation SQL ignores the timespan, so a correlation is computed from its base
rules' matches the way the detector's contract states it: sliding windows of `timespan` ending at
each activity's `created_at` (whole seconds, as the detector counts them), one group per `group-by`
value tuple, a fired window's activities consumed. That is a model of the contract, not an engine.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime

import duckdb
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

ID_COLUMN = "__activity_id"


def flatten(value: object, prefix: str = "") -> list[dict[str, object]]:
    """Every row a JSON value spreads into: objects join their members' rows, arrays yield one
    alternative per element (any-member semantics)."""
    if isinstance(value, dict):
        parts = [flatten(v, f"{prefix}{k}.") for k, v in value.items()]
        rows = []
        for combo in itertools.product(*parts):
            row: dict[str, object] = {}
            for part in combo:
                row.update(part)
            rows.append(row)
        return rows or [{}]
    key = prefix[:-1]
    if isinstance(value, list):
        rows = [r for item in value for r in flatten(item, prefix)]
        return rows or [{key: None}]
    return [{key: value}]


def detection_fields(detection: SigmaDetection | SigmaDetectionItem) -> set[str]:
    if isinstance(detection, SigmaDetectionItem):
        return {detection.field} if detection.field else set()
    out: set[str] = set()
    for item in detection.detection_items:
        out |= detection_fields(item)
    return out


def rule_fields(rule: SigmaRule) -> set[str]:
    """Every field a detection rule's selections name."""
    out: set[str] = set()
    for detection in rule.detection.detections.values():
        out |= detection_fields(detection)
    return out


def column_type(values: list[object]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "BIGINT"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    return "VARCHAR"


def as_cell(value: object, kind: str) -> object:
    if value is None or kind != "VARCHAR" or isinstance(value, str):
        return value
    return json.dumps(value)


def load_logs(con: duckdb.DuckDBPyConnection, activities: list[dict], fields: set[str]) -> None:
    """Creates the table `logs` the backend's SQL queries: the activities' rows, with a column for
    each of `fields` even where no activity carries it."""
    rows = []
    for activity in activities:
        for row in flatten(activity):
            row[ID_COLUMN] = activity.get("id")
            rows.append(row)
    columns = sorted({c for r in rows for c in r} | fields | {ID_COLUMN})
    kinds = {c: column_type([r.get(c) for r in rows]) for c in columns}
    quoted = ", ".join(f'"{c}" {kinds[c]}' for c in columns)
    con.execute(f"CREATE OR REPLACE TABLE logs ({quoted})")
    if rows:
        placeholders = ", ".join("?" for _ in columns)
        con.executemany(
            f"INSERT INTO logs VALUES ({placeholders})",
            [[as_cell(r.get(c), kinds[c]) for c in columns] for r in rows],
        )


def selected_ids(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """The ids of the activities a rule's SQL selects from `logs`."""
    return {row[0] for row in con.execute(f'SELECT DISTINCT "{ID_COLUMN}" FROM ({sql})').fetchall()}


def matched_ids(sql: str, activities: list[dict], fields: set[str]) -> set[str]:
    """The ids of `activities` that a rule's SQL selects (a table of their own)."""
    con = duckdb.connect()
    try:
        load_logs(con, activities, fields)
        return selected_ids(con, sql)
    finally:
        con.close()


def get_path(activity: dict, path: str) -> object:
    current: object = activity
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def instant(activity: dict) -> int:
    """`created_at` in whole Unix seconds, as the detector measures windows."""
    return int(datetime.fromisoformat(str(activity["created_at"]).replace("Z", "+00:00")).timestamp())


def fired_windows(correlation: SigmaCorrelationRule, matched: list[dict]) -> list[list[dict]]:
    """The windows that fire, each its activities oldest first: sliding windows of `timespan`
    ending at each activity, per group; a fired window's activities are consumed. Supports
    event_count and value_count with gte/gt/eq conditions."""
    span = correlation.timespan.seconds
    condition = correlation.condition
    threshold = condition.count
    op = condition.op.name
    kind = correlation.type.name
    groups: dict[tuple, list[dict]] = {}
    for activity in sorted(matched, key=lambda a: (instant(a), str(a.get("id")))):
        key = tuple(json.dumps(get_path(activity, g)) for g in correlation.group_by or [])
        groups.setdefault(key, []).append(activity)
    fired = []
    for members in groups.values():
        live: list[dict] = []
        for activity in members:
            now = instant(activity)
            live = [a for a in live if instant(a) >= now - span]
            live.append(activity)
            if kind == "VALUE_COUNT":
                measure = len({json.dumps(get_path(a, condition.fieldref)) for a in live})
            else:
                measure = len(live)
            met = {"GTE": measure >= threshold, "GT": measure > threshold, "EQ": measure == threshold}.get(op)
            if met is None:
                raise ValueError(f"condition {op} is not modelled")
            if met:
                fired.append(live)
                live = []
    return fired
