"""`harness logs import --reference`: the reference bot's tracker store and handoff ticket file, through the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from transcripts_world import T0, action, bot, create, insert, slot, user
from typer.testing import CliRunner

from harness.cli import app
from harness.records.production import ProductionStore

# bot/bankbot/handoff_store.py's tickets table (the columns the importer reads: ticket_id, queue, rule).
TICKETS = """
CREATE TABLE tickets (ticket_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, queue TEXT NOT NULL,
    priority TEXT NOT NULL, rule TEXT NOT NULL, summary TEXT NOT NULL, slots_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL);
"""


def hand_off(t: float, queue: str | None, rule: str | None, ticket: str) -> list[dict]:
    """The events of bankbot.actions.handoff.hand_off (queue and rule slots left out when None)."""
    events = [bot(t, f"I'm passing you to a colleague. Your reference is {ticket}.")]
    if queue is not None:
        events.append(slot(t, "handoff_queue", queue))
    if rule is not None:
        events.append(slot(t, "handoff_rule", rule))
    return [*events, slot(t, "handoff_ticket", ticket), slot(t, "conversation_state", "handed_off")]


def test_reference_import_reads_queue_and_rule_from_the_tickets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(
        engine,
        "c1",
        [
            user(T0, "someone stole my card", "report_fraud"),
            action(T0 + 0.1, "action_escalate"),
            *hand_off(T0 + 0.2, "fraud", "fraud_immediate", "T-AAA"),
        ],
    )
    insert(
        engine,
        "c2",
        [
            user(T0 + 10, "blah", "nlu_fallback", 0.2),
            action(T0 + 10.1, "action_not_understood"),
            bot(T0 + 10.2, "Sorry, could you rephrase?"),
            user(T0 + 20, "blah blah", "nlu_fallback", 0.2),
            action(T0 + 20.1, "action_not_understood"),
            *hand_off(T0 + 20.2, None, None, "T-BBB"),
        ],
    )
    insert(engine, "c3", [user(T0 + 30, "thanks", "thank"), bot(T0 + 30.5, "You're welcome")])
    insert(engine, "late", [user(T0 + 50_000, "x")])
    with sqlite3.connect(tmp_path / "handoff.sqlite3") as db:
        db.executescript(TICKETS)
        db.execute("INSERT INTO tickets VALUES ('T-AAA','c1','fraud','high','fraud_immediate','s','{}','open','t')")
        db.execute(
            "INSERT INTO tickets VALUES ('T-BBB','c2','cards','normal','not_understood_twice','s','{}','open','t')"
        )
    result = CliRunner().invoke(
        app,
        [
            "logs",
            "import",
            "--reference",
            "--tracker-store",
            url,
            "--handoff-db",
            str(tmp_path / "handoff.sqlite3"),
            "--store",
            str(tmp_path / "store"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "conversations stored: 3 (4 customer turns)" in result.output
    assert "deferred (still open at the newest event" in result.output and "): 1" in result.output
    frame = ProductionStore(tmp_path / "store").read()
    handoffs = frame.dropna(subset=["ticket_id"]).set_index("ticket_id")[["handoff_queue", "handoff_rule", "source"]]
    assert handoffs.to_dict("index") == {
        "T-AAA": {"handoff_queue": "fraud", "handoff_rule": "fraud_immediate", "source": "reference"},
        "T-BBB": {"handoff_queue": "cards", "handoff_rule": "not_understood_twice", "source": "reference"},
    }
    ends = frame.groupby("conversation_id")["ended_by"].first().sort_values().tolist()
    assert ends == ["handoff", "handoff", "timeout"]
    c2 = frame[frame["ticket_id"].isna() & frame["fallback"]]
    assert list(c2["awaiting_reply"]) == [True]  # the bot asked to rephrase


def test_reference_without_a_ticket_file_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    create(url)
    result = CliRunner().invoke(app, ["logs", "import", "--reference", "--tracker-store", url])
    assert result.exit_code == 2 and "no handoff ticket file" in result.output


def test_exactly_one_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["logs", "import", "--tracker-json", "x.json", "--tracker-store", "sqlite:///y"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["logs", "import"])
    assert result.exit_code == 2


def test_finish_open_stores_the_conversations_still_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(engine, "a", [user(T0, "hi"), bot(T0 + 1, "Hello")])  # both within 30 min of the newest event
    insert(engine, "b", [user(T0 + 60, "hey"), bot(T0 + 61, "Hi")])
    command = ["logs", "import", "--tracker-store", url, "--store", str(tmp_path / "store")]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0 and "conversations stored: 0" in first.output and "): 2" in first.output
    second = CliRunner().invoke(app, [*command, "--finish-open"])
    assert second.exit_code == 0 and "conversations stored: 2 (2 customer turns)" in second.output
    frame = ProductionStore(tmp_path / "store").read()
    assert set(frame["ended_by"]) == {"timeout"} and set(frame["source"]) == {"production"}


def test_reference_finds_the_tracker_beside_the_ticket_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness bot serve` keeps conversations in <ticket file stem>-tracker.sqlite3 beside the ticket file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACKER_STORE_URL", raising=False)
    monkeypatch.setenv("HANDOFF_DB", str(tmp_path / "var" / "eval-handoff.sqlite3"))
    (tmp_path / "var").mkdir()
    engine = create(f"sqlite:///{tmp_path / 'var' / 'eval-handoff-tracker.sqlite3'}")
    insert(engine, "a", [user(T0, "hi"), bot(T0 + 1, "Hello")])
    with sqlite3.connect(tmp_path / "var" / "eval-handoff.sqlite3") as db:
        db.executescript(TICKETS)
    result = CliRunner().invoke(app, ["logs", "import", "--reference", "--finish-open", "--store", "store"])
    assert result.exit_code == 0, result.output
    assert (
        "eval-handoff-tracker.sqlite3" in result.output
        and "conversations stored: 1 (1 customer turns)" in result.output
    )
