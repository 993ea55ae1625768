"""`harness run` against the real reference bot: files and MLflow run; a bot dying mid-run and --resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.bots.base import BotTurn
from harness.bots.kinds import connect
from harness.bots.reference import ReferenceBot
from harness.bots.reference_bot.server import BotServer, free_port, train
from harness.cli import app
from harness.errors import BotUnreachable
from harness.pipeline import new_run, replay_all, resume_run
from harness.project.config import load_config
from harness.project.paths import ProjectPaths

pytestmark = pytest.mark.integration


def eval_subset(tmp_path: Path, keep: int) -> Path:
    """The first `keep` conversations of payments.yml and of escalation.yml."""
    import yaml

    folder = tmp_path / "evals"
    folder.mkdir()
    for name in ("payments.yml", "escalation.yml"):
        raw = yaml.safe_load((ProjectPaths().eval_sets / name).read_text())
        raw["conversations"] = raw["conversations"][:keep]
        (folder / name).write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_a_run_writes_scorecard_records_report_and_one_mlflow_run(bot: BotServer, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--bot-url",
            bot.url,
            "--token",
            bot.token,
            "--eval-sets",
            str(eval_subset(tmp_path, 6)),
            "--output-dir",
            str(tmp_path / "runs"),
            "--tracking-uri",
            uri,
            "--experiment",
            "it",
        ],
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    scorecard = json.loads((run_dir / "scorecard.json").read_text())
    assert scorecard["kpis"]["conversation_count.v1"]["value"] == 12
    for name in (
        "self_service_completion.v1",
        "recognition_rate.v2",
        "escalation_accuracy.v1",
        "resolution_rate.v1",
        "messages_per_conversation.v1",
        "availability.v2",
        "latency_p95.v1",
    ):
        kpi = scorecard["kpis"][name]
        assert kpi["n"] > 0 and kpi["definition_version"] == int(name.rsplit(".v", 1)[1])
        assert kpi["value"] is None or kpi["interval"] is not None, name
    assert scorecard["bot_model"] == bot.model.name.removesuffix(".tar.gz")
    records = pd.read_parquet(run_dir / "turns.parquet")
    assert records["conversation_id"].nunique() == 12 and set(records["status"]) <= {"ok", "not_sent"}
    assert "Failed conversations" in (run_dir / "report.html").read_text()
    assert "recognition_rate.v2" in result.stdout and str(run_dir) in result.stdout
    assert "recognition_rate.v1" not in scorecard["kpis"]  # superseded versions are not shown

    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("it").experiment_id]
    )
    assert len(runs) == 1
    logged = runs[0]
    assert logged.data.metrics["conversation_count.v1"] == 12
    assert logged.data.params["eval_set_hash"] == scorecard["eval_set_hash"]
    assert logged.data.params["bot_model"] == scorecard["bot_model"]
    assert "config.replay.concurrency" in logged.data.params and "git_sha" in logged.data.params
    artifacts = {a.path for a in mlflow.MlflowClient(tracking_uri=uri).list_artifacts(logged.info.run_id)}
    assert artifacts == {"scorecard.json", "turns.parquet", "report.html"}


class Counting(ReferenceBot):
    sent: list[str]

    async def send(self, sender: str, text: str) -> BotTurn:
        self.sent.append(sender)
        return await super().send(sender, text)


def test_a_bot_dying_mid_run_leaves_a_journal_that_resume_finishes(tmp_path: Path) -> None:
    evals = eval_subset(tmp_path, 5)
    config = load_config(
        overrides={
            "eval_sets": str(evals),
            "output_dir": str(tmp_path / "runs"),
            "replay.concurrency": 1,
            "replay.retries": 1,
        }
    ).resolved()
    model = train()
    first = BotServer(
        model=model,
        token="one",
        handoff_db=tmp_path / "h.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs1",
    )
    with first:
        plan = new_run(config.model_copy(update={"bot": config.bot.model_copy(update={"url": first.url})}))
        finished: list[str] = []

        def kill_after_three(conversation_id: str) -> None:
            finished.append(conversation_id)
            if len(finished) == 3:
                first.process("rasa").kill()

        with pytest.raises(BotUnreachable, match="cannot reach the bot"):
            replay_all(plan, connect(plan.config, "one"), kill_after_three)
    journaled = set(plan.journal.finished())
    assert journaled == set(finished) and len(journaled) >= 3

    second = BotServer(
        model=model,
        token="two",
        handoff_db=tmp_path / "h.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs2",
    )
    with second:
        resumed = resume_run(plan.run_dir, {"bot.url": second.url})
        channel = Counting(second.url, "two")
        channel.sent = []
        records = replay_all(resumed, channel, lambda _: None)
    resent = {sender.split(":")[1] for sender in channel.sent}
    assert resent.isdisjoint(journaled)
    resumed_senders = records.loc[~records["conversation_id"].isin(journaled), "sender_id"]
    assert set(resumed_senders) == set(channel.sent)
    assert records["conversation_id"].nunique() == 10


def test_resume_refuses_when_the_eval_sets_changed(tmp_path: Path) -> None:
    evals = eval_subset(tmp_path, 2)
    config = load_config(overrides={"eval_sets": str(evals), "output_dir": str(tmp_path / "runs")}).resolved()
    plan = new_run(config)
    shutil.copy(ProjectPaths().eval_sets / "cards.yml", evals)
    from harness.errors import InputError

    with pytest.raises(InputError, match="the eval sets changed since the run started"):
        resume_run(plan.run_dir)
