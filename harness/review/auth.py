"""Who is using the review app: login with a lockout that holds under concurrent attempts, logout that ends every
session of the account, the session loader (Flask-Login), safe redirects after login, and a login that keeps
what the analyst had typed when their session ended.

`install(app, db, resume)` registers the routes and the session loader on the app that `app.create_app` builds;
`db()` gives the request's database session. `render_login` is the login page for other views (a POST that
arrived without a valid session shows it, carrying the submitted fields); after the login, `resume` receives
them back.

Sessions. The session identity is `"<user id>:<session version>"` (Flask-Login's alternative-token pattern): logout,
a password change and deactivation raise `users.session_version`, so every cookie issued before (the session
cookie and a remember-me cookie alike) stops loading the account. The session cookie is `Secure` whenever the
request came over HTTPS (behind a TLS-terminating proxy, `harness review serve --behind-proxy` has waitress apply
the proxy's `X-Forwarded-Proto` and `X-Forwarded-For`, so `request.is_secure` and `request.remote_addr` are the
client's).

Lockout. Failed logins are counted in `login_counters`, per user name and per network address, by one atomic
UPDATE that reserves an attempt before the password is checked: however many attempts arrive at once, no more than
LOCKOUT_FAILURES wrong passwords are ever checked for one name within LOCKOUT_WINDOW (ADDRESS_LOCKOUT_FAILURES
for one address). Every attempt costs one password hash, whether the name exists or not, so the response time
does not tell which names exist. A name that is not an account (often a password typed into the wrong field) is
never stored: the counters and the audit trail name it `unknown user #<8 hex>`, a keyed hash (HMAC-SHA256 with the
app's secret key), so repeated attempts under one typed name still count together.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, make_response, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from harness.review import passwords
from harness.review.store import LoginCounter, User, audit, now

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
"""After LOCKOUT_FAILURES failed logins for one user name within LOCKOUT_WINDOW, further attempts are refused."""
ADDRESS_LOCKOUT_FAILURES = 30
"""... and after this many from one network address, whatever the names (password spraying). Higher than
LOCKOUT_FAILURES: a whole team may share an address behind a proxy."""

CARRY_PREFIX = "carry:"
"""Prefix of the login form's hidden fields that carry another form's input through the login."""
CARRY_LIMIT = 64 * 1024
"""Most bytes (UTF-8, names and values) carried through a login; beyond it nothing is carried, and the page says so
(a scorecard with a 4,000-character note is far below it)."""

Resume = Callable[[str, "MultiDict[str, str]"], ResponseReturnValue]
"""`resume(next_path, carried)`: the response after a successful login whose form carried another form's fields;
`next_path` is a safe same-site path (the queue when none was given), `carried` the fields without their prefix."""

WRONG = "Unknown user name or wrong password."
_NOT_AFTER_LOGIN = ("/login", "/logout")


# ---------------------------------------------------------------------------------------------------- redirects


def safe_next(target: str | None) -> str | None:
    """`target` if it is a same-site relative path (`/dialogs/3?x=1`), else None.

    Refused: anything with a scheme or host; a leading `//` or `/\\`; backslashes, control characters and
    whitespace anywhere (browsers drop tabs and newlines from URLs, and treat `\\` as `/`, so `/\\t/evil` and
    `/\\evil` lead off-site); paths of the login and logout pages themselves (a loop).
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return None
    if "\\" in target or any(unicodedata.category(c)[0] in "CZ" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    if parts.path.rstrip("/") in _NOT_AFTER_LOGIN:
        return None
    return target


# ---------------------------------------------------------------------------------------------------- carrying input


def _carry_size(fields: MultiDict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in fields.items(multi=True))


def _carryable(fields: MultiDict[str, str] | None) -> tuple[MultiDict[str, str], str | None]:
    """The fields worth carrying (without the CSRF token), and why none are carried when they are too large."""
    kept: MultiDict[str, str] = MultiDict(
        [(k, v) for k, v in (fields or MultiDict()).items(multi=True) if k != "csrf_token"]
    )
    size = _carry_size(kept)
    if size > CARRY_LIMIT:
        why = (
            f"Your input ({size // 1024} KB) is too large to keep through the login (at most {CARRY_LIMIT // 1024} "
            "KB) and was not saved: log in, then enter it again."
        )
        return MultiDict(), why
    return kept, None


def _carried_back(form: MultiDict[str, str]) -> MultiDict[str, str]:
    """The carried fields of a submitted login form, without their prefix, in their order, every value kept."""
    return MultiDict([(k[len(CARRY_PREFIX) :], v) for k, v in form.items(multi=True) if k.startswith(CARRY_PREFIX)])


def render_login(
    next_path: str, carried: MultiDict[str, str] | None = None, message: str | None = None, status: int = 200
) -> Response:
    """The login page, as a response with `status`; call it inside a request.

    next_path: where to go after the login (anything but a same-site path is dropped: the queue then).
    carried: another form's submitted fields (e.g. `request.form` of a POST that arrived without a valid session);
        they travel as hidden `carry:<name>` fields, every value of multi-valued fields kept, the CSRF token left
        out. Beyond CARRY_LIMIT bytes none are carried and the page says so. After a successful login they go to
        the `resume` given to `install`.
    message: shown above the form (why the analyst must log in).
    """
    kept, too_large = _carryable(carried)
    messages = [m for m in (message, too_large) if m]
    page = render_template(
        "login.html",
        next_path=safe_next(next_path) or "",
        carried=[(CARRY_PREFIX + k, v) for k, v in kept.items(multi=True)],
        messages=messages,
    )
    return make_response(page, status)


# ---------------------------------------------------------------------------------------------------- lockout


def _ensure_counter(session: Session, key: str, at: datetime) -> None:
    """A counter row for `key` (a no-op when it exists, also when another request creates it at the same time)."""
    dialect = session.get_bind().dialect.name
    values = {"key": key, "failures": 0, "window_start": at}
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        session.execute(postgresql.insert(LoginCounter).values(**values).on_conflict_do_nothing(index_elements=["key"]))
        return
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        session.execute(sqlite.insert(LoginCounter).values(**values).on_conflict_do_nothing(index_elements=["key"]))
        return
    try:  # other databases: insert, and accept that someone else did
        with session.begin_nested():
            session.add(LoginCounter(**values))
    except IntegrityError:
        pass


def reserve_attempt(session: Session, key: str, limit: int, at: datetime) -> bool:
    """Count one more attempt for `key` unless `limit` attempts are counted in the current window; True if counted.

    One UPDATE both restarts an expired window and refuses a full one, so concurrent attempts cannot all see room
    for themselves (PostgreSQL re-checks the WHERE on the row it waited for; SQLite runs writers one at a time).
    Commits.
    """
    _ensure_counter(session, key, at)
    expired = LoginCounter.window_start < at - LOCKOUT_WINDOW
    counted = session.execute(
        update(LoginCounter)
        .where(LoginCounter.key == key, expired | (LoginCounter.failures < limit))
        .values(
            failures=case((expired, 1), else_=LoginCounter.failures + 1),
            window_start=case((expired, at), else_=LoginCounter.window_start),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(counted.rowcount == 1)  # type: ignore[attr-defined]


def release_attempt(session: Session, key: str) -> None:
    """Give back an attempt counted by `reserve_attempt` (a correct password is not a failure). Does not commit."""
    session.execute(
        update(LoginCounter)
        .where(LoginCounter.key == key, LoginCounter.failures > 0)
        .values(failures=LoginCounter.failures - 1)
        .execution_options(synchronize_session=False)
    )


def unknown_name(name: str, secret: str | bytes) -> str:
    """How the counters and the audit trail name a login attempt under `name` when it is not an account:
    `unknown user #<8 hex>`, the start of HMAC-SHA256(secret, name). The same typed name gives the same label (its
    attempts count together), and the label does not give the name back (it may be a password typed into the
    wrong field)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return f"unknown user #{hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:8]}"


def _keys(name: str, address: str | None) -> list[tuple[str, int, str]]:
    minutes = int(LOCKOUT_WINDOW.total_seconds() // 60)
    why = f"Too many failed logins for this user name: try again in {minutes} minutes."
    keys = [(f"user:{name}", LOCKOUT_FAILURES, why)]
    if address:
        why = f"Too many failed logins from your network address: try again in {minutes} minutes."
        keys.append((f"address:{address}", ADDRESS_LOCKOUT_FAILURES, why))
    return keys


def _reserve_all(session: Session, name: str, address: str | None) -> tuple[list[str], str | None]:
    """Reserve an attempt on the name's and the address's counters: (the keys reserved, None), or ([], why not).
    `name`: an account's name, or `unknown_name(...)` of what was typed."""
    at = now()
    reserved: list[str] = []
    for key, limit, why in _keys(name, address):
        if not reserve_attempt(session, key, limit, at):
            for done in reserved:
                release_attempt(session, done)
            session.commit()
            return [], why
        reserved.append(key)
    return reserved, None


# ---------------------------------------------------------------------------------------------------- sessions


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie marked `Secure` whenever the request came over HTTPS (or
    SESSION_COOKIE_SECURE says so), so it is never sent back over plain HTTP."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def _identity_user(session: Session, identity: str) -> User | None:
    """The active account whose current session identity is `identity` (`"<id>:<version>"`), else None."""
    user_id, _, version = identity.partition(":")
    if not (user_id.isdigit() and version.isdigit() and len(user_id) < 10 and len(version) < 10):
        return None  # malformed, or a cookie from before session versions
    user = session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """End every session of an account: raise its session version in one UPDATE (no lost raise when two happen at
    once). Does not commit."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )


# ---------------------------------------------------------------------------------------------------- install


def install(app: Flask, db: Callable[[], Session], resume: Resume | None = None) -> None:
    """Register /login, /logout, the session loader and the HTTPS-aware session cookie on `app`.

    resume: called after a successful login whose form carried another form's fields (see `render_login`);
        without it, or when nothing was carried, the login redirects to the safe `next` path (else the queue).
    """
    app.session_interface = HttpsAwareSessionInterface()
    logins = LoginManager(app)
    logins.login_view = "login"
    logins.login_message = "Log in to review dialogs."
    passwords.dummy_hash()  # made now, so the first unknown name does not pay for it

    @logins.user_loader
    def load_user(identity: str) -> User | None:
        return _identity_user(db(), identity)

    csrf = app.extensions.get("csrf")

    def csrf_problem() -> str | None:
        """Why the login form's CSRF check failed (checked here, not before the view, so that the carried input
        survives a failure)."""
        if not isinstance(csrf, CSRFProtect):
            return None
        try:
            csrf.protect()
        except CSRFError as error:
            return f"{error.description} Log in again."
        return None

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        next_path = safe_next(request.form.get("next") or request.args.get("next")) or ""
        if request.method != "POST":
            return render_login(next_path)
        carried = _carried_back(request.form)
        if problem := csrf_problem():
            return render_login(next_path, carried, problem, 400)
        name = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")
        address = request.remote_addr
        db().commit()  # the counters run in short transactions of their own
        user = db().scalar(select(User).where(User.username == name)) if name else None
        label = name if user is not None else unknown_name(name, current_app.secret_key or "")
        reserved, refused = _reserve_all(db(), label, address)
        known = user is not None and user.active and not refused
        # exactly one hash check on every path, so the time taken does not tell which names exist
        matches = passwords.password_matches(user.password_hash if known and user else None, password)
        if refused:
            audit(db(), label, "login.locked", f"user {label}", remote=address)
            db().commit()
            return render_login(next_path, carried, refused, 429)
        if not (known and matches and user):
            audit(db(), label, "login.failed", f"user {label}", remote=address)
            db().commit()
            return render_login(next_path, carried, WRONG)
        for key in reserved:
            release_attempt(db(), key)
        db().execute(delete(LoginCounter).where(LoginCounter.window_start < now() - LOCKOUT_WINDOW))
        login_user(user)
        audit(db(), user.username, "login", f"user {user.username}")
        db().commit()
        target = next_path or url_for("queue")
        if carried and resume is not None:
            return resume(target, carried)
        return redirect(target)

    if isinstance(csrf, CSRFProtect):
        csrf.exempt(login)

    @app.post("/logout")
    @login_required
    def logout() -> Any:
        end_sessions(db(), current_user.id)
        audit(db(), current_user.username, "logout", f"user {current_user.username}")
        db().commit()
        logout_user()
        return redirect(url_for("login"))
