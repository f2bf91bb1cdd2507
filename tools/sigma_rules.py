"""The shipped Sigma rules as pySigma sees them: shared by sigma_convert.py and sigma_duckdb.py.

A pack is a folder of the rules directory (detections/<pack>/<rule>.yml); `pipelines/` and the
generated `dist/` are not packs. Every rule is parsed twice: once alone (its standalone queries,
finalized as a rule of its own) and once in the collection of all packs, which resolves the
references of correlation rules and says which rules are outputs: a rule that a correlation uses
without `generate: true` is an input of that correlation only, and alerts on nothing by itself.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule

NOT_PACKS = {"dist", "pipelines"}


@dataclass
class RuleFile:
    path: pathlib.Path
    pack: str
    text: str
    # The rule parsed alone, for its metadata. Conversions parse it again (`convert`): pipelines
    # change the rules they are applied to.
    rule: object
    # Whether the rule alerts by itself (false for a correlation's input without `generate`).
    output: bool

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_correlation(self) -> bool:
        return isinstance(self.rule, SigmaCorrelationRule)

    @property
    def rule_id(self) -> str:
        return str(self.rule.id)


def rule_paths(rules_dir: pathlib.Path) -> list[pathlib.Path]:
    """Every rule file of every pack, sorted."""
    return sorted(
        p
        for pack in rules_dir.iterdir()
        if pack.is_dir() and pack.name not in NOT_PACKS and not pack.name.startswith(".")
        for p in pack.glob("*.yml")
    )


def parse_alone(text: str) -> SigmaCollection:
    """One file's rules, references left unresolved (a correlation's inputs are in other files)."""
    return SigmaCollection.from_yaml(text, resolve_references=False)


def whole_collection(paths: list[pathlib.Path]) -> SigmaCollection:
    """All rules in one collection, correlation references resolved (a fresh parse each call)."""
    collection = SigmaCollection.merge(
        [parse_alone(p.read_text(encoding="utf-8")) for p in paths]
    )
    collection.resolve_rule_references()
    return collection


def load(rules_dir: pathlib.Path) -> tuple[list[RuleFile], SigmaCollection]:
    """The rule files and the whole collection they form."""
    paths = rule_paths(rules_dir)
    whole = whole_collection(paths)
    outputs = {str(r.id) for r in whole.rules if r._output}
    files = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        alone = parse_alone(text).rules[0]
        files.append(
            RuleFile(path=path, pack=path.parent.name, text=text, rule=alone, output=str(alone.id) in outputs)
        )
    return files, whole


def convert(backend, rule_file: RuleFile, paths: list[pathlib.Path], output_format: str) -> list:
    """The queries of one rule by one backend (a new backend object per call: pipelines keep state).

    A plain rule is converted alone, so its query is finalized even when a correlation also uses
    it. A correlation is converted within a fresh whole collection, its inputs first.
    """
    if not rule_file.is_correlation:
        fresh = parse_alone(rule_file.text).rules[0]
        return backend.convert_rule(fresh, output_format)
    whole = whole_collection(paths)
    backend.init_processing_pipeline(output_format)
    by_id = {str(r.id): r for r in whole.rules}
    target = by_id[rule_file.rule_id]

    def inputs_first(correlation: SigmaCorrelationRule) -> None:
        for reference in correlation.rules:
            used = reference.rule
            if isinstance(used, SigmaCorrelationRule):
                inputs_first(used)
                backend.convert_correlation_rule(used, output_format)
            else:
                backend.convert_rule(used, output_format)

    inputs_first(target)
    return backend.convert_correlation_rule(target, output_format)


def first_line(error: BaseException) -> str:
    """An error's message on one line, for a listing."""
    text = " ".join(str(error).split())
    return text or type(error).__name__
