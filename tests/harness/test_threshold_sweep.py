"""The fallback-threshold sweep on a hand-made record table."""

from __future__ import annotations

import pytest
from records_factory import turn

from harness.records import to_frame
from harness.trainer.threshold_sweep import sweep


def records():  # type: ignore[no-untyped-def]
    rows = [
        turn("a", 0, "fees", "fees"),  # in scope, right, confidence 0.9 (the factory's)
        turn("b", 0, "fees", "top_up"),  # in scope, wrong
        turn("c", 0, "out_of_scope", "top_up"),  # out of scope, would be accepted at 0.9
        turn("d", 0, "out_of_scope", "out_of_scope"),  # out of scope, recognised as such: never accepted
    ]
    rows[2]["confidence"] = 0.55
    return to_frame(rows)


def test_recognition_and_false_acceptance_per_threshold() -> None:
    table = sweep(records(), thresholds=(0.5, 0.6, 0.95)).table.set_index("threshold")
    assert table.loc[0.5, "recognition"] == pytest.approx(0.5)  # a of a, b
    assert table.loc[0.5, "false_acceptance"] == pytest.approx(0.5)  # c of c, d
    assert table.loc[0.6, "false_acceptance"] == 0 and table.loc[0.6, "recognition"] == pytest.approx(0.5)
    assert table.loc[0.95, "recognition"] == 0


def test_the_recommendation_is_the_best_recognition_within_the_false_acceptance_target() -> None:
    result = sweep(records(), thresholds=(0.5, 0.6, 0.95), max_false_acceptance=0.1)
    assert result.recommended == 0.6 and "within 10%" in result.reason
    assert sweep(records(), thresholds=(0.5,), max_false_acceptance=0.1).recommended is None
