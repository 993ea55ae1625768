"""The bot-trainer loop's bookkeeping: a retrained model as an MLflow training run linked to its evaluation run,
the model archive registered as a version of `reference-bot` (the registered model the release gate promotes), and
the KPI change against the champion: whatever the release gate compares with (experiments/gate.yml's baseline:
the committed folder, or the MLflow alias that `harness gate --promote` moves).

`kpi_changes` is pure (two scorecards in, a table out); the MLflow calls are at the edge (`track_training`,
`link`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.gate.baseline import EVALUATION_TAG
from harness.scoring.scorecard import Scorecard
from harness.sinks.tracking import experiment_id_of

REGISTERED_MODEL = "reference-bot"


@dataclass(frozen=True)
class TrainingRecord:
    run_id: str
    model_name: str
    version: str
    reused: bool
    """True when this model (same training-input fingerprint) was already registered: no new version."""


def kpi_changes(champion: Scorecard, challenger: Scorecard) -> pd.DataFrame:
    """One row per KPI of the challenger's scorecard (`ScoredRun.scorecard`; the champion's is often its
    scorecard.json read back, `Scorecard.from_dict`): both values, the change, and whether it is better, worse or
    equal for that KPI's direction (`n/a` where a side is undefined or the KPI has no direction)."""
    held = {k.name: k for k in champion.kpis}
    rows = []
    for new in challenger.kpis:
        name = new.name
        old = held.get(name)
        before, after = (old.value if old else None), new.value
        change = after - before if before is not None and after is not None else None
        direction = new.higher_is_better
        if change is None or direction is None:
            verdict = "n/a"
        elif abs(change) < 1e-12:
            verdict = "equal"
        else:
            verdict = "better" if (change > 0) == direction else "worse"
        rows.append({"kpi": name, "champion": before, "new": after, "change": change, "verdict": verdict})
    return pd.DataFrame(rows, columns=["kpi", "champion", "new", "change", "verdict"])


def _client(tracking_uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _existing_version(client: Any, fingerprint: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except MlflowException:
        return None
    return next((v for v in versions if v.tags.get("fingerprint") == fingerprint), None)


def track_training(
    *,
    tracking_uri: str,
    experiment: str,
    artifact_root: Path,
    model: Path,
    fingerprint: str,
    params: dict[str, str],
    train_seconds: float | None,
    inputs: list[Path],
) -> TrainingRecord:
    """A training run with the model archive and its inputs as artifacts, and the archive registered as a new
    version of `bankbot` (or the existing version when this exact model is already registered)."""
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    existing = _existing_version(client, fingerprint)
    if existing is not None:
        return TrainingRecord(existing.run_id, model.name, str(existing.version), reused=True)
    experiment_id = experiment_id_of(client, experiment, tracking_uri=tracking_uri, artifact_root=artifact_root)
    run = client.create_run(experiment_id, run_name=f"train {model.name}", tags={"kind": "training"})
    run_id = run.info.run_id
    try:
        stamp = int(run.info.start_time)
        metrics = [Metric("train_seconds", train_seconds, stamp, 0)] if train_seconds is not None else []
        client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()], metrics=metrics)
        client.log_artifact(run_id, str(model), "model")
        for path in inputs:
            client.log_artifact(run_id, str(path), "inputs")
        try:
            client.get_registered_model(REGISTERED_MODEL)
        except MlflowException:
            client.create_registered_model(REGISTERED_MODEL, description="The reference bot, as evaluated by harness")
        source = f"{client.get_run(run_id).info.artifact_uri}/model/{model.name}"
        version = client.create_model_version(
            REGISTERED_MODEL, source, run_id=run_id, tags={"fingerprint": fingerprint, "archive": model.name}
        )
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.delete_run(run_id)
        raise
    return TrainingRecord(run_id, model.name, str(version.version), reused=False)


def link(tracking_uri: str, record: TrainingRecord, evaluation_run_id: str) -> None:
    """Tie the evaluation run to its training run (MLflow shows it nested) and to the model version."""
    client = _client(tracking_uri)
    client.set_tag(evaluation_run_id, "mlflow.parentRunId", record.run_id)
    client.set_tag(evaluation_run_id, "model_version", f"{REGISTERED_MODEL}/{record.version}")
    client.set_tag(record.run_id, EVALUATION_TAG, evaluation_run_id)
    client.set_model_version_tag(REGISTERED_MODEL, record.version, EVALUATION_TAG, evaluation_run_id)
