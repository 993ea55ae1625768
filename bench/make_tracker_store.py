"""A synthetic Rasa SQL tracker store: the `events` table Rasa 3.6's SQLTrackerStore writes (SQLite file), filled
with conversations of the reference bank bot (bot/) as its real tracker store records them.

    .venv/bin/python bench/make_tracker_store.py OUT.sqlite3 [--conversations 1000000] [--seed 15] [--days 30]

Layout (rasa/core/tracker_store.py, SQLTrackerStore.SQLEvent): `events(id INTEGER PK, sender_id, type_name,
timestamp REAL, intent_name, action_name, data TEXT)` with an index on sender_id; `data` is the event's `as_dict()`
as `json.dumps` writes it, `intent_name` the user event's parse_data intent, `action_name` the event's `name` (action,
slot and active_loop events). The event sequences copy a real store written by the reference bot through its
channel (event order, slot bookkeeping of action_validate_slot_mappings, forms, the escalation actions' handoff
slots `handoff_queue`/`handoff_rule`/`handoff_ticket`/`conversation_state`, metadata with model_id and
assistant_id, 10-intent rankings, text_tokens). Checked against Rasa itself (bot environment):

    .venv-bot/bin/python bench/make_tracker_store.py --check OUT.sqlite3

rebuilds every stored event with Rasa's `Event.from_parameters(...).as_dict()` and requires the same JSON byte for
byte and the same type_name/intent_name/action_name columns, then retrieves trackers (a returning customer's, all
sessions and the latest; a handed-off one) with Rasa's SQLTrackerStore.

Mix (seeded; one "conversation" here is one visit of a customer, opened by Rasa's session start):
- visits spread over `days` days with a daytime profile; ids grow with time (events of concurrent visits
  interleave as a live bot writes them);
- about 5 customer turns a visit: greetings, self-service answers (utter_* responses and custom actions), the three
  forms (block card, activate card, update address) with invalid answers and customers leaving mid-form, thanks
  and goodbyes, out-of-scope requests, NLU fallbacks (asked to rephrase; two in a row hand off), handoffs by the
  escalation policy's five rules to its six queues (bot/escalation.yml);
- about 15% of visits are followed by the same customer (sender id) coming back hours to days later (a new session);
  about 6% of visits hold a pause of 31-58 minutes (past a 30-minute inactivity timeout, inside Rasa's 60-minute
  session) and 2% a pause past an hour (Rasa starts a new session before the next message);
- about 10% of customer texts carry personal data (Luhn-valid card numbers, e-mail addresses, phone numbers, UK
  postcodes and street addresses, names), so masking does real work.

Streams: events go to SQLite in batches (executemany, one transaction a batch), so memory stays bounded (the
visit start times, 8 bytes a visit, are the largest structure). 100,000 visits made 5.3 million events and a
2.4 GB file in about 4 minutes on a busy 2-core machine (1,000,000: ten times that); try 10,000 first.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ASSISTANT = "northbank-penny"
MODELS = ("0f1bb8709f3d4e969776ee5155363f1b", "5d21f3dc7dea4720afc099e4d215bb98")
"""The model before and after a mid-window deployment (day 17)."""
FALLBACK_THRESHOLD = 0.2  # bot/config.yml FallbackClassifier threshold: nlu_fallback's confidence
CHANNEL = "reference"

INTENTS = [
    "check_balance",
    "recent_transactions",
    "update_address",
    "fees",
    "statement_request",
    "card_lost_stolen",
    "card_not_arrived",
    "card_activate",
    "pin_help",
    "card_declined",
    "request_human",
    "complaint",
    "report_fraud",
    "branch_hours",
    "out_of_scope",
    "transfer_status",
    "refund_status",
    "exchange_rates",
    "top_up",
    "greet",
    "goodbye",
    "thanks",
    "affirm",
    "deny",
    "bot_challenge",
    "inform",
]

TOPIC_QUEUE = {
    "check_balance": "accounts",
    "recent_transactions": "accounts",
    "update_address": "accounts",
    "fees": "accounts",
    "statement_request": "accounts",
    "card_lost_stolen": "cards",
    "card_not_arrived": "cards",
    "card_activate": "cards",
    "pin_help": "cards",
    "card_declined": "cards",
    "branch_hours": "general",
    "transfer_status": "payments",
    "refund_status": "payments",
    "exchange_rates": "payments",
    "top_up": "payments",
}
"""Self-service intents and the queue owning them (bot/intent_catalog.yml): the `topic` slot and `route_to: topic`."""
QUEUE_LABELS = {
    "cards": "Cards",
    "payments": "Payments",
    "fraud": "Fraud",
    "accounts": "Accounts",
    "complaints": "Customer Care",
    "general": "Customer Support",
}

RESPONSES = {
    "utter_greet": "Hi, I'm Penny, Northbank's digital assistant. I can help with cards, payments, your account and "
    "our branches. What can I do for you?",
    "utter_goodbye": "Thanks for chatting with Northbank. Take care, and come back any time.",
    "utter_you_are_welcome": "You're welcome! Is there anything else I can help with?",
    "utter_iamabot": "I'm Penny, Northbank's digital assistant, not a person. If you'd rather talk to someone from our "
    "team, just say so and I'll pass you over.",
    "utter_anything_else": "OK. Is there anything else I can help you with today?",
    "utter_out_of_scope": "Sorry, that's not something I can help with. I can help with cards, payments, transfers, "
    "your balance and account details, fees, exchange rates and branch opening hours.",
    "utter_rephrase": "Sorry, I didn't quite understand that. Could you say it another way? For example: \"I've lost "
    'my card" or "Where is my transfer?"',
    "utter_fees": "Our Everyday Account has no monthly fee. Card payments and cash withdrawals in the UK are free. "
    "Abroad, we charge 2.75% on card payments in a foreign currency and £1.50 per cash withdrawal outside the UK.",
    "utter_statement": "You can download statements for the last 7 years in the app under Accounts > Statements, as "
    "PDF, and they're accepted as proof of address and income.",
    "utter_pin_help": "For your security I can never see or send your PIN. You can view your PIN in the Northbank app "
    "under Cards > Show PIN after confirming with your fingerprint or passcode.",
    "utter_card_declined": "Sorry your card was declined. The most common reasons are: the card is frozen in the app, "
    "a daily spending or cash limit was reached, the wrong PIN was entered, or the payment looked unusual.",
    "utter_top_up": "To add money, go to Accounts > Add money in the app: you can move money from another Northbank "
    "account instantly, or pay in by debit card from another bank.",
    "utter_branch_hours": "Most Northbank branches are open Monday to Friday 9:00-17:00 and Saturday 9:00-13:00, "
    "closed Sundays and bank holidays. Our phone team is available 24/7 on 0300 555 0100.",
    "utter_ask_activation_last4": "Happy to help you activate your new card. What are the last 4 digits of the long "
    "number on the front of the card? Please don't send the full card number.",
    "utter_invalid_last4": "That doesn't match a card waiting to be activated. Please type just the last 4 digits on "
    "the front of the new card, for example 1234.",
    "utter_no_full_card_number": "For your security, please never send your full card number or PIN in a chat, not "
    "even to us. I only need the last 4 digits.",
    "utter_ask_new_postcode": "Let's update your address. What's your new postcode?",
    "utter_invalid_postcode": "That doesn't look like a UK postcode. Please type it like SW1A 1AA or M1 1AE.",
    "utter_ask_new_address_line": "Thanks. And the first line of your new address, with the house number or name?",
    "utter_ask_card_type": "I'm sorry to hear that. Which card should I block: your Visa debit card ending 4821 or "
    "your Mastercard credit card ending 7730?",
    "utter_ask_block_confirmed": "I'll block your Visa debit card ending 4821 permanently, so nobody can use it. A "
    "blocked card can't be unblocked; we'll post a replacement to your home address within 5 working days. Shall I "
    "block it now?",
    "utter_after_handoff": "A colleague from our {queue_label} team now has this conversation and will reply here. "
    "You don't need to repeat anything: they can see our chat so far. Your reference is {ticket}.",
}
ACTION_TEXTS = {
    "action_check_balance": "Here are your balances right now. Everyday Account: £1,284.17; Easy Saver: £5,020.00. "
    "Pending card payments are already taken off.",
    "action_recent_transactions": "Your last 3 transactions: 28 Oct TESCO STORES -£23.40; 27 Oct TFL TRAVEL -£6.80; "
    "27 Oct SALARY ACME LTD +£2,150.00.",
    "action_transfer_status": "Your transfer of £250.00 to J SMITH sent on 27 Oct is complete: it reached the "
    "other bank at 10:42.",
    "action_refund_status": "I can see a refund of £49.99 from ASOS is on its way: merchants' refunds usually "
    "arrive within 5 working days.",
    "action_exchange_rates": "Today's rates: 1 GBP = 1.1523 EUR, 1.2711 USD. We add no fee when you pay by card "
    "abroad in euros or dollars.",
    "action_card_delivery_status": "Your new card was posted on 24 Oct and should arrive by 31 Oct. If it hasn't "
    "arrived by then, tell me and I'll order another.",
    "action_block_card": "Done: your Visa debit card ending 4821 is now blocked (reference BLK-{ref}). Your "
    "replacement card will arrive within 5 working days.",
    "action_activate_card": "Your card ending {last4} is active now. You can use it straight away.",
    "action_update_address": "Thanks, your address is updated. We'll send a confirmation letter to the new address.",
}
INFO_RESPONSE = {
    "fees": "utter_fees",
    "statement_request": "utter_statement",
    "pin_help": "utter_pin_help",
    "card_declined": "utter_card_declined",
    "top_up": "utter_top_up",
    "branch_hours": "utter_branch_hours",
}
INFO_ACTION = {
    "check_balance": "action_check_balance",
    "recent_transactions": "action_recent_transactions",
    "transfer_status": "action_transfer_status",
    "refund_status": "action_refund_status",
    "exchange_rates": "action_exchange_rates",
    "card_not_arrived": "action_card_delivery_status",
}
TEXTS: dict[str, tuple[str, ...]] = {
    "greet": ("hi", "hello", "hi there", "good morning", "hey", "hello, hope someone can help me"),
    "goodbye": ("bye", "bye now", "thanks, bye", "goodbye", "that's all, bye"),
    "thanks": ("thanks", "thank you", "great, thanks", "cheers", "thanks a lot"),
    "affirm": ("yes", "yes please", "yep", "ok", "sure"),
    "deny": ("no", "no thanks", "nope", "not now"),
    "bot_challenge": ("am I talking to a bot?", "are you a real person", "is this a robot"),
    "out_of_scope": ("what's the weather tomorrow", "tell me a joke", "can you book me a taxi", "who won the match"),
    "check_balance": ("how much money do I have", "what's my balance", "check my balance please", "balance?"),
    "recent_transactions": ("show my last payments", "what did I spend this week", "recent transactions please"),
    "fees": ("do you charge for using my card abroad", "what are the fees on my account", "atm fees?"),
    "statement_request": ("I need a bank statement", "can I get proof of account", "statement for last month"),
    "pin_help": ("I forgot my PIN", "my pin is blocked", "how do I change my pin"),
    "card_declined": ("my card was declined", "why was my card refused at the shop", "card payment declined again"),
    "top_up": ("how do I top up", "I want to add money to my account", "top up my card"),
    "branch_hours": ("when is the branch open", "opening hours saturday?", "where is my nearest branch"),
    "transfer_status": ("where is my transfer", "my transfer hasn't arrived", "payment to my landlord is pending"),
    "refund_status": ("my refund hasn't shown up", "where's my refund from amazon", "refund still missing"),
    "exchange_rates": ("what's the euro rate", "exchange rate for dollars", "I need travel money"),
    "card_not_arrived": ("my new card hasn't arrived", "still waiting for my card", "replacement card not here"),
    "card_lost_stolen": ("I lost my card", "I think my card was stolen from my bag", "my wallet got stolen"),
    "card_activate": ("activate my new card", "how do I activate the card", "new card arrived, activate it"),
    "update_address": ("I moved house", "change my address", "I need to update my address"),
    "request_human": ("can I speak to a person", "I want a human", "agent please", "let me talk to someone real"),
    "complaint": ("I want to make a complaint", "this service is terrible", "I'm very unhappy with the bank"),
    "report_fraud": (
        "there's a payment I don't recognise",
        "I've just seen three payments to a betting site and I don't gamble",
        "I think my account was hacked",
        "I got a scam call from someone saying they're the bank",
    ),
    "unclear": ("hmm", "the thing from before", "it's not working", "help", "?", "what about the other one"),
}
FIRST_NAMES = ("Sarah", "James", "Aisha", "Tomasz", "Emily", "Oliver", "Priya", "Daniel", "Grace", "Mohammed")
LAST_NAMES = ("Thompson", "Walker", "Khan", "Nowak", "Hughes", "Patel", "O'Brien", "Evans", "Clarke", "Ahmed")
STREETS = ("Church Lane", "High Street", "Mill Road", "Station Road", "Park Avenue", "Victoria Street")
POSTCODES = ("SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "LS1 4AP", "EH1 2NG", "BS1 5TR")
TOPIC_WEIGHTS: dict[tuple[str, str], float] = {
    # (kind, intent): weight. Kinds: info (utter_*), action (custom action), form, escalate, oos, bot_challenge.
    ("info", "fees"): 4,
    ("info", "statement_request"): 4,
    ("info", "pin_help"): 4,
    ("info", "card_declined"): 5,
    ("info", "top_up"): 3,
    ("info", "branch_hours"): 4,
    ("action", "check_balance"): 7,
    ("action", "recent_transactions"): 4,
    ("action", "transfer_status"): 6,
    ("action", "refund_status"): 3,
    ("action", "exchange_rates"): 3,
    ("action", "card_not_arrived"): 4,
    ("form", "card_lost_stolen"): 6,
    ("form", "card_activate"): 4,
    ("form", "update_address"): 4,
    ("escalate", "report_fraud"): 1.5,
    ("escalate", "complaint"): 1,
    ("escalate", "request_human"): 2.5,
    ("oos", "out_of_scope"): 4,
    ("bot_challenge", "bot_challenge"): 2,
}
HOUR_PROFILE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 9, 8, 8, 7, 6, 5, 4, 3, 2], dtype=float)

P_RETURN = 0.15
P_GREET = 0.5
P_FALLBACK = 0.05
P_PII = 0.10
P_PAUSE = 0.06  # a pause past the 30-minute inactivity timeout, inside Rasa's 60-minute session
P_LONG_PAUSE = 0.02  # a pause past Rasa's session expiration: a new session before the next message
P_LEAVE_FORM = 0.08
P_INVALID = 0.12  # an invalid answer to a form question
P_ANOTHER_TOPIC = 0.72
BATCH = 50_000


@dataclass
class Stats:
    """What the generator wrote (ground truth to compare an import with)."""

    conversations: int = 0
    """Visits (each opened by Rasa's session start)."""
    senders: int = 0
    returning_visits: int = 0
    customer_turns: int = 0
    events: int = 0
    handoffs: Counter = field(default_factory=Counter)
    """`queue/rule` -> visits handed off."""
    fallbacks: int = 0
    forms_started: int = 0
    forms_left: int = 0
    pauses: int = 0
    """Pauses of 31-58 minutes between two customer turns."""
    long_pauses: int = 0
    """Pauses past an hour (a new Rasa session inside a visit)."""
    personal_data_texts: int = 0
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    seconds: float = 0.0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["handoffs"] = dict(sorted(self.handoffs.items()))
        return data


def _luhn_card(rnd: random.Random) -> str:
    digits = [4] + [rnd.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit will sit at the right: double every other from here
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4)) if rnd.random() < 0.6 else text


