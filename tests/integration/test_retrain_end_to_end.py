"""`harness retrain` end to end: the real bot trained (or reused), served and evaluated; MLflow holds a training
run with the model archive, registered as a reference-bot version, and the evaluation run linked to it; the KPI
change against the gate's committed baseline is written."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
import yaml
from test_harness_run import eval_subset
from typer.testing import CliRunner

from harness.cli import app
from harness.project.paths import ProjectPaths

pytestmark = pytest.mark.integration


def test_retrain_logs_linked_runs_registers_the_model_and_compares_with_the_champion(tmp_path) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = yaml.safe_load((ProjectPaths().experiments / "eval.yml").read_text())
    config.update(eval_sets=str(eval_subset(tmp_path, 3)), output_dir=str(tmp_path / "runs"))
    config["tracking"] = {"uri": uri, "experiment": "retrain-it"}
    (tmp_path / "eval.yml").write_text(yaml.safe_dump(config))
    gate = yaml.safe_load((ProjectPaths().experiments / "gate.yml").read_text())
    gate["baseline"] = {"path": str(ProjectPaths().experiments / "baseline")}
    (tmp_path / "gate.yml").write_text(yaml.safe_dump(gate))

    result = CliRunner().invoke(
        app, ["retrain", "--config", str(tmp_path / "eval.yml"), "--gate-spec", str(tmp_path / "gate.yml")]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "registered as reference-bot version 1" in result.stdout

    client = mlflow.MlflowClient(tracking_uri=uri)
    version = client.get_model_version("reference-bot", "1")
    training = client.get_run(version.run_id)
    assert training.data.params["model"] == version.tags["archive"]
    assert [a.path for a in client.list_artifacts(training.info.run_id, "model")] == [
        f"model/{version.tags['archive']}"
    ]
    evaluation = client.get_run(version.tags["evaluation_run_id"])
    assert evaluation.data.tags["mlflow.parentRunId"] == training.info.run_id
    assert evaluation.data.metrics["conversation_count.v1"] == 6

    (run_dir,) = (tmp_path / "runs").iterdir()
    table = pd.read_csv(run_dir / "champion_comparison.csv").set_index("kpi")
    committed = json.loads((ProjectPaths().experiments / "baseline" / "scorecard.json").read_text())
    champion_count = committed["kpis"]["conversation_count.v1"]["value"]
    assert table.loc["conversation_count.v1", "champion"] == champion_count
    assert table.loc["conversation_count.v1", "new"] == 6
    assert "KPI change against the champion (the committed baseline" in result.stdout
