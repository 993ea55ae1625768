"""KPIs on hand-made record tables whose answers are worked out here, and contracts every metric keeps."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
from records_factory import random_records, turn, worked_example

from harness.records import to_frame
from harness.scoring.metrics import REGISTRY, ScoringOptions, UndefinedMetricWarning, build_core, compute_all, get
from harness.scoring.metrics.diagnostics import escalation_errors, intent_confusion, intent_report, outcome_matrix
from harness.scoring.metrics.intervals import modified_wilson
from harness.scoring.metrics.registry import CLUSTERED_WILSON, T_CONVERSATIONS, TEST_INVERSION, WILSON, UnknownMetric

OPTIONS = ScoringOptions(bootstrap_replicates=400, seed=7)


def results(records: pd.DataFrame) -> dict:
    """Every registered metric, superseded versions included, by versioned name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {r.name: r for r in compute_all(build_core(records, OPTIONS), include_superseded=True)}


WORKED = results(worked_example())


@pytest.mark.parametrize(
    ("name", "value", "n"),
    [
        ("conversation_count.v1", 5, 5),
        # Only A reached a completed end: B and C were handed off, D ended on a fallback, E failed.
        ("self_service_completion.v1", 1 / 5, 5),
        # A, D and E were not handed off.
        ("containment.v1", 3 / 5, 5),
        # In-scope labelled turns sent: A 3, B 2, C 2, D 1 (fees; the out-of-scope turn is scored apart), E 1.
        # Hits: A 3, B 2, C 1 (request_human), D 0 (fallback), E 0 (channel error) = 6 of 9.
        ("recognition_rate.v1", 6 / 9, 9),
        # No turn was silenced: v2 counts the same turns.
        ("recognition_rate.v2", 6 / 9, 9),
        # D's out-of-scope turn was answered as top_up: falsely accepted.
        ("oos_rejection.v1", 0.0, 1),
        ("oos_rejection.v2", 0.0, 1),
        # Handed off: B to fraud (right), C to general (payments expected).
        ("escalation_accuracy.v1", 1 / 2, 2),
        # Only A: resolvable, expected self-service, completed, checks passed.
        ("resolution_rate.v1", 1 / 5, 5),
        # Bot messages A 3, B 2, C 2, D 2, E 0.
        ("messages_per_conversation.v1", 9 / 5, 5),
        ("customer_turns_per_conversation.v1", 10 / 5, 5),
        # Sent turns 10, of which E's first failed.
        ("availability.v1", 9 / 10, 10),
        ("availability.v2", 9 / 10, 10),
        # Answered latencies 10..90 (9 turns): the 5th is the median, the 9th the 95th percentile.
        ("latency_p50.v1", 50.0, 9),
        ("latency_p95.v1", 90.0, 9),
    ],
)
def test_worked_example(name: str, value: float, n: int) -> None:
    result = WORKED[name]
    assert result.value == pytest.approx(value) and result.n == n


def test_conversation_proportions_use_wilson_intervals() -> None:
    # 1 of 5 conversations: Wilson's interval, with Brown, Cai & DasGupta's bound next to 0
    # (harness.scoring.metrics.intervals).
    result = WORKED["self_service_completion.v1"]
    assert result.interval_method == WILSON
    assert result.interval == pytest.approx(modified_wilson(1, 5))


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("recognition_rate.v2", CLUSTERED_WILSON),
        ("availability.v2", CLUSTERED_WILSON),
        ("messages_per_conversation.v1", T_CONVERSATIONS),
        ("latency_p50.v1", TEST_INVERSION),
    ],
)
def test_turn_rates_means_and_quantiles_use_a_clustered_interval_that_brackets_the_value(
    name: str, method: str
) -> None:
    result = WORKED[name]
    assert result.interval_method == method
    low, high = result.interval
    assert low <= result.value <= high and low < high


def test_the_outcome_matrix_and_escalation_errors() -> None:
    core = build_core(worked_example(), OPTIONS)
    matrix = outcome_matrix(core)
    assert matrix.loc["self_served", "self_served"] == 1
    assert matrix.loc["self_served", "abandoned"] == 2
    assert matrix.loc["escalated:fraud", "escalated:fraud"] == 1
    assert matrix.loc["escalated:payments", "escalated:general"] == 1
    assert matrix.to_numpy().sum() == 5
    errors = escalation_errors(core)
    assert errors.counts() == {"missed": 0, "unnecessary": 0, "wrong_queue": 1} and errors.wrong_queue == ["C"]


