"""The gate's decision: every KPI check and every must-pass conversation, each with a reason a release manager
reads, for example `escalation_accuracy.v1 0.81 [0.74, 0.87] n=120 fell 0.07 below baseline 0.88 (paired
p=0.01); allowed 0.03`. Pure: it reads two scored runs (`harness.scoring.scored_run.ScoredRun`, the baseline possibly a
scorecard.json alone) and the specification; it never stops at the first failure.

A change and its allowance are printed with as many decimals as it takes to tell them apart (a failure never
reads "fell 0.03 ... allowed 0.03"), and a drop equal to its allowance passes whatever floating-point rounding
made of the subtraction (TOLERANCE).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd
from scipy.stats import binomtest

from harness.errors import InputError
from harness.gate.paired import compare
from harness.gate.spec import GateSpec, KpiCheck, MustPass
from harness.scoring.scored_run import ScoredRun

TOLERANCE = 1e-9
"""A change counts as larger than its allowance only beyond this (KPI values are float ratios: 0.90 - 0.88 is
0.020000000000000018)."""


@dataclass(frozen=True)
class Check:
    name: str
    group: str
    """`kpi` or `must_pass`."""
    passed: bool
    message: str
    known_failure: bool = False
    """A must-pass conversation that fails now and in the baseline, under a no_new_failures or no_regression rule:
    reported, not blocking."""
    warning: bool = False
    """A must-pass conversation that fails now but not in the baseline, under a no_regression rule: listed, not
    blocking by itself (the rule's own check blocks when such failures significantly outnumber fixes)."""


@dataclass(frozen=True)
class GateResult:
    checks: list[Check]
    run: dict[str, Any]
    baseline: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    detectability: list[Any] = field(default_factory=list)
    """What each regression check and must-pass rule can see (harness.gate.power.Detectability), when computed."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def fmt(value: float | None, unit: str, decimals: int = 2) -> str:
    """A KPI value in its unit: ratios with `decimals` decimals, milliseconds whole (or with decimals - 2)."""
    if value is None:
        return "undefined"
    return f"{value:.{max(decimals - 2, 0)}f} ms" if unit == "ms" else f"{value:.{decimals}f}"


def decimals_apart(change: float, allowance: float, unit: str) -> int:
    """The fewest decimals (at least 2 for ratios, 0 for ms, as `fmt` counts them) at which `change` and
    `allowance` print differently when they differ by more than TOLERANCE (at most 8)."""
    for decimals in range(2, 11):
        if abs(change - allowance) <= TOLERANCE or fmt(change, unit, decimals) != fmt(allowance, unit, decimals):
            return decimals
    return 10


def kpi_check(name: str, check: KpiCheck, spec: GateSpec, run: ScoredRun, baseline: ScoredRun | None) -> Check:
    """One KPI against its threshold, minimum support and allowed regression."""
    result = run.kpis[name]
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
        other_versions = [k for k in baseline.kpis if k.rsplit(".v", 1)[0] == name.rsplit(".v", 1)[0] and k != name]
        if base is None and other_versions and name not in baseline.kpis:
            problems.append(
                f"cannot be compared: the baseline {baseline.source} holds {', '.join(sorted(other_versions))}, not "
                f"{name} (it was scored before this version existed, and has no turn records to rescore); give a "
                "baseline with turns.parquet, or name the version it holds in the gate specification"
            )
        elif base is None:
            notes.append("the baseline has no value to compare with")
        else:
            worse = (base - result.value) if higher else (result.value - base)
            places = decimals_apart(abs(worse), check.max_regression, unit)
            allowed = fmt(check.max_regression, unit, places)
            moved = (
                f"{'fell' if higher else 'rose'} {fmt(abs(worse), unit, places)} {'below' if higher else 'above'} "
                f"baseline {fmt(base, unit, places)}"
            )
            alpha = check.alpha or spec.policy.alpha
            if worse <= check.max_regression + TOLERANCE:
                notes.append(f"baseline {fmt(base, unit, places)}, within the allowed {allowed}")
            elif spec.policy.comparison == "point" or run.core is None or baseline.core is None:
                why = "" if spec.policy.comparison == "point" else " (point comparison: no baseline turn records)"
                problems.append(f"{moved}{why}; allowed {allowed}")
            else:
                paired = compare(name, run.core, baseline.core)
                test = f"paired {paired.p_text()}, {paired.method}"
                if paired.p_value < alpha:
                    problems.append(f"{moved} ({test}); allowed {allowed}")
                else:
                    notes.append(f"{moved}, more than the allowed {allowed} but within noise ({test} >= {alpha})")
    if problems:
        return Check(name, "kpi", False, f"{head} " + "; ".join(problems))
    return Check(name, "kpi", True, f"{head} passes" + (f" ({'; '.join(notes)})" if notes else ""))


def rule_alpha(rule: MustPass, spec: GateSpec) -> float:
    """The significance of a no_regression rule's test."""
    return rule.alpha or spec.policy.alpha


def must_pass_checks(
    rule: MustPass, run: ScoredRun, baseline: ScoredRun | None = None, *, alpha: float = 0.05
) -> list[Check]:
    """One check per conversation the rule selects (a failing check when it selects none, no check at all if the
    rule allows that). Under a no_new_failures or no_regression rule, conversations that fail in the baseline too
    are known failures; under no_regression, new failures are warnings and one more check, the rule's own, fails
    when they significantly outnumber fixes at `alpha` (one-sided exact McNemar) or exceed max_new_failures."""
    checks = _conversation_checks(rule, run)
    if rule.mode == "absolute" or not checks or checks[0].name == f"must-pass: {rule.name}":
        return checks
    if baseline is None or baseline.core is None:
        raise InputError(
            f"a {rule.mode} must-pass rule needs a baseline with turn records",
            [f"must-pass '{rule.name}': give a baseline run folder (with turns.parquet) or use mode: absolute"],
        )
    before = {c.name: c.passed for c in _conversation_checks(rule, baseline)}
    failing_before = {name for name, ok in before.items() if not ok}
    marked = []
    for c in checks:
        if not c.passed and c.name in failing_before:
            c = Check(c.name, c.group, True, c.message + " (known failure: it fails in the baseline too)", True)
        elif not c.passed and rule.mode == "no_regression":
            c = Check(
                c.name, c.group, True, c.message + " (new failure: a warning, see the rule's check)", warning=True
            )
        marked.append(c)
    if rule.mode == "no_regression":
        new = sum(c.warning for c in marked)
        fixed = sum(1 for c in checks if c.passed and before.get(c.name) is False)
        marked.append(_no_regression_check(rule, new, fixed, len(checks), alpha))
    return marked


def _no_regression_check(rule: MustPass, new: int, fixed: int, selected: int, alpha: float) -> Check:
    p = 1.0 if new + fixed == 0 else float(binomtest(new, new + fixed, 0.5, alternative="greater").pvalue)
    counts = f"{new} new failure(s), {fixed} fixed, of {selected} conversation(s)"
    reasons = []
    if p < alpha:
        reasons.append(f"new failures significantly outnumber fixes (paired p={p:.2g} < {alpha}, McNemar (exact))")
    if rule.max_new_failures is not None and new > rule.max_new_failures:
        reasons.append(f"more than the {rule.max_new_failures} new failure(s) allowed")
    name = f"must-pass: {rule.name}: no regression"
    if reasons:
        return Check(name, "must_pass", False, f"'{rule.name}' regressed: {counts}; " + " and ".join(reasons))
    cap = f", at most {rule.max_new_failures} allowed" if rule.max_new_failures is not None else ""
    return Check(
        name,
        "must_pass",
        True,
        f"'{rule.name}' did not regress: {counts} (paired p={p:.2g} >= {alpha}, McNemar (exact){cap})",
    )


def conversation_outcomes(rule: MustPass, run: ScoredRun | None) -> pd.Series | None:
    """Whether each conversation `rule` selects passes it in `run` (bool, indexed by conversation id); None when
    the run has no turn records; empty when the rule selects nothing."""
    if run is None or run.core is None:
        return None
    checks = _conversation_checks(rule, run)
    prefix = f"must-pass: {rule.name}: "
    kept = [c for c in checks if c.name.startswith(prefix)]
    return pd.Series({c.name.removeprefix(prefix): c.passed for c in kept}, dtype=bool)


@lru_cache(maxsize=65536)
def _matches(pattern: str, message: str) -> bool:
    """A never_matches pattern found in a bot message, ignoring case (cached: bot messages repeat templates)."""
    return re.search(pattern, message, re.IGNORECASE) is not None


@lru_cache(maxsize=4096)
def _tags(raw: object) -> tuple[str, ...]:
    """A conversation's tags from their JSON list (null: none)."""
    return tuple(json.loads(raw)) if isinstance(raw, str) and raw else ()


def _conversation_checks(rule: MustPass, run: ScoredRun) -> list[Check]:
    if run.core is None:
        raise InputError("cannot check must-pass conversations", [f"{run.source}: the run has no turn records"])
    c = run.core.conversations
    t = run.core.turns
    wanted = set(rule.tags)
    first = t[["conv", "tags"]].drop_duplicates("conv")
    tagged = {int(code) for code, raw in zip(first["conv"], first["tags"], strict=True) if wanted & set(_tags(raw))}
    selected = pd.Series(c.index.isin(list(tagged)), index=c.index)
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
    codes = c.index[selected.to_numpy()]
    ids = c["conversation_id"].to_numpy(dtype=object)
    positions = c.index.get_indexer(codes)
    checks = []
    if rule.require == "expected_outcome":
        actual = c["actual_outcome"].to_numpy(dtype=object)
        expected = c["expected_label"].astype(object).to_numpy()
        for i in positions:
            cid, label = ids[i], expected[i]
            ok = isinstance(label, str) and actual[i] == label
            why = f"expected {label if isinstance(label, str) else 'nothing (unlabelled)'}, got {actual[i]}"
            name = f"must-pass: {rule.name}: {cid}"
            checks.append(Check(name, "must_pass", ok, f"{cid} {'passes' if ok else 'fails'} '{rule.name}': {why}"))
        return checks
    mine = t["conv"].isin(codes).to_numpy()
    said: dict[int, list[str]] = {}
    for code, raw in zip(t["conv"].to_numpy()[mine], t["bot_messages"].to_numpy(dtype=object)[mine], strict=True):
        said.setdefault(int(code), []).extend(json.loads(raw) if isinstance(raw, str) and raw else [])
    for code, i in zip(codes, positions, strict=True):
        cid = ids[i]
        bad = next((m for m in said.get(int(code), []) if _matches(rule.pattern or "", m)), None)
        message = (
            f"{cid} passes '{rule.name}'" if bad is None else f"{cid} fails '{rule.name}': the bot said \"{bad[:160]}\""
        )
        checks.append(Check(f"must-pass: {rule.name}: {cid}", "must_pass", bad is None, message))
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
        selected = must_pass_checks(rule, run, baseline, alpha=rule_alpha(rule, spec))
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
