"""The importer against bad event content, NULL senders, concurrent imports and late JSON exports (breakit findings
F3, F5-F8, F10). Hand-built SQLite events tables and tracker JSON; every expected figure is worked out by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from transcripts_world import T0, action, bot, create, insert, slot, user
from typer.testing import CliRunner

from harness.errors import InputError
from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore, to_production_frame
from harness.sources.transcripts import import_events
from harness.sources.transcripts import importer as importer_module
from harness.sources.transcripts.sql_store import SqlTrackerStore
from harness.sources.transcripts.tracker_json import TrackerJson

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **changes: Any) -> ProductionSettings:
    return ProductionSettings(store=tmp_path / "store", **changes)


def run(url: str, tmp_path: Path, **kwargs: Any) -> importer_module.ImportSummary:
    source = SqlTrackerStore(url)
    try:
        return import_events(source, settings(tmp_path), name="prod", **kwargs)
    finally:
        source.close()


def keyed(tmp_path: Path, sender: str, digits: int = 8) -> str:
    """HMAC-SHA256 of the sender keyed with the store's secret, worked out here (not by the importer)."""
    secret = (tmp_path / "store" / "secret").read_text().strip().encode()
    return hmac.new(secret, sender.encode(), hashlib.sha256).hexdigest()[:digits]


def raw(kind: str, timestamp: float | None, data: dict[str, Any]) -> tuple[str, float | None, str]:
    return (kind, timestamp, json.dumps(data))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.sqlite3'}"


# F5, F6 and their kind: event fields of the wrong type or range ------------------------------------------------


def test_events_with_fields_of_the_wrong_type_or_range_are_reported_and_skipped(url: str, tmp_path: Path) -> None:
    engine = create(url)
    good = user(T0 + 10, "ok")
    insert(
        engine,
        "bad",
        [
            user(T0, "hello"),  # 1
            bot(T0 + 0.5, "Hi"),  # 2
            raw("user", 1e300, {**user(0, "far future"), "timestamp": 1e300}),  # 3 bad_timestamp
            raw("user", -5.0, {**user(0, "before 1970"), "timestamp": -5.0}),  # 4 bad_timestamp
            {**good, "parse_data": "notadict"},  # 5 bad_field
            {**good, "text": 123},  # 6 bad_field
            {**good, "parse_data": {"intent": {"name": "x", "confidence": "high"}}},  # 7 bad_field
            {**good, "parse_data": {"intent_ranking": [{"name": "a", "confidence": "x"}]}},  # 8 bad_field
            {**good, "parse_data": {"intent": "greet"}},  # 9 bad_field
            {**bot(T0 + 11, "x"), "data": "nope"},  # 10 bad_field
            {"event": "slot", "timestamp": T0 + 12, "value": "v"},  # 11 bad_field: no name
            {**action(T0 + 13, "utter_x"), "metadata": []},  # 12 bad_field
            {**good, "parse_data": {"entities": "e"}},  # 13 bad_field
            {**good, "metadata": "m"},  # 14 bad_field
            user(T0 + 30, "bye"),  # 15
            bot(T0 + 30.25, "Bye"),  # 16
        ],
    )
    summary = run(url, tmp_path, finish_open=True)
    assert summary.status == "ok"
    assert summary.skipped == {"bad_timestamp": 2, "bad_field": 10}
    shown = "\n".join(summary.problems)
    for row in range(3, 15):
        assert f"events.id={row}: " in shown
    assert "events.id=5: a field of the event has the wrong type (parse_data: expected dict, got str)" in shown
    assert "events.id=11: a field of the event has the wrong type (name: expected a non-empty string" in shown
    # the newest event is the last valid one (T0 + 30.25 = 2026-05-28T20:27:10.25Z), not 1e300
    assert summary.newest_event == "2026-05-28T20:27:10.250000+00:00"
    frame = ProductionStore(tmp_path / "store").read().sort_values("turn_index")
    assert list(frame["text"]) == ["hello", "bye"]
    assert list(frame["latency_ms"]) == pytest.approx([500.0, 250.0])
    assert (summary.conversations_stored, summary.turns_stored) == (1, 2)


