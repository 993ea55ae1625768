"""The review web application: analysts work through the queue and fill in scorecards; leads calibrate them,
read the reviewed KPIs, export corrections and audit every change.

Flask with Flask-Login (sessions), Flask-WTF's CSRFProtect (every POST carries a token) and SQLAlchemy (the
store). Analysts see only their own reviews, so calibration stays blind; leads see everything.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session, defer, selectinload, sessionmaker

from harness.errors import HarnessError
from harness.project.bot_config import load_queue_config
from harness.project.eval_set import OUT_OF_SCOPE
from harness.project.intents import load_catalog
from harness.project.paths import ProjectPaths
from harness.review import auth, exports, reports
from harness.review.config import ReviewConfig
from harness.review.database import connect
from harness.review.forms import ReviewInput, outcome_choices, parse_review
from harness.review.masking import mask
from harness.review.scorecard_table import scorecard_frame, scorecard_rows, to_csv
from harness.review.store import (
    Assignment,
    AuditEvent,
    Dialog,
    DialogFlag,
    Rereview,
    Review,
    Role,
    Run,
    TaskKind,
    User,
    audit,
    now,
    setting,
)


@dataclass(frozen=True)
class Vocabulary:
    """What a review may name: the intents of intents/ (plus out_of_scope) and the bot's queues."""

    intents: list[str]
    queues: list[str]

    @classmethod
    def of(cls, paths: ProjectPaths) -> Vocabulary:
        queues = load_queue_config(paths.escalation_policy).queues
        names = load_catalog(paths.intents, known_queues=queues).names()
        return cls(sorted({*names, OUT_OF_SCOPE}), list(queues))


PAGE_SIZE = 100
"""Dialogs per page of the queue."""


def queue_order(tasks: Mapping[int, str]) -> tuple[ColumnElement[Any] | InstrumentedAttribute[int], ...]:
    """ORDER BY for the queue: open assignments (to review or re-review) first, then by priority (highest
    first), then by dialog number."""
    assigned_first = case((Dialog.id.in_(list(tasks)), 0), else_=1) if tasks else literal(1)
    return (assigned_first, Dialog.priority.desc(), Dialog.id)


