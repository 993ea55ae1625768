"""The production scorecard's sinks: console tables, scorecard.json + report.html, and the MLflow run, on a
hand-made scorecard whose printed values are worked out by hand below."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import mlflow
import pytest
from rich.console import Console

from harness.errors import TrackingError
from harness.scoring.production.scorecard import ProductionKpi, ProductionScorecard
from harness.sinks.production_report import (
    ReportContext,
    print_production_scorecard,
    render_production,
    write_production_outputs,
)
from harness.sinks.production_tracking import log_production_run, metric_key

W1, W2 = date(2026, 11, 2), date(2026, 11, 9)  # two Mondays
REASON = "production logs carry no labels: review a sample (harness review load --production) for the reviewed KPIs"


def kpi(name, value, n, low=None, high=None, method=None, *, period="all", start=None, breakdown=None, why=None):  # type: ignore[no-untyped-def]
    return ProductionKpi(name, breakdown, period, start, value, n, low, high, method, why)


def scorecard() -> ProductionScorecard:
    kpis = (
        kpi("conversation_count.v1", 40.0, 40),
        kpi("containment.v1", 0.75, 40, 0.6, 0.86, "wilson"),
        kpi("handoff_rate.v1", 0.25, 40, 0.14, 0.4, "wilson"),
        kpi("handoff_rate.v1", 0.15, 40, 0.07, 0.29, "wilson", breakdown="queue=billing"),
        kpi("handoff_rate.v1", 0.1, 40, 0.04, 0.23, "wilson", breakdown="rule=bot_handoff"),
        kpi("coverage.v1", 0.9, 120, 0.84, 0.94, "wilson (design effect)"),
        kpi("messages_per_conversation.v1", 3.5, 40, 3.1, 3.9, "t (clustered)"),
        kpi("server_latency_p95.v1", 830.0, 120, 700.0, 990.0, "poisson bootstrap"),
        kpi("repeat_contact.v1", None, 0, why="no customer key (customer: none)"),
        kpi("conversation_count.v1", 22.0, 22, period="week", start=W1),
        kpi("conversation_count.v1", 18.0, 18, period="week", start=W2),
        kpi("containment.v1", 0.8, 22, 0.58, 0.92, "wilson", period="week", start=W1),
        kpi("containment.v1", 0.7, 18, 0.47, 0.86, "wilson", period="week", start=W2),
        kpi("handoff_rate.v1", 0.125, 22, 0.05, 0.3, "wilson", period="week", start=W1, breakdown="queue=billing"),
        kpi("containment.v1", 0.5, 2, 0.09, 0.91, "wilson", period="day", start=date(2026, 11, 3)),
        kpi("containment.v1", 1.0, 3, 0.44, 1.0, "wilson", period="day", start=date(2026, 11, 4)),
    )
    return ProductionScorecard(
        store="/data/production",
        window="2026-11-02..2026-11-15",
        engine="duckdb",
        first_day=date(2026, 11, 2),
        last_day=date(2026, 11, 14),
        kpis=kpis,
        undefined={"recognition_rate.v2": REASON, "resolution_rate.v1": REASON},
    )


def console_text(card: ProductionScorecard) -> str:
    console = Console(record=True, width=250)
    print_production_scorecard(card, console)
    return console.export_text()


def test_the_console_shows_the_window_overall_the_weekly_trend_and_the_undefined_kpis() -> None:
    text = console_text(scorecard())
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("│ containment.v1"))
    # 0.75 with [0.6, 0.86] in the replay report's format; n 40; method.
    for cell in ("75.0%", "[60.0%, 86.0%]", "40", "wilson"):
        assert cell in row
    assert "3.50" in text and "[3.10, 3.90]" in text  # messages: two decimals
    assert "830 ms" in text and "[700, 990]" in text
    assert "handoff_rate.v1 queue=billing" in text and "15.0%" in text
    weekly = next(line for line in lines if "2026-11-09" in line)
    assert "70.0%" in weekly and "18" in weekly
    assert "80.0%" in next(line for line in lines if "2026-11-02" in line and "22" in line)
    undefined = next(line for line in lines if "recognition_rate.v2" in line)
    # one row per reason: the labelled KPIs share theirs
    assert "resolution_rate.v1" in undefined and "production logs carry no labels" in undefined
    assert "undefined" in undefined
    assert any("repeat_contact.v1" in line and "no customer key (customer: none)" in line for line in lines)
    assert "coverage.v1" not in next(line for line in lines if line.startswith("┃ week"))  # no weekly values


def test_the_report_and_scorecard_json_hold_the_values(tmp_path: Path) -> None:
    card = scorecard()
    context = ReportContext(sources=("webchat",), settings={"repeat_contact": "7 days"})
    paths = write_production_outputs(card, tmp_path / "out", context)
    assert [p.name for p in paths] == ["scorecard.json", "report.html"]
    assert ProductionScorecard.from_json(json.loads(paths[0].read_text(encoding="utf-8"))) == card
    page = paths[1].read_text(encoding="utf-8")
    for text in ("75.0%", "[60.0%, 86.0%]", "90.0%", "[84.0%, 94.0%]", "wilson (design effect)", "830 ms"):
        assert text in page
    # weekly and daily trend with intervals
    assert "2026-11-09" in page and "[47.0%, 86.0%]" in page
    assert "2026-11-04" in page and "[44.0%, 100.0%]" in page
    # handoff per queue and per rule, with the weekly value of the queue
    assert "billing" in page and "bot_handoff" in page and "12.5%" in page
    # the undefined KPIs and why
    assert "recognition_rate.v2" in page and html_escaped(REASON) in page
    assert "no customer key (customer: none)" in page
    # definitions with versions, the window, the store, the sources
    assert "<td>coverage</td><td>v1</td><td>higher is better</td>" in page
    assert "not recognition: no label says the answer was right" in page  # the registered definition
    assert "2026-11-02..2026-11-15" in page and "/data/production" in page and "webchat" in page
    assert "<img" in page  # the trend plots


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_a_scorecard_without_conversations_still_renders() -> None:
    empty = ProductionScorecard("/s", "..", "pandas", None, None, (), {"recognition_rate.v2": REASON})
    page = render_production(empty)
    assert "no conversations in the window" in page and "recognition_rate.v2" in page
    assert "recognition_rate.v2" in console_text(empty)
    assert "window all stored days" in console_text(empty)


def test_metric_names_avoid_characters_mlflow_refuses() -> None:
    odd = kpi("handoff_rate.v1", 0.1, 10, breakdown="queue=billing/eu=x")
    assert metric_key(odd) == "handoff_rate.v1.queue.billing_eu_x"


def test_the_mlflow_run_holds_params_metrics_weekly_steps_tags_and_artifacts(tmp_path: Path) -> None:
    card = scorecard()
    files = write_production_outputs(card, tmp_path / "out")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracked = log_production_run(
        card,
        files,
        tracking_uri=uri,
        artifact_root=tmp_path / "artifacts",
        experiment="prod",
        sources=("webchat", "reference"),
        settings={"customer": "sender"},
    )
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(tracked.run_id)
    assert run.data.tags["source"] == "production"
    assert json.loads(run.data.tags["undefined_kpis"]) == [
        "recognition_rate.v2",
        "repeat_contact.v1",
        "resolution_rate.v1",
    ]
    params = run.data.params
    assert params["window"] == "2026-11-02..2026-11-15" and params["store"] == "/data/production"
    assert params["engine"] == "duckdb" and params["sources"] == "webchat,reference"
    assert params["kpi.coverage"] == "v1" and params["settings.customer"] == "sender"
    metrics = run.data.metrics
    assert metrics["containment.v1"] == 0.75 and metrics["containment.v1.n"] == 40
    assert metrics["containment.v1.ci_low"] == 0.6 and metrics["containment.v1.ci_high"] == 0.86
    assert metrics["handoff_rate.v1.queue.billing"] == 0.15
    assert "repeat_contact.v1" not in metrics and metrics["repeat_contact.v1.n"] == 0
    history = sorted(client.get_metric_history(tracked.run_id, "containment.v1.week"), key=lambda m: m.step)
    assert [m.value for m in history] == [0.8, 0.7]
    # step: days since 1970-01-01 to the Monday; timestamp: the Monday 00:00 UTC in ms
    assert [m.step for m in history] == [(W1 - date(1970, 1, 1)).days, (W1 - date(1970, 1, 1)).days + 7]
    assert history[0].timestamp == (W1 - date(1970, 1, 1)).days * 86_400_000
    lows = client.get_metric_history(tracked.run_id, "containment.v1.week.ci_low")
    assert sorted(m.value for m in lows) == [0.47, 0.58]
    assert [m.value for m in client.get_metric_history(tracked.run_id, "handoff_rate.v1.queue.billing.week")] == [0.125]
    assert sorted(a.path for a in client.list_artifacts(tracked.run_id)) == ["report.html", "scorecard.json"]
    assert run.info.status == "FINISHED"


def test_a_failed_logging_leaves_no_run(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    card = scorecard()
    files = write_production_outputs(card, tmp_path / "out")
    with pytest.raises(TrackingError, match="nothing was left in MLflow"):
        log_production_run(
            card, [*files, tmp_path / "gone.html"], tracking_uri=uri, artifact_root=tmp_path / "a", experiment="p"
        )
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name("p")
    assert found is None or not client.search_runs([found.experiment_id])


def test_a_failure_after_the_run_exists_deletes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    card = scorecard()
    files = write_production_outputs(card, tmp_path / "out")

    def broken(self, run_id, local_path, artifact_path=None):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", broken)
    with pytest.raises(TrackingError, match="disk full"):
        log_production_run(card, files, tracking_uri=uri, artifact_root=tmp_path / "a", experiment="p")
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name("p")
    assert found is not None and not client.search_runs([found.experiment_id])
