"""The reference bot's own stores: its human-queue ticket file (`bot/var/handoff.sqlite3` or `$HANDOFF_DB`,
bot/bankbot/handoff_store.py) and its Rasa SQL tracker store, found as `harness bot serve` and BotServer place it:
the URL or SQLite path it was served with (`$TRACKER_STORE_URL`), else `<ticket file stem>-tracker.sqlite3` beside
the ticket file (`bot/var/handoff-tracker.sqlite3`), so conversations and their tickets stay together.

The bot hands off in its escalation actions, which set the slots `handoff_queue`, `handoff_rule` and
`handoff_ticket` (bot/bankbot/actions/handoff.py); the ticket id names a row of the ticket file's `tickets` table,
which holds the queue and the escalation rule as the agents saw them. A turn that sets `handoff_ticket` is a
handoff with that ticket; its queue and rule come from the ticket, or from the slots when the ticket is not in
the file.
"""

from __future__ import annotations

import os
import sqlite3
from functools import lru_cache
from pathlib import Path

from harness.bots.reference_bot.server import tracker_store_url
from harness.errors import InputError
from harness.sources.transcripts.rows import TicketLookup

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


def ticket_lookup(path: Path) -> TicketLookup:
    """Ticket id -> (queue, rule) from the ticket file at `path`, read-only (the bot may be writing to it).

    Raises InputError when the file does not exist or has no `tickets` table."""
    if not path.is_file():
        raise InputError(
            "no handoff ticket file",
            [f"{path}: no such file; give the bot's ticket file with --handoff-db (default {DEFAULT_TICKETS})"],
        )
    connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("SELECT ticket_id, queue, rule FROM tickets LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        connection.close()
        raise InputError(
            "not a handoff ticket file", [f"{path}: {exc} (expected bot/bankbot/handoff_store.py's `tickets` table)"]
        ) from None

    @lru_cache(maxsize=65536)
    def lookup(ticket_id: str) -> tuple[str | None, str | None] | None:
        row = connection.execute("SELECT queue, rule FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None

    return lookup
