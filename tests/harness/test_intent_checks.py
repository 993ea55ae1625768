"""`harness intents validate`: confusable intents, thin intents and leakage into eval sets."""

from __future__ import annotations

from pathlib import Path

from intent_project import project
from typer.testing import CliRunner

from harness.cli import app
from harness.project.intents import load_catalog
from harness.trainer.intent_checks import check_intents, confusable_pairs


def test_confusable_intents_are_reported_with_their_closest_examples(tmp_path: Path) -> None:
    pairs = confusable_pairs(load_catalog(project(tmp_path) / "intents"), threshold=0.85)
    assert [(p.first, p.second) for p in pairs] == [("card_lost", "card_missing")]
    assert {pairs[0].first_example, pairs[0].second_example} == {"I lost my card", "I have lost my card"}


def test_thin_intents_are_warnings_naming_the_file(tmp_path: Path) -> None:
    report = check_intents(load_catalog(project(tmp_path) / "intents"), None, embeddings=False, min_examples=3)
    assert report.errors == []
    assert report.warnings == [f"{tmp_path}/intents/cards.yml: card_missing: only 2 examples (at least 3 recommended)"]


def test_an_example_repeating_an_eval_turn_is_an_error_with_exit_2(tmp_path: Path) -> None:
    root = project(tmp_path, eval_text="What do you charge for an overdraft?")
    result = CliRunner().invoke(
        app, ["intents", "validate", "--root", str(root), "--no-embeddings", "--min-examples", "1"]
    )
    assert result.exit_code == 2
    assert (
        f"{root}/intents/cards.yml: fees: example 'what do you charge for an overdraft' repeats eval turn e-1 turn 0"
    ) in result.stderr


def test_the_committed_intents_have_no_errors() -> None:
    result = CliRunner().invoke(app, ["intents", "validate", "--no-embeddings"])
    assert result.exit_code == 0, result.stderr
    assert "intents/ is valid: 26 intents" in result.stdout


def test_a_long_report_prints_the_first_problems_and_counts_and_writes_the_full_list(tmp_path: Path) -> None:
    root = project(tmp_path)
    target = tmp_path / "checks.txt"
    result = CliRunner().invoke(
        app,
        ["intents", "validate", "--root", str(root), "--no-embeddings", "--show", "1", "--report", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("warning: ") == 1
    assert "... and 2 more warning line(s)" in result.stdout
    assert "     3  warning(s): thin intent" in result.stdout
    assert "full list: checks.txt" in result.stdout  # relative to the root, as other paths
    written = target.read_text()
    assert "## warnings (3)" in written and written.count("only ") == 3
