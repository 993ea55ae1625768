"""The review app after a hostile test (breakit14): `--behind-proxy` through a real waitress server, CSRF failures
on records that do not exist, a blind re-review and a calibration that stay blind and cannot be faked afterwards,
account names and passwords from the command line, and login attempts under names that are not accounts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import test_review_app
from postgres_server import postgres  # noqa: F401 - a fixture, used by `world`
from review_world import PASSWORD, add_users, review_project, serving
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_review_app import dialog_id, login, review_form, token
from test_review_saves import assign, hidden_fields, stored
from typer.testing import CliRunner

from harness.cli import app as cli_app
from harness.errors import InputError
from harness.review.database import connect
from harness.review.store import AuditEvent, LoginCounter, Rereview, Review, Role, User, add_user

world = test_review_app.world
"""The app on a fresh SQLite and a fresh PostgreSQL database, with the review world's run and users."""

# ------------------------------------------------------------------------------------------- behind a proxy


def counters(database: str) -> set[str]:
    with Session(connect(database)) as session:
        return set(session.scalars(select(LoginCounter.key)))


def failed_login(url: str, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        page = client.get("/login").text
        form = {"username": "ann", "password": "a wrong guess", "csrf_token": token(page)}
        return client.post("/login", data=form).status_code


def test_behind_proxy_waitress_passes_the_proxys_scheme_and_client_address(tmp_path: Path) -> None:
    paths = review_project(tmp_path)
    database = f"sqlite:///{tmp_path / 'review.db'}"
    add_users(database)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}

    with serving(tmp_path, database, paths.root) as url:  # nothing trusted: the headers are anyone's
        assert "Secure" not in httpx.get(f"{url}/login", headers=forwarded).headers["set-cookie"]
        assert failed_login(url, {"X-Forwarded-For": "203.0.113.77"}) == 200
    assert counters(database) == {"user:ann", "address:127.0.0.1"}

    with serving(tmp_path, database, paths.root, "--behind-proxy") as url:
        cookie = httpx.get(f"{url}/login", headers=forwarded).headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert "Secure" not in httpx.get(f"{url}/login", headers={"X-Forwarded-Proto": "http"}).headers["set-cookie"]
        assert failed_login(url, {"X-Forwarded-For": "203.0.113.77"}) == 200
    assert counters(database) == {"user:ann", "address:127.0.0.1", "address:203.0.113.77"}

    # a proxy elsewhere: requests from 127.0.0.1 are not from it, so their headers count for nothing
    with serving(tmp_path, database, paths.root, "--behind-proxy", "--proxy-address", "192.0.2.10") as url:
        assert "Secure" not in httpx.get(f"{url}/login", headers=forwarded).headers["set-cookie"]
        assert failed_login(url, {"X-Forwarded-For": "203.0.113.99"}) == 200
    assert "address:203.0.113.99" not in counters(database)


def test_a_proxy_address_without_behind_proxy_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["review", "serve", "--proxy-address", "10.0.0.1"])
    assert result.exit_code == 2 and "--behind-proxy" in result.output


# ------------------------------------------------------------------------------------------- CSRF failures


def test_a_csrf_failure_on_a_record_that_does_not_exist_is_a_404_never_a_500(world) -> None:
    app, database, _ = world
    ann, lea = login(app, "ann"), login(app, "lea")
    good = token(ann.get("/").get_data(as_text=True))
    for client in (ann, lea):
        for path in ("/dialogs/99999/review", "/dialogs/2147483647/review", "/reviews/99999/reference"):
            for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": good, "note": "x"} if client is ann else {}):
                status = client.post(path, data=form).status_code
                assert status in (400, 403, 404), (path, form, status)
        for path in ("/calibration", "/exports", "/logout"):
            assert client.post(path, data={"csrf_token": "wrong"}).status_code in (400, 403), path
    assert ann.post("/dialogs/99999/review", data={"csrf_token": "wrong"}).status_code == 404


# ------------------------------------------------------------------------------------------- blind re-review


def test_a_review_posted_while_a_rereview_is_due_neither_shows_nor_changes_the_first_review(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    ann = login(app, "ann")
    first = review_form(ann, dialog, note="first look at it", rating_tone="poor")
    assert ann.post(f"/dialogs/{dialog}/review", data=first).status_code == 302
    assign(app, database, [dialog], ["ann"], kind="rereview")

    # an old tab of the first review (kind review, version 0), or the form edited by hand
    stale = review_form(ann, dialog, note="typed again", kind="review", version="0")
    response = ann.post(f"/dialogs/{dialog}/review", data=stale)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "first look at it" not in page and 'id="saved-version"' not in page
    assert hidden_fields(page)["kind"] == "rereview" and hidden_fields(page)["version"] == "0"
    assert "typed again" in page  # the input is kept, as a re-review
    current = review_form(ann, dialog, note="typed again", kind="review", version="1")
    assert ann.post(f"/dialogs/{dialog}/review", data=current).status_code == 409
    assert stored(database, Review, dialog) == [("first look at it", 1)]
    assert stored(database, Rereview, dialog) == []

    # the re-review is saved from the page shown; the first review stays as it was, for good
    again = {**stale, **hidden_fields(page)}
    assert ann.post(f"/dialogs/{dialog}/review", data=again).status_code == 302
    assert stored(database, Rereview, dialog) == [("typed again", 1)]
    shown = ann.get(f"/dialogs/{dialog}").get_data(as_text=True)
    assert "cannot be changed" in shown
    align = review_form(ann, dialog, note="first look at it", kind="review", version="1")
    refused = ann.post(f"/dialogs/{dialog}/review", data=align)
    assert refused.status_code == 409 and "cannot be changed" in refused.get_data(as_text=True)
    assert stored(database, Review, dialog) == [("first look at it", 1)]
    with Session(connect(database)) as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "review.update")) is None


