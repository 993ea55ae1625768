"""Events written by Rasa's own SQLTrackerStore (rasa 3.6 in .venv-bot, no model needed) import as expected: the
table layout and the `data` JSON are Rasa's, not our imitation of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from test_transcripts_reference import TICKETS
from transcripts_world import FIXTURES, T0

from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore
from harness.sources.transcripts import import_events
from harness.sources.transcripts.reference import ticket_lookup
from harness.sources.transcripts.sql_store import SqlTrackerStore

BOT_PYTHON = Path(__file__).resolve().parents[2] / ".venv-bot" / "bin" / "python"


@pytest.mark.skipif(not BOT_PYTHON.is_file(), reason="the bot's environment (.venv-bot, with rasa) is not installed")
def test_rasas_own_tracker_store_imports(tmp_path: Path) -> None:
    database = tmp_path / "tracker.sqlite3"
    subprocess.run(
        [str(BOT_PYTHON), str(FIXTURES / "write_with_rasa.py"), str(database), repr(T0)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with sqlite3.connect(tmp_path / "handoff.sqlite3") as db:
        db.executescript(TICKETS)
        db.execute(
            "INSERT INTO tickets VALUES ('T-1','rasa-1','general','low','explicit_human_request','s','{}','open','t')"
        )
    source = SqlTrackerStore(f"sqlite:///{database}")
    summary = import_events(
        source,
        ProductionSettings(store=tmp_path / "store"),
        name="ref",
        tickets=ticket_lookup(tmp_path / "handoff.sqlite3"),
    )
    # rasa-1: 11 events (ids 1-11), finished (its last event is 8969.5 s before rasa-2's last); rasa-2: 2, open.
    assert (summary.events_read, summary.conversations_stored, summary.deferred, summary.skipped) == (13, 1, 1, {})
    frame = ProductionStore(tmp_path / "store").read().sort_values("turn_index")
    secret = (tmp_path / "store" / "secret").read_text().strip().encode()
    assert set(frame["conversation_id"]) == {f"ref:1:{hmac.new(secret, b'rasa-1', hashlib.sha256).hexdigest()[:8]}"}
    assert list(frame["text"]) == ["my email is [email]", "I want a human"]
    assert list(frame["intent"]) == ["inform", "request_human"]
    assert [json.loads(m) for m in frame["bot_messages"]] == [["Thanks, noted."], ["Passing you on."]]
    assert list(frame["latency_ms"]) == pytest.approx([250.0, 500.0], abs=0.01)
    assert list(frame["handoff_queue"].fillna("-")) == ["-", "general"]
    assert list(frame["ticket_id"].fillna("-")) == ["-", "T-1"] and set(frame["ended_by"]) == {"handoff"}
