"""The review app through Flask's test client, CSRF protection on: access control, the scorecard, the audit
trail, masking, calibration and the exports round-tripping through the project's own validators."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
from postgres_server import create_database, postgres  # noqa: F401 - postgres is a fixture
from review_world import EVAL_TURN, FRAUD_MASKED, PASSWORD, add_users, review_project, review_run
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from harness.errors import InputError
from harness.pipeline import load_suite
from harness.project.bot_config import load_queue_config
from harness.project.config import load_config
from harness.project.intents import load_catalog
from harness.records import read, to_frame, write
from harness.review import reports
from harness.review.app import Vocabulary, create_app
from harness.review.auth import ADDRESS_LOCKOUT_FAILURES
from harness.review.config import load_review_config
from harness.review.database import connect
from harness.review.dialogs import load_run
from harness.review.store import AuditEvent, Dialog
from harness.trainer.intent_checks import check_intents
from harness.trainer.provenance import read_provenance, reviewed_from

CONFIG = load_review_config()


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The app on a fresh database of each kind, with the review world's run loaded and its users added."""
    paths = review_project(tmp_path)
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'review.db'}"
    else:
        database = create_database(request.getfixturevalue("postgres"), f"review_{uuid.uuid4().hex[:12]}")
    with Session(connect(database)) as session:
        load_run(session, review_run(tmp_path), CONFIG, actor="test")
    add_users(database)
    app = create_app(database, CONFIG, paths, Vocabulary.of(paths), testing=True)
    return app, database, paths


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(app, name: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    return client


def dialog_id(database: str, conversation: str) -> int:
    with Session(connect(database)) as session:
        return session.scalar(select(Dialog.id).where(Dialog.conversation_id == conversation))  # type: ignore[return-value]


def review_form(client, dialog: int, **fields: object) -> dict:  # type: ignore[no-untyped-def]
    page = client.get(f"/dialogs/{dialog}").get_data(as_text=True)
    form: dict[str, object] = {
        "csrf_token": token(page),
        **dict(re.findall(r'<input type="hidden" name="(version|kind)" value="([^"]*)">', page)),
        **{f"rating_{a.name}": "no" if a.name != "tone" else "good" for a in CONFIG.scorecard.attributes},
        "correct_outcome": "escalated:fraud",
        "note": "",
    }
    form.update(fields)
    return form


@pytest.mark.parametrize("path", ["/", "/dialogs/1", "/kpis", "/calibration", "/exports", "/audit"])
def test_nothing_without_login(world, path: str) -> None:
    app, _, _ = world
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_wrong_password_is_refused(world) -> None:
    app, _, _ = world
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "ann", "password": "guess", "csrf_token": token(page)})
    assert response.status_code == 200 and "wrong password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_post_without_csrf_token_is_rejected(world) -> None:
    app, database, _ = world
    client = login(app, "ann")
    dialog = dialog_id(database, "demo-fraud")
    form = review_form(client, dialog)
    del form["csrf_token"]
    assert client.post(f"/dialogs/{dialog}/review", data=form).status_code == 400
    with Session(connect(database)) as session:
        assert session.scalar(text("select count(*) from reviews")) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/calibration"), ("get", "/exports"), ("get", "/audit"), ("post", "/exports"), ("post", "/calibration")],
)
def test_an_analyst_cannot_do_a_leads_work(world, method: str, path: str) -> None:
    app, _, _ = world
    client = login(app, "ann")
    data = {"csrf_token": token(client.get("/").get_data(as_text=True)), "kind": "intents"}
    response = client.get(path) if method == "get" else client.post(path, data=data)
    assert response.status_code == 403
    if method == "get":
        assert login(app, "lea").get(path).status_code == 200


def test_queue_is_ordered_by_priority_and_says_why(world) -> None:
    app, database, _ = world
    client = login(app, "ann")
    order = re.findall(r'<tr data-conversation="([^"]+)">', client.get("/").get_data(as_text=True))
    # demo-fraud: low confidence 2 + mismatch 3 + missed escalation 4 + critical 5 = 14; then two at 7, by id:
    # demo-contact (fallback 2 + mismatch 3 + repetition 2) and escalation-002 (mismatch 3 + missed escalation 4)
    assert order[:3] == ["demo-fraud", "demo-contact", "escalation-002"]
    fraud = client.get(f"/dialogs/{dialog_id(database, 'demo-fraud')}").get_data(as_text=True)
    assert "missed_escalation" in fraud and "should have been handed to fraud, the bot kept it" in fraud
    assert "check_balance" in fraud and "report_fraud 0.22" in fraud  # the decision and its alternatives