# ------------------------------------------------------------------------------------------- calibration


def test_once_a_calibration_is_complete_its_analysts_cannot_change_their_reviews(world) -> None:
    app, database, _ = world
    dialog = dialog_id(database, "demo-fraud")
    ann, bob, lea = login(app, "ann"), login(app, "bob"), login(app, "lea")
    assign(app, database, [dialog], ["ann", "bob"])
    assert bob.post(f"/dialogs/{dialog}/review", data=review_form(bob, dialog, note="bob 1")).status_code == 302
    edit = review_form(bob, dialog, note="bob 2")  # still open: bob may change his mind
    assert bob.post(f"/dialogs/{dialog}/review", data=edit).status_code == 302
    assert ann.post(f"/dialogs/{dialog}/review", data=review_form(ann, dialog, note="ann 1")).status_code == 302

    # complete: ann's /kpis now counts the dialog, so neither may change their review any more
    for client, note in ((ann, "ann aligned"), (bob, "bob aligned")):
        response = client.post(f"/dialogs/{dialog}/review", data=review_form(client, dialog, note=note))
        page = response.get_data(as_text=True)
        assert response.status_code == 409 and "calibration" in page and "cannot be changed" in page
    assert sorted(stored(database, Review, dialog)) == [("ann 1", 1), ("bob 2", 2)]

    # the lead still marks a reference
    page = lea.get(f"/dialogs/{dialog}").get_data(as_text=True)
    review = re.search(r'action="/reviews/(\d+)/reference"', page).group(1)  # type: ignore[union-attr]
    assert lea.post(f"/reviews/{review}/reference", data={"csrf_token": token(page)}).status_code == 302
    with Session(connect(database)) as session:
        assert session.scalar(select(Review.reference).where(Review.id == int(review))) is True


# ------------------------------------------------------------------------------------------- accounts


def add(database: str, *args: str, stdin: bytes | str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["review", "add-user", *args, "--password-stdin", "--db", database], stdin)
    return result.exit_code, result.output


def test_password_stdin_strips_one_line_ending_and_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'review.db'}"
    assert add(database, "crlf", stdin=PASSWORD.encode() + b"\r\n")[0] == 0
    assert add(database, "lf", stdin=PASSWORD + "\n")[0] == 0
    assert add(database, "spaced", stdin=" " + PASSWORD + " \n")[0] == 0
    with Session(connect(database)) as session:
        users = {u.username: u for u in session.scalars(select(User))}
    assert users["crlf"].check_password(PASSWORD) and not users["crlf"].check_password(PASSWORD + "\r")
    assert users["lf"].check_password(PASSWORD)
    assert users["spaced"].check_password(" " + PASSWORD + " ")  # spaces are part of a password
    code, output = add(database, "latin", stdin=b"velvet orbit \xe9 giraffe lamp\n")
    assert code == 2 and "UTF-8" in output and "Traceback" not in output
    with Session(connect(database)) as session:
        assert session.scalar(select(User).where(User.username == "latin")) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a" * 65, "at most 64 characters"),
        ("ANN", "too like 'ann'"),
        ("Ann", "too like 'ann'"),
        ("\u0430nn", "ASCII letters"),  # Cyrillic а
        ("ａｎｎ", "ASCII letters"),  # full-width
        ("ann bob", "ASCII letters"),
        ("", "ASCII letters"),
    ],
)
def test_a_user_name_too_long_or_too_like_another_is_refused(tmp_path: Path, name: str, why: str) -> None:
    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        add_user(session, "ann", PASSWORD, Role.analyst, actor="test")
        session.flush()
        with pytest.raises(InputError) as refused:
            add_user(session, name, PASSWORD, Role.analyst, actor="test")
        assert why in str(refused.value)
        add_user(session, "a" * 64, PASSWORD, Role.analyst, actor="test")
        add_user(session, "ann.b-c_2", PASSWORD, Role.analyst, actor="test")


# ------------------------------------------------------------------------------------------- unknown names


def test_a_name_that_is_not_an_account_is_recorded_only_as_a_keyed_hash(world) -> None:
    app, database, _ = world
    typed = "velvet orbit ann giraffe lamp"  # a password typed into the user-name field
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    form = {"username": typed, "password": "ann", "csrf_token": token(page)}
    assert client.post("/login", data=form).status_code == 200
    assert client.post("/login", data={**form, "username": "ann"}).status_code == 200
    with Session(connect(database)) as session:
        keys = set(session.scalars(select(LoginCounter.key)))
        events = [
            (e.actor, e.target) for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("login%")))
        ]
    assert not any("velvet" in key for key in keys) and "user:ann" in keys
    assert not any("velvet" in actor or "velvet" in target for actor, target in events)
    (unknown,) = [actor for actor, _ in events if actor != "ann"]
    assert re.fullmatch(r"unknown user #[0-9a-f]{8}", unknown)
    assert f"user:{unknown}" in keys
    assert ("ann", "user ann") in events
    lea = login(app, "lea")
    audit_page = lea.get("/audit").get_data(as_text=True)
    assert "velvet" not in audit_page and unknown in audit_page
