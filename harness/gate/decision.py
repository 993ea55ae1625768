"""The gate's decision: every KPI check and every must-pass conversation, each with a reason a release manager
reads, for example `escalation_accuracy.v1 0.81 [0.74, 0.87] n=120 fell 0.07 below baseline 0.88 (paired
p=0.01); allowed 0.03`. Pure: it reads two scored runs and the specification; it never stops at the first failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError
from harness.gate.paired import compare
from harness.gate.spec import GateSpec, KpiCheck, MustPass
from harness.metrics import MetricResult, ScoringCore, compute_all


@dataclass(frozen=True)
class ScoredRun:
    """A run as the gate sees it: its turn records scored, and what it measured."""

    core: ScoringCore | None
    """None for a baseline given as scorecard.json alone (no paired tests then)."""
    kpis: dict[str, MetricResult | dict[str, Any]]
    stamp: dict[str, Any]
    source: str

    def value(self, name: str) -> tuple[float | None, int]:
        kpi = self.kpis.get(name)
        if kpi is None:
            return None, 0
        if isinstance(kpi, MetricResult):
            return kpi.value, kpi.n
        return kpi.get("value"), int(kpi.get("n") or 0)


def scored(core: ScoringCore, stamp: dict[str, Any], source: str) -> ScoredRun:
    return ScoredRun(core, {k.name: k for k in compute_all(core)}, stamp, source)


@dataclass(frozen=True)
class Check:
    name: str
    group: str
    """`kpi` or `must_pass`."""
    passed: bool
    message: str
    known_failure: bool = False
    """A must-pass conversation that fails now and in the baseline, under a no_new_failures rule: reported,
    not blocking."""


@dataclass(frozen=True)
class GateResult:
    checks: list[Check]
    run: dict[str, Any]
    baseline: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "undefined"
    return f"{value:.0f} ms" if unit == "ms" else f"{value:.2f}"


def kpi_check(name: str, check: KpiCheck, spec: GateSpec, run: ScoredRun, baseline: ScoredRun | None) -> Check:
    """One KPI against its threshold, minimum support and allowed regression."""
    result = run.kpis[name]
    assert isinstance(result, MetricResult)
    unit = result.unit
    interval = (
        f" [{fmt(result.interval[0], unit).removesuffix(' ms')}, {fmt(result.interval[1], unit)}]"
        if result.interval
        else ""
    )
    head = f"{name} {fmt(result.value, unit)}{interval} n={result.n}"
    if result.value is None:
        if check.allow_undefined:
            return Check(name, "kpi", True, f"{head}: undefined, which the specification allows")
        return Check(
            name,
            "kpi",
            False,
            f"{head} is undefined ({result.warning or 'no data'}); the gate fails "
            "closed (set allow_undefined to accept)",
        )
    problems: list[str] = []
    notes: list[str] = []
    min_n = check.min_n if check.min_n is not None else spec.policy.min_n
    if result.n < min_n:
        problems.append(f"has too few samples (n={result.n}, at least {min_n} required)")
    higher = bool(result.higher_is_better)
    if check.threshold is not None:
        below = result.value < check.threshold if higher else result.value > check.threshold
        if below:
            problems.append(f"is {'below the floor' if higher else 'above the ceiling'} {fmt(check.threshold, unit)}")
    if check.max_regression is not None and baseline is not None:
        base, _ = baseline.value(name)
        if base is None:
            notes.append("the baseline has no value to compare with")
        else:
            worse = (base - result.value) if higher else (result.value - base)
            moved = (
                f"{'fell' if higher else 'rose'} {fmt(abs(worse), unit)} {'below' if higher else 'above'} "
                f"baseline {fmt(base, unit)}"
            )
            if worse <= check.max_regression:
                notes.append(f"baseline {fmt(base, unit)}, within the allowed {fmt(check.max_regression, unit)}")
            elif spec.policy.comparison == "point" or run.core is None or baseline.core is None:
                why = "" if spec.policy.comparison == "point" else " (point comparison: no baseline turn records)"
                problems.append(f"{moved}{why}; allowed {fmt(check.max_regression, unit)}")
            else:
                paired = compare(name, run.core, baseline.core)
                test = f"paired {paired.p_text()}, {paired.method}"
                if paired.p_value < spec.policy.alpha:
                    problems.append(f"{moved} ({test}); allowed {fmt(check.max_regression, unit)}")
                else:
                    notes.append(
                        f"{moved}, more than the allowed {fmt(check.max_regression, unit)} but within "
                        f"noise ({test} >= {spec.policy.alpha})"
                    )
    if problems:
        return Check(name, "kpi", False, f"{head} " + "; ".join(problems))
    return Check(name, "kpi", True, f"{head} passes" + (f" ({'; '.join(notes)})" if notes else ""))


def must_pass_checks(rule: MustPass, run: ScoredRun, baseline: ScoredRun | None = None) -> list[Check]:
    """One check per conversation the rule selects (a failing check when it selects none, no check at all if the
    rule allows that). Under a no_new_failures rule, conversations that fail in the baseline too are known
    failures."""
    checks = _conversation_checks(rule, run)
    if rule.mode == "absolute" or not checks or checks[0].name == f"must-pass: {rule.name}":
        return checks
    if baseline is None or baseline.core is None:
        raise InputError(
            "a no_new_failures must-pass rule needs a baseline with turn records",
            [f"must-pass '{rule.name}': give a baseline run folder (with turns.parquet) or use mode: absolute"],
        )
    failing_before = {c.name for c in _conversation_checks(rule, baseline) if not c.passed}
    return [
        Check(c.name, c.group, True, c.message + " (known failure: it fails in the baseline too)", True)
        if not c.passed and c.name in failing_before
        else c
        for c in checks
    ]


def _conversation_checks(rule: MustPass, run: ScoredRun) -> list[Check]:
    if run.core is None:
        raise InputError("cannot check must-pass conversations", [f"{run.source}: the run has no turn records"])
    c = run.core.conversations
    t = run.core.turns
    first = t.drop_duplicates("conv").set_index("conv")
    tags = first["tags"].reindex(c.index).fillna("[]").map(json.loads)
    selected = tags.map(lambda ts: bool(set(ts) & set(rule.tags)))
    if rule.critical:
        selected |= c["critical"].notna()
    if not selected.any():
        selection = f"tags {rule.tags}, critical {rule.critical}"
        if rule.allow_empty:
            return []  # `decide` notes it
        return [
            Check(
                f"must-pass: {rule.name}",
                "must_pass",
                False,
                f"must-pass '{rule.name}' selects no conversation ({selection}); fix the selection so the "
                "requirement is really checked, or set allow_empty: true if it is meant to select nothing yet",
            )
        ]
    checks = []
    for code in c.index[selected.to_numpy()]:
        row = c.loc[code]
        cid = row["conversation_id"]
        name = f"must-pass: {rule.name}: {cid}"
        if rule.require == "expected_outcome":
            ok = row["actual_outcome"] == row["expected_label"]
            why = f"expected {row['expected_label']}, got {row['actual_outcome']}"
            checks.append(Check(name, "must_pass", ok, f"{cid} {'passes' if ok else 'fails'} '{rule.name}': {why}"))
        else:
            said = [m for raw in t.loc[t["conv"] == code, "bot_messages"] for m in json.loads(raw or "[]")]
            bad = next((m for m in said if re.search(rule.pattern or "", m, re.IGNORECASE)), None)
            message = (
                f"{cid} passes '{rule.name}'"
                if bad is None
                else f"{cid} fails '{rule.name}': the bot said \"{bad[:160]}\""
            )
            checks.append(Check(name, "must_pass", bad is None, message))
    return checks


def decide(spec: GateSpec, run: ScoredRun, baseline: ScoredRun | None) -> GateResult:
    """Every check of `spec` on `run` (against `baseline` where given). Raises InputError when the baseline
    measured different eval sets: those runs are not comparable."""
    notes = []
    if baseline is not None:
        ours, theirs = run.stamp.get("eval_set_hash"), baseline.stamp.get("eval_set_hash")
        if ours != theirs:
            raise InputError(
                "the baseline was measured on different eval sets; refusing to compare",
                [
                    f"{baseline.source}: eval-set hash {str(theirs)[:12]}, the run {run.source}: {str(ours)[:12]}. "
                    "Regressions are only meaningful on the same conversations: re-run the baseline bot on the "
                    "current eval sets, or choose a baseline measured on them"
                ],
            )
    else:
        notes.append("no baseline: regression checks skipped")
    checks = [kpi_check(name, check, spec, run, baseline) for name, check in spec.kpis.items()]
    for rule in spec.must_pass:
        selected = must_pass_checks(rule, run, baseline)
        if not selected:
            notes.append(f"must-pass '{rule.name}' selects no conversation yet (allow_empty)")
        checks += selected
    summary = {k: run.stamp.get(k) for k in ("run_id", "bot_model", "eval_set_hash")} | {"source": run.source}
    base = (
        None
        if baseline is None
        else {k: baseline.stamp.get(k) for k in ("run_id", "bot_model", "eval_set_hash")} | {"source": baseline.source}
    )
    return GateResult(checks, summary, base, notes)
