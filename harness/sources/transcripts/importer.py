"""`import_events`: one source's new events into the production store, incrementally, in bounded memory.

The stages, per sender (the readers give one sender's events at a time): drop events an earlier import already
read (`events.Watermark`), report and skip malformed ones, cut the rest into conversations (`splitting.split`),
defer the last one while it may still be going on (its last event, or with the reference bot its last message to the
human from the handoff ticket, within the inactivity timeout of the newest event read), turn each finished
conversation into masked rows (`rows.conversation_rows`, with the ticket's messages after a handoff as `silenced`
turns: `rows.silenced_messages`), and append them to the
store every `chunk_turns` turns. The state (watermark, the deferred senders as keyed hashes, the import log) is
written once the data is: a crash or an error mid-way leaves whole files only, the next import reads the same
events again and the store skips the conversations it already holds, so nothing imported is lost or doubled.

Event content never stops an import: events of the wrong shape (`events.checked`: timestamps out of range, fields of
the wrong type, a slot without a name, no sender) are reported with their position and skipped, and a conversation
whose rows still cannot be built or stored (any exception but OSError, which is the machine's, not the data's) is
reported as `unreadable_conversation` at its first event's position, with the exception, and skipped. The import
holds the store's lock (`ProductionStore.locked`) from reading the state to writing it: a second import at once
fails with InputError instead of storing conversations twice. Conversations the store already holds are skipped
before their rows are built (no masking). Synthetic probe conversations (`harness probe`: senders starting with
harness.sources.probes.PROBE_SENDER_PREFIX) are never customer traffic: skipped whatever the source format, and
counted in `skipped_probes`.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.bots.handoff_mapping import load_handoff_mapping
from harness.bots.rasa import TrackerReading
from harness.masking import warm_up
from harness.project.production_config import ProductionSettings
from harness.records.production import ProductionStore, to_production_frame
from harness.sources.probes import is_probe_sender
from harness.sources.transcripts.events import REASONS, EventSource, RawEvent, Watermark, sender_hash
from harness.sources.transcripts.rows import (
    RowContext,
    TicketLookup,
    bot_before_customer,
    conversation_key,
    conversation_rows,
    silenced_messages,
)
from harness.sources.transcripts.splitting import split

SECRET = "secret"
CHUNK_TURNS = 50_000
"""Turns built before they are written (one Parquet file per day they cover): about 100 MB of rows."""
SHOWN_PER_REASON = 20
"""Skipped events listed with their position per reason (all are counted)."""


@dataclass(frozen=True)
class ImportSummary:
    """What one import did."""

    import_id: str
    source: str
    """The source's name (`--name`), the `source` column of its rows."""
    read_from: str
    """The tracker store URL (password hidden) or the files."""
    status: str
    """`ok`, or `failed` (then `error` says why; what was appended before stays, the watermark does not move)."""
    events_read: int = 0
    """Events read that earlier imports had not finished (deferred conversations' events are read again)."""
    conversations_stored: int = 0
    """New conversations appended to the store."""
    conversations_known: int = 0
    """Finished conversations the store already held (an earlier import that failed after appending them)."""
    turns_stored: int = 0
    """Customer turns of the conversations this import stored (`conversations_stored`), counted once they are
    written: a failed import counts only what it wrote."""
    ticket_messages: int = 0
    """Of `turns_stored`: customer messages to the human after a handoff, read from the reference bot's tickets
    (`silenced` turns; they never reached the tracker store)."""
    ticket_messages_unreadable: int = 0
    """Customer messages of the tickets read that were skipped because their `sent_at` is not an ISO 8601 time."""
    deferred: int = 0
    """Conversations still open at the newest event (last event within the timeout): read again next time."""
    welcome_messages: int = 0
    """Bot messages sent before a conversation's first customer message (a welcome on session start, as Rasa bots
    commonly send): normal, not malformed, and in no turn (a turn starts with a customer message; adding them to
    the first turn would inflate its bot messages and its latency), so they are counted here only."""
    skipped_probes: int = 0
    """Synthetic probe conversations (senders starting with `harness-probe:`) with new events, skipped: probes are
    not customer traffic. Their events count in `events_read`."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason (events.REASONS) -> events skipped."""
    problems: tuple[str, ...] = ()
    """`<position>: <reason>` of skipped events, the first SHOWN_PER_REASON per reason."""
    watermark: float | None = None
    newest_event: str | None = None
    """The newest event's time (ISO 8601 UTC)."""
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"problems": list(self.problems)}


