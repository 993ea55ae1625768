"""Log a production scorecard to MLflow: one run tagged `source=production` (never mixed with replay runs, which
carry an eval-set hash the gate compares on), with the window's KPIs as metrics, each week's value as a step of a
`<kpi>.week` series, and scorecard.json and report.html as artifacts.

Weekly values are metric *history* (step = days from 1970-01-01 to the week's Monday, timestamp = that Monday
00:00 UTC) rather than one `<kpi>.week.<yyyy-mm-dd>` metric per week: MLflow's UI draws a metric's history as a
line chart (x axis: step, or wall time, which then reads as the Mondays), so each KPI shows as one trend; a metric
per week would show as dozens of unrelated single-point charts. The step is the day number, not a week counter
starting at the window, so the same week has the same step in every run and windows of different runs line up.

All or nothing, as `harness.sinks.tracking.log_run`: a run that fails half-way is deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from harness.scoring.production.scorecard import ProductionKpi, ProductionScorecard
from harness.sinks.production_report import base_name, version_of
from harness.sinks.tracking import TrackedRun, all_or_nothing, experiment_id_of

SOURCE_TAG = "source"
"""The tag that tells production runs (`production`) from replay runs."""
PRODUCTION = "production"
DEFAULT_EXPERIMENT = "production"
"""The MLflow experiment production runs go to unless told otherwise (replay runs go to the run config's one)."""
WEEK = "week"
EPOCH = date(1970, 1, 1)

_UNSAFE = re.compile(r"[^\w.\- ]")


def metric_key(kpi: ProductionKpi) -> str:
    """The MLflow name of a KPI: `coverage.v1`, `handoff_rate.v1.queue.billing` (characters MLflow refuses in a
    name, such as `=` or `/`, become `_`)."""
    if not kpi.breakdown:
        return kpi.name
    kind, _, value = kpi.breakdown.partition("=")
    return f"{kpi.name}.{_UNSAFE.sub('_', kind)}.{_UNSAFE.sub('_', value)}"


def _values(key: str, kpi: ProductionKpi) -> dict[str, float]:
    found = {f"{key}.n": float(kpi.n)}
    if kpi.value is not None:
        found[key] = float(kpi.value)
    if kpi.low is not None and kpi.high is not None:
        found[f"{key}.ci_low"], found[f"{key}.ci_high"] = float(kpi.low), float(kpi.high)
    return found


def overall_metrics(scorecard: ProductionScorecard) -> dict[str, float]:
    """`<kpi>` value, `<kpi>.n`, `<kpi>.ci_low`, `<kpi>.ci_high` of every KPI over the window (period `all`, per
    breakdown too); undefined values are omitted (their n stays)."""
    metrics: dict[str, float] = {}
    for kpi in scorecard.overall():
        metrics.update(_values(metric_key(kpi), kpi))
    return metrics


def week_step(monday: date) -> int:
    """The MLflow step of a week: days from 1970-01-01 to its Monday (the same in every run)."""
    return (monday - EPOCH).days


def week_timestamp(monday: date) -> int:
    """The MLflow timestamp of a week: its Monday 00:00 UTC, in milliseconds."""
    return int(datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp() * 1000)


def weekly_metrics(scorecard: ProductionScorecard) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp ms, step) of every weekly value: `<kpi>.week`, `<kpi>.week.n`, `.ci_low`, `.ci_high`,
    one entry per week (see the module docstring for step and timestamp)."""
    found = []
    for kpi in scorecard.kpis:
        if kpi.period != WEEK or kpi.period_start is None:
            continue
        for key, value in _values(f"{metric_key(kpi)}.{WEEK}", kpi).items():
            found.append((key, value, week_timestamp(kpi.period_start), week_step(kpi.period_start)))
    return sorted(found, key=lambda m: (m[0], m[3]))


def production_params(
    scorecard: ProductionScorecard, sources: Sequence[str], settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the run measured: window (asked and covered), store, engine, sources, each KPI's version
    (`kpi.<name>` = `v1`), and the settings that shape the values."""
    from harness import __version__
    from harness.scoring.scorecard import KPI_DEFINITIONS

    params = {
        "window": scorecard.window,
        "first_day": str(scorecard.first_day or ""),
        "last_day": str(scorecard.last_day or ""),
        "store": scorecard.store,
        "engine": scorecard.engine,
        "sources": ",".join(sources),
        "definitions": KPI_DEFINITIONS,
        "harness_version": __version__,
    }
    for name in sorted({k.name for k in scorecard.kpis}):
        params[f"kpi.{base_name(name)}"] = version_of(name)
    for key, value in (settings or {}).items():
        params[f"settings.{key}"] = value
    return {k: v[:6000] for k, v in params.items()}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_production_run(
    scorecard: ProductionScorecard,
    artifacts: Sequence[Path],
    *,
    tracking_uri: str,
    artifact_root: Path,
    experiment: str = DEFAULT_EXPERIMENT,
    sources: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> TrackedRun:
    """One MLflow run for a production scorecard: params (`production_params`), metrics (`overall_metrics` at
    step 0, `weekly_metrics` as steps), tags (`source=production`, window, days, undefined KPIs), and the
    `artifacts` (scorecard.json, report.html, written first). `run_name` defaults to `production <window>`.
    Raises TrackingError, with nothing left in MLflow, if MLflow fails or an artifact is missing."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    created: list[str] = []
    with all_or_nothing(client, tracking_uri, created, "the production scorecard"):
        missing = [str(p) for p in artifacts if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(", ".join(missing))
        experiment_id = experiment_id_of(client, experiment, tracking_uri=tracking_uri, artifact_root=artifact_root)
        undefined = sorted({**scorecard.undefined, **{k.name: "" for k in scorecard.overall() if k.value is None}})
        run = client.create_run(
            experiment_id,
            run_name=run_name or f"production {scorecard.window}",
            tags={
                SOURCE_TAG: PRODUCTION,
                "production.window": scorecard.window,
                "production.store": scorecard.store,
                "production.days": f"{scorecard.first_day or ''}..{scorecard.last_day or ''}",
                "undefined_kpis": json.dumps(undefined),
            },
        )
        run_id = run.info.run_id
        created.append(run_id)
        started = int(run.info.start_time)
        params = [Param(k, v) for k, v in production_params(scorecard, sources, settings).items()]
        metrics = [Metric(k, v, started, 0) for k, v in overall_metrics(scorecard).items()]
        metrics += [Metric(k, v, ts, step) for k, v, ts, step in weekly_metrics(scorecard)]
        for batch in _chunks(params, 100):
            client.log_batch(run_id, params=batch)
        for batch in _chunks(metrics, 1000):
            client.log_batch(run_id, metrics=batch)
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
    return TrackedRun(run_id=run_id, experiment_id=experiment_id, tracking_uri=tracking_uri)
