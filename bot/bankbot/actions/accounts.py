"""Account self-service: balance, recent transactions and updating the address on file."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bankbot import backend
from bankbot.actions.flows import CountingFormValidation, finish_flow, reset_flow

ADDRESS_SLOTS = ["new_postcode", "new_address_line"]
UK_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b", re.I)


def money(amount: float) -> str:
    return f"-£{-amount:,.2f}" if amount < 0 else f"£{amount:,.2f}"


class ActionCheckBalance(Action):
    def name(self) -> str:
        return "action_check_balance"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        lines = "; ".join(f"{name}: {money(amount)}" for name, amount in backend.BALANCES.items())
        dispatcher.utter_message(text=f"Here are your balances right now. {lines}. Pending card payments are "
                                 "already taken off.")
        return []


class ActionRecentTransactions(Action):
    def name(self) -> str:
        return "action_recent_transactions"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        lines = "\n".join(f"- {when}: {who} {money(amount)}" for when, who, amount in backend.TRANSACTIONS)
        dispatcher.utter_message(
            text=f"Your latest transactions on the Everyday Account:\n{lines}\nThe full history is in the app under "
            "Accounts > Transactions. If you don't recognise one of these, tell me."
        )
        return []


class ValidateUpdateAddressForm(CountingFormValidation):
    def name(self) -> str:
        return "validate_update_address_form"

    async def validate_new_postcode(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        match = UK_POSTCODE.search(str(value or ""))
        if match is None:
            return self.invalid("new_postcode", dispatcher, tracker, "utter_invalid_postcode")
        return {"new_postcode": f"{match.group(1)} {match.group(2)}".upper()}

    async def validate_new_address_line(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        line = " ".join(str(value or "").split())
        words = re.findall(r"[A-Za-z]{2,}", line)
        if not words or not (re.search(r"\d", line) or len(words) >= 2) or len(line) > 120:
            return self.invalid("new_address_line", dispatcher, tracker, "utter_invalid_address_line")
        return {"new_address_line": line}


class ActionUpdateAddress(Action):
    def name(self) -> str:
        return "action_update_address"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        escalated = finish_flow(dispatcher, tracker, domain, ADDRESS_SLOTS)
        if escalated is not None:
            return escalated
        line, postcode = tracker.get_slot("new_address_line"), tracker.get_slot("new_postcode")
        if line and postcode:
            dispatcher.utter_message(
                text=f"Done: your address is now {line}, {postcode}. We'll send a letter to both your old and new "
                "addresses to confirm the change; new cards and statements will go to the new address."
            )
        return reset_flow(ADDRESS_SLOTS)
