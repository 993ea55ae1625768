"""`harness logs kpis`: a tiny production store (three conversations written with ProductionStore.append) scored
end to end, its console table, report folder and MLflow run; and the command's bad-input errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.records.production import ProductionStore, to_production_frame

runner = CliRunner()
W1, W2 = date(2026, 11, 2), date(2026, 11, 9)  # Mondays


def turn(conversation: str, index: int, start: datetime, customer: str, **values: Any) -> dict[str, Any]:
    sent = start + timedelta(minutes=index)
    return {
        "conversation_id": f"web:{conversation}",
        "turn_index": index,
        "text": f"message {index}",
        "status": "ok",
        "attempts": 1,
        "bot_messages": json.dumps(["answer"]),
        "n_bot_messages": 1,
        "intent": "check_balance",
        "confidence": 0.9,
        "fallback": False,
        "actions": json.dumps(["utter_balance"]),
        "state": "active",
        "latency_ms": 100.0,
        "source": "web",
        "customer": customer,
        "sent_at": sent,
        "conversation_start": start,
        "ended_by": "timeout",
        "awaiting_reply": False,
        **values,
    }


def tiny_store(folder: Path) -> ProductionStore:
    """c1 (week 1): two turns, handed to `billing` by `bot_handoff` at the second; c2 (week 1): one turn answered
    with a fallback while the bot waited, then the customer left; c3 (week 2): two plain turns.

    By hand: 3 conversations (2 in week 1, 1 in week 2); containment 2/3 = 66.7% (week 1: 1/2 = 50.0%, week 2:
    1/1 = 100.0%); handoff to billing 1/3 = 33.3%; coverage: 5 answered turns, 4 without fallback = 80.0%;
    abandonment 1/3 = 33.3%."""
    c1 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    c2 = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
    c3 = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
    rows = [
        turn("c1", 0, c1, "a", ended_by="handoff"),
        turn(
            "c1",
            1,
            c1,
            "a",
            ended_by="handoff",
            handoff_queue="billing",
            handoff_rule="bot_handoff",
            state="handed_off",
        ),
        turn("c2", 0, c2, "b", fallback=True, intent="nlu_fallback", awaiting_reply=True),
        turn("c3", 0, c3, "c"),
        turn("c3", 1, c3, "c"),
    ]
    store = ProductionStore(folder)
    assert store.append(to_production_frame(rows), "test") == 3
    store.write_state({"sources": {"web": {}}, "imports": []})
    return store


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["logs", "kpis", *args], catch_exceptions=False)


def no_config(tmp_path: Path) -> str:
    return str(tmp_path / "production.yml")  # missing: the defaults


def test_the_command_prints_writes_and_logs_the_production_scorecard(tmp_path: Path) -> None:
    store = tiny_store(tmp_path / "store")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "report"
    result = invoke(
        "--store", str(store.path), "--config", no_config(tmp_path), "--engine", "pandas",
        "--window", "2026-11-01..2026-11-30", "--out", str(out), "--tracking-uri", uri, "--experiment", "prod",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "66.7%" in next(line for line in lines if line.startswith("│ containment.v1"))
    assert "33.3%" in next(line for line in lines if "handoff_rate.v1 queue=billing" in line)
    assert "80.0%" in next(line for line in lines if line.startswith("│ coverage.v1"))
    assert "50.0%" in next(line for line in lines if line.startswith("│ 2026-11-02"))
    assert "100.0%" in next(line for line in lines if line.startswith("│ 2026-11-09"))
    assert any("undefined" in line and "production logs carry no labels" in line for line in lines)

    card = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert card["window"] == "2026-11-01..2026-11-30" and card["engine"] == "pandas"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "66.7%" in page and "billing" in page and "bot_handoff" in page

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("prod")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.source = 'production'")
    assert run.data.params["engine"] == "pandas" and run.data.params["sources"] == "web"
    assert run.data.params["window"] == "2026-11-01..2026-11-30"
    assert run.data.params["settings.repeat_contact_days"] == "7"
    assert run.data.metrics["containment.v1"] == pytest.approx(2 / 3)
    assert run.data.metrics["conversation_count.v1"] == 3
    weekly = sorted(client.get_metric_history(run.info.run_id, "containment.v1.week"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in weekly] == [
        ((W1 - date(1970, 1, 1)).days, 0.5),
        ((W2 - date(1970, 1, 1)).days, 1.0),
    ]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"scorecard.json", "report.html"}


def test_the_default_report_folder_is_under_the_store_and_no_mlflow_logs_nothing(tmp_path: Path) -> None:
    store = tiny_store(tmp_path / "store")
    result = invoke(
        "--store", str(store.path), "--config", no_config(tmp_path), "--window", "..2026-11-30",  # duckdb: the default
        "--no-mlflow",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (folder,) = (store.path / "reports").iterdir()
    assert folder.name.startswith("start_2026-11-30-")
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "scorecard.json"]
    assert "MLflow run" not in result.output


def test_a_missing_store_is_bad_input(tmp_path: Path) -> None:
    result = invoke("--store", str(tmp_path / "none"), "--config", no_config(tmp_path), "--no-mlflow")
    assert result.exit_code == 2
    assert "no imported conversations" in result.output and "harness logs import" in result.output


def test_an_unknown_engine_and_a_bad_window_are_bad_input(tmp_path: Path) -> None:
    store = tiny_store(tmp_path / "store")
    result = invoke("--store", str(store.path), "--config", no_config(tmp_path), "--engine", "polars", "--no-mlflow")
    assert result.exit_code == 2 and "duckdb, spark, pandas" in result.output
    result = invoke("--store", str(store.path), "--config", no_config(tmp_path), "--window", "last week")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
