"""The human-queue store: handoff tickets that human agents pick up, in a SQLite file.

A ticket carries everything the agent needs so the customer never repeats themselves: queue, priority, the
escalation rule that fired, a short summary, the slots and the full transcript. Messages the customer sends
after the handoff are appended to the ticket's transcript. Standard library only, so the action server, the
reference channel, the harness and the tests share it. Several processes write to one file; WAL mode and a
busy timeout keep that safe.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_PATH_ENV = "HANDOFF_DB"
DEFAULT_DB_PATH = Path(__file__).resolve().parent.parent / "var" / "handoff.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id       TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    queue           TEXT NOT NULL,
    priority        TEXT NOT NULL,
    rule            TEXT NOT NULL,
    summary         TEXT NOT NULL,
    slots_json      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_by_conversation ON tickets (conversation_id);
CREATE TABLE IF NOT EXISTS ticket_messages (
    ticket_id TEXT NOT NULL REFERENCES tickets (ticket_id),
    seq       INTEGER NOT NULL,
    sender    TEXT NOT NULL CHECK (sender IN ('customer', 'bot')),
    text      TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
"""


@dataclass(frozen=True)
class Message:
    sender: str
    """`customer` or `bot`."""
    text: str
    sent_at: str
    """ISO 8601 UTC timestamp."""


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    conversation_id: str
    queue: str
    priority: str
    rule: str
    """Name of the escalation rule that created the ticket."""
    summary: str
    slots: dict[str, Any]
    status: str
    created_at: str
    transcript: tuple[Message, ...] = field(default=())


def new_ticket_id() -> str:
    """A fresh ticket id, such as T-3F2A9C01B7DE."""
    return "T-" + uuid.uuid4().hex[:12].upper()


def default_db_path() -> Path:
    """The store's file: $HANDOFF_DB if set, else bot/var/handoff.sqlite3."""
    return Path(os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH)


class HandoffStore:
    """Tickets in one SQLite file; every method opens its own short connection (safe across processes)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def create_ticket(
        self,
        *,
        conversation_id: str,
        queue: str,
        priority: str,
        rule: str,
        summary: str,
        slots: dict[str, Any],
        transcript: Iterable[tuple[str, str]],
        ticket_id: str | None = None,
    ) -> str:
        """Store a new open ticket with its transcript of (sender, text) pairs; returns the ticket id."""
        ticket_id = ticket_id or new_ticket_id()
        now = _now()
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (ticket_id, conversation_id, queue, priority, rule, summary, json.dumps(slots, sort_keys=True), now),
            )
            db.executemany(
                "INSERT INTO ticket_messages VALUES (?, ?, ?, ?, ?)",
                [(ticket_id, seq, sender, text, now) for seq, (sender, text) in enumerate(transcript)],
            )
        return ticket_id

    def append_message(self, ticket_id: str, sender: str, text: str) -> None:
        """Add a message to the end of a ticket's transcript (a customer writing after the handoff)."""
        with closing(self._connect()) as db, db:
            (next_seq,) = db.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM ticket_messages WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO ticket_messages VALUES (?, ?, ?, ?, ?)", (ticket_id, next_seq, sender, text, _now())
            )

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with its transcript, or None if there is no such ticket."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
            if row is None:
                return None
            messages = db.execute(
                "SELECT sender, text, sent_at FROM ticket_messages WHERE ticket_id = ? ORDER BY seq", (ticket_id,)
            ).fetchall()
        return _ticket(row, messages)

    def for_conversation(self, conversation_id: str) -> list[Ticket]:
        """All tickets of a conversation, oldest first."""
        with closing(self._connect()) as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT ticket_id FROM tickets WHERE conversation_id = ? ORDER BY created_at, rowid",
                    (conversation_id,),
                )
            ]
        return [t for t in (self.get(i) for i in ids) if t is not None]

    def open_tickets(self, queue: str | None = None) -> list[Ticket]:
        """Open tickets, highest priority first, then oldest first; optionally of one queue."""
        query = "SELECT ticket_id FROM tickets WHERE status = 'open'"
        params: tuple[Any, ...] = ()
        if queue is not None:
            query += " AND queue = ?"
            params = (queue,)
        query += " ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, created_at, rowid"
        with closing(self._connect()) as db:
            ids = [r[0] for r in db.execute(query, params)]
        return [t for t in (self.get(i) for i in ids) if t is not None]


def _ticket(row: tuple, messages: list[tuple]) -> Ticket:
    ticket_id, conversation_id, queue, priority, rule, summary, slots_json, status, created_at = row
    return Ticket(
        ticket_id=ticket_id,
        conversation_id=conversation_id,
        queue=queue,
        priority=priority,
        rule=rule,
        summary=summary,
        slots=json.loads(slots_json),
        status=status,
        created_at=created_at,
        transcript=tuple(Message(*m) for m in messages),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def main(argv: list[str] | None = None) -> None:
    """Print open tickets, highest priority first, with summary and transcript (what a human agent sees)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--db", type=Path, default=None,
                        help=f"ticket store (default: ${DB_PATH_ENV} or {DEFAULT_DB_PATH})")
    parser.add_argument("--queue", default=None, help="only this queue")
    args = parser.parse_args(argv)
    store = HandoffStore(args.db)
    tickets = store.open_tickets(args.queue)
    print(f"{len(tickets)} open ticket(s) in {store.path}")
    for t in tickets:
        print(f"\n{t.ticket_id}  queue={t.queue}  priority={t.priority}  rule={t.rule}  "
              f"conversation={t.conversation_id}")
        print(f"  summary: {t.summary}")
        for m in t.transcript:
            print(f"  {m.sender:>8}: {m.text}")


if __name__ == "__main__":
    main()
