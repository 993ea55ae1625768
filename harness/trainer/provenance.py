"""Where training examples came from: `intents/provenance.csv`, one row per example added from a QA review.

Columns: text, intent, run, conversation, turn, analyst, review, exported_at. The intent files stay plain lists of
examples; this file answers "who taught the bot this, from which dialog". It also lets the leakage check tell a
deliberate correction apart from an accident: an example that repeats a turn of the very conversation it was
reviewed from (or of that conversation's `qa-` regression copy) is reported as a warning, not an error — that
conversation now checks the fix rather than generalisation, and the warning says so.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from harness.errors import InputError
from harness.project.intents import normalise, plain_text

FILE_NAME = "provenance.csv"


@dataclass(frozen=True)
class Provenance:
    text: str
    intent: str
    run: str
    conversation: str
    turn: int
    analyst: str
    review: int
    exported_at: str


COLUMNS = [f.name for f in fields(Provenance)]


def regression_id(conversation: str, review: int) -> str:
    """The eval-set id of the critical regression conversation exported from a review: `qa-<conversation>-r<review>`
    with every character an eval-set id does not allow (anything but letters, digits, `_`, `.` and `-`; production
    conversation ids hold `:`) replaced by `-`. Idempotent."""
    return f"qa-{re.sub(r'[^A-Za-z0-9_.-]', '-', conversation)}-r{review}"


def read_provenance(intents_dir: Path) -> list[Provenance]:
    path = intents_dir / FILE_NAME
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            raise InputError("unreadable provenance file", [f"{path}: header must be {','.join(COLUMNS)}"])
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(
                    Provenance(
                        text=row["text"],
                        intent=row["intent"],
                        run=row["run"],
                        conversation=row["conversation"],
                        turn=int(row["turn"]),
                        analyst=row["analyst"],
                        review=int(row["review"]),
                        exported_at=row["exported_at"],
                    )
                )
            except (TypeError, ValueError) as exc:
                raise InputError("unreadable provenance file", [f"{path}:{line}: {exc}"]) from None
    return rows


def append_provenance(intents_dir: Path, rows: Iterable[Provenance]) -> None:
    path = intents_dir / FILE_NAME
    new = not path.exists()
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def reviewed_from(provenance: Iterable[Provenance]) -> dict[str, set[str]]:
    """Normalised example text -> the eval conversation ids it may repeat by design (the reviewed conversation
    and its regression copies)."""
    out: dict[str, set[str]] = {}
    for row in provenance:
        key = normalise(plain_text(row.text))
        out.setdefault(key, set()).update({row.conversation, regression_id(row.conversation, row.review)})
    return out
