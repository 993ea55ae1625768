"""Logging in and out of the review app, tried as a careless or hostile user would: sessions that end, safe
redirects after login, a lockout that holds under concurrent attempts, a login time that does not reveal user
names, the password policy, and a login that carries the analyst's unsaved input through."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import test_review_app
from flask import Flask, g, request
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError, CSRFProtect
from postgres_server import postgres  # noqa: F401 - a fixture, used by `world`
from review_world import PASSWORD
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from test_review_app import login, token
from typer.testing import CliRunner
from werkzeug.datastructures import MultiDict

import harness.review.passwords
import harness.review.store
from harness.cli import app as cli_app
from harness.errors import InputError
from harness.review import auth
from harness.review.auth import LOCKOUT_FAILURES, LOCKOUT_WINDOW, render_login, safe_next
from harness.review.database import connect
from harness.review.store import AuditEvent, LoginCounter, Role, User, add_user, set_active, set_password

world = test_review_app.world
"""The app on a fresh SQLite and a fresh PostgreSQL database, with the review world's run and users."""

# ------------------------------------------------------------------------------------------- carrying input


@pytest.fixture
def carrier(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A small app using auth.install as app.py does, with a form whose POST shows the login page, carrying the
    input, when the session is gone; `resume` echoes what came back."""
    database = f"sqlite:///{tmp_path / 'carry.db'}"
    sessions = sessionmaker(connect(database), expire_on_commit=False)
    with sessions() as session:
        add_user(session, "ann", PASSWORD, Role.analyst, actor="test")
        session.commit()
    app = Flask("harness.review.app")  # the review app's templates
    app.config.update(SECRET_KEY="test", TESTING=True, WTF_CSRF_TIME_LIMIT=None)
    CSRFProtect(app)
    resumed: list[tuple[str, MultiDict]] = []

    def resume(next_path: str, carried: MultiDict) -> str:
        resumed.append((next_path, carried))
        return f"resumed as {current_user.username}"

    def db() -> Session:
        if "db" not in g:
            g.db = sessions()
        return g.db  # type: ignore[no-any-return]

    @app.teardown_appcontext
    def close_db(_error: BaseException | None) -> None:
        if (session := g.pop("db", None)) is not None:
            session.close()

    auth.install(app, db, resume)

    @app.get("/")
    @login_required
    def queue() -> str:
        return "queue"

    @app.route("/notes/<int:number>", methods=["GET", "POST"])
    def notes(number: int) -> object:
        if not current_user.is_authenticated:
            return render_login(request.path, request.form, "Your session ended; log in to continue.", 401)
        return "notes form"

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> object:
        return render_login(request.path, request.form, "The form expired.", 400)

    return app, resumed


def hidden_fields(page: str) -> list[tuple[str, str]]:
    import html

    return [
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    ]


def test_a_form_posted_after_the_session_ended_is_carried_through_the_login(carrier) -> None:
    app, resumed = carrier
    client = app.test_client()
    form = MultiDict(
        [
            ("csrf_token", token(client.get("/login").get_data(as_text=True))),
            ("note", 'said "<b>call me</b>"\nline two & more'),
            ("critical_errors", "fraud_not_escalated"),
            ("critical_errors", "asked_for_secret"),
            ("next", "https://evil.example/"),  # a field of the carried form, not where to go
        ]
    )
    page = client.post("/notes/3", data=form)
    assert page.status_code == 401
    body = page.get_data(as_text=True)
    assert "Your session ended" in body and 'id="carried-input"' in body and 'action="/login"' in body
    fields = hidden_fields(body)
    assert ("next", "/notes/3") in fields
    carried = [(n, v) for n, v in fields if n.startswith("carry:")]
    assert carried == [
        ("carry:note", 'said "<b>call me</b>"\nline two & more'),
        ("carry:critical_errors", "fraud_not_escalated"),
        ("carry:critical_errors", "asked_for_secret"),
        ("carry:next", "https://evil.example/"),
    ]
    assert "<b>call me</b>" not in body  # escaped

    wrong = client.post("/login", data=MultiDict([*fields, ("username", "ann"), ("password", "nope")]))
    assert wrong.status_code == 200 and "wrong password" in wrong.get_data(as_text=True)
    assert [f for f in hidden_fields(wrong.get_data(as_text=True)) if f[0].startswith("carry:")] == carried

    data = MultiDict([*fields, ("username", "ann"), ("password", PASSWORD)])
    done = client.post("/login", data=data)
    assert done.status_code == 200 and done.get_data(as_text=True) == "resumed as ann"
    [(next_path, back)] = resumed
    assert next_path == "/notes/3"
    assert back.getlist("critical_errors") == ["fraud_not_escalated", "asked_for_secret"]
    assert back["note"] == 'said "<b>call me</b>"\nline two & more' and back["next"] == "https://evil.example/"
    assert "csrf_token" not in back


def test_a_csrf_failure_carries_the_input_too_and_so_does_an_expired_login_form(carrier) -> None:
    app, resumed = carrier
    client = app.test_client()
    client.get("/login")  # a session, whose CSRF secret the forged token does not match
    page = client.post("/notes/3", data={"csrf_token": "forged", "note": "keep me"})
    assert page.status_code == 400 and "The form expired" in page.get_data(as_text=True)
    fields = hidden_fields(page.get_data(as_text=True))
    assert ("carry:note", "keep me") in fields
    stale = MultiDict([(n, v) for n, v in fields if n != "csrf_token"] + [("csrf_token", "stale")])
    stale.update({"username": "ann", "password": PASSWORD})
    again = client.post("/login", data=stale)  # the login form's own token failed: input still kept, not logged in
    assert again.status_code == 400 and ("carry:note", "keep me") in hidden_fields(again.get_data(as_text=True))
    assert client.get("/").status_code == 302 and resumed == []


def test_without_carried_input_the_login_redirects_to_next(carrier) -> None:
    app, resumed = carrier
    client = app.test_client()
    page = client.get("/login?next=/notes/4").get_data(as_text=True)
    data = {"csrf_token": token(page), "next": "/notes/4", "username": "ann", "password": PASSWORD}
    response = client.post("/login", data=data)
    assert response.status_code == 302 and response.headers["Location"] == "/notes/4" and resumed == []


def test_input_too_large_to_carry_is_dropped_with_a_message(carrier) -> None:
    app, _ = carrier
    page = app.test_client().post("/notes/3", data={"note": "x" * (auth.CARRY_LIMIT + 1)})
    body = page.get_data(as_text=True)
    assert "too large to keep through the login" in body and "carry:" not in body
    assert 'id="carried-input"' not in body


def test_render_login_drops_an_unsafe_next(carrier) -> None:
    app, _ = carrier
    with app.test_request_context("/notes/3", method="POST"):
        body = render_login("//evil.example/x", None).get_data(as_text=True)
    assert ("next", "") in hidden_fields(body)


# ------------------------------------------------------------------------------------------- sessions that end


def logged_in_twice(app):  # type: ignore[no-untyped-def]
    """Two sessions of ann (two browsers), both working."""
    first, second = login(app, "ann"), login(app, "ann")
    assert first.get("/").status_code == 200 and second.get("/").status_code == 200
    return first, second


def cookie(client) -> str:  # type: ignore[no-untyped-def]
    found = client.get_cookie("session")
    assert found is not None
    return str(found.value)


def replay(app, value: str) -> int:  # type: ignore[no-untyped-def]
    """The status of the queue for a browser sending a copied session cookie."""
    other = app.test_client()
    other.set_cookie("session", value)
    return int(other.get("/").status_code)


def test_logout_ends_every_session_of_the_account(world) -> None:
    app, _, _ = world
    first, second = logged_in_twice(app)
    stolen = cookie(first)
    bob = login(app, "bob")
    first.post("/logout", data={"csrf_token": token(first.get("/").get_data(as_text=True))})
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 302 and second.get("/").headers["Location"].startswith("/login")
    assert replay(app, stolen) == 302  # the cookie from before the logout, sent again
    assert bob.get("/").status_code == 200  # other accounts keep theirs
    assert login(app, "ann").get("/").status_code == 200


def test_a_password_change_ends_every_session_of_the_account(world) -> None:
    app, database, _ = world
    first, second = logged_in_twice(app)
    stolen = cookie(first)
    result = CliRunner().invoke(
        cli_app,
        ["review", "set-password", "ann", "--password-stdin", "--db", database],
        input="pale ferry 7 tulip mosaic\n",
    )
    assert result.exit_code == 0, result.output
    assert first.get("/").status_code == 302 and second.get("/").status_code == 302 and replay(app, stolen) == 302


def test_a_deactivated_account_stays_logged_out_when_reactivated(world) -> None:
    app, database, _ = world
    first, _ = logged_in_twice(app)
    with Session(connect(database)) as session:
        set_active(session, "ann", False, actor="test")
        session.commit()
    assert first.get("/").status_code == 302
    with Session(connect(database)) as session:
        set_active(session, "ann", True, actor="test")
        session.commit()
    assert first.get("/").status_code == 302  # its sessions ended for good
    assert login(app, "ann").get("/").status_code == 200


def test_the_session_cookie_is_secure_over_https_only(world) -> None:
    app, _, _ = world
    over_https = app.test_client().get("/login", base_url="https://review.example")
    over_http = app.test_client().get("/login", base_url="http://review.example")
    assert "Secure" in over_https.headers["Set-Cookie"] and "HttpOnly" in over_https.headers["Set-Cookie"]
    assert "Secure" not in over_http.headers["Set-Cookie"]
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "Secure" not in app.test_client().get("/login", headers=forwarded).headers["Set-Cookie"]  # not trusted
    # behind a proxy, waitress applies the trusted proxy's headers: test_review_hardening.py runs it


def test_an_old_style_or_forged_session_identity_loads_nobody(world) -> None:
    app, database, _ = world
    with Session(connect(database)) as session:
        ann = session.scalars(select(User).where(User.username == "ann")).one()
        assert ann.get_id() == f"{ann.id}:{ann.session_version}"
        for identity in (str(ann.id), f"{ann.id}:{ann.session_version + 1}", "x:0", "99999999999999999999:0", ""):
            assert auth._identity_user(session, identity) is None
        assert auth._identity_user(session, ann.get_id()) is ann


# ------------------------------------------------------------------------------------------- redirects


BYPASSES = [
    "/\t/evil.example/x",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/ /evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\\t/evil.example",
    "https:evil.example",
    "https://evil.example/",
    "HTTPS://evil.example",
    "http:/evil.example",
    "//evil.example@review.example",
    "https://localhost/dialogs/1",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "\x00//evil.example",
    "/\x00/evil.example",
    "/\u3000/evil.example",
    "/\u2028/evil.example",
    "/\u200b/evil.example",
    "/login",
    "/logout",
    "",
]
GOOD = ["/dialogs/3?x=1", "/dialogs/3/review", "/?flag=repetition&page=2", "/kpis", "/%2F%2Fevil", "/@evil.example"]


@pytest.mark.parametrize("target", BYPASSES)
def test_unsafe_next_values_are_refused(target: str) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", GOOD)
def test_same_site_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target


def test_after_login_only_same_site_paths_are_followed(world) -> None:
    app, _, _ = world
    # as the browser sends them: the issue's own example, double slashes encoded once and twice
    raw_queries = ["/%09/127.0.0.2:8199/x", "%2F%2Fevil.example", "%2F%5Cevil.example", "/%0A/evil.example"]
    cases = [(q, "/") for q in raw_queries] + [(quote(t, safe=""), "/") for t in BYPASSES]
    cases += [(quote(t, safe=""), t) for t in GOOD]
    client = app.test_client()
    for query, expected in cases:
        page = client.get(f"/login?next={query}").get_data(as_text=True)
        data = {"csrf_token": token(page), "username": "ann", "password": PASSWORD}
        response = client.post(f"/login?next={query}", data=data)
        assert (query, response.headers["Location"]) == (query, expected)
        assert ("next", "" if expected == "/" else expected) in hidden_fields(page)  # the page's own form
    crafted = {"csrf_token": token(client.get("/login").get_data(as_text=True)), "username": "ann"}
    for target in BYPASSES:  # a next sent in the form itself
        response = client.post("/login", data=crafted | {"password": PASSWORD, "next": target})
        assert response.headers["Location"] == "/", target


# ------------------------------------------------------------------------------------------- lockout


class Checks:
    """Counts the password hash checks (every one, real or dummy), thread-safely."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        real = harness.review.passwords.check_password_hash

        def counted(stored: str, password: str) -> bool:
            with self._lock:
                self.count += 1
            return real(stored, password)

        monkeypatch.setattr(harness.review.passwords, "check_password_hash", counted)


def serve(app):  # type: ignore[no-untyped-def]
    """The app on a real waitress server on loopback, with the threads `harness review serve` gives it."""
    from waitress import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def test_simultaneous_logins_cannot_race_past_the_lockout(world, monkeypatch: pytest.MonkeyPatch) -> None:
    app, database, _ = world
    checks = Checks(monkeypatch)
    server, thread = serve(app)
    base = f"http://127.0.0.1:{server.effective_port}"
    passwords = [f"wrong guess {i}" for i in range(15)] + [PASSWORD]
    clients = [httpx.Client(base_url=base, timeout=120) for _ in passwords]
    tokens = [token(c.get("/login").text) for c in clients]
    start = threading.Barrier(len(passwords))
    outcomes: dict[int, int] = {}

    def attempt(i: int) -> None:
        form = {"username": "ann", "password": passwords[i], "csrf_token": tokens[i]}
        start.wait()
        outcomes[i] = clients[i].post("/login", data=form).status_code

    try:
        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(passwords))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.close()
        thread.join(timeout=10)
        for c in clients:
            c.close()
    wrong = [outcomes[i] for i in range(15)]
    assert wrong.count(200) <= LOCKOUT_FAILURES  # a wrong password was checked: "wrong password"
    assert wrong.count(200) + wrong.count(429) == 15
    assert outcomes[15] in (302, 429)  # the right one: in if it came before the lockout, refused after
    assert checks.count == 16  # every attempt cost one hash (a dummy one when refused)
    with Session(connect(database)) as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.actor == "ann"))]
        failures = session.scalar(select(LoginCounter.failures).where(LoginCounter.key == "user:ann"))
    assert actions.count("login.failed") == wrong.count(200) == failures
    assert actions.count("login.locked") == 16 - wrong.count(200) - (outcomes[15] == 302)
    assert wrong.count(200) >= LOCKOUT_FAILURES - 1  # the lockout engaged: slots went to wrong passwords


