"""Choosing a bot kind: the registry's versioned names and did-you-mean, settings validation, what a configured bot
observes, KPIs undefined (never 0) without the observation they need, and eval-set checks refused when the bot
cannot be judged on them."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import pytest
from records_factory import worked_example
from typer.testing import CliRunner

from harness.bots.kinds import BOT_KINDS, bot_settings, observes
from harness.cli import app
from harness.errors import InputError, UnknownName
from harness.project.config import load_config
from harness.records import Observation
from harness.scoring.metrics import ScoringOptions, build_core, compute_all
from harness.scoring.scorecard import build_scorecard

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


def test_a_kpi_whose_observation_the_bot_does_not_make_is_undefined_with_a_warning_not_zero() -> None:
    seen = frozenset({"messages", "intent", "fallback"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kpis = {k.name: k for k in compute_all(build_core(worked_example(), ScoringOptions(200), seen))}
    for name in ("escalation_accuracy.v1", "containment.v1", "self_service_completion.v1", "resolution_rate.v1"):
        assert kpis[name].value is None and "does not report handoff" in (kpis[name].warning or ""), name
    assert kpis["recognition_rate.v2"].value is not None and kpis["availability.v2"].value is not None
    assert any("does not report handoff" in str(w.message) for w in caught)


def test_without_observed_handoffs_the_scorecard_has_no_outcome_matrix() -> None:
    seen = build_scorecard(build_core(worked_example(), ScoringOptions(200)), {})
    blind = build_scorecard(build_core(worked_example(), ScoringOptions(200), frozenset({"intent"})), {})
    assert not seen.outcome_matrix.empty and seen.escalation_errors
    assert blind.outcome_matrix.empty and blind.escalation_errors == {}


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
