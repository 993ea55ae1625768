"""The review database: analysts, the dialogs selected for review, assignments, reviews and the audit trail.

SQLAlchemy models; `database.py` opens the database (SQLite or PostgreSQL) and migrates its schema. Dialogs are
stored already masked (harness/masking/): the database never holds a card number, IBAN, account number,
sort code, phone number, e-mail or street address.
Every change made through the app or the CLI writes an AuditEvent.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from werkzeug.security import generate_password_hash

from harness.errors import InputError
from harness.project.problems import unknown
from harness.review.passwords import password_matches, password_problems


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Role(StrEnum):
    analyst = "analyst"
    lead = "lead"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    """False for a deactivated account: it cannot log in, and its open sessions end."""
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    """Part of every session cookie of the account; raising it (logout, password change) ends them all."""
    created_at: Mapped[datetime] = mapped_column(default=now)

    # Flask-Login's user protocol.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        """The session identity: `"<id>:<session version>"`; raising the version ends every session of the
        account (auth.py's session loader checks both)."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_lead(self) -> bool:
        return self.role == Role.lead.value

    def check_password(self, password: str) -> bool:
        return password_matches(self.password_hash, password)


class LoginCounter(Base):
    """Failed logins in the current lockout window for one key (`user:<name>` or `address:<address>`)."""

    __tablename__ = "login_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int]
    window_start: Mapped[datetime]


class Run(Base):
    """A run whose dialogs were loaded for review: a replay run folder, or a production window materialised as one
    (`production.materialise`; `selection["production"]` then holds its stamp: store, window, days, N)."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(Text)
    conversations: Mapped[int]
    selection: Mapped[dict[str, Any]]
    """The flag rules and sample used, so a queue can be explained later."""
    loaded_at: Mapped[datetime] = mapped_column(default=now)
    dialogs: Mapped[list[Dialog]] = relationship(back_populates="run")


class Dialog(Base):
    __tablename__ = "dialogs"
    __table_args__ = (UniqueConstraint("run_pk", "conversation_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    conversation_id: Mapped[str] = mapped_column(String(128))
    eval_set: Mapped[str | None] = mapped_column(String(128))
    intent: Mapped[str | None] = mapped_column(String(128))
    """The conversation's topic: its first labelled intent, else the first intent the bot recognised."""
    expected_label: Mapped[str | None] = mapped_column(String(128))
    actual_outcome: Mapped[str] = mapped_column(String(128))
    expected_queue: Mapped[str | None] = mapped_column(String(64))
    actual_queue: Mapped[str | None] = mapped_column(String(64))
    auto_resolved: Mapped[bool | None]
    """The automatic resolution verdict (from the label), for comparison with the analysts'."""
    critical: Mapped[str | None] = mapped_column(Text)
    resolvable: Mapped[bool | None]
    priority: Mapped[int]
    sampled: Mapped[bool]
    flags: Mapped[list[Any]]
    """[{rule, reason}] from flagging.py."""
    turns: Mapped[list[Any]]
    """Per turn, masked: text, bot messages, intent, confidence, ranking, actions, slots, handoff, expectation."""
    flag_rows: Mapped[list[DialogFlag]] = relationship(cascade="all, delete-orphan")
    """The rules that fired, one row each, for filtering in SQL (the reasons are in `flags`)."""
    run: Mapped[Run] = relationship(back_populates="dialogs")
    reviews: Mapped[list[Review]] = relationship(back_populates="dialog", order_by="Review.id")
    rereviews: Mapped[list[Rereview]] = relationship(back_populates="dialog", order_by="Rereview.id")
    assignments: Mapped[list[Assignment]] = relationship(back_populates="dialog")

    @property
    def flag_rules(self) -> list[str]:
        return sorted({f["rule"] for f in self.flags})


class DialogFlag(Base):
    """One rule that flagged a dialog."""

    __tablename__ = "dialog_flags"
    __table_args__ = (UniqueConstraint("dialog_id", "rule"), Index("ix_dialog_flags_rule", "rule"))
    id: Mapped[int] = mapped_column(primary_key=True)
    dialog_id: Mapped[int] = mapped_column(ForeignKey("dialogs.id"))
    rule: Mapped[str] = mapped_column(String(64))


class TaskKind(StrEnum):
    review = "review"
    """Review the dialog (for calibration, several analysts get the same dialog)."""
    rereview = "rereview"
    """Review it again, blind to one's first review: the analyst's consistency with themselves."""


class Assignment(Base):
    """A dialog a lead asked an analyst to review, or to review again."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("dialog_id", "analyst_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dialog_id: Mapped[int] = mapped_column(ForeignKey("dialogs.id"))
    analyst_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16), default=TaskKind.review.value)
    created_at: Mapped[datetime] = mapped_column(default=now)
    dialog: Mapped[Dialog] = relationship(back_populates="assignments")
    analyst: Mapped[User] = relationship(foreign_keys=[analyst_id])


class ScorecardFields:
    """What an analyst records about a dialog: the scorecard."""

    ratings: Mapped[dict[str, Any]]
    critical_errors: Mapped[list[Any]]
    corrected_intents: Mapped[dict[str, Any]]
    """Turn index (as text) -> the intent the customer meant, for turns the bot misunderstood."""
    correct_outcome: Mapped[str] = mapped_column(String(128))
    """`self_served` or `escalated:<queue>`: where the conversation should have ended."""
    note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    """Raised by every save; a save that names an older version is refused (optimistic locking)."""
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Review(ScorecardFields, Base):
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("dialog_id", "analyst_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dialog_id: Mapped[int] = mapped_column(ForeignKey("dialogs.id"))
    analyst_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reference: Mapped[bool] = mapped_column(default=False)
    dialog: Mapped[Dialog] = relationship(back_populates="reviews")
    analyst: Mapped[User] = relationship()


class Rereview(ScorecardFields, Base):
    """An analyst's second, blind review of a dialog they reviewed before. It never decides a verdict; it only
    measures the analyst's consistency."""

    __tablename__ = "rereviews"
    __table_args__ = (UniqueConstraint("dialog_id", "analyst_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dialog_id: Mapped[int] = mapped_column(ForeignKey("dialogs.id"))
    analyst_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    dialog: Mapped[Dialog] = relationship(back_populates="rereviews")
    analyst: Mapped[User] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_action_at", "action", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=now)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]]


class Export(Base):
    """What a review contributed to intents/ or eval_sets/, so nothing is exported twice."""

    __tablename__ = "exports"
    __table_args__ = (UniqueConstraint("review_id", "kind", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def audit(session: Session, actor: str, action: str, target: str, **detail: Any) -> None:
    session.add(AuditEvent(actor=actor, action=action, target=target, detail=detail))


MAX_USERNAME = 64
"""Longest user name: the `users.username` column, and what the login form reads."""
_USERNAME = re.compile(r"[A-Za-z0-9._-]+")


def _name_key(username: str) -> str:
    """What two user names must not share: their NFKC form, case-folded (`ANN` and `ann` are one name)."""
    return unicodedata.normalize("NFKC", username).casefold()


def username_problems(session: Session, username: str) -> list[str]:
    """What is wrong with `username` for a new account (empty if nothing): other than ASCII letters, digits, '.',
    '_' and '-' (no look-alike letters from other scripts), longer than MAX_USERNAME, or the same as an existing
    name but for case."""
    if not _USERNAME.fullmatch(username):
        return [f"user name {username!r}: use only ASCII letters, digits, '.', '_' or '-'"]
    if len(username) > MAX_USERNAME:
        return [f"user name: at most {MAX_USERNAME} characters (this one has {len(username)})"]
    for existing in session.scalars(select(User.username)):
        if existing == username:
            return [f"user name {username!r} is taken"]
        if _name_key(existing) == _name_key(username):
            return [f"user name {username!r} is too like {existing!r}, which exists: choose another"]
    return []


def add_user(session: Session, username: str, password: str, role: Role, *, actor: str) -> User:
    """A new account with a hashed password; InputError for a taken, malformed or look-alike name (see
    `username_problems`) or a weak password (see `password_problems`)."""
    problems = username_problems(session, username)
    problems += password_problems(password, username)
    if problems:
        raise InputError("cannot add the user", problems)
    user = User(username=username, password_hash=generate_password_hash(password), role=role.value)
    session.add(user)
    audit(session, actor, "user.add", f"user {username}", role=role.value)
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        known = session.scalars(select(User.username).order_by(User.username)).all()
        raise InputError("no such user", [unknown("user", username, known)])
    return user


def set_password(session: Session, username: str, password: str, *, actor: str) -> None:
    """A new password for an account, which ends every open session of it; InputError for an unknown user or a
    weak password (see `password_problems`)."""
    user = find_user(session, username)
    if problems := password_problems(password, username):
        raise InputError("cannot set the password", problems)
    user.password_hash = generate_password_hash(password)
    user.session_version = User.session_version + 1  # type: ignore[assignment]
    audit(session, actor, "user.password", f"user {username}")


def set_active(session: Session, username: str, active: bool, *, actor: str) -> None:
    """Deactivate (its open sessions end for good: reactivating does not revive them) or reactivate an account."""
    user = find_user(session, username)
    user.active = active
    if not active:
        user.session_version = User.session_version + 1  # type: ignore[assignment]
    audit(session, actor, "user.activate" if active else "user.deactivate", f"user {username}")


def setting(session: Session, key: str, default: str) -> str:
    """A stored setting; stores `default` the first time."""
    row = session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=default)
        session.add(row)
        session.commit()
    return row.value
