"""The review web application: analysts work through the queue and fill in scorecards; leads calibrate them,
read the reviewed KPIs, export corrections and audit every change.

Flask with Flask-Login (sessions), Flask-WTF's CSRFProtect (every POST carries a token) and SQLAlchemy (the
store). Analysts see only their own reviews, so calibration stays blind; leads see everything. The reviewed KPIs
that analysts read leave out dialogs under an open calibration (reports.open_calibrations), so no figure changes
when a colleague saves a blind calibration review.

Nothing an analyst types is lost:
- Saves use optimistic locking (`saving.save_scorecard`): the form carries the version of the review it edited; a save
  is one conditional UPDATE (or an INSERT that the unique constraint refuses) and succeeds only on that version.
  Otherwise the answer is 409: the saved version (who, when, what) beside the analyst's input, pre-filled in the
  form with the saved version's number, so saving again replaces it deliberately.
- A save that arrives without a session (logged out in another tab, session ended) shows the login page carrying
  the form (auth.render_login); after the login, `resume_review` shows the dialog with that input, unsaved. A save
  whose CSRF token no longer matches the session (logged in again) shows the dialog with the input, unsaved.
- Invalid input shows the form again with the input and the problems (422).

Every id in an address is a `DatabaseId`: ASCII digits within the id columns' range, anything else a 404.
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
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, ValidationError

from harness.errors import HarnessError, InputError
from harness.masking import mask, warm_up
from harness.project.bot_config import load_queue_config
from harness.project.eval_set import OUT_OF_SCOPE
from harness.project.intents import load_catalog
from harness.project.paths import ProjectPaths
from harness.review import auth, exports, production, reports
from harness.review.config import ReviewConfig
from harness.review.database import connect
from harness.review.forms import ID_PATTERN, MAX_ID, ReviewInput, outcome_choices, parse_id, parse_review
from harness.review.saving import SCORECARD_FIELDS, Conflict, save_scorecard
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
    ScorecardFields,
    TaskKind,
    User,
    audit,
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

LOG_IN_TO_SAVE = "Your session has ended, so your scorecard is not saved yet. Log in: it is shown again to save."
CHECK_AND_SAVE = (
    "Not saved yet: this form was opened in an earlier session (you logged in again since, or the page is older "
    "than your session). What you entered is below: check it and save it again."
)
RESUMED = "You are logged in again. Your scorecard is below as you entered it, not saved yet: check it and save it."
REREVIEW_INSTEAD = (
    "Not saved: a lead asked you for a blind re-review of this dialog, so your first review stays hidden and as it "
    "was. What you entered is below as your re-review: check it and save it."
)
FROZEN_BY_REREVIEW = (
    "Your first review of this dialog cannot be changed any more: a lead asked you for a blind re-review of it, and "
    "your consistency is measured on the first review as it was."
)
FROZEN_BY_CALIBRATION = (
    "Your review of this dialog cannot be changed any more: its calibration is complete (every assigned reviewer "
    "has saved), the reviewed KPIs now count its verdict, which may be a colleague's, and agreement is measured on "
    "the reviews as they were given blind. A lead can still mark the reference review."
)
OTHER_USER = "Not saved: the scorecard below was filled in by another user. Saving it again makes it {user}'s."


def queue_order(tasks: Mapping[int, str]) -> tuple[ColumnElement[Any] | InstrumentedAttribute[int], ...]:
    """ORDER BY for the queue: open assignments (to review or re-review) first, then by priority (highest
    first), then by dialog number."""
    assigned_first = case((Dialog.id.in_(list(tasks)), 0), else_=1) if tasks else literal(1)
    return (assigned_first, Dialog.priority.desc(), Dialog.id)


class DatabaseId(BaseConverter):
    """`<id:name>` in a route: a record number, ASCII digits without a leading zero, 1 to MAX_ID. Anything else
    (zero, negative, beyond the id columns' range, not a number) matches no route: a 404, never a database
    error."""

    regex = ID_PATTERN
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"{value!r} is not a record number")
        return str(number)


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
    warm_up()  # masking loads Presidio now, not in the first request thread that saves a note
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
    app.url_map.converters["id"] = DatabaseId
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
    def csrf_failed(error: CSRFError) -> Any:
        if request.endpoint == "save_review":  # a scorecard is never thrown away
            return keep_scorecard(CHECK_AND_SAVE, 400)
        message = f"{error.description} Reload the page and submit the form again; nothing was saved."
        return render_template("error.html", title="Form expired or not from this app", message=message), 400

    @app.errorhandler(403)
    def forbidden(_error: Exception) -> tuple[str, int]:
        return render_template("error.html", title="Not allowed", message="This page is for leads."), 403

    @app.errorhandler(404)
    def not_found(_error: Exception | None = None) -> tuple[str, int]:
        message = "No such page or record. Dialogs are numbered as the queue shows them."
        return render_template("error.html", title="Not found", message=message), 404

    @app.after_request
    def no_framing(response: Response) -> Response:
        # pages may hold a pre-filled scorecard; another site must not frame them and trick a click on Save
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    auth.install(app, db, resume=lambda next_path, carried: resume_review(next_path, carried))

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

    def rereview_asked(dialog: Dialog) -> bool:
        """Whether a lead asked the current user to review `dialog` again (done or not)."""
        return (
            db().scalar(
                select(Assignment.id).where(
                    Assignment.dialog_id == dialog.id,
                    Assignment.analyst_id == current_user.id,
                    Assignment.kind == TaskKind.rereview.value,
                )
            )
            is not None
        )

    def frozen(dialog: Dialog) -> str | None:
        """Why the current user's review of `dialog` can no longer be changed (see reports.py), else None."""
        if own_review(dialog) is None:
            return None  # a first save is never refused for this
        if rereview_asked(dialog):
            return FROZEN_BY_REREVIEW
        if not current_user.is_lead and dialog.id in reports.closed_calibrations(db()):
            return FROZEN_BY_CALIBRATION
        return None

    def input_of(record: ScorecardFields | None, kind: str) -> ReviewInput:
        if record is None:  # nothing pre-filled, not even the bot's outcome: a verdict is never a default
            return ReviewInput(kind=kind, analyst=current_user.username)
        return ReviewInput(
            dict(record.ratings),
            list(record.critical_errors),
            dict(record.corrected_intents),
            record.correct_outcome,
            record.note,
            kind=kind,
            version=record.version,
            analyst=current_user.username,
        )

    def show_dialog(
        dialog: Dialog,
        data: ReviewInput | None,
        problems: list[str],
        status: int = 200,
        *,
        conflict: Conflict | None = None,
        notice: str | None = None,
    ) -> Any:
        """The dialog page. `data`: the scorecard as submitted (shown unsaved, with `problems`, a `conflict` or a
        `notice` saying why); None shows the saved review, or an empty form for a first review or a re-review."""
        if data is None:
            kind = TaskKind.rereview.value if rereview_due(dialog) else TaskKind.review.value
            data = input_of(None if kind == TaskKind.rereview.value else own_review(dialog), kind)
        kind = data.kind or (TaskKind.rereview.value if rereview_due(dialog) else TaskKind.review.value)
        blind = kind == TaskKind.rereview.value  # a re-review is blind to the first review
        review = None if blind else own_review(dialog)
        locked = None if blind else frozen(dialog)
        notices = [notice] if notice else []
        if locked and not any(locked in n for n in notices):
            notices.append(locked)
        if data.analyst and data.analyst != current_user.username:
            notices.append(
                f"This scorecard was filled in as {data.analyst}; you are logged in as {current_user.username}. "
                f"Saving it makes it {current_user.username}'s {'re-review' if blind else 'review'}."
            )
        saved = conflict.saved if conflict else None
        differs = {n for n in SCORECARD_FIELDS if saved is not None and getattr(saved, n) != getattr(data, n)}
        return (
            render_template(
                "dialog.html",
                dialog=dialog,
                data=data,
                kind=kind,
                version=saved.version if saved is not None else data.version,
                problems=problems,
                notices=notices,
                conflict=conflict,
                saved=saved,
                differs=differs,
                review=review,
                others=dialog.reviews if current_user.is_lead else [],
                rereviews=dialog.rereviews if current_user.is_lead else [],
                blind=blind,
                locked=locked,
                intents=vocabulary.intents,
                outcomes=outcome_choices(vocabulary.queues),
                next_dialog=next_to_review(dialog.id),
            ),
            status,
        )

    def submitted(dialog: Dialog, form: MultiDict[str, str]) -> tuple[ReviewInput, list[str]]:
        return parse_review(
            form,
            form.getlist,
            scorecard=config.scorecard,
            turns=dialog.turns,
            intents=vocabulary.intents,
            queues=vocabulary.queues,
        )

    def login_to_save() -> Response:
        """The login page carrying the submitted scorecard; after the login, `resume_review` shows it again."""
        return auth.render_login(request.path, request.form, LOG_IN_TO_SAVE, 401)

    def keep_scorecard(notice: str, status: int) -> Any:
        """A save that cannot go ahead for a reason outside the form: the login page carrying the form when there
        is no session; else the dialog with the input, unsaved, and `notice`."""
        if not current_user.is_authenticated:
            return login_to_save()
        # no abort() here: this runs inside the CSRF error handler, where an abort becomes a 500
        dialog = db().get(Dialog, int((request.view_args or {})["dialog_id"]))
        if dialog is None:
            return not_found()
        data, problems = submitted(dialog, request.form)
        return show_dialog(dialog, data, problems, status, notice=notice)

    def resume_review(next_path: str, carried: MultiDict[str, str]) -> Any:
        """After a login that carried a scorecard: the dialog with it pre-filled, unsaved; else `next_path`."""
        try:
            endpoint, args = app.create_url_adapter(request).match(next_path.split("?")[0], method="POST")  # type: ignore[union-attr]
        except HTTPException:
            return redirect(next_path)
        if endpoint != "save_review":
            return redirect(next_path)
        dialog = db().get(Dialog, args["dialog_id"])
        if dialog is None:
            return redirect(url_for("queue"))
        data, problems = submitted(dialog, carried)
        return show_dialog(dialog, data, problems, 200, notice=RESUMED)

    @app.get("/dialogs/<id:dialog_id>")
    @login_required
    def dialog_view(dialog_id: int) -> Any:
        return show_dialog(dialog_or_404(dialog_id), None, [])

    @app.get("/dialogs/<id:dialog_id>/review")
    def review_address(dialog_id: int) -> Any:
        """Where a browser lands on the save address by GET (a login's old `next`, a reload): the dialog."""
        return redirect(url_for("dialog_view", dialog_id=dialog_id))

    @app.post("/dialogs/<id:dialog_id>/review")
    def save_review(dialog_id: int) -> Any:
        if not current_user.is_authenticated:
            return login_to_save()
        dialog = dialog_or_404(dialog_id)
        data, problems = submitted(dialog, request.form)
        kind = data.kind or (TaskKind.rereview.value if rereview_due(dialog) else TaskKind.review.value)
        if kind == TaskKind.review.value and rereview_due(dialog):
            # an old tab of the first review, or a hand-made form: never answered with the first review
            data.kind, data.version = TaskKind.rereview.value, 0
            return show_dialog(dialog, data, problems, 409, notice=REREVIEW_INSTEAD)
        if kind == TaskKind.rereview.value and not rereview_asked(dialog):
            problems.append("no re-review of this dialog was asked of you: save it as your review instead")
            data.kind = TaskKind.review.value
        if kind == TaskKind.review.value and (why := frozen(dialog)):
            return show_dialog(dialog, data, problems, 409, notice=f"Not saved. {why}")
        if problems:
            return show_dialog(dialog, data, problems, 422)
        if data.analyst and data.analyst != current_user.username:
            data.analyst = current_user.username  # saving the page shown next saves it as the current user
            return show_dialog(dialog, data, [], 409, notice=OTHER_USER.format(user=current_user.username))
        fields = {
            "ratings": data.ratings,
            "critical_errors": data.critical_errors,
            "corrected_intents": data.corrected_intents,
            "correct_outcome": data.correct_outcome,
            "note": mask(data.note) or "",
        }
        model = Rereview if kind == TaskKind.rereview.value else Review
        result = save_scorecard(db(), model, dialog, current_user, fields, data.version)
        if isinstance(result, Conflict):
            return show_dialog(dialog, data, [], 409, conflict=result)
        if model is Rereview:
            flash(f"Re-review of {dialog.conversation_id} saved (it measures consistency; it decides nothing).", "ok")
            return redirect(url_for("dialog_view", dialog_id=dialog.id))
        failed = config.scorecard.classes_of(data.critical_errors)
        verdict = f"failed ({', '.join(sorted(failed))}-critical)" if failed else "passed"
        flash(f"Review of {dialog.conversation_id} saved: the dialog {verdict}.", "ok")
        return redirect(url_for("dialog_view", dialog_id=dialog.id))

    @app.post("/reviews/<id:review_id>/reference")
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
        leave_out = set() if current_user.is_lead else reports.open_calibrations(db())
        table = reports.kpi_table(db(), config.scorecard, run or None, leave_out)
        coverage = reports.sample_coverage(db(), run or None, leave_out)
        left_out = len(reports.dialogs_of_run(db(), leave_out, run or None))
        window, window_problem = None, None
        try:
            window = production.window_kpis(db(), config.scorecard, run, leave_out) if run else None
        except InputError as exc:
            window_problem = f"{exc.summary}: {'; '.join(exc.problems)}"
        return render_template(
            "kpis.html",
            table=table,
            runs=runs,
            run=run,
            coverage=coverage,
            left_out=left_out,
            window=window,
            window_problem=window_problem,
        )

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
