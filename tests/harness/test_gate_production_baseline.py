"""The gate refuses a production scorecard as its baseline: production logs are another record source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.gate.baseline import champion_card
from harness.gate.spec import BaselineSpec, GateSpec, KpiCheck
from harness.scoring.production.scorecard import ProductionKpi, ProductionScorecard


def spec_for(folder: Path) -> GateSpec:
    return GateSpec(version=1, baseline=BaselineSpec(path=folder), kpis={"containment.v1": KpiCheck()})


def test_a_production_scorecard_is_refused_with_what_to_give_instead(tmp_path: Path) -> None:
    kpi = ProductionKpi("containment.v1", None, "all", None, 0.8, 10, 0.5, 0.9, "wilson")
    card = ProductionScorecard("store", "2026-11-01..2026-11-30", "duckdb", None, None, (kpi,))
    (tmp_path / "scorecard.json").write_text(json.dumps(card.to_json()), encoding="utf-8")
    with pytest.raises(InputError, match="a production scorecard is not a replay baseline") as raised:
        champion_card(spec_for(tmp_path), "sqlite:///unused.db")
    assert "give a replay run's folder or MLflow alias" in raised.value.problems[0]


def test_the_committed_replay_baseline_is_accepted() -> None:
    label, card = champion_card(spec_for(Path("experiments/baseline")), "sqlite:///unused.db")
    assert label == "the committed baseline experiments/baseline" and "eval_set_hash" in card
