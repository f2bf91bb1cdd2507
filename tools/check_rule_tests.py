#!/usr/bin/env python3
"""Runs every rule's test cases (detections/<pack>/<rule>.tests.ndjson) through pySigma's DuckDB
backend, as a second engine beside the detector, and checks the cases against the rules' fields.

For a detection rule, the rule is converted to DuckDB SQL and run over a table holding the case's
activities, one row per activity (dotted JSON paths as column names, `actor.email_address`); an
activity with arrays becomes one row per array member, so `audience.type: public` matches when any
member matches, as in the detector. The number of distinct activities matched must equal the case's
`expect`.

DuckDB's correlation SQL ignores the timespan, so a correlation rule is checked differently: its base
rule's SQL selects the matching activities, then this script counts windows the way the detector's
contract states them (sliding windows of `timespan` ending at each activity's `created_at`, one
group per `group-by` value tuple, a window's activities consumed when it fires). That part is a model
of the contract, not a second engine.

Also reported (as failures): a case whose line is not {"case", "expect", "activities"}, an activity
type not in the list of real types, an activity id used twice, a rule without a case that matches
and one that does not, and a field a rule's detection names that no matching case carries.

    .venv-sigma/bin/python tools/check_rule_tests.py [--types FILE] [DIR ...]   (default: detections)

Exit status 1 when anything failed. Needs pySigma, pySigma-backend-duckdb and duckdb.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from sigma_backend_duckdb.backend import DuckDBBackend  # type: ignore[import-not-found]
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

ID_COLUMN = "__activity_id"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    passed: int = 0
    correlations: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"{where}: {what}")


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


def matched_ids(sql: str, activities: list[dict], fields: set[str]) -> set[str]:
    """The ids of the activities the rule's SQL selects."""
    rows = []
    for activity in activities:
        for row in flatten(activity):
            row[ID_COLUMN] = activity.get("id")
            rows.append(row)
    columns = sorted({c for r in rows for c in r} | fields)
    kinds = {c: column_type([r.get(c) for r in rows]) for c in columns}
    con = duckdb.connect()
    try:
        quoted = ", ".join(f'"{c}" {kinds[c]}' for c in columns)
        con.execute(f"CREATE TABLE logs ({quoted})")
        placeholders = ", ".join("?" for _ in columns)
        con.executemany(
            f"INSERT INTO logs VALUES ({placeholders})",
            [[as_cell(r.get(c), kinds[c]) for c in columns] for r in rows],
        )
        return {row[0] for row in con.execute(f'SELECT DISTINCT "{ID_COLUMN}" FROM ({sql})').fetchall()}
    finally:
        con.close()


def get_path(activity: dict, path: str) -> object:
    current: object = activity
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def instant(activity: dict) -> float:
    return datetime.fromisoformat(str(activity["created_at"]).replace("Z", "+00:00")).timestamp()


def windows_fired(correlation: SigmaCorrelationRule, matched: list[dict]) -> int:
    """Sliding windows of `timespan` ending at each activity, per group; a fired window's
    activities are consumed. Supports event_count and value_count with gte/gt/eq conditions."""
    span = correlation.timespan.seconds
    condition = correlation.condition
    threshold = condition.count
    op = condition.op.name
    kind = correlation.type.name
    groups: dict[tuple, list[dict]] = {}
    for activity in sorted(matched, key=instant):
        key = tuple(json.dumps(get_path(activity, g)) for g in correlation.group_by or [])
        groups.setdefault(key, []).append(activity)
    fired = 0
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
                fired += 1
                live = []
    return fired


def to_sql(backend: DuckDBBackend, path: Path) -> str:
    """A detection rule's query, converted from its own file (in a collection where a correlation
    references it, pySigma converts the correlation only)."""
    return backend.convert_rule(SigmaCollection.from_yaml(path.read_text()).rules[0])[0]


