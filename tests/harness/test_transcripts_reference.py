"""`harness logs import --reference`: the reference bot's tracker store and handoff ticket file, through the CLI."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from transcripts_world import T0, action, bot, create, insert, session, slot, user
from typer.testing import CliRunner

from harness.cli import app
from harness.project.paths import PROJECT_ENV
from harness.records.production import ProductionStore

REPO = Path(__file__).resolve().parents[2]

# bot/bankbot/handoff_store.py's tables (the importer reads tickets' queue and rule, and ticket_messages).
TICKETS = """
CREATE TABLE tickets (ticket_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, queue TEXT NOT NULL,
    priority TEXT NOT NULL, rule TEXT NOT NULL, summary TEXT NOT NULL, slots_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL);
CREATE TABLE ticket_messages (ticket_id TEXT NOT NULL REFERENCES tickets (ticket_id), seq INTEGER NOT NULL,
    sender TEXT NOT NULL CHECK (sender IN ('customer', 'bot')), text TEXT NOT NULL, sent_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq));
"""


def iso(t: float) -> str:
    """A time as handoff_store._now writes it: ISO 8601 UTC, milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def write_ticket(path: Path, ticket: str, conversation: str, messages: list[tuple[str, str, float]]) -> None:
    """A fraud ticket with its transcript of (sender, text, sent_at) in seq order."""
    with sqlite3.connect(path) as db:
        db.executescript(TICKETS)
        db.execute(
            "INSERT INTO tickets VALUES (?, ?, 'fraud', 'high', 'fraud_immediate', 's', '{}', 'open', ?)",
            (ticket, conversation, iso(T0 + 0.15)),
        )
        db.executemany(
            "INSERT INTO ticket_messages VALUES (?, ?, ?, ?, ?)",
            [(ticket, seq, sender, text, iso(t)) for seq, (sender, text, t) in enumerate(messages)],
        )


def import_reference(tmp_path: Path, url: str, *extra: str) -> str:
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
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


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
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
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
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    create(url)
    result = CliRunner().invoke(app, ["logs", "import", "--reference", "--tracker-store", url])
    assert result.exit_code == 2 and "no handoff ticket file" in result.output


