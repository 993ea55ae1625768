"""What the gate can see (issue 11, item 8): the power and minimal detectable effect of its checks under its
actual decision rules, checked against the gate's own decisions (exhaustively on small cases, by simulation
otherwise), the sample-size plan, and what `harness gate` prints."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from records_factory import fraud_conversation, turn
from scipy.stats import binomtest, multinomial
from typer.testing import CliRunner

from harness.cli import app
from harness.gate.decision import decide
from harness.gate.paired import compare
from harness.gate.power import (
    Rule,
    connor_size,
    detectability,
    exact_power,
    mcnemar_critical,
    minimal_detectable,
    normal_power,
    plan,
    smallest_size,
)
from harness.gate.spec import GateSpec
from harness.records import to_frame, write
from harness.scoring.metrics import REGISTRY, ScoringOptions, UndefinedMetricWarning, build_core
from harness.scoring.scorecard import build_scorecard
from harness.scoring.scored_run import ScoredRun

OPTIONS = ScoringOptions(bootstrap_replicates=400, seed=5)


def conversations(outcomes: list[bool], *, run_id: str, fraud: list[bool] | None = None) -> ScoredRun:
    """One single-turn conversation per outcome (completed and recognised, or a fallback), plus fraud ones. Its
    KPIs are computed when read: `decide` computes just those its specification names."""
    rows = [turn(f"c{i:04d}", 0, "fees", "fees", fallback=not ok) for i, ok in enumerate(outcomes)]
    for i, ok in enumerate(fraud or []):
        rows.append({**fraud_conversation(handed_to_fraud=ok), "conversation_id": f"fraud-{i:02d}"})
    stamp = {"run_id": run_id, "eval_set_hash": "h", "bot_model": "m"}
    return ScoredRun.from_records(to_frame(rows), OPTIONS, stamp=stamp, source=f"runs/{run_id}")


def gate(kpis: dict, must_pass: list | None = None, **policy: object) -> GateSpec:
    return GateSpec.model_validate(
        {"version": 1, "policy": {"min_n": 1, **policy}, "kpis": kpis, "must_pass": must_pass or []}
    )


# --- the exact power equals the gate's own decisions, summed over every outcome -------------------------------------


def brute_force(n: int, discordance: float, drop: float, fails: dict[tuple[int, int], bool]) -> float:
    worse, better = discordance / 2 + drop, discordance / 2
    return sum(
        multinomial.pmf([b, c, n - b - c], n, [worse, better, 1 - worse - better])
        for (b, c), failed in fails.items()
        if failed
    )


@pytest.mark.parametrize(("allowance", "alpha"), [(0.0, 0.05), (0.2, 0.2)])
def test_exact_power_is_the_probability_that_the_gate_itself_fails(allowance: float, alpha: float) -> None:
    n = 9
    spec = gate({"self_service_completion.v1": {"max_regression": allowance}}, alpha=alpha)
    fails = {}
    for b in range(n + 1):
        for c in range(n + 1 - b):
            # b conversations got worse, c better, the rest passed in both runs.
            before = [True] * b + [False] * c + [True] * (n - b - c)
            now = [False] * b + [True] * c + [True] * (n - b - c)
            result = decide(spec, conversations(now, run_id="r"), conversations(before, run_id="b"))
            fails[(b, c)] = not result.passed
    for discordance, drop in [(0.1, 0.0), (0.2, 0.1), (0.05, 0.3), (0.4, 0.2)]:
        assert exact_power(n, discordance, drop, Rule(allowance, alpha)) == pytest.approx(
            brute_force(n, discordance, drop, fails), abs=1e-9
        )


def test_exact_power_of_no_regression_equals_the_rules_own_decisions() -> None:
    n = 9
    spec = gate(
        {"availability.v1": {}}, [{"name": "f", "tags": ["fraud"], "mode": "no_regression", "max_new_failures": 3}]
    )
    fails = {}
    for b in range(n + 1):
        for c in range(n + 1 - b):
            before = [True] * b + [False] * c + [True] * (n - b - c)
            now = [False] * b + [True] * c + [True] * (n - b - c)
            result = decide(
                spec,
                conversations([True] * 5, run_id="r", fraud=now),
                conversations([True] * 5, run_id="b", fraud=before),
            )
            fails[(b, c)] = not result.passed
    rule = Rule(None, 0.05, 3)
    for discordance, drop in [(0.1, 0.0), (0.2, 0.2), (0.05, 0.5)]:
        assert exact_power(n, discordance, drop, rule) == pytest.approx(
            brute_force(n, discordance, drop, fails), abs=1e-9
        )


def test_mcnemar_critical_counts_match_scipy() -> None:
    assert int(mcnemar_critical(np.array([0]), 0.05)[0]) == 1  # never significant: no b of 0 reaches it
    for m in range(1, 60):
        b = int(mcnemar_critical(np.array([m]), 0.05)[0])
        significant = [k for k in range(m + 1) if binomtest(k, m, 0.5, alternative="greater").pvalue < 0.05]
        assert b == (significant[0] if significant else m + 1)


def test_a_ratchet_false_alarm_is_one_minus_the_chance_that_nothing_flips() -> None:
    assert exact_power(14, 0.04, 0.0, Rule(None, None, 0)) == pytest.approx(1 - 0.98**14)


# --- the paired-bootstrap approximation against the gate's bootstrap --------------------------------------------------


def test_the_normal_approximation_predicts_the_paired_bootstrap_check() -> None:
    """Turn-level recognition, 150 conversations of 2 turns, 10% of turns flip (half each way), a true drop of
    6 points: the gate's own compare() with its bootstrap decides each simulated pair."""
    rng = np.random.default_rng(7)
    n, per, discordance, drop, allowance, alpha = 150, 2, 0.10, 0.06, 0.02, 0.05
    base = rng.random(n * per) < 0.8
    rows = lambda hits: [  # noqa: E731
        turn(f"c{i // per:03d}", i % per, "fees", "fees" if hit else "refund") for i, hit in enumerate(hits)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        before = build_core(to_frame(rows(base)), OPTIONS)
        failed = 0
        sims = 120
        units = n * per
        for _ in range(sims):
            u = rng.random(units)
            # P(worse) = d/2 + drop, P(better) = d/2, on turns that can move that way (rates kept as the model's).
            now = base.copy()
            now[base & (u < (discordance / 2 + drop) / base.mean())] = False
            now[~base & (u < discordance / 2 / (1 - base.mean()))] = True
            core = build_core(to_frame(rows(now)), OPTIONS)
            name = "recognition_rate.v1"
            worse = REGISTRY[name](before).value - REGISTRY[name](core).value  # type: ignore[operator]
            failed += worse > allowance and compare(name, core, before).p_value < alpha
    predicted = normal_power(units, discordance, drop, allowance=allowance, alpha=alpha)
    assert abs(failed / sims - predicted) < 4 * math.sqrt(predicted * (1 - predicted) / sims) + 0.03


# --- the minimal detectable effect and the plan ----------------------------------------------------------------------


def test_the_mde_is_never_below_the_allowance() -> None:
    for allowance in (0.0, 0.03, 0.05):
        rule = Rule(allowance, 0.05)
        mde = minimal_detectable(lambda d, rule=rule: exact_power(300, 0.05, d, rule), 0.8, 0.5)  # type: ignore[misc]
        assert mde is not None and mde > allowance
        assert exact_power(300, 0.05, mde, rule) >= 0.8
        assert exact_power(300, 0.05, mde - 0.002, rule) < 0.8
    # A drop equal to the allowance is caught about half the time at best, whatever the size.
    assert exact_power(20000, 0.05, 0.05, Rule(0.05, 0.05)) < 0.55


def test_the_plan_size_is_the_smallest_that_reaches_the_power() -> None:
    rule = Rule(0.02, 0.05)
    size = smallest_size(lambda n: exact_power(n, 0.05, 0.05, rule), 0.8)
    assert size is not None
    assert exact_power(size, 0.05, 0.05, rule) >= 0.8 and exact_power(size - 1, 0.05, 0.05, rule) < 0.8
    # With no allowance, close to Connor (1987)'s normal approximation.
    exact = smallest_size(lambda n: exact_power(n, 0.05, 0.05, Rule(0.0, 0.05)), 0.8)
    assert exact is not None and abs(exact - connor_size(0.05, 0.05, 0.05, 0.8)) / exact < 0.15
    normal = smallest_size(lambda n: normal_power(n, 0.05, 0.05, allowance=0.02, alpha=0.05), 0.8)
    assert normal is not None and normal_power(normal - 1, 0.05, 0.05, allowance=0.02, alpha=0.05) < 0.8


def completion_pair(n: int = 245, flips: int = 0) -> tuple[ScoredRun, ScoredRun]:
    before = [True] * (n * 6 // 10) + [False] * (n - n * 6 // 10)
    now = list(before)
    for i in range(flips):  # balanced: one down, one up
        now[i] = False
        now[-1 - i] = True
    return conversations(now, run_id="r", fraud=[True] * 10 + [False] * 4), conversations(
        before, run_id="b", fraud=[True] * 10 + [False] * 4
    )


def test_detectability_says_when_the_allowance_is_below_what_the_gate_sees() -> None:
    run, base = completion_pair(flips=6)  # 12 of 259 conversations changed: discordance measured
    spec = gate({"self_service_completion.v1": {"max_regression": 0.05}})
    (line,) = detectability(spec, run, base)
    assert line.measured_discordance == pytest.approx(12 / 259) and not line.assumed
    assert line.mde is not None and line.mde > 0.05 and line.blind_spot
    assert "below what the gate can see" in line.message and "measured" in line.message
    assert exact_power(259, 12 / 259, line.mde, Rule(0.05, 0.05)) == pytest.approx(0.8, abs=0.01)


def test_a_deterministic_rerun_uses_the_stated_planning_assumption() -> None:
    run, base = completion_pair(flips=0)
    spec = gate({"self_service_completion.v1": {"max_regression": 0.02}}, planning_discordance=0.08)
    result = decide(spec, run, base)
    from harness.gate.power import with_detectability

    lines = detectability(spec, run, base)
    (line,) = lines
    assert line.assumed and line.discordance == 0.08 and line.measured_discordance == 0
    assert "discordance 8.0% assumed" in line.message
    notes = with_detectability(result, lines).notes
    assert any("deterministic rerun" in n and "policy.planning_discordance" in n for n in notes)


def test_rules_say_what_they_cannot_see() -> None:
    run, base = completion_pair()
    ratchet = gate({"availability.v1": {}}, [{"name": "fraud", "tags": ["fraud"], "mode": "no_new_failures"}])
    (line,) = detectability(ratchet, run, base)
    assert line.false_alarm == pytest.approx(exact_power(14, 0.05, 0.0, Rule(None, None, 0)))
    assert "sees a single one" in line.message and "mode: no_regression" in line.message
    lenient = gate({"availability.v1": {}}, [{"name": "fraud", "tags": ["fraud"], "mode": "no_regression"}])
    (line,) = detectability(lenient, run, base)
    assert line.mde is not None and line.mde * 14 >= 4 and line.blind_spot
    assert line.false_alarm is not None and line.false_alarm < 0.01
    assert "fewer usually pass, each listed as a warning" in line.message


def test_plan_covers_every_check_and_rule() -> None:
    run, base = completion_pair(flips=6)
    spec = gate(
        {
            "self_service_completion.v1": {"max_regression": 0.02},
            "recognition_rate.v1": {"max_regression": 0.05},
            "availability.v1": {},
        },
        [{"name": "fraud", "tags": ["fraud"], "mode": "no_regression"}],
    )
    lines = {line.check: line for line in plan(spec, run, base, drop=0.05, power=0.8, discordance=0.05)}
    assert set(lines) == {"self_service_completion.v1", "recognition_rate.v1", "must-pass: fraud"}
    completion = lines["self_service_completion.v1"]
    assert completion.conversations == smallest_size(lambda n: exact_power(n, 0.05, 0.05, Rule(0.02, 0.05)), 0.8)
    assert lines["recognition_rate.v1"].conversations is None
    assert "no eval size is enough while max_regression is 0.050" in lines["recognition_rate.v1"].message
    fraud = lines["must-pass: fraud"]
    assert fraud.units == smallest_size(lambda n: exact_power(n, 0.05, 0.05, Rule(None, 0.05)), 0.8)
    assert fraud.conversations == math.ceil(fraud.units / (14 / 259))  # type: ignore[operator]


# --- the command ---------------------------------------------------------------------------------------------------


def folder(path: Path, run: ScoredRun) -> Path:
    from harness.records import COLUMNS

    assert run.core is not None
    path.mkdir(parents=True)
    write(run.core.turns[[c for c in COLUMNS if c in run.core.turns]], path / "turns.parquet")
    build_scorecard(run.core, run.stamp).write(path / "scorecard.json")
    return path


def test_harness_gate_prints_and_writes_what_it_can_see(tmp_path: Path) -> None:
    run, base = completion_pair(flips=6)
    run_dir, base_dir = folder(tmp_path / "runs" / "r", run), folder(tmp_path / "base", base)
    spec = tmp_path / "gate.yml"
    spec.write_text(json.dumps({"version": 1, "kpis": {"self_service_completion.v1": {"max_regression": 0.05}}}))
    result = CliRunner().invoke(app, ["gate", str(run_dir), "--spec", str(spec), "--baseline", str(base_dir)])
    assert result.exit_code == 0, result.output
    (line,) = [s for s in result.stdout.splitlines() if s.startswith("can see ")]
    assert "self_service_completion.v1: catches a drop of" in line and "below what the gate can see" in line
    data = json.loads((run_dir / "gate.json").read_text())
    assert data["detectability"][0]["check"] == "self_service_completion.v1"
    assert data["detectability"][0]["measured_discordance"] == pytest.approx(12 / 259)
    assert "What this gate can see" in (run_dir / "gate.md").read_text()


def test_harness_gate_plan(tmp_path: Path) -> None:
    run, base = completion_pair(flips=6)
    run_dir, base_dir = folder(tmp_path / "runs" / "r", run), folder(tmp_path / "base", base)
    spec = tmp_path / "gate.yml"
    spec.write_text(json.dumps({"version": 1, "kpis": {"self_service_completion.v1": {"max_regression": 0.02}}}))
    args = ["gate", str(run_dir), "--spec", str(spec), "--baseline", str(base_dir), "--plan", "--drop", "0.05"]
    result = CliRunner().invoke(app, [*args, "--discordance", "0.05"])
    assert result.exit_code == 0, result.output
    expected = smallest_size(lambda n: exact_power(n, 0.05, 0.05, Rule(0.02, 0.05)), 0.8)
    assert f"{expected:,} conversations; today 259" in result.stdout
    assert not (run_dir / "gate.json").exists(), "planning does not judge the run"
    bad = CliRunner().invoke(app, [*args, "--discordance", "0.97"])
    assert bad.exit_code == 2 and "cannot plan" in bad.output


def test_plan_against_a_baseline_of_other_eval_sets_plans_from_the_run_alone(tmp_path: Path) -> None:
    run, base = completion_pair(flips=6)
    base.stamp["eval_set_hash"] = "older"
    run_dir, base_dir = folder(tmp_path / "runs" / "r", run), folder(tmp_path / "base", base)
    spec = tmp_path / "gate.yml"
    spec.write_text(json.dumps({"version": 1, "kpis": {"self_service_completion.v1": {"max_regression": 0.02}}}))
    args = ["gate", str(run_dir), "--spec", str(spec), "--baseline", str(base_dir), "--plan"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "measured on other eval sets: planning from the run alone" in result.stdout
    assert "at 5.0% discordance (assumed)" in result.stdout
