"""Raw events as the readers yield them: each with its sender, its position in the source (for reports), a key
that orders a sender's events and serves as the import watermark, and either the parsed Rasa event or why it
cannot be used.

Rasa event dicts are the `as_dict` form its tracker store keeps in the `data` column and its HTTP API returns:
`{"event": "user", "timestamp": 1700000000.1, "text": ..., "parse_data": {...}, ...}`.
"""

from __future__ import annotations

import hashlib
import hmac
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
    "bad_timestamp": "the event's timestamp is out of range (before 1970 or after 9999)",
    "bad_field": "a field of the event has the wrong type",
    "no_sender": "the tracker has no sender_id",
    "bad_line": "the line is not a tracker (JSON object with an `events` list)",
    "unreadable_conversation": "the conversation's rows could not be built: all its events are skipped",
}
"""Why an event was skipped -> what that means (the import summary counts skipped events by reason)."""


MAX_TIMESTAMP = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the last second Python's datetime can hold; a timestamp above it (or below 0) is
`bad_timestamp`."""


def sender_hash(secret: bytes, sender: str) -> str:
    """HMAC-SHA256(secret, sender id), 16 hex digits: the pseudonymous customer key, the suffix of conversation ids
    (its first 8 digits) and how the state names senders (never their raw ids). `secret`: the store's key
    (`importer.store_secret`)."""
    return hmac.new(secret, sender.encode(), hashlib.sha256).hexdigest()[:16]


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
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        return RawEvent(sender, key, position, None, "unknown_type", str(kind)[:80])
    stamp = data.get("timestamp", timestamp)
    if stamp is None:
        stamp = timestamp
    if not _number(stamp):
        return RawEvent(sender, key, position, None, "no_timestamp", repr(stamp)[:40])
    if not 0 <= stamp <= MAX_TIMESTAMP:
        return RawEvent(sender, key, position, None, "bad_timestamp", repr(stamp)[:40])
    wrong = field_problem(kind, data)
    if wrong is not None:
        return RawEvent(sender, key, position, None, "bad_field", wrong)
    if data.get("event") != kind or data.get("timestamp") != stamp:
        data = {**data, "event": kind, "timestamp": float(stamp)}
    return RawEvent(sender, key, position, data)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


_OPTIONAL: dict[str, tuple[tuple[str, type | tuple[type, ...]], ...]] = {
    "user": (("text", str), ("parse_data", dict), ("input_channel", str)),
    "bot": (("text", str), ("data", dict)),
    "action": (("name", str), ("policy", str)),
    "active_loop": (("name", str),),
    "entities": (("entities", list),),
}
"""Event type -> (field, type) the importer reads: the field may be missing or null, else of that type."""


def field_problem(kind: str, data: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a Rasa event of type `kind` that the importer reads (`field: expected, got
    type`), or None. Missing or null optional fields are fine; a `slot` event needs a `name` (a non-empty string).
    Checked: `metadata` (an object) on every event; `user`: `text` (a string), `parse_data` (an object) with
    `intent` (an object: `name` a string, `confidence` a finite number), `intent_ranking` (a list of such
    objects), `entities` (a list); `bot`: `text`, `data` (an object); `action`: `name`, `policy` (strings),
    `confidence` (a finite number); `active_loop`: `name`; `entities`: `entities` (a list)."""
    checks: list[tuple[str, Any, type | tuple[type, ...]]] = [("metadata", data.get("metadata"), dict)]
    checks += [(name, data.get(name), wanted) for name, wanted in _OPTIONAL.get(kind, ())]
    for name, value, wanted in checks:
        if value is not None and not isinstance(value, wanted):
            return f"{name}: expected {getattr(wanted, '__name__', 'object')}, got {_kind(value)}"
    if kind == "slot":
        slot_name = data.get("name")
        if not isinstance(slot_name, str) or not slot_name:
            got = "an empty string" if slot_name == "" else _kind(slot_name)
            return f"name: expected a non-empty string, got {got}"
    if kind == "action" and data.get("confidence") is not None and not _number(data.get("confidence")):
        return f"confidence: expected a finite number, got {_kind(data.get('confidence'))}"
    parse = data.get("parse_data") if kind == "user" else None
    if isinstance(parse, dict):
        intent = parse.get("intent")
        ranking = parse.get("intent_ranking")
        if parse.get("entities") is not None and not isinstance(parse.get("entities"), list):
            return f"parse_data.entities: expected list, got {_kind(parse.get('entities'))}"
        if ranking is not None and not isinstance(ranking, list):
            return f"parse_data.intent_ranking: expected list, got {_kind(ranking)}"
        items = [("parse_data.intent", intent), *(("parse_data.intent_ranking[]", r) for r in ranking or [])]
        for where, item in items:
            if item is None and where == "parse_data.intent":
                continue
            if not isinstance(item, dict):
                return f"{where}: expected dict, got {_kind(item)}"
            if item.get("name") is not None and not isinstance(item.get("name"), str):
                return f"{where}.name: expected str, got {_kind(item.get('name'))}"
            if item.get("confidence") is not None and not _number(item.get("confidence")):
                return f"{where}.confidence: expected a finite number, got {_kind(item.get('confidence'))}"
    return None


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
    watermarked: bool
    """Whether keys only grow as events are logged, so the import keeps a watermark (SQL row ids). False: every
    import reads everything it is given and the store's conversation-id dedupe skips what it holds (JSON)."""

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
