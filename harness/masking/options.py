"""What masking looks for: the kinds (Presidio entity names and ours) in order of precedence, their placeholders
and the options.

Kept apart from `engine.py` so that importing the masking API does not import Presidio (see `__init__.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

SORT_CODE = "UK_SORT_CODE"
ACCOUNT_NUMBER = "UK_ACCOUNT_NUMBER"
PERSON = "PERSON"
STREET_ADDRESS = "STREET_ADDRESS"
UK_POSTCODE = "UK_POSTCODE"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
US_SSN = "US_SSN"

PLACEHOLDERS: Final[dict[str, str]] = {
    "card": "[card number]",
    "iban": "[IBAN]",
    "account": "[account number]",
    "sort_code": "[sort code]",
    "phone": "[phone number]",
    "email": "[email]",
    "name": "[name]",
    "address": "[address]",
    "postcode": "[postcode]",
    "date_of_birth": "[date of birth]",
    "ssn": "[SSN]",
}
"""Kind -> the readable placeholder that replaces personal data of that kind."""

PLACEHOLDER: Final = re.compile("|".join(re.escape(placeholder) for placeholder in PLACEHOLDERS.values()))

ENTITY_KINDS: dict[str, str] = {
    "EMAIL_ADDRESS": "email",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "card",
    "PHONE_NUMBER": "phone",
    SORT_CODE: "sort_code",
    ACCOUNT_NUMBER: "account",
    US_SSN: "ssn",
    DATE_OF_BIRTH: "date_of_birth",
    STREET_ADDRESS: "address",  # a street named after someone (`Baker Street`) is an address, not a name
    UK_POSTCODE: "postcode",
    PERSON: "name",
}
"""Presidio entity -> our kind, in order of precedence: where two findings overlap, the earlier kind wins."""


@dataclass(frozen=True, slots=True)
class MaskingOptions:
    """What to mask beyond the pattern kinds (cards, IBANs, e-mails, phones, sort codes, account numbers, US social
    security numbers, dates of birth introduced as such, street addresses with a house number, UK postcodes)."""

    names: bool = False
    """Also mask people's names, as spaCy's small English NER model finds them. Off by default: on the benchmark
    corpus and the baseline run it masks greetings, merchants, towns and the bank's own name (`bal pls`, `Zara`,
    `Glasgow`, `Northbank`), which QA needs to read, and takes eight times as long (bench/results/masking.md)."""


DEFAULT_OPTIONS = MaskingOptions()
