"""Reviewer calibration: kappa statistics and the calibration report, checked against worked examples computed by
hand (textbook examples and a small three-analyst scenario), not against the libraries themselves."""

from __future__ import annotations

import warnings

import pytest

from harness.review.calibration import (
    CalibrationReport,
    Deviation,
    ItemAgreement,
    Rating,
    calibration_report,
    cohen_kappa,
    fleiss_kappa,
)

# --- Cohen's kappa ---------------------------------------------------------------------------------------------


def test_cohen_classic_yes_no_example() -> None:
    # 50 subjects: 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no.
    # p_o = 35/50 = 0.70; rater A says yes 25/50, rater B 30/50: p_e = 0.5*0.6 + 0.5*0.4 = 0.50.
    # kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40.
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.40)


def test_cohen_perfect_agreement_is_one() -> None:
    answers = ["yes", "no", "no", "yes", "no"]
    assert cohen_kappa(answers, list(answers)) == pytest.approx(1.0)


def test_cohen_single_shared_category_is_undefined() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN and no sklearn warning leaks out
        assert cohen_kappa(["no"] * 4, ["no"] * 4) is None


def test_cohen_systematic_disagreement_is_negative() -> None:
    # Always opposite answers, balanced: p_o = 0, p_e = 0.5 -> kappa = -1.
    first = ["yes", "no", "yes", "no"]
    second = ["no", "yes", "no", "yes"]
    assert cohen_kappa(first, second) == pytest.approx(-1.0)


def test_cohen_one_constant_rater_is_zero_not_undefined() -> None:
    # B always says yes: p_o = 3/4, p_e = 3/4 * 1 -> kappa 0 (defined: the raters did not share a single category).
    assert cohen_kappa(["yes", "no", "yes", "yes"], ["yes"] * 4) == pytest.approx(0.0)


def test_cohen_rejects_different_lengths() -> None:
    with pytest.raises(ValueError, match="same subjects"):
        cohen_kappa(["yes", "no"], ["yes"])


# --- Fleiss' kappa ---------------------------------------------------------------------------------------------

# Fleiss (1971) / Wikipedia: 10 subjects, 14 raters, 5 categories.
CLASSIC_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_classic_example_intermediate_values_by_hand() -> None:
    # The published intermediate values: P-bar = 0.378, P-bar_e = 0.213 (checks the table is typed in correctly).
    raters, subjects = 14, len(CLASSIC_TABLE)
    p_bar = sum((sum(n * n for n in row) - raters) / (raters * (raters - 1)) for row in CLASSIC_TABLE) / subjects
    p_cat = [sum(row[j] for row in CLASSIC_TABLE) / (subjects * raters) for j in range(5)]
    p_e = sum(p * p for p in p_cat)
    assert p_bar == pytest.approx(0.378, abs=5e-4)
    assert p_e == pytest.approx(0.213, abs=5e-4)
    assert p_cat == pytest.approx([0.143, 0.200, 0.279, 0.150, 0.229], abs=5e-4)


def test_fleiss_classic_example() -> None:
    # kappa = (0.37802 - 0.21337) / (1 - 0.21337) = 0.2099
    assert fleiss_kappa(CLASSIC_TABLE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_classic_example_through_the_report() -> None:
    categories = ["1", "2", "3", "4", "5"]
    analysts = [f"analyst{i:02d}" for i in range(14)]
    ratings = []
    for subject, row in enumerate(CLASSIC_TABLE):
        answers = [category for category, count in zip(categories, row, strict=True) for _ in range(count)]
        for analyst, answer in zip(analysts, answers, strict=True):
            ratings.append(Rating(dialog=subject, analyst=analyst, answers={"grade": answer}))
    report = calibration_report(ratings)
    (item,) = report.items
    assert item.item == "grade"
    assert item.dialogs == 10
    assert item.raters == 14
    assert report.dialogs == 10
    assert item.fleiss_kappa == pytest.approx(0.210, abs=5e-4)
    # Percent agreement per dialog is P_i, so its mean is P-bar.
    assert item.percent_agreement == pytest.approx(0.378, abs=5e-4)
    assert len(item.pairs) == 14 * 13 // 2
    assert report.deviations == []


def test_fleiss_all_one_category_is_undefined() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fleiss_kappa([[3, 0], [3, 0], [3, 0]]) is None


def test_fleiss_two_raters_equals_scotts_pi() -> None:
    # Two raters, 3 subjects: x/x, y/y, x/y. p_o = 2/3; pooled p_x = p_y = 1/2 -> p_e = 1/2; pi = (2/3-1/2)/(1/2) = 1/3.
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]]) == pytest.approx(1 / 3)


