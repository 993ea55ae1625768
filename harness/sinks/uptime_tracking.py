"""Log `uptime.v1` to MLflow: beside an eval run's KPIs (into that run, found by its `harness.run_id` tag), or as a
run of its own tagged `source=probes`.

Metrics: `uptime.v1` (when defined), `uptime.v1.ci_low` / `uptime.v1.ci_high` (the probe-spacing bounds, named like
every KPI's interval so MLflow's comparison views line them up), `uptime.v1.up_s`, `.down_s`, `.unknown_s` (seconds)
and `uptime.v1.incidents`. Params: the target, the window and the probe log. All or nothing, as
`harness.sinks.tracking.log_run`: a new run that fails half-way is deleted; metrics go to an existing run in one
batch, so they land together or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import InputError, TrackingError
from harness.scoring.uptime import UptimeReport
from harness.sinks.tracking import TrackedRun, all_or_nothing, experiment_id_of

SOURCE_TAG = "source"
PROBES = "probes"
"""The `source` tag of a run holding only uptime (replay runs have none, production runs `production`)."""


def uptime_metrics(report: UptimeReport) -> dict[str, float]:
    """The MLflow metrics of one uptime report (see the module docstring); an undefined value is omitted."""
    name = report.name
    metrics = {
        f"{name}.up_s": float(report.up_s),
        f"{name}.down_s": float(report.down_s),
        f"{name}.unknown_s": float(report.unknown_s),
        f"{name}.incidents": float(len(report.incidents)),
    }
    if report.value is not None:
        metrics[name] = float(report.value)
    if report.bounds is not None:
        metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"] = (float(v) for v in report.bounds)
    return metrics


def uptime_params(report: UptimeReport, target: str, store: str) -> dict[str, str]:
    """What the uptime measured: target, window (ISO start and end) and the probe log (password hidden)."""
    return {
        "uptime.target": target,
        "uptime.window_start": report.start.isoformat(),
        "uptime.window_end": report.end.isoformat(),
        "uptime.store": store,
        "uptime.method": str(report.method),
    }


def log_uptime(
    report: UptimeReport,
    *,
    target: str,
    store: str,
    tracking_uri: str,
    experiment: str,
    artifact_root: Path,
    beside: str | None = None,
) -> TrackedRun:
    """Log `report` to MLflow. `beside` is an eval run's id (`harness.run_id` tag, as `harness run` logs it): the
    metrics and params join that MLflow run; without it a new run `uptime <target>` tagged `source=probes` is made.

    Raises InputError when no MLflow run of `experiment` carries that eval run id (with the command that logs it),
    TrackingError (nothing left half-written) when MLflow fails."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    metrics = uptime_metrics(report)
    params = uptime_params(report, target, store)
    if beside is not None:
        run_id, experiment_id = _eval_run(client, experiment, beside, tracking_uri)
        with all_or_nothing(client, tracking_uri, [], "the uptime"):
            existing = client.get_run(run_id).data.params
        clashes = [k for k, v in params.items() if k in existing and existing[k] != v]
        if clashes:  # outside all_or_nothing, which would turn this InputError into a TrackingError
            raise InputError(
                "the eval run already holds another uptime",
                [
                    f"MLflow run {run_id}: {', '.join(clashes)} differ; log this window as a run of its own "
                    "(leave out --beside)"
                ],
            )
        with all_or_nothing(client, tracking_uri, [], "the uptime"):
            stamp = int(report.end.timestamp() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items() if k not in existing],
            )
        return TrackedRun(run_id=run_id, experiment_id=experiment_id, tracking_uri=tracking_uri)
    created: list[str] = []
    with all_or_nothing(client, tracking_uri, created, "the uptime"):
        experiment_id = experiment_id_of(client, experiment, tracking_uri=tracking_uri, artifact_root=artifact_root)
        run = client.create_run(experiment_id, run_name=f"uptime {target}", tags={SOURCE_TAG: PROBES})
        created.append(run.info.run_id)
        started = int(run.info.start_time)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, started, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
    return TrackedRun(run_id=run.info.run_id, experiment_id=experiment_id, tracking_uri=tracking_uri)


def _eval_run(client: Any, experiment: str, harness_run_id: str, tracking_uri: str) -> tuple[str, str]:
    if "'" in harness_run_id or "\\" in harness_run_id:
        raise InputError("not an eval run id", [f"--beside {harness_run_id!r}: run ids have no quotes or backslashes"])
    try:
        found = client.get_experiment_by_name(experiment)
        runs = (
            client.search_runs(
                [found.experiment_id], filter_string=f"tags.`harness.run_id` = '{harness_run_id}'", max_results=2
            )
            if found is not None
            else []
        )
    except Exception as exc:  # noqa: BLE001 - any MLflow failure, said plainly
        raise TrackingError(
            f"could not look up eval run {harness_run_id} in MLflow at {tracking_uri}: {type(exc).__name__}: {exc}"
        ) from None
    if not runs:
        raise InputError(
            "no MLflow run to log the uptime beside",
            [
                f"{tracking_uri}: experiment {experiment!r} has no run with harness.run_id {harness_run_id!r}: "
                "log the eval run first (`harness run` logs to MLflow unless --no-mlflow), or leave out --beside"
            ],
        )
    return str(runs[0].info.run_id), str(found.experiment_id)