def test_missed_and_unnecessary_escalations() -> None:
    records = to_frame(
        [
            turn("M", 0, "report_fraud", "check_balance", expected="escalated", queue="fraud"),
            turn("U", 0, "fees", "complaint", handoff="complaints"),
        ]
    )
    assert escalation_errors(build_core(records, OPTIONS)).counts() == {"missed": 1, "unnecessary": 1, "wrong_queue": 0}


def test_per_intent_report_and_confusion() -> None:
    core = build_core(worked_example(), OPTIONS)
    report = intent_report(core)
    # transfer_status: 1 expected, predicted refund_status -> recall 0; precision undefined (never predicted).
    assert report.loc["transfer_status", "recall"] == 0 and math.isnan(report.loc["transfer_status", "precision"])
    assert report.loc["card_lost_stolen", "f1"] == 1
    confusion = intent_confusion(core)
    assert confusion.loc["transfer_status", "refund_status"] == 1
    assert confusion.loc["fees", "nlu_fallback"] == 1
    assert confusion.loc["check_balance", "<no reply>"] == 1


def test_undefined_values_are_none_with_a_warning_never_zero() -> None:
    records = to_frame([turn("A", 0, "fees", "fees")])
    with pytest.warns(UndefinedMetricWarning, match="escalation_accuracy.v1 is undefined"):
        result = get("escalation_accuracy.v1")(build_core(records, OPTIONS))
    assert result.value is None and result.n == 0 and result.interval is None and result.warning


def test_empty_records_give_none_except_the_count() -> None:
    empty = results(to_frame([]))
    assert empty["conversation_count.v1"].value == 0
    assert all(r.value is None for name, r in empty.items() if name != "conversation_count.v1")


def test_unknown_metric_names_fail_loudly_with_a_suggestion() -> None:
    with pytest.raises(UnknownMetric, match="did you mean 'recognition_rate.v2'"):
        get("recogniton_rate.v2")


def test_compute_all_shows_the_current_version_of_each_kpi_and_can_include_the_superseded_ones() -> None:
    core = build_core(worked_example(), OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        current = [r.name for r in compute_all(core)]
        every = [r.name for r in compute_all(core, include_superseded=True)]
    assert every == list(REGISTRY)
    latest = {spec.base: max(s.version for s in REGISTRY.values() if s.base == spec.base) for spec in REGISTRY.values()}
    assert current == [name for name, spec in REGISTRY.items() if spec.version == latest[spec.base]]
    for base in ("recognition_rate", "oos_rejection", "availability"):
        assert f"{base}.v2" in current and f"{base}.v1" not in current and f"{base}.v1" in every
        assert get(f"{base}.v1").superseded_by == f"{base}.v2" and get(f"{base}.v2").superseded_by is None
    # A superseded KPI stays computable by name and says what replaced it.
    result = get("oos_rejection.v1")(core)
    assert result.value == 0.0 and result.superseded_by == "oos_rejection.v2"


@pytest.mark.parametrize("seed", range(6))
def test_every_metric_stays_in_its_range(seed: int) -> None:
    for name, result in results(random_records(seed)).items():
        low, high = REGISTRY[name].value_range
        if result.value is None:
            continue
        assert result.value >= low and (high is None or result.value <= high), name
        if result.interval:
            assert low <= result.interval[0] <= result.interval[1], name
            assert high is None or result.interval[1] <= high, name


@pytest.mark.parametrize("seed", range(3))
def test_every_metric_is_independent_of_record_order(seed: int) -> None:
    records = random_records(seed)
    shuffled = records.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    assert results(records) == results(shuffled)


def test_every_metric_is_deterministic() -> None:
    assert results(random_records(11)) == results(random_records(11))


def test_every_registered_metric_declares_direction_and_version() -> None:
    for name, spec in REGISTRY.items():
        assert name.endswith(f".v{spec.version}") and spec.description
        assert spec.higher_is_better in (True, False, None)