def test_queue_filters_by_flag(world) -> None:
    app, _, _ = world
    page = login(app, "ann").get("/?flag=repetition").get_data(as_text=True)
    assert re.findall(r'<tr data-conversation="([^"]+)">', page) == ["demo-contact"]


def rows(client, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r'<tr data-conversation="([^"]+)">', client.get(query).get_data(as_text=True))


def test_queue_filters_combine(world) -> None:
    app, database, _ = world
    ann = login(app, "ann")
    assert rows(ann, "/?intent=report_fraud") == ["demo-fraud", "escalation-002"]
    assert rows(ann, "/?queue=fraud") == ["demo-fraud", "escalation-002"]
    assert rows(ann, "/?run=20261122-000000-abcdef&flag=fallback") == ["demo-contact"]
    assert rows(ann, "/?run=no-such-run") == [] and rows(ann, "/?flag=no_such_rule") == []
    fraud = dialog_id(database, "demo-fraud")
    ann.post(f"/dialogs/{fraud}/review", data=review_form(ann, fraud))
    assert rows(ann, "/?status=reviewed") == ["demo-fraud"]
    assert rows(ann, "/?status=open")[:2] == ["demo-contact", "escalation-002"]
    assert rows(login(app, "bob"), "/?status=reviewed") == []  # ann's review is not bob's
    page = ann.get("/").get_data(as_text=True)
    for option in ("repetition", "missed_escalation", "report_fraud", "update_address", "fraud"):
        assert f'<option value="{option}"' in page


def test_dialogs_assigned_to_me_come_first_whatever_their_priority(world) -> None:
    app, database, _ = world
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    analysts = re.findall(r'name="analysts" value="(\d+)" ?> (?:ann|bob)', page)
    third = dialog_id(database, "escalation-002")
    form = {"csrf_token": token(page), "dialogs": str(third), "analysts": analysts}
    assert lead.post("/calibration", data=form).status_code == 302
    assert rows(login(app, "bob"), "/")[:3] == ["escalation-002", "demo-fraud", "demo-contact"]
    assert rows(lead, "/")[:3] == ["demo-fraud", "demo-contact", "escalation-002"]  # not assigned to the lead


def test_personal_data_is_masked_in_the_database_and_the_view(world) -> None:
    app, database, _ = world
    with Session(connect(database)) as session:
        stored = " ".join(str(d.turns) + str(d.flags) for d in session.scalars(select(Dialog)))
    for secret in ("4111", "jo.bloggs@example.com", "07700 900123"):
        assert secret not in stored
    assert FRAUD_MASKED in stored and "[email]" in stored and "[phone number]" in stored
    page = login(app, "ann").get(f"/dialogs/{dialog_id(database, 'demo-contact')}").get_data(as_text=True)
    assert "[email]" in page and "jo.bloggs" not in page


def test_a_review_is_saved_audited_and_fails_the_dialog_on_a_critical_error(world) -> None:
    app, database, _ = world
    client = login(app, "ann")
    dialog = dialog_id(database, "demo-fraud")
    form = review_form(client, dialog, critical_errors="fraud_not_escalated", intent_0="report_fraud")
    response = client.post(f"/dialogs/{dialog}/review", data=form, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "failed (business-critical)" in page
    with Session(connect(database)) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("review.%"))).all()
        assert [(e.actor, e.action) for e in events] == [("ann", "review.create")]
        assert events[0].detail["corrected_intents"] == {"0": "report_fraud"}
    form = review_form(client, dialog, critical_errors="fraud_not_escalated", intent_0="report_fraud", note="call me")
    client.post(f"/dialogs/{dialog}/review", data=form)
    with Session(connect(database)) as session:
        update = session.scalars(select(AuditEvent).where(AuditEvent.action == "review.update")).one()
        assert update.detail == {"note": {"from": "", "to": "call me"}}


