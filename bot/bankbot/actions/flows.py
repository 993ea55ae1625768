"""What every self-service flow (form) shares: counting invalid answers, and escalating a flow that failed."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from bankbot.actions.handoff import hand_off, policy, signals_from
from bankbot.escalation import decide


class CountingFormValidation(FormValidationAction):
    """Form validation that counts invalid answers and ends the flow once the escalation policy would hand off."""

    @abstractmethod
    def name(self) -> str:
        """The form's validation action name, `validate_<form>`."""

    def invalid(
        self, slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, response: str | None = None
    ) -> dict[str, Any]:
        """Slot updates for an invalid answer to `slot`; tells the customer why unless the flow fails."""
        count = int(tracker.get_slot("invalid_inputs") or 0) + 1
        if decide(policy(), signals_from(tracker, invalid_flow_inputs=count)) is not None:
            # The flow failed: stop asking; the flow's finishing action hands off.
            return {slot: None, "invalid_inputs": float(count), "flow_failed": True, "requested_slot": None}
        if response:
            dispatcher.utter_message(response=response)
        return {slot: None, "invalid_inputs": float(count)}


def finish_flow(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], form_slots: list[str]
) -> list[EventType] | None:
    """Escalate if the flow failed; returns the handoff events, or None if the flow completed normally."""
    reset = reset_flow(form_slots)
    if not tracker.get_slot("flow_failed"):
        return None
    count = int(tracker.get_slot("invalid_inputs") or 0)
    decision = decide(policy(), signals_from(tracker, invalid_flow_inputs=count))
    if decision is None:  # the policy changed under us; say so rather than stay silent
        dispatcher.utter_message(response="utter_handoff_no_agent")
        return reset
    return hand_off(dispatcher, tracker, domain, decision) + reset


def reset_flow(form_slots: list[str]) -> list[EventType]:
    """Events that clear a finished flow's slots so the next flow starts fresh."""
    return [SlotSet(s, None) for s in form_slots] + [SlotSet("invalid_inputs", 0.0), SlotSet("flow_failed", None)]
