"""Lab versus production: the two intent mixes, the chi-square drift test with sparse intents pooled, and the
replay's recognition re-weighted by production's mix, each worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from records_factory import turn

from harness.records import to_frame
from harness.records.production import ProductionStore, Window, to_production_frame
from harness.scoring.metrics import build_core
from harness.trainer.production_mix import (
    COLUMNS,
    POOLED,
    compare,
    drift_test,
    eval_mix,
    markdown,
    production_mix,
    reweighted_recognition,
)


def counts(**values: int) -> pd.Series:
    return pd.Series(values, dtype="int64")


def test_production_mix_counts_answered_turns_by_prediction_from_a_store(tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    base = {"source": "t", "attempts": 1, "n_bot_messages": 1, "conversation_start": start, "sent_at": start}
    rows = [
        {**base, "conversation_id": "a", "turn_index": 0, "intent": "fees", "fallback": False, "status": "ok"},
        {**base, "conversation_id": "a", "turn_index": 1, "intent": "fees", "fallback": True, "status": "ok"},
        {**base, "conversation_id": "b", "turn_index": 0, "intent": "fees", "fallback": False, "status": "ok"},
        {**base, "conversation_id": "b", "turn_index": 1, "intent": "top_up", "fallback": False, "status": "ok"},
        {**base, "conversation_id": "b", "turn_index": 2, "intent": None, "fallback": None, "status": "timeout"},
    ]
    store = ProductionStore(tmp_path)
    store.append(to_production_frame(rows), "t")
    assert production_mix(store.read(Window(), columns=COLUMNS)).to_dict() == {
        "fees": 2,
        "nlu_fallback": 1,
        "top_up": 1,
    }


def test_chi_square_of_a_2x3_table_by_hand_leaves_fallbacks_out() -> None:
    production = counts(a=30, b=20, c=10, nlu_fallback=7)
    evaluation = counts(a=10, b=20, c=10)
    # N = 100; rows 60, 40; columns 40, 40, 20. Expected: production 24, 24, 12; eval 16, 16, 8.
    statistic = 36 / 24 + 16 / 24 + 4 / 12 + 36 / 16 + 16 / 16 + 4 / 8  # = 6.25
    test = drift_test(production, evaluation)
    assert test.statistic == pytest.approx(statistic) and test.dof == 2
    assert test.p_value == pytest.approx(math.exp(-statistic / 2))  # chi-square with 2 dof: survival e^(-x/2)
    assert test.pooled == [] and test.categories == ["a", "b", "c"]
    # Shares 1/2, 1/3, 1/6 against 1/4, 1/2, 1/4: half of 1/4 + 1/6 + 1/12.
    assert test.tvd == pytest.approx(0.25)


def test_sparse_intents_are_pooled_until_every_expected_count_reaches_five() -> None:
    # d: expected 40 * 1 / 101 < 5 in the eval row, pooled; the pool alone is still sparse, so c (the smallest
    # remaining, expected 40 * 20 / 101 = 7.9) joins it.
    test = drift_test(counts(a=30, b=20, c=10, d=1), counts(a=10, b=20, c=10))
    assert test.pooled == ["c", "d"] and test.categories == ["a", "b", POOLED]
    # The pooled table: production 30, 20, 11; eval 10, 20, 10; N 101.
    table = [[30, 20, 11], [10, 20, 10]]
    rows, cols = [61, 40], [40, 40, 21]
    by_hand = sum(
        (table[i][j] - rows[i] * cols[j] / 101) ** 2 / (rows[i] * cols[j] / 101) for i in range(2) for j in range(3)
    )
    assert test.statistic == pytest.approx(by_hand) and test.dof == 2


def replay() -> pd.DataFrame:
    return to_frame(
        [
            # intent x: 3 eligible turns, 2 recognised (one fell back); intent y: 2 eligible, both recognised.
            turn("A", 0, "x", "x"),
            turn("A", 1, "x", "x", fallback=True),
            turn("B", 0, "y", "y"),
            turn("B", 1, "y", "y"),
            turn("C", 0, "x", "x"),
            turn("C", 1, "out_of_scope", "out_of_scope"),
            turn("C", 2, None, "inform"),
        ]
    )


def test_recognition_is_reweighted_by_the_production_mix() -> None:
    core = build_core(replay())
    assert eval_mix(core).to_dict() == {"x": 3, "out_of_scope": 1, "y": 2}
    production = counts(x=10, y=30, z=10, nlu_fallback=5, out_of_scope=5)
    result = reweighted_recognition(core, production)
    # Weights over the intents the replay measures: x 10/40, y 30/40; recognition x 2/3, y 1.
    assert result.value == pytest.approx(0.25 * 2 / 3 + 0.75 * 1)
    assert result.unweighted == pytest.approx(4 / 5)
    assert result.covered_share == pytest.approx(40 / 50) and result.uncovered == {"z": pytest.approx(0.2)}
    assert result.low is not None and result.high is not None and result.low < result.value <= result.high
    # Weighted by the replay's own mix, the figure is the unweighted one.
    assert reweighted_recognition(core, counts(x=3, y=2)).value == pytest.approx(4 / 5)


def test_compare_lists_the_intents_only_one_side_exercises() -> None:
    result = compare(counts(x=10, y=30, z=10, nlu_fallback=5), build_core(replay()), run="r1")
    assert result.production_only == {"z": pytest.approx(10 / 55)}
    assert result.eval_only == {"out_of_scope": pytest.approx(1 / 6)}
    text = markdown(result)
    assert "no labels" in text and "`z`" in text
