#!/usr/bin/env python3
"""Runs every rule's test cases (detections/<pack>/<rule>.tests.ndjson) through pySigma's DuckDB
backend, as a second engine beside the detector, and checks the cases against the rules' fields.

For a detection rule, the rule is converted to DuckDB SQL and run over a table holding the case's
activities, one row per activity (dotted JSON paths as column names, `actor.email_address`); an
activity with arrays becomes one row per array member, so `audience.type: public` matches when any
member matches, as in the detector. The number of distinct activities matched must equal the case's
`expect`.

DuckDB's correlation SQL ignores the timespan, so a correlation rule is checked differently: its base
rule's SQL selects the matching activities, then the windows are counted with the model of the
detector's contract in sigma_engine.py (shared with sigma_duckdb.py). That part is a model of the
contract, not a second engine.

Also reported (as failures): a case whose line is not {"case", "expect", "activities"}, an activity
type not in the list of real types, an activity id used twice, a rule without a case that matches
and one that does not, and a field a rule's detection names that no matching case carries.

    .venv-sigma/bin/python tools/check_rule_tests.py [--types FILE] [DIR ...]   (default: detections)

Exit status 1 when anything failed. Needs pySigma, pySigma-backend-duckdb and duckdb.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sigma_backend_duckdb.backend import DuckDBBackend  # type: ignore[import-not-found]
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sigma_engine import fired_windows, flatten, matched_ids, rule_fields  # noqa: E402
from sigma_rules import NOT_PACKS  # noqa: E402


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    passed: int = 0
    correlations: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"{where}: {what}")


def windows_fired(correlation: SigmaCorrelationRule, matched: list[dict]) -> int:
    return len(fired_windows(correlation, matched))


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
    for pack in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in NOT_PACKS):
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
