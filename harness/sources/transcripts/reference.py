"""The reference bot's own stores: its human-queue ticket file (`bot/var/handoff.sqlite3` or `$HANDOFF_DB`,
bot/bankbot/handoff_store.py) and its Rasa SQL tracker store, found as `harness bot serve` and BotServer place it:
the URL or SQLite path it was served with (`$TRACKER_STORE_URL`), else `<ticket file stem>-tracker.sqlite3` beside
the ticket file (`bot/var/handoff-tracker.sqlite3`), so conversations and their tickets stay together.

The bot hands off in its escalation actions, which set the slots `handoff_queue`, `handoff_rule` and
`handoff_ticket` (bot/bankbot/actions/handoff.py); the ticket id names a row of the ticket file's `tickets` table,
which holds the queue and the escalation rule as the agents saw them. A turn that sets `handoff_ticket` is a
handoff with that ticket; its queue and rule come from the ticket, or from the slots when the ticket is not in
the file. The customer's messages after the handoff never reach Rasa (the channel appends them to the ticket's
`ticket_messages`); the ticket file gives them back (`TicketFile.customer_messages`) and the rows add them as
`silenced` turns (rows.silenced_messages).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from harness.bots.reference_bot.server import tracker_store_url
from harness.errors import InputError
from harness.sources.transcripts.rows import TicketMessage

DEFAULT_TICKETS = Path("bot/var/handoff.sqlite3")
DEFAULT_MAPPING = Path("bot/handoff.yml")
TICKETS_ENV = "HANDOFF_DB"
TRACKER_ENV = "TRACKER_STORE_URL"


def reference_tickets(root: Path, path: Path | None = None) -> Path:
    """The ticket file: `path`, else `$HANDOFF_DB`, else bot/var/handoff.sqlite3 under `root`."""
    return Path(path or os.environ.get(TICKETS_ENV) or root / DEFAULT_TICKETS)


def reference_tracker_url(tickets: Path, location: str | None = None) -> str:
    """The tracker store's SQLAlchemy URL: `location` (a URL, or an SQLite file's path), else `$TRACKER_STORE_URL`,
    else `<tickets stem>-tracker.sqlite3` beside the ticket file (BotServer.tracker_store_url's default)."""
    return tracker_store_url(
        location or os.environ.get(TRACKER_ENV) or tickets.with_name(f"{tickets.stem}-tracker.sqlite3")
    )


class TicketFile:
    """The reference bot's ticket file, read-only (the bot may be writing to it): a `rows.TicketTranscripts`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection
        self.unreadable = 0
        """Customer messages skipped because their `sent_at` is not an ISO 8601 time."""
        self._lookup = lru_cache(maxsize=65536)(self._queue_and_rule)

    def __call__(self, ticket_id: str) -> tuple[str | None, str | None] | None:
        """(queue, rule) of the ticket, or None when the file does not hold it."""
        return self._lookup(ticket_id)

    def _queue_and_rule(self, ticket_id: str) -> tuple[str | None, str | None] | None:
        row = self._connection.execute("SELECT queue, rule FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None

    def customer_messages(self, ticket_id: str) -> list[TicketMessage]:
        """The ticket's `customer` messages as (sent_at in seconds since the epoch, text), in `seq` order ([] for an
        unknown ticket). `sent_at` is ISO 8601 text as handoff_store writes it (UTC, milliseconds); a time without
        an offset is read as UTC; a message whose time cannot be read is skipped and counted in `unreadable`."""
        rows = self._connection.execute(
            "SELECT text, sent_at FROM ticket_messages WHERE ticket_id = ? AND sender = 'customer' ORDER BY seq",
            (ticket_id,),
        ).fetchall()
        found: list[TicketMessage] = []
        for text, sent_at in rows:
            seconds = _seconds(sent_at)
            if seconds is None:
                self.unreadable += 1
                continue
            found.append((seconds, str(text)))
        return found


def _seconds(stamp: object) -> float | None:
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def ticket_lookup(path: Path) -> TicketFile:
    """The ticket file at `path` (bot/bankbot/handoff_store.py's `tickets` and `ticket_messages` tables), opened
    read-only: ticket id -> (queue, rule), and each ticket's customer messages.

    Raises InputError when the file does not exist or lacks either table."""
    if not path.is_file():
        raise InputError(
            "no handoff ticket file",
            [f"{path}: no such file; give the bot's ticket file with --handoff-db (default {DEFAULT_TICKETS})"],
        )
    connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("SELECT ticket_id, queue, rule FROM tickets LIMIT 1").fetchall()
        connection.execute("SELECT ticket_id, seq, sender, text, sent_at FROM ticket_messages LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        connection.close()
        raise InputError(
            "not a handoff ticket file",
            [
                f"{path}: {exc} (expected bot/bankbot/handoff_store.py's `tickets` and `ticket_messages` tables; "
                "open the file once with that version of the bot's HandoffStore to create them)"
            ],
        ) from None
    return TicketFile(path, connection)