def _personal(rnd: random.Random, intent: str) -> str | None:
    """A customer text of `intent` carrying personal data, or None when the intent has no such phrasing."""
    first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
    if intent in ("card_declined", "card_lost_stolen", "report_fraud"):
        return f"{rnd.choice(TEXTS[intent])}, card number {_luhn_card(rnd)}"
    if intent in ("statement_request", "complaint"):
        number = rnd.randrange(100)
        domain = rnd.choice(("gmail.com", "outlook.com", "yahoo.co.uk"))
        email = f"{first.lower()}.{last.lower().replace(chr(39), '')}{number}@{domain}"
        return f"{rnd.choice(TEXTS[intent])}, email me at {email}"
    if intent in ("request_human", "transfer_status"):
        phone = f"07{rnd.randrange(100, 1000)} {rnd.randrange(100000, 1000000)}"
        return f"{rnd.choice(TEXTS[intent])}. I'm {first} {last}, call me on {phone}"
    if intent in ("check_balance", "greet"):
        return f"{rnd.choice(TEXTS[intent])}, this is {first} {last}"
    return None


@lru_cache(maxsize=4096)
def _tokens(text: str) -> str:
    """Rasa's `text_tokens` (start and end of each token) as JSON."""
    return json.dumps([[m.start(), m.end()] for m in re.finditer(r"\w+", text)])