def load_cases(path: Path, report: Report, seen_ids: dict[str, str], types: set[str] | None) -> list[dict]:
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path}:{n}"
        try:
            case = json.loads(line)
        except json.JSONDecodeError as e:
            report.fail(where, f"not JSON ({e})")
            continue
        if not isinstance(case, dict) or set(case) != {"case", "expect", "activities"}:
            report.fail(where, 'not {"case", "expect", "activities"}')
            continue
        for activity in case["activities"]:
            aid = activity.get("id")
            if aid in seen_ids:
                report.fail(where, f"activity id {aid} also used at {seen_ids[aid]}")
            seen_ids[aid] = where
            if types is not None and activity.get("type") not in types:
                report.fail(where, f"activity type {activity.get('type')!r} is not a real type")
        cases.append(case)
    return cases


def check_dir(root: Path, report: Report, types: set[str] | None) -> None:
    backend = DuckDBBackend(processing_pipeline=ProcessingPipeline())
    seen_ids: dict[str, str] = {}
    for pack in sorted(p for p in root.iterdir() if p.is_dir()):
        rules: dict[str, SigmaRule | SigmaCorrelationRule] = {}
        files: dict[str, Path] = {}
        paths = sorted(pack.glob("*.yml"))
        # One collection per pack, so a correlation resolves its base rule by name.
        collection = SigmaCollection.from_yaml("\n---\n".join(p.read_text() for p in paths))
        by_stem = {p.stem: p for p in paths}
        for rule in collection.rules:
            name = rule.name or str(rule.id)
            if name not in by_stem:
                report.fail(str(pack), f"rule {name} is not in a file named {name}.yml")
                continue
            rules[name] = rule
            files[name] = by_stem[name]
        for name, rule in rules.items():
            path = files[name]
            tests = path.with_name(path.stem + ".tests.ndjson")
            where = str(tests)
            if not tests.exists():
                report.fail(str(path), "no .tests.ndjson beside it")
                continue
            cases = load_cases(tests, report, seen_ids, types)
            if not any(c["expect"] >= 1 for c in cases) or not any(c["expect"] == 0 for c in cases):
                report.fail(where, "needs a case that matches and a case that does not")
            if isinstance(rule, SigmaCorrelationRule):
                base_names = [r.reference for r in rule.rules]
                bases = [rules.get(b) for b in base_names]
                if any(not isinstance(b, SigmaRule) for b in bases):
                    report.fail(str(path), f"base rule(s) {base_names} not in pack {pack.name}")
                    continue
                report.correlations.append(f"{pack.name}/{name}")
                for case in cases:
                    ids: set[str] = set()
                    for base in bases:
                        sql = to_sql(backend, files[base.name])
                        ids |= matched_ids(sql, case["activities"], rule_fields(base))
                    got = windows_fired(rule, [a for a in case["activities"] if a.get("id") in ids])
                    if got != case["expect"]:
                        report.fail(where, f"{case['case']!r}: {got} alert(s), expected {case['expect']}")
                    else:
                        report.passed += 1
                continue
            sql = to_sql(backend, path)
            fields = rule_fields(rule)
            matching: list[dict] = []
            for case in cases:
                ids = matched_ids(sql, case["activities"], fields)
                matching += [a for a in case["activities"] if a.get("id") in ids]
                if len(ids) != case["expect"]:
                    report.fail(where, f"{case['case']!r}: {len(ids)} alert(s), expected {case['expect']}")
                else:
                    report.passed += 1
            for f in sorted(fields):
                if not any(row.get(f) is not None for a in matching for row in flatten(a)):
                    report.fail(str(path), f"field {f} is carried by no matching case")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", default=["detections"], help="rule roots (folders of packs)")
    parser.add_argument("--types", help="file listing the real activity types, one a line")
    args = parser.parse_args()
    types = set(Path(args.types).read_text().split()) if args.types else None
    report = Report()
    for d in args.dirs:
        check_dir(Path(d), report, types)
    for failure in report.failures:
        print(f"FAIL {failure}")
    print(f"{report.passed} case(s) passed, {len(report.failures)} failure(s); "
          f"correlations checked against the window model: {', '.join(report.correlations) or 'none'}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