def attempt_login(app, name: str, password: str) -> int:  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    form = {"username": name, "password": password, "csrf_token": token(page)}
    return int(client.post("/login", data=form).status_code)


def test_the_lockout_ends_when_its_window_has_passed(world) -> None:
    app, database, _ = world
    for _ in range(LOCKOUT_FAILURES):
        assert attempt_login(app, "ann", "a wrong guess") == 200
    assert attempt_login(app, "ann", PASSWORD) == 429
    with Session(connect(database)) as session:
        session.execute(
            text("update login_counters set window_start = :at"),
            {"at": harness.review.store.now() - LOCKOUT_WINDOW - LOCKOUT_WINDOW / 15},
        )
        session.commit()
    assert attempt_login(app, "ann", "a wrong guess") == 200  # a new window: counted from 1 again
    assert attempt_login(app, "ann", PASSWORD) == 302


def test_a_correct_password_gives_its_attempt_back(world) -> None:
    app, database, _ = world
    for _ in range(LOCKOUT_FAILURES - 1):
        assert attempt_login(app, "ann", "a wrong guess") == 200
    for _ in range(3):  # logging in and out all day does not use up the allowance
        assert attempt_login(app, "ann", PASSWORD) == 302
    assert attempt_login(app, "ann", "a wrong guess") == 200
    assert attempt_login(app, "ann", PASSWORD) == 429
    with Session(connect(database)) as session:
        counters = {key: failures for key, failures in session.execute(select(LoginCounter.key, LoginCounter.failures))}
    assert counters == {"user:ann": LOCKOUT_FAILURES, "address:127.0.0.1": LOCKOUT_FAILURES}