def test_an_invalid_review_is_refused_with_reasons_and_keeps_the_input(world) -> None:
    app, database, _ = world
    client = login(app, "ann")
    dialog = dialog_id(database, "demo-fraud")
    form = review_form(client, dialog, intent_0="no_such_intent", note="keep me", rating_tone="")
    response = client.post(f"/dialogs/{dialog}/review", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a known intent" in page and "rating tone" in page and "keep me" in page
    with Session(connect(database)) as session:
        assert session.scalar(text("select count(*) from reviews")) == 0


def test_analysts_do_not_see_each_others_reviews_but_the_lead_does(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    ann = login(app, "ann")
    ann.post(f"/dialogs/{dialog}/review", data=review_form(ann, dialog, note="ann was here"))
    assert "ann was here" not in login(app, "bob").get(f"/dialogs/{dialog}").get_data(as_text=True)
    assert "ann was here" in login(app, "lea").get(f"/dialogs/{dialog}").get_data(as_text=True)


def test_calibration_assigns_and_reports_agreement(world) -> None:
    app, database, _ = world
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    ids = [dialog_id(database, c) for c in ("demo-fraud", "demo-contact")]
    user_ids = re.findall(r'name="analysts" value="(\d+)" ?> (?:ann|bob)', page)
    response = lead.post(
        "/calibration", data={"csrf_token": token(page), "dialogs": f"{ids[0]}, {ids[1]}", "analysts": user_ids}
    )
    assert response.status_code == 302
    assert "assigned" in login(app, "bob").get("/").get_data(as_text=True)
    for name, tone in (("ann", "good"), ("bob", "poor")):
        client = login(app, name)
        for dialog in ids:
            client.post(f"/dialogs/{dialog}/review", data=review_form(client, dialog, rating_tone=tone))
    report = lead.get("/calibration").get_data(as_text=True)
    row = re.search(r'<tr data-item="tone">(.*?)</tr>', report, re.S)
    assert row and "0.0%" in row.group(1)  # ann and bob never agree on tone
    assert re.search(r'<tr data-item="understood">.*?100.0%', report, re.S)
    assert "Most disagreement: <strong>tone</strong>" in report
    assert re.search(r'<tr data-item="critical:any">.*?100.0%', report, re.S)  # both passed both dialogs


def test_bad_calibration_input_is_reported(world) -> None:
    app, _, _ = world
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    response = lead.post("/calibration", data={"csrf_token": token(page), "dialogs": "99999", "analysts": []})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "does not exist" in body and "at least two reviewers" in body


def test_exports_land_in_intents_and_eval_sets_and_validate(world) -> None:
    app, database, paths = world
    ann = login(app, "ann")
    fraud, replayed = dialog_id(database, "demo-fraud"), dialog_id(database, "escalation-002")
    form = review_form(ann, fraud, critical_errors="fraud_not_escalated", intent_0="report_fraud")
    ann.post(f"/dialogs/{fraud}/review", data=form)
    ann.post(f"/dialogs/{replayed}/review", data=review_form(ann, replayed, intent_0="report_fraud"))
    lead = login(app, "lea")
    page = lead.get("/exports").get_data(as_text=True)
    assert FRAUD_MASKED in page and "2 pending" in page
    result = lead.post("/exports", data={"csrf_token": token(page), "kind": "intents"}).get_data(as_text=True)
    assert "Exported 2 item(s)" in result

    queues = load_queue_config(paths.escalation_policy).queues
    catalog = load_catalog(paths.intents, known_queues=queues)
    assert FRAUD_MASKED in catalog.intents["report_fraud"].examples
    assert EVAL_TURN in catalog.intents["report_fraud"].examples
    provenance = read_provenance(paths.intents)
    assert {(p.conversation, p.analyst, p.run) for p in provenance} == {
        ("demo-fraud", "ann", "20261122-000000-abcdef"),
        ("escalation-002", "ann", "20261122-000000-abcdef"),
    }
    with open(paths.intents / "provenance.csv", encoding="utf-8") as handle:
        assert "4111" not in handle.read()

    page = lead.get("/exports").get_data(as_text=True)
    lead.post("/exports", data={"csrf_token": token(page), "kind": "eval_sets"})
    suite = load_suite(load_config(overrides={"eval_sets": str(paths.eval_sets)}).resolved(paths.root), paths)
    regressions = [c.conversation for c in suite.conversations if c.eval_set == "qa_regressions"]
    assert len(regressions) == 1
    regression = regressions[0]
    assert regression.id.startswith("qa-demo-fraud-r") and "critical" in regression.tags
    assert regression.expected.label == "escalated:fraud"
    assert [(t.text, t.intent) for t in regression.turns] == [(FRAUD_MASKED, "report_fraud")]
    assert "fraud" in (regression.critical or "") and "ann" in (regression.critical or "")

    # The replayed eval turn now trains the bot on purpose: the leakage check warns instead of failing.
    report = check_intents(catalog, suite, embeddings=False, reviewed=reviewed_from(provenance))
    assert report.errors == []
    assert any("escalation-002" in w and "QA review" in w for w in report.warnings)
    assert check_intents(catalog, suite, embeddings=False).errors  # without provenance it is leakage

    # Exporting again adds nothing.
    page = lead.get("/exports").get_data(as_text=True)
    assert "0 pending" in page
    with Session(connect(database)) as session:
        assert session.scalar(text("select count(*) from exports")) == 3
        actions = {e.action for e in session.scalars(select(AuditEvent))}
    assert {"export.intents", "export.eval_sets", "review.create", "login", "run.load"} <= actions


def test_a_correction_repeating_another_eval_conversation_is_skipped_as_leakage(world) -> None:
    app, database, paths = world
    ann = login(app, "ann")
    # demo-contact is not an eval conversation; pretend the customer typed escalation-002's text there
    with Session(connect(database)) as session:
        dialog = session.scalars(select(Dialog).where(Dialog.conversation_id == "demo-contact")).one()
        dialog.turns = [{**dialog.turns[0], "text": EVAL_TURN}, dialog.turns[1]]
        session.commit()
        target = dialog.id
    ann.post(f"/dialogs/{target}/review", data=review_form(ann, target, intent_0="report_fraud"))
    lead = login(app, "lea")
    page = lead.get("/exports").get_data(as_text=True)
    result = lead.post("/exports", data={"csrf_token": token(page), "kind": "intents"}).get_data(as_text=True)
    assert "would leak the test" in result
    provenance = paths.intents / "provenance.csv"
    assert not provenance.exists() or EVAL_TURN not in provenance.read_text(encoding="utf-8")


def test_unlabelled_logs_load_for_review(tmp_path: Path) -> None:
    """Production logs have no labels: label-free rules still flag them, and nothing pretends to know the label."""
    run_dir = review_run(tmp_path)
    records = read(run_dir / "turns.parquet")
    records["expected_outcome"] = None
    records["expected_queue"] = None
    records["expected_intent"] = None
    records["critical"] = None
    write(to_frame(records.to_dict("records")), run_dir / "turns.parquet")
    database = f"sqlite:///{tmp_path / 'review.db'}"
    with Session(connect(database)) as session:
        load_run(session, run_dir, CONFIG, actor="test")
        dialogs = {d.conversation_id: d for d in session.scalars(select(Dialog))}
    assert dialogs["demo-contact"].flag_rules == ["fallback", "repetition"]
    assert dialogs["demo-fraud"].flag_rules == ["low_confidence"]
    assert all(d.expected_label is None and d.auto_resolved is None for d in dialogs.values())
    assert dialogs["demo-fraud"].intent == "check_balance"  # no label: the topic is what the bot recognised


def test_reviewed_kpis_are_logged_to_the_runs_mlflow_run(world, tmp_path: Path) -> None:
    import mlflow

    app, database, _ = world
    ann = login(app, "ann")
    fraud = dialog_id(database, "demo-fraud")
    ann.post(f"/dialogs/{fraud}/review", data=review_form(ann, fraud, critical_errors="fraud_not_escalated"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("reference-bot", artifact_location=(tmp_path / "art").as_uri())
    tracked = client.create_run(experiment, tags={"harness.run_id": "20261122-000000-abcdef"}).info.run_id
    with Session(connect(database)) as session:
        table = reports.kpi_table(session, CONFIG.scorecard, "20261122-000000-abcdef")
        assert reports.log_reviewed_kpis("20261122-000000-abcdef", reports.kpi_metrics(table), uri) == tracked
        with pytest.raises(InputError, match="no MLflow run"):
            reports.log_reviewed_kpis("20991231-000000-000000", reports.kpi_metrics(table), uri)
    logged = client.get_run(tracked).data
    assert logged.metrics["reviewed.reviewed.critical_accuracy.business"] == 0.0
    assert logged.metrics["reviewed.reviewed.critical_accuracy.business.n"] == 1.0
    assert logged.metrics["reviewed.reviewed.reviewed_outcome_accuracy.automatic"] == 0.0  # kept it; label: fraud
    assert "reviewed.sample.critical_accuracy.business" not in logged.metrics  # undefined: nothing sampled reviewed
    assert logged.tags["qa_reviewed"] == "true"


def test_kpi_page_shows_reviewed_beside_automatic_and_the_sample_coverage(world) -> None:
    app, database, _ = world
    ann = login(app, "ann")
    fraud = dialog_id(database, "demo-fraud")
    ann.post(f"/dialogs/{fraud}/review", data=review_form(ann, fraud, critical_errors="asked_for_secret"))
    page = ann.get("/kpis").get_data(as_text=True)
    row = re.search(
        r'<table class="kpis" id="kpis-reviewed">.*?data-kpi="critical_accuracy.compliance">(.*?)</tr>', page, re.S
    )
    assert row and re.findall(r"<td>(.*?)</td>", row.group(1))[:3] == ["critical_accuracy.compliance", "0.0%", "1"]
    assert re.search(r"0 of the \d+ sampled dialog\(s\) reviewed", page)


def test_the_queue_is_paged_and_pages_keep_the_filters(world, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.review.app

    monkeypatch.setattr(harness.review.app, "PAGE_SIZE", 2)
    app, _, _ = world
    client = login(app, "ann")
    first = client.get("/").get_data(as_text=True)
    second = client.get("/?page=2").get_data(as_text=True)
    rows = [re.findall(r'<tr data-conversation="([^"]+)">', page) for page in (first, second)]
    assert len(rows[0]) == 2 and rows[0][0] == "demo-fraud" and not set(rows[0]) & set(rows[1])
    assert "page 1 of" in first and 'href="/?page=2' in first and "previous" not in first
    filtered = client.get("/?flag=fallback&page=9").get_data(as_text=True)  # out of range: the last page
    assert re.findall(r'<tr data-conversation="([^"]+)">', filtered) == ["demo-contact"]


def test_a_failed_export_restores_the_files_keeps_the_reviews_and_says_why(world) -> None:
    app, database, paths = world
    ann = login(app, "ann")
    fraud = dialog_id(database, "demo-fraud")
    ann.post(f"/dialogs/{fraud}/review", data=review_form(ann, fraud, critical_errors="fraud_not_escalated"))
    (paths.eval_sets / "broken.yml").write_text("version: 1\nname: broken\nconversations: [{id: x}]\n")
    lead = login(app, "lea")
    page = lead.get("/exports").get_data(as_text=True)
    result = lead.post("/exports", data={"csrf_token": token(page), "kind": "eval_sets"}).get_data(as_text=True)
    assert "Nothing was exported" in result and "broken.yml" in result
    assert not (paths.eval_sets / "qa_regressions.yml").exists()
    assert "1 pending" in result  # still pending: nothing recorded as exported
    (paths.eval_sets / "broken.yml").unlink()
    page = lead.get("/exports").get_data(as_text=True)
    assert "Exported 1 item(s)" in lead.post(
        "/exports", data={"csrf_token": token(page), "kind": "eval_sets"}
    ).get_data(as_text=True)


def test_an_expired_form_gets_a_page_that_says_what_to_do(world) -> None:
    app, database, _ = world
    client = login(app, "ann")
    response = client.post(f"/dialogs/{dialog_id(database, 'demo-fraud')}/review", data={"csrf_token": "forged"})
    assert response.status_code == 400  # a scorecard is shown again with its input (test_review_saves.py)
    assert "check it and save it again" in response.get_data(as_text=True)
    response = login(app, "lea").post("/exports", data={"csrf_token": "forged", "kind": "intents"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)


def test_after_a_review_the_page_links_the_next_dialog_to_review(world) -> None:
    app, database, _ = world
    ann = login(app, "ann")
    fraud, contact = dialog_id(database, "demo-fraud"), dialog_id(database, "demo-contact")
    page = ann.post(f"/dialogs/{fraud}/review", data=review_form(ann, fraud), follow_redirects=True).get_data(
        as_text=True
    )
    assert re.search(rf'id="next-dialog" href="/dialogs/{contact}">Next to review: demo-contact', page)
    bob = login(app, "bob")  # bob has reviewed nothing: the highest priority comes next, whatever ann did
    assert "Next to review: demo-fraud" in bob.get(f"/dialogs/{contact}").get_data(as_text=True)


def test_repeated_failed_logins_lock_the_user_name_out(world) -> None:
    app, database, _ = world
    client = app.test_client()
    for _ in range(5):
        page = client.get("/login").get_data(as_text=True)
        assert (
            client.post("/login", data={"username": "ann", "password": "guess", "csrf_token": token(page)}).status_code
            == 200
        )
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token(page)})
    assert response.status_code == 429 and "Too many failed logins" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still not logged in
    assert login(app, "bob").get("/").status_code == 200  # other users are not affected
    with Session(connect(database)) as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.actor == "ann"))]
    assert actions.count("login.failed") == 5 and actions.count("login.locked") == 1


def test_a_lead_downloads_every_review_as_a_csv_table_and_an_analyst_cannot(world) -> None:
    app, database, _ = world
    ann = login(app, "ann")
    fraud = dialog_id(database, "demo-fraud")
    form = review_form(ann, fraud, critical_errors="fraud_not_escalated", note='=HYPERLINK("http://x")')
    ann.post(f"/dialogs/{fraud}/review", data=form)
    assert ann.get("/exports/scorecards.csv").status_code == 403
    response = login(app, "lea").get("/exports/scorecards.csv?run=20261122-000000-abcdef")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="scorecards-20261122-000000-abcdef.csv"' in response.headers["Content-Disposition"]
    table = pd.read_csv(io.StringIO(response.get_data(as_text=True)), keep_default_na=False)
    assert list(table["conversation_id"]) == ["demo-fraud"]
    row = table.iloc[0]
    assert (row["analyst"], row["verdict"], row["critical_errors"]) == ("ann", "failed", "fraud_not_escalated")
    assert row["note"] == '\'=HYPERLINK("http://x")'  # defused: a spreadsheet shows it, never runs it
    assert bool(row["decides_verdict"]) and not bool(row["reference"])
    with Session(connect(database)) as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "export.scorecards")) is not None


