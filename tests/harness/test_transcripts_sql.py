"""`harness logs import` from a Rasa SQL tracker store: rows, incremental imports, splitting, handoffs, masking,
malformed events, a failing import, PostgreSQL. Every expected figure is worked out by hand from the events."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from postgres_server import create_database, postgres  # noqa: F401 - postgres is a fixture
from transcripts_world import EVENTS, FIXTURES, T0, action, bot, create, insert, session, slot, user

from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore
from harness.sources.transcripts import import_events
from harness.sources.transcripts import importer as importer_module
from harness.sources.transcripts.sql_store import SqlTrackerStore


def settings(tmp_path: Path, **changes: object) -> ProductionSettings:
    return ProductionSettings(store=tmp_path / "store", **changes)  # type: ignore[arg-type]


def run(url: str, tmp_path: Path, **kwargs: object) -> importer_module.ImportSummary:
    source = SqlTrackerStore(url)
    try:
        return import_events(source, settings(tmp_path), name="prod", **kwargs)  # type: ignore[arg-type]
    finally:
        source.close()


def sha8(sender: str, tmp_path: Path) -> str:
    """The conversation id's suffix: HMAC-SHA256 keyed with the store's secret, 8 hex digits."""
    secret = (tmp_path / "store" / "secret").read_text().strip().encode()
    return hmac.new(secret, sender.encode(), hashlib.sha256).hexdigest()[:8]


def alice_and_bob(engine: sa.Engine) -> None:
    insert(
        engine,
        "alice@example.com",
        [
            *session(T0),  # ids 1-3
            user(T0 + 1, "hi"),  # 4
            action(T0 + 1.2, "utter_greet"),  # 5
            bot(T0 + 1.5, "Hello! How can I help?"),  # 6
            action(T0 + 1.5, "action_listen"),  # 7
            user(T0 + 60, "card 4111 1111 1111 1111 lost, mail jo.smith@example.com", "card_lost", 0.75),  # 8
            slot(T0 + 60.1, "email", "jo.smith@example.com"),  # 9
            action(T0 + 60.1, "utter_card_blocked"),  # 10
            bot(T0 + 60.25, "Card 4111 1111 1111 1111 is blocked."),  # 11
            action(T0 + 60.25, "action_listen"),  # 12
        ],
    )
    insert(engine, "bob", [user(T0 + 10_000, "hello"), bot(T0 + 10_000.25, "Hi Bob")])  # 13, 14


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.sqlite3'}"


def test_a_finished_conversation_becomes_masked_rows_and_an_open_one_waits(sqlite_url: str, tmp_path: Path) -> None:
    alice_and_bob(create(sqlite_url))
    summary = run(sqlite_url, tmp_path)
    # alice's last event (T0+60.25) is 9939.75 s before the newest (bob's T0+10000.25) > 1800: finished by timeout;
    # bob's last event is the newest: deferred.
    assert (summary.events_read, summary.conversations_stored, summary.turns_stored, summary.deferred) == (14, 1, 2, 1)
    assert summary.skipped == {} and summary.status == "ok"
    frame = ProductionStore(tmp_path / "store").read().sort_values("turn_index")
    assert list(frame["conversation_id"].unique()) == [f"prod:1:{sha8('alice@example.com', tmp_path)}"]
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["text"] == "hi" and json.loads(first["bot_messages"]) == ["Hello! How can I help?"]
    assert first["status"] == "ok" and first["intent"] == "greet" and first["confidence"] == pytest.approx(0.9)
    assert json.loads(first["actions"]) == ["utter_greet"] and first["model"] == "m1"
    assert first["latency_ms"] == pytest.approx(500.0)  # bot at T0+1.5, user at T0+1
    assert bool(first["awaiting_reply"]) is True  # ends with "?"
    assert bool(second["awaiting_reply"]) is False
    assert second["latency_ms"] == pytest.approx(250.0)
    assert first["sent_at"] == datetime.fromtimestamp(T0 + 1, UTC)
    assert second["conversation_start"] == datetime.fromtimestamp(T0 + 1, UTC)
    assert set(frame["ended_by"]) == {"timeout"} and set(frame["source"]) == {"prod"}
    assert frame["sender_id"].isna().all() and frame["run_id"].isna().all() and frame["expected_intent"].isna().all()
    customer = first["customer"]
    assert len(customer) == 16 and customer != "alice@example.com"
    assert frame["day"].iloc[0] == datetime.fromtimestamp(T0 + 1, UTC).date().isoformat()
    assert oct((tmp_path / "store" / "secret").stat().st_mode & 0o777) == "0o600"
    log = ProductionStore(tmp_path / "store").state()
    assert log["sources"]["prod"]["watermark"] == 14 and log["imports"][-1]["conversations_stored"] == 1


def test_personal_data_is_masked_before_it_is_stored(sqlite_url: str, tmp_path: Path) -> None:
    alice_and_bob(create(sqlite_url))
    run(sqlite_url, tmp_path)
    store = ProductionStore(tmp_path / "store")
    secrets_ = ["4111 1111 1111 1111", "jo.smith@example.com", "alice@example.com"]
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file() and path.name != "secret":
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets_), path
    for path in store.files():
        values = json.dumps(pq.read_table(path).to_pylist(), default=str)
        assert not any(s in values for s in secrets_)
    frame = store.read().sort_values("turn_index")
    assert "[card number]" in frame.iloc[1]["text"] and "[email]" in frame.iloc[1]["text"]
    assert json.loads(frame.iloc[1]["bot_messages"]) == ["Card [card number] is blocked."]
    assert json.loads(frame.iloc[1]["slots_set"]) == {"email": "[email]"}


def test_incremental_imports_read_only_new_events_and_store_nothing_twice(sqlite_url: str, tmp_path: Path) -> None:
    engine = create(sqlite_url)
    alice_and_bob(engine)
    assert run(sqlite_url, tmp_path).conversations_stored == 1
    again = run(sqlite_url, tmp_path)  # nothing new: only bob's deferred events are read again
    assert (again.events_read, again.conversations_stored, again.deferred) == (2, 0, 1)
    # bob writes 1799.75 s after his bot's last message (<= 30 min: same conversation, spanning the two imports),
    # then carol arrives much later, which finishes bob's conversation.
    insert(engine, "bob", [user(T0 + 11_800, "still there?"), bot(T0 + 11_800.5, "Yes")])  # 15, 16
    insert(engine, "carol", [user(T0 + 20_000, "hey"), bot(T0 + 20_000.1, "Hi")])  # 17, 18
    third = run(sqlite_url, tmp_path)
    assert (third.events_read, third.conversations_stored, third.turns_stored, third.deferred) == (6, 1, 2, 1)
    fourth = run(sqlite_url, tmp_path)
    assert (fourth.events_read, fourth.conversations_stored) == (2, 0)
    frame = ProductionStore(tmp_path / "store").read()
    assert sorted(frame["conversation_id"].unique()) == sorted(
        [f"prod:1:{sha8('alice@example.com', tmp_path)}", f"prod:13:{sha8('bob', tmp_path)}"]
    )
    bob = frame[frame["conversation_id"] == f"prod:13:{sha8('bob', tmp_path)}"].sort_values("turn_index")
    assert list(bob["text"]) == ["hello", "still there?"]
    assert not frame.duplicated(["conversation_id", "turn_index"]).any()
    assert len(ProductionStore(tmp_path / "store").state()["imports"]) == 4


def test_a_handoff_ends_the_bots_part_and_later_messages_are_silenced(sqlite_url: str, tmp_path: Path) -> None:
    engine = create(sqlite_url)
    insert(
        engine,
        "dave",
        [
            user(T0, "I need billing help", "billing_question"),  # 1
            slot(T0 + 0.05, "handoff_to", "billing_team"),  # 2
            action(T0 + 0.1, "action_handoff"),  # 3
            bot(T0 + 0.2, "Passing you to our billing team."),  # 4
            user(T0 + 60, "hello?"),  # 5: to the human
            user(T0 + 60 + 1800.5, "new question", "ask"),  # 6: 1800.5 s after the last message > 30 min
            bot(T0 + 1861, "Sure."),  # 7
        ],
    )
    insert(engine, "zed", [user(T0 + 100_000, "x")])  # 8: finishes dave's conversations
    mapping = FIXTURES / "handoff.yml"
    source = SqlTrackerStore(sqlite_url)
    summary = import_events(source, settings(tmp_path, handoff_mapping=mapping), name="prod")
    assert (summary.conversations_stored, summary.deferred) == (2, 1)
    frame = ProductionStore(tmp_path / "store").read()
    handed = frame[frame["conversation_id"] == f"prod:1:{sha8('dave', tmp_path)}"].sort_values("turn_index")
    assert list(handed["status"]) == ["ok", "silenced"]
    assert list(handed["handoff_queue"].fillna("-")) == ["billing", "-"]
    assert list(handed["handoff_rule"].fillna("-")) == ["bot_handoff", "-"]
    assert list(handed["state"]) == ["handed_off", "handed_off"] and set(handed["ended_by"]) == {"handoff"}
    assert handed.iloc[1]["latency_ms"] != handed.iloc[1]["latency_ms"]  # NaN: the bot said nothing
    later = frame[frame["conversation_id"] == f"prod:6:{sha8('dave', tmp_path)}"]
    assert list(later["text"]) == ["new question"] and list(later["ended_by"]) == ["timeout"]
    assert list(later["state"]) == ["active"]


def test_sessions_and_restarts_split_conversations(sqlite_url: str, tmp_path: Path) -> None:
    engine = create(sqlite_url)
    insert(
        engine,
        "erin",
        [
            *session(T0),  # 1-3
            user(T0 + 1, "hi"),  # 4
            bot(T0 + 2, "Hello"),  # 5
            *session(T0 + 120),  # 6-8: a new session 2 minutes later (well within the timeout)
            user(T0 + 121, "again"),  # 9
            bot(T0 + 122, "Hello again"),  # 10
            user(T0 + 130, "/restart", "restart"),  # 11
            action(T0 + 130, "action_restart"),  # 12
            {"event": "restart", "timestamp": T0 + 130},  # 13
            user(T0 + 140, "hi", "greet"),  # 14
            bot(T0 + 141, "Hello"),  # 15
        ],
    )
    insert(engine, "zed", [user(T0 + 100_000, "x")])
    summary = run(sqlite_url, tmp_path)
    assert summary.conversations_stored == 3
    frame = ProductionStore(tmp_path / "store").read()
    ended = frame.groupby("conversation_id")["ended_by"].first().to_dict()
    turns = frame.groupby("conversation_id")["turn_index"].count().to_dict()
    erin = sha8("erin", tmp_path)
    assert ended == {f"prod:1:{erin}": "session_start", f"prod:6:{erin}": "restart", f"prod:14:{erin}": "timeout"}
    assert turns == {f"prod:1:{erin}": 1, f"prod:6:{erin}": 2, f"prod:14:{erin}": 1}


def test_malformed_events_are_reported_with_their_row_and_skipped(sqlite_url: str, tmp_path: Path) -> None:
    engine = create(sqlite_url)
    insert(
        engine,
        "mal",
        [
            ("user", T0, "{not json"),  # 1
            ("bot", None, json.dumps({"event": "bot", "text": "x"})),  # 2: no timestamp anywhere
            ("flow_started", T0 + 1, json.dumps({"event": "flow_started", "timestamp": T0 + 1})),  # 3
            ("", T0 + 2, json.dumps({"timestamp": T0 + 2})),  # 4: no type
        ],
    )
    insert(engine, "mal2", [bot(T0 + 3, "Welcome!"), user(T0 + 4, "hi"), bot(T0 + 4.5, "Hello")])  # 5, 6, 7
    insert(engine, "zz", [user(T0 + 100_000, "x")])  # 8
    summary = run(sqlite_url, tmp_path)
    # The welcome before mal2's first customer message (5) is normal: counted, not reported as malformed.
    assert summary.skipped == {"bad_json": 1, "no_timestamp": 1, "no_type": 1, "unknown_type": 1}
    assert summary.welcome_messages == 1
    shown = "\n".join(summary.problems)
    for position in ("events.id=1: ", "events.id=2: ", "events.id=3: ", "events.id=4: "):
        assert position in shown
    assert "events.id=5: " not in shown
    assert "flow_started" in shown and "Welcome" not in shown  # no customer or bot text in the report
    assert summary.conversations_stored == 1
    frame = ProductionStore(tmp_path / "store").read()
    assert list(frame["text"]) == ["hi"] and json.loads(frame.iloc[0]["bot_messages"]) == ["Hello"]
    # reported once: a second import does not report them again
    assert run(sqlite_url, tmp_path).skipped == {}


def test_a_welcome_message_on_session_start_is_counted_and_in_no_turn(sqlite_url: str, tmp_path: Path) -> None:
    """Rasa bots commonly greet on session start, before the customer writes: not malformed, and not part of the
    first turn (its latency is the reply's, 2.5 s - 2 s = 500 ms, not the welcome's)."""
    engine = create(sqlite_url)
    insert(
        engine,
        "wel",
        [
            *session(T0),  # 1-3
            bot(T0 + 0.5, "Welcome to Northbank! How can I help?"),  # 4: the welcome
            user(T0 + 2, "balance please", "check_balance"),  # 5
            bot(T0 + 2.5, "Your balance is shown in the app."),  # 6
        ],
    )
    insert(engine, "silent", [*session(T0 + 5), bot(T0 + 5.5, "Welcome to Northbank!")])  # 7-10: never wrote
    summary = run(sqlite_url, tmp_path, finish_open=True)
    assert summary.skipped == {} and summary.problems == ()
    assert summary.welcome_messages == 2
    assert summary.conversations_stored == 1 and summary.turns_stored == 1
    frame = ProductionStore(tmp_path / "store").read()
    assert json.loads(frame.iloc[0]["bot_messages"]) == ["Your balance is shown in the app."]
    assert frame.iloc[0]["n_bot_messages"] == 1 and frame.iloc[0]["latency_ms"] == pytest.approx(500.0)


def test_a_failing_import_loses_nothing_and_the_next_one_completes(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create(sqlite_url)
    insert(engine, "a", [user(T0, "one"), bot(T0 + 1, "1")])  # 1, 2
    insert(engine, "b", [user(T0 + 5000, "two"), bot(T0 + 5001, "2")])  # 3, 4
    insert(engine, "c", [user(T0 + 100_000, "three")])  # 5 (open)
    real = importer_module.conversation_rows

    def failing(segment, *args, **kwargs):  # type: ignore[no-untyped-def]
        if segment.events[0].sender == "b":
            raise OSError("disk full")
        return real(segment, *args, **kwargs)

    monkeypatch.setattr(importer_module, "conversation_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        run(sqlite_url, tmp_path, chunk_turns=1)
    store = ProductionStore(tmp_path / "store")
    state = store.state()
    assert state["imports"][-1]["status"] == "failed" and "disk full" in state["imports"][-1]["error"]
    assert "prod" not in state["sources"]  # the watermark did not move
    assert list(store.read()["text"]) == ["one"]  # appended before the failure: kept
    monkeypatch.setattr(importer_module, "conversation_rows", real)
    summary = run(sqlite_url, tmp_path, chunk_turns=1)
    assert (summary.conversations_stored, summary.conversations_known, summary.deferred) == (1, 1, 1)
    assert sorted(store.read()["text"]) == ["one", "two"]


def test_the_reader_takes_rasas_own_table_layout(tmp_path: Path) -> None:
    """The table Rasa 3.6's SQLTrackerStore creates (columns captured in the fixture from the real class)."""
    schema = json.loads((FIXTURES / "rasa_events_schema.json").read_text())
    columns = [(c["name"], c["type"], c["nullable"], c["primary_key"]) for c in schema["columns"]]
    ours = [(c.name, str(c.type), c.nullable, c.primary_key) for c in EVENTS.columns]
    assert ours == columns  # the test helper writes what Rasa writes
    url = f"sqlite:///{tmp_path / 'rasa.db'}"
    engine = sa.create_engine(url)
    ddl = ", ".join(
        f"{n} {t}{' PRIMARY KEY' if pk else ''}{' NOT NULL' if not null and not pk else ''}"
        for n, t, null, pk in columns
    )
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE events ({ddl})"))
    insert(engine, "s", [user(T0, "hi"), bot(T0 + 1, "Hello")])
    insert(engine, "t", [user(T0 + 9000, "x")])
    assert run(url, tmp_path).conversations_stored == 1


