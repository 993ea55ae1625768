"""The scorecard form: from what an analyst submitted to a review's fields, or the list of what is wrong; and the
one rule for the record numbers (ids) users type or put in addresses.

Pure: the app passes the submitted form and what is allowed (scorecard, intents, queues). Nothing submitted is
dropped on an error; the app shows the form again with the analyst's input and the problems.

Besides the scorecard the form carries what it edits: `kind` (`review`, or `rereview` for a blind second review)
and `version`, the version of the saved record the analyst started from (0: none was saved yet). The app saves
only if that is still the saved version (optimistic locking, see app.save_scorecard).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.review.config import Scorecard

MAX_NOTE = 4000
MAX_ID = 2**31 - 1
"""The largest record number: ids are SQL INTEGER columns, 32 bits on PostgreSQL (SQLite would take 64). A number
beyond it names nothing, and the database would fail on it rather than find nothing."""
KINDS = ("review", "rereview")
"""What a scorecard form edits: the analyst's review, or their blind re-review (values of store.TaskKind)."""
_VERSION = re.compile(r"[0-9]{1,10}")


def digits_up_to(limit: int) -> str:
    """A regular expression matching exactly the decimal numbers 1 to `limit` (>= 1), without leading zeros:
    shorter numbers, then per digit of `limit` the numbers that agree before it and are smaller there."""
    text = str(limit)
    parts = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for position, digit in enumerate(text):
        low = 1 if position == 0 else 0
        if int(digit) > low:
            parts.append(f"{text[:position]}[{low}-{int(digit) - 1}][0-9]{{{len(text) - position - 1}}}")
    parts.append(text)
    return "(?:" + "|".join(parts) + ")"


ID_PATTERN = digits_up_to(MAX_ID)
"""The record numbers as a regular expression (URL converters need the range in the pattern itself: werkzeug
answers 405, not 404, when a converter refuses a value that another method's route would have taken)."""
_ID = re.compile(ID_PATTERN)


def parse_id(text: str) -> int | None:
    """The record number `text` names (`"12"` -> 12), or None when it cannot name one: not ASCII digits, a
    leading zero, zero, or beyond MAX_ID."""
    return int(text) if _ID.fullmatch(text) else None


@dataclass
class ReviewInput:
    ratings: dict[str, str] = field(default_factory=dict)
    critical_errors: list[str] = field(default_factory=list)
    corrected_intents: dict[str, str] = field(default_factory=dict)
    correct_outcome: str = ""
    note: str = ""
    kind: str = ""
    """What the form edits (one of KINDS); empty when the form did not say (the app decides)."""
    version: int = 0
    """The saved version the analyst started from; 0 for a new review or re-review."""
    analyst: str = ""
    """The user name the form was filled in as (empty when the form did not say)."""


def outcome_choices(queues: Iterable[str]) -> list[str]:
    return ["self_served", *(f"escalated:{q}" for q in sorted(queues))]


def parse_review(
    form: Mapping[str, Any],
    getlist: Any,
    *,
    scorecard: Scorecard,
    turns: list[dict[str, Any]],
    intents: Iterable[str],
    queues: Iterable[str],
) -> tuple[ReviewInput, list[str]]:
    """The review the form describes and the problems found (empty when valid). `getlist(name)` returns every
    value of a multi-valued field (the critical-error checkboxes)."""
    problems: list[str] = []
    data = ReviewInput()
    for attribute in scorecard.attributes:
        value = (form.get(f"rating_{attribute.name}") or "").strip()
        data.ratings[attribute.name] = value
        if not value:
            problems.append(
                f"{attribute.question} (rating {attribute.name}): choose one of {', '.join(attribute.choices)}"
            )
        elif value not in attribute.choices:
            problems.append(f"rating {attribute.name}: {value!r} is not one of {', '.join(attribute.choices)}")
    known_errors = {c.name for c in scorecard.critical_errors}
    data.critical_errors = list(dict.fromkeys(getlist("critical_errors")))
    problems += [f"critical error {e!r} is not on the scorecard" for e in data.critical_errors if e not in known_errors]
    allowed = set(intents)
    by_index = {str(t["index"]): t for t in turns}
    for index, turn in by_index.items():
        value = (form.get(f"intent_{index}") or "").strip()
        if not value:
            continue
        if value not in allowed:
            problems.append(f"turn {index}: corrected intent {value!r} is not a known intent")
        elif value == turn.get("intent") and not turn.get("fallback"):
            problems.append(f"turn {index}: the bot already recognised {value}; leave the correction empty")
        data.corrected_intents[index] = value
    data.correct_outcome = (form.get("correct_outcome") or "").strip()
    choices = outcome_choices(queues)
    if data.correct_outcome not in choices:
        problems.append(f"correct outcome {data.correct_outcome!r}: choose one of {', '.join(choices)}")
    data.note = (form.get("note") or "").replace("\r\n", "\n").strip()  # browsers send line breaks as CRLF
    if len(data.note) > MAX_NOTE:
        problems.append(f"note: at most {MAX_NOTE} characters ({len(data.note)} given)")
    data.kind = (form.get("kind") or "").strip()
    if data.kind and data.kind not in KINDS:
        problems.append(f"form kind {data.kind!r}: not one of {', '.join(KINDS)} (the form was altered)")
        data.kind = ""
    version = (form.get("version") or "0").strip()
    if _VERSION.fullmatch(version) and int(version) <= MAX_ID:
        data.version = int(version)
    else:
        problems.append(f"form version {version!r}: not a version number (the form was altered)")
    data.analyst = (form.get("analyst") or "").strip()
    return data, problems
