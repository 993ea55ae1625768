"""Raw events as the readers yield them: each with its sender, its position in the source (for reports), a key
that orders a sender's events and serves as the import watermark, and either the parsed Rasa event or why it
cannot be used.

Rasa event dicts are the `as_dict` form its tracker store keeps in the `data` column and its HTTP API returns:
`{"event": "user", "timestamp": 1700000000.1, "text": ..., "parse_data": {...}, ...}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

KNOWN_TYPES = frozenset(
    {
        "user",
        "user_featurization",
        "entities",
        "bot",
        "slot",
        "restart",
        "rewind",
        "reset_slots",
        "reminder",
        "cancel_reminder",
        "undo",
        "export",
        "followup",
        "pause",
        "resume",
        "action",
        "agent",
        "active_loop",
        "form",
        "loop_interrupted",
        "form_validation",
        "action_execution_rejected",
        "session_started",
    }
)
"""The `type_name`s of Rasa 3.x's events (rasa/shared/core/events.py); any other type is reported and skipped."""

REASONS = {
    "bad_json": "the event's data is not a JSON object",
    "no_type": "the event has no type",
    "unknown_type": "the event's type is not a Rasa 3 event",
    "no_timestamp": "the event has no (numeric) timestamp",
    "no_sender": "the tracker has no sender_id",
    "bad_line": "the line is not a tracker (JSON object with an `events` list)",
}
"""Why an event was skipped -> what that means (the import summary counts skipped events by reason)."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One logged event."""

    sender: str
    """The conversation's sender id as the bot logged it (personal data: never stored as it is)."""
    key: float
    """Orders a sender's events and is the watermark: the table row id (SQL) or the event's timestamp (JSON)."""
    position: str
    """Where it was read, for reports: `events.id=17`, `export.jsonl:3:event 5`, `conv-1.json:event 4`."""
    event: dict[str, Any] | None
    """The Rasa event (`as_dict` form), None when it cannot be used."""
    problem: str | None = None
    """A key of REASONS when `event` is None."""
    detail: str = ""
    """What exactly was wrong (for the report)."""

    @property
    def timestamp(self) -> float:
        assert self.event is not None
        return float(self.event["timestamp"])

    @property
    def type(self) -> str:
        assert self.event is not None
        return str(self.event["event"])


def checked(
    sender: str, key: float, position: str, data: Any, *, type_name: str | None = None, timestamp: Any = None
) -> RawEvent:
    """A RawEvent from a decoded event `data`, or one carrying its problem. `type_name` and `timestamp` are the
    SQL row's own columns, used when `data` lacks them."""
    if not isinstance(data, dict):
        return RawEvent(sender, key, position, None, "bad_json", f"got {type(data).__name__}")
    kind = data.get("event") or type_name
    if not kind:
        return RawEvent(sender, key, position, None, "no_type")
    if kind not in KNOWN_TYPES:
        return RawEvent(sender, key, position, None, "unknown_type", str(kind)[:80])
    stamp = data.get("timestamp", timestamp)
    if stamp is None:
        stamp = timestamp
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return RawEvent(sender, key, position, None, "no_timestamp", repr(stamp)[:40])
    if data.get("event") != kind or data.get("timestamp") != stamp:
        data = {**data, "event": kind, "timestamp": float(stamp)}
    return RawEvent(sender, key, position, data)


def decoded(
    sender: str, key: float, position: str, text: str | None, type_name: str | None, timestamp: Any
) -> RawEvent:
    """A RawEvent from an SQL row's `data` text."""
    try:
        data = json.loads(text) if text is not None else None
    except ValueError as exc:
        return RawEvent(sender, key, position, None, "bad_json", str(exc)[:80])
    if data is None:
        return RawEvent(sender, key, position, None, "bad_json", "no data")
    return checked(sender, key, position, data, type_name=type_name, timestamp=timestamp)


@dataclass(frozen=True)
class Watermark:
    """What an earlier import of a source already read: every event with a key up to `key` is done, except those
    of the senders still open then, which are read again from their open conversation's first event."""

    key: float | None = None
    """The highest key read (None: nothing read yet)."""
    reopened: dict[str, float] | None = None
    """Sender hash (`importer.sender_hash`) -> the key of its open (deferred) conversation's first event."""

    def low(self) -> float | None:
        """Events with a key above this may be needed (None: all)."""
        if self.key is None:
            return None
        firsts = [k for k in (self.reopened or {}).values()]
        return min([self.key, *(k - 1e-9 for k in firsts)]) if firsts else self.key

    def wanted(self, key: float, sender_hash: str) -> bool:
        """Whether an event of this sender with this key is still to import."""
        if self.key is None or key > self.key:
            return True
        first = (self.reopened or {}).get(sender_hash)
        return first is not None and key >= first


class EventSource(Protocol):
    """A reader of one source's events."""

    name: str
    """What the import log says was read (a URL with its password hidden, file names)."""

    def newest(self, after: float | None) -> float | None:
        """The newest event timestamp (seconds since the epoch) among events with a key above `after`; None when
        there are none. Conversations whose last event is within the inactivity timeout of it are still open."""
        ...

    def senders(self, after: float | None) -> Iterator[tuple[str, list[RawEvent]]]:
        """Each sender's events with a key above `after` (None: all), in key order, one sender at a time."""
        ...

    def high(self) -> float | None:
        """The watermark key after this read (the highest key it covers)."""
        ...