def test_not_a_tracker_store_is_bad_input(tmp_path: Path) -> None:
    from harness.errors import InputError

    with pytest.raises(InputError, match="no such SQLite file"):
        SqlTrackerStore(f"sqlite:///{tmp_path / 'missing.db'}")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE other (x int)"))
    with pytest.raises(InputError, match="no `events` table"):
        SqlTrackerStore(f"sqlite:///{tmp_path / 'other.db'}")


def test_postgresql_tracker_store(postgres: str, tmp_path: Path) -> None:  # noqa: F811
    url = create_database(postgres, "tracker")
    engine = create(url.replace("postgresql://", "postgresql+psycopg://"))
    alice_and_bob(engine)
    summary = run(url, tmp_path)
    assert (summary.events_read, summary.conversations_stored, summary.deferred) == (14, 1, 1)
    insert(engine, "bob", [user(T0 + 11_800, "still there?"), bot(T0 + 11_800.5, "Yes")])
    insert(engine, "carol", [user(T0 + 20_000, "hey")])
    assert run(url, tmp_path).conversations_stored == 1
    frame = ProductionStore(tmp_path / "store").read()
    assert frame.groupby("conversation_id")["turn_index"].count().to_dict() == {
        f"prod:1:{sha8('alice@example.com', tmp_path)}": 2,
        f"prod:13:{sha8('bob', tmp_path)}": 2,
    }
    assert timedelta(0) < frame["sent_at"].max() - frame["sent_at"].min()
