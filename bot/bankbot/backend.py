"""A stand-in for the bank's core systems, so the reference bot's actions have something real-looking to do.

The chat is assumed to run inside the bank's app, where the customer is already signed in; every conversation
sees the same demo customer. Pure data and pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Card:
    kind: str
    """`debit` or `credit`."""
    scheme: str
    last4: str
    status: str
    """`active` or `awaiting_activation`."""


CARDS = (
    Card("debit", "Visa", "4821", "active"),
    Card("credit", "Mastercard", "7730", "active"),
    Card("debit", "Visa", "5512", "awaiting_activation"),
)
BALANCES = {"Everyday Account": 1243.57, "Rainy Day Saver": 5200.00}
TRANSACTIONS = (
    ("2 days ago", "Tesco Superstore", -54.20),
    ("2 days ago", "TfL Travel", -7.80),
    ("3 days ago", "Salary ACME Ltd", 2450.00),
    ("4 days ago", "Netflix", -10.99),
    ("5 days ago", "Amazon Marketplace", -23.49),
)
TRANSFERS = ({"to": "J Smith", "amount": 250.00, "sent": "yesterday at 16:42", "status": "pending",
              "reason": "it was sent after the 16:30 cut-off, so it will arrive by 10:00 tomorrow"},)
REFUNDS = ({"merchant": "ASOS", "amount": 39.99, "notified": "3 days ago",
            "expected": "within 5 working days of the merchant sending it"},)
# Mid-market rates per 1 GBP; our card rate adds no mark-up on these, our travel-money rate adds 1.5%.
RATES = {"EUR": ("euro", 1.1642), "USD": ("US dollar", 1.2688), "JPY": ("Japanese yen", 191.37),
         "CHF": ("Swiss franc", 1.1023), "AUD": ("Australian dollar", 1.9241), "CAD": ("Canadian dollar", 1.7452),
         "PLN": ("Polish zloty", 4.9736), "INR": ("Indian rupee", 106.55), "TRY": ("Turkish lira", 43.21)}
CURRENCY_WORDS = {"euro": "EUR", "€": "EUR", "eur": "EUR", "dollar": "USD", "usd": "USD", "$": "USD", "buck": "USD",
                  "yen": "JPY", "jpy": "JPY", "franc": "CHF", "chf": "CHF", "aud": "AUD", "australian": "AUD",
                  "cad": "CAD", "canadian": "CAD", "zloty": "PLN", "pln": "PLN", "rupee": "INR", "inr": "INR",
                  "lira": "TRY"}


def cards_of_kind(kind: str) -> list[Card]:
    return [c for c in CARDS if c.kind == kind and c.status == "active"]


def card_awaiting_activation(last4: str) -> Card | None:
    return next((c for c in CARDS if c.last4 == last4 and c.status == "awaiting_activation"), None)


def reference(prefix: str, *parts: str) -> str:
    """A stable, realistic-looking reference number for an operation."""
    return prefix + "-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:8].upper()


def currencies_in(text: str) -> list[str]:
    """Currency codes mentioned in a customer's message, in order of first mention."""
    lowered = text.lower()
    hits: list[tuple[int, str]] = []
    for word, code in CURRENCY_WORDS.items():
        pattern = rf"\b{re.escape(word)}" if word.isalpha() else re.escape(word)
        match = re.search(pattern, lowered)
        if match:
            hits.append((match.start(), code))
    ordered: list[str] = []
    for _, code in sorted(hits):
        if code not in ordered:
            ordered.append(code)
    return ordered


def delivery_due(dispatched: date) -> date:
    """Cards arrive within 5 working days of dispatch."""
    day, left = dispatched, 5
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day
