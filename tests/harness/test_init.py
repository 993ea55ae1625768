"""`harness init` (issue 18, item 2): a bot team's folder becomes a harness project whose files load and agree.

The stock Rasa bot is tests/fixtures/stock_rasa/helpdesk without its hand-written handoff.yml: init must propose an
equivalent one from the domain, the actions' code and the stories.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.bots.handoff_mapping import load_handoff_mapping
from harness.bots.handoff_proposal import calls_pause, propose_handoff
from harness.bots.kinds import bot_settings
from harness.bots.rasa_domain import find_domain, load_domain
from harness.cli import app
from harness.gate.spec import load_spec
from harness.project.config import load_config
from harness.project.project import load_project
from harness.review.config import load_review_config

HELPDESK = Path(__file__).resolve().parents[1] / "fixtures" / "stock_rasa" / "helpdesk"
runner = CliRunner()


def helpdesk_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "helpdesk-bot"
    shutil.copytree(HELPDESK, repo, ignore=shutil.ignore_patterns("handoff.yml"))
    return repo


def test_init_in_a_rasa_repository_writes_a_project_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = helpdesk_copy(tmp_path)
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    for name in ("harness.yml", "gate.yml", "review.yml", "handoff.yml", "eval_sets/helpdesk-bot.yml"):
        assert (repo / name).is_file(), name
    assert "next:" in result.output and "harness run" in result.output and "harness gate" in result.output

    project = load_project()
    config = load_config().resolved()
    kind, settings = bot_settings(config)
    assert kind.name == "rasa.v1" and settings.url == "http://127.0.0.1:5005"
    assert Path(settings.project) == repo and Path(settings.handoff) == repo / "handoff.yml"
    assert load_spec(project.gate).baseline is None  # no baseline until the team accepts a run
    assert load_review_config().scorecard.resolution_attribute == "resolved"

    mapping = load_handoff_mapping(repo / "handoff.yml")  # as the hand-written one: action_handoff, slot handoff_to
    (entry,) = mapping.handoffs
    assert entry.when.action == "action_handoff" and entry.queue.slot == "handoff_to"
    assert {"billing_team", "tech_support", "human"} <= set(mapping.queues)

    eval_set = yaml.safe_load((repo / "eval_sets" / "helpdesk-bot.yml").read_text())
    outcomes = {c["id"]: c["expected"] for c in eval_set["conversations"]}
    assert outcomes["billing-question-handed-to-the-billing-team"] == {"outcome": "escalated", "queue": "billing_team"}
    assert runner.invoke(app, ["validate"]).exit_code == 0


def test_init_keeps_existing_files_unless_forced_and_writes_nothing_then(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    (repo / "gate.yml").write_text("# ours\n")
    result = runner.invoke(app, ["init", str(repo)])
    assert result.exit_code == 2
    assert "gate.yml: exists" in result.output and "--force" in result.output
    assert (repo / "gate.yml").read_text() == "# ours\n"
    assert not (repo / "harness.yml").exists() and not (repo / "handoff.yml").exists()

    assert runner.invoke(app, ["init", str(repo), "--force"]).exit_code == 0
    assert "version: 1" in (repo / "gate.yml").read_text()


def test_init_in_an_empty_folder_is_an_http_json_project_with_an_example_that_validates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--bot-url", "http://127.0.0.1:9000/chat"])
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "harness.yml").resolved(tmp_path)
    kind, settings = bot_settings(config)
    assert kind.name == "http_json.v1" and settings.url == "http://127.0.0.1:9000/chat"
    assert runner.invoke(app, ["--project", str(tmp_path), "validate"]).exit_code == 0


def test_init_for_a_rasa_bot_where_there_is_none_says_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--bot-kind", "rasa"])
    assert result.exit_code == 2
    assert "no Rasa bot found" in result.output and "--rasa-project" in result.output
    assert list(tmp_path.iterdir()) == []


def test_without_test_stories_the_example_eval_set_uses_a_training_example(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    result = runner.invoke(app, ["init", str(repo), "--no-import-stories"])
    assert result.exit_code == 0, result.output
    example = yaml.safe_load((repo / "eval_sets" / "example.yml").read_text())
    (turn,) = example["conversations"][0]["turns"]
    assert turn["intent"] in load_domain(find_domain(repo, None)).intents
    assert runner.invoke(app, ["--project", str(repo), "validate"]).exit_code == 0


def test_a_bot_that_never_hands_off_gets_an_empty_mapping_and_a_pausing_one_the_pause_event(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("version: '3.1'\nintents: [greet]\nactions: [action_hello]\n")
    (tmp_path / "actions.py").write_text("def run():\n    return []\n")
    domain = load_domain(tmp_path / "domain.yml")
    never = propose_handoff(domain, tmp_path)
    assert not never.found and "handoffs: []" in never.text
    (tmp_path / "never.yml").write_text(never.text)
    assert load_handoff_mapping(tmp_path / "never.yml").handoffs == []

    (tmp_path / "actions.py").write_text(
        "from rasa_sdk.events import ConversationPaused\nreturn [ConversationPaused()]\n"
    )
    pausing = propose_handoff(domain, tmp_path)
    (tmp_path / "pause.yml").write_text(pausing.text)
    (entry,) = load_handoff_mapping(tmp_path / "pause.yml").handoffs
    assert entry.when.event == "pause" and entry.queue.value == "general"


def test_a_rasa_project_option_that_finds_no_bot_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--rasa-project", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no Rasa bot found" in result.output
    assert list(tmp_path.iterdir()) == []  # before the fix: an http_json project, exit 0


@pytest.mark.parametrize("url", ["localhost:5005", "'oops", "http://x/p #c", "notaurl"])
def test_a_bot_url_that_is_not_an_http_url_is_refused(tmp_path: Path, url: str) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--bot-url", url])
    assert result.exit_code == 2 and "invalid --bot-url" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_url_is_written_as_yaml_reads_it_back(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9000/chat?a=1&b=#frag"
    assert runner.invoke(app, ["init", str(tmp_path), "--bot-url", url]).exit_code == 0
    assert yaml.safe_load((tmp_path / "harness.yml").read_text())["bot"]["url"] == url


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    (repo / "eval_sets").write_text("a file where init wants a folder\n")
    result = runner.invoke(app, ["init", str(repo)])
    assert result.exit_code == 2 and "could not write" in result.output, result.output
    assert not (repo / "harness.yml").exists() and not (repo / "handoff.yml").exists()
    assert not (repo / "gate.yml").exists()


def test_an_existing_eval_set_of_the_same_name_stops_init_before_it_writes(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    (repo / "eval_sets").mkdir()
    (repo / "eval_sets" / "helpdesk-bot.yml").write_text("# ours\n")
    result = runner.invoke(app, ["init", str(repo)])
    assert result.exit_code == 2 and "helpdesk-bot.yml: exists" in result.output
    assert not (repo / "harness.yml").exists()


def test_init_writes_into_the_folder_project_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert runner.invoke(app, ["--project", str(tmp_path / "there"), "init"]).exit_code == 0
    assert (tmp_path / "there" / "harness.yml").is_file() and not (tmp_path / "here" / "harness.yml").exists()


def test_committed_files_hold_no_path_of_this_machine(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    for name in ("harness.yml", "handoff.yml", "eval_sets/helpdesk-bot.yml"):
        assert str(tmp_path) not in (repo / name).read_text(), name


def test_a_pause_mentioned_in_a_comment_is_not_a_handoff(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("version: '3.1'\nintents: [greet]\nactions: [action_hello]\n")
    (tmp_path / "actions.py").write_text("def run():\n    # a live deployment would return ConversationPaused() here\n")
    assert not propose_handoff(load_domain(tmp_path / "domain.yml"), tmp_path).found


@pytest.mark.parametrize(
    ("source", "pauses"),
    [
        ('def run():\n    """Returns ConversationPaused() in production."""\n    return []\n', False),
        ("MESSAGE = 'we never send ConversationPaused() here'\n", False),
        ("x = ConversationPaused\n", False),  # named, not called
        ("class ConversationPaused(Event):\n    pass\ndef ConversationPaused():\n    pass\n", False),  # defined
        ("from rasa_sdk.events import ConversationPaused\nreturn [ConversationPaused ()]\n", True),
        ("def run(:\n    return [ConversationPaused()]  # a file that does not parse\n", True),
        ("def run(:\n    # ConversationPaused()\n", False),
    ],
)
def test_only_a_call_in_code_is_a_pause(source: str, pauses: bool) -> None:
    assert calls_pause(source) is pauses


def test_a_folder_name_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    odd = repo.rename(tmp_path / "my bot [x]")
    assert runner.invoke(app, ["init", str(odd)]).exit_code == 0
    result = runner.invoke(app, ["--project", str(odd), "validate"])
    assert result.exit_code == 0 and str(odd / "domain.yml") in result.output, result.output


def test_init_inside_another_project_says_which_one_commands_will_use(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    (tmp_path / "inner").mkdir()
    result = runner.invoke(app, ["init", str(tmp_path / "inner")])
    assert result.exit_code == 0 and f"inside the project at {tmp_path}" in result.output


def test_a_rasa_webhook_url_is_refused_where_the_servers_root_is_expected(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    result = runner.invoke(app, ["init", str(repo), "--bot-url", "http://127.0.0.1:5005/webhooks/rest/webhook"])
    assert result.exit_code == 2 and "root" in result.output and "--bot-url" in result.output, result.output
    assert not (repo / "harness.yml").exists()


def test_a_bot_beside_the_project_is_named_relatively(tmp_path: Path) -> None:
    repo = helpdesk_copy(tmp_path)
    (tmp_path / "harness").mkdir()
    result = runner.invoke(app, ["init", str(tmp_path / "harness"), "--rasa-project", str(repo)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "harness" / "harness.yml").read_text())["bot"]["project"] == "../helpdesk-bot"
    assert runner.invoke(app, ["--project", str(tmp_path / "harness"), "validate"]).exit_code == 0