def test_failed_logins_from_one_address_across_many_names_lock_the_address_out(world) -> None:
    app, database, _ = world
    sprayer = app.test_client()
    for attempt in range(ADDRESS_LOCKOUT_FAILURES):  # one guess per name: no name reaches its own limit
        page = sprayer.get("/login").get_data(as_text=True)
        form = {"username": f"user{attempt}", "password": "Winter2026!", "csrf_token": token(page)}
        assert sprayer.post("/login", data=form).status_code == 200
    page = sprayer.get("/login").get_data(as_text=True)
    response = sprayer.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token(page)})
    assert response.status_code == 429 and "from your network address" in response.get_data(as_text=True)
    elsewhere = app.test_client()
    page = elsewhere.get("/login").get_data(as_text=True)
    form = {"username": "ann", "password": PASSWORD, "csrf_token": token(page)}
    assert elsewhere.post("/login", data=form, environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 302


def test_a_blind_rereview_measures_consistency_and_decides_nothing(world) -> None:
    app, database, _ = world
    fraud = dialog_id(database, "demo-fraud")
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    ann_id = re.search(r'name="analysts" value="(\d+)" ?> ann', page).group(1)  # type: ignore[union-attr]
    too_early = lead.post(
        "/calibration",
        data={"csrf_token": token(page), "dialogs": str(fraud), "analysts": [ann_id], "kind": "rereview"},
    )
    assert too_early.status_code == 422 and "needs a first review" in too_early.get_data(as_text=True)

    ann = login(app, "ann")
    first = review_form(ann, fraud, critical_errors="fraud_not_escalated", note="first look", rating_tone="good")
    ann.post(f"/dialogs/{fraud}/review", data=first)
    page = lead.get("/calibration").get_data(as_text=True)
    assigned = lead.post(
        "/calibration",
        data={"csrf_token": token(page), "dialogs": str(fraud), "analysts": [ann_id], "kind": "rereview"},
    )
    assert assigned.status_code == 302
    queue = ann.get("/").get_data(as_text=True)
    assert re.search(r'<tr data-conversation="demo-fraud">.*?re-review \(blind\)', queue, re.S)
    blind = ann.get(f"/dialogs/{fraud}").get_data(as_text=True)
    assert 'id="blind-rereview"' in blind and "first look" not in blind  # the first review is hidden
    again = review_form(ann, fraud, critical_errors="fraud_not_escalated", note="second look", rating_tone="poor")
    saved = ann.post(f"/dialogs/{fraud}/review", data=again, follow_redirects=True).get_data(as_text=True)
    assert "Re-review of demo-fraud saved" in saved and "first look" in saved  # back to the first review

    with Session(connect(database)) as session:
        assert session.scalar(text("select note from reviews")) == "first look"  # the verdict is untouched
        assert session.scalar(text("select note from rereviews")) == "second look"
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "rereview.create"))
    report = lead.get("/calibration").get_data(as_text=True)
    row = re.search(r'<tr data-analyst="ann">(.*?)</tr>', report, re.S)
    assert row and "tone 0/1" in row.group(1) and "critical:any 1/1" in row.group(1)
    assert "second look" in lead.get(f"/dialogs/{fraud}").get_data(as_text=True)  # the lead sees both
