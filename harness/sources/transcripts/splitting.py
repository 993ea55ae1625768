"""One sender's events cut into conversations, as `../shared/kpis.md` defines a conversation for logs.

A conversation ends:
- at a `session_started` event (the bot started a new session: Rasa's session expiry, or the channel asked): the
  new conversation begins with it (and with the `action_session_start` that Rasa logs just before it);
- at a `restart` event (the customer or the bot restarted): the restart belongs to the old conversation, the new
  one begins after it;
- when the customer writes after more than the inactivity timeout of silence: the gap between the conversation's
  last customer or bot message and the next customer message is longer than the timeout (a gap of exactly the
  timeout does not split; see production_config.DEFAULT_INACTIVITY_MINUTES for the default of 30 minutes);
- at a handoff: the turn that handed off ends the bot's part. Later customer messages (to the human) stay in the
  handed-off conversation as `silenced` turns until one of the three ends above, so a handoff does not cut here
  (rows.py marks them).

The last conversation of a read may still be going on: `Segment.ended_by` is None for it, and the importer decides
from the newest event read whether it timed out or is deferred to the next import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.sources.transcripts.events import RawEvent

MESSAGES = frozenset({"user", "bot"})


@dataclass
class Segment:
    """One conversation's events, in order (usable events only)."""

    events: list[RawEvent] = field(default_factory=list)
    ended_by: str | None = None
    """`session_start`, `restart`, `timeout`, or None for the read's last conversation (still undecided)."""

    @property
    def last_timestamp(self) -> float:
        return self.events[-1].timestamp

    @property
    def has_customer(self) -> bool:
        return any(e.type == "user" for e in self.events)


def _is_session_start_action(event: RawEvent) -> bool:
    return event.event is not None and event.type == "action" and event.event.get("name") == "action_session_start"


def split(events: list[RawEvent], timeout_seconds: float) -> list[Segment]:
    """Cut one sender's usable events (in key order) into conversations (see the module docstring). Conversations
    without events are dropped; the last has `ended_by` None."""
    segments: list[Segment] = []
    current = Segment()
    last_message: float | None = None

    def close(reason: str, carry: list[RawEvent] | None = None) -> None:
        nonlocal current, last_message
        if current.events:
            current.ended_by = reason
            segments.append(current)
        current = Segment(events=list(carry or []))
        last_message = None

    for event in events:
        kind = event.type
        if kind == "session_started":
            tail = current.events[-1:] if current.events else []
            carry = tail if tail and _is_session_start_action(tail[0]) else []
            if carry:
                current.events.pop()
            if current.events:
                close("session_start", carry)
            else:
                current.events = carry
            current.events.append(event)
            continue
        if kind == "user" and last_message is not None and event.timestamp - last_message > timeout_seconds:
            close("timeout")
        current.events.append(event)
        if kind in MESSAGES:
            last_message = event.timestamp
        if kind == "restart":
            close("restart")
    if current.events:
        segments.append(current)
    return segments