def test_tracker_json_with_bad_fields_is_reported_and_skipped(tmp_path: Path) -> None:
    events = [
        user(T0, "hi"),
        bot(T0 + 1, "Hello"),
        {**user(T0 + 2, "x"), "timestamp": 1e300},
        {**user(T0 + 3, "y"), "parse_data": ["list"]},
        slot(T0 + 4, "", "v"),
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"sender_id": "s", "events": events}))
    summary = import_events(TrackerJson([path]), settings(tmp_path), name="j", finish_open=True)
    assert summary.skipped == {"bad_timestamp": 1, "bad_field": 2}
    assert {p.split(":", 2)[1] for p in summary.problems} == {"event 2", "event 3", "event 4"}
    assert list(ProductionStore(tmp_path / "store").read()["text"]) == ["hi"]


def test_a_conversation_whose_rows_cannot_be_built_is_reported_and_the_import_goes_on(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create(url)
    insert(engine, "a", [user(T0, "one"), bot(T0 + 1, "1")])  # 1, 2
    insert(engine, "b", [user(T0 + 10, "two"), bot(T0 + 11, "2"), user(T0 + 12, "more")])  # 3, 4, 5
    insert(engine, "c", [user(T0 + 20, "three"), bot(T0 + 21, "3")])  # 6, 7
    real = importer_module.conversation_rows

    def failing(segment, *args, **kwargs):  # type: ignore[no-untyped-def]
        if segment.events[0].sender == "b":
            raise KeyError("intent")
        return real(segment, *args, **kwargs)

    monkeypatch.setattr(importer_module, "conversation_rows", failing)
    summary = run(url, tmp_path, finish_open=True)
    assert summary.status == "ok"
    assert summary.skipped == {"unreadable_conversation": 3}  # b's three events
    assert summary.problems == (
        "events.id=3: the conversation's rows could not be built: all its events are skipped (KeyError: 'intent')",
    )
    assert sorted(ProductionStore(tmp_path / "store").read()["text"]) == ["one", "three"]
    assert (summary.conversations_stored, summary.turns_stored) == (2, 2)


def test_a_conversation_whose_values_do_not_fit_the_columns_is_reported_and_skipped(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create(url)
    insert(engine, "a", [user(T0, "one"), bot(T0 + 1, "1")])
    insert(engine, "b", [user(T0 + 10, "two"), bot(T0 + 11, "2")])
    real = importer_module.conversation_rows

    def odd(segment, *args, **kwargs):  # type: ignore[no-untyped-def]
        rows = real(segment, *args, **kwargs)
        if segment.events[0].sender == "b":
            rows[0]["turn_index"] = "first"  # not an integer
        return rows

    monkeypatch.setattr(importer_module, "conversation_rows", odd)
    summary = run(url, tmp_path, finish_open=True)
    assert summary.status == "ok" and summary.skipped == {"unreadable_conversation": 1}
    assert summary.problems[0].startswith(f"conversation prod:3:{keyed(tmp_path, 'b')}: ")
    assert list(ProductionStore(tmp_path / "store").read()["text"]) == ["one"]


def test_a_failed_import_logs_only_the_turns_it_stored(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create(url)
    insert(engine, "a", [user(T0, "one"), bot(T0 + 1, "1"), user(T0 + 2, "again"), bot(T0 + 3, "2")])

    def full(self, frame, import_id):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(ProductionStore, "append", full)
    with pytest.raises(OSError, match="disk full"):
        run(url, tmp_path, finish_open=True)
    logged = ProductionStore(tmp_path / "store").state()["imports"][-1]
    assert logged["status"] == "failed"
    assert (logged["conversations_stored"], logged["turns_stored"]) == (0, 0)


# F7: NULL or empty sender_id ------------------------------------------------------------------------------------


def test_rows_without_a_sender_are_skipped_as_no_sender(url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), type_name VARCHAR(255), "
                "timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
            )
        )
        for sender, event in [
            (None, user(T0, "nobody")),  # 1
            ("None", user(T0 + 1, "a sender called None")),  # 2
            ("", user(T0 + 2, "empty")),  # 3
            (None, bot(T0 + 3, "x")),  # 4
        ]:
            connection.execute(
                sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, :t, :ts, :d)"),
                {"s": sender, "t": event["event"], "ts": event["timestamp"], "d": json.dumps(event)},
            )
    summary = run(url, tmp_path, finish_open=True)
    assert summary.skipped == {"no_sender": 3}
    assert {p.split(":")[0] for p in summary.problems} == {"events.id=1", "events.id=3", "events.id=4"}
    frame = ProductionStore(tmp_path / "store").read()
    assert list(frame["text"]) == ["a sender called None"]
    assert list(frame["customer"]) == [keyed(tmp_path, "None", 16)]


