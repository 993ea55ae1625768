"""Card self-service: blocking a lost or stolen card, activating a new card, and card delivery."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bankbot import backend
from bankbot.actions.flows import CountingFormValidation, finish_flow, reset_flow

BLOCK_SLOTS = ["card_type", "block_confirmed"]
ACTIVATE_SLOTS = ["activation_last4"]
YES = re.compile(r"\b(yes|yeah|yep|yup|ok|okay|sure|go ahead|please do|do it|confirm|correct)\b", re.I)
NO = re.compile(r"\b(no|nope|nah|don'?t|do not|cancel|stop|wait)\b", re.I)
FULL_CARD_NUMBER = re.compile(r"(?:\d[ -]?){12,19}")


def card_kind_in(text: str) -> str | None:
    """`debit` or `credit` if the text names exactly one of the customer's cards, else None."""
    text = text.lower()
    kinds = set()
    for card in backend.CARDS:
        if card.status != "active":
            continue
        if card.kind in text or card.scheme.lower() in text or card.last4 in text:
            kinds.add(card.kind)
    return kinds.pop() if len(kinds) == 1 else None


def describe(card: backend.Card) -> str:
    return f"{card.scheme} {card.kind} card ending {card.last4}"


class ValidateBlockCardForm(CountingFormValidation):
    def name(self) -> str:
        return "validate_block_card_form"

    async def validate_card_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        if tracker.get_intent_of_latest_message(skip_fallback_intent=False) == "deny":
            return {"card_type": None, "block_confirmed": False, "requested_slot": None}
        kind = card_kind_in(str(value or "")) or card_kind_in(tracker.latest_message.get("text", ""))
        if kind is None:
            return self.invalid("card_type", dispatcher, tracker, "utter_invalid_card_type")
        return {"card_type": kind}

    async def validate_block_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        text = tracker.latest_message.get("text", "")
        if intent == "affirm" or (intent != "deny" and YES.search(text) and not NO.search(text)):
            return {"block_confirmed": True}
        if intent == "deny" or NO.search(text):
            return {"block_confirmed": False}
        return self.invalid("block_confirmed", dispatcher, tracker, "utter_invalid_confirmation")


class ActionAskCardType(Action):
    def name(self) -> str:
        return "action_ask_card_type"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        cards = [c for c in backend.CARDS if c.status == "active"]
        options = " or ".join(f"your {describe(c)}" for c in cards)
        dispatcher.utter_message(
            text=f"I'm sorry to hear that. Which card should I block: {options}?",
            buttons=[{"title": describe(c), "payload": c.kind} for c in cards],
        )
        return []


class ActionAskBlockConfirmed(Action):
    def name(self) -> str:
        return "action_ask_block_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        card = backend.cards_of_kind(tracker.get_slot("card_type"))[0]
        dispatcher.utter_message(
            text=f"I'll block your {describe(card)} permanently, so nobody can use it. A blocked card can't be "
            "unblocked; we'll post a replacement to your home address within 5 working days. Shall I block it now?",
            buttons=[{"title": "Yes, block it", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        )
        return []


class ActionBlockCard(Action):
    def name(self) -> str:
        return "action_block_card"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        escalated = finish_flow(dispatcher, tracker, domain, BLOCK_SLOTS)
        if escalated is not None:
            return escalated
        if tracker.get_slot("block_confirmed") and tracker.get_slot("card_type"):
            card = backend.cards_of_kind(tracker.get_slot("card_type"))[0]
            ref = backend.reference("BLK", tracker.sender_id, card.last4)
            dispatcher.utter_message(
                text=f"Done: your {describe(card)} is now blocked (reference {ref}). Your replacement card will "
                "arrive within 5 working days, and any regular payments will move over to it automatically. "
                "If you spot payments you didn't make, tell me and I'll pass you to our fraud team."
            )
        else:
            dispatcher.utter_message(response="utter_block_not_confirmed")
        return reset_flow(BLOCK_SLOTS)


class ValidateActivateCardForm(CountingFormValidation):
    def name(self) -> str:
        return "validate_activate_card_form"

    async def validate_activation_last4(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = str(value or "")
        if FULL_CARD_NUMBER.search(text):
            return self.invalid("activation_last4", dispatcher, tracker, "utter_no_full_card_number")
        digits = re.findall(r"(?<!\d)\d{4}(?!\d)", text)
        card = next((c for c in map(backend.card_awaiting_activation, digits) if c is not None), None)
        if card is None:
            return self.invalid("activation_last4", dispatcher, tracker, "utter_invalid_last4")
        return {"activation_last4": card.last4}


class ActionActivateCard(Action):
    def name(self) -> str:
        return "action_activate_card"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        escalated = finish_flow(dispatcher, tracker, domain, ACTIVATE_SLOTS)
        if escalated is not None:
            return escalated
        card = backend.card_awaiting_activation(tracker.get_slot("activation_last4") or "")
        if card is not None:
            dispatcher.utter_message(
                text=f"All set: your new {describe(card)} is active and ready to use. Your PIN is the same as on "
                "your previous card; you can see it in the app under Cards > Show PIN."
            )
        return reset_flow(ACTIVATE_SLOTS)


class ActionCardDeliveryStatus(Action):
    def name(self) -> str:
        return "action_card_delivery_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        card = next(c for c in backend.CARDS if c.status == "awaiting_activation")
        posted = date.today() - timedelta(days=3)
        due = backend.delivery_due(posted)
        dispatcher.utter_message(
            text=f"Your new {describe(card)} was posted on {posted:%A %d %B} by first-class post and should arrive "
            f"by {due:%A %d %B}. It comes in a plain white envelope. If it hasn't arrived by then, I can pass you to "
            "our card team to cancel it and send a new one."
        )
        return []
