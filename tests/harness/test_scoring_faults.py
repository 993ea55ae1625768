"""Scoring and reporting when things go wrong: failed, silenced and unsent turns, unlabelled conversations and
nulls wherever the bot's trace can be null (issue 11, items 3 to 6; kpis.md "Clarifications (2026-11-30)").
Every value asserted on a hand-made table is worked out in the comments beside it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from records_factory import STATUSES, record_tables, turn
from typer.testing import CliRunner

from harness.cli import app
from harness.records import to_frame, write
from harness.review.config import load_review_config
from harness.review.dialogs import build_dialogs, turn_view
from harness.review.flagging import conversation_facts, low_confidence, select
from harness.scoring.metrics import (
    REGISTRY,
    MetricResult,
    ScoringOptions,
    UndefinedMetricWarning,
    build_core,
    compute_all,
)
from harness.scoring.metrics.diagnostics import escalation_errors, intent_report, outcome_matrix
from harness.scoring.scored_run import ScoredRun
from harness.sinks.report import failed_conversations, render
from harness.trainer.threshold_sweep import sweep

OPTIONS = ScoringOptions(bootstrap_replicates=200, seed=3)
FAILED = ("timeout", "channel_error", "empty_reply")
REVIEW = load_review_config()
# The review's selection and dialogs without the sentence-embedding model (the repetition rule's meaning check).
REVIEW_NO_MODEL = REVIEW.model_copy(
    update={
        "flags": REVIEW.flags.model_copy(
            update={"repetition": REVIEW.flags.repetition.model_copy(update={"meaning": None})}
        )
    }
)


def kpis(records: pd.DataFrame) -> dict[str, MetricResult]:
    """Every registered KPI version (superseded ones included) by name; undefined-value warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {r.name: r for r in compute_all(build_core(records, OPTIONS), include_superseded=True)}


def unlabelled(row: dict) -> dict:
    """A turn of a production conversation: no expected outcome, queue, resolvability or intent label."""
    return {**row, "expected_outcome": None, "expected_queue": None, "resolvable": None, "expected_intent": None}


def report_of(records: pd.DataFrame) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return render(ScoredRun.from_records(records, OPTIONS, stamp={"run_id": "r"}))


# Item 3: a failed turn must not crash scoring or the report.


@pytest.mark.parametrize("status", STATUSES)
def test_the_report_renders_labelled_turns_of_every_status(status: str) -> None:
    answered = status == "ok"
    records = to_frame(
        [
            turn("A", 0, "fees", "fees" if answered else None, status=status),
            turn("A", 1, "out_of_scope", "top_up" if answered else None, status=status),
            turn("B", 0, "fees", "fees"),
        ]
    )
    page = report_of(records)
    assert "<h2>Failed conversations" in page and "<h2>Outcome matrix</h2>" in page


def test_rescore_scores_and_reports_a_run_whose_bot_failed(tmp_path: Path) -> None:
    # One conversation per status, labelled, plus an unlabelled one, as a bot killed mid-run leaves them.
    rows = [
        turn("ok", 0, "fees", "fees"),
        turn("empty", 0, "fees", None, status="empty_reply"),
        turn("error", 0, "check_balance", None, status="channel_error"),
        turn("error", 1, "thanks", None, status="not_sent"),
        turn("slow", 0, "out_of_scope", None, status="timeout"),
        turn("human", 0, "report_fraud", "report_fraud", expected="escalated", queue="fraud", handoff="fraud"),
        turn("human", 1, "fees", None, expected="escalated", queue="fraud", status="silenced"),
        unlabelled(turn("log", 0, None, "fees", handoff="general")),
    ]
    run = tmp_path / "run"
    run.mkdir()
    write(to_frame(rows), run / "turns.parquet")
    meta = {
        "run_id": "r",
        "eval_set_hash": "h" * 64,
        "eval_set_version": 1,
        "harness_version": "test",
        "git_sha": "0" * 40,
        "config": {"version": 1, "bot": {"url": "http://127.0.0.1:1/webhook"}, "scoring": {"bootstrap_replicates": 50}},
    }
    (run / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    result = CliRunner().invoke(app, ["rescore", str(run)])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "scorecard.json").read_text(encoding="utf-8"))
    # Bot-owned turns: ok, empty, error, slow, human-0, log-0 (6); answered: ok, human-0, log-0.
    assert (
        card["kpis"]["availability.v2"]["value"] == pytest.approx(3 / 6) and card["kpis"]["availability.v2"]["n"] == 6
    )
    # The timed-out out-of-scope turn is the only one: a miss.
    assert card["kpis"]["oos_rejection.v2"]["value"] == 0.0
    # Labelled conversations: ok, empty, error, slow, human (5); only `ok` resolved.
    assert (
        card["kpis"]["resolution_rate.v1"]["value"] == pytest.approx(1 / 5)
        and card["kpis"]["resolution_rate.v1"]["n"] == 5
    )
    assert card["outcome_matrix"]["unlabelled_conversations"] == 1
    assert "oos_rejection.v1" not in card["kpis"]  # superseded: not on the scorecard
    page = (run / "report.html").read_text(encoding="utf-8")
    for conversation in ("empty", "error", "slow"):
        assert f"<summary>{conversation}: " in page