def test_exactly_one_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    result = CliRunner().invoke(app, ["logs", "import", "--tracker-json", "x.json", "--tracker-store", "sqlite:///y"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["logs", "import"])
    assert result.exit_code == 2


def test_finish_open_stores_the_conversations_still_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
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
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
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


def fraud_handoff(t: float) -> list[dict]:
    return [
        user(t, "someone took money from my account", "report_fraud"),
        action(t + 0.1, "action_escalate"),
        *hand_off(t + 0.2, "fraud", "fraud_immediate", "T-AAA"),
    ]


def test_messages_to_the_human_are_silenced_turns_of_the_handed_off_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The channel sends messages after a handoff to the ticket, not to Rasa: they come from the ticket file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(engine, "c1", fraud_handoff(T0))
    insert(engine, "other", [user(T0 + 10, "hi"), bot(T0 + 11, "Hello")])
    write_ticket(
        tmp_path / "handoff.sqlite3",
        "T-AAA",
        "c1",
        [
            # create_ticket copies the conversation so far, stamped with the ticket's creation time (before Rasa
            # logs the handoff_ticket slot at T0 + 0.2): already the turn that handed off, not a new turn.
            ("customer", "someone took money from my account", T0 + 0.15),
            ("bot", "I'm passing you to a colleague.", T0 + 0.15),
            ("customer", "hello? is anyone there, write to jane.doe@example.com", T0 + 60),
            ("bot", "An agent here, checking now", T0 + 70),  # the agent: not a customer turn
            ("customer", "ok thanks", T0 + 100),
            # 1,801 s after the previous message (> the 30 min timeout): the customer had gone idle; this one
            # belongs to no stored conversation.
            ("customer", "any news?", T0 + 1901),
        ],
    )
    output = import_reference(tmp_path, url, "--finish-open")
    # c1: the handoff turn and 2 messages to the human; other: 1 turn.
    assert "conversations stored: 2 (4 customer turns)" in output
    frame = ProductionStore(tmp_path / "store").read()
    c1 = frame[frame["conversation_id"] == frame.loc[frame["ticket_id"] == "T-AAA", "conversation_id"].iloc[0]]
    c1 = c1.sort_values("turn_index")
    assert list(c1["turn_index"]) == [0, 1, 2]
    assert list(c1["status"]) == ["ok", "silenced", "silenced"]
    assert list(c1["state"]) == ["handed_off"] * 3
    assert list(c1["sent_at"].map(lambda t: t.timestamp())) == [T0, T0 + 60, T0 + 100]
    assert c1["text"].iloc[2] == "ok thanks"
    assert "jane.doe@example.com" not in c1["text"].iloc[1] and c1["text"].iloc[1].startswith("hello? is anyone")
    silenced = c1.iloc[1:]
    assert silenced["intent"].isna().all() and silenced["ticket_id"].isna().all()
    assert silenced["handoff_queue"].isna().all() and silenced["latency_ms"].isna().all()
    assert list(silenced["n_bot_messages"]) == [0, 0] and list(silenced["awaiting_reply"]) == [False, False]
    assert set(c1["ended_by"]) == {"handoff"}
    assert "any news" not in " ".join(frame["text"])
    assert ProductionStore(tmp_path / "store").state()["imports"][-1]["ticket_messages"] == 2


def test_a_conversation_with_the_human_still_going_is_deferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker is quiet after the handoff, but the customer wrote to the human 100 s before the newest event
    (each message within the timeout of the one before): the conversation may still be going on, so it is not
    stored yet (a later message could not be added)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(engine, "c1", fraud_handoff(T0))
    insert(engine, "early", [user(T0 - 5000, "hi"), bot(T0 - 4999, "Hello")])
    insert(engine, "late", [user(T0 + 2000, "hi")])  # the newest event: 1,999.8 s after the handoff's last event
    write_ticket(
        tmp_path / "handoff.sqlite3",
        "T-AAA",
        "c1",
        [("customer", "hello?", T0 + 1000), ("customer", "still there?", T0 + 1900)],
    )
    output = import_reference(tmp_path, url)
    # stored: `early` only; deferred: c1 (its last message, at T0 + 1900, is 100 s before the newest) and `late`.
    assert "conversations stored: 1 (1 customer turns)" in output
    assert "): 2" in output
    assert len(ProductionStore(tmp_path / "store").read()) == 1


def test_messages_after_the_next_conversation_began_are_not_in_the_handed_off_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new session of the same sender ends the handed-off conversation: later ticket messages are not its."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(engine, "c1", [*fraud_handoff(T0), *session(T0 + 300), user(T0 + 301, "hi"), bot(T0 + 302, "Hello")])
    write_ticket(
        tmp_path / "handoff.sqlite3",
        "T-AAA",
        "c1",
        [("customer", "before the new session", T0 + 200), ("customer", "after it", T0 + 400)],
    )
    output = import_reference(tmp_path, url, "--finish-open")
    # the handed-off conversation: 2 turns (the handoff, T0 + 200); the new session: 1 turn.
    assert "conversations stored: 2 (3 customer turns)" in output
    frame = ProductionStore(tmp_path / "store").read()
    assert sorted(frame["text"]) == ["before the new session", "hi", "someone took money from my account"]
    assert list(frame.loc[frame["text"] == "before the new session", "status"]) == ["silenced"]


def test_a_ticket_file_without_its_transcripts_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    create(url)
    with sqlite3.connect(tmp_path / "handoff.sqlite3") as db:
        db.executescript(TICKETS.split("CREATE TABLE ticket_messages")[0])
    result = CliRunner().invoke(
        app,
        ["logs", "import", "--reference", "--tracker-store", url, "--handoff-db", str(tmp_path / "handoff.sqlite3")],
    )
    assert result.exit_code == 2 and "ticket_messages" in result.output