def store_secret(store: ProductionStore) -> bytes:
    """The store's key for customer hashes (`<store>/secret`, 32 random bytes as hex, created 0600 on first use)."""
    path = store.path / SECRET
    if not path.is_file():
        store.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="utf-8").strip().encode()


def _import_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class _Report:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.shown: list[str] = []

    def add(self, event: RawEvent, reason: str, detail: str = "", count: int = 1) -> None:
        self.counts[reason] += count
        if self.counts[reason] <= SHOWN_PER_REASON:
            self.shown.append(f"{event.position}: {REASONS[reason]}" + (f" ({detail})" if detail else ""))


def import_events(
    source: EventSource,
    settings: ProductionSettings,
    *,
    name: str = "production",
    tickets: TicketLookup | None = None,
    chunk_turns: int = CHUNK_TURNS,
    finish_open: bool = False,
) -> ImportSummary:
    """Import `source`'s new events into the store `settings.store` under the source name `name` (see the module
    docstring); returns the summary, also logged in state.json (`imports`). `tickets`: the reference bot's ticket
    lookup (`reference.ticket_lookup`). `finish_open`: the log is complete (a closed export, a test bot that has
    stopped): conversations still open at its newest event are stored too, ended by `timeout`, not deferred.

    A source that keeps no watermark (`source.watermarked` False: tracker JSON) is read whole every time; the
    conversations the store holds are skipped by id.

    Raises InputError for an invalid handoff mapping, an unreadable state, or a store locked by another import
    (`ProductionStore.locked`, nothing read or logged then); any other error while reading or storing is logged in
    state.json as a failed import (the watermark unchanged) and raised again. Event content raises nothing (see the
    module docstring).
    """
    started = time.monotonic()
    store = ProductionStore(settings.store)
    import_id = _import_id()
    mapping = load_handoff_mapping(settings.handoff_mapping) if settings.handoff_mapping is not None else None
    with store.locked(f"harness logs import {import_id}, source {name}"):
        return _import_locked(
            source, settings, store, import_id, mapping, name, tickets, chunk_turns, finish_open, started
        )


