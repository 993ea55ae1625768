"""The release gate's decision on hand-made paired runs: clear pass, clear regression, a drop within noise, too
few samples, a must-pass failure, a mismatched eval-set hash, an undefined KPI; and its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from records_factory import fraud_conversation, turn

from harness.errors import InputError
from harness.gate.decision import decide
from harness.gate.outputs import as_json, junit_xml, markdown
from harness.gate.paired import MCNEMAR, compare
from harness.gate.spec import GateSpec, load_spec
from harness.project.paths import ProjectPaths
from harness.records import to_frame
from harness.scoring.metrics import ScoringOptions
from harness.scoring.scored_run import ScoredRun

OPTIONS = ScoringOptions(bootstrap_replicates=500, seed=3)


def run(
    outcomes: list[bool], *, fraud: bool = True, fraud_ok: bool = True, eval_hash: str = "h1", run_id: str = "r"
) -> ScoredRun:
    """Conversations c000.. whose single turn is understood (True) or falls back (False, so the conversation is
    not recognised and not completed), plus (unless `fraud` is False) one fraud conversation."""
    rows = [turn(f"c{i:03d}", 0, "fees", "fees", fallback=not ok) for i, ok in enumerate(outcomes)]
    if fraud:
        rows.append(fraud_conversation(handed_to_fraud=fraud_ok))
    stamp = {"run_id": run_id, "eval_set_hash": eval_hash, "bot_model": "m"}
    return ScoredRun.from_records(to_frame(rows), OPTIONS, stamp=stamp, source=f"runs/{run_id}")


def spec(**kpis: dict) -> GateSpec:
    return GateSpec.model_validate(
        {
            "version": 1,
            "kpis": kpis or {"recognition_rate.v1": {"max_regression": 0.03}},
            "must_pass": [{"name": "fraud reaches the fraud queue", "tags": ["fraud"]}],
            "policy": {"min_n": 30},
        }
    )


BASELINE = run([True] * 90 + [False] * 10, run_id="base")


def test_an_unchanged_bot_passes() -> None:
    result = decide(spec(), run([True] * 90 + [False] * 10), BASELINE)
    assert result.passed, [c.message for c in result.failures()]
    assert result.checks[0].message.startswith("recognition_rate.v1 0.90 [")


def test_a_clear_regression_fails_with_a_paired_p_value() -> None:
    worse = [True] * 70 + [False] * 30  # 20 conversations the baseline got right now fail
    result = decide(spec(), run(worse), BASELINE)
    (failure,) = result.failures()
    assert "recognition_rate.v1 0.70" in failure.message and "n=101" in failure.message
    assert "fell 0.20 below baseline 0.90 (paired p<0.002, paired bootstrap); allowed 0.03" in failure.message


def test_a_drop_within_noise_passes_with_a_note() -> None:
    # 3 conversations got worse and 1 better: a 0.02 drop, more than the 0.01 allowed, but not significant.
    now = [True] * 87 + [False] * 3 + [True] + [False] * 9
    result = decide(spec(**{"recognition_rate.v1": {"max_regression": 0.01}}), run(now), BASELINE)
    check = result.checks[0]
    assert check.passed, check.message
    assert "fell 0.02 below baseline 0.90, more than the allowed 0.01 but within noise (paired p=" in check.message


def test_the_same_drop_fails_under_the_point_policy() -> None:
    now = [True] * 87 + [False] * 3 + [True] + [False] * 9
    gate = GateSpec.model_validate(
        {
            "version": 1,
            "policy": {"comparison": "point", "min_n": 30},
            "kpis": {"recognition_rate.v1": {"max_regression": 0.01}},
        }
    )
    (failure,) = decide(gate, run(now), BASELINE).failures()
    assert "fell 0.02 below baseline 0.90; allowed 0.01" in failure.message


def test_mcnemar_counts_discordant_conversations() -> None:
    before = run([True] * 20 + [False] * 5)
    after = run([False] * 8 + [True] * 12 + [True] * 5)  # 8 got worse, 5 got better
    paired = compare("self_service_completion.v1", after.core, before.core)
    assert paired.method == MCNEMAR and "8 conversation(s) got worse, 5 better" in paired.detail
    # One-sided exact binomial P(X >= 8 | n=13, p=0.5) = 0.2905.
    assert paired.p_value == pytest.approx(0.2905, abs=1e-4)


def test_too_few_samples_fail_closed() -> None:
    result = decide(spec(), run([True] * 10), None)
    (failure,) = result.failures()
    assert "has too few samples (n=11, at least 30 required)" in failure.message


def test_a_floor_is_a_threshold_for_higher_is_better_and_a_ceiling_for_latency() -> None:
    gate = spec(**{"recognition_rate.v1": {"threshold": 0.95}, "latency_p95.v1": {"threshold": 5}})
    messages = [c.message for c in decide(gate, run([True] * 90 + [False] * 10), None).failures()]
    assert any("recognition_rate.v1 0.90" in m and "is below the floor 0.95" in m for m in messages)
    assert any("latency_p95.v1 10 ms" in m and "is above the ceiling 5 ms" in m for m in messages)


def test_a_must_pass_failure_names_the_conversation() -> None:
    result = decide(spec(), run([True] * 40, fraud_ok=False), None)
    (failure,) = result.failures()
    assert failure.group == "must_pass"
    assert failure.message == (
        "fraud-1 fails 'fraud reaches the fraud queue': expected escalated:fraud, got self_served"
    )


def test_a_must_pass_rule_that_selects_nothing_fails() -> None:
    gate = GateSpec.model_validate(
        {"version": 1, "kpis": {"availability.v1": {}}, "must_pass": [{"name": "pin", "tags": ["no-such-tag"]}]}
    )
    (failure,) = decide(gate, run([True] * 40), None).failures()
    assert "selects no conversation" in failure.message and "allow_empty" in failure.message


def test_a_must_pass_rule_allowed_to_be_empty_passes_with_a_note_until_it_selects_something() -> None:
    rule = {"name": "qa", "tags": ["fraud"], "allow_empty": True, "mode": "no_new_failures"}
    gate = GateSpec.model_validate({"version": 1, "kpis": {"availability.v1": {}}, "must_pass": [rule]})
    empty = decide(gate, run([True] * 40, fraud=False), None)
    assert empty.passed and not [c for c in empty.checks if c.group == "must_pass"]
    assert "must-pass 'qa' selects no conversation yet (allow_empty)" in empty.notes
    selected = decide(gate, run([True] * 40, fraud_ok=False), run([True] * 40, run_id="b"))
    (failure,) = selected.failures()
    assert failure.message.startswith("fraud-1 fails 'qa'")


def test_a_baseline_on_different_eval_sets_is_refused() -> None:
    with pytest.raises(InputError, match="the baseline was measured on different eval sets; refusing to compare"):
        decide(spec(), run([True] * 40), run([True] * 40, eval_hash="h2", run_id="b"))


def test_an_undefined_kpi_fails_closed_unless_allowed() -> None:
    undefined = spec(**{"escalation_accuracy.v1": {"threshold": 0.8}})
    only_self_service = run([True] * 40, fraud_ok=False)
    (failure,) = [c for c in decide(undefined, only_self_service, None).failures() if c.group == "kpi"]
    assert "escalation_accuracy.v1 undefined" in failure.message and "fails closed" in failure.message
    allowed = spec(**{"escalation_accuracy.v1": {"threshold": 0.8, "allow_undefined": True}})
    assert all(c.passed for c in decide(allowed, only_self_service, None).checks if c.group == "kpi")


def test_every_reason_is_listed_not_just_the_first() -> None:
    gate = spec(
        **{
            "recognition_rate.v1": {"threshold": 0.95, "max_regression": 0.03},
            "availability.v1": {"threshold": 1.0, "min_n": 500},
        }
    )
    failures = decide(gate, run([True] * 70 + [False] * 30, fraud_ok=False), BASELINE).failures()
    assert len(failures) == 3
    # 70 of 101 in-scope turns (the fraud turn is missed too) against the baseline's 91 of 101.
    assert "recognition_rate.v1 0.69" in failures[0].message
    assert "is below the floor 0.95; fell 0.21 below baseline 0.90 (paired p<0.002" in failures[0].message


def test_outputs_junit_markdown_json() -> None:
    result = decide(spec(), run([True] * 70 + [False] * 30, fraud_ok=False), BASELINE)
    suite = ET.fromstring(junit_xml(result))
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    assert {c.get("name") for c in suite} == {
        "recognition_rate.v1",
        "must-pass: fraud reaches the fraud queue: fraud-1",
    }
    assert markdown(result).startswith("## Release gate FAILED")
    assert json.loads(as_json(result))["passed"] is False


def test_spec_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "gate.yml"
    path.write_text(
        "version: 1\nkpis:\n  recognition_rate.v9: {threshold: 0.8}\n  messages_per_conversation.v1: "
        "{threshold: 3}\nmust_pass: [{name: x, require: never_matches}]\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path)
    text = str(info.value)
    assert "unknown KPI 'recognition_rate.v9' (did you mean 'recognition_rate.v" in text
    assert "must_pass[0]" in text


def test_a_misspelt_key_anywhere_in_the_spec_names_the_key_it_resembles(tmp_path: Path) -> None:
    path = tmp_path / "gate.yml"
    path.write_text(
        "version: 1\npolicy: {alpah: 0.05}\nkpis:\n  recognition_rate.v2: {threshold: 0.7, max_regresion: 0.03}\n"
        "must_pass: [{name: x, tags: [a], requires: expected_outcome}]\nbasline: {path: b}\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path)
    problems = "\n".join(info.value.problems)
    assert "policy.alpah: unknown key 'alpah' (did you mean 'alpha'?); known: alpha, comparison" in problems
    assert "recognition_rate.v2.max_regresion: unknown key 'max_regresion' (did you mean 'max_regression'?)" in problems
    assert "must_pass[0](x).requires: unknown key 'requires' (did you mean 'require'?)" in problems
    assert "basline: unknown key 'basline' (did you mean 'baseline'?)" in problems


def test_a_gate_on_uptime_says_where_uptime_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "gate.yml"
    path.write_text("version: 1\nkpis:\n  uptime.v1: {threshold: 0.99}\n")
    with pytest.raises(InputError, match=r"uptime.v1 is computed from the probe log.*harness uptime"):
        load_spec(path)


def test_the_committed_specification_loads() -> None:
    gate = load_spec(ProjectPaths().experiments / "gate.yml")
    assert gate.baseline is not None and gate.must_pass


def ratchet() -> GateSpec:
    return GateSpec.model_validate(
        {
            "version": 1,
            "kpis": {"availability.v1": {}},
            "must_pass": [{"name": "fraud reaches the fraud queue", "tags": ["fraud"], "mode": "no_new_failures"}],
        }
    )


def test_a_ratchet_reports_known_failures_without_blocking() -> None:
    result = decide(ratchet(), run([True] * 40, fraud_ok=False), run([True] * 40, fraud_ok=False, run_id="b"))
    assert result.passed
    (known,) = [c for c in result.checks if c.known_failure]
    assert "known failure: it fails in the baseline too" in known.message
    assert ET.fromstring(junit_xml(result)).find("testcase/skipped") is not None


def test_a_ratchet_blocks_a_new_failure() -> None:
    result = decide(ratchet(), run([True] * 40, fraud_ok=False), run([True] * 40, run_id="b"))
    (failure,) = result.failures()
    assert failure.message.startswith("fraud-1 fails 'fraud reaches the fraud queue'")


# --- issue 11: precision of the messages, a drop equal to its allowance, superseded KPI versions -------------------


def point(kpi: str, allowance: float) -> GateSpec:
    return GateSpec.model_validate(
        {"version": 1, "policy": {"comparison": "point", "min_n": 1}, "kpis": {kpi: {"max_regression": allowance}}}
    )


def test_a_failure_never_reads_as_the_allowance_it_exceeds() -> None:
    # 900 of 1000 completed before, 869 now: a drop of 0.031 against an allowance of 0.03. Two decimals printed
    # both as 0.03 ("fell 0.03 below baseline 0.90; allowed 0.03").
    before = run([True] * 900 + [False] * 100, fraud=False, run_id="b")
    now = run([True] * 869 + [False] * 131, fraud=False)
    (failure,) = decide(point("self_service_completion.v1", 0.03), now, before).failures()
    assert "fell 0.031 below baseline 0.900; allowed 0.030" in failure.message, failure.message


@pytest.mark.parametrize(("kept", "allowance"), [(880, 0.02), (870, 0.03), (850, 0.05)])
def test_a_drop_exactly_equal_to_its_allowance_passes(kept: int, allowance: float) -> None:
    # 0.90 - 0.88 is 0.020000000000000018 in floating point: the old gate failed it as "fell 0.02 ... allowed 0.02".
    before = run([True] * 900 + [False] * 100, fraud=False, run_id="b")
    now = run([True] * kept + [False] * (1000 - kept), fraud=False)
    result = decide(point("self_service_completion.v1", allowance), now, before)
    assert result.passed, [c.message for c in result.failures()]
    assert "within the allowed" in result.checks[0].message


def test_the_gate_reads_superseded_kpi_versions_too() -> None:
    gate = GateSpec.model_validate({"version": 1, "kpis": {"recognition_rate.v1": {"threshold": 0.5}}})
    result = decide(gate, run([True] * 40, fraud=False), None)
    assert result.passed and result.checks[0].message.startswith("recognition_rate.v1 1.00")


# --- issue 11: must-pass rules under noise: no_regression ---------------------------------------------------------


def fraud_runs(now: list[bool], before: list[bool]) -> tuple[ScoredRun, ScoredRun]:
    """Runs of len(now) fraud conversations (fraud-00..), each handed to the fraud queue (True) or not."""

    def build(outcomes: list[bool], run_id: str) -> ScoredRun:
        rows = [
            {**fraud_conversation(handed_to_fraud=ok), "conversation_id": f"fraud-{i:02d}"}
            for i, ok in enumerate(outcomes)
        ]
        rows += [turn(f"c{i:03d}", 0, "fees", "fees") for i in range(40)]
        stamp = {"run_id": run_id, "eval_set_hash": "h1", "bot_model": "m"}
        return ScoredRun.from_records(to_frame(rows), OPTIONS, stamp=stamp, source=f"runs/{run_id}")

    return build(now, "r"), build(before, "b")


def no_regression(**extra: object) -> GateSpec:
    rule = {"name": "fraud", "tags": ["fraud"], "mode": "no_regression"} | extra
    return GateSpec.model_validate({"version": 1, "kpis": {"availability.v1": {}}, "must_pass": [rule]})


def test_no_regression_lists_a_new_failure_as_a_warning_without_blocking() -> None:
    # One new failure, one fix, one known failure: noise, not a regression.
    before = [True] * 12 + [False, True, False]
    now = [True] * 12 + [True, False, False]
    result = decide(no_regression(), *fraud_runs(now, before))
    assert result.passed, [c.message for c in result.failures()]
    (warned,) = [c for c in result.checks if c.warning]
    assert warned.name == "must-pass: fraud: fraud-13" and "new failure" in warned.message
    (known,) = [c for c in result.checks if c.known_failure]
    assert known.name.endswith("fraud-14")
    verdict = next(c for c in result.checks if c.name == "must-pass: fraud: no regression")
    assert (
        verdict.passed and "1 new failure(s), 1 fixed, of 15 conversation(s) (paired p=0.75 >= 0.05" in verdict.message
    )


def test_no_regression_blocks_when_new_failures_significantly_outnumber_fixes() -> None:
    # 5 new failures and no fix: one-sided exact McNemar p = 0.5^5 = 0.031 < 0.05.
    result = decide(no_regression(), *fraud_runs([False] * 5 + [True] * 10, [True] * 15))
    (failure,) = result.failures()
    assert failure.name == "must-pass: fraud: no regression"
    assert "5 new failure(s), 0 fixed, of 15 conversation(s)" in failure.message
    assert "significantly outnumber fixes (paired p=0.031 < 0.05" in failure.message
    # Four are not significant (p = 0.0625): they pass, each one listed as a warning.
    four = decide(no_regression(), *fraud_runs([False] * 4 + [True] * 11, [True] * 15))
    assert four.passed and sum(c.warning for c in four.checks) == 4


def test_no_regression_blocks_above_its_cap_whatever_the_test_says() -> None:
    result = decide(no_regression(max_new_failures=1), *fraud_runs([False] * 2 + [True] * 13, [True] * 15))
    (failure,) = result.failures()
    assert "more than the 1 new failure(s) allowed" in failure.message


def test_no_regression_uses_its_own_alpha() -> None:
    runs = fraud_runs([False] * 5 + [True] * 10, [True] * 15)
    assert decide(no_regression(alpha=0.01), *runs).passed


def test_rule_options_belong_to_no_regression_only() -> None:
    with pytest.raises(ValueError, match="apply to mode: no_regression only"):
        GateSpec.model_validate(
            {
                "version": 1,
                "kpis": {"availability.v1": {}},
                "must_pass": [{"name": "x", "tags": ["fraud"], "max_new_failures": 1}],
            }
        )


def test_a_kpi_check_may_set_its_own_alpha() -> None:
    now = [True] * 87 + [False] * 3 + [True] + [False] * 9  # 3 worse, 1 better: paired p about 0.3
    loose = spec(**{"recognition_rate.v1": {"max_regression": 0.01, "alpha": 0.45}})
    assert not decide(loose, run(now), BASELINE).checks[0].passed


def test_a_scorecard_only_baseline_from_before_a_new_version_fails_closed() -> None:
    """An old baseline (scorecard.json alone) holds recognition_rate.v1; a spec naming v2 must not pass silently."""
    old = ScoredRun.from_scorecard(
        {"eval_set_hash": "h1", "kpis": {"recognition_rate.v1": {"value": 0.9, "n": 100}}}, "experiments/old-baseline"
    )
    gate = GateSpec.model_validate(
        {"version": 1, "kpis": {"recognition_rate.v2": {"max_regression": 0.03}}, "policy": {"min_n": 30}}
    )
    result = decide(gate, run([True] * 90 + [False] * 10, fraud=False), old)
    (failure,) = result.failures()
    assert "holds recognition_rate.v1, not recognition_rate.v2" in failure.message
    assert "turns.parquet" in failure.message
