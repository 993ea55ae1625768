"""What the app and the CLI show from the review database: the reviewed KPIs and the calibration report.

Adapters only: they read rows and hand plain values to the pure modules (reviewed_kpis.py, calibration.py).

Blind calibration. A dialog is under an open calibration while it is assigned for review to at least two people
and not all of them have reviewed it. Its reviews must stay blind until then, and any figure that counts them
would tell an analyst, by comparing the page before and after, what a colleague decided. So the KPI views that
analysts read leave those dialogs out altogether (`open_calibrations` gives the ids to pass as `leave_out`):
whether or not anyone has reviewed them yet, so that neither a verdict nor the fact of a save shows. Leads see
every dialog.

Once every assigned reviewer has saved, the calibration is complete (`closed_calibrations`): the dialog counts for
everyone, and analysts' reviews of it are frozen, so that nobody aligns their answer with a verdict they could
now read. Likewise an analyst's first review is frozen once a lead asks for a blind re-review of it: consistency
compares the two as they were given.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, selectinload

from harness.errors import InputError
from harness.project.problems import unknown
from harness.review.calibration import CalibrationReport, Consistency, Rating, calibration_report
from harness.review.calibration import consistency as calibration_consistency
from harness.review.config import CriticalClass, Scorecard
from harness.review.forms import parse_id
from harness.review.reviewed_kpis import ReviewedKpi, Verdict, reviewed_kpis, verdict_for
from harness.review.store import (
    Assignment,
    Dialog,
    Rereview,
    Review,
    Role,
    Run,
    ScorecardFields,
    TaskKind,
    User,
    audit,
)


def check_run_loaded(session: Session, run_id: str | None) -> None:
    """InputError (with a did-you-mean) when `run_id` is given but no such run was loaded for review."""
    if run_id is None:
        return
    loaded = list(session.scalars(select(Run.run_id)))
    if run_id not in loaded:
        raise InputError(
            "no such run in the review database",
            [unknown("run", run_id, loaded) + "; load it with `harness review load RUN_FOLDER`"],
        )


def deciding_review(dialog: Dialog) -> Review | None:
    """The review that decides the dialog's verdict (reference, else a lead's, else the first)."""
    ordered = sorted(dialog.reviews, key=lambda r: r.id)
    chosen = verdict_for([(r.id, r.reference, r.analyst.role == Role.lead.value) for r in ordered])
    return next((r for r in ordered if r.id == chosen), None)


def _calibrations(session: Session) -> dict[int, bool]:
    """Dialog id -> whether every reviewer it is assigned to has reviewed it, for the dialogs assigned for review to
    at least two people (calibrations)."""
    assigned: dict[int, set[int]] = defaultdict(set)
    for dialog_id, analyst_id in session.execute(
        select(Assignment.dialog_id, Assignment.analyst_id).where(Assignment.kind == TaskKind.review.value)
    ):
        assigned[dialog_id].add(analyst_id)
    calibrated = {d: people for d, people in assigned.items() if len(people) >= 2}
    reviewed = {
        (d, a)
        for d, a in session.execute(
            select(Review.dialog_id, Review.analyst_id).where(Review.dialog_id.in_(list(calibrated)))
        )
    }
    return {d: all((d, p) in reviewed for p in people) for d, people in calibrated.items()}


def open_calibrations(session: Session) -> set[int]:
    """Ids of the dialogs under an open calibration: assigned for review to at least two people, not yet reviewed
    by all of them (see the module docstring)."""
    return {d for d, complete in _calibrations(session).items() if not complete}


def closed_calibrations(session: Session) -> set[int]:
    """Ids of the dialogs whose calibration is complete: every reviewer assigned has reviewed it. Their reviews now
    count in everyone's KPIs, where an analyst may read the deciding (perhaps a colleague's) verdict, so analysts
    can no longer change their reviews of them (app.py refuses the edit); leads still can, and mark a reference."""
    return {d for d, complete in _calibrations(session).items() if complete}


def dialogs_of_run(session: Session, ids: Collection[int], run_id: str | None) -> set[int]:
    """The dialogs among `ids` that belong to run `run_id` (all of them when no run is given)."""
    if not run_id or not ids:
        return set(ids)
    return set(session.scalars(select(Dialog.id).join(Run).where(Run.run_id == run_id, Dialog.id.in_(list(ids)))))


def verdicts(
    session: Session, scorecard: Scorecard, run_id: str | None = None, leave_out: Collection[int] = frozenset()
) -> list[Verdict]:
    """One verdict per reviewed dialog (of one run, or of every run), except the dialogs in `leave_out`."""
    query = (
        select(Dialog)
        .options(defer(Dialog.turns), selectinload(Dialog.reviews).selectinload(Review.analyst))
        .where(Dialog.reviews.any())
    )
    if leave_out:
        query = query.where(Dialog.id.not_in(list(leave_out)))
    if run_id:
        query = query.join(Run).where(Run.run_id == run_id)
    return verdicts_of(session.scalars(query).all(), scorecard)


def verdicts_of(dialogs: Sequence[Dialog], scorecard: Scorecard) -> list[Verdict]:
    """One verdict per dialog, from its deciding review (every dialog given must have a review)."""
    out = []
    for dialog in dialogs:
        review = deciding_review(dialog)
        assert review is not None
        out.append(
            Verdict(
                sampled=dialog.sampled,
                actual_outcome=dialog.actual_outcome,
                expected_label=dialog.expected_label,
                auto_resolved=dialog.auto_resolved,
                ratings=review.ratings,
                critical_classes=frozenset(c.value for c in scorecard.classes_of(review.critical_errors)),
                correct_outcome=review.correct_outcome,
            )
        )
    return out


def kpi_table(
    session: Session, scorecard: Scorecard, run_id: str | None = None, leave_out: Collection[int] = frozenset()
) -> list[ReviewedKpi]:
    """Every reviewed KPI (see reviewed_kpis.py) over the reviewed dialogs of one run or all, except `leave_out`."""
    return reviewed_kpis(verdicts(session, scorecard, run_id, leave_out), scorecard)


@dataclass(frozen=True)
class SampleCoverage:
    sampled: int
    reviewed: int


def sample_coverage(
    session: Session, run_id: str | None = None, leave_out: Collection[int] = frozenset()
) -> SampleCoverage:
    """How many dialogs of the random sample exist, and how many of them have a review (`leave_out` not counted)."""
    query = select(Dialog).options(defer(Dialog.turns), selectinload(Dialog.reviews)).where(Dialog.sampled.is_(True))
    if leave_out:
        query = query.where(Dialog.id.not_in(list(leave_out)))
    if run_id:
        query = query.join(Run).where(Run.run_id == run_id)
    sampled = session.scalars(query).all()
    return SampleCoverage(len(sampled), sum(1 for d in sampled if d.reviews))


def kpi_metrics(table: list[ReviewedKpi]) -> dict[str, float]:
    """MLflow metrics: `reviewed.<population>.<kpi>` with `.n`, `.ci_low`, `.ci_high`, and `.automatic` beside."""
    metrics: dict[str, float] = {}
    for kpi in table:
        name = f"reviewed.{kpi.population}.{kpi.name}"
        metrics[f"{name}.n"] = float(kpi.reviewed.n)
        if kpi.reviewed.value is not None:
            metrics[name] = kpi.reviewed.value
        if kpi.reviewed.interval is not None:
            metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"] = kpi.reviewed.interval
        if kpi.automatic is not None and kpi.automatic.value is not None:
            metrics[f"{name}.automatic"] = kpi.automatic.value
    return metrics


def calibration_items(scorecard: Scorecard) -> list[str]:
    return [a.name for a in scorecard.attributes] + [f"critical:{c.value}" for c in CriticalClass] + ["critical:any"]


def ratings(session: Session, scorecard: Scorecard) -> list[Rating]:
    """Every review of a dialog reviewed by at least two people, as calibration ratings (see `answers_of`)."""
    reviewed_twice = select(Review.dialog_id).group_by(Review.dialog_id).having(func.count(Review.id) >= 2)
    dialogs = session.scalars(
        select(Dialog)
        .options(defer(Dialog.turns), selectinload(Dialog.reviews).selectinload(Review.analyst))
        .where(Dialog.id.in_(reviewed_twice))
    ).all()
    out = []
    for dialog in dialogs:
        for review in dialog.reviews:
            out.append(Rating(dialog.id, review.analyst.username, answers_of(review, scorecard), review.reference))
    return out


def answers_of(review: ScorecardFields, scorecard: Scorecard) -> dict[str, str]:
    """A review as calibration answers: its ratings, per critical class whether it found a critical error of that
    class, and whether it found any (`critical:any`, the pass/fail verdict)."""
    classes = scorecard.classes_of(review.critical_errors)
    answers = dict(review.ratings)
    answers |= {f"critical:{c.value}": "yes" if c in classes else "no" for c in CriticalClass}
    answers["critical:any"] = "yes" if classes else "no"
    return answers


def consistency(session: Session, scorecard: Scorecard) -> list[Consistency]:
    """Each analyst's first reviews against their blind re-reviews of the same dialogs."""
    again = session.scalars(select(Rereview).options(selectinload(Rereview.analyst))).all()
    firsts = session.scalars(
        select(Review).options(selectinload(Review.analyst)).where(Review.dialog_id.in_([r.dialog_id for r in again]))
    ).all()

    def rating(review: ScorecardFields, dialog: int, analyst: User) -> Rating:
        return Rating(dialog, analyst.username, answers_of(review, scorecard))

    return calibration_consistency(
        [rating(r, r.dialog_id, r.analyst) for r in firsts],
        [rating(r, r.dialog_id, r.analyst) for r in again],
        calibration_items(scorecard),
    )