# F3: conversation ids carry a keyed hash of the sender -------------------------------------------------------------


def test_conversation_ids_carry_the_stores_keyed_hash_of_the_sender_not_a_plain_one(url: str, tmp_path: Path) -> None:
    engine = create(url)
    insert(engine, "+447700900123", [user(T0, "hi"), bot(T0 + 1, "Hello")])
    summary = run(url, tmp_path, finish_open=True)
    plain = hashlib.sha256(b"+447700900123").hexdigest()[:8]
    ids = set(ProductionStore(tmp_path / "store").read()["conversation_id"])
    assert ids == {f"prod:1:{keyed(tmp_path, '+447700900123')}"}
    assert plain not in next(iter(ids))
    assert summary.conversations_stored == 1
    # stable across imports of the store: with the watermark forgotten, the same events give the same id
    state = ProductionStore(tmp_path / "store").state()
    del state["sources"]["prod"]
    ProductionStore(tmp_path / "store").write_state(state)
    again = run(url, tmp_path, finish_open=True)
    assert (again.conversations_stored, again.conversations_known) == (0, 1)


def test_with_customer_none_the_id_is_still_keyed(url: str, tmp_path: Path) -> None:
    engine = create(url)
    insert(engine, "jo@example.com", [user(T0, "hi"), bot(T0 + 1, "Hello")])
    source = SqlTrackerStore(url)
    import_events(source, settings(tmp_path, customer="none"), name="prod", finish_open=True)
    frame = ProductionStore(tmp_path / "store").read()
    assert list(frame["conversation_id"]) == [f"prod:1:{keyed(tmp_path, 'jo@example.com')}"]
    assert frame["customer"].isna().all()


