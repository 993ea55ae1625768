"""`harness run` on bad input and faults: exit code 2, a message saying what/where/what to do, nothing in MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from harness.bots.reference_bot.server import free_port
from harness.cli import app
from harness.project.paths import ProjectPaths

runner = CliRunner()


def small_eval_set(tmp_path: Path) -> Path:
    folder = tmp_path / "evals"
    folder.mkdir()
    shutil.copy(ProjectPaths().eval_sets / "payments.yml", folder)
    return folder


def invoke(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(
        app, ["run", "--output-dir", str(tmp_path / "runs"), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", *args]
    )


def test_an_unreachable_bot_gives_exit_2_a_journal_and_nothing_in_mlflow(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/reference/webhook"
    result = invoke(
        tmp_path, "--bot-url", url, "--token", "t", "--retries", "1", "--eval-sets", str(small_eval_set(tmp_path))
    )
    assert result.exit_code == 2
    assert f"cannot reach the bot at {url}" in result.stderr
    assert "harness run --resume" in result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "run.json").exists() and not (run_dir / "scorecard.json").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_a_bad_eval_set_gives_exit_2_naming_the_file_and_creates_no_run(tmp_path: Path) -> None:
    folder = small_eval_set(tmp_path)
    path = folder / "payments.yml"
    path.write_text(path.read_text().replace("intent: transfer_status", "intent: transfer_stats", 1))
    result = invoke(tmp_path, "--token", "t", "--eval-sets", str(folder))
    assert result.exit_code == 2
    assert "unknown intent 'transfer_stats' (did you mean 'transfer_status'?)" in result.stderr
    assert str(path) in result.stderr
    assert not (tmp_path / "runs").exists()


def test_an_empty_eval_folder_gives_exit_2(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    result = invoke(tmp_path, "--token", "t", "--eval-sets", str(tmp_path / "none"))
    assert result.exit_code == 2 and "no eval sets" in result.stderr


def test_a_missing_token_is_a_configuration_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("REFERENCE_CHANNEL_TOKEN", raising=False)
    result = invoke(tmp_path, "--eval-sets", str(small_eval_set(tmp_path)))
    assert (
        result.exit_code == 2 and "no token for the bot" in result.stderr and "REFERENCE_CHANNEL_TOKEN" in result.stderr
    )


def test_an_invalid_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "eval.yml"
    config.write_text("version: 1\nbot: {url: x}\nreplay: {concurency: 3}\n")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2 and "unknown key 'concurency' (did you mean 'concurrency'?)" in result.stderr


def test_resuming_a_folder_that_is_not_a_run_is_an_error(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--token", "t", "--resume", str(tmp_path))
    assert result.exit_code == 2 and "is this a run folder?" in result.stderr


def test_resuming_a_finished_run_is_refused_and_sends_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text('{"run_id": "r1", "config": {}}')
    (run_dir / "scorecard.json").write_text("{}")
    result = invoke(tmp_path, "--token", "t", "--resume", str(run_dir))
    assert result.exit_code == 2 and "nothing to resume: the run finished" in result.stderr
    assert f"harness rescore {run_dir}" in result.stderr


def test_the_resume_hint_keeps_mlflow_off(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/reference/webhook"
    result = invoke(
        tmp_path, "--bot-url", url, "--token", "t", "--retries", "0", "--no-mlflow",
        "--eval-sets", str(small_eval_set(tmp_path)),
    )  # fmt: skip
    assert result.exit_code == 2 and "--no-mlflow" in result.stderr.split("finish with:", 1)[1]
