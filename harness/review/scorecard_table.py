"""Every review as one row of a table, for the spreadsheets QA leads report from: who reviewed which dialog,
each attribute's rating, the critical errors and their classes, the verdict, the corrections and the note.

`scorecard_rows` reads the database; `scorecard_frame` and `to_csv` are pure. Text is already masked in the
database; `to_csv` also defuses cells a spreadsheet would run as a formula (CSV injection).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, defer, selectinload

from harness.review.config import Scorecard
from harness.review.reports import deciding_review
from harness.review.store import Dialog, Review, Run

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection)."""


@dataclass(frozen=True)
class ReviewRow:
    """One review with the dialog facts a report needs."""

    run_id: str
    dialog_id: int
    conversation_id: str
    eval_set: str | None
    intent: str | None
    flags: Sequence[str]
    sampled: bool
    bot_outcome: str
    analyst: str
    role: str
    reference: bool
    decides_verdict: bool
    ratings: dict[str, Any]
    critical_errors: Sequence[str]
    corrected_intents: dict[str, Any]
    correct_outcome: str
    note: str
    created_at: datetime
    updated_at: datetime


def scorecard_rows(session: Session, run_id: str | None = None) -> list[ReviewRow]:
    """Every review (of one run, or of all), in dialog then review order."""
    query = (
        select(Dialog)
        .options(
            defer(Dialog.turns), selectinload(Dialog.run), selectinload(Dialog.reviews).selectinload(Review.analyst)
        )
        .where(Dialog.reviews.any())
        .order_by(Dialog.id)
    )
    if run_id:
        query = query.where(Dialog.run.has(Run.run_id == run_id))
    rows = []
    for dialog in session.scalars(query):
        deciding = deciding_review(dialog)
        for review in sorted(dialog.reviews, key=lambda r: r.id):
            rows.append(
                ReviewRow(
                    run_id=dialog.run.run_id,
                    dialog_id=dialog.id,
                    conversation_id=dialog.conversation_id,
                    eval_set=dialog.eval_set,
                    intent=dialog.intent,
                    flags=dialog.flag_rules,
                    sampled=dialog.sampled,
                    bot_outcome=dialog.actual_outcome,
                    analyst=review.analyst.username,
                    role=review.analyst.role,
                    reference=review.reference,
                    decides_verdict=deciding is not None and deciding.id == review.id,
                    ratings=dict(review.ratings),
                    critical_errors=list(review.critical_errors),
                    corrected_intents=dict(review.corrected_intents),
                    correct_outcome=review.correct_outcome,
                    note=review.note,
                    created_at=review.created_at,
                    updated_at=review.updated_at,
                )
            )
    return rows


def scorecard_frame(rows: Sequence[ReviewRow], scorecard: Scorecard) -> pd.DataFrame:
    """One column per scorecard attribute (in the scorecard's order), the critical classes and the verdict."""
    attributes = [a.name for a in scorecard.attributes]
    records = []
    for row in rows:
        classes = sorted(c.value for c in scorecard.classes_of(list(row.critical_errors)))
        records.append(
            {
                "run_id": row.run_id,
                "dialog_id": row.dialog_id,
                "conversation_id": row.conversation_id,
                "eval_set": row.eval_set or "",
                "intent": row.intent or "",
                "flags": " ".join(row.flags),
                "sampled": row.sampled,
                "bot_outcome": row.bot_outcome,
                "analyst": row.analyst,
                "role": row.role,
                "reference": row.reference,
                "decides_verdict": row.decides_verdict,
                **{f"rating:{name}": row.ratings.get(name, "") for name in attributes},
                "critical_errors": " ".join(row.critical_errors),
                "critical_classes": " ".join(classes),
                "verdict": "failed" if classes else "passed",
                "correct_outcome": row.correct_outcome,
                "outcome_agrees": row.correct_outcome == row.bot_outcome,
                "corrected_intents": json.dumps(row.corrected_intents, sort_keys=True) if row.corrected_intents else "",
                "note": row.note,
                "created_at": row.created_at.isoformat(timespec="seconds"),
                "updated_at": row.updated_at.isoformat(timespec="seconds"),
            }
        )
    columns = [
        "run_id",
        "dialog_id",
        "conversation_id",
        "eval_set",
        "intent",
        "flags",
        "sampled",
        "bot_outcome",
        "analyst",
        "role",
        "reference",
        "decides_verdict",
        *[f"rating:{name}" for name in attributes],
        "critical_errors",
        "critical_classes",
        "verdict",
        "correct_outcome",
        "outcome_agrees",
        "corrected_intents",
        "note",
        "created_at",
        "updated_at",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _defused(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text (UTF-8, header row) with every text cell that a spreadsheet would run as a formula prefixed
    with an apostrophe, which makes it plain text."""
    return frame.map(_defused).to_csv(index=False)
