"""`harness logs kpis`: the production scorecard of a window (console, scorecard.json + report.html, an MLflow run
tagged `source=production`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.common import out, project, reports_errors
from harness.cli.logs import logs_app
from harness.errors import InputError


@logs_app.command("kpis")
@reports_errors
def kpis_command(
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Days by conversation start (UTC): YYYY-MM-DD..YYYY-MM-DD (either side may be empty), YYYY-MM-DD "
            "or 7d (the last 7 days). Default: everything stored.",
        ),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (default), spark (local or cluster) or pandas.")] = (
        "duckdb"
    ),
    store_dir: Annotated[
        Path | None, typer.Option("--store", help="The production store (default: `store` in the config).")
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Production configuration (default: harness.yml `production`).")
    ] = None,
    mlflow_log: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log the scorecard to MLflow.")] = True,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where scorecard.json and report.html go (default: <store>/reports/<window>-<time>)."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: the run config's, SQLite in experiments/).")
    ] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment for production runs.")] = "production",
) -> Any:
    """Score the label-free production KPIs of a window: print the scorecard (window overall, per week, the labelled
    KPIs left undefined and why), write scorecard.json and report.html, and log one MLflow run tagged
    source=production (never compared with replay runs)."""
    from harness.project.production_config import load_production_config
    from harness.records.production import ProductionStore, parse_window
    from harness.scoring.production.score import ENGINES
    from harness.sinks.production_report import ReportContext, print_production_scorecard, write_production_outputs

    if engine not in ENGINES:
        raise InputError("unknown engine", [f"--engine {engine}: choose one of {', '.join(ENGINES)}"])
    settings = load_production_config(config_file or project().production, root=project().root)
    store = ProductionStore((store_dir or settings.store).resolve())
    if not store.turns_dir.is_dir():
        raise InputError(
            "no production store",
            [f"{store.path}: no imported conversations; import some with `harness logs import`, or give --store"],
        )
    asked = parse_window(window)
    scorecard = _score(store, asked, settings, engine)
    print_production_scorecard(scorecard, out)

    now = datetime.now(UTC)
    sources = sorted(store.state().get("sources", {}))
    context = ReportContext(sources=sources, settings=settings_text(settings), generated_at=now)
    folder = out_dir or store.path / "reports" / f"{folder_name(asked)}-{now:%Y%m%dT%H%M%SZ}"
    files = write_production_outputs(scorecard, folder.resolve(), context)
    out.print(f"report folder: {str(folder)}")
    for path in files:
        out.print(f"  {path.name}: {str(path)}")
    if mlflow_log:
        from harness.project.config import load_config
        from harness.sinks.production_tracking import log_production_run
        from harness.sinks.tracking import artifact_root

        uri = load_config(overrides={"tracking.uri": tracking_uri}).resolved().tracking.uri
        tracked = log_production_run(
            scorecard,
            files,
            tracking_uri=uri,
            artifact_root=artifact_root(uri, project().root),
            experiment=experiment,
            sources=sources,
            settings=context.settings,
        )
        out.print(
            f"MLflow run {tracked.run_id} in experiment '{experiment}' (tag source=production); "
            f"view with: {tracked.ui_hint()}"
        )
    return scorecard


def folder_name(window: Any) -> str:
    """A window as a folder name: `2026-11-01_2026-11-30`, `start_2026-11-30`, `start_end` (never `..`)."""
    return f"{window.first or 'start'}_{window.last or 'end'}"


def settings_text(settings: Any) -> dict[str, str]:
    """The production settings that shape the KPI values, as text for the report and the MLflow params."""
    return {
        "inactivity_timeout_minutes": f"{settings.inactivity_timeout.total_seconds() / 60:g}",
        "repeat_contact_days": f"{settings.repeat_contact.total_seconds() / 86400:g}",
        "customer": settings.customer,
    }


def _score(store: Any, window: Any, settings: Any, engine: str) -> Any:
    from harness.scoring.production.definitions import ProductionKpiOptions
    from harness.scoring.production.score import score_production

    options = ProductionKpiOptions(
        repeat_contact=settings.repeat_contact, customers_identified=settings.customer == "sender"
    )
    return score_production(store, window, options, engine)
