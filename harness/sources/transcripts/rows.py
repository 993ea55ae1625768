"""One conversation's events -> its production rows (`harness.records.production`), personal data masked.

Each customer (`user`) event opens a turn; the turn's events run to the next customer event. What the bot did in
the turn is read exactly as the `rasa` bot kind reads a tracker (`harness.bots.rasa.read_turn`: intent, ranking,
actions, slots, fallback, handoff by the handoff mapping, model), with the REST reply's custom payloads taken
from the turn's `bot` events (`data.custom`) and the tracker state (active form, paused) followed event by event.

The reference bot's messages to the human. Once a conversation is handed off (its tracker holds `handoff_ticket`),
the reference channel passes the customer's messages to the ticket (bot/bankbot/handoff_store.py,
`ticket_messages`) and not to Rasa, so the tracker store never sees them. `ticket_messages` adds them back as
`silenced` turns of the handed-off conversation (`silenced_messages` says which; see its docstring).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from harness.bots.base import Handoff
from harness.bots.rasa import TrackerReading, message_text, read_turn
from harness.masking import MaskingOptions, mask, mask_turns, mask_value
from harness.records import TurnStatus
from harness.sources.transcripts.events import RawEvent, sender_hash
from harness.sources.transcripts.splitting import Segment

TICKET_SLOT = "handoff_ticket"
"""The reference bot's slot naming the handoff ticket (bot/domain/slots_forms.yml)."""
REFERENCE_SLOTS = ("handoff_queue", "handoff_rule")

TicketLookup = Callable[[str], tuple[str | None, str | None] | None]
"""Ticket id -> (queue, rule) from the human-queue store, or None when the ticket is not there."""

TicketMessage = tuple[float, str]
"""(sent_at as seconds since the epoch, UTC; text) of one message in a ticket's transcript."""


@runtime_checkable
class TicketTranscripts(Protocol):
    """A ticket lookup that also reads the tickets' transcripts (`reference.ticket_lookup` returns one)."""

    def __call__(self, ticket_id: str) -> tuple[str | None, str | None] | None: ...

    def customer_messages(self, ticket_id: str) -> list[TicketMessage]:
        """The ticket's `customer` messages in transcript order (`seq`); [] for an unknown ticket."""
        ...


@dataclass(frozen=True)
class RowContext:
    """What building rows needs besides the events."""

    source: str
    reading: TrackerReading
    masking: MaskingOptions
    secret: bytes
    """The store's key (`importer.store_secret`): conversation ids carry a keyed hash of the sender, never a plain
    one."""
    tickets: TicketLookup | None = None
    """The reference bot's tickets: a turn setting `handoff_ticket` is a handoff to the ticket's queue and rule."""


def conversation_id(source: str, first: RawEvent, secret: bytes) -> str:
    """`<source>:<first event key>:<first 8 hex of sender_hash(secret, sender)>`: stable across imports into one
    store (the key is the row id, or the timestamp for JSON; `secret` is the store's). The suffix is keyed: a plain
    hash of a phone number or e-mail address used as sender id could be reversed by trying them all."""
    key = first.key
    shown = str(int(key)) if float(key).is_integer() else repr(float(key))
    return f"{source}:{shown}:{sender_hash(secret, first.sender)[:8]}"


def conversation_key(segment: Segment, context: RowContext) -> tuple[str, datetime] | None:
    """(conversation id, conversation start) that `conversation_rows` gives this segment, without building its
    rows (the importer skips conversations the store holds before masking them); None when the customer never
    wrote."""
    early = {id(e) for e in bot_before_customer(segment)}
    first_user = next((e for e in segment.events if id(e) not in early and e.type == "user"), None)
    if first_user is None:
        return None
    return conversation_id(context.source, segment.events[0], context.secret), _utc(first_user.timestamp)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _bot_text(event: dict[str, Any]) -> str:
    data = event.get("data")
    if not isinstance(data, dict):
        data = {}
    return message_text({"text": event.get("text"), **{k: v for k, v in data.items() if v not in (None, [], {})}})


def _latency_ms(sent: float, bots: list[dict[str, Any]]) -> float | None:
    """Server-side latency: from the customer message's timestamp to the turn's last bot message, in ms; None when
    the bot said nothing, or when that message is logged before the customer's (the clocks of the processes that
    logged them are out of step: no latency is better than a negative one)."""
    if not bots:
        return None
    latency = (float(bots[-1]["timestamp"]) - sent) * 1000.0
    return latency if latency >= 0 else None


def bot_before_customer(segment: Segment) -> list[RawEvent]:
    """The segment's `bot` events before its first customer event: welcome messages, in no turn (the import
    summary counts them)."""
    found = []
    for event in segment.events:
        if event.type == "user":
            break
        if event.type == "bot":
            found.append(event)
    return found


