"""Choosing a bot kind: the registry's versioned names and did-you-mean, settings validation, what a configured bot
observes, KPIs undefined (never 0) without the observation they need, and eval-set checks refused when the bot
cannot be judged on them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.bots.kinds import BOT_KINDS, bot_settings, observes
from harness.cli import app
from harness.errors import InputError, UnknownName
from harness.project.config import load_config
from harness.records import Observation

runner = CliRunner()
HELPDESK = Path(__file__).parents[2] / "fixtures" / "stock_rasa" / "helpdesk"


def config_file(tmp_path: Path, bot: str, eval_sets: Path | None = None) -> Path:
    path = tmp_path / "run.yml"
    body = f"version: 1\nbot: {bot}\noutput_dir: {tmp_path / 'runs'}\n"
    if eval_sets is not None:
        body += f"eval_sets: {eval_sets}\n"
    path.write_text(body)
    return path


def test_a_bare_kind_name_means_its_latest_version_and_an_unknown_one_gets_a_suggestion() -> None:
    assert BOT_KINDS.resolve("rasa") == "rasa.v1" and BOT_KINDS.resolve("http_json.v1") == "http_json.v1"
    with pytest.raises(UnknownName, match="did you mean 'rasa'"):
        BOT_KINDS.get("rasaa")


def test_an_unknown_kind_on_the_command_line_is_exit_2_with_a_suggestion(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--bot-kind", "http-json", "--output-dir", str(tmp_path), "--no-mlflow"])
    assert result.exit_code == 2 and "did you mean 'http_json'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_misspelt_setting_is_named_with_its_location_and_a_suggestion(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, f"{{kind: rasa, url: 'http://x', projct: {HELPDESK}}}"))
    with pytest.raises(InputError) as raised:
        bot_settings(config.resolved())
    assert any("bot.projct" in p and "did you mean 'project'" in p for p in raised.value.problems)


def test_a_rasa_bot_observes_handoffs_only_with_a_handoff_mapping(tmp_path: Path) -> None:
    without = load_config(config_file(tmp_path, f"{{kind: rasa, url: 'http://x', project: {HELPDESK}}}"))
    mapped = load_config(
        config_file(tmp_path, f"{{kind: rasa, url: 'http://x', project: {HELPDESK}, handoff: {HELPDESK}/handoff.yml}}")
    )
    assert Observation.handoff not in observes(without.resolved())
    assert Observation.handoff in observes(mapped.resolved()) and Observation.ticket not in observes(mapped.resolved())


SCRIPT = """
from harness.bots.scripted import bot_turn

def script(conversation_id, text, turn):
    if "person" in text:
        return bot_turn("talk_to_human", handoff=("general", "asked"), model="toy-1")
    return bot_turn("greet" if "hi" in text else "check_balance", model="toy-1")
"""

EVALS = """
version: 1
name: toy
conversations:
  - id: toy-1
    turns:
      - {text: "hi there", intent: greet}
      - {text: "what's my balance", intent: check_balance, expect: {actions: [utter_balance]}}
    expected: {outcome: self_served}
    resolvable: true
  - id: toy-2
    turns:
      - {text: "a person please", intent: talk_to_human}
    expected: {outcome: escalated, queue: general}
    resolvable: false
"""


def test_a_scripted_bot_from_the_configuration_runs_end_to_end_and_is_stamped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_bot.py").write_text(textwrap.dedent(SCRIPT))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "toy.yml").write_text(EVALS)
    bot = (
        "{kind: scripted, script: 'toy_bot:script', "
        "vocabulary: {intents: [greet, check_balance, talk_to_human], queues: [general]}}"
    )
    result = runner.invoke(
        app, ["run", "--config", str(config_file(tmp_path, bot, tmp_path / "toy.yml")), "--no-mlflow"]
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["bot"]["kind"] == "scripted.v1" and "handoff" in meta["bot"]["observes"]
    card = json.loads((run_dir / "scorecard.json").read_text())
    kpis = card["kpis"]
    assert kpis["escalation_accuracy.v1"]["value"] == 1.0 and kpis["recognition_rate.v2"]["value"] == 1.0
    # The action check on toy-1's second turn fails (the script runs no action): resolution 0 of 2 labelled.
    assert kpis["resolution_rate.v1"]["value"] == 0.0 and card["bot_model"] == "toy-1"


def test_validate_refuses_a_check_the_bot_cannot_be_judged_on(tmp_path: Path) -> None:
    (tmp_path / "toy.yml").write_text(EVALS)
    bot = (
        "{kind: http_json, url: 'http://127.0.0.1:9/chat', request: {json: {s: '{conversation_id}', t: '{text}'}}, "
        "response: {messages: 'replies', intent: 'intent'}, "
        "vocabulary: {intents: [greet, check_balance, talk_to_human], queues: [general]}}"
    )
    config = config_file(tmp_path, bot)
    result = runner.invoke(app, ["validate", str(tmp_path / "toy.yml"), "--config", str(config)])
    assert result.exit_code == 2, result.stdout
    assert "toy-1: turns[1].expect.actions: a http_json.v1 bot does not report actions" in result.stderr


def test_a_bot_that_never_hands_off_declares_no_handoff_and_observes_handoffs(tmp_path: Path) -> None:
    (tmp_path / "never.yml").write_text("version: 1\nhandoffs: []\n")
    bot = f"{{kind: rasa, url: 'http://x', project: {HELPDESK}, handoff: {tmp_path / 'never.yml'}}}"
    assert Observation.handoff in observes(load_config(config_file(tmp_path, bot)).resolved())


def test_validate_with_a_configuration_checks_that_configurations_eval_sets(tmp_path: Path) -> None:
    (tmp_path / "toy.yml").write_text(EVALS)
    bot = (
        "{kind: scripted, script: 'toy_bot:script', "
        "vocabulary: {intents: [greet, check_balance, talk_to_human], queues: [general]}}"
    )
    config = config_file(tmp_path, bot, tmp_path / "toy.yml")
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert "2 conversations" in result.stdout and "the bot section's `vocabulary`" in result.stdout


def test_import_rasa_refuses_a_mapping_that_names_what_the_domain_lacks(tmp_path: Path) -> None:
    mapping = tmp_path / "handoff.yml"
    mapping.write_text(
        "version: 1\nhandoffs:\n  - when: {action: action_hand_off}\n    queue: {slot: handoff_to}\n"
        "queues: {billing_team: billing}\n"
    )
    result = runner.invoke(
        app,
        ["evalsets", "import-rasa", str(HELPDESK / "tests"), "--name", "h", "--mapping", str(mapping),
         "--domain", str(HELPDESK / "domain.yml"), "--out", str(tmp_path / "h.yml")],
    )  # fmt: skip
    assert result.exit_code == 2 and "did you mean 'action_handoff'" in result.stderr
    assert not (tmp_path / "h.yml").exists()