# ------------------------------------------------------------------------------------------- constant time


def test_every_login_attempt_costs_exactly_one_password_hash(world, monkeypatch: pytest.MonkeyPatch) -> None:
    app, database, _ = world
    checks = Checks(monkeypatch)
    with Session(connect(database)) as session:
        set_active(session, "bob", False, actor="test")
        session.commit()
    attempts = [
        ("ann", PASSWORD, 302),  # known, right
        ("ann", "a wrong guess", 200),  # known, wrong
        ("nobody", "a wrong guess", 200),  # unknown name
        ("bob", PASSWORD, 200),  # deactivated
    ]
    for name, password, status in attempts:
        before = checks.count
        assert attempt_login(app, name, password) == status
        assert checks.count - before == 1, name
    for _ in range(LOCKOUT_FAILURES):
        attempt_login(app, "nobody", "a wrong guess")
    before = checks.count
    assert attempt_login(app, "nobody", "a wrong guess") == 429  # locked out
    assert checks.count - before == 1


def test_the_dummy_hash_is_made_the_way_passwords_are(world) -> None:
    _, database, _ = world
    with Session(connect(database)) as session:
        real = session.scalars(select(User.password_hash)).first()
    assert real is not None
    assert harness.review.passwords.dummy_hash().split("$")[0] == real.split("$")[0]  # method and cost parameters


