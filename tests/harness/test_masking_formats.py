"""Formats that leaked into production imports (breakit F1, F2, F4): phone numbers with a country code or in the
US layout, UK postcodes, dates of birth, US social security numbers; and the warning that names are not masked."""

from __future__ import annotations

import pytest

from harness.masking import MaskingOptions, find_pii, gaps, mask

MASKED = [
    # F1: numbers `phonenumbers` does not know as allocated (Ofcom's drama range, the US 555 exchange)
    ("call +44 7700 900123", "call [phone number]"),
    ("+447700900123", "[phone number]"),
    ("0044 7700 900123", "[phone number]"),
    ("(555) 123-4567", "[phone number]"),
    ("555-123-4567 is my cell", "[phone number] is my cell"),
    ("+1 555 123 4567", "[phone number]"),
    # F2
    ("SW1A 1AA", "[postcode]"),
    ("my postcode is DN55 1PT", "my postcode is [postcode]"),
    ("dn55 1pt", "[postcode]"),
    ("sw1a1aa", "[postcode]"),
    ("dob 01/02/1980", "dob [date of birth]"),
    ("date of birth: 1 Feb 1980", "date of birth: [date of birth]"),
    ("I was born on 14th of July 1992", "I was born on [date of birth]"),
    ("DOB is March 3, 1985", "DOB is [date of birth]"),
    ("ssn 123-45-6789", "ssn [SSN]"),
    ("social security number 219 09 9999", "social security number [SSN]"),
]

UNCHANGED = [
    "paid on 01/02/2024 at 10:30",  # a date without a birth cue is not personal data
    "born in 1980",  # a year alone
    "£1,234.56 on 12/03/2024",
    "price 0.123456",  # a valid Italian landline by `phonenumbers`, but six digits after a 0
    "case 00491823",  # `00` and a country code, too short for a number of that country
    "order 123-456789",
    "zip 94107-1234",
    "flight BA123 lands at 14:05",
    "A1 2BC",  # not a UK postcode: no C in an inward code
    "1234567",
    "000-00-0000",  # never issued
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_the_formats_that_leaked_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_harmless_numbers_stay(text: str) -> None:
    assert mask(text) == text


def test_only_the_postcode_after_an_address_is_replaced() -> None:
    text = "send it to 22 Baker Street, London NW1 6XE"
    assert [(m.kind, text[m.start : m.end]) for m in find_pii(text)] == [
        ("address", "22 Baker Street"),
        ("postcode", "NW1 6XE"),
    ]


def test_the_gap_in_names_is_named_with_how_to_close_it() -> None:
    (line,) = gaps(MaskingOptions())
    assert "names are NOT masked" in line
    assert "names: true" in line and "[names]" in line
    assert gaps(MaskingOptions(names=True)) == []
