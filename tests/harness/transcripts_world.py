"""Rasa events and tracker stores for the transcript importer's tests: an `events` table with the column layout
of Rasa's SQLTrackerStore (tests/fixtures/transcripts/rasa_events_schema.json), filled with hand-written events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z

metadata = sa.MetaData()
EVENTS = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def user(t: float, text: str, intent: str = "greet", confidence: float = 0.9) -> dict[str, Any]:
    return {
        "event": "user",
        "timestamp": t,
        "text": text,
        "parse_data": {
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": intent, "confidence": confidence}],
            "text": text,
        },
        "input_channel": "rest",
        "metadata": {"model_id": "m1"},
    }


def bot(t: float, text: str, **data: Any) -> dict[str, Any]:
    return {"event": "bot", "timestamp": t, "text": text, "data": {"custom": None, **data}, "metadata": {}}


def action(t: float, name: str) -> dict[str, Any]:
    return {"event": "action", "timestamp": t, "name": name, "policy": None, "confidence": 1.0}


def slot(t: float, name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "timestamp": t, "name": name, "value": value}


def session(t: float) -> list[dict[str, Any]]:
    """What Rasa logs when a session starts."""
    return [action(t, "action_session_start"), {"event": "session_started", "timestamp": t}, action(t, "action_listen")]


def create(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine


def insert(engine: sa.Engine, sender: str, events: list[dict[str, Any] | tuple[str, Any, str | None]]) -> list[int]:
    """Append events (dicts, or raw `(type_name, timestamp, data text)` rows) for `sender`; returns their row ids."""
    ids = []
    with engine.begin() as connection:
        for event in events:
            if isinstance(event, tuple):
                type_name, timestamp, data = event
            else:
                type_name, timestamp, data = event["event"], event.get("timestamp"), json.dumps(event)
            result = connection.execute(
                EVENTS.insert().values(sender_id=sender, type_name=type_name, timestamp=timestamp, data=data)
            )
            ids.append(int(result.inserted_primary_key[0]))
    return ids