# ------------------------------------------------------------------------------------------- password policy


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "at least 15 characters"),
        ("aaaaaaaa", "at least 15 characters"),
        (" " * 8, "at least 15 characters"),
        (" " * 20, "only spaces"),
        ("carol.danvers.x", "it is the user name"),
        ("CAROL.DANVERS.X", "it is the user name"),
        ("aaaaaaaaaaaaaaaaaaaa", "Repeats like"),
        ("passwordpassword", "too easy to guess"),
        ("carol.danvers.x2024", "too easy to guess"),
        ("reviewreview1234", "too easy to guess"),
        ("qwertyuiopasdfgh", "too easy to guess"),
        ("1234567890123456", "too easy to guess"),
        ("x" * 300, "at most 256 characters"),
    ],
)
def test_weak_passwords_are_refused_with_reasons(tmp_path: Path, password: str, why: str) -> None:
    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        with pytest.raises(InputError) as refused:
            add_user(session, "carol.danvers.x", password, Role.analyst, actor="test")
        assert why in str(refused.value)
        add_user(session, "carol.danvers.x", PASSWORD, Role.analyst, actor="test")
        with pytest.raises(InputError) as again:
            set_password(session, "carol.danvers.x", password, actor="test")
        assert why in str(again.value)


def test_strong_passwords_are_accepted(tmp_path: Path) -> None:
    with Session(connect(f"sqlite:///{tmp_path / 'review.db'}")) as session:
        for name, password in (("dee", "pale ferry 7 tulip mosaic"), ("eve", "x" * 10 + "Qz!4#kL9vB")):
            add_user(session, name, password, Role.analyst, actor="test")
        assert harness.review.passwords.password_problems(PASSWORD, "ann") == []
        assert harness.review.passwords.password_problems("a new passphrase", "ann") == []


def test_the_command_line_refuses_a_weak_password_and_says_how_to_pick_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'review.db'}"
    runner = CliRunner()
    weak = runner.invoke(cli_app, ["review", "add-user", "ann", "--password-stdin", "--db", db], input="password\n")
    assert weak.exit_code == 2 and "at least 15 characters" in weak.output and "passphrase" in weak.output
    common = runner.invoke(
        cli_app, ["review", "add-user", "ann", "--password-stdin", "--db", db], input="passwordpassword\n"
    )
    assert common.exit_code == 2 and "too easy to guess" in common.output
    ok = runner.invoke(cli_app, ["review", "add-user", "ann", "--password-stdin", "--db", db], input=PASSWORD + "\n")
    assert ok.exit_code == 0, ok.output
    same = runner.invoke(cli_app, ["review", "set-password", "ann", "--password-stdin", "--db", db], input="ann\n")
    assert same.exit_code == 2 and "cannot set the password" in same.output
