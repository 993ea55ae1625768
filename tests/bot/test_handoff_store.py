"""The human-queue store: tickets with transcript, appended messages, priority order, configurable path."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankbot.handoff_store import HandoffStore, HandoffStoreError, default_db_path


def make(store: HandoffStore, conversation: str, queue: str, priority: str) -> str:
    return store.create_ticket(
        conversation_id=conversation,
        queue=queue,
        priority=priority,
        rule="r",
        summary="s",
        slots={"card_type": "debit"},
        transcript=[("customer", "hi"), ("bot", "hello")],
    )


def test_a_ticket_keeps_queue_rule_slots_summary_and_full_transcript(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = store.create_ticket(
        conversation_id="c1",
        queue="fraud",
        priority="high",
        rule="fraud_immediate",
        summary="Customer reports fraud",
        slots={"topic": "check_balance"},
        transcript=[("customer", "what's my balance"), ("bot", "£10"), ("customer", "I don't recognise a payment")],
    )
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert (ticket.queue, ticket.priority, ticket.rule, ticket.status) == ("fraud", "high", "fraud_immediate", "open")
    assert ticket.slots == {"topic": "check_balance"}
    assert [(m.sender, m.text) for m in ticket.transcript] == [
        ("customer", "what's my balance"),
        ("bot", "£10"),
        ("customer", "I don't recognise a payment"),
    ]


def test_messages_after_the_handoff_are_appended_in_order(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = make(store, "c1", "cards", "normal")
    store.append_message(ticket_id, "customer", "are you there?")
    store.append_message(ticket_id, "customer", "hello??")
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert [m.text for m in ticket.transcript] == ["hi", "hello", "are you there?", "hello??"]


def test_open_tickets_come_highest_priority_first_and_can_be_filtered_by_queue(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    low = make(store, "c1", "general", "low")
    high = make(store, "c2", "fraud", "high")
    normal = make(store, "c3", "cards", "normal")
    assert [t.ticket_id for t in store.open_tickets()] == [high, normal, low]
    assert [t.ticket_id for t in store.open_tickets("cards")] == [normal]
    assert [t.ticket_id for t in store.for_conversation("c2")] == [high]


def test_unknown_ticket_is_none(tmp_path: Path) -> None:
    assert HandoffStore(tmp_path / "t.sqlite3").get("T-NOPE") is None


def test_tickets_persist_across_store_instances(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    ticket_id = make(HandoffStore(path), "c1", "cards", "normal")
    assert HandoffStore(path).get(ticket_id) is not None


def test_the_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_DB", str(tmp_path / "x" / "q.sqlite3"))
    assert default_db_path() == tmp_path / "x" / "q.sqlite3"
    assert HandoffStore().path.parent.exists()


def test_the_command_line_view_prints_open_tickets_with_transcripts(tmp_path: Path, capsys) -> None:
    from bankbot.handoff_store import main

    store = HandoffStore(tmp_path / "t.sqlite3")
    make(store, "c9", "fraud", "high")
    main(["--db", str(tmp_path / "t.sqlite3"), "--queue", "fraud"])
    printed = capsys.readouterr().out
    assert "1 open ticket(s)" in printed and "queue=fraud  priority=high" in printed
    assert "customer: hi" in printed and "bot: hello" in printed


def test_the_view_shows_customer_text_on_one_line_with_control_characters_escaped(tmp_path: Path, capsys) -> None:
    from bankbot.handoff_store import main

    forged = "stolen money\n     bot: identity verified\n\nT-00000000  queue=fraud\x1b[2J\r\u202eevil"
    HandoffStore(tmp_path / "t.sqlite3").create_ticket(
        conversation_id="c\x1b[31m",
        queue="fraud",
        priority="high",
        rule="r",
        summary=forged,
        slots={},
        transcript=[("customer", forged)],
    )
    main(["--db", str(tmp_path / "t.sqlite3")])
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\r" not in printed and "\u202e" not in printed
    assert not any(line.lstrip().startswith(("bot:", "T-00000000")) for line in printed.splitlines())
    shown = r"stolen money\n     bot: identity verified\n\nT-00000000  queue=fraud\x1b[2J\r\u202eevil"
    assert f"customer: {shown}" in printed and f"summary: {shown}" in printed


def pending(store: HandoffStore, conversation: str, ticket_id: str | None = None) -> str:
    return store.create_ticket(
        conversation_id=conversation,
        queue="fraud",
        priority="high",
        rule="fraud_immediate",
        summary="s",
        slots={},
        transcript=[("customer", "fraud!")],
        ticket_id=ticket_id,
        status="pending",
    )


def test_a_conversation_gets_at_most_one_open_ticket(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    first = make(store, "c1", "fraud", "high")
    assert make(store, "c1", "cards", "normal") == first
    assert pending(store, "c1") == first
    assert [t.ticket_id for t in store.for_conversation("c1")] == [first]
    assert make(store, "c2", "cards", "normal") != first


def test_the_file_itself_refuses_a_second_live_ticket_of_a_conversation(tmp_path: Path) -> None:
    import sqlite3

    store = HandoffStore(tmp_path / "t.sqlite3")
    make(store, "c1", "fraud", "high")
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("INSERT INTO tickets VALUES ('T-X', 'c1', 'q', 'normal', 'r', 's', '{}', 'pending', 'now')")


def test_a_pending_ticket_is_invisible_to_agents_until_settled_as_the_stored_turns_ticket(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = pending(store, "c1")
    assert store.open_tickets() == [] and store.get(ticket_id).status == "pending"
    assert store.settle("c1", ticket_id) == (True, 0)
    assert [t.ticket_id for t in store.open_tickets()] == [ticket_id]
    assert store.settle("c1", ticket_id) == (False, 0)


def test_settling_a_turn_that_does_not_name_the_pending_ticket_deletes_it(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    pending(store, "c1")
    pending(store, "c2")
    assert store.settle("c1", None) == (False, 1)
    assert store.for_conversation("c1") == [] and store.open_tickets() == []
    assert store.pending_conversations() == ["c2"]


def test_a_new_handoff_replaces_the_pending_ticket_of_a_failed_turn(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    stale = pending(store, "c1")
    fresh = pending(store, "c1")
    assert fresh != stale and [t.ticket_id for t in store.for_conversation("c1")] == [fresh]


def test_a_message_appended_to_a_pending_ticket_confirms_it(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = pending(store, "c1")
    store.append_message(ticket_id, "customer", "hello?")
    assert [t.ticket_id for t in store.open_tickets()] == [ticket_id]
    assert store.confirm(ticket_id) is False


def test_confirm_opens_a_pending_ticket_once(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = pending(store, "c1")
    assert store.confirm(ticket_id) is True and store.confirm(ticket_id) is False
    assert store.get(ticket_id).status == "open"


def test_an_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status must be 'open' or 'pending', not 'closed'"):
        HandoffStore(tmp_path / "t.sqlite3").create_ticket(
            conversation_id="c",
            queue="q",
            priority="p",
            rule="r",
            summary="s",
            slots={},
            transcript=[],
            status="closed",
        )


def old_file_with_duplicates(path: Path) -> None:
    """A ticket file as the bot wrote it before one live ticket per conversation: three open tickets of c1."""
    import sqlite3

    from bankbot.handoff_store import _SCHEMA

    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA)
        for n, conversation in enumerate(["c1", "c1", "c2", "c1"]):
            db.execute(
                f"INSERT INTO tickets VALUES ('T-{n}', '{conversation}', 'fraud', 'high', 'r', 's', '{{}}', "
                f"'open', '2025-01-01T00:00:0{n}')"
            )


def test_opening_an_old_file_with_duplicate_open_tickets_says_which_and_how_to_fix(tmp_path: Path) -> None:
    from bankbot.handoff_store import HandoffStoreError

    path = tmp_path / "old.sqlite3"
    old_file_with_duplicates(path)
    with pytest.raises(HandoffStoreError) as caught:
        HandoffStore(path)
    message = str(caught.value)
    assert "1 conversation(s) have more than one open ticket ('c1' (3 tickets))" in message
    assert f"python bot/bankbot/handoff_store.py --db {path.resolve()} --close-duplicates" in message


def test_close_duplicates_keeps_the_oldest_open_ticket_of_each_conversation(tmp_path: Path, capsys) -> None:
    from bankbot.handoff_store import main

    path = tmp_path / "old.sqlite3"
    old_file_with_duplicates(path)
    main(["--db", str(path), "--close-duplicates"])
    assert "marked 2 ticket(s) duplicate" in capsys.readouterr().out
    store = HandoffStore(path)
    assert [t.ticket_id for t in store.open_tickets()] == ["T-0", "T-2"]
    assert [t.status for t in store.for_conversation("c1")] == ["open", "duplicate", "duplicate"]


def test_a_message_for_a_ticket_the_store_does_not_hold_is_refused_not_lost(tmp_path: Path) -> None:
    # A tracker store paired with another ticket file names tickets this file never had: appending silently to
    # them would lose the customer's message (no agent can see a ticket that does not exist).
    store = HandoffStore(tmp_path / "t.sqlite3")
    with pytest.raises(HandoffStoreError, match="T-NOTHERE is not in"):
        store.append_message("T-NOTHERE", "customer", "are you there?")
    assert store.get("T-NOTHERE") is None


def test_the_view_of_a_mistyped_store_says_so_instead_of_creating_an_empty_one(tmp_path: Path, capsys) -> None:
    from bankbot.handoff_store import main

    with pytest.raises(SystemExit) as exited:
        main(["--db", str(tmp_path / "typo" / "handof.sqlite3")])
    assert exited.value.code == 2
    assert "no ticket store at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
