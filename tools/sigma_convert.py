"""`make sigma`: every shipped rule converted into each SIEM's query language, under detections/dist/.

    .venv-sigma/bin/python tools/sigma_convert.py --rules detections --pipelines detections/pipelines --out detections/dist

Writes, per backend, one file per rule (detections/dist/<backend>/<pack>/<rule>.<ext>) and one
file to load them all where the SIEM has an import format:

- splunk/: SPL (`.spl`) with detections/pipelines/splunk.yml (sourcetype condition), and
  savedsearches.conf (the Splunk backend's own `savedsearches` format);
- elastic/esql/ (`.esql`) and elastic/lucene/ (`.lucene`) with detections/pipelines/elastic.yml
  (`anthropic.` field prefix, `filebeat-*` for ES|QL), and elastic/esql-rules.ndjson: Elastic
  Security ES|QL rules for Rules -> Import;
- sentinel/: KQL (`.kql`) with detections/pipelines/sentinel.yml (table
  AnthropicComplianceActivity_CL, `type` -> ActivityType), and analytics-rules.json: an ARM template
  of Sentinel scheduled analytics rules;
- panther/: Panther Python detections (`.py`, the backend's default pipeline: the Anthropic.Activity
  fields are the activity's own) with the YAML spec next to each, for `panther_analysis_tool upload`.

Every rule a backend cannot express is printed and listed in detections/dist/UNSUPPORTED.md with
the backend's reason. The conversions happen offline: nothing here reaches the network. Exits 1 if
a rule cannot be read at all; an unsupported rule is a listing, not a failure.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.backends.kusto import KustoBackend
from sigma.backends.panther import PantherBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import sigma_rules  # noqa: E402

# How often the generated scheduled searches run, and over how much time (the collector's
# objects land every 5 minutes; an hour covers the correlation windows of the packs).
SCHEDULE_MINUTES = 5
LOOKBACK_MINUTES = 60
PANTHER_LOG_TYPE = "Anthropic.Activity"
SEVERITY = {
    "informational": "Informational",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
    "critical": "Critical",
}
ELASTIC_RISK = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}


@dataclass
class Target:
    """One backend: how to build it, where its files go, and their extension."""

    name: str
    folder: str
    extension: str
    make: Callable[[], object]
    output_format: str = "default"


@dataclass
class Converted:
    rule: sigma_rules.RuleFile
    queries: list


def pipeline(pipelines: pathlib.Path, name: str) -> ProcessingPipeline:
    return ProcessingPipeline.from_yaml((pipelines / f"{name}.yml").read_text(encoding="utf-8"))


def targets(pipelines: pathlib.Path) -> list[Target]:
    return [
        Target("splunk", "splunk", "spl", lambda: SplunkBackend(pipeline(pipelines, "splunk"))),
        Target("elastic ES|QL", "elastic/esql", "esql", lambda: ESQLBackend(pipeline(pipelines, "elastic"))),
        Target(
            "elastic Lucene", "elastic/lucene", "lucene", lambda: LuceneBackend(pipeline(pipelines, "elastic"))
        ),
        Target("sentinel KQL", "sentinel", "kql", lambda: KustoBackend(pipeline(pipelines, "sentinel"))),
        Target("panther", "panther", "py", lambda: PantherBackend(), "python"),
    ]


def level(rule) -> str:
    return rule.level.name.lower() if rule.level is not None else "medium"


def tags(rule) -> list[str]:
    return [f"{t.namespace}.{t.name}" for t in rule.tags]


def query_text(queries: list) -> str:
    return "\n\n".join(q if isinstance(q, str) else json.dumps(q, indent=2) for q in queries) + "\n"


def splunk_savedsearches(paths: list[pathlib.Path], pipelines: pathlib.Path) -> str:
    """The Splunk backend's savedsearches.conf over every rule it can express."""
    backend = SplunkBackend(pipeline(pipelines, "splunk"), collect_errors=True)
    return backend.convert(sigma_rules.whole_collection(paths), "savedsearches")


def elastic_rules(converted: list[Converted]) -> str:
    """Elastic Security detection rules (type esql), one JSON a line, for Rules -> Import."""
    lines = []
    for c in converted:
        r = c.rule.rule
        lines.append(
            json.dumps(
                {
                    "rule_id": c.rule.rule_id,
                    "name": r.title,
                    "description": (r.description or r.title).strip(),
                    "type": "esql",
                    "language": "esql",
                    "query": "\n".join(c.queries),
                    "severity": level(r) if level(r) != "informational" else "low",
                    "risk_score": ELASTIC_RISK[level(r)],
                    "interval": f"{SCHEDULE_MINUTES}m",
                    "from": f"now-{LOOKBACK_MINUTES}m",
                    "tags": ["Anthropic", f"pack:{c.rule.pack}", *tags(r)],
                    "false_positives": [str(f) for f in (r.falsepositives or [])],
                    "references": [str(u) for u in (r.references or [])],
                    "enabled": False,
                },
                sort_keys=True,
            )
        )
    return "\n".join(lines) + ("\n" if lines else "")


