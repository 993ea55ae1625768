"""Actions that keep track of the conversation and decide on escalation."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker, ValidationAction
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bankbot.actions.handoff import FALLBACK_INTENT, hand_off, policy, signals_from
from bankbot.catalog import load_catalog
from bankbot.escalation import decide

# What the bot says when an escalation intent arrives but no policy rule hands it off.
NO_HANDOFF_RESPONSE = {"report_fraud": "utter_fraud_advice", "complaint": "utter_complaint_advice"}


class ActionValidateSlotMappings(ValidationAction):
    """Runs after every customer message: keeps the topic, the not-understood streak and the state current."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_topic(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        info = load_catalog().get(intent) if intent else None
        if info is not None and info.kind == "self_service":
            return {"topic": intent}
        return {}

    async def extract_not_understood_streak(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict:
        # Inside a flow the form consumes the answer and counts invalid ones itself.
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        not_understood = intent == FALLBACK_INTENT and not tracker.active_loop_name
        previous = int(tracker.get_slot("not_understood_streak") or 0)
        return {"not_understood_streak": float(previous + 1 if not_understood else 0)}

    async def extract_conversation_state(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict:
        # A customer writing after the bot closed the conversation reopens it; a handoff is final.
        if tracker.get_slot("conversation_state") == "handed_off":
            return {}
        return {"conversation_state": "active"}


class ActionEscalate(Action):
    """For fraud, complaints and requests for a human: hand off if the escalation policy says so."""

    def name(self) -> str:
        return "action_escalate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        decision = decide(policy(), signals_from(tracker))
        if decision is not None:
            return hand_off(dispatcher, tracker, domain, decision)
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False) or ""
        dispatcher.utter_message(response=NO_HANDOFF_RESPONSE.get(intent, "utter_handoff_no_agent"))
        return []


class ActionNotUnderstood(Action):
    """A turn the bot did not understand: ask to rephrase, or hand off if the policy says so."""

    def name(self) -> str:
        return "action_not_understood"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        decision = decide(policy(), signals_from(tracker))
        if decision is not None:
            return hand_off(dispatcher, tracker, domain, decision)
        dispatcher.utter_message(response="utter_rephrase")
        return []


class ActionEndConversation(Action):
    """The customer said goodbye: mark the conversation ended."""

    def name(self) -> str:
        return "action_end_conversation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [SlotSet("conversation_state", "ended")]
