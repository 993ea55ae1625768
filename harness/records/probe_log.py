"""The probe log: every synthetic probe conversation's result, appended to a database and never changed.

A probe is one conversation of the probe set (an eval-set file) sent to a bot in a fresh conversation; its result
is what `uptime.v1` (harness.scoring.uptime) and the Prometheus metrics (harness.sinks.probe_metrics) read.
`ProbeResult` is one result; `ProbeLog` is the append-only store (SQLite or PostgreSQL) that keeps them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.schema import CreateIndex, CreateTable

from harness.errors import InputError, ProbeLogError

FAILED_CHECKS = ("unreachable", "refused", "status", "outcome", "queue", "reply", "latency")
"""What a failed probe can have failed on, in the order a probe is judged (the first failing one is recorded):
`unreachable` (no connection after the bot's retries), `refused` (the bot refused the harness: token, URL),
`status` (a turn errored, timed out or came back empty), `outcome` (handed off when it should self-serve, or the
reverse), `queue` (handed off to another queue), `reply` (a reply check of the eval set failed), `latency` (a turn
slower than the probe's latency budget)."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe conversation's result, after its retry: what counted.

    Times are timezone-aware UTC datetimes. The result is the bot's state as this probe saw it from `started_at`
    until the next result of the same probe (target, probe), and at most until `holds_until`: after that, with no
    newer result, the state is unknown (probes stopped arriving).
    """

    target: str
    """The monitored bot's name (the probe configuration's `target`); one log can hold several bots."""
    probe: str
    """The probe's id (its conversation id in the probe set)."""
    started_at: datetime
    """When the first attempt sent its first turn: the observation's time."""
    finished_at: datetime
    """When the counted attempt ended."""
    ok: bool
    """True when the counted attempt passed every check."""
    attempts: int
    """1, or 2 when the first attempt failed and the probe was retried (the second attempt counts)."""
    latency_ms: float | None
    """The counted attempt's slowest turn, in milliseconds (None when no turn was answered)."""
    holds_until: datetime
    """The latest time this result stands for when no newer result of the probe arrives (started_at plus the
    configured `stale_after`)."""
    failed_check: str | None = None
    """The first check the counted attempt failed (one of FAILED_CHECKS); None when ok."""
    detail: str | None = None
    """Why it failed, for people (turn index, expected and seen); None when ok."""
    first_failure: str | None = None
    """When retried: what the first attempt failed on (`<check>: <detail>`), even if the retry passed."""
    model: str | None = None
    """The bot model that answered, when the bot reports it."""
    prober: str = ""
    """Which probe service wrote it (`<host>:<pid>`), to tell two probers of one target apart."""
    id: int | None = None
    """The log's row id (None before the result is appended)."""


TABLE_NAME = "probe_results"
"""The probe log's one table; a row per ProbeResult, never updated or deleted."""

_metadata = MetaData()


class _UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC with microseconds: `timestamptz` on PostgreSQL, SQLAlchemy's fixed-width
    text (`YYYY-MM-DD HH:MM:SS.ffffff`, naive UTC, so text order is time order) on SQLite; read back as aware UTC on
    both. Naive datetimes are refused (ValueError), as their zone is unknown."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


probe_results = Table(
    TABLE_NAME,
    _metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("target", String, nullable=False),
    Column("probe", String, nullable=False),
    Column("started_at", _UtcDateTime, nullable=False),
    Column("finished_at", _UtcDateTime, nullable=False),
    Column("holds_until", _UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("failed_check", String, nullable=True),
    Column("detail", Text, nullable=True),
    Column("first_failure", Text, nullable=True),
    Column("model", String, nullable=True),
    Column("prober", String, nullable=False),
    # read(): a target's results by time (upper bound on started_at, lower bound on holds_until); latest(): per probe.
    Index("ix_probe_results_target_started_at", "target", "started_at"),
    Index("ix_probe_results_target_holds_until", "target", "holds_until"),
    Index("ix_probe_results_target_probe_started_at", "target", "probe", "started_at"),
)
"""The table's SQLAlchemy definition (columns are ProbeResult's fields)."""

_REFUSED = f"{TABLE_NAME} is append-only"
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {TABLE_NAME}_no_{op.lower()} BEFORE {op} ON {TABLE_NAME} "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: {op} refused'); END"
    for op in ("UPDATE", "DELETE")
]
_POSTGRES_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {TABLE_NAME}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION USING MESSAGE = '{_REFUSED}: ' || TG_OP || ' refused', "
    "ERRCODE = 'insufficient_privilege'; END $$"
)
_POSTGRES_TRIGGERS = {
    f"{TABLE_NAME}_no_change": "BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW",
    f"{TABLE_NAME}_no_truncate": "BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
}
_POSTGRES_LOCK = 0x70726F6265  # "probe": serialises two probers creating the table in one new database
_FIX_URL = (
    "give a writable SQLite file (sqlite:///path/to/probes.sqlite3) or a reachable PostgreSQL database "
    "(postgresql://user:password@host:5432/db) as the probe configuration's `store`"
)
_FIX_FAULT = "check that the database is reachable and writable (disk space, server up, permissions)"


