"""Probe tickets: a harness probe conversation (sender `harness-probe:...`) runs the whole handoff path, but its
ticket has status `probe`, which agents never see and nothing turns open; old probe tickets are pruned."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bankbot.actions.conversation import ActionEscalate
from bankbot.handoff_store import (
    PROBE_TICKET_RETENTION,
    HandoffStore,
    close_duplicates,
    is_probe_conversation,
)
from conftest import tracker
from rasa_sdk.executor import CollectingDispatcher

PROBE_SENDER = "harness-probe:reference-bot:probe-handoff-cards:0a1b2c3d"


def escalate(sender: str, domain: dict, dispatcher: CollectingDispatcher) -> dict[str, Any]:
    """The slots ActionEscalate sets for a customer asking for a person while talking about a missing card."""
    trk = tracker("request_human", "can I speak to someone", slots={"topic": "card_not_arrived"}, sender=sender)
    events = asyncio.run(ActionEscalate().run(dispatcher, trk, domain))
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_the_prefix_marks_probe_conversations_only() -> None:
    assert is_probe_conversation(PROBE_SENDER)
    assert not is_probe_conversation("conv-1")
    assert not is_probe_conversation("my-harness-probe:x")
    assert not is_probe_conversation("")
    assert not is_probe_conversation(None)


def test_a_probe_handoff_runs_the_whole_path_with_a_ticket_no_agent_sees(
    dispatcher: CollectingDispatcher, domain: dict, handoff_db: Path
) -> None:
    slots = escalate(PROBE_SENDER, domain, dispatcher)
    # The handoff is reported as for a customer: queue, rule, ticket and state, and the message names the ticket.
    assert (slots["handoff_queue"], slots["handoff_rule"], slots["conversation_state"]) == (
        "cards",
        "explicit_human_request",
        "handed_off",
    )
    ticket_id = slots["handoff_ticket"]
    (message,) = [m["text"] for m in dispatcher.messages]
    assert ticket_id in message and "Cards team" in message
    store = HandoffStore(handoff_db)
    ticket = store.get(ticket_id)
    assert ticket is not None and (ticket.status, ticket.conversation_id, ticket.queue) == (
        "probe",
        PROBE_SENDER,
        "cards",
    )
    assert store.open_tickets() == [] and store.open_tickets("cards") == []
    assert store.pending_conversations() == []


def test_nothing_turns_a_probe_ticket_open(dispatcher: CollectingDispatcher, domain: dict, handoff_db: Path) -> None:
    ticket_id = escalate(PROBE_SENDER, domain, dispatcher)["handoff_ticket"]
    store = HandoffStore(handoff_db)
    # The tracker store settles after saving the turn; the channel appends later messages to the ticket.
    assert store.settle(PROBE_SENDER, ticket_id) == (False, 0)
    store.append_message(ticket_id, "customer", "hello? anyone there")
    assert store.confirm(ticket_id) is False
    assert close_duplicates(handoff_db) == 0
    ticket = store.get(ticket_id)
    assert ticket is not None and ticket.status == "probe"
    assert ticket.transcript[-1].text == "hello? anyone there"
    assert store.open_tickets() == []


def test_a_customer_handoff_still_waits_pending_then_opens(
    dispatcher: CollectingDispatcher, domain: dict, handoff_db: Path
) -> None:
    ticket_id = escalate("conv-1", domain, dispatcher)["handoff_ticket"]
    store = HandoffStore(handoff_db)
    assert store.get(ticket_id).status == "pending"
    assert store.settle("conv-1", ticket_id) == (True, 0)
    assert [t.ticket_id for t in store.open_tickets()] == [ticket_id]


def test_probe_tickets_are_outside_the_one_live_ticket_rule_and_idempotent(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "t.sqlite3")
    fields: dict[str, Any] = dict(queue="cards", priority="normal", rule="r", summary="s", slots={}, transcript=[])
    first = store.create_ticket(conversation_id=PROBE_SENDER, status="probe", **fields)
    # The same probe conversation handing off again gets its ticket back, as a customer gets their open one.
    assert store.create_ticket(conversation_id=PROBE_SENDER, status="probe", **fields) == first
    # A live (pending) ticket can still be written beside it: the probe ticket holds no place in the unique index.
    pending = store.create_ticket(conversation_id=PROBE_SENDER, status="pending", **fields)
    assert pending != first
    assert sorted(t.status for t in store.for_conversation(PROBE_SENDER)) == ["pending", "probe"]


def test_probe_tickets_older_than_the_retention_go_when_a_new_one_is_written(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    store = HandoffStore(path)
    fields: dict[str, Any] = dict(queue="cards", priority="normal", rule="r", summary="s", slots={})
    old_probe = store.create_ticket(
        conversation_id="harness-probe:t:p:00000001", status="probe", transcript=[("customer", "x")], **fields
    )
    young_probe = store.create_ticket(
        conversation_id="harness-probe:t:p:00000002", status="probe", transcript=[], **fields
    )
    customer = store.create_ticket(conversation_id="conv-1", status="open", transcript=[], **fields)
    now = datetime.now(UTC)
    with sqlite3.connect(path) as db:
        # One second past the retention, one second short of it; the customer ticket as old as the oldest probe.
        stamps = {
            old_probe: now - PROBE_TICKET_RETENTION - timedelta(seconds=1),
            young_probe: now - PROBE_TICKET_RETENTION + timedelta(seconds=60),
            customer: now - PROBE_TICKET_RETENTION - timedelta(seconds=1),
        }
        for ticket_id, stamp in stamps.items():
            db.execute(
                "UPDATE tickets SET created_at = ? WHERE ticket_id = ?",
                (stamp.isoformat(timespec="milliseconds"), ticket_id),
            )
    newest = store.create_ticket(conversation_id="harness-probe:t:p:00000003", status="probe", transcript=[], **fields)
    assert store.get(old_probe) is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM ticket_messages WHERE ticket_id = ?", (old_probe,)).fetchone() == (0,)
    assert {t for t in (young_probe, customer, newest) if store.get(t) is not None} == {young_probe, customer, newest}
