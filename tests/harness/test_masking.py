"""Masking personal data in dialogs: what is masked, what must stay readable for QA, precedence, structure."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.review.masking import PLACEHOLDERS, PiiMatch, find_pii, mask, mask_value

# No example database: the tests must not write files into the working tree.
PROPERTY = settings(database=None, max_examples=300)

MASKED = [
    # Cards: spaced, dashed, run together, Amex layout, inside a sentence.
    ("my card is 4111 1111 1111 1111 and it's blocked", "my card is [card number] and it's blocked"),
    ("4111-1111-1111-1111", "[card number]"),
    ("4111111111111111", "[card number]"),
    ("amex 3782 822463 10005 please", "amex [card number] please"),
    ("card:5555555555554444.", "card:[card number]."),
    ("4111 1111 1111 1111 (expires 04/27)", "[card number] (expires 04/27)"),
    # IBANs: any country, spaced or not, any case; a word after a 4-aligned IBAN is not swallowed.
    ("GB82 WEST 1234 5698 7654 32", "[IBAN]"),
    ("gb82west12345698765432", "[IBAN]"),
    ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
    ("pay to FR14 2004 1010 0505 0001 3M02 606 today", "pay to [IBAN] today"),
    ("BE68 5390 0754 7034 with thanks", "[IBAN] with thanks"),
    # Account numbers and sort codes.
    ("account 12345678", "account [account number]"),
    ("acc no. 123456, old one 123456789012", "acc no. [account number], old one [account number]"),
    ("sort code 12-34-56", "sort code [sort code]"),
    ("sort code 12 34 56 thanks", "sort code [sort code] thanks"),
    ("12-34-56 12345678", "[sort code] [account number]"),
    ("12345678 12 34 56", "[account number] [sort code]"),
    # Account numbers read out in groups, or glued to a cue word; a grouped card number passes the Luhn check.
    ("my account is 3192 6819", "my account is [account number]"),
    ("acct no 31 92 68 19 thanks", "acct no [account number] thanks"),
    ("12-34-56-78", "[account number]"),  # four pairs: not a sort code, but an account number
    ("it's 3 1 9 2 6 8 1 9", "it's [account number]"),
    (
        "acc31926819, ACCT#31926819 or a/c 31926819",
        "acc[account number], ACCT#[account number] or a/c [account number]",
    ),
    ("number 4111 11111111 1111", "number [card number]"),
    ("on 2024-11-03 31926819", "on 2024-11-03 [account number]"),
    # Phone numbers: UK mobile and landline, +44 with and without (0), brackets, 0044, other countries.
    ("call me on 07700 900123", "call me on [phone number]"),
    ("07700900123", "[phone number]"),
    ("020 7946 0958", "[phone number]"),
    ("(0161) 496 0000 after 5", "[phone number] after 5"),
    ("+44 7700 900123", "[phone number]"),
    ("+44 (0)20 7946 0958", "[phone number]"),
    ("0044 20 7946 0958", "[phone number]"),
    ("+447700900123", "[phone number]"),
    ("+33 1 23 45 67 89", "[phone number]"),
    ("+1 (212) 555-0199", "[phone number]"),
    ("(07700 900123)", "([phone number])"),
    ("call 07700 900123 2 times", "call [phone number] 2 times"),
    ("07700 900123 07700 900124", "[phone number] [phone number]"),
    # E-mail addresses, without the full stop that ends the sentence.
    ("john.smith+bank@example.co.uk", "[email]"),
    ("write to a_b-c@mail-server.example.org.", "write to [email]."),
    # Two kinds at once; everything else byte for byte, including emoji, tabs and newlines.
    (
        "Hi 👋\nI'm jo@example.com,\tcard 4111 1111 1111 1111, £89 due 12/03/2024",
        "Hi 👋\nI'm [email],\tcard [card number], £89 due 12/03/2024",
    ),
    (
        "phone:07700900123, iban:GB82WEST12345698765432, sort 12-34-56 acc 87654321",
        "phone:[phone number], iban:[IBAN], sort [sort code] acc [account number]",
    ),
    # Glued together: each neighbour is found even where the other made it look like part of a longer token.
    ("a.b@example.com4111 1111 1111 1111", "[email][card number]"),
    ("12-34-56+44 (0)20 7946 0958", "[sort code][phone number]"),
    ("a.b@example.coma.b@example.com", "[email][email]"),
]

UNCHANGED = [
    "",
    "I was charged £89 twice",
    "the balance is £1,250.00",
    "I sent 2500 pounds",
    "23.49 left",
    "a mortgage of £125000 or 125000 pounds or 1250000.00 in total",
    "on 12/03/2024 or 2024-03-12 at 10:30",
    "since 2024",
    "last 4 digits 1234",
    "card ending 4421",
    "I live at SW1A 1AA and EC1A 1BB",
    "3 payments of 20 each",
    "Lost my card, please help!",
    "ab12 word more text here",  # looks like an IBAN, but the check digits are wrong
    "ref AB12345678",  # digits glued to letters are a reference, not an account number
    "accommodation123456",  # ... unless the letters are an account cue
    "on 12 03 2024, 2024 03 12 or 1-3-2024",  # dates written with spaces or dashes
    "I sent 10 000 000 pounds",
    "card ending 4421 expiring 03 27",
    "12345678901234567890",  # 20 digits: too long for any kind
    "price 0.123456",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_personal_data_is_masked_and_the_rest_kept(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_amounts_dates_short_numbers_and_words_stay_readable(text: str) -> None:
    assert mask(text) == text
    assert find_pii(text) == []


def test_none_stays_none() -> None:
    assert mask(None) is None


@pytest.mark.parametrize("text", [text for text, _ in MASKED])
def test_masking_twice_changes_nothing(text: str) -> None:
    once = mask(text)
    assert once != text
    assert mask(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", [("card", "4111 1111 1111 1111")]),
        ("GB82 WEST 1234 5698 7654 32", [("iban", "GB82 WEST 1234 5698 7654 32")]),
        ("account 12345678", [("account", "12345678")]),
        ("acct#12345678", [("account", "12345678")]),  # the cue word stays readable
        ("4111 11111111 1111", [("card", "4111 11111111 1111")]),  # passes the Luhn check: a card
        ("4111 11111111 1112", [("account", "4111 11111111 1112")]),  # fails it: an account number
        ("sort code 12-34-56", [("sort_code", "12-34-56")]),
        ("on +44 7700 900123 now", [("phone", "+44 7700 900123")]),
        ("mail a.b@example.com.", [("email", "a.b@example.com")]),
        (
            "x@y.com 07700 900123 4111111111111111",
            [("email", "x@y.com"), ("phone", "07700 900123"), ("card", "4111111111111111")],
        ),
    ],
)
def test_find_pii_names_the_kind_and_the_exact_span(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(m.kind, text[m.start : m.end]) for m in find_pii(text)] == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("12345678@example.com", "email"),  # digits in an address are not also an account number
        ("gb82west12345698765432", "iban"),  # the digits of an IBAN are not also a card or account number
        ("4111111111111111", "card"),  # 16 digits are a card, not an account number
        ("07700900123", "phone"),  # 11 digits starting 0 are a phone, not an account number
        ("00447700900123", "phone"),  # 14 digits, but no card number starts with 0
        ("01-23-45", "sort_code"),  # a sort code starting with 0 is not a phone number
        ("01234567", "account"),  # 8 digits starting 0 are too short for a UK phone number
    ],
)
def test_an_earlier_kind_takes_precedence(text: str, kind: str) -> None:
    assert find_pii(text) == [PiiMatch(kind, 0, len(text))]


def test_an_iban_with_wrong_check_digits_is_not_an_iban_but_its_digits_are_still_masked() -> None:
    text = "GB83 WEST 1234 5698 7654 32"
    assert [(m.kind, text[m.start : m.end]) for m in find_pii(text)] == [("card", "1234 5698 7654 32")]


def test_placeholders_cover_every_kind_and_contain_nothing_maskable() -> None:
    assert set(PLACEHOLDERS) == {"card", "iban", "account", "sort_code", "phone", "email"}
    for placeholder in PLACEHOLDERS.values():
        assert find_pii(placeholder) == []


def test_a_match_is_immutable() -> None:
    match = PiiMatch("card", 0, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.start = 1  # type: ignore[misc]


def test_mask_value_masks_strings_at_any_depth_and_leaves_other_values() -> None:
    slots = {
        "email": "jo@example.com",
        "amount": 89.5,
        "confirmed": True,
        "missing": None,
        "account_number": 12345678,  # a number that is personal data: masked all the same
        "attempts": 3,
        "history": [
            {"text": "call 07700 900123", "intent": "request_callback"},
            ("sort code 12-34-56", 3),
        ],
        "07700 900123": "keys are names, not data",
    }
    assert mask_value(slots) == {
        "email": "[email]",
        "amount": 89.5,
        "confirmed": True,
        "missing": None,
        "account_number": "[account number]",
        "attempts": 3,
        "history": [
            {"text": "call [phone number]", "intent": "request_callback"},
            ("sort code [sort code]", 3),
        ],
        "07700 900123": "keys are names, not data",
    }


def test_mask_value_does_not_change_its_input() -> None:
    message = {"text": "my card is 4111 1111 1111 1111", "buttons": ["07700 900123"]}
    mask_value(message)
    assert message == {"text": "my card is 4111 1111 1111 1111", "buttons": ["07700 900123"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4111111111111111", "[card number]"),
        ("", ""),
        (None, None),
        (7, 7),
        (12345678, "[account number]"),
        (2.5, 2.5),
        (True, True),
    ],
)
def test_mask_value_on_a_single_value(value: object, expected: object) -> None:
    assert mask_value(value) == expected


FRAGMENTS = st.sampled_from(
    [
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "07700 900123",
        "+44 (0)20 7946 0958",
        "12-34-56",
        "12345678",
        "a.b@example.com",
        "£1,250.00",
        "2024",
        "0",
        "7",
        " ",
        "-",
        "(",
        ")",
        "+",
        "@",
        ".",
        "ab",
    ]
)
DIALOG_TEXT = st.lists(FRAGMENTS, max_size=12).map("".join)


@PROPERTY
@given(DIALOG_TEXT)
def test_matches_are_in_order_non_overlapping_and_masking_is_idempotent(text: str) -> None:
    matches = find_pii(text)
    assert all(m.kind in PLACEHOLDERS and 0 <= m.start < m.end <= len(text) for m in matches)
    assert all(a.end <= b.start for a, b in zip(matches, matches[1:], strict=False))
    once = mask(text)
    assert mask(once) == once


@PROPERTY
@given(st.text().filter(lambda text: "@" not in text and not any(char.isdigit() for char in text)))
def test_text_without_digits_or_at_signs_is_never_changed(text: str) -> None:
    assert mask(text) == text
