"""`harness review ...`: load a run's dialogs for review, manage analysts, serve the review app, export verdicts
and print the reviewed KPIs and the calibration report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.cli.common import RootOption, app, out, paths, reports_errors
from harness.errors import InputError
from harness.records.run_folder import RunFolder
from harness.review.config import Scorecard, load_review_config
from harness.review.database import DATABASE_ENV, connect
from harness.review.store import Role, User, add_user, audit, set_active, set_password

PROXY_HEADERS = ("x-forwarded-proto", "x-forwarded-for")
"""The headers of a trusted reverse proxy that count (`serve --behind-proxy`): the client's scheme and address."""

review_app: typer.Typer = typer.Typer(
    help="QA review of the bot's decisions: flagged dialogs, scorecards, calibration, exports."
)
app.add_typer(review_app, name="review")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Database URL (default ${DATABASE_ENV}, else review.db beside the review config).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Flag rules, sample and scorecard (default: harness.yml `review`).")
]


@review_app.command("load")
@reports_errors
def load_command(
    run_dir: Annotated[Path | None, typer.Argument(help="A finished run folder (default: the latest run).")] = None,
    production: Annotated[
        bool,
        typer.Option(
            "--production",
            help="Review real conversations: a window of the production store (harness logs import), not a run.",
        ),
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="With --production: the production store folder (default: `store` of experiments/production.yml, "
            "else experiments/production).",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="With --production: days by when conversations started (UTC): YYYY-MM-DD..YYYY-MM-DD (either side "
            "may be empty), YYYY-MM-DD or 7d (default: every stored day).",
            show_default=False,
        ),
    ] = None,
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs",
            help="With --production: the folder the window's run folder goes into (default: the configured "
            "output_dir, runs/).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Flag and sample a run's dialogs, mask personal data, and store them for review. With --production, the
    window's conversations are first written as a run folder `runs/production-<first>..<last>-<hash>/`."""
    from harness.project.config import load_config
    from harness.review.dialogs import load_run, loaded_run

    settings = load_review_config(config)
    from harness.masking import gaps

    for gap in gaps():
        out.print(f"warning: {gap.replace('experiments/production.yml', 'the masking options')}", markup=False)
    given = [name for name, value in (("--store", store), ("--window", window), ("--runs", runs_dir)) if value]
    if not production and given:
        raise typer.BadParameter("only with --production", param_hint=given[0])
    if production and run_dir is not None:
        raise typer.BadParameter("give a run folder or --production, not both", param_hint="RUN_DIR")
    runs = runs_dir or load_config().resolved().output_dir
    if production:
        from harness.records.production import ProductionStore, parse_window
        from harness.review.production import materialise

        run_dir = materialise(ProductionStore(store or _production_store()), parse_window(window), runs).path
    run_dir = (run_dir or RunFolder.latest(runs).path).resolve()
    with Session(connect(db)) as session:
        loaded = loaded_run(session, run_dir)
        if loaded is not None:
            out.print(f"run {loaded.run_id} is loaded already ({len(loaded.dialogs)} dialogs to review); nothing to do")
            return
        run = load_run(session, run_dir, settings, actor="cli")
        flagged = sum(1 for d in run.dialogs if d.flags)
        sampled = sum(1 for d in run.dialogs if d.sampled)
        out.print(
            f"loaded run {run.run_id}: {len(run.dialogs)} of {run.conversations} dialogs to review "
            f"({flagged} flagged, {sampled} in the {settings.sample.rate:.0%} random sample)"
        )
        held = (run.selection.get("production") or {}).get("held_elsewhere")
        if held:
            out.print(f"  {held} selected conversation(s) already under review in an overlapping production window")
        counts: dict[str, int] = {}
        for dialog in run.dialogs:
            for rule in dialog.flag_rules:
                counts[rule] = counts.get(rule, 0) + 1
        for rule, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            out.print(f"  {rule}: {count}")


def _production_store() -> Path:
    """The production store folder: `store` of experiments/production.yml (default experiments/production),
    relative to the current folder, as `harness logs` reads it."""
    from harness.project.production_config import load_production_config

    return load_production_config().store


@review_app.command("add-user")
@reports_errors
def add_user_command(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option(help="analyst, or lead (calibrates, exports, audits).")] = Role.analyst,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    db: DbOption = None,
) -> None:
    """Create an analyst or lead account. The password is stored hashed; it needs 15 characters or more and must
    not be easy to guess (a passphrase of four or more random words is)."""
    with Session(connect(db)) as session:
        add_user(session, username, _password(password_stdin), role, actor="cli")
        session.commit()
    out.print(f"added {role.value} {username}")