# F8: one writer at a time ---------------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from harness.records.production import ProductionStore

    with ProductionStore(Path(sys.argv[1])).locked("test holder"):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def held(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Another process holding the store's lock until the test ends; yields its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "store")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def test_an_import_while_another_holds_the_store_refuses_naming_the_holder(url: str, tmp_path: Path, held: int) -> None:
    engine = create(url)
    insert(engine, "a", [user(T0, "hi"), bot(T0 + 1, "Hello")])
    with pytest.raises(InputError) as caught:
        run(url, tmp_path, finish_open=True)
    message = str(caught.value) + " ".join(getattr(caught.value, "problems", []) or [])
    assert "import.lock" in message and f"pid {held} since " in message and "test holder" in message
    assert not list((tmp_path / "store").glob("turns/*/*.parquet"))
    assert ProductionStore(tmp_path / "store").state() == {"sources": {}, "imports": []}
    # the command exits with 2 (bad input) and says why
    result = CliRunner().invoke(
        __import__("harness.cli", fromlist=["app"]).app,
        ["logs", "import", "--tracker-store", url, "--store", str(tmp_path / "store"), "--finish-open"],
    )
    assert result.exit_code == 2
    assert "locked by another import" in result.output


def test_append_while_another_process_holds_the_store_refuses(tmp_path: Path, held: int) -> None:
    row = {
        "conversation_id": "x:1:abc",
        "turn_index": 0,
        "text": "hi",
        "status": "ok",
        "attempts": 1,
        "n_bot_messages": 0,
        "conversation_start": pd.Timestamp(T0, unit="s", tz="UTC"),
        "sent_at": pd.Timestamp(T0, unit="s", tz="UTC"),
    }
    with pytest.raises(InputError, match="locked"):
        ProductionStore(tmp_path / "store").append(to_production_frame([row]), "t1")
    assert not list((tmp_path / "store").glob("turns/*/*.parquet"))


IMPORTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from harness.errors import InputError
    from harness.project.production_config import ProductionSettings
    from harness.sources.transcripts import import_events
    from harness.sources.transcripts.sql_store import SqlTrackerStore

    try:
        summary = import_events(
            SqlTrackerStore(sys.argv[1]), ProductionSettings(store=Path(sys.argv[2])), name="prod", finish_open=True
        )
        print("stored", summary.conversations_stored)
    except InputError as exc:
        print("locked" if "locked" in str(exc) else "error " + str(exc))
    """
)


def test_two_imports_at_once_never_double_the_data(url: str, tmp_path: Path) -> None:
    engine = create(url)
    for n in range(40):  # 40 senders, one conversation of 2 turns each
        insert(engine, f"s{n}", [user(T0 + n, "hi"), bot(T0 + n + 0.5, "Hello"), user(T0 + n + 1, "x")])
    store = tmp_path / "store"
    processes = [
        subprocess.Popen([sys.executable, "-c", IMPORTER, url, str(store)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    outputs = sorted(p.communicate(timeout=300)[0].strip() for p in processes)
    # either one imported and the other found the store locked, or they ran one after the other
    assert outputs in (["locked", "stored 40"], ["stored 0", "stored 40"])
    frame = ProductionStore(store).read()
    assert len(frame) == 80 and not frame.duplicated(["conversation_id", "turn_index"]).any()
    imports = ProductionStore(store).state()["imports"]
    assert [i["conversations_stored"] for i in imports if i["status"] == "ok"] in ([40], [40, 0])
    assert os.path.exists(store / "import.lock")


# F10: tracker JSON arriving late or back-filled -----------------------------------------------------------------


def tracker(sender: str, start: float) -> dict[str, Any]:
    return {"sender_id": sender, "events": [user(start, f"hi from {sender}"), bot(start + 1, "Hello")]}


def test_a_late_json_export_older_than_the_last_import_is_stored(tmp_path: Path) -> None:
    day = 86_400.0
    j1, j2 = tmp_path / "j1", tmp_path / "j2"
    j1.mkdir()
    j2.mkdir()
    (j1 / "a.json").write_text(json.dumps(tracker("a", T0)))
    (j1 / "b.json").write_text(json.dumps(tracker("b", T0 + 60)))
    first = import_events(TrackerJson([j1]), settings(tmp_path), name="j", finish_open=True)
    assert first.conversations_stored == 2
    (j2 / "c.json").write_text(json.dumps(tracker("c", T0 - day)))  # a day before anything imported
    (j2 / "d.json").write_text(json.dumps(tracker("d", T0 + day)))
    second = import_events(TrackerJson([j1, j2]), settings(tmp_path), name="j", finish_open=True)
    assert (second.conversations_stored, second.conversations_known) == (2, 2)
    # a back-filled export of a sender already imported: its older conversation is new
    (tmp_path / "a-old.json").write_text(json.dumps(tracker("a", T0 - 2 * day)))
    third = import_events(TrackerJson([tmp_path / "a-old.json"]), settings(tmp_path), name="j", finish_open=True)
    assert third.conversations_stored == 1
    texts = sorted(ProductionStore(tmp_path / "store").read()["text"])
    assert texts == ["hi from a", "hi from a", "hi from b", "hi from c", "hi from d"]
    # re-reading everything stores nothing again
    again = import_events(TrackerJson([j1, j2, tmp_path / "a-old.json"]), settings(tmp_path), name="j")
    assert (again.conversations_stored, again.conversations_known, again.deferred) == (0, 4, 1)  # d: newest, open


# Clock skew: a bot message logged before the customer message it answers -------------------------------------------


def test_a_bot_message_logged_before_its_customer_message_gives_no_latency_not_a_negative_one(
    url: str, tmp_path: Path
) -> None:
    engine = create(url)
    insert(
        engine,
        "skew",
        [
            user(T0, "what are your opening hours"),
            action(T0 + 0.1, "utter_hours"),
            bot(T0 - 2.0, "We open at 9."),  # logged by a process whose clock is 2 s behind
            user(T0 + 10, "and on sunday"),
            action(T0 + 10.1, "utter_hours"),
            bot(T0 + 10.25, "Closed on Sundays."),
        ],
    )
    run(url, tmp_path, finish_open=True)
    frame = ProductionStore(tmp_path / "store").read().sort_values("turn_index")
    assert frame["latency_ms"].isna().tolist() == [True, False]
    assert frame["latency_ms"].iloc[1] == pytest.approx(250.0, abs=0.01)