def handoff_ticket(segment: Segment) -> tuple[str, float] | None:
    """(ticket id, time) of the conversation's first `handoff_ticket` slot event with a value after a customer
    event: the turn that handed off to that ticket, and when Rasa logged the slot (it creates the event when the
    handoff action returns, after the action wrote the ticket). None when the conversation set no ticket."""
    customer = False
    for event in segment.events:
        kind = event.type
        customer = customer or kind == "user"
        if customer and kind == "slot" and event.event is not None and event.event.get("name") == TICKET_SLOT:
            value = event.event.get("value")
            if value:
                return str(value), event.timestamp
    return None


def silenced_messages(
    segment: Segment, context: RowContext, until: float | None, timeout_seconds: float
) -> list[TicketMessage]:
    """The ticket's customer messages that are `silenced` turns of this handed-off conversation, in transcript
    order: [] unless `context.tickets` reads transcripts (`TicketTranscripts`) and the conversation set a ticket.

    A message counts when
    - it was sent after the handoff: after the `handoff_ticket` slot event (`handoff_ticket`). The messages that
      `create_ticket` copied into the ticket at handoff (the conversation so far, the handoff turn included, all
      stamped with the ticket's creation time, before Rasa logs the slot) and those the handoff action appends to
      an existing ticket are before it, so they are not counted twice;
    - it was sent before `until`, the first event of the sender's next conversation in the tracker store (None:
      there is none);
    - the customer had not gone idle: at most `timeout_seconds` after the conversation's previous message (a
      customer or bot event in the tracker, or the previous counted ticket message), the same inactivity rule as
      `splitting.split`. The first message after a longer gap, and every later one, belong to no stored
      conversation: the human owned the chat then and the bot took no part (a conversation of them alone would
      count as one the bot contained). This makes the result independent of when imports ran: the importer
      defers a conversation while its last message, counted ticket messages included, is within the timeout of
      the newest event, so a message arriving after it was stored is past the timeout and belongs to no
      conversation either way.
    """
    tickets = context.tickets
    if not isinstance(tickets, TicketTranscripts):
        return []
    found = handoff_ticket(segment)
    if found is None:
        return []
    ticket, handed_off_at = found
    spoken = sorted(e.timestamp for e in segment.events if e.type in ("user", "bot"))
    previous = handed_off_at
    counted: list[TicketMessage] = []
    for sent, text in tickets.customer_messages(ticket):
        if sent <= handed_off_at:
            continue
        if until is not None and sent >= until:
            break
        before = bisect.bisect_right(spoken, sent)
        if before:
            previous = max(previous, spoken[before - 1])
        if sent - previous > timeout_seconds:
            break
        counted.append((sent, text))
        previous = sent
    return counted