def _password(from_stdin: bool) -> str:
    """The password: the first line of stdin (UTF-8, without its line ending: one `\\n` or `\\r\\n`; spaces are
    kept), or typed twice at a hidden prompt. InputError for stdin that is not UTF-8."""
    if not from_stdin:
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    raw = sys.stdin.buffer.readline() if hasattr(sys.stdin, "buffer") else sys.stdin.readline().encode()
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            "the password on stdin is not UTF-8",
            [f"byte {exc.start + 1} ({raw[exc.start]:#04x}) is not UTF-8; send the password encoded as UTF-8"],
        ) from None
    return line.removesuffix("\n").removesuffix("\r") if line.endswith("\n") else line


@review_app.command("set-password")
@reports_errors
def set_password_command(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    db: DbOption = None,
) -> None:
    """Set a new password for an account (15 characters or more, not easy to guess); its open sessions end."""
    with Session(connect(db)) as session:
        set_password(session, username, _password(password_stdin), actor="cli")
        session.commit()
    out.print(f"password of {username} changed")


@review_app.command("deactivate")
@reports_errors
def deactivate_command(
    username: Annotated[str, typer.Argument(help="Login name.")],
    undo: Annotated[bool, typer.Option("--undo", help="Reactivate the account instead.")] = False,
    db: DbOption = None,
) -> None:
    """Deactivate an account: it cannot log in and its open sessions end; its reviews stay."""
    with Session(connect(db)) as session:
        set_active(session, username, undo, actor="cli")
        session.commit()
    out.print(f"{username} {'reactivated' if undo else 'deactivated'}")


@review_app.command("users")
@reports_errors
def users_command(db: DbOption = None) -> None:
    """List the accounts."""
    with Session(connect(db)) as session:
        for user in session.scalars(select(User).order_by(User.username)):
            state = "" if user.active else "  (deactivated)"
            out.print(f"{user.username:20} {user.role:8} since {user.created_at:%Y-%m-%d}{state}", highlight=False)


@review_app.command("serve")
@reports_errors
def serve_command(
    db: DbOption = None,
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8050,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-proxy",
            help="A reverse proxy (e.g. nginx terminating TLS) forwards to the app: trust the X-Forwarded-Proto and "
            "X-Forwarded-For of requests from --proxy-address (HTTPS gets Secure cookies; the lockout counts the "
            "client's address). Headers from any other address are removed.",
        ),
    ] = False,
    proxy_address: Annotated[
        str | None,
        typer.Option(
            "--proxy-address",
            help="With --behind-proxy: the address the proxy connects from, exactly as the app sees it "
            "[default: 127.0.0.1].",
            show_default=False,
        ),
    ] = None,
    root: RootOption = None,
) -> None:
    """Serve the review app with waitress, a production WSGI server (Ctrl-C stops it)."""
    from waitress import serve

    from harness.review.app import Vocabulary, create_app

    if proxy_address is not None and not behind_proxy:
        raise typer.BadParameter("only with --behind-proxy", param_hint="--proxy-address")
    folders = paths(root)
    app = create_app(db, load_review_config(config), folders, Vocabulary.of(folders))
    with Session(connect(db)) as session:
        if session.scalar(select(User).limit(1)) is None:
            raise InputError(
                "no accounts yet", ["add one first: harness review add-user NAME --role lead (and analysts)"]
            )
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port}",
                [f"{exc.strerror}: choose another port with --port (make review PORT=...)"],
            ) from None
    proxy: dict[str, object] = {}
    if behind_proxy:
        proxy = {
            "trusted_proxy": proxy_address or "127.0.0.1",
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": set(PROXY_HEADERS),
        }
        out.print(
            f"review app on http://{host}:{port}/ for the reverse proxy at {proxy['trusted_proxy']} (Ctrl-C stops it)",
            highlight=False,
        )
    else:
        out.print(f"review app on http://{host}:{port}/ (Ctrl-C stops it)")
    # waitress itself applies the trusted proxy's headers (wsgi.url_scheme, REMOTE_ADDR) and removes every
    # X-Forwarded-* header from anyone else: the app never sees a header it should not believe
    serve(app, host=host, port=port, threads=8, ident="harness-review", **proxy)


