"""`harness retrain` bookkeeping on a real (SQLite) MLflow store: the training run holds the model archive, which
is registered as a version of reference-bot; the evaluation run is linked to it; the gate's promotion moves the
champion to that version and the next gate (and retrain) finds the evaluation through it."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
from test_gate_mlflow import logged_run

from harness.gate.baseline import champion_card, mlflow_baseline, promote
from harness.gate.spec import BaselineSpec, GateSpec, MlflowBaseline
from harness.scoring.scorecard import Scorecard
from harness.trainer.retrain import REGISTERED_MODEL, kpi_changes, link, track_training


def card(**values: tuple[float | None, bool | None]) -> Scorecard:
    return Scorecard.from_dict({"kpis": {k: {"value": v, "higher_is_better": d} for k, (v, d) in values.items()}})


def test_kpi_changes_follow_each_kpis_direction() -> None:
    champion = card(recognition=(0.80, True), latency=(100.0, False), count=(10.0, None), oos=(None, True))
    new = card(recognition=(0.85, True), latency=(120.0, False), count=(12.0, None), oos=(0.9, True), extra=(1, True))
    table = kpi_changes(champion, new).set_index("kpi")
    assert table.loc["recognition", "verdict"] == "better"
    assert abs(table.loc["recognition", "change"] - 0.05) < 1e-12
    assert table.loc["latency", "verdict"] == "worse"
    assert table.loc["count", "verdict"] == "n/a"
    assert table.loc["oos", "verdict"] == "n/a" and pd.isna(table.loc["extra", "champion"])


def test_a_retrained_model_is_a_registered_version_linked_to_its_evaluation_and_becomes_champion(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = logged_run(tmp_path, uri)  # the evaluation run, logged as `harness run` does
    archive = tmp_path / "bankbot-abc.tar.gz"
    archive.write_bytes(b"model bytes")
    inputs = tmp_path / "config.yml"
    inputs.write_text("pipeline: []\n")
    options = dict(
        tracking_uri=uri,
        experiment="exp",
        artifact_root=tmp_path / "artifacts",
        model=archive,
        fingerprint="abc",
        params={"model": archive.name},
        train_seconds=12.5,
        inputs=[inputs],
    )
    record = track_training(**options)
    assert (record.version, record.reused) == ("1", False)
    client = mlflow.MlflowClient(tracking_uri=uri)
    (evaluation,) = client.search_runs(
        [client.get_experiment_by_name("exp").experiment_id], "tags.`harness.run_id` = '20260101-000000-abc123'"
    )
    link(uri, record, evaluation.info.run_id)
    assert track_training(**options).reused  # the same model is not registered twice

    training = client.get_run(record.run_id)
    assert training.data.metrics["train_seconds"] == 12.5
    assert training.data.tags["evaluation_run_id"] == evaluation.info.run_id
    assert client.get_run(evaluation.info.run_id).data.tags["mlflow.parentRunId"] == record.run_id
    downloaded = client.download_artifacts(record.run_id, f"model/{archive.name}", str(tmp_path / "dl"))
    assert Path(downloaded).read_bytes() == b"model bytes"
    version = client.get_model_version(REGISTERED_MODEL, "1")
    assert version.source.endswith(f"model/{archive.name}") and version.run_id == record.run_id

    # the gate passes and promotes: the alias moves to the retrained version, no new version is made
    assert (
        promote(folder, tracking_uri=uri, experiment="exp", registered_model=REGISTERED_MODEL, alias="champion") == "1"
    )
    with mlflow_baseline(MlflowBaseline(registered_model=REGISTERED_MODEL, alias="champion"), uri) as baseline:
        assert json.loads((baseline / "scorecard.json").read_text())["run_id"] == folder.name
    spec = GateSpec.model_validate(
        {
            "version": 1,
            "baseline": BaselineSpec(mlflow=MlflowBaseline()).model_dump(),
            "kpis": {"recognition_rate.v1": {"threshold": 0.5}},
        }
    )
    label, scorecard = champion_card(spec, uri)
    assert label == "reference-bot alias champion" and scorecard["run_id"] == folder.name
