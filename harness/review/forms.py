"""The scorecard form: from what an analyst submitted to a review's fields, or the list of what is wrong.

Pure: the app passes the submitted form and what is allowed (scorecard, intents, queues). Nothing submitted is
dropped on an error; the app shows the form again with the analyst's input and the problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.review.config import Scorecard

MAX_NOTE = 4000


@dataclass
class ReviewInput:
    ratings: dict[str, str] = field(default_factory=dict)
    critical_errors: list[str] = field(default_factory=list)
    corrected_intents: dict[str, str] = field(default_factory=dict)
    correct_outcome: str = ""
    note: str = ""


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
    data.note = (form.get("note") or "").strip()
    if len(data.note) > MAX_NOTE:
        problems.append(f"note: at most {MAX_NOTE} characters ({len(data.note)} given)")
    return data, problems
