"""Nothing an analyst saves or types is lost, and nothing leaks: concurrent saves of one review (optimistic
locking, real threads against SQLite and PostgreSQL), stale forms, failed saves that keep the input, bad ids, and
the blind calibration seen through every page an analyst can read."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable

import pytest
import test_review_app
from postgres_server import postgres  # noqa: F401 - postgres is a fixture, used by `world`
from review_world import PASSWORD
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from test_review_app import dialog_id, login, review_form, token
from werkzeug.test import TestResponse

from harness.review.database import connect
from harness.review.store import AuditEvent, Dialog, Rereview, Review

world = test_review_app.world
"""The review app on a fresh database, SQLite and PostgreSQL (the fixture of test_review_app.py)."""
RUN = "20261122-000000-abcdef"


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the scorecard form on a page (CSRF token, version, kind)."""
    form = re.search(r'<form[^>]*id="scorecard".*?</form>', page, re.S)
    assert form, "no scorecard form on the page"
    fields = {}
    for tag in re.findall(r'<input[^>]*type="hidden"[^>]*>', form.group(0)):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        assert name and value
        fields[name.group(1)] = html.unescape(value.group(1))
    return fields


def browser_form(client, dialog: int, **fields: object) -> dict:  # type: ignore[no-untyped-def]
    """A filled-in scorecard with every hidden field of the page, as a browser submits it."""
    return {
        **review_form(client, dialog, **fields),
        **hidden_fields(client.get(f"/dialogs/{dialog}").get_data(as_text=True)),
    }