def test_fleiss_rejects_unequal_rater_counts() -> None:
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]])


def _grades(rows: dict[str, dict[str, str]]) -> list[Rating]:
    return [Rating(d, analyst, {"q": a}) for d, answers in rows.items() for analyst, a in answers.items()]


def test_fleiss_in_report_uses_most_common_rater_count_larger_on_tie() -> None:
    # Two dialogs with 3 raters, two with 2 -> tie -> the 3-rater dialogs: rows (x,y) [2,1],[1,2];
    # P_i = 1/3, 1/3 -> P-bar = 1/3; p_x = 1/2 -> P_e = 1/2; kappa = (1/3 - 1/2) / (1/2) = -1/3.
    # (The 2-rater dialogs alone, [2,0],[0,2], would give 1.)
    rows = {
        "d1": {"a": "x", "b": "x", "c": "y"},
        "d2": {"a": "x", "b": "y", "c": "y"},
        "d3": {"a": "x", "b": "x"},
        "d4": {"a": "y", "b": "y"},
    }
    (only,) = calibration_report(_grades(rows)).items
    assert only.fleiss_kappa == pytest.approx(-1 / 3)
    # Percent agreement still covers all four dialogs: (1/3 + 1/3 + 1 + 1) / 4 = 2/3.
    assert only.percent_agreement == pytest.approx(2 / 3)


def test_fleiss_in_report_needs_two_dialogs_with_that_rater_count() -> None:
    rows = {"d1": {"a": "x", "b": "x", "c": "y"}, "d2": {"a": "x", "b": "y"}}
    (only,) = calibration_report(_grades(rows)).items
    assert only.fleiss_kappa is None
    assert only.percent_agreement == pytest.approx((1 / 3 + 0) / 2)
    # Only a-b share two dialogs; a-c and b-c share one, too few for a pair kappa.
    assert [(p.first, p.second, p.dialogs) for p in only.pairs] == [("a", "b", 2)]


# --- a three-analyst scenario ----------------------------------------------------------------------------------

# ann is the lead and her reviews of d1-d3 are the reference; d4 has no reference; d5 was reviewed by ann only.
#
#            understood          tone                    critical:customer   critical:compliance
#            ann  bob  cat       ann   bob   cat         ann bob cat         all "no"
#   d1       yes  yes  yes       good  good  accept      no  no  no
#   d2       no   yes  no        poor  accept good       yes yes yes
#   d3       yes  yes  n/a       good  good  good        no  no  no
#   d4       yes  yes  -         accept poor -           no  no  -
# ann also answered "resolved" on d1 (nobody else did) and "understood" on d5.


def _answers(understood: str, tone: str, customer: str, **extra: str) -> dict[str, str]:
    return {
        "understood": understood,
        "tone": tone,
        "critical:customer": customer,
        "critical:compliance": "no",
        **extra,
    }