def lead_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_lead:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def create_app(
    database: str | None, config: ReviewConfig, paths: ProjectPaths, vocabulary: Vocabulary, *, testing: bool = False
) -> Flask:
    app = Flask(__name__)
    engine = connect(database)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        secret = setting(session, "secret_key", secrets.token_hex(32))
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TESTING=testing,
        WTF_CSRF_TIME_LIMIT=None,
    )
    CSRFProtect(app)

    def db() -> Session:
        if "db" not in g:
            g.db = sessions()
        return g.db  # type: ignore[no-any-return]

    @app.teardown_appcontext
    def close_db(_error: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"scorecard": config.scorecard}

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        message = f"{error.description} Reload the page and submit the form again; nothing was saved."
        return render_template("error.html", title="Form expired or not from this app", message=message), 400

    @app.errorhandler(403)
    def forbidden(_error: Exception) -> tuple[str, int]:
        return render_template("error.html", title="Not allowed", message="This page is for leads."), 403

    auth.install(app, db)

    # ------------------------------------------------------------------------------------------------ queue

    @app.get("/")
    @login_required
    def queue() -> Any:
        filters = {k: request.args.get(k, "") for k in ("flag", "intent", "queue", "run", "status", "sample")}
        reviewed_by_me = Dialog.reviews.any(Review.analyst_id == current_user.id)
        conditions: list[ColumnElement[bool]] = []
        if filters["flag"]:
            conditions.append(Dialog.flag_rows.any(DialogFlag.rule == filters["flag"]))
        if filters["intent"]:
            conditions.append(Dialog.intent == filters["intent"])
        if filters["queue"]:
            conditions.append((Dialog.actual_queue == filters["queue"]) | (Dialog.expected_queue == filters["queue"]))
        if filters["run"]:
            conditions.append(Dialog.run.has(Run.run_id == filters["run"]))
        if filters["sample"] == "1":
            conditions.append(Dialog.sampled.is_(True))
        if filters["status"] == "open":
            conditions.append(~reviewed_by_me)
        elif filters["status"] == "reviewed":
            conditions.append(reviewed_by_me)
        total = int(db().scalar(select(func.count(Dialog.id)).where(*conditions)) or 0)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
        tasks = open_tasks()
        dialogs = (
            db()
            .scalars(
                select(Dialog)
                .options(defer(Dialog.turns), selectinload(Dialog.reviews), selectinload(Dialog.run))
                .where(*conditions)
                .order_by(*queue_order(tasks))
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
            .all()
        )
        mine = {d.id for d in dialogs if any(r.analyst_id == current_user.id for r in d.reviews)}
        queues = select(Dialog.actual_queue).union(select(Dialog.expected_queue)).subquery()
        options = {
            "flag": list(db().scalars(select(DialogFlag.rule).distinct().order_by(DialogFlag.rule))),
            "intent": sorted(i for i in db().scalars(select(Dialog.intent).distinct()) if i),
            "queue": sorted(q for q in db().scalars(select(queues.c[0])) if q),
            "run": [r.run_id for r in db().scalars(select(Run).order_by(Run.id.desc()))],
        }
        return render_template(
            "queue.html",
            dialogs=dialogs,
            filters=filters,
            options=options,
            tasks=tasks,
            mine=mine,
            total=total,
            page=page,
            pages=pages,
        )

    def open_tasks() -> dict[int, str]:
        """Dialog -> what the current user was asked to do there and has not done yet (review or rereview)."""
        me = current_user.id
        reviewed = set(db().scalars(select(Review.dialog_id).where(Review.analyst_id == me)))
        rereviewed = set(db().scalars(select(Rereview.dialog_id).where(Rereview.analyst_id == me)))
        tasks: dict[int, str] = {}
        for assignment in db().scalars(select(Assignment).where(Assignment.analyst_id == me)):
            done = reviewed if assignment.kind == TaskKind.review.value else rereviewed
            if assignment.dialog_id not in done:
                tasks.setdefault(assignment.dialog_id, assignment.kind)
        return tasks

    def next_to_review(current: int) -> Dialog | None:
        """The first dialog in queue order with something left for the current user (other than `current`)."""
        tasks = open_tasks()
        return db().scalar(
            select(Dialog)
            .options(defer(Dialog.turns))
            .where(
                Dialog.id != current,
                ~Dialog.reviews.any(Review.analyst_id == current_user.id) | Dialog.id.in_(list(tasks)),
            )
            .order_by(*queue_order(tasks))
            .limit(1)
        )

    def rereview_due(dialog: Dialog) -> bool:
        return open_tasks().get(dialog.id) == TaskKind.rereview.value

    # ------------------------------------------------------------------------------------------------ dialog

    def dialog_or_404(dialog_id: int) -> Dialog:
        dialog = db().get(Dialog, dialog_id)
        if dialog is None:
            abort(404)
        return dialog

    def own_review(dialog: Dialog) -> Review | None:
        return next((r for r in dialog.reviews if r.analyst_id == current_user.id), None)

    def show_dialog(dialog: Dialog, data: ReviewInput | None, problems: list[str], status: int = 200) -> Any:
        blind = rereview_due(dialog)
        review = None if blind else own_review(dialog)  # a re-review is blind to the first review
        if data is None:
            data = (
                ReviewInput(
                    dict(review.ratings),
                    list(review.critical_errors),
                    dict(review.corrected_intents),
                    review.correct_outcome,
                    review.note,
                )
                if review
                else ReviewInput()  # nothing pre-filled, not even the bot's outcome: a verdict is never a default
            )
        others = dialog.reviews if current_user.is_lead else []
        again = dialog.rereviews if current_user.is_lead else []
        return (
            render_template(
                "dialog.html",
                dialog=dialog,
                data=data,
                problems=problems,
                review=review,
                others=others,
                rereviews=again,
                blind=blind,
                intents=vocabulary.intents,
                outcomes=outcome_choices(vocabulary.queues),
                next_dialog=next_to_review(dialog.id),
            ),
            status,
        )

    @app.get("/dialogs/<int:dialog_id>")
    @login_required
    def dialog_view(dialog_id: int) -> Any:
        return show_dialog(dialog_or_404(dialog_id), None, [])

    @app.post("/dialogs/<int:dialog_id>/review")
    @login_required
    def save_review(dialog_id: int) -> Any:
        dialog = dialog_or_404(dialog_id)
        data, problems = parse_review(
            request.form,
            request.form.getlist,
            scorecard=config.scorecard,
            turns=dialog.turns,
            intents=vocabulary.intents,
            queues=vocabulary.queues,
        )
        if problems:
            return show_dialog(dialog, data, problems, 422)
        fields = {
            "ratings": data.ratings,
            "critical_errors": data.critical_errors,
            "corrected_intents": data.corrected_intents,
            "correct_outcome": data.correct_outcome,
            "note": mask(data.note) or "",
        }
        if rereview_due(dialog):
            again = Rereview(dialog_id=dialog.id, analyst_id=current_user.id, **fields)
            db().add(again)
            db().flush()
            audit(
                db(), current_user.username, "rereview.create", f"re-review {again.id} of dialog {dialog.id}", **fields
            )
            db().commit()
            flash(f"Re-review of {dialog.conversation_id} saved (it measures consistency; it decides nothing).", "ok")
            return redirect(url_for("dialog_view", dialog_id=dialog.id))
        review = own_review(dialog)
        if review is None:
            review = Review(dialog_id=dialog.id, analyst_id=current_user.id, **fields)
            db().add(review)
            db().flush()
            audit(db(), current_user.username, "review.create", f"review {review.id} of dialog {dialog.id}", **fields)
        else:
            changed = {k: {"from": getattr(review, k), "to": v} for k, v in fields.items() if getattr(review, k) != v}
            for key, value in fields.items():
                setattr(review, key, value)
            review.updated_at = now()
            audit(db(), current_user.username, "review.update", f"review {review.id} of dialog {dialog.id}", **changed)
        db().commit()
        failed = config.scorecard.classes_of(data.critical_errors)
        verdict = f"failed ({', '.join(sorted(failed))}-critical)" if failed else "passed"
        flash(f"Review of {dialog.conversation_id} saved: the dialog {verdict}.", "ok")
        return redirect(url_for("dialog_view", dialog_id=dialog.id))

    @app.post("/reviews/<int:review_id>/reference")
    @lead_required
    def mark_reference(review_id: int) -> Any:
        review = db().get(Review, review_id)
        if review is None:
            abort(404)
        for other in review.dialog.reviews:
            if other.reference and other.id != review.id:
                other.reference = False
        review.reference = not review.reference
        audit(db(), current_user.username, "review.reference", f"review {review.id}", reference=review.reference)
        db().commit()
        return redirect(url_for("dialog_view", dialog_id=review.dialog_id))

    # ------------------------------------------------------------------------------------------------ reports

    @app.get("/kpis")
    @login_required
    def kpis() -> Any:
        run = request.args.get("run", "")
        runs = [r.run_id for r in db().scalars(select(Run).order_by(Run.id.desc()))]
        table = reports.kpi_table(db(), config.scorecard, run or None)
        coverage = reports.sample_coverage(db(), run or None)
        return render_template("kpis.html", table=table, runs=runs, run=run, coverage=coverage)

    @app.route("/calibration", methods=["GET", "POST"])
    @lead_required
    def calibration() -> Any:
        analysts = db().scalars(select(User).order_by(User.username)).all()
        if request.method == "POST":
            chosen_ids = request.form.getlist("analysts")
            raw_dialogs = request.form.get("dialogs", "")
            problems, dialog_ids = reports.parse_dialog_ids(db(), raw_dialogs)
            users = [u for u in analysts if str(u.id) in chosen_ids]
            kind = TaskKind.rereview if request.form.get("kind") == TaskKind.rereview.value else TaskKind.review
            if kind is TaskKind.review and len(users) < 2:
                problems.append("choose at least two reviewers to calibrate")
            elif kind is TaskKind.rereview:
                problems += ["choose at least one reviewer"] if not users else []
                problems += reports.rereview_problems(db(), dialog_ids, users)
            if problems:
                for problem in problems:
                    flash(problem, "error")
                return calibration_page(analysts, raw_dialogs, chosen_ids), 422
            added = reports.assign(db(), dialog_ids, users, current_user, kind)
            db().commit()
            what = "assignment(s)" if kind is TaskKind.review else "blind re-review(s)"
            flash(f"{added} {what} added ({len(dialog_ids)} dialog(s) x {len(users)} reviewer(s)).", "ok")
            return redirect(url_for("calibration"))
        return calibration_page(analysts, "", [])

    def calibration_page(analysts: Sequence[User], dialogs_text: str, chosen: list[str]) -> str:
        return render_template(
            "calibration.html",
            analysts=analysts,
            report=reports.calibration(db(), config.scorecard),
            consistency=reports.consistency(db(), config.scorecard),
            dialogs_text=dialogs_text,
            chosen=chosen,
        )

    @app.route("/exports", methods=["GET", "POST"])
    @lead_required
    def export_page() -> Any:
        result = None
        if request.method == "POST":
            kind = request.form.get("kind")
            if kind not in ("intents", "eval_sets"):
                abort(400)
            try:
                if kind == "intents":
                    result = exports.export_corrections(db(), paths, actor=current_user.username)
                else:
                    result = exports.export_regressions(db(), paths, config.scorecard, actor=current_user.username)
                db().commit()
            except HarnessError as exc:  # the files were restored; say why and keep every review
                db().rollback()
                flash("Nothing was exported: " + " ".join(str(exc).splitlines()), "error")
        return render_template(
            "exports.html",
            result=result,
            corrections=exports.pending_corrections(db()),
            regressions=exports.pending_regressions(db(), config.scorecard),
            done=db().scalars(select(exports.Export).order_by(exports.Export.id.desc())).all(),
        )

    @app.get("/exports/scorecards.csv")
    @lead_required
    def scorecards_csv() -> Any:
        run_id = request.args.get("run") or None
        table = scorecard_frame(scorecard_rows(db(), run_id), config.scorecard)
        audit(db(), current_user.username, "export.scorecards", "download", run=run_id, reviews=len(table))
        db().commit()
        name = f"scorecards-{re.sub(r'[^A-Za-z0-9_.-]', '_', run_id)}.csv" if run_id else "scorecards.csv"
        return Response(
            to_csv(table),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/audit")
    @lead_required
    def audit_log() -> Any:
        events = db().scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(500)).all()
        return render_template("audit.html", events=events)

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    app.jinja_env.globals["Role"] = Role
    return app
