"""The review app's masking before Presidio (harness/masking.py at commit b7f0a6a), frozen byte for byte
below this paragraph and kept only so that bench/masking_bench.py can measure it beside the current masking in one
run. Nothing else imports it; do not fix it: its leaks and over-masks are what the benchmark's first column shows.

Mask personal data in dialog text before it is stored for QA review, shown or exported.

Customers of a UK retail bank type card numbers, IBANs, account numbers, sort codes, phone numbers and e-mail
addresses into the chat. None of that is needed to judge the bot's decisions, and COPC asks contact centres to
protect customer data in everything their tooling stores, so every dialog passes through `mask` (or
`mask_value` for slots and structured bot messages) first. Each item found is replaced by a readable
placeholder from `PLACEHOLDERS`; everything else is kept byte for byte.

Kinds are looked for in a fixed order, and text taken by an earlier kind is not looked at again:

1. e-mail addresses;
2. IBANs of any country, with or without spaces, any case; the ISO 13616 check digits must be right, so that
   ordinary words that happen to look like `ab12 word` are left alone;
3. payment card numbers: 13-19 digits run together, or in the printed groups 4-4-4-4(-3) / 4-6-5 separated by
   single spaces or dashes (always the same separator), first digit not 0;
4. phone numbers: UK numbers with a leading 0 (10-11 digits, area code optionally in brackets), +44 / 0044
   numbers (optionally with `(0)`), and other international numbers written with `+` or `00` (8-15 digits);
5. UK sort codes written 12-34-56 or 12 34 56;
6. digits read out in groups (`3192 6819`, `31 92 68 19`, `4111 11111111 1111`): 8-19 digits in two or more
   groups separated by single spaces or dashes, not a date and not a money amount; a card number if 13-19
   digits pass the Luhn check, otherwise an account number;
7. account numbers: 6-12 digits in a row (8 is the UK norm), not part of a word, a decimal or a money amount,
   except straight after an account cue (`acc12345678`, `acct#12345678`, `a/c12345678`).

Left alone on purpose: money amounts, dates, times, years, postcodes, references with digits glued to other
letters (`AB12345678`), and short numbers such as the last four digits of a card, which QA needs to follow the
conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar, cast

PLACEHOLDERS: Final[dict[str, str]] = {
    "card": "[card number]",
    "iban": "[IBAN]",
    "account": "[account number]",
    "sort_code": "[sort code]",
    "phone": "[phone number]",
    "email": "[email]",
}

_EMAIL = re.compile(
    r"""
    (?<![\w.%+-])[\w.%+-]+                             # local part, not glued to a longer token
    @(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+   # domain labels
    [A-Za-z]{2,}(?![A-Za-z-])                          # top-level domain (digits may follow: "x@y.com07700")
    """,
    re.VERBOSE,
)

# Candidates only: the check digits decide (`_is_iban`), and trailing words are trimmed off.
_IBAN = re.compile(
    r"""
    (?<![A-Z0-9])[A-Z]{2}\d{2}         # country code and check digits
    (?:[ ]?[A-Z0-9]{4}){2,7}           # BBAN in groups of four, spaces optional
    (?:[ ]?[A-Z0-9]{1,3})?             # short last group
    (?![A-Z0-9])
    """,
    re.VERBOSE | re.IGNORECASE,
)

_CARD = re.compile(
    r"""
    (?<![\d+])
    (?:
        [1-9]\d{12,18}                                                   # run together
      | [1-9]\d{3}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}(?:(?P=sep)\d{1,3})?   # 4-4-4-4(-3)
      | [1-9]\d{3}(?P<amex>[ -])\d{6}(?P=amex)\d{4,5}                    # 4-6-5 (Amex), 4-6-4 (Diners)
    )
    (?!\d)
    """,
    re.VERBOSE,
)

# Candidates only: the digit count decides (`_is_phone`), and trailing number groups are trimmed off.
_PHONE = re.compile(
    r"""
    (?<![\w+])(?<!\d-)                               # not glued on, not the end of a date
    (?:
        (?:\+|00)\d{1,3}[ -]?(?:\(\d{1,4}\)[ -]?)?   # +44, 0044, +353; then (0) or an area code like (212)
      | \(0\d{2,4}\)[ -]?                           # UK area code in brackets: (0161)
      | 0                                           # UK trunk prefix
    )
    \d(?:[ -]?\d){0,15}                             # bounded: no phone number has more than 15 digits
    """,
    re.VERBOSE,
)

_SORT_CODE = re.compile(
    r"""
    (?<![\w£$€.,-])\d{2}-\d{2}-\d{2}(?!\w)(?!-\d)                   # 12-34-56, not 12-34-56-78
  | (?<![\w£$€.,])(?<!(?<!\d)\d{2}[ ])                             # 12 34 56, not a longer run of pairs
    \d{2}[ ]\d{2}[ ]\d{2}(?!\w)(?![ ]\d{2}(?!\w))
    """,
    re.VERBOSE,
)

_GROUPED = re.compile(
    r"""
    (?<![\w£$€.,()+])(?<![£$€][ ])(?<!\d[ -])             # not in a word, amount or phone, not mid-sequence
    \d{1,8}(?:[ -]\d{1,8}){1,18}                           # two or more groups; the validator counts digits
    (?!\w)(?![.,]\d)
    (?![ ]?(?i:pounds?|quid|gbp|euros?|eur|usd|dollars?)\b)
    """,
    re.VERBOSE,
)

_ACCOUNT = re.compile(
    r"""
    (?<![\w£$€])(?<![£$€][ ])(?<!\d[.,])                  # not in a word, a money amount or a decimal
    \d{6,12}
    (?!\w)(?![.,]\d)
    (?![ ]?(?i:pounds?|quid|gbp|euros?|eur|usd|dollars?)\b)
    """,
    re.VERBOSE,
)

# Only the digits (group `pii`) are masked; the cue stays for QA to read.
_CUED_ACCOUNT = re.compile(
    r"""
    (?<![A-Za-z])(?i:acc|acct|account|a/c)(?i:[ ]?(?:no|num|number))?[.:#]?
    (?P<pii>\d{6,12})(?!\w)(?![.,]\d)
    """,
    re.VERBOSE,
)

_SEPARATORS: Final = " -"
_FILLER: Final = "\x00"  # stands in for text already taken: not a word character, digit or separator

Validator = Callable[[str], bool]


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its kind (a key of `PLACEHOLDERS`) and its span in the text."""

    kind: str
    start: int
    end: int


def _always(_: str) -> bool:
    return True


def _is_iban(candidate: str) -> bool:
    """ISO 13616: 15-34 characters, and moving the first four to the end gives a number that is 1 modulo 97."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _is_phone(candidate: str) -> bool:
    """Plausible length: UK national 10-11 digits, +44 9-10 after the country code, other countries 8-15."""
    digits = re.sub(r"\D", "", candidate.replace("(0)", ""))
    if candidate.startswith("00"):
        digits = digits[2:]
    elif not candidate.startswith("+"):
        return 10 <= len(digits) <= 11
    if digits.startswith("44"):
        return 11 <= len(digits) <= 12
    return 8 <= len(digits) <= 15


def _digit_groups(candidate: str) -> list[str]:
    return re.split(r"[ -]", candidate)


def _starts_with_a_date(groups: list[str]) -> bool:
    """2024-03-12, 12 03 2024, 1-3-2024: a year of four digits before or after a day and month of one or two."""
    if len(groups) < 3:
        return False
    lengths = [len(group) for group in groups[:3]]
    return (lengths[0] == 4 and lengths[1] <= 2 and lengths[2] <= 2) or (
        lengths[0] <= 2 and lengths[1] <= 2 and lengths[2] == 4
    )


def _luhn(digits: str) -> bool:
    """The check digit of payment card numbers (ISO/IEC 7812)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _is_grouped_card(candidate: str) -> bool:
    groups = _digit_groups(candidate)
    digits = "".join(groups)
    return 13 <= len(digits) <= 19 and digits[0] != "0" and _luhn(digits) and not _starts_with_a_date(groups)


def _is_grouped_account(candidate: str) -> bool:
    groups = _digit_groups(candidate)
    return 8 <= len("".join(groups)) <= 19 and not _starts_with_a_date(groups)


def _valid_end(text: str, start: int, end: int, is_valid: Validator) -> int | None:
    """The end of the longest valid prefix of text[start:end] that stops before a separator (or at `end`)."""
    cuts = [end] + [i for i in range(end - 1, start, -1) if text[i] in _SEPARATORS]
    return next((cut for cut in cuts if is_valid(text[start:cut])), None)


# Order of precedence: an earlier kind's matches are blanked out before the later kinds look.
_FINDERS: Final[tuple[tuple[str, re.Pattern[str], Validator], ...]] = (
    ("email", _EMAIL, _always),
    ("iban", _IBAN, _is_iban),
    ("card", _CARD, _always),
    ("phone", _PHONE, _is_phone),
    ("sort_code", _SORT_CODE, _always),
    ("card", _GROUPED, _is_grouped_card),
    ("account", _GROUPED, _is_grouped_account),
    ("account", _CUED_ACCOUNT, _always),
    ("account", _ACCOUNT, _always),
)


def _take(kind: str, pattern: re.Pattern[str], is_valid: Validator, text: str) -> tuple[list[PiiMatch], str]:
    """The valid matches of one kind, and `text` with each blanked out as soon as it is found: the next match
    then sees filler where masked text will have a placeholder, which keeps masking idempotent. A rejected
    candidate is retried one character further on. Where the pattern has a group named `pii`, only that group
    is personal data (the rest is context, such as a cue word)."""
    found: list[PiiMatch] = []
    group = "pii" if "pii" in pattern.groupindex else 0
    pos = 0
    while match := pattern.search(text, pos):
        start = match.start(group)
        end = _valid_end(text, start, match.end(group), is_valid)
        if end is None:
            pos = start + 1
            continue
        found.append(PiiMatch(kind, start, end))
        text = text[:start] + _FILLER * (end - start) + text[end:]
        pos = end
    return found, text


def _one_round(text: str) -> tuple[list[PiiMatch], str]:
    """Every kind once, in order of precedence, each on the text with the earlier matches blanked out."""
    found: list[PiiMatch] = []
    for kind, pattern, is_valid in _FINDERS:
        matches, text = _take(kind, pattern, is_valid, text)
        found += matches
    return found, text


def find_pii(text: str) -> list[PiiMatch]:
    """All personal data in `text`, non-overlapping and in order of position.

    Rounds repeat until one finds nothing: a neighbour can hide a match in one round (`12-34-56+44 20 7946
    0958`: the phone number looks glued to the sort code) and free it in the next, once the neighbour is filler.
    Filler looks to every pattern as a placeholder does, so what the last round sees is what `mask(mask(x))`
    would see, and masking is idempotent."""
    found: list[PiiMatch] = []
    remaining = text
    while True:
        matches, remaining = _one_round(remaining)
        if not matches:
            return sorted(found, key=lambda match: match.start)
        found += matches


def mask(text: str | None) -> str | None:
    """`text` with each piece of personal data replaced by its placeholder; None stays None."""
    if not text:
        return text
    parts: list[str] = []
    pos = 0
    for match in find_pii(text):
        parts += [text[pos : match.start], PLACEHOLDERS[match.kind]]
        pos = match.end
    parts.append(text[pos:])
    return "".join(parts)


T = TypeVar("T")


def mask_value(value: T) -> T:
    """Mask every string inside `value`, looking into dicts (values only), lists and tuples. An integer that is
    personal data written as a number (a slot holding an account number) becomes its placeholder; other numbers,
    booleans, None and keys are returned unchanged."""
    if isinstance(value, str):
        return cast(T, mask(value))
    if isinstance(value, int) and not isinstance(value, bool):
        masked = mask(str(value))
        return cast(T, masked if masked != str(value) else value)
    if isinstance(value, dict):
        return cast(T, {key: mask_value(item) for key, item in value.items()})
    if isinstance(value, list):
        return cast(T, [mask_value(item) for item in value])
    if isinstance(value, tuple):
        return cast(T, tuple(mask_value(item) for item in value))
    return value