def scenario() -> list[Rating]:
    return [
        Rating("d1", "ann", _answers("yes", "good", "no", resolved="yes"), reference=True),
        Rating("d1", "bob", _answers("yes", "good", "no")),
        Rating("d1", "cat", _answers("yes", "acceptable", "no")),
        Rating("d2", "ann", _answers("no", "poor", "yes"), reference=True),
        Rating("d2", "bob", _answers("yes", "acceptable", "yes")),
        Rating("d2", "cat", _answers("no", "good", "yes")),
        Rating("d3", "ann", _answers("yes", "good", "no"), reference=True),
        Rating("d3", "bob", _answers("yes", "good", "no")),
        Rating("d3", "cat", _answers("n/a", "good", "no")),
        Rating("d4", "ann", _answers("yes", "acceptable", "no")),
        Rating("d4", "bob", _answers("yes", "poor", "no")),
        Rating("d5", "ann", {"understood": "yes"}),
    ]


@pytest.fixture
def report() -> CalibrationReport:
    return calibration_report(scenario())


def item(report: CalibrationReport, name: str) -> ItemAgreement:
    return next(i for i in report.items if i.item == name)


def test_scenario_counts_dialogs_reviewed_by_two_or_more(report: CalibrationReport) -> None:
    assert report.dialogs == 4  # d5 has one review


def test_scenario_percent_agreement(report: CalibrationReport) -> None:
    # understood: d1 3/3, d2 1/3 (ann-cat), d3 1/3 (ann-bob), d4 1/1 -> (1 + 1/3 + 1/3 + 1) / 4 = 2/3
    # tone: d1 1/3, d2 0/3, d3 3/3, d4 0/1 -> (1/3 + 0 + 1 + 0) / 4 = 1/3
    assert item(report, "understood").percent_agreement == pytest.approx(2 / 3)
    assert item(report, "tone").percent_agreement == pytest.approx(1 / 3)
    assert item(report, "critical:customer").percent_agreement == pytest.approx(1.0)
    assert item(report, "critical:compliance").percent_agreement == pytest.approx(1.0)
    assert item(report, "understood").dialogs == 4  # d5 has only ann's answer
    assert item(report, "understood").raters == 3


def test_scenario_fleiss_uses_the_three_rater_dialogs(report: CalibrationReport) -> None:
    # Three dialogs have 3 raters, one has 2 -> Fleiss over d1-d3.
    # understood: rows (yes,no,n/a) [3,0,0],[1,2,0],[2,0,1]; P_i = 1, 1/3, 1/3 -> P-bar = 5/9;
    #   p = 6/9, 2/9, 1/9 -> P_e = 41/81; kappa = (45/81 - 41/81) / (40/81) = 0.1
    # tone: rows (good,accept,poor) [2,1,0],[1,1,1],[3,0,0]; P_i = 1/3, 0, 1 -> P-bar = 4/9 = 36/81;
    #   p = 6/9, 2/9, 1/9 -> P_e = 41/81; kappa = (36 - 41) / 40 = -0.125
    # critical:customer: [0,3],[3,0],[0,3] (yes,no); P-bar = 1, P_e = 1/9 + 4/9 = 5/9 -> kappa 1
    assert item(report, "understood").fleiss_kappa == pytest.approx(0.1)
    assert item(report, "tone").fleiss_kappa == pytest.approx(-0.125)
    assert item(report, "critical:customer").fleiss_kappa == pytest.approx(1.0)
    assert item(report, "critical:compliance").fleiss_kappa is None  # all "no": expected agreement 1