# Item 4: an outage is not a correct out-of-scope rejection.


@pytest.mark.parametrize("status", FAILED)
def test_a_failed_out_of_scope_turn_is_a_miss_for_rejection(status: str) -> None:
    records = to_frame(
        [
            turn("A", 0, "out_of_scope", "out_of_scope"),  # rejected
            turn("B", 0, "out_of_scope", "top_up", fallback=True),  # rejected: fell back
            turn("C", 0, "out_of_scope", None, status=status),  # failed: a miss
        ]
    )
    result = kpis(records)
    assert result["oos_rejection.v2"].value == pytest.approx(2 / 3) and result["oos_rejection.v2"].n == 3
    # The superseded version still counts the outage as a rejection (kept computable, never shown by default).
    assert result["oos_rejection.v1"].value == 1.0


def test_a_bot_that_crashes_on_every_out_of_scope_question_rejects_none() -> None:
    records = to_frame([turn(f"c{i}", 0, "out_of_scope", None, status=FAILED[i % 3]) for i in range(6)])
    result = kpis(records)
    assert result["oos_rejection.v2"].value == 0.0 and result["oos_rejection.v2"].n == 6
    # A failed turn is a miss for recognition too, and an unanswered turn for availability.
    assert result["availability.v2"].value == 0.0


# Item 6: silenced turns (after a handoff) belong to no bot KPI.


def silenced_run() -> pd.DataFrame:
    fraud = {"expected": "escalated", "queue": "fraud", "resolvable": False}
    return to_frame(
        [
            # S: handed to fraud at turn 0; the customer writes twice more while the human owns the conversation.
            turn("S", 0, "report_fraud", "report_fraud", handoff="fraud", latency=100, **fraud),
            turn("S", 1, "fees", None, status="silenced", latency=5000, **fraud),
            turn("S", 2, "out_of_scope", None, status="silenced", latency=6000, **fraud),
            # T: an answered in-scope turn and a falsely accepted out-of-scope one.
            turn("T", 0, "fees", "fees", latency=200),
            turn("T", 1, "out_of_scope", "top_up", latency=300),
            # U: the bot times out.
            turn("U", 0, "fees", None, status="timeout"),
        ]
    )


@pytest.mark.parametrize(
    ("name", "value", "n"),
    [
        # In-scope bot-owned turns: S0 (hit), T0 (hit), U0 (failed: miss) = 2 of 3; v1 also counted S1 as a miss.
        ("recognition_rate.v2", 2 / 3, 3),
        ("recognition_rate.v1", 2 / 4, 4),
        # Out-of-scope bot-owned turns: T1, falsely accepted = 0 of 1; v1 counted the silenced S2 as a rejection.
        ("oos_rejection.v2", 0 / 1, 1),
        ("oos_rejection.v1", 1 / 2, 2),
        # Bot-owned turns S0, T0, T1, U0, answered S0, T0, T1 = 3 of 4; v1 counted S1, S2 as sent and answered.
        ("availability.v2", 3 / 4, 4),
        ("availability.v1", 5 / 6, 6),
        # Answered latencies 100, 200, 300: the silenced 5000 and 6000 ms are the human's time, not the bot's.
        ("latency_p50.v1", 200.0, 3),
        ("latency_p95.v1", 300.0, 3),
    ],
)
def test_silenced_turns_belong_to_no_bot_kpi(name: str, value: float, n: int) -> None:
    result = kpis(silenced_run())[name]
    assert result.value == pytest.approx(value) and result.n == n


