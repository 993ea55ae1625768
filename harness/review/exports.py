"""What reviews feed back: corrected intents into `intents/` (with provenance), critical dialogs into `eval_sets/`.

- Corrections: for each reviewed dialog, its deciding review's corrected intents become examples of those
  intents, through the same planner as `harness intents import` (duplicates, conflicting labels and leakage into
  *other* eval conversations are skipped with the reason). Who taught what, from which dialog, goes to
  `intents/provenance.csv`.
- Regressions: a dialog whose deciding review found a critical error becomes a `critical` conversation of
  `eval_sets/qa_regressions.yml`, labelled with the analyst's corrections and correct outcome, so the next
  release gate replays it.
A production dialog's provenance names its window and store (`production <first>..<last> of <store>`) where a
replayed one names its run id.
Both write only masked text, validate the result with the project's own loaders, and restore the files if it
does not load. Each exported item is recorded, so exporting twice adds nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from harness.pipeline import load_suite
from harness.project.bot_config import load_queue_config
from harness.project.config import load_config
from harness.project.eval_set import OUT_OF_SCOPE, eval_set_files
from harness.project.intents import load_catalog, normalise
from harness.project.paths import ProjectPaths
from harness.review.config import Scorecard
from harness.review.production import provenance_of
from harness.review.reports import deciding_review
from harness.review.store import Dialog, Export, Review, audit
from harness.trainer.intent_import import Candidate, apply_plan, eval_texts, plan_import, round_trip_yaml
from harness.trainer.provenance import FILE_NAME as PROVENANCE_FILE
from harness.trainer.provenance import Provenance, append_provenance, regression_id

REGRESSION_FILE = "qa_regressions.yml"
INTENT, REGRESSION = "intent", "regression"


@dataclass(frozen=True)
class Correction:
    review: Review
    dialog: Dialog
    turn: int
    text: str
    intent: str

    @property
    def key(self) -> str:
        return f"turn {self.turn}"


@dataclass
class ExportResult:
    kind: str
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _decided(session: Session) -> list[tuple[Dialog, Review]]:
    dialogs = session.scalars(
        select(Dialog)
        .options(selectinload(Dialog.reviews).selectinload(Review.analyst), selectinload(Dialog.run))
        .where(Dialog.reviews.any())
        .order_by(Dialog.id)
    ).all()
    pairs = [(d, deciding_review(d)) for d in dialogs]
    return [(d, r) for d, r in pairs if r is not None]


def _exported(session: Session, kind: str) -> set[tuple[int, str]]:
    return {(r, k) for r, k in session.execute(select(Export.review_id, Export.key).where(Export.kind == kind))}


def pending_corrections(session: Session) -> list[Correction]:
    done = _exported(session, INTENT)
    out = []
    for dialog, review in _decided(session):
        turns = {str(t["index"]): t for t in dialog.turns}
        for index, intent in sorted(review.corrected_intents.items(), key=lambda kv: int(kv[0])):
            correction = Correction(review, dialog, int(index), turns[index]["text"], intent)
            if (review.id, correction.key) not in done:
                out.append(correction)
    return out


def export_corrections(session: Session, paths: ProjectPaths, *, actor: str) -> ExportResult:
    """Add pending corrections to intents/; records what was added and what was skipped (with the reason)."""
    result = ExportResult(INTENT)
    corrections = pending_corrections(session)
    if not corrections:
        return result
    queues = load_queue_config(paths.escalation_policy).queues
    catalog = load_catalog(paths.intents, known_queues=queues)
    suite = (
        load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(paths.root), paths)
        if eval_set_files(paths.eval_sets)
        else None
    )
    reviewed_here = {(normalise(c.text), c.dialog.conversation_id) for c in corrections}
    eval_turns = {
        text: where for text, where in eval_texts(suite).items() if (text, where.split(":", 1)[1]) not in reviewed_here
    }
    by_origin: dict[str, Correction] = {}
    candidates = []
    for c in corrections:
        dialog = f"{provenance_of(c.dialog.run)}/{c.dialog.conversation_id}"
        origin = f"review {c.review.id} by {c.review.analyst.username}: {dialog} {c.key}"
        by_origin[origin] = c
        candidates.append(Candidate(c.text, c.intent, None, origin))
    plan = plan_import(Path("QA review"), candidates, catalog, queues=queues, eval_turns=eval_turns)
    if plan.added:
        changed = apply_plan(plan, catalog, paths.intents, paths.intents / "imported.yml", queues=queues)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        rows = []
        for candidate in plan.to_existing:
            c = by_origin[candidate.origin]
            rows.append(
                Provenance(
                    c.text,
                    c.intent,
                    provenance_of(c.dialog.run),
                    c.dialog.conversation_id,
                    c.turn,
                    c.review.analyst.username,
                    c.review.id,
                    stamp,
                )
            )
            target = str(catalog.sources[c.intent].relative_to(paths.root))
            session.add(Export(review_id=c.review.id, kind=INTENT, key=c.key, target=target))
            result.added.append(f"{c.text!r} -> {c.intent} ({target}; {candidate.origin})")
        append_provenance(paths.intents, rows)
        result.files = [str(p.relative_to(paths.root)) for p in changed] + [
            str((paths.intents / PROVENANCE_FILE).relative_to(paths.root))
        ]
    for skipped in plan.skipped:
        c = by_origin[skipped.candidate.origin]
        session.add(Export(review_id=c.review.id, kind=INTENT, key=c.key, target=f"skipped: {skipped.reason}"))
        result.skipped.append(f"{c.text!r} -> {c.intent} ({skipped.candidate.origin}): {skipped.reason}")
    audit(session, actor, "export.intents", "intents/", added=result.added, skipped=result.skipped)
    return result


def pending_regressions(session: Session, scorecard: Scorecard) -> list[tuple[Dialog, Review]]:
    done = _exported(session, REGRESSION)
    return [
        (d, r)
        for d, r in _decided(session)
        if scorecard.classes_of(r.critical_errors) and (r.id, regression_id(d.conversation_id, r.id)) not in done
    ]


def regression_conversation(dialog: Dialog, review: Review, scorecard: Scorecard, intents: set[str]) -> dict[str, Any]:
    """The eval-set conversation a critically failed dialog becomes (masked text, the analyst's labels)."""
    turns = []
    for turn in dialog.turns:
        corrected = review.corrected_intents.get(str(turn["index"]))
        recognised = None if turn.get("fallback") else turn.get("intent")
        intent = corrected or turn.get("expected_intent") or recognised
        turns.append({"text": turn["text"], "intent": intent if intent in intents else None})
    outcome = review.correct_outcome
    expected: dict[str, Any] = (
        {"outcome": "self_served"}
        if outcome == "self_served"
        else {"outcome": "escalated", "queue": outcome.split(":", 1)[1]}
    )
    classes = sorted(c.value for c in scorecard.classes_of(review.critical_errors))
    described = {c.name: c.description for c in scorecard.critical_errors}
    why = "; ".join(described.get(e, e) for e in review.critical_errors)
    note = f" Note: {review.note}" if review.note else ""
    return {
        "id": regression_id(dialog.conversation_id, review.id),
        "tags": ["critical", "qa_review", *(f"{c}_critical" for c in classes)],
        "turns": turns,
        "expected": expected,
        "resolvable": outcome == "self_served" and dialog.resolvable is not False,
        "critical": (
            f"QA review {review.id} by {review.analyst.username} of "
            f"{provenance_of(dialog.run)}/{dialog.conversation_id} "
            f"({review.updated_at:%Y-%m-%d}): {why}.{note}"
        ),
    }


def export_regressions(session: Session, paths: ProjectPaths, scorecard: Scorecard, *, actor: str) -> ExportResult:
    """Append critically failed dialogs to eval_sets/qa_regressions.yml; restores the file if the eval sets then
    fail to load."""
    result = ExportResult(REGRESSION)
    pending = pending_regressions(session, scorecard)
    if not pending:
        return result
    queues = load_queue_config(paths.escalation_policy).queues
    intents = {*load_catalog(paths.intents, known_queues=queues).names(), OUT_OF_SCOPE}
    path = paths.eval_sets / REGRESSION_FILE
    before = path.read_text(encoding="utf-8") if path.exists() else None
    rt = round_trip_yaml()
    document = (
        rt.load(before)
        if before
        else rt.load(
            "version: 1\nname: qa_regressions\n"
            "description: Conversations QA analysts failed with a critical error, labelled by their review.\n"
            "conversations: []\n"
        )
    )
    for dialog, review in pending:
        conversation = regression_conversation(dialog, review, scorecard, intents)
        document["conversations"].append(conversation)
        session.add(
            Export(
                review_id=review.id, kind=REGRESSION, key=conversation["id"], target=str(path.relative_to(paths.root))
            )
        )
        result.added.append(f"{conversation['id']}: {conversation['critical']}")
    buffer = io.StringIO()
    if before is None:
        buffer.write("# qa_regressions.yml: written by the review app's export (harness review export); edit freely.\n")
    rt.dump(document, buffer)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    try:
        load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(paths.root), paths)
    except Exception:
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        raise
    result.files = [str(path.relative_to(paths.root))]
    audit(session, actor, "export.eval_sets", str(path.relative_to(paths.root)), added=result.added)
    return result
