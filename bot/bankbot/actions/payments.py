"""Payment self-service: transfer and refund status, exchange rates."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bankbot import backend
from bankbot.actions.accounts import money

TRAVEL_MONEY_MARKUP = 0.015


class ActionTransferStatus(Action):
    def name(self) -> str:
        return "action_transfer_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        t = backend.TRANSFERS[0]
        dispatcher.utter_message(
            text=f"Your transfer of {money(t['amount'])} to {t['to']}, sent {t['sent']}, is {t['status']}: "
            f"{t['reason']}. You don't need to send it again. If it's a different transfer, you'll find its status "
            "in the app under Payments > Sent."
        )
        return []


class ActionRefundStatus(Action):
    def name(self) -> str:
        return "action_refund_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        r = backend.REFUNDS[0]
        dispatcher.utter_message(
            text=f"{r['merchant']} told us {r['notified']} about a refund of {money(r['amount'])}. Refunds reach "
            f"your account {r['expected']}, and show as pending until then. If a refund you were promised isn't "
            "listed here after 10 working days, the merchant may not have sent it yet: ask them for the refund "
            "reference first."
        )
        return []


class ActionExchangeRates(Action):
    def name(self) -> str:
        return "action_exchange_rates"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        asked = backend.currencies_in(tracker.latest_message.get("text", "")) or ["EUR", "USD"]
        lines = "; ".join(
            f"£1 = {backend.RATES[c][1]:,.4f} {c} on your card, {backend.RATES[c][1] * (1 - TRAVEL_MONEY_MARKUP):,.4f}"
            f" {c} as travel money"
            for c in asked
        )
        dispatcher.utter_message(
            text=f"Today's rates: {lines}. Card payments abroad use the rate on the day the payment is processed, "
            "plus our 2.75% foreign transaction fee."
        )
        return []
