"""`uptime.v1` logged to MLflow (harness.sinks.uptime_tracking) on a SQLite MLflow store in a temporary folder: a
run of its own tagged source=probes, beside an eval run's MLflow run (found by its harness.run_id tag), an undefined
value, and `harness uptime --mlflow`. The reports are hand-made; the figures expected are read off them here."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pytest
from probe_stub import TARGET, store_url, write_config
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.records.probe_log import ProbeLog, ProbeResult
from harness.scoring.uptime import Incident, UptimeReport
from harness.sinks.uptime_tracking import log_uptime

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
EVAL_RUN = "20260601-110000-abc123"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module (creating one takes seconds); each test uses its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def report(*, value: float | None = 0.8) -> UptimeReport:
    """A 10-minute window: up 480 s, down 120 s in one incident, bounds (0.7, 0.9); or, with value None, a window
    nothing stood in (600 s unknown, no bounds, no incident)."""
    if value is None:
        return UptimeReport(T0, T0 + timedelta(minutes=10), None, 0.0, 0.0, 600.0, None, 0, (), ())
    incident = Incident(
        start=T0 + timedelta(minutes=3),
        end=T0 + timedelta(minutes=5),
        duration_s=120.0,
        probe="balance",
        check="status",
        detail="turn 0: timeout",
        started_before_window=False,
        end_reason="recovered",
    )
    return UptimeReport(
        T0, T0 + timedelta(minutes=10), value, 480.0, 120.0, 0.0, (0.7, 0.9), 10, ("balance",), (incident,)
    )


EXPECTED = {
    "uptime.v1": 0.8,
    "uptime.v1.ci_low": 0.7,
    "uptime.v1.ci_high": 0.9,
    "uptime.v1.up_s": 480.0,
    "uptime.v1.down_s": 120.0,
    "uptime.v1.unknown_s": 0.0,
    "uptime.v1.incidents": 1.0,
}


def log(tracking_uri: str, experiment: str, tmp_path: Path, **kwargs: Any) -> Any:
    return log_uptime(
        kwargs.pop("uptime", report()),
        target=TARGET,
        store="sqlite:///probes.sqlite3",
        tracking_uri=tracking_uri,
        experiment=experiment,
        artifact_root=tmp_path / "artifacts",
        **kwargs,
    )


def runs_of(client: Any, experiment: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else list(client.search_runs([found.experiment_id]))


def eval_run(client: Any, experiment: str, harness_run_id: str = EVAL_RUN) -> str:
    """An MLflow run as `harness run` logs one: tagged harness.run_id, with a KPI already."""
    experiment_id = client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=harness_run_id, tags={"harness.run_id": harness_run_id})
    client.log_metric(run.info.run_id, "containment.v1", 0.5)
    client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def test_a_run_of_its_own_tagged_source_probes(tracking_uri: str, tmp_path: Path) -> None:
    tracked = log(tracking_uri, "own", tmp_path)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    (run,) = runs_of(client, "own")
    assert run.info.run_id == tracked.run_id and run.info.status == "FINISHED"
    assert run.data.tags["source"] == "probes" and run.info.run_name == f"uptime {TARGET}"
    assert run.data.metrics == pytest.approx(EXPECTED)
    assert run.data.params == {
        "uptime.target": TARGET,
        "uptime.window_start": "2026-06-01T12:00:00+00:00",
        "uptime.window_end": "2026-06-01T12:10:00+00:00",
        "uptime.store": "sqlite:///probes.sqlite3",
        "uptime.method": "probe spacing bounds",
    }


def test_an_undefined_uptime_omits_the_value_and_its_bounds(tracking_uri: str, tmp_path: Path) -> None:
    log(tracking_uri, "undefined", tmp_path, uptime=report(value=None))
    (run,) = runs_of(mlflow.MlflowClient(tracking_uri=tracking_uri), "undefined")
    assert run.data.metrics == {
        "uptime.v1.up_s": 0.0,
        "uptime.v1.down_s": 0.0,
        "uptime.v1.unknown_s": 600.0,
        "uptime.v1.incidents": 0.0,
    }


def test_beside_logs_into_the_eval_runs_mlflow_run(tracking_uri: str, tmp_path: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    run_id = eval_run(client, "beside")
    experiment_id = client.get_run(run_id).info.experiment_id
    eval_run_other = client.create_run(experiment_id, tags={"harness.run_id": "20260601-100000-def456"})
    tracked = log(tracking_uri, "beside", tmp_path, beside=EVAL_RUN)
    assert tracked.run_id == run_id
    runs = runs_of(client, "beside")
    assert len(runs) == 2, "no new run"
    run = client.get_run(run_id)
    assert run.data.metrics == pytest.approx({"containment.v1": 0.5, **EXPECTED})
    assert run.data.params["uptime.target"] == TARGET and "source" not in run.data.tags
    assert client.get_run(eval_run_other.info.run_id).data.metrics == {}
    # The uptime's metrics are stamped at the window's end.
    (point,) = client.get_metric_history(run_id, "uptime.v1")
    assert point.timestamp == int((T0 + timedelta(minutes=10)).timestamp() * 1000)

    # The same window again is harmless; another window would clash with the params already there.
    log(tracking_uri, "beside", tmp_path, beside=EVAL_RUN)
    later = UptimeReport(
        T0 + timedelta(hours=1), T0 + timedelta(hours=2), 1.0, 3600.0, 0.0, 0.0, (1.0, 1.0), 60, (), ()
    )
    with pytest.raises(InputError, match="already holds another uptime") as clash:
        log(tracking_uri, "beside", tmp_path, beside=EVAL_RUN, uptime=later)
    assert "uptime.window_start" in str(clash.value) and "leave out --beside" in str(clash.value)


def test_beside_a_run_mlflow_does_not_hold_names_the_command_that_logs_it(tracking_uri: str, tmp_path: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    eval_run(client, "missing", harness_run_id="20260601-090000-aaaaaa")
    with pytest.raises(InputError, match="no MLflow run to log the uptime beside") as missing:
        log(tracking_uri, "missing", tmp_path, beside=EVAL_RUN)
    message = str(missing.value)
    assert EVAL_RUN in message and "`harness run`" in message and "'missing'" in message
    with pytest.raises(InputError, match="no MLflow run"):
        log(tracking_uri, "no-such-experiment", tmp_path, beside=EVAL_RUN)
    assert client.get_experiment_by_name("no-such-experiment") is None, "nothing created"


# --- harness uptime --mlflow ---------------------------------------------------------------------------------------


def probe_log(scratch: Path, tracking_uri: str, experiment: str) -> Path:
    """Probe `balance` at minutes 0..9 (standing at most 3 min), failing at 3 and 4: over [0, 10) up 8 min, down
    [3, 5), one incident; bounds: down [2, 5) at worst (70%), [3, 4) at best (90%). As EXPECTED."""
    config = write_config(scratch, "http://127.0.0.1:9/chat", tracking={"uri": tracking_uri, "experiment": experiment})
    with ProbeLog(store_url(scratch)) as log:
        for m in range(10):
            started, ok = T0 + timedelta(minutes=m), m not in (3, 4)
            log.append(
                ProbeResult(
                    target=TARGET,
                    probe="balance",
                    started_at=started,
                    finished_at=started + timedelta(seconds=1),
                    ok=ok,
                    attempts=1,
                    latency_ms=100.0,
                    holds_until=started + timedelta(minutes=3),
                    failed_check=None if ok else "status",
                    detail=None if ok else "turn 0: timeout",
                )
            )
    return config


WINDOW = "2026-06-01T12:00/2026-06-01T12:10"


def test_harness_uptime_mlflow_logs_a_run_of_its_own(tracking_uri: str, tmp_path: Path) -> None:
    config = probe_log(tmp_path, tracking_uri, "cli-own")
    artifacts = REPO / "experiments" / "mlartifacts"
    before = sorted(os.listdir(artifacts)) if artifacts.exists() else None
    shown = CliRunner().invoke(app, ["uptime", "--config", str(config), "--window", WINDOW, "--mlflow"])
    assert shown.exit_code == 0, shown.output
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    (run,) = runs_of(client, "cli-own")
    assert f"MLflow run {run.info.run_id} (as a run of its own)" in shown.output
    assert run.data.tags["source"] == "probes"
    assert run.data.metrics == pytest.approx(EXPECTED)
    assert run.data.params["uptime.store"] == store_url(tmp_path)
    assert (sorted(os.listdir(artifacts)) if artifacts.exists() else None) == before, "no file in the repository"


def test_harness_uptime_mlflow_beside_an_eval_run(tracking_uri: str, tmp_path: Path) -> None:
    config = probe_log(tmp_path, tracking_uri, "cli-beside")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    run_id = eval_run(client, "cli-beside")
    args = ["uptime", "--config", str(config), "--window", WINDOW, "--mlflow"]
    shown = CliRunner().invoke(app, [*args, "--beside", EVAL_RUN])
    assert shown.exit_code == 0, shown.output
    assert f"MLflow run {run_id} (beside eval run {EVAL_RUN})" in shown.output
    assert client.get_run(run_id).data.metrics == pytest.approx({"containment.v1": 0.5, **EXPECTED})
    assert len(runs_of(client, "cli-beside")) == 1

    missing = CliRunner().invoke(app, [*args, "--beside", "20991231-000000-ffffff"])
    assert missing.exit_code == 2
    assert "no MLflow run to log the uptime beside" in missing.stderr and "`harness run`" in missing.stderr
