"""Handing a conversation to a human: the escalation policy decides, a ticket is stored, the customer is told.

`signals_from` reads what the policy looks at from the tracker; `hand_off` carries a decision out. Every action
that may escalate goes through these two functions, so the policy file alone decides who escalates where.
The ticket is written `pending` and opens for agents once the turn is stored (see bankbot.handoff_store), so a turn
that fails after this action ran leaves no ticket behind. A synthetic probe conversation of the harness (sender id
starting with `harness-probe:`, bankbot.handoff_store.is_probe_conversation) gets a `probe` ticket instead: the
same policy, ticket write and handoff message (with its ticket id, so the channel reports the handoff as for a
customer), but no ticket agents ever see.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bankbot.catalog import load_catalog
from bankbot.escalation import DEFAULT_POLICY_PATH, Decision, Policy, Signals, load_policy
from bankbot.handoff_store import PENDING, PROBE, HandoffStore, is_probe_conversation, new_ticket_id

POLICY_PATH_ENV = "ESCALATION_POLICY"
FALLBACK_INTENT = "nlu_fallback"
# Slots that are the bot's own bookkeeping, not information the agent needs.
_BOOKKEEPING = {
    "requested_slot",
    "session_started_metadata",
    "not_understood_streak",
    "invalid_inputs",
    "flow_failed",
    "conversation_state",
    "handoff_queue",
    "handoff_rule",
    "handoff_ticket",
}
QUEUE_LABELS = {
    "cards": "Cards",
    "payments": "Payments",
    "fraud": "Fraud",
    "accounts": "Accounts",
    "complaints": "Customer Care",
    "general": "Customer Support",
}


def policy() -> Policy:
    """The escalation policy: $ESCALATION_POLICY if set, else bot/escalation.yml (each file read once)."""
    return _policy_at(str(os.environ.get(POLICY_PATH_ENV) or DEFAULT_POLICY_PATH))


@lru_cache(maxsize=8)
def _policy_at(path: str) -> Policy:
    return load_policy(path)


def store() -> HandoffStore:
    return HandoffStore()


def topic_queue(tracker: Tracker) -> str | None:
    """The queue owning the conversation's current topic, if there is one."""
    topic = tracker.get_slot("topic")
    info = load_catalog().get(topic) if topic else None
    return info.queue if info else None


def signals_from(tracker: Tracker, *, invalid_flow_inputs: int = 0) -> Signals:
    """What the escalation policy looks at, read from the conversation so far."""
    return Signals(
        intent=tracker.get_intent_of_latest_message(skip_fallback_intent=False),
        topic_queue=topic_queue(tracker),
        consecutive_not_understood=int(tracker.get_slot("not_understood_streak") or 0),
        invalid_flow_inputs=invalid_flow_inputs,
    )


def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], decision: Decision
) -> list[EventType]:
    """Create the ticket for `decision`, tell the customer once, and mark the conversation handed off.

    The ticket is pending until the turn is stored (a probe conversation's is `probe`: never open). If the
    conversation already has an open ticket (its tracker lost the handoff, e.g. in a new session), no second ticket
    is created: the customer's message goes to that ticket.
    """
    proposed = new_ticket_id()
    template = domain["responses"]["utter_after_handoff"][0]["text"]
    label = QUEUE_LABELS.get(decision.queue, decision.queue.title())
    message = template.format(queue_label=label, ticket=proposed)
    slots = {k: v for k, v in tracker.current_slot_values().items() if v is not None and k not in _BOOKKEEPING}
    tickets = store()
    ticket_id = tickets.create_ticket(
        ticket_id=proposed,
        conversation_id=tracker.sender_id,
        queue=decision.queue,
        priority=decision.priority,
        rule=decision.rule,
        summary=summary_of(tracker, decision, slots),
        slots=slots,
        transcript=[*transcript_of(tracker), ("bot", message)],
        status=PROBE if is_probe_conversation(tracker.sender_id) else PENDING,
    )
    queue, rule = decision.queue, decision.rule
    existing = tickets.get(ticket_id) if ticket_id != proposed else None
    if existing is not None:
        queue, rule = existing.queue, existing.rule
        message = template.format(queue_label=QUEUE_LABELS.get(queue, queue.title()), ticket=ticket_id)
        tickets.append_message(ticket_id, "customer", tracker.latest_message.get("text") or "")
        tickets.append_message(ticket_id, "bot", message)
    dispatcher.utter_message(text=message)
    events: list[EventType] = [
        SlotSet("handoff_queue", queue),
        SlotSet("handoff_rule", rule),
        SlotSet("handoff_ticket", ticket_id),
        SlotSet("conversation_state", "handed_off"),
    ]
    if tracker.active_loop_name:
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    return events


def transcript_of(tracker: Tracker) -> list[tuple[str, str]]:
    """Every customer and bot message of the conversation so far, in order, as (sender, text)."""
    lines: list[tuple[str, str]] = []
    for event in tracker.events:
        if event.get("event") == "user" and event.get("text"):
            lines.append(("customer", event["text"]))
        elif event.get("event") == "bot" and event.get("text"):
            lines.append(("bot", event["text"]))
    return lines


def summary_of(tracker: Tracker, decision: Decision, slots: dict[str, Any]) -> str:
    """Two or three lines an agent reads before answering, so the customer never repeats themselves."""
    catalog = load_catalog()
    rule = next((r for r in policy().rules if r.name == decision.rule), None)
    intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
    topic = tracker.get_slot("topic")
    customer_turns = sum(1 for e in tracker.events if e.get("event") == "user")
    parts = [f"Escalated by rule '{decision.rule}'" + (f": {rule.description}" if rule else ".")]
    if intent in catalog:
        parts.append(f"Latest request: {catalog[intent].description}")
    if topic in catalog and topic != intent:
        parts.append(f"Topic before that: {catalog[topic].description}")
    parts.append(f'Customer said: "{tracker.latest_message.get("text", "")}" ({customer_turns} customer message(s)).')
    if slots:
        parts.append("Details given: " + ", ".join(f"{k}={v}" for k, v in sorted(slots.items())) + ".")
    return " ".join(parts)