def _value(value: Any) -> str:
    """json.dumps of a slot value, fast for the common types."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


class _Writer:
    """Buffers event rows and writes them in batches, one transaction a batch."""

    def __init__(self, db: sqlite3.Connection, stats: Stats, batch: int) -> None:
        self.db, self.stats, self.batch = db, stats, batch
        self.rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            with self.db:
                self.db.executemany(
                    "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    self.rows,
                )
            self.stats.events += len(self.rows)
            self.rows = []


class _Visit:
    """Builds one visit's events (rows of the events table without id) with their timestamps."""

    def __init__(self, sender: str, start: float, rnd: random.Random, model: str, stats: Stats) -> None:
        self.sender, self.t, self.rnd, self.stats = sender, start, rnd, stats
        self.meta = json.dumps({"model_id": model, "assistant_id": ASSISTANT})
        self.model = model
        self.rows: list[tuple[Any, ...]] = []
        self.topic: str | None = None
        self.streak = 0  # consecutive not-understood turns
        self.handed_off = False
        self.turns = 0

    # --- single events, as Event.as_dict() + json.dumps write them ---
    def _tick(self, low: float = 0.00001, high: float = 0.0001) -> float:
        self.t += self.rnd.uniform(low, high)
        return self.t

    def _row(self, type_name: str, data: str, intent: str | None = None, action: str | None = None) -> None:
        self.rows.append((self.sender, type_name, self.t, intent, action, data))

    def action(self, name: str, policy: str | None = "RulePolicy", hide: bool = False) -> None:
        ts = self._tick(0.001, 0.02)
        confidence = "null" if policy is None and name == "action_listen" else "1.0"
        policy_json = "null" if policy is None else f'"{policy}"'
        hide_json = "true" if hide else "false"
        self._row(
            "action",
            f'{{"event": "action", "timestamp": {ts!r}, "metadata": {self.meta}, "name": "{name}", "policy": '
            f'{policy_json}, "confidence": {confidence}, "action_text": null, "hide_rule_turn": {hide_json}}}',
            action=name,
        )

    def slot(self, name: str, value: Any) -> None:
        ts = self._tick()
        self._row(
            "slot",
            f'{{"event": "slot", "timestamp": {ts!r}, "metadata": {self.meta}, "name": "{name}", "value": '
            f"{_value(value)}}}",
            action=name,
        )

    def active_loop(self, name: str | None) -> None:
        ts = self._tick()
        self._row(
            "active_loop",
            f'{{"event": "active_loop", "timestamp": {ts!r}, "metadata": {self.meta}, "name": {json.dumps(name)}}}',
            action=name,
        )

    def bot(self, text: str, utter: str | None = None, template: bool = False) -> None:
        ts = self._tick()
        meta = {"model_id": self.model, "assistant_id": ASSISTANT}
        if utter:
            meta = {"utter_action": utter, **({"template": utter} if template else {}), **meta}
        self._row(
            "bot",
            f'{{"event": "bot", "timestamp": {ts!r}, "metadata": {json.dumps(meta)}, "text": {json.dumps(text)}, '
            '"data": {"elements": null, "quick_replies": null, "buttons": null, "attachment": null, "image": null, '
            '"custom": null}}',
        )

    def utter(self, name: str, hide: bool = False) -> None:
        self.action(name, hide=hide)
        self.bot(RESPONSES[name], utter=name)

    def reply(self, name: str) -> None:
        """A rule's response to the customer, then listen."""
        self.utter(name)
        self.listen(False)

    def session_start(self) -> None:
        self.action("action_session_start", policy=None)
        ts = self._tick()
        self._row("session_started", f'{{"event": "session_started", "timestamp": {ts!r}, "metadata": {self.meta}}}')
        self.action("action_listen", policy=None)

    def listen(self, hide: bool = True) -> None:
        self.action("action_listen", hide=hide)

    def user(self, intent: str, text: str, entities: list[dict[str, Any]] | None = None) -> None:
        """The customer's message after a think time, and action_validate_slot_mappings' bookkeeping slots."""
        rnd = self.rnd
        self.turns += 1
        self.stats.customer_turns += 1
        if self.turns > 1:
            pause = rnd.random()
            if pause < P_LONG_PAUSE:
                self.t += rnd.uniform(3700, 4 * 3600)
                self.stats.long_pauses += 1
                self.session_start()  # Rasa's session expired (60 minutes): a new session before the message
                self.topic, self.streak = None, 0
            elif pause < P_LONG_PAUSE + P_PAUSE:
                self.t += rnd.uniform(31 * 60, 58 * 60)
                self.stats.pauses += 1
            else:
                self.t += min(rnd.lognormvariate(3.0, 0.8), 600.0)
        else:
            self.t += rnd.uniform(0.01, 0.05)
        understood = intent != "nlu_fallback"
        if understood:
            confidence = 0.45 + 0.54 * rnd.random()
            rest = 1.0 - confidence
        else:
            self.stats.fallbacks += 1
            confidence, rest = FALLBACK_THRESHOLD, 0.35
        pool = _OTHERS[intent]
        offset = rnd.randrange(len(pool) // 2)
        ranking = [f'{{"name": "{intent}", "confidence": {confidence!r}}}']
        for other in pool[offset : offset + 9]:  # a rotation of a shuffled list: 9 other intents, decreasing
            share = rest * (0.1 + 0.4 * rnd.random())
            rest -= share
            ranking.append(f'{{"name": "{other}", "confidence": {share!r}}}')
        message_id = f"{rnd.getrandbits(128):032x}"
        quoted = json.dumps(text)
        parse = (
            f'{{"intent": {{"name": "{intent}", "confidence": {confidence!r}}}, "entities": '
            f'{json.dumps(entities) if entities else "[]"}, "text": {quoted}, "message_id": "{message_id}", '
            f'"metadata": {{}}, "text_tokens": {_tokens(text)}, "intent_ranking": [{", ".join(ranking)}]}}'
        )
        ts = self.t
        self._row(
            "user",
            f'{{"event": "user", "timestamp": {ts!r}, "metadata": {self.meta}, "text": {quoted}, '
            f'"parse_data": {parse}, "input_channel": "{CHANNEL}", "message_id": "{message_id}"}}',
            intent=intent,
        )
        self._tick(0.005, 0.06)  # NLU and the slot-mapping action
        if intent in TOPIC_QUEUE:
            self.topic = intent
            self.slot("topic", intent)
        self.streak = 0 if understood else self.streak + 1
        self.slot("not_understood_streak", float(self.streak))
        self.slot("conversation_state", "active")
        ts = self._tick(0.003, 0.03)
        self._row(
            "user_featurization",
            f'{{"event": "user_featurization", "timestamp": {ts!r}, "metadata": {self.meta}, '
            '"use_text_for_featurization": false}',
        )

    def say(self, intent: str) -> str:
        """A customer text for `intent`, with personal data now and then."""
        if self.rnd.random() < P_PII:
            text = _personal(self.rnd, intent)
            if text is not None:
                self.stats.personal_data_texts += 1
                return text
        return self.rnd.choice(TEXTS[intent])

    # --- bot behaviour ---
    def hand_off(self, rule: str, queue: str, in_form: bool = False) -> None:
        ticket = f"T-{self.rnd.getrandbits(48):012X}"
        self.bot(RESPONSES["utter_after_handoff"].format(queue_label=QUEUE_LABELS[queue], ticket=ticket))
        self.slot("handoff_queue", queue)
        self.slot("handoff_rule", rule)
        self.slot("handoff_ticket", ticket)
        self.slot("conversation_state", "handed_off")
        if in_form:
            self.active_loop(None)
            self.slot("requested_slot", None)
        self.listen()
        self.handed_off = True
        self.stats.handoffs[f"{queue}/{rule}"] += 1

    def not_understood(self, in_form: bool = False) -> None:
        """A fallback turn: ask to rephrase, or hand off on the second in a row (`not_understood_twice`)."""
        self.action("action_not_understood", hide=True)
        if self.streak >= 2:
            self.hand_off("not_understood_twice", TOPIC_QUEUE.get(self.topic or "", "general"), in_form)
        else:
            self.bot(RESPONSES["utter_rephrase"], utter="utter_rephrase", template=True)
            self.listen()

    def ask(self, intent: str, respond: Callable[[], None]) -> bool:
        """One customer request of `intent`, possibly misunderstood first; False when the visit ended (handoff)."""
        while self.rnd.random() < P_FALLBACK:
            self.user(
                "nlu_fallback", self.say(intent) if self.rnd.random() < 0.5 else self.rnd.choice(TEXTS["unclear"])
            )
            self.not_understood()
            if self.handed_off:
                return False
        self.user(intent, self.say(intent))
        respond()
        return not self.handed_off

    def topic_turns(self, kind: str, intent: str) -> bool:
        """A topic of the visit; False when the visit ended inside it (handoff or the customer left)."""
        if kind == "info":
            return self.ask(intent, lambda: self.reply(INFO_RESPONSE[intent]))
        if kind == "action":

            def run() -> None:
                self.action(INFO_ACTION[intent])
                self.bot(ACTION_TEXTS[INFO_ACTION[intent]])
                self.listen(False)

            return self.ask(intent, run)
        if kind == "oos":
            return self.ask(intent, lambda: self.reply("utter_out_of_scope"))
        if kind == "bot_challenge":
            return self.ask(intent, lambda: self.reply("utter_iamabot"))
        if kind == "escalate":

            def escalate() -> None:
                self.action("action_escalate", hide=True)
                if intent == "report_fraud":
                    self.hand_off("fraud_immediate", "fraud")
                elif intent == "complaint":
                    self.hand_off("complaint_immediate", "complaints")
                else:
                    self.hand_off("explicit_human_request", TOPIC_QUEUE.get(self.topic or "", "general"))

            return self.ask(intent, escalate)
        return self.form(intent)

    def form(self, intent: str) -> bool:
        name = {"card_lost_stolen": "block_card_form", "card_activate": "activate_card_form"}.get(
            intent, "update_address_form"
        )
        questions: list[tuple[str, str]] = {
            "block_card_form": [("card_type", "utter_ask_card_type"), ("block_confirmed", "utter_ask_block_confirmed")],
            "activate_card_form": [("activation_last4", "utter_ask_activation_last4")],
            "update_address_form": [
                ("new_postcode", "utter_ask_new_postcode"),
                ("new_address_line", "utter_ask_new_address_line"),
            ],
        }[name]

        def start() -> None:
            self.action(name)
            self.active_loop(name)
            self.slot("topic", intent)
            self.slot("not_understood_streak", 0.0)
            self.slot("conversation_state", "active")
            self.slot("invalid_inputs", 0.0)
            self.slot("requested_slot", questions[0][0])
            self.bot(RESPONSES[questions[0][1]], utter=questions[0][1])
            self.listen()

        if not self.ask(intent, start):
            return False
        self.stats.forms_started += 1
        rnd = self.rnd
        invalid = 0
        for index, (slot, _) in enumerate(questions):
            while True:
                if rnd.random() < P_LEAVE_FORM / len(questions):
                    self.stats.forms_left += 1
                    return False  # the customer left while the form waited for an answer
                valid = rnd.random() >= P_INVALID
                answer, answer_intent, entities, value = self._form_answer(slot, valid)
                self.user(answer_intent, answer, entities)
                self.action(name, hide=True)
                if not valid:
                    invalid += 1
                    self.slot("invalid_inputs", float(invalid))
                    if invalid >= 3:
                        self.hand_off("failed_self_service", TOPIC_QUEUE[intent], in_form=True)
                        return False
                    self.bot(
                        RESPONSES["utter_no_full_card_number"]
                        if slot == "activation_last4" and len(answer) > 8
                        else RESPONSES["utter_invalid_postcode" if slot == "new_postcode" else "utter_invalid_last4"]
                    )
                    self.listen()
                    continue
                self.slot(slot, value)
                if index + 1 < len(questions):
                    following = questions[index + 1]
                    self.slot("requested_slot", following[0])
                    self.bot(RESPONSES[following[1]], utter=following[1])
                    self.listen()
                break
        self.slot("requested_slot", None)
        self.active_loop(None)
        done = {
            "block_card_form": "action_block_card",
            "activate_card_form": "action_activate_card",
            "update_address_form": "action_update_address",
        }[name]
        self.action(done)
        text = ACTION_TEXTS[done].format(ref=f"{rnd.getrandbits(32):08X}", last4=f"{rnd.randrange(10000):04d}")
        self.bot(text)
        for slot, _ in questions:
            self.slot(slot, None)
        self.slot("invalid_inputs", 0.0)
        self.slot("flow_failed", None)
        self.listen(False)
        return True

    def _form_answer(self, slot: str, valid: bool) -> tuple[str, str, list[dict[str, Any]] | None, Any]:
        rnd = self.rnd
        if slot == "card_type":
            kind = rnd.choice(("debit", "credit"))
            text = f"the {kind} one" if valid else rnd.choice(("the blue one", "not sure"))
            start = text.find(kind)
            entities = (
                [
                    {
                        "entity": "card_type",
                        "start": start,
                        "end": start + len(kind),
                        "confidence_entity": rnd.uniform(0.8, 0.99),
                        "value": kind,
                        "extractor": "CRFEntityExtractor",
                        "processors": ["EntitySynonymMapper"],
                    }
                ]
                if valid
                else None
            )
            return text, "inform", entities, kind
        if slot == "block_confirmed":
            text = rnd.choice(TEXTS["affirm"]) if valid else "what do you mean"
            return text, "affirm" if valid else "inform", None, True
        if slot == "activation_last4":
            if valid:
                last4 = f"{rnd.randrange(10000):04d}"
                return f"it ends {last4}" if rnd.random() < 0.5 else last4, "inform", None, last4
            self.stats.personal_data_texts += 1
            return _luhn_card(rnd), "inform", None, None  # the full number, which the bot refuses
        if slot == "new_postcode":
            postcode = rnd.choice(POSTCODES)
            if valid:
                self.stats.personal_data_texts += 1
            return (postcode if valid else "my new house"), "inform", None, postcode
        address = f"{rnd.randrange(1, 200)} {rnd.choice(STREETS)}"
        self.stats.personal_data_texts += 1
        return address, "inform", None, address

    def play(self) -> None:
        """The visit: session start, an optional greeting, one or more topics, thanks and goodbye or leaving."""
        rnd = self.rnd
        self.session_start()
        if rnd.random() < P_GREET:
            self.ask("greet", lambda: self.reply("utter_greet"))
        while not self.handed_off:
            kind, intent = _TOPICS[bisect.bisect(_TOPIC_CUMULATIVE, rnd.random() * _TOPIC_CUMULATIVE[-1])]
            if not self.topic_turns(kind, intent):
                return
            if rnd.random() >= P_ANOTHER_TOPIC:
                break
        ending = rnd.random()
        if ending < 0.55:
            self.ask("thanks", lambda: self.reply("utter_you_are_welcome"))
            if rnd.random() < 0.5:
                self.goodbye()
        elif ending < 0.8:
            self.goodbye()
        # else: the customer just leaves after the answer

    def goodbye(self) -> None:
        def bye() -> None:
            self.utter("utter_goodbye")
            self.action("action_end_conversation")
            self.slot("conversation_state", "ended")
            self.listen(False)

        self.ask("goodbye", bye)


_TOPICS = list(TOPIC_WEIGHTS)
_OTHERS = {
    intent: (lambda others: others + others)(
        random.Random(i).sample([o for o in INTENTS if o != intent], len(INTENTS) - 1)
    )
    for i, intent in enumerate([*INTENTS, "nlu_fallback"])
}
"""Per intent: the other intents in a fixed shuffled order, twice (a ranking takes 9 from a random offset)."""
_TOPIC_CUMULATIVE = list(np.cumsum([TOPIC_WEIGHTS[t] for t in _TOPICS]).astype(float))


def visit_starts(conversations: int, start: datetime, days: int, seed: int) -> np.ndarray:
    """Sorted epoch seconds of the visits' starts: uniform days, a daytime hour profile."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, days, conversations)
    hour = rng.choice(24, conversations, p=HOUR_PROFILE / HOUR_PROFILE.sum())
    seconds = day * 86400.0 + hour * 3600.0 + rng.random(conversations) * 3600.0
    seconds.sort()
    return start.timestamp() + seconds


def _sender_name(number: int) -> str:
    return f"web-{(number * 2654435761) % 2**32:08x}-{number:07d}"


def generate_rows(
    conversations: int, seed: int = 15, start: datetime | None = None, days: int = 30, stats: Stats | None = None
) -> Iterator[tuple[Any, ...]]:
    """The events table's rows (without id) of `conversations` visits in time order (a live bot's write order)."""
    stats = stats if stats is not None else Stats()
    start = start or datetime(2026, 10, 1, tzinfo=UTC)
    starts = visit_starts(conversations, start, days, seed)
    switch = (start + timedelta(days=17)).timestamp()
    rnd = random.Random(seed)
    owner = np.full(conversations, -1, dtype=np.int64)  # visit -> returning sender number, -1: a new sender
    pending: list[tuple[float, int, tuple[Any, ...]]] = []
    sequence = 0
    for index in range(conversations):
        t0 = float(starts[index])
        while pending and pending[0][0] <= t0:
            yield heapq.heappop(pending)[2]
        if owner[index] >= 0:
            number = int(owner[index])
            stats.returning_visits += 1
        else:
            number = stats.senders
            stats.senders += 1
        visit = _Visit(_sender_name(number), t0, rnd, MODELS[t0 >= switch], stats)
        visit.play()
        stats.conversations += 1
        for row in visit.rows:
            sequence += 1
            heapq.heappush(pending, (row[2], sequence, row))
        if rnd.random() < P_RETURN:
            comes_back = visit.t + 2 * 3600 + rnd.expovariate(1 / (2.5 * 86400))
            slot = int(np.searchsorted(starts, comes_back))
            while slot < conversations and owner[slot] >= 0:
                slot += 1
            if slot < conversations:
                owner[slot] = number
    while pending:
        yield heapq.heappop(pending)[2]


def create_events_table(db: sqlite3.Connection) -> None:
    """The events table exactly as SQLAlchemy creates Rasa's SQLEvent on SQLite."""
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER NOT NULL,
            sender_id VARCHAR(255) NOT NULL,
            type_name VARCHAR(255) NOT NULL,
            timestamp FLOAT,
            intent_name VARCHAR(255),
            action_name VARCHAR(255),
            data TEXT,
            PRIMARY KEY (id)
        );
        CREATE INDEX ix_events_sender_id ON events (sender_id);
        """
    )


def generate(
    path: Path,
    conversations: int = 1_000_000,
    seed: int = 15,
    start: datetime | None = None,
    days: int = 30,
    batch: int = BATCH,
    progress: Callable[[Stats], None] | None = None,
) -> Stats:
    """Write a new SQLite tracker store at `path` (replaced if it exists) and return what was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    stats = Stats()
    started = time.perf_counter()
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        create_events_table(db)
        writer = _Writer(db, stats, batch)
        reported = 0
        for row in generate_rows(conversations, seed, start, days, stats):
            writer.add(row)
            if stats.first_timestamp is None:
                stats.first_timestamp = row[2]
            stats.last_timestamp = row[2]
            if progress and stats.events - reported >= 2_000_000:
                reported = stats.events
                progress(stats)
        writer.flush()
    finally:
        db.close()
    stats.seconds = time.perf_counter() - started
    stats.bytes = path.stat().st_size
    return stats


