"""The release gate end to end on the real bot, with the committed specification and baseline: the unchanged
bot passes and says what each check can see; a degraded variant (the fraud escalation rule removed from its
policy) fails for the expected reasons."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from harness.bots.kinds import connect
from harness.bots.reference_bot.server import BotServer, free_port, train
from harness.cli import app
from harness.pipeline import new_run, replay_all, write_outputs
from harness.project.config import load_config
from harness.project.paths import ProjectPaths
from harness.records.run_folder import RunFolder
from harness.scoring.scored_run import ScoredRun

pytestmark = pytest.mark.integration


def full_eval(server: BotServer, output: Path) -> Path:
    """Replay every committed eval set through `server`; the finished run folder (no MLflow)."""
    config = load_config(overrides={"output_dir": str(output), "replay.concurrency": 4}).resolved()
    plan = new_run(config.model_copy(update={"bot": config.bot.model_copy(update={"url": server.url})}))
    records = replay_all(plan, connect(plan.config, server.token), lambda _: None)
    write_outputs(RunFolder(plan.run_dir), ScoredRun.score(records, plan.meta, plan.config))
    return plan.run_dir


def gate(run_dir: Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["gate", str(run_dir)])


def test_the_unchanged_bot_passes_the_committed_gate(bot: BotServer, tmp_path: Path) -> None:
    result = gate(full_eval(bot, tmp_path / "runs"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "release gate PASSED" in result.stdout
    seen = [line for line in result.stdout.splitlines() if line.startswith("can see ")]
    assert any("self_service_completion.v1: catches a drop of" in line for line in seen), result.stdout
    assert any("must-pass 'fraud reaches the fraud queue' (no_regression)" in line for line in seen)


def test_a_bot_without_its_fraud_rule_fails_the_gate_with_the_expected_reasons(tmp_path: Path) -> None:
    policy = yaml.safe_load((ProjectPaths().bot / "escalation.yml").read_text())
    policy["rules"] = [r for r in policy["rules"] if r["name"] != "fraud_immediate"]
    degraded_policy = tmp_path / "no-fraud-rule.yml"
    degraded_policy.write_text(yaml.safe_dump(policy))
    server = BotServer(
        model=train(),
        token="degraded",
        handoff_db=tmp_path / "h.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs",
        escalation_policy=degraded_policy,
    )
    with server:
        run_dir = full_eval(server, tmp_path / "runs")
    result = gate(run_dir)
    assert result.exit_code == 1, result.stdout + result.stderr
    # The fraud rule runs in no_regression mode: every new miss is listed as a warning, and the rule blocks because
    # new misses significantly outnumber fixes.
    new_failures = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("warn") and "fails 'fraud reaches the fraud queue'" in line
    ]
    # Every fraud conversation the accepted bot escalated now stays with the bot.
    assert len(new_failures) >= 5
    assert all("expected escalated:fraud, got" in line and "got escalated:fraud" not in line for line in new_failures)
    assert any(
        line.startswith("FAIL") and "'fraud reaches the fraud queue' regressed" in line
        for line in result.stdout.splitlines()
    )
    cases = ET.parse(run_dir / "gate.xml").getroot()
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed and all(name.startswith("must-pass: fraud reaches the fraud queue") for name in failed)
    assert (run_dir / "gate.md").read_text().startswith("## Release gate FAILED")
