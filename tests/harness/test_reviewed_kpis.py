"""Reviewed KPIs on hand-made verdicts whose figures are worked out here, with the scorecard of review.yml."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.proportion import proportion_confint

from harness.review.config import load_review_config
from harness.review.reviewed_kpis import ReviewedKpi, Verdict, reviewed_kpis, verdict_for
from harness.scoring.metrics.intervals import Proportion as Rate

SCORECARD = load_review_config().scorecard
ATTRIBUTES = ("understood", "correct_answer", "correct_routing", "resolved", "tone")


def verdict(
    sampled: bool,
    actual: str,
    expected: str | None,
    auto_resolved: bool | None,
    correct: str,
    ratings: str,
    errors: str = "",
) -> Verdict:
    """`ratings`: the five scorecard attributes in order; `errors`: critical error names (both space-separated)."""
    assert set(errors.split()) <= {c.name for c in SCORECARD.critical_errors}
    return Verdict(
        sampled=sampled,
        actual_outcome=actual,
        expected_label=expected,
        auto_resolved=auto_resolved,
        ratings=dict(zip(ATTRIBUTES, ratings.split(), strict=True)),
        critical_classes=frozenset(c.value for c in SCORECARD.classes_of(errors.split())),
        correct_outcome=correct,
    )


SELF, FRAUD, GENERAL, PAYMENTS = "self_served", "escalated:fraud", "escalated:general", "escalated:payments"

# Ratings in order: understood, correct_answer, correct_routing, resolved, tone (good/acceptable pass, poor fails).
VERDICTS = [
    # S1: served; the label said escalate to general, the analyst says serving it was right.
    verdict(True, SELF, GENERAL, False, SELF, "yes yes yes yes good"),
    # S2: handed to fraud as labelled; resolution not applicable; asked for a PIN (compliance).
    verdict(True, FRAUD, FRAUD, False, FRAUD, "yes yes yes n/a acceptable", "asked_for_secret"),
    # S3: sent to general instead of payments; told something false (customer) and the wrong queue (business).
    verdict(True, GENERAL, PAYMENTS, False, PAYMENTS, "no no no no poor", "wrong_queue wrong_information"),
    # S4: served and automatically resolved, but the analyst found it unresolved, with a false answer and data shown
    # before verification (customer, compliance).
    verdict(True, SELF, SELF, True, SELF, "yes no yes no good", "wrong_information data_disclosed"),
    # F1 (flagged, not sampled): abandoned after fallbacks; customer stranded.
    verdict(False, "abandoned", SELF, False, SELF, "no no no no poor", "customer_stranded"),
    # F2: production log (no label) handed to general, rightly; rated resolved although a human took it.
    verdict(False, GENERAL, None, None, GENERAL, "yes yes yes yes good"),
    # F3: production log served, but it was a complaint for the complaints queue; answer not applicable.
    verdict(False, SELF, None, None, "escalated:complaints", "yes n/a no yes acceptable", "complaint_not_logged"),
    # F4: served and automatically resolved, rated resolved, but with a false answer.
    verdict(False, SELF, SELF, True, SELF, "yes no yes yes good", "wrong_information"),
]

# (population, name) -> (reviewed hits, n, automatic hits, n) or (reviewed hits, n) when there is no counterpart.
EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    # --- sample: S1-S4 ---
    # Handed off: S2, S3. Analyst: S2 right, S3 wrong. Labels (both labelled): S2 matches, S3 does not.
    ("sample", "reviewed_escalation_accuracy"): (1, 2, 1, 2),
    # Analyst: S1, S2, S4 ended where they should; S3 not. Labels: S1 (label escalated) and S3 mismatch.
    ("sample", "reviewed_outcome_accuracy"): (3, 4, 2, 4),
    # Resolution rated on S1, S3, S4 (S2 n/a): S1 kept and resolved. Automatic on the same three: S4 only.
    ("sample", "reviewed_resolution"): (1, 3, 1, 3),
    # Customer errors in S3, S4; business in S3; compliance in S2, S4; any error in S2, S3, S4.
    ("sample", "critical_accuracy.customer"): (2, 4),
    ("sample", "critical_accuracy.business"): (3, 4),
    ("sample", "critical_accuracy.compliance"): (2, 4),
    ("sample", "critical_accuracy.all"): (1, 4),
    # understood: S1 S2 S4 yes. correct_answer: S1 S2 yes. correct_routing: S1 S2 S4 yes.
    # resolved: rated S1 S3 S4, S1 yes. tone: good S1 S4, acceptable S2, poor S3.
    ("sample", "attribute.understood"): (3, 4),
    ("sample", "attribute.correct_answer"): (2, 4),
    ("sample", "attribute.correct_routing"): (3, 4),
    ("sample", "attribute.resolved"): (1, 3),
    ("sample", "attribute.tone"): (3, 4),
    # --- reviewed: all eight ---
    # Handed off: S2, S3, F2; analyst right on S2, F2. Labelled handed-off: S2, S3 (F2 is unlabelled); S2 matches.
    ("reviewed", "reviewed_escalation_accuracy"): (2, 3, 1, 2),
    # Analyst: S1 S2 S4 F2 F4 right; S3, F1 (abandoned), F3 (complaints) wrong.
    # Labelled: S1 S2 S3 S4 F1 F4; matching: S2 S4 F4.
    ("reviewed", "reviewed_outcome_accuracy"): (5, 8, 3, 6),
    # Rated: all but S2 = 7. Kept and resolved: S1, F3, F4 (F2 was handed off). Automatic on the rated and labelled
    # (S1 S3 S4 F1 F4): S4, F4.
    ("reviewed", "reviewed_resolution"): (3, 7, 2, 5),
    # Customer errors in S3 S4 F1 F4; business in S3; compliance in S2 S4 F3; any in S2 S3 S4 F1 F3 F4.
    ("reviewed", "critical_accuracy.customer"): (4, 8),
    ("reviewed", "critical_accuracy.business"): (7, 8),
    ("reviewed", "critical_accuracy.compliance"): (5, 8),
    ("reviewed", "critical_accuracy.all"): (2, 8),
    # understood: no on S3 F1. correct_answer: rated 7 (F3 n/a), yes on S1 S2 F2. correct_routing: no on S3 F1 F3.
    # resolved: rated 7 (S2 n/a), yes on S1 F2 F3 F4. tone: poor on S3 F1.
    ("reviewed", "attribute.understood"): (6, 8),
    ("reviewed", "attribute.correct_answer"): (3, 7),
    ("reviewed", "attribute.correct_routing"): (5, 8),
    ("reviewed", "attribute.resolved"): (4, 7),
    ("reviewed", "attribute.tone"): (6, 8),
}

KPIS = reviewed_kpis(VERDICTS, SCORECARD)
BY_KEY = {(k.population, k.name): k for k in KPIS}


def test_kpi_names_and_order() -> None:
    names = [
        "reviewed_escalation_accuracy",
        "reviewed_outcome_accuracy",
        "reviewed_resolution",
        "critical_accuracy.customer",
        "critical_accuracy.business",
        "critical_accuracy.compliance",
        "critical_accuracy.all",
        *(f"attribute.{a}" for a in ATTRIBUTES),
    ]
    assert [(k.population, k.name) for k in KPIS] == [("sample", n) for n in names] + [("reviewed", n) for n in names]


@pytest.mark.parametrize(("population", "name"), list(EXPECTED))
def test_worked_example(population: str, name: str) -> None:
    kpi = BY_KEY[population, name]
    figures = EXPECTED[population, name]
    assert (kpi.reviewed.hits, kpi.reviewed.n) == figures[:2]
    assert kpi.reviewed.value == pytest.approx(figures[0] / figures[1])
    if len(figures) == 2:
        assert kpi.automatic is None
    else:
        assert kpi.automatic is not None
        assert (kpi.automatic.hits, kpi.automatic.n) == figures[2:]
        assert kpi.automatic.value == pytest.approx(figures[2] / figures[3])


def wilson_by_hand(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_interval() -> None:
    kpi = BY_KEY["reviewed", "reviewed_outcome_accuracy"]
    assert kpi.automatic is not None
    for rate, (hits, n) in ((kpi.reviewed, (5, 8)), (kpi.automatic, (3, 6))):
        assert rate.interval == pytest.approx(proportion_confint(hits, n, alpha=0.05, method="wilson"))
        assert rate.interval == pytest.approx(wilson_by_hand(hits, n), abs=1e-6)
    # 5 of 8: roughly 0.31 to 0.86, and not the normal approximation 0.29 to 0.96.
    assert kpi.reviewed.interval == pytest.approx((0.3057, 0.8632), abs=1e-4)


def test_undefined_when_n_is_zero() -> None:
    # Nothing sampled: every sample KPI is undefined. No dialog handed off or with resolution rated: those too.
    unsampled = [
        verdict(False, SELF, SELF, True, SELF, "yes yes yes n/a good"),
        verdict(False, "abandoned", None, None, SELF, "no no no n/a poor", "customer_stranded"),
    ]
    kpis = {(k.population, k.name): k for k in reviewed_kpis(unsampled, SCORECARD)}
    sample = [k for (population, _), k in kpis.items() if population == "sample"]
    assert len(sample) == 12
    for kpi in sample:
        assert (kpi.reviewed.n, kpi.reviewed.value, kpi.reviewed.interval) == (0, None, None)
        assert kpi.automatic is None or (kpi.automatic.n, kpi.automatic.value) == (0, None)
    for name in ("reviewed_escalation_accuracy", "reviewed_resolution", "attribute.resolved"):
        kpi = kpis["reviewed", name]
        assert (kpi.reviewed.n, kpi.reviewed.value, kpi.reviewed.interval) == (0, None, None)
    # The rest of the reviewed population is defined: 1 of 2 dialogs free of critical errors.
    assert kpis["reviewed", "critical_accuracy.all"].reviewed == Rate(1, 2)
    assert kpis["reviewed", "reviewed_outcome_accuracy"].automatic == Rate(1, 1)


def test_no_verdicts() -> None:
    kpis = reviewed_kpis([], SCORECARD)
    assert len(kpis) == 24
    assert all(k.reviewed == Rate(0, 0) and k.reviewed.value is None for k in kpis)


def test_rate_value_and_interval() -> None:
    assert Rate(3, 4).value == 0.75 and Rate(0, 0).value is None and Rate(0, 0).interval is None
    low, high = Rate(0, 5).interval  # type: ignore[misc]
    assert low == pytest.approx(0.0, abs=1e-12) and 0 < high < 0.5


def test_missing_rating_counts_as_not_applicable() -> None:
    bare = Verdict(True, "self_served", "self_served", True, {"understood": "yes"}, frozenset(), "self_served")
    kpis = {(k.population, k.name): k for k in reviewed_kpis([bare], SCORECARD)}
    assert kpis["sample", "attribute.understood"].reviewed == Rate(1, 1)
    assert kpis["sample", "attribute.tone"].reviewed == Rate(0, 0)
    assert kpis["sample", "reviewed_resolution"] == ReviewedKpi("reviewed_resolution", "sample", Rate(0, 0), Rate(0, 0))


@pytest.mark.parametrize(
    ("reviews", "chosen"),
    [
        # (review id, is reference, by a lead), in creation order.
        ([(1, False, False), (2, False, True), (3, True, False)], 3),  # the reference wins, even by a non-lead
        ([(1, True, False), (2, True, True)], 1),  # the first reference
        ([(1, False, False), (2, False, True), (3, False, True)], 2),  # no reference: the first lead's review
        ([(7, False, False), (4, False, False)], 7),  # neither: the first review
        ([(5, False, False)], 5),
        ([], None),
    ],
)
def test_verdict_for(reviews: list[tuple[int, bool, bool]], chosen: int | None) -> None:
    assert verdict_for(reviews) == chosen
