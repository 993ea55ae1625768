"""The trainer's data path keeps the customer's words: YAML never turns an example into a boolean, number or date;
a composed and a decomposed copy of a sentence are the same sentence; what an import leaves out is said."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest
import yaml
from intent_project import project
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.project.intents import load_catalog
from harness.trainer.intent_import import Candidate, apply_plan, plan_import, read_rasa_nlu, round_trip_yaml

QUEUES = ["accounts", "cards", "fraud", "general"]
COMPOSED = "is the café near the station open"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def intents_file(examples: str) -> str:
    return (
        "version: 1\nintents:\n  - name: deny\n    description: No.\n    queue: general\n    kind: form_input\n"
        f"    examples:\n{examples}"
    )


# ------------------------------------------------------------------------------------ (a) YAML scalars stay text


def test_unquoted_yaml_words_in_intents_are_refused_with_line_intent_and_the_quoted_form(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        intents_file('      - "nope"\n      - no\n      - 42\n      - 2024-01-01\n      - off\n      - null\n')
    )
    with pytest.raises(InputError) as caught:
        load_catalog(tmp_path)
    problems = caught.value.problems
    assert f"{tmp_path}/a.yml:9: deny.examples[1]: example `no` is read by YAML as the boolean False" in problems[0]
    assert problems[0].endswith('quote it: - "no"')
    assert "a.yml:10: deny.examples[2]: example `42` is read by YAML as the number 42" in problems[1]
    assert "a.yml:11: deny.examples[3]: example `2024-01-01` is read by YAML as a date" in problems[2]
    assert "a.yml:12: deny.examples[4]: example `off` is read by YAML as the boolean False" in problems[3]
    assert "a.yml:13: deny.examples[5]: example `null` is read by YAML as no value (null)" in problems[4]
    assert len(problems) == 5  # each reported once, not again by the schema


def test_quoted_words_load_as_written(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(intents_file('      - "no"\n      - \'off\'\n      - "42"\n'))
    assert load_catalog(tmp_path).intents["deny"].examples == ["no", "off", "42"]


def test_rasa_list_examples_keep_the_words_as_written() -> None:
    text = (
        'version: "3.1"\nnlu:\n- intent: deny\n  examples:\n  - text: no\n  - text: 42\n  - text: "yes"\n'
        "  - off\n  - text: 1.5\n  - text: 2024-01-01\n  - text: null\n"
    )
    rows = read_rasa_nlu(text, "nlu.yml").candidates
    assert [r.text for r in rows] == ["no", "42", "yes", "off", "1.5", "2024-01-01", "null"]


def test_a_rasa_file_s_no_and_42_are_imported_as_the_words_no_and_42(tmp_path: Path) -> None:
    root = project(tmp_path)
    source = tmp_path / "nlu.yml"
    source.write_text('version: "3.1"\nnlu:\n- intent: deny\n  examples:\n  - text: no\n  - text: 42\n  - text: off\n')
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root), "--queue", "general"])
    assert result.exit_code == 0, result.output
    assert load_catalog(root / "intents").intents["deny"].examples == ["no", "42", "off"]


def test_an_imported_no_is_written_quoted_and_loads_as_no(tmp_path: Path) -> None:
    root = project(tmp_path)
    source = tmp_path / "export.csv"
    source.write_text("text,intent,queue\nno,deny,general\nyes,confirm,general\n42,amount,general\n")
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root)])
    assert result.exit_code == 0, result.output
    written = (root / "intents" / "imported.yml").read_text()
    assert '- "no"' in written and '- "yes"' in written
    catalog = load_catalog(root / "intents")
    assert catalog.intents["deny"].examples == ["no"]
    assert catalog.intents["confirm"].examples == ["yes"]
    assert catalog.intents["amount"].examples == ["42"]


AWKWARD = [
    "no",
    "No",
    "yes",
    "on",
    "OFF",
    "y",
    "42",
    "1.5",
    "1_000",
    "0x1F",
    ".inf",
    "2024-01-01",
    "null",
    "~",
    "=",
    "12:30",
    "no thanks",
    "card 42",
]


def test_every_text_the_writer_dumps_reads_back_as_the_same_string() -> None:
    buffer = io.StringIO()
    round_trip_yaml().dump({"examples": AWKWARD}, buffer)
    assert yaml.safe_load(buffer.getvalue()) == {"examples": AWKWARD}
    assert "- no thanks\n" in buffer.getvalue()  # text that reads back as text stays unquoted


def test_examples_added_to_an_existing_intent_are_quoted_when_yaml_would_misread_them(tmp_path: Path) -> None:
    root = project(tmp_path)
    catalog = load_catalog(root / "intents")
    rows = [Candidate(text, "fees", None, f"x.csv:{i}") for i, text in enumerate(["off", "1.5", "on the 2nd"], 2)]
    plan = plan_import(Path("x.csv"), rows, catalog, queues=QUEUES, eval_turns={})
    apply_plan(plan, catalog, root / "intents", root / "intents" / "imported.yml", queues=QUEUES)
    assert load_catalog(root / "intents").intents["fees"].examples[-3:] == ["off", "1.5", "on the 2nd"]


# ------------------------------------------------------------------------------------ (b) Unicode NFC


def test_a_composed_and_a_decomposed_copy_are_duplicates_in_intents(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(intents_file(f"      - {COMPOSED}\n      - {DECOMPOSED}\n"))
    with pytest.raises(InputError) as caught:
        load_catalog(tmp_path)
    assert "deny.examples[1]: duplicate example" in caught.value.problems[0]


def test_the_import_sees_the_two_forms_as_one_sentence_and_writes_nfc(tmp_path: Path) -> None:
    catalog = load_catalog(project(tmp_path) / "intents")
    rows = [
        Candidate(DECOMPOSED, "hours", "general", "x.csv:2"),
        Candidate(COMPOSED, "hours", "general", "x.csv:3"),
        Candidate(unicodedata.normalize("NFD", "Monthly account fée"), "fees", None, "x.csv:4"),
        Candidate("monthly account fée", "fees", None, "x.csv:5"),
    ]
    plan = plan_import(Path("x.csv"), rows, catalog, queues=QUEUES, eval_turns={})
    assert [c.text for c in plan.new_intents["hours"]] == [COMPOSED]  # stored composed
    assert {s.candidate.origin: s.reason for s in plan.skipped} == {
        "x.csv:3": "repeats x.csv:2",
        "x.csv:5": "repeats x.csv:4",
    }
    leaking = plan_import(Path("x.csv"), rows[:1], catalog, queues=QUEUES, eval_turns={COMPOSED: "e:e-1"})
    assert "eval sets (e:e-1)" in leaking.skipped[0].reason
    conflicting = plan_import(
        Path("x.csv"),
        [Candidate(COMPOSED, "hours", "general", "x.csv:2"), Candidate(DECOMPOSED, "fees", None, "x.csv:3")],
        catalog,
        queues=QUEUES,
        eval_turns={},
    )
    assert conflicting.added == 0
    assert all("labelled differently within the import" in s.reason for s in conflicting.skipped)


def test_validate_finds_an_eval_turn_repeated_in_another_unicode_form(tmp_path: Path) -> None:
    root = project(tmp_path, eval_text=COMPOSED)
    cards = root / "intents" / "cards.yml"
    cards.write_text(cards.read_text().replace("fees abroad]", f"fees abroad, {DECOMPOSED}]"))
    result = CliRunner().invoke(
        app, ["intents", "validate", "--root", str(root), "--no-embeddings", "--min-examples", "1"]
    )
    assert result.exit_code == 2, result.output
    assert "repeats eval turn e-1 turn 0" in result.stderr


# ------------------------------------------------------------------------------------ (d) what is not imported


def test_retrieval_intents_and_metadata_get_a_notice_saying_what_is_not_imported() -> None:
    text = (
        'version: "3.1"\n'
        "nlu:\n"
        "- intent: greet\n"  # line 3
        "  metadata:\n"
        "    sentiment: neutral\n"
        "  examples: |\n"
        "    - hi\n"
        "- intent: faq/ask_hours\n"  # line 8
        "  examples: |\n"
        "    - when do you open\n"
        "    - opening hours\n"
        "- intent: bye\n"  # line 12
        "  examples:\n"
        "  - text: see you\n"
        "    metadata:\n"
        "      sentiment: positive\n"
        "  - text: bye now\n"
        "- synonym: credit\n"
        "  examples: |\n"
        "    - cc\n"
        "- regex: account_number\n"
        "  examples: |\n"
        "    - \\d{10}\n"
        "- lookup: city\n"
        "  examples: |\n"
        "    - Berlin\n"
    )
    read = read_rasa_nlu(text, "nlu.yml")
    assert [(c.text, c.intent) for c in read.candidates] == [("hi", "greet"), ("see you", "bye"), ("bye now", "bye")]
    retrieval = [s for s in read.skipped if s.candidate.intent == "faq/ask_hours"]
    assert [s.candidate.text for s in retrieval] == ["when do you open", "opening hours"]
    assert all("retrieval intent" in s.reason and "faq_ask_hours" in s.reason for s in retrieval)
    others = [s.reason for s in read.skipped if s.candidate.intent != "faq/ask_hours"]
    assert others == [
        f"`{kind}` entries are not imported (only intents with examples)" for kind in ("synonym", "regex", "lookup")
    ]
    warnings = "\n".join(read.warnings)
    assert "nlu.yml:8: retrieval intent faq/ask_hours (2 examples) is not imported" in warnings
    assert "nlu.yml:4: the metadata of intent greet is not imported" in warnings
    assert "nlu.yml:15: the metadata of 1 example of intent bye is not imported" in warnings


def test_the_import_command_prints_the_notices(tmp_path: Path) -> None:
    root = project(tmp_path)
    source = tmp_path / "nlu.yml"
    source.write_text(
        'version: "3.1"\nnlu:\n- intent: faq/ask_hours\n  examples: |\n    - when do you open today\n'
        "- intent: fees\n  metadata: {source: chat}\n  examples: |\n    - what is the charge for a transfer\n"
    )
    result = CliRunner().invoke(app, ["intents", "import", str(source), "--root", str(root), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "warning: nlu.yml:3: retrieval intent faq/ask_hours (1 example) is not imported" in result.output
    assert "warning: nlu.yml:7: the metadata of intent fees is not imported" in result.output
    assert "would add 1 example(s)" in result.output
