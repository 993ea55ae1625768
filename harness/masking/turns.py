"""Numbers sent in pieces across a customer's consecutive turns: `4198`, `3444`, `1747`, `6617`.

No piece is personal data on its own, and masking turn by turn leaves them all readable; joined, they are a
card number. `split_numbers` finds runs of consecutive turns that each end in a group of digits and whose
digits, joined, are a card number (Luhn and issuer prefix, as `SeparatedCardRecognizer` checks), an account
number (eight digits after an account cue) or a phone number after a phone cue, written with its trunk prefix
(`call me on`, `07911`, `123456`: valid for one of the customer regions by `phonenumbers`). Without the cue, two
US ZIP codes sent one after the other (`02116`, `90210`) would read as a UK phone number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import regex

from harness.masking.recognizers import (
    RegionalPhoneRecognizer,
    SeparatedCardRecognizer,
    digits_of,
    nearest_cue,
)

MAX_DIGITS = 19
"""The most digits pieces joined can have (a card number); longer runs of pieces are cut, keeping the time linear
in the number of turns."""

MAX_WORDS_BEFORE = 5
"""A piece ends a short message (`then 5458`, `ok first 4 are 4435`); a longer message is a sentence, not a
piece of a number."""

# The last group of digits in a turn, with nothing after it but punctuation or spaces.
_PIECE = regex.compile(r"(?<![\w.,:£$€/])(?P<run>\d+(?:[ \-]\d+)*)[\W_]*$")


@dataclass(frozen=True, slots=True)
class Piece:
    """One turn's share of a number sent in pieces: its turn, its span in that turn's text and its kind."""

    turn: int
    start: int
    end: int
    kind: str = ""


@cache
def _cards() -> SeparatedCardRecognizer:
    return SeparatedCardRecognizer()


def _piece(turn: int, text: str | None) -> Piece | None:
    if not text:
        return None
    match = _PIECE.search(text)
    if match is None or len(text[: match.start()].split()) > MAX_WORDS_BEFORE:
        return None
    return Piece(turn, match.start("run"), match.end("run"))


def _digits(texts: Sequence[str | None], piece: Piece | None) -> int:
    return 0 if piece is None else len(digits_of((texts[piece.turn] or "")[piece.start : piece.end]))


def _is_phone(digits: str) -> bool:
    return digits.startswith("0") and 10 <= len(digits) <= 11 and RegionalPhoneRecognizer.found_whole(digits)


def _cue(texts: Sequence[str | None], first: Piece) -> str | None:
    """The cue word nearest before the first piece, in its turn or at the end of the turn before it."""
    cue = nearest_cue(texts[first.turn] or "", first.start)
    if cue is None and first.turn > 0:
        before = texts[first.turn - 1] or ""
        cue = nearest_cue(before, len(before))
    return cue


def _kind(texts: Sequence[str | None], pieces: list[Piece]) -> str | None:
    """What the pieces' digits are when joined: 'card', 'account', 'phone' or None."""
    digits = "".join(digits_of((texts[p.turn] or "")[p.start : p.end]) for p in pieces)
    if 13 <= len(digits) <= 19 and _cards().validate_result(digits):
        return "card"
    cue = _cue(texts, pieces[0])
    if len(digits) == 8 and cue == "account":
        return "account"
    if cue == "phone" and _is_phone(digits):
        return "phone"
    return None


def split_numbers(texts: Sequence[str | None]) -> list[Piece]:
    """The pieces of numbers sent across consecutive turns of `texts` (one customer's turns in order), each
    with its kind. Longest runs first: a run of pieces is taken whole when its digits make a number."""
    found: list[Piece] = []
    candidates = [_piece(turn, text) for turn, text in enumerate(texts)]
    first = 0
    while first < len(texts):
        if candidates[first] is None:
            first += 1
            continue
        last, digits = first, _digits(texts, candidates[first])
        # No card has more than 19 digits: pieces beyond that are never joined to this one.
        while last + 1 < len(texts) and (piece := candidates[last + 1]) is not None:
            digits += _digits(texts, piece)
            if digits > MAX_DIGITS:
                break
            last += 1
        for end in range(last, first, -1):
            run = [piece for piece in candidates[first : end + 1] if piece is not None]
            kind = _kind(texts, run)
            if kind is not None:
                found += [Piece(p.turn, p.start, p.end, kind) for p in run]
                first = end
                break
        first += 1
    return found