def _postgres_driver(url: str) -> str:
    """`postgres://` and `postgresql://` (no driver named) use psycopg 3, the harness's PostgreSQL driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def shown_url(url: str) -> str:
    """`url` for messages, its password replaced by `***` (also when SQLAlchemy cannot parse it)."""
    try:
        return make_url(url.strip()).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - ArgumentError or ValueError: hide the password by hand
        return _hide_passwords(url.strip())


def _hide_passwords(message: str) -> str:
    """Every `//user:password@` in `message` as `//user:***@`."""
    return re.sub(r"(//[^/@:\s]*:)[^/@\s]*@", r"\1***@", message)


def _cause(exc: BaseException) -> str:
    """The driver's own error, one line, passwords hidden: `OperationalError: unable to open database file`."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return _hide_passwords(f"{type(inner).__name__}: {lines[0] if lines else ''}")[:300]


class ProbeLog:
    """The probe log: ProbeResults appended to one table (`probe_results`) of a SQLite file or a PostgreSQL
    database, named by an SQLAlchemy URL.

    `sqlite:///path` (relative to the working directory: callers resolve project paths first; the parent folder is
    created) or `postgresql://...` / `postgresql+psycopg://...` (psycopg 3). The table, its indexes and its
    append-only triggers are created when missing: a trigger refuses every UPDATE and DELETE (and, on PostgreSQL,
    TRUNCATE) in the database itself, so a result once written stays as written whoever connects. (Dropping the
    table is still possible for its owner: give probers a PostgreSQL role with INSERT and SELECT only.)

    SQLite runs in WAL mode with a 30 s busy timeout, so several processes can append to one file. Times read back
    are aware UTC datetimes with microseconds on both databases.

    Raises ProbeLogError, naming the URL (password hidden) and how to fix it, when the database cannot be opened
    (bad URL, unreachable server, a file that is not SQLite, a folder that cannot be written, a `probe_results`
    table of another shape) and when a later read or append fails: retrying is the caller's decision.
    """

    def __init__(self, url: str) -> None:
        self.url = shown_url(url)
        """The URL, password hidden (for messages and logs)."""
        try:
            parsed = make_url(_postgres_driver(url.strip()))
        except Exception as exc:  # noqa: BLE001 - ArgumentError or ValueError
            raise self._error("open", f"not a database URL ({_cause(exc)})", _FIX_URL) from None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise self._error("open", f"cannot create its folder ({_cause(exc)})", _FIX_URL) from None
            self._engine = create_engine(parsed, connect_args={"timeout": 30})
            event.listen(self._engine, "connect", _sqlite_pragmas)
        elif backend == "postgresql":
            self._engine = create_engine(
                parsed,
                pool_pre_ping=True,  # a restarted server's dead connections are replaced, not reported
                connect_args={"connect_timeout": 10, "application_name": "harness-probe"},
            )
        else:
            raise self._error("open", f"unsupported database kind '{backend}'", _FIX_URL)
        try:
            self._create()
        except ProbeLogError:
            self._engine.dispose()
            raise
        except Exception as exc:  # noqa: BLE001 - any driver error: refused connection, not a database, read-only
            self._engine.dispose()
            hint = (
                "the file is not an SQLite database: give another path (the file is left as it is)"
                if "file is not a database" in str(exc)
                else _FIX_URL
            )
            raise self._error("open", _cause(exc), hint) from None

    def _error(self, doing: str, what: str, fix: str) -> ProbeLogError:
        return ProbeLogError(f"cannot {doing} the probe log {self.url}: {what}\n  {fix}")

    def _create(self) -> None:
        """The table, indexes and triggers, each created if missing (two probers may open a new log at once)."""
        postgres = self._engine.dialect.name == "postgresql"
        with self._engine.begin() as connection:
            if postgres:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK})
            connection.execute(CreateTable(probe_results, if_not_exists=True))
            columns = {column["name"] for column in inspect(connection).get_columns(TABLE_NAME)}
            missing = [column.name for column in probe_results.columns if column.name not in columns]
            if missing:
                raise self._error(
                    "open",
                    f"its table `{TABLE_NAME}` lacks columns {', '.join(missing)} (another program's table?)",
                    "give another database for the probe log",
                )
            for index in sorted(probe_results.indexes, key=lambda i: str(i.name)):
                connection.execute(CreateIndex(index, if_not_exists=True))
            if postgres:
                connection.exec_driver_sql(_POSTGRES_FUNCTION)
                present = set(
                    connection.execute(
                        text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:table)"),
                        {"table": TABLE_NAME},
                    ).scalars()
                )
                for name, when in _POSTGRES_TRIGGERS.items():
                    if name not in present:
                        connection.exec_driver_sql(
                            f"CREATE TRIGGER {name} {when.format(table=TABLE_NAME)} "
                            f"EXECUTE FUNCTION {TABLE_NAME}_append_only()"
                        )
            else:
                for statement in _SQLITE_TRIGGERS:
                    connection.exec_driver_sql(statement)

    def append(self, result: ProbeResult) -> ProbeResult:
        """Write `result` (its `id` is ignored) and return it with the row id the log gave it.

        Raises InputError for a result the log cannot hold faithfully (a naive datetime, an unknown failed_check),
        ProbeLogError when the database refuses the write or cannot be reached."""
        problems = [
            f"{name}: naive datetime {value.isoformat()}; give an aware UTC datetime"
            for name in ("started_at", "finished_at", "holds_until")
            if (value := getattr(result, name)).utcoffset() is None
        ]
        if result.failed_check is not None and result.failed_check not in FAILED_CHECKS:
            problems.append(f"failed_check: '{result.failed_check}' is not one of {', '.join(FAILED_CHECKS)}")
        if problems:
            raise InputError(f"probe result {result.target}/{result.probe} cannot be logged", problems)
        row = {field.name: getattr(result, field.name) for field in fields(result) if field.name != "id"}
        try:
            with self._engine.begin() as connection:
                key = connection.execute(insert(probe_results).values(**row)).inserted_primary_key
        except Exception as exc:  # noqa: BLE001 - any driver error: locked, disk full, server gone
            raise self._error("append to", _cause(exc), _FIX_FAULT) from None
        assert key is not None
        return replace(result, id=int(key[0]))

    def read(self, target: str, start: datetime | None = None, end: datetime | None = None) -> list[ProbeResult]:
        """Every result of `target` that can hold at some time in [start, end): started before `end` and holding
        until after `start` (so a result from before the window that still stands at its start is included, unless a
        newer result of its probe started by `start`, which supersedes it even once expired), ordered
        by (started_at, id). None leaves that side unbounded. Raises InputError for a naive bound, ProbeLogError
        when the database cannot be read."""
        naive = [
            f"{name}: naive datetime {value.isoformat()}; give an aware datetime"
            for name, value in (("start", start), ("end", end))
            if value is not None and value.utcoffset() is None
        ]
        if naive:
            raise InputError("cannot read the probe log", naive)
        c = probe_results.c
        query = select(probe_results).where(c.target == target)
        if end is not None:
            query = query.where(c.started_at < end)
        if start is not None:
            # A result superseded by a newer one of its probe that started by `start` no longer stands there, even
            # when that newer one has expired since (a shorter stale_after, or another prober): leave it out.
            later = probe_results.alias("later")
            superseded = (
                select(later.c.id)
                .where(later.c.target == c.target, later.c.probe == c.probe)
                .where(later.c.started_at > c.started_at, later.c.started_at <= start)
                .exists()
            )
            query = query.where(c.holds_until > start, ~superseded)
        return self._results(query.order_by(c.started_at, c.id), "read")

    def targets(self) -> list[str]:
        """The targets (monitored bots) the log holds results of, sorted. Raises ProbeLogError."""
        query = select(probe_results.c.target).distinct().order_by(probe_results.c.target)
        try:
            with self._engine.connect() as connection:
                return list(connection.execute(query).scalars())
        except Exception as exc:  # noqa: BLE001 - any driver error
            raise self._error("read", _cause(exc), _FIX_FAULT) from None

    def latest(self, target: str) -> dict[str, ProbeResult]:
        """Probe id -> its newest result (latest started_at, then highest id) for `target`; {} when it has none.
        Raises ProbeLogError."""
        c = probe_results.c
        ranked = (
            select(
                probe_results,
                func.row_number().over(partition_by=c.probe, order_by=(c.started_at.desc(), c.id.desc())).label("n"),
            )
            .where(c.target == target)
            .subquery()
        )
        query = select(*(ranked.c[column.name] for column in probe_results.columns)).where(ranked.c.n == 1)
        return {result.probe: result for result in self._results(query, "read")}

    def _results(self, query: Select[Any], doing: str) -> list[ProbeResult]:
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except Exception as exc:  # noqa: BLE001 - any driver error
            raise self._error(doing, _cause(exc), _FIX_FAULT) from None
        return [ProbeResult(**dict(row)) for row in rows]

    def close(self) -> None:
        """Close the log's connections (appending again afterwards reconnects)."""
        self._engine.dispose()

    def __enter__(self) -> ProbeLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer; several processes append to one file), waits of up to 30 s for another
    process's write lock instead of failing, and NORMAL sync (safe in WAL: a power cut loses at most the last
    commits, never the file)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()