def test_scenario_pair_kappas(report: CalibrationReport) -> None:
    understood = {(p.first, p.second): p for p in item(report, "understood").pairs}
    assert list(understood) == [("ann", "bob"), ("ann", "cat"), ("bob", "cat")]
    # ann-bob on d1-d4: ann yes,no,yes,yes / bob yes x4: p_o = 3/4, p_e = 3/4 -> 0
    assert understood[("ann", "bob")].dialogs == 4
    assert understood[("ann", "bob")].percent_agreement == pytest.approx(0.75)
    assert understood[("ann", "bob")].cohen_kappa == pytest.approx(0.0)
    # ann-cat on d1-d3: ann yes,no,yes / cat yes,no,n/a: p_o = 2/3, p_e = 2/3*1/3 + 1/3*1/3 = 1/3 -> 0.5
    assert understood[("ann", "cat")].dialogs == 3
    assert understood[("ann", "cat")].percent_agreement == pytest.approx(2 / 3)
    assert understood[("ann", "cat")].cohen_kappa == pytest.approx(0.5)

    tone = {(p.first, p.second): p.cohen_kappa for p in item(report, "tone").pairs}
    # ann-bob on d1-d4: good,poor,good,accept / good,accept,good,poor: p_o = 1/2, p_e = 1/4+1/16+1/16 = 3/8 -> 0.2
    # ann-cat on d1-d3: good,poor,good / accept,good,good: p_o = 1/3, p_e = 2/3*2/3 = 4/9 -> -0.2
    # bob-cat on d1-d3: good,accept,good / accept,good,good: p_o = 1/3, p_e = 4/9 + 1/9 = 5/9 -> -0.5
    assert tone == pytest.approx({("ann", "bob"): 0.2, ("ann", "cat"): -0.2, ("bob", "cat"): -0.5})

    compliance = item(report, "critical:compliance").pairs
    assert [p.cohen_kappa for p in compliance] == [None, None, None]


def test_scenario_most_disagreed_ordering(report: CalibrationReport) -> None:
    # tone (1/3) < understood (2/3) < critical:customer (1.0, kappa 1) < critical:compliance (1.0, kappa undefined);
    # "resolved" has only ann's answer on d1: no data, listed last.
    assert [i.item for i in report.items] == [
        "tone",
        "understood",
        "critical:customer",
        "critical:compliance",
        "resolved",
    ]
    resolved = item(report, "resolved")
    assert (resolved.dialogs, resolved.raters, resolved.percent_agreement, resolved.fleiss_kappa) == (0, 1, None, None)
    assert resolved.pairs == []
    assert [i.item for i in report.most_disagreed(2)] == ["tone", "understood"]
    assert [i.item for i in report.most_disagreed()] == ["tone", "understood", "critical:customer"]
    assert [i.item for i in report.most_disagreed(10)] == [i.item for i in report.items[:4]]  # no-data items left out


def test_items_are_ordered_by_percent_agreement_then_kappa() -> None:
    # Two raters on 3 dialogs.
    # a_item: x/x, y/y, x/y -> agreement 2/3; pooled p_x = 1/2 -> p_e = 1/2; Scott's pi = (2/3 - 1/2) / (1/2) = 1/3.
    # b_item: x/x, x/x, x/y -> agreement 2/3; p_x = 5/6 -> p_e = 26/36; pi = (24/36 - 26/36) / (10/36) = -0.2.
    # c_item: x/x, y/z, z/y -> agreement 1/3; p = 1/3 each -> p_e = 1/3; pi = 0 (higher kappa, but ranks first).
    first = {"a_item": "xyx", "b_item": "xxx", "c_item": "xyz"}
    second = {"a_item": "xyy", "b_item": "xxy", "c_item": "xzy"}
    ratings = [
        Rating(dialog, analyst, {name: answers[n] for name, answers in columns.items()})
        for analyst, columns in (("first", first), ("second", second))
        for n, dialog in enumerate(["d1", "d2", "d3"])
    ]
    report = calibration_report(ratings)
    assert [(i.item, i.percent_agreement, i.fleiss_kappa) for i in report.items] == [
        ("c_item", pytest.approx(1 / 3), pytest.approx(0.0)),
        ("b_item", pytest.approx(2 / 3), pytest.approx(-0.2)),
        ("a_item", pytest.approx(2 / 3), pytest.approx(1 / 3)),
    ]


