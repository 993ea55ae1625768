"""Finding the runs the gate compares: a run folder, a committed baseline folder, or an MLflow run chosen by a
registered-model alias (such as `champion`) or by tags; and promoting a run that passed."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.gate.spec import GateSpec, MlflowBaseline
from harness.project.config import TrackingConfig
from harness.project.paths import project_root
from harness.records.run_folder import SCORECARD, TURNS
from harness.scoring.scored_run import ScoredRun


def baseline_for(
    spec: GateSpec,
    run: ScoredRun,
    *,
    override: Path | None = None,
    tracking_uri: str | None = None,
    root: Path | None = None,
) -> ScoredRun | None:
    """The baseline named by `override` or by the specification, scored with the run's options (`ScoredRun.load`;
    a committed or given folder may hold scorecard.json alone); None if none. The spec's relative paths are
    relative to `root` (default: the project root)."""
    options = run.core.options if run.core else None
    if override is not None:
        return ScoredRun.load(override.resolve(), options, need_turns=False)
    if spec.baseline is None:
        return None
    root = root if root is not None else project_root()
    if spec.baseline.path is not None:
        return ScoredRun.load((root / spec.baseline.path).resolve(), options, need_turns=False)
    assert spec.baseline.mlflow is not None  # the schema requires exactly one source
    source = mlflow_source(spec.baseline.mlflow)
    uri = tracking_uri or source.tracking_uri or ""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(root / uri.removeprefix("sqlite:///"))
    with mlflow_baseline(source, uri) as folder:
        return replace(ScoredRun.load(folder, options), source=mlflow_label(source, uri))


def mlflow_label(source: MlflowBaseline, tracking_uri: str) -> str:
    """How the gate names an MLflow baseline in its messages and gate.json (not the temporary download folder)."""
    if source.tag:
        tags = ", ".join(f"{k}={v}" for k, v in source.tag.items())
        return f"MLflow {tracking_uri}: the newest run of experiment '{source.experiment}' tagged {tags}"
    return f"MLflow {tracking_uri}: registered model '{source.registered_model}' alias '{source.alias or 'champion'}'"


def mlflow_source(source: MlflowBaseline, tracking: TrackingConfig | None = None) -> MlflowBaseline:
    """`source` with its unset fields from `tracking` (default: the project's run settings, resolved): the tracking
    URI, and the experiment's name as experiment and registered model (what `harness gate --promote` registers)."""
    if tracking is None:
        from harness.project.config import load_config

        tracking = load_config().resolved().tracking
    return source.model_copy(
        update={
            "tracking_uri": source.tracking_uri or tracking.uri,
            "experiment": source.experiment or tracking.experiment,
            "registered_model": source.registered_model or tracking.experiment,
        }
    )


EVALUATION_TAG = "evaluation_run_id"
"""On a model version registered by `harness retrain`: the run that evaluated it (scorecard.json, turns.parquet)."""


def evaluation_run(version: Any) -> str:
    """The evaluation run of a model version: its tag, or (versions the gate registered) the version's own run."""
    return str(version.tags.get(EVALUATION_TAG) or version.run_id)


def champion_card(spec: GateSpec, tracking_uri: str) -> tuple[str, dict[str, Any]] | None:
    """What the gate compares with, as (label, scorecard.json): the committed folder or the MLflow alias's run;
    None when the specification names no baseline."""
    source = spec.baseline
    if source is None:
        return None
    if source.mlflow is not None:
        mlflow_spec = mlflow_source(source.mlflow)
        with mlflow_baseline(mlflow_spec, tracking_uri) as folder:
            card = json.loads((folder / SCORECARD).read_text(encoding="utf-8"))
        label = f"{mlflow_spec.registered_model} alias {mlflow_spec.alias}"
    else:
        assert source.path is not None
        folder = source.path if source.path.is_absolute() else project_root() / source.path
        label = f"the committed baseline {source.path}"
        card = json.loads((folder / SCORECARD).read_text(encoding="utf-8"))
    refuse_production(card, label)
    return label, card


def refuse_production(card: dict[str, Any], label: str) -> None:
    """InputError when `card` is a production scorecard (`harness logs kpis`): the gate compares replays of the
    same eval sets, and production conversations are another record source (ARCHITECTURE.md, seam 2)."""
    if isinstance(card, dict) and "engine" in card and "window" in card and "eval_set_hash" not in card:
        raise InputError(
            "a production scorecard is not a replay baseline",
            [
                f"{label}: holds the production KPIs of window {card.get('window')!r} (harness logs kpis); the gate "
                "compares replay runs of the same eval sets: give a replay run's folder or MLflow alias"
            ],
        )


@contextmanager
def mlflow_baseline(source: MlflowBaseline, tracking_uri: str) -> Iterator[Path]:
    """The baseline run's scorecard and turn records, downloaded from MLflow into a temporary folder that is
    removed when the block ends. `source` names its experiment (for `tag`) or registered model (`mlflow_source`
    fills them in from the project)."""
    import mlflow

    if (source.experiment if source.tag else source.registered_model) is None:
        raise InputError(
            "the MLflow baseline names no " + ("experiment" if source.tag else "registered model"),
            ["baseline.mlflow: set `experiment` (with tag) or `registered_model`, or leave them to the project's"],
        )

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        if source.tag:
            experiment = client.get_experiment_by_name(str(source.experiment))
            query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in source.tag.items())
            found = (
                client.search_runs(
                    [experiment.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1
                )
                if experiment
                else []
            )
            if not found:
                raise InputError(
                    "no baseline run in MLflow",
                    [f"{tracking_uri}: no run in experiment '{source.experiment}' with tags {source.tag}"],
                )
            run_id = found[0].info.run_id
        else:
            version = client.get_model_version_by_alias(str(source.registered_model), source.alias or "champion")
            run_id = evaluation_run(version)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception types for missing models/aliases
        raise InputError(
            "cannot find the baseline in MLflow",
            [
                f"{tracking_uri}: {type(exc).__name__}: {exc}. Promote a run first (`harness gate --promote`) or give "
                "--baseline <run folder>"
            ],
        ) from None
    with tempfile.TemporaryDirectory(prefix="baseline-") as folder:
        with _quiet_artifacts():  # MLflow's per-file progress bars would interleave with the gate's report
            for name in (SCORECARD, TURNS):
                client.download_artifacts(run_id, name, folder)
        yield Path(folder)


@contextmanager
def _quiet_artifacts() -> Iterator[None]:
    """MLflow's artifact progress bars off for the block (MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR), unless the user set
    the variable; the environment is restored after."""
    import os

    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def promote(run_folder: Path, *, tracking_uri: str, experiment: str, registered_model: str, alias: str) -> str:
    """Tag the run's MLflow run as having passed the gate and move `alias` to a model version of it."""
    import mlflow

    card = json.loads((run_folder / SCORECARD).read_text(encoding="utf-8"))
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = (
        client.search_runs([found.experiment_id], f"tags.`harness.run_id` = '{card['run_id']}'", max_results=1)
        if found
        else []
    )
    if not runs:
        raise InputError(
            "cannot promote",
            [
                f"{tracking_uri}: run {card['run_id']} was not logged to MLflow "
                f"experiment '{experiment}'; rerun it with MLflow logging on"
            ],
        )
    run = runs[0]
    client.set_tag(run.info.run_id, "release_gate", "passed")
    retrained = run.data.tags.get("model_version", "")
    if retrained.startswith(f"{registered_model}/"):
        # `harness retrain` registered this model (archive in its training run): move the alias to that version.
        number = retrained.split("/", 1)[1]
        client.set_registered_model_alias(registered_model, alias, number)
        return number
    try:
        client.get_registered_model(registered_model)
    except Exception:  # noqa: BLE001 - not registered yet
        client.create_registered_model(registered_model, description="The reference bot, as evaluated by harness")
    version = client.create_model_version(
        registered_model,
        source=run.info.artifact_uri,
        run_id=run.info.run_id,
        tags={"bot_model": str(card.get("bot_model"))},
    )
    client.set_registered_model_alias(registered_model, alias, version.version)
    return str(version.version)


def copy_baseline(run_folder: Path, target: Path) -> None:
    """Make `run_folder` the committed baseline: its scorecard and turn records in `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (SCORECARD, TURNS):
        shutil.copy(run_folder / name, target / name)
