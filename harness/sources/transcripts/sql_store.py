"""Rasa's SQL tracker store (`rasa.core.tracker_store.SQLTrackerStore`, also the reference bot's store) read by
SQLAlchemy URL: SQLite (`sqlite:////abs/path/tracker.sqlite3`) or PostgreSQL (`postgresql://user:pw@host/db`).

Rasa keeps one row per event in the table `events` (id integer primary key, sender_id, type_name, timestamp float,
intent_name, action_name, data: the event's `as_dict` as JSON text), appending in the order events happen, so the
row id orders a conversation's events and is the import watermark. The reader streams the rows ordered by
(sender_id, id) through a server-side cursor (`stream_results`, DBAPI `fetchmany`), so memory holds one sender's events
at a time whatever the table's size, and reads only rows up to the highest id present when the import started
(rows written during the import wait for the next one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.errors import InputError
from harness.sources.transcripts.events import MAX_TIMESTAMP, RawEvent, decoded

TABLE = "events"
BATCH = 5000
"""Rows fetched per round trip."""


def engine_url(url: str) -> Any:
    """The SQLAlchemy URL for `url`: `postgres://` accepted as `postgresql://`, and a PostgreSQL URL without a
    driver uses psycopg (3) when psycopg2 is not installed. Raises InputError for a URL SQLAlchemy cannot parse."""
    import sqlalchemy as sa

    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = sa.engine.make_url(text)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError or ValueError
        raise InputError(
            "bad tracker store URL",
            [f"{exc}; give an SQLAlchemy URL, e.g. sqlite:////path/to/tracker.sqlite3 or postgresql://user@host/db"],
        ) from None
    if parsed.drivername == "postgresql":
        try:
            import psycopg2  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


_NONE = object()
"""No sender read yet (a NULL sender_id is None, so None cannot mark the start)."""


def _sender_text(sender: Any) -> str:
    """The sender id as text; "" for a NULL or empty one (its events carry `no_sender`)."""
    return "" if sender is None or sender is _NONE else str(sender)


class SqlTrackerStore:
    """The `events` table behind one SQLAlchemy URL (see the module docstring)."""

    watermarked = True

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = engine_url(url)
        self.name = self.url.render_as_string(hide_password=True)
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database or ""
            from pathlib import Path

            if not database or database == ":memory:" or not Path(database).is_file():
                raise InputError(
                    "no tracker store",
                    [f"{self.name}: no such SQLite file; give the file the bot writes (sqlite:////abs/path/file)"],
                )
        try:
            self.engine = sa.create_engine(self.url)
            with self.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns(TABLE)}
        except sa.exc.NoSuchTableError:
            raise InputError(
                "not a Rasa tracker store", [f"{self.name}: no `{TABLE}` table (Rasa's SQL tracker store writes one)"]
            ) from None
        except Exception as exc:  # noqa: BLE001 - any driver error: refused connection, bad password, no module
            raise InputError(
                "cannot read the tracker store", [f"{self.name}: {type(exc).__name__}: {str(exc).strip()[:300]}"]
            ) from None
        missing = {"id", "sender_id", "type_name", "timestamp", "data"} - columns
        if missing:
            raise InputError(
                "not a Rasa tracker store",
                [f"{self.name}: table `{TABLE}` lacks {', '.join(sorted(missing))} (Rasa's SQLTrackerStore layout)"],
            )
        self._events = sa.table(
            TABLE,
            sa.column("id", sa.Integer),
            sa.column("sender_id", sa.String),
            sa.column("type_name", sa.String),
            sa.column("timestamp", sa.Float),
            sa.column("data", sa.Text),
        )
        with self.engine.connect() as connection:
            top = connection.execute(sa.select(sa.func.max(self._events.c.id))).scalar()
        self._high: float | None = float(top) if top is not None else None

    def high(self) -> float | None:
        return self._high

    def _range(self, after: float | None) -> list[Any]:
        import sqlalchemy as sa

        c = self._events.c
        where = [c.id <= (self._high if self._high is not None else -1)]
        if after is not None:
            where.append(c.id > after)
        return [sa.and_(*where)]

    def newest(self, after: float | None) -> float | None:
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            c = self._events.c
            value = connection.execute(
                sa.select(sa.func.max(c.timestamp)).where(
                    *self._range(after), c.timestamp >= 0, c.timestamp <= MAX_TIMESTAMP
                )
            ).scalar()
        return float(value) if value is not None else None

    def senders(self, after: float | None) -> Iterator[tuple[str, list[RawEvent]]]:
        """Each sender's events (see EventSource). Rows come straight from the driver's cursor (`fetchmany` of BATCH
        rows; on PostgreSQL a named, server-side cursor), not as SQLAlchemy rows: per event that is most of the
        read's cost. (SQLAlchemy's `stream_results` result pre-fetches a row from the cursor, so its DBAPI cursor
        cannot be read directly.)"""
        sqlite = self.url.get_backend_name() == "sqlite"
        high = self._high if self._high is not None else -1
        bounds = [high] if after is None else [high, after]
        # Integer ids compare as integers (a float parameter would not use PostgreSQL's index on an integer column).
        parameters = tuple(int(b) if float(b).is_integer() else b for b in bounds)
        mark = "?" if sqlite else "%s"
        where = f"id <= {mark}" + ("" if after is None else f" AND id > {mark}")
        query = f"SELECT id, sender_id, type_name, timestamp, data FROM {TABLE} WHERE {where} ORDER BY sender_id, id"
        sender: Any = _NONE
        batch: list[RawEvent] = []
        raw = self.engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            cursor = driver.cursor() if sqlite else driver.cursor(name="harness_logs_import")
            try:
                cursor.execute(query, parameters)
                while rows := cursor.fetchmany(BATCH):
                    for row_id, sender_id, type_name, timestamp, data in rows:
                        if sender_id != sender or sender is _NONE:
                            if batch:
                                yield _sender_text(sender), batch
                            sender, batch = sender_id, []
                        position = f"{TABLE}.id={row_id}"
                        if sender_id is None or sender_id == "":
                            # Rasa's column is NOT NULL, other writers' may not be: no sender, no conversation.
                            problem = "null" if sender_id is None else "empty"
                            batch.append(RawEvent("", float(row_id), position, None, "no_sender", problem))
                            continue
                        batch.append(decoded(str(sender_id), float(row_id), position, data, type_name, timestamp))
            finally:
                cursor.close()
            if batch:
                yield _sender_text(sender), batch
        finally:
            raw.rollback()  # ends the read-only transaction the server-side cursor needed
            raw.close()

    def close(self) -> None:
        self.engine.dispose()
