"""Promotion and MLflow baselines on a real (SQLite) MLflow store: a passing run is tagged and becomes the
`champion`, and the next gate finds its baseline through that alias."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from records_factory import worked_example

from harness.errors import InputError
from harness.gate.baseline import baseline_for, mlflow_baseline, promote
from harness.gate.spec import GateSpec, MlflowBaseline
from harness.pipeline import write_outputs
from harness.records.run_folder import RunFolder
from harness.scoring.metrics import ScoringOptions
from harness.scoring.scored_run import ScoredRun
from harness.sinks.tracking import log_run


def logged_run(tmp_path: Path, uri: str) -> Path:
    folder = tmp_path / "runs" / "20260101-000000-abc123"
    folder.mkdir(parents=True)
    stamp = {
        "run_id": folder.name,
        "eval_set_hash": "h" * 64,
        "eval_set_version": 1,
        "bot_model": "bankbot-x",
        "harness_version": "0",
        "git_sha": "s",
        "config": {"scoring": {"bootstrap_replicates": 200}},
    }
    run = ScoredRun.from_records(
        worked_example(), ScoringOptions(bootstrap_replicates=200), stamp=stamp, source=str(folder)
    )
    write_outputs(RunFolder(folder), run)
    log_run(run, RunFolder(folder), tracking_uri=uri, experiment="exp", artifact_root=tmp_path / "artifacts")
    return folder


def test_a_promoted_run_is_the_champion_baseline(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = logged_run(tmp_path, uri)
    version = promote(folder, tracking_uri=uri, experiment="exp", registered_model="bot", alias="champion")
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert run.data.tags["release_gate"] == "passed" and version == "1"
    with mlflow_baseline(MlflowBaseline(registered_model="bot", alias="champion"), uri) as downloaded:
        baseline = ScoredRun.load(downloaded)
    assert baseline.stamp["run_id"] == folder.name and baseline.core is not None
    assert not downloaded.exists(), "the downloaded baseline is a temporary folder, removed after use"
    with mlflow_baseline(MlflowBaseline(experiment="exp", alias=None, tag={"release_gate": "passed"}), uri) as tagged:
        by_tag = ScoredRun.load(tagged)
    assert by_tag.stamp["eval_set_hash"] == "h" * 64


def test_the_gate_names_an_mlflow_baseline_by_its_source_and_downloads_it_quietly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = logged_run(tmp_path, uri)
    promote(folder, tracking_uri=uri, experiment="exp", registered_model="bot", alias="champion")
    capfd.readouterr()
    spec = GateSpec.model_validate(
        {
            "version": 1,
            "baseline": {"mlflow": {"registered_model": "bot", "alias": "champion", "tracking_uri": uri}},
            "kpis": {"recognition_rate.v2": {"threshold": 0.5}},
        }
    )
    baseline = baseline_for(spec, ScoredRun.load(folder), root=tmp_path)
    assert baseline is not None and baseline.stamp["run_id"] == folder.name
    assert baseline.source == f"MLflow {uri}: registered model 'bot' alias 'champion'"  # was the temporary folder
    printed = capfd.readouterr()
    assert "Downloading artifacts" not in printed.err + printed.out  # MLflow's progress bars


def test_a_missing_alias_says_how_to_fix_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logged_run(tmp_path, uri)
    with (
        pytest.raises(InputError, match="Promote a run first"),
        mlflow_baseline(MlflowBaseline(registered_model="bot", alias="champion"), uri),
    ):
        pass
