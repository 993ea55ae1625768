"""Who is using the review app: login with a lockout after repeated failures, logout, and loading the account of
a session (Flask-Login).

`install(app, db)` registers the routes and the session loader on the app that `app.create_app` builds; `db()`
gives the request's database session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.review.store import AuditEvent, User, audit, now

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
"""After LOCKOUT_FAILURES failed logins for one user name within LOCKOUT_WINDOW, further attempts are refused."""
ADDRESS_LOCKOUT_FAILURES = 30
"""... and after this many from one network address, whatever the names (password spraying). Higher than
LOCKOUT_FAILURES: a whole team may share an address behind a proxy."""


def install(app: Flask, db: Callable[[], Session]) -> None:
    """Register /login, /logout and the session loader on `app`."""
    logins = LoginManager(app)
    logins.login_view = "login"
    logins.login_message = "Log in to review dialogs."

    @logins.user_loader
    def load_user(user_id: str) -> User | None:
        user = db().get(User, int(user_id))
        return user if user is not None and user.active else None

    def lockout(name: str, address: str | None) -> str | None:
        """Why a login attempt is refused unheard (too many recent failures for the name or from the address)."""
        since = now() - LOCKOUT_WINDOW
        failures = db().execute(
            select(AuditEvent.actor, AuditEvent.detail).where(
                AuditEvent.action == "login.failed", AuditEvent.at >= since
            )
        )
        by_name = by_address = 0
        for actor, detail in failures:
            by_name += actor == (name or "?")
            by_address += address is not None and (detail or {}).get("remote") == address
        minutes = int(LOCKOUT_WINDOW.total_seconds() // 60)
        if by_name >= LOCKOUT_FAILURES:
            return f"Too many failed logins for {name}: try again in {minutes} minutes."
        if by_address >= ADDRESS_LOCKOUT_FAILURES:
            return f"Too many failed logins from your network address: try again in {minutes} minutes."
        return None

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = request.form.get("username", "").strip()[:64]
            if refused := lockout(name, request.remote_addr):
                audit(db(), name or "?", "login.locked", f"user {name}", remote=request.remote_addr)
                db().commit()
                flash(refused, "error")
                return render_template("login.html"), 429
            user = db().scalar(select(User).where(User.username == name))
            if user is not None and user.active and user.check_password(request.form.get("password", "")):
                login_user(user)
                audit(db(), user.username, "login", f"user {user.username}")
                db().commit()
                target = request.args.get("next", "")
                return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("queue"))
            audit(db(), name or "?", "login.failed", f"user {name}", remote=request.remote_addr)
            db().commit()
            flash("Unknown user name or wrong password.", "error")
        return render_template("login.html")

    @app.post("/logout")
    @login_required
    def logout() -> Any:
        logout_user()
        return redirect(url_for("login"))