def test_scenario_deviations_from_reference(report: CalibrationReport) -> None:
    # bob vs ann on d1-d3: understood differs on d2, tone on d2 -> 2 of 12.
    # cat vs ann on d1-d3: understood differs on d3 (n/a vs yes), tone on d1 and d2 -> 3 of 12.
    # ann has no non-reference review of a dialog with a reference (d4 has none), so she is not listed.
    # "resolved" was only answered by the reference, so it is compared for nobody.
    assert report.deviations == [
        Deviation(
            "bob",
            compared=12,
            disagreements=2,
            rate=pytest.approx(2 / 12),
            by_item={
                "critical:compliance": (0, 3),
                "critical:customer": (0, 3),
                "tone": (1, 3),
                "understood": (1, 3),
            },
        ),
        Deviation(
            "cat",
            compared=12,
            disagreements=3,
            rate=pytest.approx(3 / 12),
            by_item={
                "critical:compliance": (0, 3),
                "critical:customer": (0, 3),
                "tone": (2, 3),
                "understood": (1, 3),
            },
        ),
    ]


def test_items_argument_restricts_and_keeps_unrated_items() -> None:
    report = calibration_report(scenario(), items=["understood", "empathy"])
    assert [i.item for i in report.items] == ["understood", "empathy"]
    assert item(report, "empathy").dialogs == 0
    assert item(report, "empathy").raters == 0
    assert [d.by_item for d in report.deviations] == [{"understood": (1, 3)}, {"understood": (1, 3)}]


def test_no_reference_means_no_deviations() -> None:
    ratings = [Rating(r.dialog, r.analyst, r.answers) for r in scenario()]
    report = calibration_report(ratings)
    assert report.deviations == []
    assert item(report, "tone").percent_agreement == pytest.approx(1 / 3)  # agreement does not depend on the mark


def test_analyst_rating_a_dialog_twice_is_rejected() -> None:
    ratings = [*scenario(), Rating("d2", "bob", {"understood": "no"})]
    with pytest.raises(ValueError, match=r"'bob'.*'d2'.*more than once"):
        calibration_report(ratings)


def test_two_reference_reviews_of_one_dialog_are_rejected() -> None:
    ratings = [*scenario(), Rating("d3", "dan", {"understood": "yes"}, reference=True)]
    with pytest.raises(ValueError, match=r"dialog 'd3'.*more than one reference"):
        calibration_report(ratings)


def test_most_disagreed_rejects_negative_n(report: CalibrationReport) -> None:
    with pytest.raises(ValueError, match="n must be"):
        report.most_disagreed(-1)


def test_consistency_compares_each_analyst_with_their_own_blind_rereview() -> None:
    from harness.review.calibration import consistency

    first = [
        Rating(1, "ann", {"tone": "good", "understood": "yes"}),
        Rating(2, "ann", {"tone": "poor", "understood": "no"}),
        Rating(3, "ann", {"tone": "good", "understood": "yes"}),
        Rating(1, "bob", {"tone": "good"}),
    ]
    second = [
        Rating(1, "ann", {"tone": "good", "understood": "yes"}),
        Rating(2, "ann", {"tone": "good", "understood": "no"}),
        Rating(3, "ann", {"tone": "good", "understood": "yes"}),
    ]
    (ann,) = consistency(first, second)
    by_item = {i.item: i for i in ann.items}
    assert ann.analyst == "ann" and ann.dialogs == 3
    # understood: yes/no/yes twice -> 3 of 3 agree, kappa 1
    assert (by_item["understood"].agreements, by_item["understood"].dialogs) == (3, 3)
    assert by_item["understood"].cohen_kappa == pytest.approx(1.0)
    # tone: good/poor/good then good/good/good -> 2 of 3; second rater constant: p_o = 2/3, p_e = 2/3, kappa 0
    assert by_item["tone"].percent_agreement == pytest.approx(2 / 3)
    assert by_item["tone"].cohen_kappa == pytest.approx(0.0)
    assert ann.percent_agreement == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="without a first review"):
        consistency(first, [Rating(9, "ann", {"tone": "good"})])