def note_in_form(page: str) -> str:
    found = re.search(r'<textarea name="note"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, "no note field on the page"
    return html.unescape(found.group(1))


def saved_version(page: str) -> str:
    """The part of a conflict page that shows the version already saved."""
    found = re.search(r'<section id="conflict".*?</section>', page, re.S)
    assert found, "no conflict section on the page"
    return html.unescape(found.group(0))


def race(posts: list[Callable[[], TestResponse]]) -> list[tuple[int, str]]:
    """Run the posts at the same moment (one thread each, released together by a barrier); status and body of each.
    An exception in the app (a 500) fails the test with the exception."""
    barrier = threading.Barrier(len(posts))
    results: list[tuple[int, str] | BaseException | None] = [None] * len(posts)

    def run(i: int) -> None:
        barrier.wait()
        try:
            response = posts[i]()
            results[i] = (response.status_code, response.get_data(as_text=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if not isinstance(r, tuple)]
    assert not errors, f"saves failed with errors: {errors!r}"
    return [r for r in results if isinstance(r, tuple)]


def stored(database: str, model: type[Review] | type[Rereview], dialog: int) -> list[tuple[str, int]]:
    with Session(connect(database)) as session:
        return [(r.note, r.version) for r in session.scalars(select(model).where(model.dialog_id == dialog))]


def audited(database: str, action: str) -> list[AuditEvent]:
    with Session(connect(database)) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def post(client, dialog: int, form: dict) -> Callable[[], TestResponse]:  # type: ignore[no-untyped-def]
    return lambda: client.post(f"/dialogs/{dialog}/review", data=form)


TABS = 6


def check_race(results: list[tuple[int, str]], notes: list[str], database: str, dialog: int, version: int) -> str:
    """Exactly one save won; every other answer is a 409 showing the saved version and the loser's own input, with
    the new version number in the form. The winner's note."""
    statuses = [status for status, _ in results]
    assert sorted(statuses) == [302] + [409] * (len(results) - 1), statuses
    winner = notes[statuses.index(302)]
    assert stored(database, Review, dialog) == [(winner, version)]
    for (status, page), note in zip(results, notes, strict=True):
        if status == 409:
            assert winner in saved_version(page) and "ann" in saved_version(page)
            assert note_in_form(page) == note  # their input is kept, unsaved
            assert hidden_fields(page)["version"] == str(version)  # saving again overwrites deliberately
    return winner


def test_concurrent_saves_of_one_review_lose_nothing_silently(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    tabs = [login(app, "ann") for _ in range(TABS)]

    notes = [f"first round, tab {i}" for i in range(TABS)]
    forms = [review_form(tab, dialog, note=note) for tab, note in zip(tabs, notes, strict=True)]
    winner = check_race(
        race([post(t, dialog, f) for t, f in zip(tabs, forms, strict=True)]), notes, database, dialog, 1
    )
    created = audited(database, "review.create")
    assert [e.detail["note"] for e in created] == [winner]

    notes = [f"second round, tab {i}" for i in range(TABS)]
    forms = [review_form(tab, dialog, note=note) for tab, note in zip(tabs, notes, strict=True)]
    assert {f["version"] for f in forms} == {"1"}
    second = check_race(
        race([post(t, dialog, f) for t, f in zip(tabs, forms, strict=True)]), notes, database, dialog, 2
    )
    updates = audited(database, "review.update")
    assert [e.detail["note"] for e in updates] == [{"from": winner, "to": second}]


def test_a_stale_form_gets_a_conflict_and_saving_it_again_overwrites(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    old_tab, new_tab = login(app, "ann"), login(app, "ann")
    stale = review_form(old_tab, dialog, note="typed in the old tab", rating_tone="poor")
    assert (
        new_tab.post(f"/dialogs/{dialog}/review", data=review_form(new_tab, dialog, note="saved first")).status_code
        == 302
    )
    assert (
        new_tab.post(f"/dialogs/{dialog}/review", data=review_form(new_tab, dialog, note="saved second")).status_code
        == 302
    )

    response = old_tab.post(f"/dialogs/{dialog}/review", data=stale)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "saved second" in saved_version(page) and "version 2" in saved_version(page)
    assert note_in_form(page) == "typed in the old tab"
    assert re.search(r'name="rating_tone" value="poor" checked', page)
    assert stored(database, Review, dialog) == [("saved second", 2)]

    again = {**stale, **hidden_fields(page)}
    assert old_tab.post(f"/dialogs/{dialog}/review", data=again).status_code == 302
    assert stored(database, Review, dialog) == [("typed in the old tab", 3)]
    assert [e.detail.get("note", {}).get("to") for e in audited(database, "review.update")] == [
        "saved second",
        "typed in the old tab",
    ]


def assign(app, database: str, dialogs: list[int], names: list[str], kind: str = "review") -> None:  # type: ignore[no-untyped-def]
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    ids = [re.search(rf'name="analysts" value="(\d+)" ?> {name}\b', page).group(1) for name in names]  # type: ignore[union-attr]
    form = {"csrf_token": token(page), "dialogs": ", ".join(map(str, dialogs)), "analysts": ids, "kind": kind}
    assert lead.post("/calibration", data=form).status_code == 302


def test_a_stale_blind_rereview_neither_overwrites_the_first_review_nor_is_lost(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    ann = login(app, "ann")
    assert ann.post(f"/dialogs/{dialog}/review", data=review_form(ann, dialog, note="first look")).status_code == 302
    assign(app, database, [dialog], ["ann"], kind="rereview")
    tab_a, tab_b = login(app, "ann"), login(app, "ann")
    form_a = review_form(tab_a, dialog, note="second look, tab a")
    form_b = review_form(tab_b, dialog, note="second look, tab b")
    assert form_a["kind"] == "rereview" and form_a["version"] == "0"

    results = race([post(tab_a, dialog, form_a), post(tab_b, dialog, form_b)])
    assert sorted(status for status, _ in results) == [302, 409]
    (loser_page,) = [page for status, page in results if status == 409]
    winner, loser = ("tab b", form_a) if "tab b" in saved_version(loser_page) else ("tab a", form_b)
    assert note_in_form(loser_page) == loser["note"]
    assert "first look" not in loser_page  # still blind to the first review
    assert stored(database, Review, dialog) == [("first look", 1)]
    assert stored(database, Rereview, dialog) == [(f"second look, {winner}", 1)]

    again = {**loser, **hidden_fields(loser_page)}
    client = tab_a if loser is form_a else tab_b
    assert client.post(f"/dialogs/{dialog}/review", data=again).status_code == 302
    assert stored(database, Rereview, dialog) == [(loser["note"], 2)]
    assert stored(database, Review, dialog) == [("first look", 1)]
    assert [e.action for e in audited(database, "rereview.create") + audited(database, "rereview.update")] == [
        "rereview.create",
        "rereview.update",
    ]


def test_a_conflict_whose_input_is_also_invalid_keeps_both(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    old_tab, new_tab = login(app, "ann"), login(app, "ann")
    stale = review_form(old_tab, dialog, note="half done", rating_tone="")
    assert new_tab.post(f"/dialogs/{dialog}/review", data=review_form(new_tab, dialog, note="done")).status_code == 302
    response = old_tab.post(f"/dialogs/{dialog}/review", data=stale)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "rating tone" in page and note_in_form(page) == "half done"
    assert stored(database, Review, dialog) == [("done", 1)]


# ---------------------------------------------------------------------------------------------- failed saves


def test_get_on_the_save_address_goes_to_the_dialog(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    response = login(app, "ann").get(f"/dialogs/{dialog}/review")
    assert response.status_code == 302 and response.headers["Location"] == f"/dialogs/{dialog}"


def test_a_csrf_failure_while_logged_in_shows_the_scorecard_again(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    ann = login(app, "ann")
    form = review_form(
        ann, dialog, note="an hour of work", critical_errors="fraud_not_escalated", intent_0="report_fraud"
    )
    response = ann.post(f"/dialogs/{dialog}/review", data={**form, "csrf_token": "from another session"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "nothing was saved" not in page.lower() and "save it again" in page
    assert note_in_form(page) == "an hour of work"
    assert re.search(r'value="fraud_not_escalated" checked', page)
    assert re.search(r'<option value="report_fraud" selected>', page)
    assert stored(database, Review, dialog) == []
    assert ann.post(f"/dialogs/{dialog}/review", data={**form, **hidden_fields(page)}).status_code == 302
    assert stored(database, Review, dialog) == [("an hour of work", 1)]


def login_form(page: str) -> dict[str, list[str]]:
    """Every hidden input of a login page (CSRF token, next, the carried fields), as a browser would send them."""
    form = re.search(r'<form[^>]*action="/login".*?</form>', page, re.S)
    assert form, "no login form on the page"
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r'<input[^>]*type="hidden"[^>]*>', form.group(0)):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        assert name and value
        fields.setdefault(html.unescape(name.group(1)), []).append(html.unescape(value.group(1)))
    return fields


def log_in_on(client, page: str, name: str = "ann") -> TestResponse:  # type: ignore[no-untyped-def]
    return client.post("/login", data={**login_form(page), "username": name, "password": PASSWORD})


SCORECARD = {
    "note": "an hour of careful work\nsecond line",
    "critical_errors": ["fraud_not_escalated", "asked_for_secret"],
    "intent_0": "report_fraud",
    "rating_tone": "poor",
}


def shows_the_scorecard(page: str) -> None:
    assert note_in_form(page) == SCORECARD["note"]
    assert re.search(r'value="fraud_not_escalated" checked', page) and re.search(
        r'value="asked_for_secret" checked', page
    )
    assert re.search(r'<option value="report_fraud" selected>', page)
    assert re.search(r'name="rating_tone" value="poor" checked', page)


@pytest.mark.parametrize("ended", ["logged out in another tab", "cookies gone"])
def test_a_save_without_a_session_keeps_the_scorecard_through_the_login(world, ended: str) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    tab = login(app, "ann")
    form = browser_form(tab, dialog, **SCORECARD)
    if ended == "cookies gone":
        tab = app.test_client()
    else:
        other_tab = tab  # the same browser: the same cookie
        assert (
            other_tab.post("/logout", data={"csrf_token": token(other_tab.get("/").get_data(as_text=True))}).status_code
            == 302
        )

    response = tab.post(f"/dialogs/{dialog}/review", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 401 and 'id="carried-input"' in page and "not saved yet" in page
    assert stored(database, Review, dialog) == []

    response = log_in_on(tab, page)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "not saved yet" in page and f'action="/dialogs/{dialog}/review"' in page
    shows_the_scorecard(page)
    assert stored(database, Review, dialog) == []  # nothing is saved without the analyst pressing save

    response = tab.post(f"/dialogs/{dialog}/review", data={**form, **hidden_fields(page)})
    assert response.status_code == 302
    assert stored(database, Review, dialog) == [(SCORECARD["note"], 1)]


def test_a_wrong_password_on_the_way_keeps_the_scorecard(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    tab = login(app, "ann")
    form = browser_form(tab, dialog, **SCORECARD)
    fresh = app.test_client()
    page = fresh.post(f"/dialogs/{dialog}/review", data=form).get_data(as_text=True)
    wrong = fresh.post("/login", data={**login_form(page), "username": "ann", "password": "not it"})
    assert 'id="carried-input"' in wrong.get_data(as_text=True)
    page = log_in_on(fresh, wrong.get_data(as_text=True)).get_data(as_text=True)
    shows_the_scorecard(page)


def test_a_scorecard_filled_in_as_someone_else_is_not_saved_without_a_word(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    browser = login(app, "ann")
    form = browser_form(browser, dialog, **SCORECARD)
    assert form["analyst"] == "ann"
    browser.post("/logout", data={"csrf_token": token(browser.get("/").get_data(as_text=True))})
    page = browser.get("/login").get_data(as_text=True)
    assert browser.post("/login", data={**login_form(page), "username": "bob", "password": PASSWORD}).status_code == 302

    response = browser.post(f"/dialogs/{dialog}/review", data=form)  # ann's tab, bob's session
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and "filled in by another user" in page
    shows_the_scorecard(page)
    assert stored(database, Review, dialog) == []
    assert browser.post(f"/dialogs/{dialog}/review", data={**form, **hidden_fields(page)}).status_code == 302
    with Session(connect(database)) as session:
        assert [r.analyst.username for r in session.scalars(select(Review))] == ["bob"]


# ---------------------------------------------------------------------------------------------- bad ids

BAD_IDS = ["0", "-1", "2147483648", "99999999999999999999999", "abc", "1.5", "1e3", "%D9%A1", "%C2%B2"]
"""Zero, negative, beyond SQL INTEGER (PostgreSQL's id columns), far beyond 64 bits, not a number, and digits that
are not ASCII (Arabic-Indic one, superscript two: Python's int() reads the first, str.isdigit() accepts both)."""


def test_every_bad_id_is_a_404(world) -> None:
    app, database, _ = world
    ann, lea = login(app, "ann"), login(app, "lea")
    good = dialog_id(database, "demo-fraud")
    form = review_form(ann, good)
    assert ann.post(f"/dialogs/{good}/review", data=form).status_code == 302
    with Session(connect(database)) as session:
        review = session.scalars(select(Review.id)).one()
    csrf = token(lea.get("/").get_data(as_text=True))
    assert lea.post(f"/reviews/{review}/reference", data={"csrf_token": csrf}).status_code == 302
    answers = {}
    for bad in BAD_IDS:
        answers[f"GET /dialogs/{bad}"] = ann.get(f"/dialogs/{bad}").status_code
        answers[f"GET /dialogs/{bad}/review"] = ann.get(f"/dialogs/{bad}/review").status_code
        answers[f"POST /dialogs/{bad}/review"] = ann.post(f"/dialogs/{bad}/review", data=form).status_code
        answers[f"POST /reviews/{bad}/reference"] = lea.post(
            f"/reviews/{bad}/reference", data={"csrf_token": csrf}
        ).status_code
    assert {k: v for k, v in answers.items() if v != 404} == {}
    page = ann.get("/dialogs/99999999999999999999999").get_data(as_text=True)
    assert "Not found" in page


def test_a_lead_naming_bad_dialog_numbers_for_calibration_is_told_which(world) -> None:
    app, _, _ = world
    lead = login(app, "lea")
    page = lead.get("/calibration").get_data(as_text=True)
    form = {"csrf_token": token(page), "dialogs": "1, 99999999999999999999999 2147483648 \u00b2", "analysts": []}
    response = lead.post("/calibration", data=form)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    for bad in ("99999999999999999999999", "2147483648", "\u00b2"):
        assert f"dialog '{bad}' does not exist" in body


# ---------------------------------------------------------------------------------------------- blind calibration

ANALYST_PAGES = [
    "/",
    "/?status=open",
    "/?status=reviewed",
    "/?sample=1",
    "/?flag=missed_escalation",
    f"/?run={RUN}",
    "/kpis",
    f"/kpis?run={RUN}",
    "/dialogs/{calibrated}",
    "/dialogs/{other}",
    "/calibration",
    "/exports",
    "/exports/scorecards.csv",
    "/audit",
]


def snapshot(client, pages: list[str], **ids: int) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Status and body of each page, CSRF tokens blanked (they differ per render, not per review)."""
    out = {}
    for page in pages:
        response = client.get(page.format(**ids))
        body = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', response.get_data(as_text=True))
        out[page] = (response.status_code, body)
    return out


def test_an_analyst_cannot_read_a_colleagues_blind_calibration_verdict(world) -> None:
    app, database, _ = world
    calibrated, other = dialog_id(database, "demo-fraud"), dialog_id(database, "demo-contact")
    with Session(connect(database)) as session:  # in the random sample: the sample's figures and coverage count it
        session.execute(update(Dialog).where(Dialog.id == calibrated).values(sampled=True))
        session.commit()
    ann, bob, lea = login(app, "ann"), login(app, "bob"), login(app, "lea")
    assert ann.post(f"/dialogs/{other}/review", data=review_form(ann, other), follow_redirects=True).status_code == 200
    assign(app, database, [calibrated], ["ann", "bob"])

    before = snapshot(ann, ANALYST_PAGES, calibrated=calibrated, other=other)
    lead_before = lea.get("/kpis").get_data(as_text=True)
    form = review_form(bob, calibrated, critical_errors="fraud_not_escalated", rating_tone="poor")
    assert bob.post(f"/dialogs/{calibrated}/review", data=form).status_code == 302
    after = snapshot(ann, ANALYST_PAGES, calibrated=calibrated, other=other)

    assert [page for page in ANALYST_PAGES if before[page] != after[page]] == []
    assert before["/kpis"][0] == 200 and "1 dialog(s) under an open calibration" in before["/kpis"][1]
    assert lea.get("/kpis").get_data(as_text=True) != lead_before  # the lead sees bob's verdict counted

    # Once every assigned reviewer has saved, the calibration is complete and the dialog counts for everyone.
    assert ann.post(f"/dialogs/{calibrated}/review", data=review_form(ann, calibrated)).status_code == 302
    closed = ann.get("/kpis").get_data(as_text=True)
    assert "open calibration" not in closed
    assert closed.count("undefined") < before["/kpis"][1].count("undefined")  # the sample now has a verdict