@review_app.command("export")
@reports_errors
def export_command(
    what: Annotated[
        str,
        typer.Argument(help="intents (corrections), eval-sets (critical dialogs) or scorecards (every review, CSV)."),
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="scorecards: the CSV file to write (default: print it).")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="scorecards: only this run's dialogs (a run id).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    root: RootOption = None,
) -> None:
    """Export verdicts: corrected intents into intents/ (with provenance), critical dialogs into eval_sets/, or
    every review as a CSV table for reporting."""
    from harness.review import exports

    folders = paths(root)
    settings = load_review_config(config)
    if what == "scorecards":
        from harness.review import reports
        from harness.review.scorecard_table import scorecard_frame, scorecard_rows, to_csv

        with Session(connect(db)) as session:
            reports.check_run_loaded(session, run)
            table = scorecard_frame(scorecard_rows(session, run), settings.scorecard)
            if out_file is None:
                sys.stdout.write(to_csv(table))
            else:
                try:
                    out_file.write_text(to_csv(table), encoding="utf-8")
                except OSError as exc:
                    raise InputError(
                        "cannot write the scorecards", [f"{out_file}: {exc.strerror}; give a writable file with --out"]
                    ) from None
                out.print(f"wrote {len(table)} review(s) to {out_file}", highlight=False, markup=False)
            audit(session, "cli", "export.scorecards", str(out_file or "stdout"), run=run, reviews=len(table))
            session.commit()
        return
    with Session(connect(db)) as session:
        if what == "intents":
            folders.require_reference_folders("harness review export intents", "intents", "bot")
            result = exports.export_corrections(session, folders, actor="cli")
        elif what == "eval-sets":
            result = exports.export_regressions(session, folders, settings.scorecard, actor="cli")
        else:
            raise InputError("unknown export", [f"{what!r}: give 'intents', 'eval-sets' or 'scorecards'"])
        session.commit()
    for line in result.added:
        out.print(f"added {line}", highlight=False, markup=False)
    for line in result.skipped:
        out.print(f"skipped {line}", highlight=False, markup=False)
    out.print(
        f"{len(result.added)} added, {len(result.skipped)} skipped; changed: {', '.join(result.files) or 'nothing'}"
    )


def _print_window(session: Session, scorecard: Scorecard, run_id: str) -> None:
    """A production window's reviewed KPIs for its population (nothing for a replayed run)."""
    from harness.review.production import window_kpis

    window = window_kpis(session, scorecard, run_id)
    if window is None:
        return
    out.print(
        f"{window.label}: {window.reviewed} of the {window.sampled} sampled dialog(s) reviewed; estimates for the "
        "window's conversations (95% Wilson, finite-population correction)",
        highlight=False,
        markup=False,
    )
    for kpi in window.kpis:
        value = "undefined" if kpi.value is None else f"{kpi.value:.1%}"
        interval = "" if kpi.interval is None else f" [{kpi.interval[0]:.1%}, {kpi.interval[1]:.1%}]"
        out.print(f"  {kpi.name:34} {value:>9}{interval} (n={kpi.n})", highlight=False, markup=False)


@review_app.command("report")
@reports_errors
def report_command(
    run: Annotated[str | None, typer.Option("--run", help="Only this run's dialogs (a run id).")] = None,
    mlflow: Annotated[
        bool, typer.Option("--mlflow", help="Also log the reviewed KPIs to that run's MLflow run (needs --run).")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the reviewed KPIs beside the automatic ones (sample and all reviewed), and the calibration report. For
    a production window (--run production-...), also its reviewed KPIs estimated for the window's conversations."""
    from harness.review import reports

    if mlflow and not run:
        raise InputError("--mlflow needs --run", ["name the run whose MLflow run gets the reviewed KPIs: --run RUN_ID"])
    settings = load_review_config(config)
    with Session(connect(db)) as session:
        reports.check_run_loaded(session, run)
        table = reports.kpi_table(session, settings.scorecard, run)
        for kpi in table:
            value = "undefined" if kpi.reviewed.value is None else f"{kpi.reviewed.value:.1%}"
            auto = ""
            if kpi.automatic is not None and kpi.automatic.value is not None:
                auto = f"  automatic {kpi.automatic.value:.1%} (n={kpi.automatic.n})"
            out.print(f"{kpi.population:8} {kpi.name:34} {value:>9} (n={kpi.reviewed.n}){auto}", highlight=False)
        if run is not None:
            _print_window(session, settings.scorecard, run)
        report = reports.calibration(session, settings.scorecard)
        consistency = reports.consistency(session, settings.scorecard)
    out.print(f"calibration: {report.dialogs} dialog(s) reviewed by two or more people")
    for item in report.items:
        if item.percent_agreement is None:
            continue
        kappa = "undefined" if item.fleiss_kappa is None else f"{item.fleiss_kappa:.2f}"
        out.print(f"  {item.item:24} agreement {item.percent_agreement:.0%}  Fleiss' kappa {kappa}", highlight=False)
    for deviation in report.deviations:
        out.print(
            f"  {deviation.analyst} differs from the reference on {deviation.disagreements} of "
            f"{deviation.compared} answers ({deviation.rate:.0%})",
            highlight=False,
        )
    for analyst in consistency:
        agreement = "-" if analyst.percent_agreement is None else f"{analyst.percent_agreement:.0%}"
        out.print(
            f"  {analyst.analyst} agrees with their own blind re-review on {agreement} of answers "
            f"({analyst.dialogs} dialog(s))",
            highlight=False,
        )
    if mlflow:
        assert run is not None
        from harness.project.config import load_config

        tracking_uri = load_config().resolved().tracking.uri
        mlflow_run = reports.log_reviewed_kpis(run, reports.kpi_metrics(table), tracking_uri)
        out.print(f"logged {len(reports.kpi_metrics(table))} reviewed metrics to MLflow run {mlflow_run}")