def sentinel_template(converted: list[Converted]) -> str:
    """An ARM template of Sentinel scheduled analytics rules, disabled until you enable them."""
    resources = []
    for c in converted:
        r = c.rule.rule
        resources.append(
            {
                "type": "Microsoft.OperationalInsights/workspaces/providers/alertRules",
                "apiVersion": "2023-02-01",
                "name": f"[concat(parameters('workspace'), '/Microsoft.SecurityInsights/', '{c.rule.rule_id}')]",
                "kind": "Scheduled",
                "properties": {
                    "displayName": f"Anthropic: {r.title}",
                    "description": (r.description or r.title).strip(),
                    "severity": SEVERITY[level(r)],
                    "enabled": False,
                    "query": "\n".join(c.queries),
                    "queryFrequency": f"PT{SCHEDULE_MINUTES}M",
                    "queryPeriod": f"PT{LOOKBACK_MINUTES}M",
                    "triggerOperator": "GreaterThan",
                    "triggerThreshold": 0,
                    "suppressionDuration": "PT1H",
                    "suppressionEnabled": False,
                    "tactics": [],
                    "eventGroupingSettings": {"aggregationKind": "AlertPerResult"},
                },
            }
        )
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"workspace": {"type": "string"}},
        "resources": resources,
    }
    return json.dumps(template, indent=2) + "\n"


def panther_spec(c: Converted) -> str:
    """The YAML spec panther_analysis_tool reads beside a Python detection."""
    r = c.rule.rule
    description = " ".join((r.description or r.title).split())
    lines = [
        "AnalysisType: rule",
        f"Filename: {c.rule.stem}.py",
        f"RuleID: Anthropic.Sigma.{c.rule.rule_id}",
        f"DisplayName: {json.dumps('Anthropic: ' + r.title)}",
        "Enabled: true",
        "LogTypes:",
        f"  - {PANTHER_LOG_TYPE}",
        f"Severity: {SEVERITY[level(r)].replace('Informational', 'Info')}",
        f"Description: {json.dumps(description)}",
        "Tags:",
        "  - Anthropic",
        f"  - {c.rule.pack}",
    ]
    lines += [f"  - {t}" for t in tags(r)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=pathlib.Path, default=pathlib.Path("detections"))
    parser.add_argument("--pipelines", type=pathlib.Path, default=pathlib.Path("detections/pipelines"))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("detections/dist"))
    args = parser.parse_args()

    files, _ = sigma_rules.load(args.rules)
    paths = [f.path for f in files]
    if not files:
        print(f"no rules under {args.rules}/<pack>/", file=sys.stderr)
        return 1
    if args.out.exists():
        shutil.rmtree(args.out)
    unsupported: list[tuple[str, sigma_rules.RuleFile, str]] = []
    inputs_only = [f for f in files if not f.output]
    summary = []
    for target in targets(args.pipelines):
        converted = []
        for f in files:
            if not f.output:
                continue
            try:
                queries = sigma_rules.convert(target.make(), f, paths, target.output_format)
            except Exception as error:  # the backend's refusal, whatever its class
                unsupported.append((target.name, f, sigma_rules.first_line(error)))
                continue
            if not queries:
                unsupported.append((target.name, f, "the backend produced no query"))
                continue
            out = args.out / target.folder / f.pack / f"{f.stem}.{target.extension}"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(query_text(queries), encoding="utf-8")
            converted.append(Converted(f, queries))
            if target.folder == "panther":
                out.with_suffix(".yml").write_text(panther_spec(converted[-1]), encoding="utf-8")
        folder = args.out / target.folder
        folder.mkdir(parents=True, exist_ok=True)
        if target.folder == "elastic/esql":
            (args.out / "elastic" / "esql-rules.ndjson").write_text(elastic_rules(converted), encoding="utf-8")
        if target.folder == "sentinel":
            (folder / "analytics-rules.json").write_text(sentinel_template(converted), encoding="utf-8")
        summary.append(f"{target.name}: {len(converted)} of {len(files) - len(inputs_only)} rules")
    (args.out / "splunk" / "savedsearches.conf").write_text(
        splunk_savedsearches(paths, args.pipelines), encoding="utf-8"
    )

    report = unsupported_markdown(unsupported, inputs_only)
    (args.out / "UNSUPPORTED.md").write_text(report, encoding="utf-8")
    for line in summary:
        print(line)
    print(f"written under {args.out}/")
    print()
    print(report, end="")
    return 0


def unsupported_markdown(
    unsupported: list[tuple[str, sigma_rules.RuleFile, str]], inputs_only: list[sigma_rules.RuleFile]
) -> str:
    lines = ["# Rules a backend cannot express", ""]
    lines.append("Generated by `make sigma` (tools/sigma_convert.py); the reason is the backend's own.")
    lines.append("")
    if unsupported:
        lines += ["| backend | rule | title | reason |", "|---|---|---|---|"]
        for backend, f, reason in unsupported:
            cell = reason.replace("|", "\\|")
            lines.append(f"| {backend} | `{f.pack}/{f.path.name}` | {f.rule.title} | {cell} |")
    else:
        lines.append("Every rule converts with every backend.")
    if inputs_only:
        lines += ["", "Not converted alone (inputs of a correlation, without `generate: true`):", ""]
        lines += [f"- `{f.pack}/{f.path.name}` ({f.rule.title})" for f in inputs_only]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
