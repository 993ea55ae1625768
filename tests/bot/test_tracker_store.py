"""The bot's tracker store: conversations in an SQL database from one URL, handoff tickets opened once their turn is
stored, and configuration errors that stop the bot at start-up with the reason."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from bankbot.handoff_store import HandoffStore
from bankbot.tracker_store import SQLTrackerStore, TrackerStoreConfigError, sqlite_url
from conftest import BOT_DIR
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(BOT_DIR / "domain"))


def open_store(url: str, domain: Domain) -> SQLTrackerStore:
    """The store as Rasa builds it from bot/endpoints.yml."""
    store = TrackerStore.create(EndpointConfig(url=url, type="bankbot.tracker_store.SQLTrackerStore"))
    assert isinstance(store, SQLTrackerStore)
    store.domain = domain
    return store


def save_turn(store: SQLTrackerStore, domain: Domain, sender: str, text: str, ticket: str | None = None) -> None:
    tracker = asyncio.run(store.retrieve(sender)) or DialogueStateTracker(sender, domain.slots)
    tracker.update(UserUttered(text, {"name": "report_fraud", "confidence": 0.9}))
    if ticket:
        tracker.update(SlotSet("handoff_ticket", ticket))
    asyncio.run(store.save(tracker))


def pending_ticket(conversation: str) -> str:
    return HandoffStore().create_ticket(
        conversation_id=conversation,
        queue="fraud",
        priority="high",
        rule="r",
        summary="s",
        slots={},
        transcript=[],
        status="pending",
    )


def test_the_stored_turn_opens_the_ticket_it_names_and_survives_a_new_store(tmp_path: Path, domain: Domain) -> None:
    url = sqlite_url(tmp_path / "sub" / "tracker.sqlite3")
    store = open_store(url, domain)
    ticket_id = pending_ticket("c1")
    save_turn(store, domain, "c1", "someone took money from my account", ticket_id)
    assert [t.ticket_id for t in HandoffStore().open_tickets()] == [ticket_id]
    again = asyncio.run(open_store(url, domain).retrieve("c1"))
    assert again is not None and again.get_slot("handoff_ticket") == ticket_id
    assert again.latest_message.text == "someone took money from my account"


def test_a_stored_turn_without_the_ticket_deletes_it(tmp_path: Path, domain: Domain) -> None:
    store = open_store(sqlite_url(tmp_path / "tracker.sqlite3"), domain)
    pending_ticket("c1")
    other = pending_ticket("c2")
    save_turn(store, domain, "c1", "fraud!")  # the handoff action's events were lost
    assert HandoffStore().for_conversation("c1") == []
    assert HandoffStore().get(other).status == "pending"


def test_at_start_up_pending_tickets_are_settled_from_the_stored_conversations(tmp_path: Path, domain: Domain) -> None:
    url = sqlite_url(tmp_path / "tracker.sqlite3")
    store = open_store(url, domain)
    # A crash between writing the ticket and storing the turn (c2), and between storing the turn and settling (c3).
    lost = pending_ticket("c2")
    crashed = pending_ticket("c3")
    tracker = DialogueStateTracker("c3", domain.slots)
    tracker.update(SlotSet("handoff_ticket", crashed))
    asyncio.run(super(SQLTrackerStore, store).save(tracker))  # Rasa's save alone: stored, not settled
    assert HandoffStore().get(crashed).status == "pending"
    open_store(url, domain)
    handoffs = HandoffStore()
    assert handoffs.get(lost) is None and handoffs.get(crashed).status == "open"
    assert handoffs.pending_conversations() == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "no tracker store URL: set $TRACKER_STORE_URL"),
        ("not a url", "$TRACKER_STORE_URL is not an SQLAlchemy URL"),
        ("sqlite://", "name a file; an in-memory database forgets everything"),
        (f"postgresql://bot:s3cret@127.0.0.1:{closed_port()}/bot", "cannot connect to the tracker store"),
    ],
)
def test_a_bad_url_stops_the_bot_with_the_reason(url: str, problem: str, domain: Domain) -> None:
    with pytest.raises(TrackerStoreConfigError) as caught:
        open_store(url, domain)
    assert problem in str(caught.value) and "s3cret" not in str(caught.value)


def test_old_probe_conversations_are_deleted_and_customers_kept(tmp_path: Path, domain: Domain) -> None:
    import time

    store = open_store(sqlite_url(tmp_path / "tracker.sqlite3"), domain)
    day = 24 * 3600
    old = time.time() - 2 * day

    def saved(sender: str, at: float) -> None:
        tracker = DialogueStateTracker(sender, domain.slots)
        tracker.update(UserUttered("what's my balance", {"name": "check_balance", "confidence": 0.9}, timestamp=at))
        asyncio.run(store.save(tracker))

    saved("harness-probe:bot:probe-balance:00000001", old)  # two days old: deleted
    saved("customer-1", old)  # a customer's, however old: kept
    saved("harness-probe:bot:probe-balance:00000002", time.time() - 3600)  # an hour old: kept
    saved("harness-probe:bot:probe-balance:00000003", time.time())  # this save prunes
    kept = {sender for sender in asyncio.run(store.keys())}
    assert kept == {
        "customer-1",
        "harness-probe:bot:probe-balance:00000002",
        "harness-probe:bot:probe-balance:00000003",
    }
    # Not again within PRUNE_EVERY_S: one more old probe conversation stays until the next prune.
    saved("harness-probe:bot:probe-balance:00000004", old)
    saved("harness-probe:bot:probe-balance:00000005", time.time())
    assert "harness-probe:bot:probe-balance:00000004" in set(asyncio.run(store.keys()))
    assert store.prune_probes(time.time() - day) == 1