def _import_locked(
    source: EventSource,
    settings: ProductionSettings,
    store: ProductionStore,
    import_id: str,
    mapping: Any,
    name: str,
    tickets: TicketLookup | None,
    chunk_turns: int,
    finish_open: bool,
    started: float,
) -> ImportSummary:
    state = store.state()
    before = state.get("sources", {}).get(name, {})
    if getattr(source, "watermarked", True):
        watermark = Watermark(before.get("watermark"), before.get("reopened") or {})
    else:
        watermark = Watermark()
    secret = store_secret(store)
    context = RowContext(
        name,
        TrackerReading(mapping, tuple(settings.fallback_actions), tuple(settings.fallback_intents)),
        settings.masking,
        secret,
        tickets,
    )
    timeout = settings.inactivity_timeout.total_seconds()
    report = _Report()
    counts: Counter[str] = Counter()
    reopened: dict[str, float] = {}
    pending: list[dict[str, Any]] = []
    from_tickets: dict[str, int] = {}
    """Conversation id -> its pending ticket messages (`silenced`)."""
    newest: float | None = None

    def flush() -> None:
        if not pending:
            return
        try:
            frame = to_production_frame(pending)
            store.check(frame)
        except Exception:  # noqa: BLE001 - values that do not fit the columns: find the conversations, skip them
            frame = to_production_frame(_storable(pending, store, report))
        ids = set(frame["conversation_id"].unique())
        days = {value.date() for value in frame["conversation_start"]}
        known = store.conversation_ids(days) & ids
        added = store.append(frame, import_id)
        new = ~frame["conversation_id"].isin(known)
        counts["stored"] += added
        counts["known"] += len(ids) - added
        counts["turns"] += int(new.sum())
        counts["ticket"] += sum(n for conversation, n in from_tickets.items() if conversation in ids - known)
        pending.clear()
        from_tickets.clear()

    try:
        warm_up(settings.masking)
        low = watermark.low()
        newest = source.newest(low)
        for sender, events in source.senders(low):
            hashed = sender_hash(secret, sender) if sender else ""
            if is_probe_sender(sender):
                new = sum(1 for e in events if e.key == float("-inf") or watermark.wanted(e.key, hashed))
                counts["read"] += new
                counts["probes"] += int(new > 0)
                continue
            usable: list[RawEvent] = []
            for event in events:
                if event.key != float("-inf") and not watermark.wanted(event.key, hashed):
                    continue
                counts["read"] += 1
                if event.event is None:
                    if watermark.key is None or event.key > watermark.key or event.key == float("-inf"):
                        report.add(event, event.problem or "bad_json", event.detail)
                    continue
                usable.append(event)
            if not usable:
                continue
            customer = hashed if settings.customer == "sender" else None
            segments = split(usable, timeout)
            for number, segment in enumerate(segments):
                try:
                    ended_by = segment.ended_by
                    following = segments[number + 1].events[0].timestamp if number + 1 < len(segments) else None
                    silenced = silenced_messages(segment, context, following, timeout)
                    last = max(segment.last_timestamp, silenced[-1][0]) if silenced else segment.last_timestamp
                    if ended_by is None:
                        assert newest is not None
                        if not finish_open and newest - last <= timeout:
                            reopened[hashed] = segment.events[0].key
                            counts["deferred"] += int(segment.has_customer)
                            continue
                        ended_by = "timeout"
                    counts["welcome"] += len(bot_before_customer(segment))
                    key = conversation_key(segment, context)
                    if key is None:
                        continue
                    if key[0] in store.conversation_ids([key[1].date()]):
                        counts["known"] += 1
                        continue
                    rows = conversation_rows(segment, ended_by, customer, context, silenced)
                except OSError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the data's fault: report the conversation, go on
                    report.add(segment.events[0], "unreadable_conversation", _why(exc), count=len(segment.events))
                    continue
                pending.extend(rows)
                from_tickets[key[0]] = len(silenced) if rows else 0
            if len(pending) >= chunk_turns:
                flush()
        flush()
    except BaseException as exc:
        counts["unreadable"] = int(getattr(tickets, "unreadable", 0))
        summary = _summary(import_id, name, source, "failed", counts, report, watermark.key, newest, started)
        summary = ImportSummary(**{**asdict(summary), "error": _why(exc)[:500]})
        state.setdefault("imports", []).append(summary.to_json())
        state.setdefault("sources", {})
        store.write_state(state)
        raise
    high = source.high()
    mark = max(k for k in (watermark.key, high) if k is not None) if (watermark.key, high) != (None, None) else None
    counts["unreadable"] = int(getattr(tickets, "unreadable", 0))
    summary = _summary(import_id, name, source, "ok", counts, report, mark, newest, started)
    state.setdefault("sources", {})[name] = {
        "watermark": mark,
        "reopened": reopened,
        "read_from": source.name,
        "last_import": import_id,
    }
    state.setdefault("imports", []).append(summary.to_json())
    store.write_state(state)
    return summary


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()[:300]}"


def _storable(pending: list[dict[str, Any]], store: ProductionStore, report: _Report) -> list[dict[str, Any]]:
    """The rows of the conversations in `pending` whose values fit the columns; the others are reported as
    `unreadable_conversation` (at their conversation id: the rows hold no event positions) and dropped."""
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for row in pending:
        by_conversation.setdefault(str(row["conversation_id"]), []).append(row)
    kept: list[dict[str, Any]] = []
    for conversation, rows in by_conversation.items():
        try:
            store.check(to_production_frame(rows))
        except Exception as exc:  # noqa: BLE001 - any conversion error is the data's
            where = RawEvent("", 0.0, f"conversation {conversation}", None)
            report.add(where, "unreadable_conversation", _why(exc), count=len(rows))
            continue
        kept += rows
    return kept


def _summary(
    import_id: str,
    name: str,
    source: EventSource,
    status: str,
    counts: Counter[str],
    report: _Report,
    mark: float | None,
    newest: float | None,
    started: float,
) -> ImportSummary:
    return ImportSummary(
        import_id=import_id,
        source=name,
        read_from=source.name,
        status=status,
        events_read=counts["read"],
        conversations_stored=counts["stored"],
        conversations_known=counts["known"],
        turns_stored=counts["turns"],
        ticket_messages=counts["ticket"],
        ticket_messages_unreadable=counts["unreadable"],
        deferred=counts["deferred"],
        welcome_messages=counts["welcome"],
        skipped_probes=counts["probes"],
        skipped=dict(sorted(report.counts.items())),
        problems=tuple(report.shown),
        watermark=mark,
        newest_event=_iso(newest),
        seconds=round(time.monotonic() - started, 3),
    )


def _iso(seconds: float | None) -> str | None:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds is not None else None
    except (OverflowError, ValueError, OSError):
        return repr(seconds)


def default_root() -> Path:
    """The repository root commands resolve relative paths against (the current folder)."""
    return Path.cwd()