def test_silenced_turns_are_not_misses_in_the_intent_report_or_the_transcript() -> None:
    core = build_core(silenced_run(), OPTIONS)
    report = intent_report(core)
    assert report.loc["fees", "support"] == 2  # T0 and U0; not the silenced S1
    assert failed_conversations(core).get(0) is None or all(
        "not recognised" not in r for r in failed_conversations(core)[0]
    )


# Item 5: unlabelled conversations are undefined, never 0, and have no row in the outcome matrix.


def production_log() -> list[dict]:
    return [
        unlabelled(turn("P", 0, None, "request_human", handoff="general")),
        unlabelled(turn("Q", 0, None, "fees")),
    ]


def test_without_labels_every_labelled_kpi_is_undefined_with_a_warning_never_zero() -> None:
    core = build_core(to_frame(production_log()), OPTIONS)
    for name in ("resolution_rate.v1", "escalation_accuracy.v1", "recognition_rate.v2", "oos_rejection.v2"):
        with pytest.warns(UndefinedMetricWarning, match=f"{re.escape(name)} is undefined"):
            result = REGISTRY[name](core)
        assert result.value is None and result.n == 0 and result.interval is None, name
    # Label-free KPIs are still defined: P was handed off, Q was not.
    assert kpis(to_frame(production_log()))["containment.v1"].value == pytest.approx(1 / 2)


def test_without_labels_the_outcome_matrix_has_no_rows_and_no_escalation_error() -> None:
    core = build_core(to_frame(production_log()), OPTIONS)
    matrix = outcome_matrix(core)
    assert matrix.shape[0] == 0 and list(matrix.columns) == ["self_served", "abandoned"]
    assert escalation_errors(core).counts() == {"missed": 0, "unnecessary": 0, "wrong_queue": 0}
    assert "2 unlabelled conversation(s)" in report_of(to_frame(production_log()))


def test_a_partially_labelled_table_counts_only_its_labelled_conversations() -> None:
    records = to_frame(
        [
            turn("A", 0, "fees", "fees"),  # labelled, resolvable, self-served: resolved
            turn("B", 0, "report_fraud", "report_fraud", expected="escalated", queue="fraud", handoff="fraud"),
            *production_log(),  # P handed to general, Q self-served: unlabelled
        ]
    )
    result = kpis(records)
    # Resolved A of labelled A, B; handed-off labelled conversations: B, to the right queue.
    assert (result["resolution_rate.v1"].value, result["resolution_rate.v1"].n) == (pytest.approx(1 / 2), 2)
    assert (result["escalation_accuracy.v1"].value, result["escalation_accuracy.v1"].n) == (1.0, 1)
    core = build_core(records, OPTIONS)
    matrix = outcome_matrix(core)
    assert list(matrix.index) == ["self_served", "escalated:fraud"] and int(matrix.to_numpy().sum()) == 2
    assert matrix.loc["self_served", "self_served"] == 1 and matrix.loc["escalated:fraud", "escalated:fraud"] == 1
    assert escalation_errors(core).counts() == {"missed": 0, "unnecessary": 0, "wrong_queue": 0}


def test_review_facts_of_an_unlabelled_conversation_have_no_expected_label() -> None:
    facts = dict(conversation_facts(build_core(to_frame(production_log()), OPTIONS)))
    assert facts["P"].expected_label is None and facts["P"].actual_outcome == "escalated:general"


# Nulls in the trace, wherever it can hold them, in the review as in the report.


def test_low_confidence_reads_a_turn_without_confidence_as_not_low() -> None:
    row = {**turn("A", 0, "fees", "fees"), "confidence": None}
    (facts,) = dict(conversation_facts(build_core(to_frame([row]), OPTIONS))).values()
    assert low_confidence(facts, REVIEW.flags.low_confidence) == []