def calibration(session: Session, scorecard: Scorecard) -> CalibrationReport:
    return calibration_report(ratings(session, scorecard), calibration_items(scorecard))


def parse_dialog_ids(session: Session, text: str) -> tuple[list[str], list[int]]:
    """Dialog numbers from a lead's list ("12, 14 15"); problems for unknown ones."""
    problems, ids = [], []
    for token in [t for t in re.split(r"[\s,;]+", text) if t]:
        number = parse_id(token)
        if number is None or session.get(Dialog, number) is None:
            problems.append(f"dialog {token!r} does not exist (give dialog numbers as shown in the queue)")
        else:
            ids.append(number)
    if not ids and not problems:
        problems.append("list at least one dialog number")
    return problems, list(dict.fromkeys(ids))


def rereview_problems(session: Session, dialog_ids: Sequence[int], users: Sequence[User]) -> list[str]:
    """A re-review needs a first review by the same person."""
    reviewed = {(d, a) for d, a in session.execute(select(Review.dialog_id, Review.analyst_id))}
    return [
        f"{user.username} has not reviewed dialog {dialog_id} yet: a re-review needs a first review"
        for dialog_id in dialog_ids
        for user in users
        if (dialog_id, user.id) not in reviewed
    ]


def assign(
    session: Session, dialog_ids: Sequence[int], users: Sequence[User], lead: User, kind: TaskKind = TaskKind.review
) -> int:
    """Assign every dialog to every user (existing assignments kept); the number added."""
    existing = {
        (d, a)
        for d, a in session.execute(
            select(Assignment.dialog_id, Assignment.analyst_id).where(Assignment.kind == kind.value)
        )
    }
    added = 0
    for dialog_id in dialog_ids:
        for user in users:
            if (dialog_id, user.id) not in existing:
                session.add(
                    Assignment(dialog_id=dialog_id, analyst_id=user.id, assigned_by_id=lead.id, kind=kind.value)
                )
                added += 1
    audit(
        session,
        lead.username,
        "calibration.assign" if kind is TaskKind.review else "calibration.rereview",
        f"dialogs {', '.join(map(str, dialog_ids))}",
        analysts=[u.username for u in users],
        added=added,
    )
    return added


def log_reviewed_kpis(run_id: str, metrics: dict[str, float], tracking_uri: str) -> str:
    """Log metrics to the MLflow run of harness run `run_id` (tag harness.run_id); its MLflow run id."""
    import time

    import mlflow
    from mlflow.entities import Metric

    if not re.fullmatch(r"[\w.-]+", run_id):
        raise InputError("not a run id", [f"{run_id!r}: run ids are letters, digits, '-', '_' and '.'"])
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`harness.run_id` = '{run_id}'",
        max_results=1,
    )
    if not found:
        raise InputError(
            "no MLflow run for this run",
            [f"run {run_id}: no MLflow run tagged harness.run_id; was it run --no-mlflow?"],
        )
    stamp = int(time.time() * 1000)
    client.log_batch(found[0].info.run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])
    client.set_tag(found[0].info.run_id, "qa_reviewed", "true")
    return str(found[0].info.run_id)