def check_with_rasa(path: Path, limit: int = 200_000) -> dict[str, Any]:
    """Read the store back with Rasa (run in the bot environment): every event of the first `limit` rows must be what
    Rasa's `Event.as_dict()` writes, byte for byte, with matching columns; trackers must load with SQLTrackerStore.
    Raises AssertionError on the first difference; returns what was checked."""
    import asyncio

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event

    db = sqlite3.connect(path)
    checked = Counter()
    query = "SELECT id, type_name, intent_name, action_name, data FROM events ORDER BY id LIMIT ?"
    for row_id, type_name, intent, action, data in db.execute(query, (limit,)):
        event = Event.from_parameters(json.loads(data))
        again = event.as_dict()
        assert json.dumps(again) == data, (
            f"event {row_id}: Rasa writes {json.dumps(again)[:300]}, we wrote {data[:300]}"
        )
        assert type_name == event.type_name, f"event {row_id}: type_name {type_name} != {event.type_name}"
        assert intent == again.get("parse_data", {}).get("intent", {}).get("name"), f"event {row_id}: intent_name"
        assert action == again.get("name"), f"event {row_id}: action_name"
        checked[type_name] += 1
    domain = Domain.load(str(Path(__file__).resolve().parent.parent / "bot" / "domain"))
    store = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(path))
    returning = db.execute(
        "SELECT sender_id FROM events WHERE type_name = 'session_started' "
        "GROUP BY sender_id HAVING count(*) > 1 LIMIT 1"
    ).fetchone()[0]
    handed_off = db.execute("SELECT sender_id FROM events WHERE action_name = 'handoff_ticket' LIMIT 1").fetchone()[0]
    trackers = {}
    for sender in (returning, handed_off):
        full = asyncio.run(store.retrieve_full_tracker(sender))
        latest = asyncio.run(store.retrieve(sender))
        rows = db.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[0]
        assert full is not None and latest is not None and len(full.events) == rows, f"{sender}: tracker != rows"
        trackers[sender] = {
            "rows": rows,
            "sessions": sum(1 for e in full.events if e.type_name == "session_started"),
            "latest_session_events": len(latest.events),
            "slots": {k: v for k, v in latest.current_slot_values().items() if v is not None},
        }
    assert trackers[handed_off]["slots"].get("conversation_state") == "handed_off"
    db.close()
    return {"events_identical_to_rasa": dict(checked), "trackers": trackers}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the SQLite file to write (replaced), or to check with --check")
    parser.add_argument("--check", action="store_true", help="check an existing store with Rasa (bot environment)")
    parser.add_argument("--conversations", type=int, default=1_000_000, help="visits to generate")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2026-10-01", help="first day (UTC)")
    args = parser.parse_args(argv)
    if args.check:
        print(json.dumps(check_with_rasa(args.out), indent=2, default=str))
        return
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)

    def progress(stats: Stats) -> None:
        print(f"  {stats.conversations:,} visits, {stats.events:,} events", file=sys.stderr, flush=True)

    stats = generate(args.out, args.conversations, args.seed, start, args.days, progress=progress)
    print(json.dumps(stats.to_json(), indent=2))


if __name__ == "__main__":
    main()
