"""The human-queue store: tickets with transcript, appended messages, priority order, configurable path."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankbot.handoff_store import HandoffStore, default_db_path


def make(store: HandoffStore, conversation: str, queue: str, priority: str) -> str:
    return store.create_ticket(
        conversation_id=conversation, queue=queue, priority=priority, rule="r", summary="s",
        slots={"card_type": "debit"}, transcript=[("customer", "hi"), ("bot", "hello")],
    )


def test_a_ticket_keeps_queue_rule_slots_summary_and_full_transcript(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    ticket_id = store.create_ticket(
        conversation_id="c1", queue="fraud", priority="high", rule="fraud_immediate", summary="Customer reports fraud",
        slots={"topic": "check_balance"},
        transcript=[("customer", "what's my balance"), ("bot", "£10"), ("customer", "I don't recognise a payment")],
    )
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert (ticket.queue, ticket.priority, ticket.rule, ticket.status) == ("fraud", "high", "fraud_immediate", "open")
    assert ticket.slots == {"topic": "check_balance"}
    assert [(m.sender, m.text) for m in ticket.transcript] == [
        ("customer", "what's my balance"), ("bot", "£10"), ("customer", "I don't recognise a payment"),
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
