"""Saving an analyst's scorecard without losing anyone's work: optimistic locking on the review's version.

The form carries the version of the review it was opened on; a save succeeds only on that version, atomically
in the database, on SQLite and PostgreSQL alike. A lost race or a stale form is a `Conflict` the app shows the
analyst with both versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from harness.review.store import Dialog, Rereview, Review, User, audit, now

SCORECARD_FIELDS = ("ratings", "critical_errors", "corrected_intents", "correct_outcome", "note")
"""The fields of a review that an analyst fills in (ScorecardFields without the bookkeeping)."""


@dataclass(frozen=True)
class Conflict:
    """A save refused because the review changed after the analyst opened the form."""

    saved: Review | Rereview | None
    """The version saved now (None only if it vanished in between)."""


def save_scorecard(
    session: Session,
    model: type[Review] | type[Rereview],
    dialog: Dialog,
    analyst: User,
    fields: Mapping[str, Any],
    version: int,
) -> Review | Rereview | Conflict:
    """Save `fields` as `analyst`'s review (model Review) or re-review (Rereview) of `dialog`, if `version` (0: the
    analyst started from nothing saved) is still the saved version; the saved record (its version raised by one,
    audited, committed), or a Conflict (rolled back, nothing written).

    Correct under concurrent saves on SQLite and PostgreSQL: an update is one `UPDATE ... WHERE id = ? AND
    version = ?` (no row changed: someone saved first); a first save is an INSERT that the unique constraint on
    (dialog, analyst) refuses when another first save won (IntegrityError).
    """
    label = "review" if model is Review else "rereview"
    noun = "review" if model is Review else "re-review"
    mine = (model.dialog_id == dialog.id, model.analyst_id == analyst.id)

    def latest() -> Review | Rereview | None:
        found = session.scalar(select(model).where(*mine).execution_options(populate_existing=True))
        return found if isinstance(found, Review | Rereview) else None

    def conflict() -> Conflict:
        session.rollback()
        return Conflict(latest())

    current = latest()
    if current is None:  # a first save (or the saved one vanished: the input is saved anew, not lost)
        record = model(dialog_id=dialog.id, analyst_id=analyst.id, version=1, **fields)
        session.add(record)
        try:
            session.flush()
        except IntegrityError:
            return conflict()
        target = f"{noun} {record.id} of dialog {dialog.id}, version 1"
        audit(session, analyst.username, f"{label}.create", target, **fields)
        session.commit()
        return record
    if current.version != version:
        return conflict()
    before = {name: getattr(current, name) for name in SCORECARD_FIELDS}
    changed = session.execute(
        update(model)
        .where(model.id == current.id, model.version == version)
        .values(**fields, version=version + 1, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return conflict()
    audit(
        session,
        analyst.username,
        f"{label}.update",
        f"{noun} {current.id} of dialog {dialog.id}, version {version + 1}",
        **{k: {"from": before[k], "to": v} for k, v in fields.items() if before[k] != v},
    )
    session.commit()
    session.expire(current)  # the UPDATE bypassed it; read again when used
    return current
