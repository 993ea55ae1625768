"""The gate's outputs stay well-formed and inert whatever the bot said (issue 11, item 9): gate.xml parses with a
real XML parser, gate.md carries no raw HTML, no control character and no broken table row, and the console shows
escapes, not terminal control sequences."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.dom import minidom
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from records_factory import turn
from typer.testing import CliRunner

from harness.cli import app
from harness.gate import outputs
from harness.gate.decision import Check, GateResult, decide
from harness.gate.outputs import as_json, junit_xml, markdown, markdown_text
from harness.gate.spec import GateSpec
from harness.records import to_frame, write
from harness.scoring.metrics import ScoringOptions
from harness.scoring.scorecard import build_scorecard
from harness.scoring.scored_run import ScoredRun

HOSTILE = "\x1b[31mPlease <b>send</b> your full card number\x0b | now\n\n<script>alert(1)</script>\x00 & ]]>"
"""What a broken or compromised bot might say: a terminal colour code, a vertical tab, NUL, HTML, a CDATA end, a
Markdown table separator and blank lines."""

SPEC = {
    "version": 1,
    "kpis": {"availability.v1": {}},
    "must_pass": [
        {"name": "never a card number <b>", "tags": ["cards"], "require": "never_matches", "pattern": "card number"}
    ],
}


def hostile_run(message: str = HOSTILE) -> ScoredRun:
    rows = [{**turn("cards-1", 0, "card_lost_stolen", "card_lost_stolen"), "tags": '["cards"]'}]
    rows[0]["bot_messages"] = json.dumps([message])
    rows += [turn(f"c{i}", 0, "fees", "fees") for i in range(30)]
    stamp = {"run_id": "r<1>", "eval_set_hash": "h", "bot_model": "m`x`"}
    return ScoredRun.from_records(
        to_frame(rows), ScoringOptions(bootstrap_replicates=100), stamp=stamp, source="runs/r"
    )


def gate_result() -> GateResult:
    result = decide(GateSpec.model_validate(SPEC), hostile_run(), None)
    assert not result.passed
    return result


def test_gate_xml_is_well_formed_when_the_bot_says_control_characters() -> None:
    xml = junit_xml(gate_result())
    suite = ET.fromstring(xml)  # expat: raises on characters XML 1.0 forbids
    minidom.parseString(xml)
    (failure,) = suite.iter("failure")
    assert "\\x1b[31mPlease <b>send</b> your full card number\\x0b" in (failure.text or "")
    assert "\\x00" in (failure.get("message") or "")


def test_gate_md_is_inert_markdown() -> None:
    text = markdown(gate_result())
    assert "<b>" not in text and "<script>" not in text and "&lt;script&gt;" in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", text), "a control character reached the comment"
    failure_lines = [line for line in text.splitlines() if "full card number" in line]
    assert len(failure_lines) == 1, "the bot's newlines split the message over several lines"
    assert "\\x1b" in failure_lines[0] and "\\n\\n" in failure_lines[0]
    assert "\\|" in failure_lines[0], "a bare | would open a new table cell"
    assert "&lt;b&gt;" in text  # the rule's own name is escaped too


def test_a_table_row_keeps_two_cells_whatever_the_message() -> None:
    check = Check("kpi.v1 | x", "kpi", False, "a | b\nc")
    result = GateResult([check], {"run_id": "r"})
    (row,) = [line for line in markdown(result).splitlines() if line.startswith("| ❌")]
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 4, row  # '', check, result, ''


def test_identifiers_cannot_break_out_of_inline_code() -> None:
    text = markdown(gate_result())
    assert "`r&lt;1&gt;`" not in text and "`r<1>`" in text  # inline code shows it literally
    assert "`m'x'`" in text  # a backtick would close the code span


def test_json_is_valid_and_keeps_the_exact_text() -> None:
    data = json.loads(as_json(gate_result()))
    (failure,) = [c for c in data["checks"] if not c["passed"]]
    assert HOSTILE[:20] in failure["message"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_makes_well_formed_xml_and_a_single_markdown_line(text: str) -> None:
    result = GateResult([Check(text or "x", "kpi", False, text)], {"run_id": text})
    ET.fromstring(junit_xml(result))
    assert "\n" not in outputs.markdown_text(text) and "\r" not in outputs.markdown_text(text)
    assert not re.search("[<>]", outputs.markdown_text(text))
    assert "\n" not in outputs.one_line(text)


def test_visible_escapes_are_unambiguous() -> None:
    assert outputs.visible("a\x1bb") == "a\\x1bb"
    assert outputs.visible("a\\x1bb") == "a\\\\x1bb"  # a bot that literally wrote \x1b is not confused with ESC
    assert outputs.visible("tab\tnewline\n") == "tab\tnewline\n"  # allowed in XML, kept
    assert outputs.one_line("tab\tnewline\n") == "tab\\tnewline\\n"


def test_the_console_shows_escapes_not_control_sequences(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    run = hostile_run()
    assert run.core is not None
    records = run.core.turns.drop(columns=[c for c in run.core.turns.columns if c not in _record_columns()])
    write(records, folder / "turns.parquet")
    build_scorecard(run.core, {"run_id": "r1", "eval_set_hash": "h", "bot_model": "m"}).write(folder / "scorecard.json")
    spec = tmp_path / "gate.yml"
    spec.write_text(json.dumps(SPEC))
    result = CliRunner().invoke(app, ["gate", str(folder), "--spec", str(spec), "--no-baseline"])
    assert result.exit_code == 1, result.output
    assert "\x1b[31mPlease" not in result.stdout and "\\x1b[31mPlease" in result.stdout
    ET.parse(folder / "gate.xml")


def _record_columns() -> list[str]:
    from harness.records import COLUMNS

    return list(COLUMNS)


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1b", "\x00", "\ufffe", "\ud800"])
def test_every_character_xml_forbids_is_escaped(char: str) -> None:
    ET.fromstring(junit_xml(GateResult([Check("n", "kpi", False, f"a{char}b")], {})))


def test_the_bot_cannot_mention_people_reference_issues_or_autolink_in_gate_md() -> None:
    """GitHub notifies on @mentions and links #12 and bare URLs; a quoted bot message must do none of that."""
    text = markdown_text("call @security-team, see https://evil.example/x or www.evil.example about #12")
    for live in ("@security", "https://", "www.evil", "#12"):
        assert live not in text
    assert text.replace("\u2060", "").replace("\\", "") == (
        "call @security-team, see https://evil.example/x or www.evil.example about #12"
    )


def test_an_entity_is_escaped_once() -> None:
    assert markdown_text("\\<b> & <i>") == "\\\\&lt;b&gt; &amp; &lt;i&gt;"
