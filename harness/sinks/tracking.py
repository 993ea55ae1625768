"""Log a scored run to MLflow: params (what was measured), every KPI as metrics, the run folder's outputs as
artifacts.

All or nothing: the run is logged only after everything is computed, and an MLflow run that fails half-way is
deleted, so MLflow never shows a half-written run. By default the store is SQLite inside experiments/.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import TrackingError
from harness.records.run_folder import RunFolder
from harness.scoring.scorecard import Scorecard
from harness.scoring.scored_run import ScoredRun

ARTIFACT_DIR = "mlartifacts"


def artifact_root(tracking_uri: str, root: Path) -> Path:
    """Where MLflow keeps the artifacts of experiments the harness creates: `mlartifacts/` beside a SQLite tracking
    database (experiments/mlartifacts in the harness repository), else under the project root `root`."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / ARTIFACT_DIR
    return root / ARTIFACT_DIR


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str
    tracking_uri: str

    def ui_hint(self) -> str:
        if self.tracking_uri.startswith("sqlite:"):
            return f"mlflow ui --backend-store-uri {self.tracking_uri}"
        return f"open {self.tracking_uri}"


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = str(value)[:6000]


def metrics_of(scorecard: Scorecard) -> dict[str, float]:
    """`<kpi>` value, `<kpi>.n`, `<kpi>.ci_low` and `<kpi>.ci_high` for every KPI on the scorecard (current
    versions; undefined values are omitted), and `escalation_errors.<kind>` counts."""
    metrics: dict[str, float] = {}
    for kpi in scorecard.kpis:
        metrics[f"{kpi.name}.n"] = float(kpi.n)
        if kpi.value is not None:
            metrics[kpi.name] = float(kpi.value)
        if kpi.interval is not None:
            metrics[f"{kpi.name}.ci_low"], metrics[f"{kpi.name}.ci_high"] = map(float, kpi.interval)
    for key, ids in scorecard.escalation_errors.items():
        metrics[f"escalation_errors.{key}"] = float(len(ids))
    return metrics


def experiment_id_of(client: Any, name: str, *, tracking_uri: str, artifact_root: Path) -> str:
    """The id of MLflow experiment `name`, created (artifacts under `artifact_root` for local stores) if new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = artifact_root.resolve().as_uri() if tracking_uri.startswith(("sqlite:", "file:")) else None
    return str(client.create_experiment(name, artifact_location=location))


@contextlib.contextmanager
def all_or_nothing(client: Any, tracking_uri: str, created: list[str], what: str) -> Iterator[None]:
    """Delete the runs `created` holds (filled by the block as it creates them) if the block fails, and raise
    TrackingError saying that `what`'s files are complete on disk and nothing was left in MLflow."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - any MLflow failure: remove the partial run and say so
        for run_id in created:
            with contextlib.suppress(Exception):
                client.delete_run(run_id)
        raise TrackingError(
            f"could not log {what} to MLflow at {tracking_uri}: {type(exc).__name__}: {exc}; "
            f"{what}'s files are complete on disk, nothing was left in MLflow"
        ) from None


def log_run(
    run: ScoredRun,
    folder: RunFolder,
    *,
    tracking_uri: str,
    experiment: str,
    artifact_root: Path,
    run_name: str | None = None,
) -> TrackedRun:
    """Record the scored run in MLflow: its stamp as params, its scorecard as metrics, the folder's outputs
    (turns.parquet, scorecard.json, report.html, written first) as artifacts; `run_name` defaults to the run id.
    Raises TrackingError (with nothing left behind) if MLflow fails or an output is missing."""
    import mlflow

    scorecard = run.scorecard
    stamp = scorecard.stamp
    params: dict[str, str] = {}
    _flatten("", {k: v for k, v in stamp.items() if k != "config"}, params)
    _flatten("config", stamp.get("config", {}), params)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    created: list[str] = []
    with all_or_nothing(client, tracking_uri, created, "the run"):
        experiment_id = experiment_id_of(client, experiment, tracking_uri=tracking_uri, artifact_root=artifact_root)
        new = client.create_run(
            experiment_id,
            run_name=run_name or str(stamp.get("run_id")),
            tags={
                "harness.run_id": str(stamp.get("run_id")),
                "eval_set_hash": str(stamp.get("eval_set_hash")),
                "bot_model": str(stamp.get("bot_model")),
                "undefined_kpis": json.dumps([k.name for k in scorecard.kpis if k.value is None]),
            },
        )
        run_id = new.info.run_id
        created.append(run_id)
        from mlflow.entities import Metric, Param

        timestamp = int(new.info.start_time)
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in params.items()],
            metrics=[Metric(k, v, timestamp, 0) for k, v in metrics_of(scorecard).items()],
        )
        for path in folder.outputs:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
    return TrackedRun(run_id=run_id, experiment_id=experiment_id, tracking_uri=tracking_uri)
