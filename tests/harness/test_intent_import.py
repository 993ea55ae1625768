"""`harness intents import`: CSV and Rasa NLU YAML into intents/, with every skip explained and nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from intent_project import INTENTS, project
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.project.intents import load_catalog
from harness.trainer.intent_import import Candidate, plan_import, read_csv, read_rasa_nlu

QUEUES = ["accounts", "cards", "fraud", "general"]


def plan(tmp_path: Path, rows: list[Candidate], **kwargs):  # type: ignore[no-untyped-def]
    catalog = load_catalog(project(tmp_path) / "intents")
    return plan_import(Path("x.csv"), rows, catalog, queues=QUEUES, eval_turns=kwargs.pop("eval_turns", {}), **kwargs)


def c(text: str, intent: str, queue: str | None = None, origin: str = "x.csv:2") -> Candidate:
    return Candidate(text, intent, queue, origin)


def test_csv_rows_keep_their_line_numbers_and_optional_queue() -> None:
    rows = read_csv('Text,Intent\n"hi, there",greet\nbye,goodbye\n', "x.csv")
    assert rows == [c("hi, there", "greet", None, "x.csv:2"), c("bye", "goodbye", None, "x.csv:3")]


def test_a_csv_without_the_required_columns_is_an_input_error_naming_them() -> None:
    with pytest.raises(InputError) as caught:
        read_csv("utterance,label\nhi,greet\n", "x.csv")
    assert "missing text, intent" in caught.value.problems[0]


def test_rasa_nlu_yaml_gives_block_and_list_examples_and_skips_other_entries() -> None:
    text = (
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello [there](who)\n'
        "- intent: bye\n  examples:\n  - text: see you\n- synonym: credit\n  examples: |\n    - cc\n"
    )
    read = read_rasa_nlu(text, "nlu.yml")
    rows, skipped = read.candidates, read.skipped
    assert [(r.text, r.intent) for r in rows] == [("hi", "greet"), ("hello [there](who)", "greet"), ("see you", "bye")]
    assert [s.reason for s in skipped] == ["`synonym` entries are not imported (only intents with examples)"]


def test_every_candidate_is_added_or_skipped_with_its_reason(tmp_path: Path) -> None:
    rows = [
        c("what are the fees for a transfer", "fees", origin="x.csv:2"),
        c("I LOST MY CARD!", "card_lost", origin="x.csv:3"),  # same as an existing example once normalised
        c("my card is gone", "fees", origin="x.csv:4"),  # an existing example of another intent
        c("open a savings account", "open_account", "accounts", origin="x.csv:5"),
        c("new account please", "open_account", origin="x.csv:6"),  # queue inherited from the row above
        c("mortgage rates", "mortgage", "loans", origin="x.csv:7"),
        c("  ", "fees", origin="x.csv:8"),
        c("what does it cost", "Fees", origin="x.csv:9"),
        c("card stuck in atm", "card_lost", origin="x.csv:10"),
        c("card stuck in atm", "card_missing", origin="x.csv:11"),
        c("what are the fees for a transfer?", "fees", origin="x.csv:12"),
        c("is there a fee abroad", "fees", origin="x.csv:13"),
    ]
    result = plan(tmp_path, rows, eval_turns={"is there a fee abroad": "e:e-1"})
    assert [r.origin for r in result.to_existing] == ["x.csv:2"]
    assert {k: [r.origin for r in v] for k, v in result.new_intents.items()} == {"open_account": ["x.csv:5", "x.csv:6"]}
    reasons = {s.candidate.origin: s.reason for s in result.skipped}
    assert reasons["x.csv:3"] == "already an example of card_lost"
    assert reasons["x.csv:4"].startswith("already an example of intent card_lost")
    assert reasons["x.csv:7"].startswith("unknown queue 'loans'")
    assert reasons["x.csv:8"] == "empty text"
    assert "not a valid name" in reasons["x.csv:9"]
    assert reasons["x.csv:10"] == reasons["x.csv:11"]
    assert "labelled differently within the import" in reasons["x.csv:10"]
    assert reasons["x.csv:12"] == "repeats x.csv:2"
    assert "eval sets (e:e-1)" in reasons["x.csv:13"]
    assert result.added + len(result.skipped) == len(rows)


def test_a_new_intent_without_any_queue_is_skipped_and_a_default_queue_admits_it(tmp_path: Path) -> None:
    assert "needs a queue" in plan(tmp_path, [c("opening hours", "hours")]).skipped[0].reason
    (tmp_path / "b").mkdir()
    admitted = plan(tmp_path / "b", [c("opening hours", "hours")], default_queue="general")
    assert admitted.new_queues == {"hours": "general"}


def test_import_writes_round_trip_and_the_result_validates(tmp_path: Path) -> None:
    root = project(tmp_path)
    original = "# cards and fees: keep this comment\n" + INTENTS.replace(
        "examples: [what do you charge for an overdraft, monthly account fee, fees abroad]",
        "examples:\n      - what do you charge for an overdraft\n      - monthly account fee\n      - fees abroad\n",
    )
    (root / "intents" / "cards.yml").write_text(original)
    source = tmp_path / "export.csv"
    source.write_text("text,intent,queue\nwhat are the fees for a transfer,fees,\nopening hours?,hours,general\n")
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "added 2 example(s) (1 new intent(s)), skipped 0" in result.output
    expected = original.replace(
        "      - fees abroad\n", "      - fees abroad\n      - what are the fees for a transfer\n"
    )
    assert (root / "intents" / "cards.yml").read_text() == expected
    catalog = load_catalog(root / "intents")
    assert catalog.intents["hours"].queue == "general"
    assert catalog.sources["hours"] == root / "intents" / "imported.yml"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = (root / "intents" / "cards.yml").read_text()
    source = tmp_path / "export.csv"
    source.write_text("text,intent\nwhat are the fees for a transfer,fees\n")
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root), "--dry-run"])
    assert result.exit_code == 0
    assert "would add 1 example(s)" in result.output
    assert (root / "intents" / "cards.yml").read_text() == before
    assert not (root / "intents" / "imported.yml").exists()


def test_a_result_that_would_not_validate_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.trainer.intent_import as module

    root = project(tmp_path)
    before = (root / "intents" / "cards.yml").read_text()
    catalog = load_catalog(root / "intents")
    result = plan_import(
        Path("x.csv"),
        [c("what are the fees for a transfer", "fees"), c("opening hours", "hours", "general")],
        catalog,
        queues=QUEUES,
        eval_turns={},
    )

    def broken(*_: object, **__: object) -> None:
        raise InputError("invalid intents", ["simulated"])

    monkeypatch.setattr(module, "load_catalog", broken)
    with pytest.raises(InputError):
        module.apply_plan(result, catalog, root / "intents", root / "intents" / "imported.yml", queues=QUEUES)
    assert (root / "intents" / "cards.yml").read_text() == before
    assert not (root / "intents" / "imported.yml").exists()


def test_skipped_texts_are_printed_as_written_brackets_included(tmp_path: Path) -> None:
    root = project(tmp_path)
    source = tmp_path / "export.csv"
    source.write_text("text,intent\nmy [visa](card_type) is gone,Bad Intent\n")
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root), "--dry-run"])
    assert "'my [visa](card_type) is gone'" in result.output  # not eaten as console markup


def test_a_long_import_prints_the_first_skips_and_counts_by_reason_and_writes_the_full_list(tmp_path: Path) -> None:
    root = project(tmp_path)
    source = tmp_path / "export.csv"
    rows = [f"I lost my card,card_lost\nfees abroad,fees\nwhat is row {i},Bad Intent\n" for i in range(5)]
    source.write_text("text,intent\n" + "".join(rows))
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root), "--show", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len([line for line in lines if line.startswith("skipped export.csv")]) == 3
    assert "... and 12 more skipped line(s)" in lines
    assert "skipped 15 by reason:" in lines
    assert "    10  already an example of its intent" in lines
    assert "     5  invalid intent name" in lines
    assert "full list: runs/intents/import.txt" in lines
    report = (root / "runs" / "intents" / "import.txt").read_text()
    assert report.count("\nskipped export.csv:") == 15
    assert "## skipped by reason (2)" in report
