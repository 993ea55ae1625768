"""The human-queue store: handoff tickets that human agents pick up, in a SQLite file.

A ticket carries everything the agent needs so the customer never repeats themselves: queue, priority, the
escalation rule that fired, a short summary, the slots and the full transcript. Messages the customer sends
after the handoff are appended to the ticket's transcript. Standard library only, so the action server, the
reference channel, the harness and the tests share it. Several processes write to one file; WAL mode, a busy
timeout and `BEGIN IMMEDIATE` transactions keep that safe.

Two guarantees, both enforced by the file itself:

- **One live ticket per conversation.** A partial unique index allows at most one `pending` or `open` ticket per
  conversation id; `create_ticket` is idempotent: when the conversation already has an open ticket it returns that
  ticket's id and creates nothing.
- **No ticket for a turn that failed.** The handoff action cannot know whether its turn will complete: the action
  server may be killed after the ticket is written, or Rasa may drop the action's events. So the action writes the
  ticket `pending`, invisible to agents (`open_tickets`), and it becomes `open` only once the conversation's stored
  tracker references it: the bot's tracker store calls `settle(conversation_id, ticket_id)` after it has saved
  each turn (bankbot.tracker_store), and `append_message` (the channel passing on a message of a handed-off
  conversation, whose stored tracker names the ticket) confirms it too. `settle` also deletes the conversation's
  other pending tickets: left by turns whose events were lost. Rasa handles one turn of a conversation at a time,
  so a pending ticket of another turn is never in flight when its conversation is saved.

Statuses: `pending` (written by a turn not yet saved), `open` (agents see it), `duplicate` (an extra open ticket
of one conversation, from files written before the unique index; see `close_duplicates`), `probe` (the handoff of a
synthetic probe conversation, below).

**Probe tickets.** The harness's prober (`harness probe`) sends synthetic conversations under sender ids starting
with PROBE_SENDER_PREFIX (`harness-probe:`, the one place the bot keeps it; `is_probe_conversation`). Their
handoff runs the whole path (policy, a ticket written here, the channel reporting the handoff with the ticket id),
but the ticket is written with status `probe`: never `open`, so agents never see it (`open_tickets`); `settle`,
`confirm`, `append_message` and `close_duplicates` touch only pending and open tickets, so none of them opens it,
and it is outside the one-live-ticket index. Probe tickets are kept PROBE_TICKET_RETENTION (for a person checking
what the last probes did), then deleted when a newer probe ticket is written, so a prober running for months does
not grow the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DB_PATH_ENV = "HANDOFF_DB"
DEFAULT_DB_PATH = Path(__file__).resolve().parent.parent / "var" / "handoff.sqlite3"
PENDING, OPEN, DUPLICATE, PROBE = "pending", "open", "duplicate", "probe"
PROBE_SENDER_PREFIX = "harness-probe:"
"""Sender ids of the harness's synthetic probe conversations start with this (harness/sources/probes.py keeps the
same string: the bot cannot import the harness)."""
PROBE_TICKET_RETENTION = timedelta(days=1)
"""How long a probe ticket is kept before a newer probe ticket's write deletes it."""

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
CREATE INDEX IF NOT EXISTS probe_tickets_by_age ON tickets (created_at) WHERE status = 'probe';
CREATE TABLE IF NOT EXISTS ticket_messages (
    ticket_id TEXT NOT NULL REFERENCES tickets (ticket_id),
    seq       INTEGER NOT NULL,
    sender    TEXT NOT NULL CHECK (sender IN ('customer', 'bot')),
    text      TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
"""
_ONE_LIVE_TICKET = (
    "CREATE UNIQUE INDEX IF NOT EXISTS one_live_ticket_per_conversation "
    "ON tickets (conversation_id) WHERE status IN ('pending', 'open')"
)


class HandoffStoreError(RuntimeError):
    """The ticket file cannot be used as it is; the message says why and how to fix it."""


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


def is_probe_conversation(conversation_id: str | None) -> bool:
    """True for a synthetic probe conversation of the harness (its sender id starts with PROBE_SENDER_PREFIX)."""
    return bool(conversation_id) and str(conversation_id).startswith(PROBE_SENDER_PREFIX)


def default_db_path() -> Path:
    """The store's file: $HANDOFF_DB if set, else bot/var/handoff.sqlite3."""
    return Path(os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH)


class HandoffStore:
    """Tickets in one SQLite file; every method opens its own short connection (safe across processes).

    Opening a file written before the one-live-ticket index raises HandoffStoreError if it holds several open
    tickets of one conversation, naming them and the command that resolves them (`close_duplicates`).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            try:
                db.execute(_ONE_LIVE_TICKET)
            except sqlite3.IntegrityError:
                raise HandoffStoreError(_duplicates_message(self.path, db)) from None

    def _connect(self) -> sqlite3.Connection:
        # Autocommit; writes go through `_transaction`, which takes the write lock before reading.
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

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
        status: str = OPEN,
    ) -> str:
        """Store a ticket with its transcript of (sender, text) pairs; returns the ticket id.

        `status` is `open` (agents see it at once), `pending` (the handoff action's choice: it becomes open when
        the conversation's stored tracker references it, see `settle`) or `probe` (a probe conversation's handoff:
        never open, see the module docstring; probe tickets older than PROBE_TICKET_RETENTION are deleted).
        Idempotent per conversation: if the conversation has an open ticket (for `probe`: an open or probe ticket),
        nothing is written and that ticket's id is returned; a pending ticket of the conversation is replaced (it
        belongs to a turn that failed). ValueError for another status.
        """
        if status not in (OPEN, PENDING, PROBE):
            raise ValueError(
                f"status must be {OPEN!r} or {PENDING!r}, not {status!r} (or {PROBE!r}, for a probe conversation)"
            )
        ticket_id = ticket_id or new_ticket_id()
        now = _now()
        kept = (OPEN, PROBE) if status == PROBE else (OPEN,)
        marks = ", ".join("?" * len(kept))
        with self._transaction() as db:
            existing = db.execute(
                f"SELECT ticket_id FROM tickets WHERE conversation_id = ? AND status IN ({marks}) "
                "ORDER BY rowid LIMIT 1",
                (conversation_id, *kept),
            ).fetchone()
            if existing is not None:
                return str(existing[0])
            _delete_pending(db, conversation_id, keep=None)
            if status == PROBE:
                _delete_old_probe_tickets(db, datetime.now(UTC) - PROBE_TICKET_RETENTION)
            db.execute(
                "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket_id,
                    conversation_id,
                    queue,
                    priority,
                    rule,
                    summary,
                    json.dumps(slots, sort_keys=True),
                    status,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO ticket_messages VALUES (?, ?, ?, ?, ?)",
                [(ticket_id, seq, sender, text, now) for seq, (sender, text) in enumerate(transcript)],
            )
        return ticket_id

    def append_message(self, ticket_id: str, sender: str, text: str) -> None:
        """Add a message to the end of a ticket's transcript (a customer writing after the handoff).

        Called for the ticket a conversation's stored tracker names, so a still-pending ticket is confirmed (open).
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone() is None:
                # The conversation says it was handed off with this ticket, but the ticket is not here: the tracker
                # store and this ticket file do not belong together (or the file was replaced). Storing the message
                # under a ticket nobody can see would lose it silently.
                raise HandoffStoreError(
                    f"ticket {ticket_id} is not in {self.path}: the conversation was handed off with a ticket this "
                    "store does not hold; serve the bot with the ticket file that belongs to its tracker store"
                )
            (next_seq,) = db.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM ticket_messages WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO ticket_messages VALUES (?, ?, ?, ?, ?)", (ticket_id, next_seq, sender, text, _now())
            )
            db.execute("UPDATE tickets SET status = ? WHERE ticket_id = ? AND status = ?", (OPEN, ticket_id, PENDING))

    def confirm(self, ticket_id: str) -> bool:
        """Make a pending ticket open (its handoff turn completed); True if it was pending, False otherwise."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE tickets SET status = ? WHERE ticket_id = ? AND status = ?", (OPEN, ticket_id, PENDING)
            ).rowcount
        return changed > 0

    def settle(self, conversation_id: str, referenced: str | None) -> tuple[bool, int]:
        """After a conversation's turn is stored: open its pending ticket `referenced` (the ticket its tracker names,
        or None) and delete its other pending tickets (left by failed turns).

        Returns (whether a ticket was opened, how many pending tickets were deleted). Only reads unless the
        conversation has a pending ticket, so calling it after every turn costs one small query.
        """
        with closing(self._connect()) as db:
            pending = db.execute(
                "SELECT 1 FROM tickets WHERE conversation_id = ? AND status = ? LIMIT 1", (conversation_id, PENDING)
            ).fetchone()
        if pending is None:
            return False, 0
        with self._transaction() as db:
            opened = 0
            if referenced:
                opened = db.execute(
                    "UPDATE tickets SET status = ? WHERE ticket_id = ? AND conversation_id = ? AND status = ?",
                    (OPEN, referenced, conversation_id, PENDING),
                ).rowcount
            deleted = _delete_pending(db, conversation_id, keep=referenced)
        return opened > 0, deleted

    def pending_conversations(self) -> list[str]:
        """Conversation ids that have a pending ticket (to settle after a crash), oldest ticket first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT conversation_id FROM tickets WHERE status = ? ORDER BY created_at, rowid", (PENDING,)
            ).fetchall()
        return [r[0] for r in rows]

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with its transcript, or None if there is no such ticket."""
        with closing(self._connect()) as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
            if row is None:
                return None
            messages = db.execute(
                "SELECT sender, text, sent_at FROM ticket_messages WHERE ticket_id = ? ORDER BY seq", (ticket_id,)
            ).fetchall()
        return _ticket(row, messages)

    def for_conversation(self, conversation_id: str) -> list[Ticket]:
        """All tickets of a conversation, whatever their status, oldest first."""
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
        """Open tickets (what agents see; never pending ones), highest priority first, then oldest first; optionally
        of one queue."""
        query = "SELECT ticket_id FROM tickets WHERE status = 'open'"
        params: tuple[Any, ...] = ()
        if queue is not None:
            query += " AND queue = ?"
            params = (queue,)
        query += " ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, created_at, rowid"
        with closing(self._connect()) as db:
            ids = [r[0] for r in db.execute(query, params)]
        return [t for t in (self.get(i) for i in ids) if t is not None]


_COLUMNS = "ticket_id, conversation_id, queue, priority, rule, summary, slots_json, status, created_at"


def _delete_pending(db: sqlite3.Connection, conversation_id: str, keep: str | None) -> int:
    doomed = [
        r[0]
        for r in db.execute(
            "SELECT ticket_id FROM tickets WHERE conversation_id = ? AND status = ? AND ticket_id IS NOT ?",
            (conversation_id, PENDING, keep),
        )
    ]
    for ticket_id in doomed:
        db.execute("DELETE FROM ticket_messages WHERE ticket_id = ?", (ticket_id,))
        db.execute("DELETE FROM tickets WHERE ticket_id = ?", (ticket_id,))
    return len(doomed)


def _delete_old_probe_tickets(db: sqlite3.Connection, before: datetime) -> int:
    cutoff = before.isoformat(timespec="milliseconds")
    doomed = [
        r[0]
        for r in db.execute("SELECT ticket_id FROM tickets WHERE status = ? AND created_at < ?", (PROBE, cutoff))
    ]
    for ticket_id in doomed:
        db.execute("DELETE FROM ticket_messages WHERE ticket_id = ?", (ticket_id,))
        db.execute("DELETE FROM tickets WHERE ticket_id = ?", (ticket_id,))
    return len(doomed)


def _duplicated_conversations(db: sqlite3.Connection) -> list[tuple[str, int]]:
    return db.execute(
        "SELECT conversation_id, COUNT(*) FROM tickets WHERE status IN (?, ?) GROUP BY conversation_id "
        "HAVING COUNT(*) > 1 ORDER BY conversation_id",
        (PENDING, OPEN),
    ).fetchall()


def _duplicates_message(path: Path, db: sqlite3.Connection) -> str:
    found = _duplicated_conversations(db)
    shown = ", ".join(f"{c!r} ({n} tickets)" for c, n in found[:5]) + (
        f" and {len(found) - 5} more" if len(found) > 5 else ""
    )
    return (
        f"{path}: {len(found)} conversation(s) have more than one open ticket ({shown}), written by a bot version "
        f"that allowed that; this version allows one per conversation. Keep the oldest of each and mark the others "
        f"'duplicate' (their transcripts stay in the file) with: "
        f"python bot/bankbot/handoff_store.py --db {path.resolve()} --close-duplicates (from the repository root)"
    )


def close_duplicates(path: Path | str) -> int:
    """Mark all but the oldest open or pending ticket of each conversation `duplicate`; returns how many were
    marked. For ticket files written before one live ticket per conversation was enforced."""
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        changed = db.execute(
            "UPDATE tickets SET status = ? WHERE status IN (?, ?) AND rowid NOT IN ("
            " SELECT rowid FROM tickets AS t WHERE t.status IN (?, ?) AND NOT EXISTS ("
            "  SELECT 1 FROM tickets AS o WHERE o.conversation_id = t.conversation_id AND o.status IN (?, ?)"
            "  AND (o.created_at, o.rowid) < (t.created_at, t.rowid)))",
            (DUPLICATE, PENDING, OPEN, PENDING, OPEN, PENDING, OPEN),
        ).rowcount
        db.execute("COMMIT")
    return int(changed)


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
    parser.add_argument(
        "--db", type=Path, default=None, help=f"ticket store (default: ${DB_PATH_ENV} or {DEFAULT_DB_PATH})"
    )
    parser.add_argument("--queue", default=None, help="only this queue")
    parser.add_argument(
        "--close-duplicates",
        action="store_true",
        help="first keep one open ticket per conversation (the oldest), marking the others duplicate",
    )
    args = parser.parse_args(argv)
    if args.db is not None and not args.db.is_file():
        import sys

        # Opening a mistyped path would create an empty store and show agents "0 open ticket(s)".
        print(f"error: no ticket store at {args.db}: check --db (the default is {DEFAULT_DB_PATH})", file=sys.stderr)
        raise SystemExit(2)
    if args.close_duplicates:
        path = args.db or default_db_path()
        print(f"marked {close_duplicates(path)} ticket(s) duplicate in {path}")
    try:
        store = HandoffStore(args.db)
    except HandoffStoreError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    tickets = store.open_tickets(args.queue)
    print(f"{len(tickets)} open ticket(s) in {store.path}")
    for t in tickets:
        print(
            f"\n{t.ticket_id}  queue={t.queue}  priority={t.priority}  rule={t.rule}  "
            f"conversation={one_line(t.conversation_id)}"
        )
        print(f"  summary: {one_line(t.summary)}")
        for m in t.transcript:
            print(f"  {m.sender:>8}: {one_line(m.text)}")


def one_line(text: str) -> str:
    """Customer text as it may be shown in a terminal: one line, with every character that is not printable
    (newlines, carriage returns, ESC sequences, bidirectional overrides) escaped as in a Python literal, so a
    customer cannot forge transcript lines or tickets, or drive the agent's terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


if __name__ == "__main__":
    main()
