"""`harness logs import` skips the prober's synthetic conversations (senders `harness-probe:...`) in every source
format (SQL tracker store, tracker JSON, the reference bot's stores) and counts them in `skipped_probes`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from transcripts_world import T0, action, bot, create, insert, slot, user
from typer.testing import CliRunner

from harness.cli import app
from harness.project.paths import PROJECT_ENV
from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore
from harness.sources.transcripts import import_events
from harness.sources.transcripts.sql_store import SqlTrackerStore
from harness.sources.transcripts.tracker_json import TrackerJson

REPO = Path(__file__).resolve().parents[2]

PROBE = "harness-probe:reference-bot:probe-balance:0a1b2c3d"
PROBE_2 = "harness-probe:reference-bot:probe-balance:99999999"


def probe_events(t: float) -> list[dict]:
    return [
        user(t, "hello"),
        bot(t + 0.5, "Hi, I'm Penny"),
        user(t + 1, "how much money have I got", "check_balance"),
        bot(t + 1.5, "Here are your balances"),
    ]


def sql_import(url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    source = SqlTrackerStore(url)
    try:
        return import_events(source, ProductionSettings(store=tmp_path / "store"), name="prod")
    finally:
        source.close()


def test_sql_tracker_store_probe_senders_are_skipped_and_counted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    insert(engine, "alice", [user(T0, "hi"), bot(T0 + 0.5, "Hello")])  # 2 events
    insert(engine, PROBE, probe_events(T0 + 10))  # 4 events
    insert(engine, "late", [user(T0 + 50_000, "x")])  # 1 event: finishes the others, itself deferred
    summary = sql_import(url, tmp_path)
    # Read: 2 + 4 + 1 = 7 events; stored: alice only; the probe is skipped, not stored and not deferred.
    assert (summary.events_read, summary.conversations_stored, summary.deferred, summary.skipped_probes) == (
        7,
        1,
        1,
        1,
    )
    frame = ProductionStore(tmp_path / "store").read()
    assert list(frame["text"]) == ["hi"]
    state = json.loads((tmp_path / "store" / "state.json").read_text())
    assert state["imports"][-1]["skipped_probes"] == 1
    # The next import reads past the watermark: the old probe is not counted again, a new probe is.
    insert(engine, PROBE_2, probe_events(T0 + 50_001)[:2])
    again = sql_import(url, tmp_path)
    assert (again.skipped_probes, again.conversations_stored) == (1, 0)
    assert list(ProductionStore(tmp_path / "store").read()["text"]) == ["hi"]


def test_tracker_json_probe_trackers_are_skipped(tmp_path: Path) -> None:
    lines = [
        {"sender_id": "bob", "events": [user(T0, "hello"), bot(T0 + 1, "Hi Bob")]},
        {"sender_id": PROBE, "events": probe_events(T0 + 5)},
    ]
    path = tmp_path / "trackers.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = import_events(
        TrackerJson([path]), ProductionSettings(store=tmp_path / "store"), name="export", finish_open=True
    )
    assert (summary.conversations_stored, summary.skipped_probes, summary.events_read) == (1, 1, 6)
    assert list(ProductionStore(tmp_path / "store").read()["text"]) == ["hello"]


TICKETS = """
CREATE TABLE tickets (ticket_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, queue TEXT NOT NULL,
    priority TEXT NOT NULL, rule TEXT NOT NULL, summary TEXT NOT NULL, slots_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL);
CREATE TABLE ticket_messages (ticket_id TEXT NOT NULL REFERENCES tickets (ticket_id), seq INTEGER NOT NULL,
    sender TEXT NOT NULL CHECK (sender IN ('customer', 'bot')), text TEXT NOT NULL, sent_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq));
"""


def test_reference_stores_probe_handoffs_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(REPO))  # the reference bot's project, commands run from elsewhere
    url = f"sqlite:///{tmp_path / 'tracker.sqlite3'}"
    engine = create(url)
    handoff = [
        user(T0, "my card hasn't come", "card_not_arrived"),
        bot(T0 + 0.3, "It was posted on Monday"),
        user(T0 + 5, "can I speak to a person", "request_human"),
        action(T0 + 5.1, "action_escalate"),
        bot(T0 + 5.2, "A colleague from our Cards team now has this conversation. Your reference is T-PROBE."),
        slot(T0 + 5.2, "handoff_queue", "cards"),
        slot(T0 + 5.2, "handoff_rule", "explicit_human_request"),
        slot(T0 + 5.2, "handoff_ticket", "T-PROBE"),
        slot(T0 + 5.2, "conversation_state", "handed_off"),
    ]
    insert(engine, PROBE, handoff)
    insert(engine, "c1", [user(T0 + 20, "thanks", "thank"), bot(T0 + 20.5, "You're welcome")])
    with sqlite3.connect(tmp_path / "handoff.sqlite3") as db:
        db.executescript(TICKETS)
        db.execute(
            "INSERT INTO tickets VALUES ('T-PROBE', ?, 'cards', 'normal', 'explicit_human_request', 's', '{}', "
            "'probe', 't')",
            (PROBE,),
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
            "--finish-open",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "conversations stored: 1 (1 customer turns)" in result.output
    frame = ProductionStore(tmp_path / "store").read()
    assert list(frame["text"]) == ["thanks"] and frame["ticket_id"].isna().all()
    state = json.loads((tmp_path / "store" / "state.json").read_text())
    assert state["imports"][-1]["skipped_probes"] == 1
