"""Opening the review database: SQLite by default (a file under experiments/), or PostgreSQL by URL, created or
upgraded to the newest schema with Alembic (`migrations/`), its reviews kept.

A database made before migrations existed (the first release's tables, no version table) is stamped at
BASELINE and upgraded; one made by a newer harness is refused untouched; problems are InputErrors that say what
and how to fix it, without the password.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine

from harness.errors import InputError
from harness.project.project import load_project
from harness.review.store import Base

DATABASE_ENV = "HARNESS_REVIEW_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
"""The revision of databases made before migrations existed (they have the tables but no version table)."""


def database_url(url: str | None = None) -> str:
    """The URL given, else $HARNESS_REVIEW_DB, else the SQLite file `review.db` beside the project's review config
    (experiments/review.db in the harness repository); `postgresql://` uses psycopg 3."""
    chosen = url or os.environ.get(DATABASE_ENV) or default_database()
    for prefix in ("postgresql://", "postgres://"):
        if chosen.startswith(prefix):
            return "postgresql+psycopg://" + chosen[len(prefix) :]
    return chosen


def default_database() -> str:
    """The SQLite URL of `review.db` beside the current project's review config."""
    return f"sqlite:///{load_project().review.parent / 'review.db'}"


def connect(url: str | None = None) -> Engine:
    """An engine on the review database, created or upgraded to the newest schema; InputError if it cannot be
    reached, or was made by a newer version of the harness."""
    resolved = database_url(url)
    if resolved.startswith("sqlite:///"):
        Path(resolved.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(resolved)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_foreign_keys)
        with engine.begin() as connection:
            newer = migrate(connection)
        missing = [] if newer else _missing_columns(engine)
    except InputError as error:
        raise InputError(error.summary, [f"{_redact(resolved)}: {error.problems[0]}", *error.problems[1:]]) from None
    except Exception as exc:  # the driver's own errors vary; all mean the same to the user
        raise InputError(
            "cannot open the review database",
            [
                f"{_redact(resolved)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                f"give a reachable database with --db or ${DATABASE_ENV} (sqlite:///path or postgresql://...)",
            ],
        ) from None
    if newer:
        raise InputError(
            "the review database was made by a newer version of the harness",
            [f"{_redact(resolved)}: schema revision {newer}, unknown here; upgrade the harness to open it"],
        )
    if missing:
        raise InputError(
            "the review database does not have the schema its version says",
            [
                f"{_redact(resolved)}: missing columns {', '.join(missing)}",
                "keep it for its reviews and give a new database with --db",
            ],
        )
    return engine


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for the review migrations, running on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(connection: Connection, revision: str = "head") -> str | None:
    """Bring the database to `revision`: every migration from the start for a new database; for one made
    before migrations existed (tables, no version table), a stamp at BASELINE first, if it has the baseline's
    columns (InputError naming the missing ones if not). Returns the database's revision instead, changing
    nothing, when this harness does not know it (a newer harness made it)."""
    config = alembic_config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        return current
    tables = set(inspect(connection).get_table_names())
    if current is None and tables & set(_baseline_schema()):  # other applications' tables do not count
        inspector = inspect(connection)
        present = {t: {c["name"] for c in inspector.get_columns(t)} for t in _baseline_schema() if t in tables}
        missing = [
            f"{table}.{column}"
            for table, columns in _baseline_schema().items()
            for column in sorted(columns - present.get(table, set()))
        ]
        if missing:
            raise InputError(
                "the review database was made by an older version of the harness",
                [
                    f"missing columns {', '.join(missing)}",
                    "keep it for its reviews and give a new database with --db",
                ],
            )
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)
    return None


@lru_cache(maxsize=1)
def _baseline_schema() -> dict[str, set[str]]:
    """Table -> columns at BASELINE, read off a throw-away in-memory database migrated to it."""
    with create_engine("sqlite://").begin() as connection:
        command.upgrade(alembic_config(connection), BASELINE)
        inspector = inspect(connection)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }


def _missing_columns(engine: Engine) -> list[str]:
    """Columns of the models that the database's tables lack: a safety net for databases changed by hand."""
    inspector = inspect(engine)
    missing = []
    for table in Base.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return missing


def _sqlite_foreign_keys(connection, _record) -> None:  # type: ignore[no-untyped-def]
    connection.execute("PRAGMA foreign_keys=ON")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
