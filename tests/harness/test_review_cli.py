"""`harness review` on the command line: loading a run, accounts, exports and the report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
from review_world import FRAUD_MASKED, PASSWORD, review_project, review_run
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from harness.cli import app
from harness.review.app import Vocabulary, create_app
from harness.review.config import load_review_config
from harness.review.database import connect
from harness.review.store import Review, User, find_user

runner = CliRunner()


def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["review", *args], input=stdin)


def test_load_is_idempotent_and_reports_the_selection(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'review.db'}"
    run_dir = review_run(tmp_path)
    first = invoke("load", str(run_dir), "--db", db)
    assert first.exit_code == 0, first.output
    assert "dialogs to review" in first.output and "missed_escalation: 2" in first.output
    again = invoke("load", str(run_dir), "--db", db)
    assert again.exit_code == 0 and "loaded already" in again.output


def test_a_folder_without_turn_records_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("load", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'review.db'}")
    assert result.exit_code == 2 and "turns.parquet" in result.output


def test_accounts_are_added_listed_repassworded_and_deactivated(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'review.db'}"
    assert (
        invoke("add-user", "lea", "--role", "lead", "--password-stdin", "--db", db, stdin=PASSWORD + "\n").exit_code
        == 0
    )
    short = invoke("add-user", "ann", "--password-stdin", "--db", db, stdin="short\n")
    assert short.exit_code == 2 and "at least 15 characters" in short.output
    taken = invoke("add-user", "lea", "--password-stdin", "--db", db, stdin=PASSWORD + "\n")
    assert taken.exit_code == 2 and "is taken" in taken.output
    assert invoke("add-user", "ann", "--password-stdin", "--db", db, stdin=PASSWORD + "\n").exit_code == 0
    listed = invoke("users", "--db", db).output
    assert "ann" in listed and "analyst" in listed and "lea" in listed and "lead" in listed
    assert invoke("set-password", "ann", "--password-stdin", "--db", db, stdin="a new passphrase\n").exit_code == 0
    with Session(connect(db)) as session:
        ann = find_user(session, "ann")
        assert ann.check_password("a new passphrase") and not ann.check_password(PASSWORD)
        assert ann.password_hash.startswith(("scrypt:", "pbkdf2:"))  # hashed, never stored as given
    unknown = invoke("set-password", "anne", "--password-stdin", "--db", db, stdin="a new passphrase\n")
    assert unknown.exit_code == 2 and "did you mean 'ann'" in unknown.output
    assert invoke("deactivate", "ann", "--db", db).exit_code == 0
    assert "(deactivated)" in invoke("users", "--db", db).output


def test_a_deactivated_account_cannot_log_in_and_its_session_ends(tmp_path: Path) -> None:
    import re

    db = f"sqlite:///{tmp_path / 'review.db'}"
    invoke("add-user", "ann", "--password-stdin", "--db", db, stdin=PASSWORD + "\n")
    paths = review_project(tmp_path)
    web = create_app(db, load_review_config(), paths, Vocabulary.of(paths), testing=True)
    client = web.test_client()

    def log_in():  # type: ignore[no-untyped-def]
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        return client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf})

    assert log_in().status_code == 302 and client.get("/").status_code == 200
    invoke("deactivate", "ann", "--db", db)
    assert client.get("/").status_code == 302  # the open session ended
    assert log_in().status_code == 200 and client.get("/").status_code == 302
    invoke("deactivate", "ann", "--undo", "--db", db)
    assert log_in().status_code == 302


def test_exports_and_report_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'review.db'}"
    paths = review_project(tmp_path)
    invoke("load", str(review_run(tmp_path)), "--db", db)
    invoke("add-user", "ann", "--password-stdin", "--db", db, stdin=PASSWORD + "\n")
    with Session(connect(db)) as session:
        ann = find_user(session, "ann")
        session.add(
            Review(
                dialog_id=1,
                analyst_id=ann.id,
                ratings={"understood": "no", "correct_answer": "no", "correct_routing": "no", "resolved": "no"}
                | {"tone": "good"},
                critical_errors=["fraud_not_escalated"],
                corrected_intents={"0": "report_fraud"},
                correct_outcome="escalated:fraud",
            )
        )
        session.commit()
    intents = invoke("export", "intents", "--db", db, "--root", str(paths.root))
    assert intents.exit_code == 0, intents.output
    assert FRAUD_MASKED in intents.output and "1 added" in intents.output
    regressions = invoke("export", "eval-sets", "--db", db, "--root", str(paths.root))
    assert regressions.exit_code == 0 and "qa-demo-fraud-r1" in regressions.output
    assert "0 added" in invoke("export", "intents", "--db", db, "--root", str(paths.root)).output
    bad = invoke("export", "intent", "--db", db)
    assert bad.exit_code == 2 and "give 'intents', 'eval-sets' or 'scorecards'" in bad.output
    table = tmp_path / "scorecards.csv"
    written = invoke("export", "scorecards", "--out", str(table), "--db", db)
    assert written.exit_code == 0 and "wrote 1 review(s)" in written.output
    row = pd.read_csv(table, keep_default_na=False).iloc[0]
    assert (row["analyst"], row["verdict"], row["critical_classes"]) == ("ann", "failed", "business")
    assert row["corrected_intents"] == '{"0": "report_fraud"}' and row["rating:tone"] == "good"
    unwritable = invoke("export", "scorecards", "--out", str(tmp_path / "no-such-folder" / "s.csv"), "--db", db)
    assert unwritable.exit_code == 2 and "cannot write the scorecards" in unwritable.output
    assert "give a writable file with --out" in unwritable.output
    unknown_run = invoke("export", "scorecards", "--run", "20261122-000000-abcdeg", "--db", db)
    assert unknown_run.exit_code == 2 and "unknown run '20261122-000000-abcdeg'" in unknown_run.output
    assert "did you mean '20261122-000000-abcdef'" in unknown_run.output
    assert "unknown run 'nope'" in invoke("report", "--run", "nope", "--db", db).output
    printed = invoke("export", "scorecards", "--run", "20261122-000000-abcdef", "--db", db)
    assert printed.exit_code == 0 and printed.output.startswith("run_id,dialog_id,conversation_id")
    assert len(printed.output.strip().splitlines()) == 2  # the header and ann's review
    report = invoke("report", "--db", db).output
    assert "critical_accuracy.business" in report and "0.0% (n=1)" in report
    assert invoke("report", "--mlflow", "--db", db).exit_code == 2  # --mlflow needs --run


def test_a_database_from_an_older_version_is_refused_with_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("create table users (id integer primary key, username text, password_hash text, role text)")
    result = invoke("users", "--db", f"sqlite:///{path}")
    assert result.exit_code == 2 and "users.active" in result.output and "older version" in result.output
    assert User.__tablename__ == "users"


def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    result = invoke("users", "--db", "postgresql://qa:s3cret@127.0.0.1:1/review")
    assert result.exit_code == 2
    assert "cannot open the review database" in result.output and "HARNESS_REVIEW_DB" in result.output
    assert "s3cret" not in result.output and "qa:***@127.0.0.1:1/review" in result.output
