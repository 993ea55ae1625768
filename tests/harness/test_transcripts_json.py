"""`harness logs import --tracker-json`: tracker JSON as Rasa's HTTP API returns it, one file per conversation or
JSON lines; a real tracker of stock Rasa 3.6 (tests/fixtures/stock_rasa/wire/handoff_billing.json)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path

from transcripts_world import T0, bot, user

from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore
from harness.sources.transcripts import import_events
from harness.sources.transcripts.tracker_json import TrackerJson

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "stock_rasa"


def real_tracker() -> dict:
    """The tracker after the last turn of a recorded stock-Rasa conversation that hands off to billing."""
    return json.loads((WIRE / "wire" / "handoff_billing.json").read_text())[-1]["tracker"]


def later(tracker: dict, sender: str, shift: float) -> dict:
    moved = copy.deepcopy(tracker)
    moved["sender_id"] = sender
    for event in moved["events"]:
        event["timestamp"] += shift
    return moved


def test_one_file_per_conversation(tmp_path: Path) -> None:
    tracker = real_tracker()
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "wire.json").write_text(json.dumps(tracker))
    # A second conversation 10000 s later finishes the first (its last event is then far older than 30 min).
    (folder / "other.json").write_text(json.dumps(later(tracker, "other", 10_000)))
    settings = ProductionSettings(store=tmp_path / "store", handoff_mapping=WIRE / "helpdesk" / "handoff.yml")
    summary = import_events(TrackerJson([folder]), settings, name="export")
    assert (summary.events_read, summary.conversations_stored, summary.deferred) == (32, 1, 1)
    frame = ProductionStore(tmp_path / "store").read().sort_values("turn_index")
    assert list(frame["text"]) == ["hello", "why has my bill gone up by ten pounds this month?"]
    assert list(frame["intent"]) == ["greet", "billing_question"]
    assert list(frame["handoff_queue"].fillna("-")) == ["-", "billing"]
    assert set(frame["ended_by"]) == {"handoff"}
    assert json.loads(frame.iloc[1]["bot_messages"]) == [
        "Transferring you to our billing team. Someone will join this chat shortly.",
        '{"custom":{"handoff":{"team":"billing_team"}}}',
    ]
    assert json.loads(frame.iloc[1]["actions"]) == ["action_handoff"]
    assert frame.iloc[0]["model"] == "436ce4a2605f44efb4ebf42519467617"
    first = tracker["events"][0]["timestamp"]
    secret = (tmp_path / "store" / "secret").read_text().strip().encode()
    assert set(frame["conversation_id"]) == {
        f"export:{first!r}:{hmac.new(secret, b'wire-handoff-billing', hashlib.sha256).hexdigest()[:8]}"
    }
    # A later export holding both again plus more: nothing is stored twice, the deferred one is stored now.
    (folder / "third.json").write_text(json.dumps(later(tracker, "third", 20_000)))
    again = import_events(TrackerJson([folder]), settings, name="export")
    assert (again.conversations_stored, again.deferred) == (1, 1)
    assert ProductionStore(tmp_path / "store").read()["conversation_id"].nunique() == 2


def test_json_lines_with_a_bad_line_and_a_bad_event(tmp_path: Path) -> None:
    lines = [
        json.dumps({"sender_id": "a", "events": [user(T0, "hi"), bot(T0 + 1, "Hello"), {"event": "user"}]}),
        "{oops",
        "",
        json.dumps({"events": [user(T0 + 2, "x")]}),
        json.dumps({"sender_id": "b", "events": [user(T0 + 5000, "later")]}),
    ]
    path = tmp_path / "trackers.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summary = import_events(TrackerJson([path]), ProductionSettings(store=tmp_path / "store"), name="lines")
    assert summary.skipped == {"bad_line": 1, "no_sender": 1, "no_timestamp": 1}
    assert set(summary.problems) == {
        "trackers.jsonl:1:event 2: the event has no (numeric) timestamp (None)",
        "trackers.jsonl:2: the line is not a tracker (JSON object with an `events` list)"
        + " (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        "trackers.jsonl:4: the tracker has no sender_id (1 events)",
    }
    assert (summary.conversations_stored, summary.deferred) == (1, 1)
    assert list(ProductionStore(tmp_path / "store").read()["text"]) == ["hi"]
