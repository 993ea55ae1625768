"""The pytest plugin: a team writes the gate as a test over a run and reads the reasons in pytest's output."""

from __future__ import annotations

from pathlib import Path

import pandas.core.arrays.arrow.extension_types  # noqa: F401  (imported once, before pytester's module snapshot)
import pytest
from records_factory import fraud_conversation, turn

from harness.records import to_frame, write
from harness.scoring.metrics import ScoringOptions, build_core
from harness.scoring.scorecard import build_scorecard

pytest_plugins = ["pytester"]

SPEC = """version: 1
kpis:
  recognition_rate.v1: {threshold: 0.95, min_n: 5}
must_pass:
  - {name: fraud reaches the fraud queue, tags: [fraud]}
"""


def make_run(folder: Path, *, fraud_ok: bool) -> Path:
    rows = [turn(f"c{i}", 0, "fees", "fees") for i in range(9)]
    rows.append(fraud_conversation(handed_to_fraud=fraud_ok))
    records = to_frame(rows)
    folder.mkdir(parents=True)
    write(records, folder / "turns.parquet")
    core = build_core(records, ScoringOptions(bootstrap_replicates=200))
    stamp = {
        "run_id": folder.name,
        "eval_set_hash": "h",
        "bot_model": "m",
        "config": {"scoring": {"bootstrap_replicates": 200, "seed": 1, "confidence": 0.95}},
    }
    build_scorecard(core, stamp).write(folder / "scorecard.json")
    return folder


TEST_FILE = """
def test_release(harness_gate):
    harness_gate().assert_passed()
"""


@pytest.mark.parametrize(("fraud_ok", "outcome"), [(True, {"passed": 1}), (False, {"failed": 1})])
def test_the_gate_as_a_pytest_test(pytester: pytest.Pytester, fraud_ok: bool, outcome: dict) -> None:
    run = make_run(pytester.path / "runs" / "r1", fraud_ok=fraud_ok)
    spec = pytester.path / "gate.yml"
    spec.write_text(SPEC)
    pytester.makepyfile(test_release=TEST_FILE)
    result = pytester.runpytest_subprocess("--harness-run", str(run), "--harness-gate-spec", str(spec), "-W", "ignore")
    result.assert_outcomes(**outcome)
    if not fraud_ok:
        result.stdout.fnmatch_lines(
            [
                "*release gate FAILED: 2 check(s) failed*",
                "*recognition_rate.v1 0.90*is below the floor 0.95*",
                "*fraud-1 fails 'fraud reaches the fraud queue': expected escalated:fraud, got self_served*",
            ]
        )


RUN_TEST_FILE = """
from harness.scoring.scored_run import ScoredRun

def test_the_run(harness_run):
    assert isinstance(harness_run, ScoredRun)
    assert harness_run.stamp["run_id"] == "r1" and harness_run.core.n_conversations == 10
    assert harness_run.value("recognition_rate.v1") == (0.9, 10)
    assert harness_run.scorecard.kpi("recognition_rate.v2").n == 10
"""


def test_harness_run_is_the_scored_run(pytester: pytest.Pytester) -> None:
    # Nine fees turns recognised, the fraud report misread as fees: recognition 9 of 10 turns.
    run = make_run(pytester.path / "runs" / "r1", fraud_ok=False)
    pytester.makepyfile(test_run=RUN_TEST_FILE)
    result = pytester.runpytest_subprocess("--harness-run", str(run), "-W", "ignore")
    result.assert_outcomes(passed=1)