def test_the_dialog_view_reads_json_null_as_empty() -> None:
    row = {**turn("A", 0, "fees", "fees"), "ranking": "null", "actions": "null", "slots_set": "null"}
    view = turn_view(to_frame([row]).iloc[0])
    assert view["alternatives"] == [] and view["actions"] == [] and view["slots"] == {}


# One definition of a recognised turn: the KPIs, the report and the threshold sweep agree.


def _cell_kind(expected: str, actual: str) -> str | None:
    """The escalation error an outcome-matrix cell holds, written out independently of the harness."""
    if expected.startswith("escalated:") and actual in ("self_served", "abandoned"):
        return "missed"
    if expected == "self_served" and actual.startswith("escalated:"):
        return "unnecessary"
    if expected.startswith("escalated:") and actual.startswith("escalated:") and actual != expected:
        return "wrong_queue"
    return None


def assert_errors_agree_with_the_matrix(records: pd.DataFrame) -> None:
    core = build_core(records, OPTIONS)
    matrix = outcome_matrix(core)
    counts = escalation_errors(core).counts()
    from_cells = {"missed": 0, "unnecessary": 0, "wrong_queue": 0}
    for expected in matrix.index:
        for actual in matrix.columns:
            kind = _cell_kind(str(expected), str(actual))
            if kind is not None:
                from_cells[kind] += int(matrix.loc[expected, actual])
    assert counts == from_cells
    labelled = records.dropna(subset=["expected_outcome"])["conversation_id"].nunique()
    assert int(matrix.to_numpy().sum()) == labelled


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_tables(max_conversations=8))
def test_escalation_errors_agree_with_the_outcome_matrix_cell_by_cell(records: pd.DataFrame) -> None:
    assert_errors_agree_with_the_matrix(records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_tables(max_conversations=6))
def test_the_sweep_at_the_bot_threshold_reads_the_kpis_definition(records: pd.DataFrame) -> None:
    # A bot with threshold 0.5 falls back exactly below it (a missing confidence counts as 0).
    threshold = 0.5
    records = records.assign(fallback=records["confidence"].fillna(0.0) < threshold)
    core = build_core(records, OPTIONS)
    row = sweep(records, thresholds=(threshold,)).table.iloc[0]
    result = kpis(records)
    recognition = result["recognition_rate.v2"]
    assert (recognition.value is None and np.isnan(row["recognition"])) or row["recognition"] == pytest.approx(
        recognition.value
    )
    assert row["in_scope_n"] == recognition.n and row["out_of_scope_n"] == result["oos_rejection.v2"].n
    t = core.turns
    eligible = int((t["bot_owned"] & t["out_of_scope"]).sum())
    if eligible:
        assert row["false_acceptance"] == pytest.approx(int(t["accepted"].sum()) / eligible)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_tables(max_conversations=5))
def test_red_transcript_rows_are_the_kpis_misses(records: pd.DataFrame) -> None:
    result = kpis(records)
    misses = sum(
        r.n - round(r.value * r.n)
        for r in (result["recognition_rate.v2"], result["oos_rejection.v2"])
        if r.value is not None
    )
    assert report_of(records).count("<tr class=bad>") == misses


# The whole kind: any table a run can leave scores, reports and goes to review without an exception.


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(record_tables())
def test_any_record_table_scores_reports_and_goes_to_review(records: pd.DataFrame) -> None:
    run = ScoredRun.from_records(records, OPTIONS, stamp={"run_id": "r"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        results = list(run.kpis.values())
        card = run.scorecard
    for result in results:
        low, high = REGISTRY[result.name].value_range
        if result.value is None:
            assert result.warning and result.interval is None, result.name
            continue
        assert np.isfinite(result.value) and low <= result.value and (high is None or result.value <= high)
        if result.interval is not None:
            assert low <= result.interval[0] <= result.interval[1] and (high is None or result.interval[1] <= high)
    json.dumps(card.to_dict(), default=str)
    assert "</html>" in render(run)
    assert_errors_agree_with_the_matrix(records)
    assert run.core is not None
    select(run.core, REVIEW_NO_MODEL.flags, REVIEW_NO_MODEL.sample)
    build_dialogs(run, REVIEW_NO_MODEL)
    sweep(records)