def conversation_rows(
    segment: Segment,
    ended_by: str,
    customer: str | None,
    context: RowContext,
    silenced: Sequence[TicketMessage] = (),
) -> list[dict[str, Any]]:
    """The rows of one finished conversation (`ended_by` in production.ENDINGS), masked; [] when the customer
    never wrote. Bot events before the first customer event (welcome messages) are in no turn
    (`bot_before_customer`). `silenced`: the conversation's messages to the human from its handoff ticket
    (`silenced_messages`), added as `silenced` turns after the turn that handed off, in time order with any later
    turns: text masked with the others, sent_at from the ticket, state `handed_off`, no bot fields (no intent,
    ranking, actions, slots, latency, model; no bot messages), awaiting_reply false."""
    early = {id(e) for e in bot_before_customer(segment)}
    events = [e.event for e in segment.events if id(e) not in early and e.event is not None]
    users = [i for i, e in enumerate(events) if e["event"] == "user"]
    if not users:
        return []
    conversation = conversation_id(context.source, segment.events[0], context.secret)
    start = _utc(float(events[users[0]]["timestamp"]))
    active_loop: str | None = None
    paused = False
    requested: Any = None
    handed_off = False
    position = 0
    turns: list[dict[str, Any]] = []
    for number, begin in enumerate(users):
        end = users[number + 1] if number + 1 < len(users) else len(events)
        for event in events[position:end]:
            kind = event["event"]
            if kind == "active_loop":
                active_loop = event.get("name") or None
            elif kind == "pause":
                paused = True
            elif kind == "resume":
                paused = False
            elif kind == "slot" and event.get("name") == "requested_slot":
                requested = event.get("value")
            elif kind in ("restart", "session_started", "reset_slots"):
                requested, active_loop = None, None
        position = end
        turn_events = events[begin:end]
        bots = [e for e in turn_events if e["event"] == "bot"]
        payloads = [
            e["data"]["custom"] for e in bots if isinstance(e.get("data"), dict) and e["data"].get("custom") is not None
        ]
        reading = replace(context.reading, payloads=payloads) if payloads else context.reading
        turn = read_turn(turn_events, events[:end], reading, paused=paused, active_loop=active_loop)
        handoff = turn.handoff
        ticket = _ticket_of(turn_events) if context.tickets is not None else None
        if ticket is not None:
            assert context.tickets is not None
            found = context.tickets(ticket)
            queue, rule = (
                found
                if found is not None
                else (_slot(turn_events, "handoff_queue"), _slot(turn_events, "handoff_rule"))
            )
            handoff = Handoff(queue, rule, ticket)
        messages = [_bot_text(e) for e in bots]
        user = turn_events[0]
        sent = float(user["timestamp"])
        if handed_off:
            status = TurnStatus.silenced
        elif messages:
            status = TurnStatus.ok
        else:
            status = TurnStatus.empty_reply
        state = "handed_off" if handed_off or handoff is not None or turn.state == "handed_off" else "active"
        awaiting = bool(
            turn.active_form or requested or turn.fallback or (messages and messages[-1].rstrip().endswith("?"))
        )
        turns.append(
            {
                "conversation_id": conversation,
                "turn_index": number,
                "text": user.get("text"),
                "status": str(status),
                "attempts": 1,
                "bot_messages": messages,
                "n_bot_messages": len(messages),
                "intent": turn.intent,
                "confidence": turn.confidence,
                "ranking": json.dumps([{"name": r.name, "confidence": r.confidence} for r in turn.ranking or ()]),
                "fallback": turn.fallback,
                "actions": json.dumps(list(turn.actions or ())),
                "slots_set": dict(turn.slots_set or {}),
                "handoff_queue": handoff.queue if handoff is not None and not handed_off else None,
                "handoff_rule": handoff.rule if handoff is not None and not handed_off else None,
                "ticket_id": handoff.ticket if handoff is not None and not handed_off else None,
                "state": state,
                "active_form": turn.active_form,
                "latency_ms": _latency_ms(sent, bots),
                "model": turn.model,
                "source": context.source,
                "customer": customer,
                "sent_at": _utc(sent),
                "conversation_start": start,
                "awaiting_reply": awaiting,
            }
        )
        handed_off = handed_off or handoff is not None
    if silenced and handed_off:
        turns = _with_silenced(turns, silenced, conversation, start, customer, context.source)
    ending = "handoff" if handed_off else ended_by
    texts = mask_turns([t["text"] for t in turns], context.masking)
    for row, text in zip(turns, texts, strict=True):
        row["text"] = text
        row["bot_messages"] = json.dumps([mask(m, context.masking) for m in row["bot_messages"]], ensure_ascii=False)
        if row["slots_set"] is not None:
            row["slots_set"] = json.dumps(
                mask_value(row["slots_set"], context.masking), ensure_ascii=False, default=str
            )
        row["ended_by"] = ending
    return turns


def _with_silenced(
    turns: list[dict[str, Any]],
    silenced: Sequence[TicketMessage],
    conversation: str,
    start: datetime,
    customer: str | None,
    source: str,
) -> list[dict[str, Any]]:
    """`turns` with the ticket's messages added after the turn that handed off, the turns after it in time order,
    renumbered."""
    first = next(i for i, t in enumerate(turns) if t["state"] == "handed_off")
    added: list[dict[str, Any]] = [
        {
            "conversation_id": conversation,
            "text": text,
            "status": str(TurnStatus.silenced),
            "attempts": 1,
            "bot_messages": [],
            "n_bot_messages": 0,
            "slots_set": None,
            "state": "handed_off",
            "source": source,
            "customer": customer,
            "sent_at": _utc(sent),
            "conversation_start": start,
            "awaiting_reply": False,
        }
        for sent, text in silenced
    ]
    later = sorted([*turns[first + 1 :], *added], key=lambda t: t["sent_at"])
    merged = [*turns[: first + 1], *later]
    for number, turn in enumerate(merged):
        turn["turn_index"] = number
    return merged


def _ticket_of(turn_events: list[dict[str, Any]]) -> str | None:
    values = [e.get("value") for e in turn_events if e["event"] == "slot" and e.get("name") == TICKET_SLOT]
    value = next((v for v in reversed(values) if v), None)
    return str(value) if value is not None else None


def _slot(turn_events: list[dict[str, Any]], name: str) -> str | None:
    values = [e.get("value") for e in turn_events if e["event"] == "slot" and e.get("name") == name]
    value = next((v for v in reversed(values) if v), None)
    return str(value) if value is not None else None
