"""Which project a command acts on (issue 18, item 1): the folder the user works in, never the installed package's.

Before the fix every path came from harness/project/paths.py's own location, so the harness of one checkout (or an
editable install of it) always read and wrote that checkout's eval_sets/, experiments/ and runs/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.project.config import load_config
from harness.project.paths import PROJECT_ENV, PROJECT_FILE, choose_project, find_project_root, project_root
from harness.project.project import load_project

REPO = Path(__file__).resolve().parents[2]
HELPDESK = REPO / "tests" / "fixtures" / "stock_rasa" / "helpdesk"
runner = CliRunner()


@pytest.fixture
def bot_repo(tmp_path: Path) -> Path:
    """A bot team's repository: a stock Rasa bot, made a harness project by `harness init`."""
    repo = tmp_path / "their-bot"
    shutil.copytree(HELPDESK, repo, ignore=shutil.ignore_patterns("handoff.yml"))
    result = runner.invoke(app, ["init", str(repo)])
    assert result.exit_code == 0, result.output
    return repo


def test_the_project_is_the_nearest_folder_up_holding_harness_yml(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("version: 1\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == tmp_path.resolve()


def test_without_a_project_the_error_says_to_run_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.project.paths

    monkeypatch.chdir(tmp_path)
    # The walk up is the first test's; here no folder up to / holds harness.yml, whatever the machine's /tmp holds.
    monkeypatch.setattr(harness.project.paths, "find_project_root", lambda start: None)
    with pytest.raises(InputError, match="no harness project here") as caught:
        project_root()
    assert "harness init" in str(caught.value) and "--project" in str(caught.value)


def test_a_named_project_wins_over_the_current_folder_and_must_hold_harness_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / PROJECT_FILE).write_text("version: 1\n")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "p"))
    assert project_root() == (tmp_path / "p").resolve()
    choose_project(tmp_path)  # --project beats the environment variable, and is checked
    with pytest.raises(InputError, match="is not a harness project"):
        project_root()


def test_a_command_run_in_another_repository_acts_on_that_repository(
    bot_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bot_repo / "tests")  # anywhere inside it
    config = load_config().resolved()
    assert config.eval_sets == bot_repo / "eval_sets"  # before the fix: this checkout's eval_sets/
    assert config.output_dir == bot_repo / "runs"
    assert config.tracking.uri == f"sqlite:///{bot_repo / 'mlflow.db'}"
    assert load_project().gate == bot_repo / "gate.yml"

    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert str(bot_repo / "domain.yml") in result.output  # checked against their bot, not the reference bot


def test_project_option_names_the_project_from_anywhere(bot_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["--project", str(bot_repo), "validate"])
    assert result.exit_code == 0, result.output
    assert str(bot_repo / "handoff.yml") in result.output


def test_reference_bot_commands_elsewhere_say_what_they_need(bot_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bot_repo)
    for command in (["intents", "validate"], ["intents", "build"], ["bot", "train"], ["retrain"], ["mine"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "reference bot's own folders" in result.output and "intents/" in result.output, result.output
    assert not (bot_repo / "intents").exists() and not (bot_repo / "bot").exists()  # nothing created


def test_this_repository_is_a_project_whose_files_are_in_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "harness")
    project = load_project()
    assert project.root == REPO
    assert project.run == REPO / "experiments" / "eval.yml"
    assert project.gate == REPO / "experiments" / "gate.yml"
    assert project.review == REPO / "experiments" / "review.yml"


def test_serving_the_reference_bot_elsewhere_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / PROJECT_FILE).write_text(
        "version: 1\nbot: {kind: reference, url: 'http://127.0.0.1:5005/webhooks/reference/webhook'}\n"
        "eval_sets: eval_sets\n"
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--serve-bot", "--no-mlflow"])
    assert result.exit_code == 2
    assert "`--serve-bot` works on the reference bot's own folders" in result.output, result.output
    assert not (tmp_path / "bot").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nrun: eval.yml\nbot: {kind: rasa}\n", "keep one"),
        ("version: 1\ngaet: gate.yml\n", "did you mean 'gate'"),
        ("version: 1\nrun: missing.yml\n", "run: missing.yml: no such file"),
        ("- a list\n", "got a list"),
    ],
)
def test_a_project_file_that_cannot_be_right_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "eval.yml").write_text("version: 1\nbot: {url: 'http://127.0.0.1:1'}\n")
    (tmp_path / PROJECT_FILE).write_text(text)
    with pytest.raises(InputError) as caught:
        load_project(tmp_path)
    assert expected in str(caught.value) and str(tmp_path / PROJECT_FILE) in str(caught.value)


def test_a_named_gate_file_that_is_missing_names_harness_yml(bot_repo: Path) -> None:
    text = (bot_repo / PROJECT_FILE).read_text().replace("gate: gate.yml", "gate: nogate.yml")
    (bot_repo / PROJECT_FILE).write_text(text)
    result = runner.invoke(app, ["--project", str(bot_repo), "gate"])
    assert result.exit_code == 2 and "gate: nogate.yml: no such file" in result.output, result.output


def test_an_mlflow_baseline_defaults_to_the_projects_tracking() -> None:
    from harness.gate.baseline import mlflow_source
    from harness.gate.spec import MlflowBaseline
    from harness.project.config import TrackingConfig

    source = mlflow_source(MlflowBaseline(), TrackingConfig(uri="sqlite:////x/mlflow.db", experiment="their-bot"))
    assert (source.tracking_uri, source.registered_model, source.experiment, source.alias) == (
        "sqlite:////x/mlflow.db",
        "their-bot",
        "their-bot",
        "champion",
    )


def test_probing_a_project_without_a_probe_configuration_says_how_to_write_one(bot_repo: Path) -> None:
    for command in (["probe"], ["uptime"]):
        result = runner.invoke(app, ["--project", str(bot_repo), *command])
        assert result.exit_code == 2 and "no probe configuration" in result.output, (command, result.output)
        assert "System uptime" in result.output
