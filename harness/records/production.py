"""The production store: real conversations imported from a bot's logs, as the canonical turn table plus when and
who, on disk as a Parquet dataset partitioned by the day each conversation started.

```
<store>/
  state.json                                  per source: the watermark of the last import, the import log
  turns/day=YYYY-MM-DD/part-<import id>.parquet  one file per import and day (hive partitioning: DuckDB, Spark
                                                 and pyarrow read `day` from the folder name)
```

A production row is a row of the turn table (`harness.records.table.COLUMNS`: labels empty, status from what
happened) plus `PRODUCTION_COLUMNS`. Conversation-level values (`customer`, `conversation_start`, `ended_by`) are
repeated on each of the conversation's turns so one table serves every engine.

Appending is idempotent: a conversation whose id is already stored is skipped (`append` returns how many were
new). Files are written under a temporary name and renamed, so a crash leaves whole files only, and the state is
written after the data, so a crash between the two re-imports conversations that `append` then skips.

One writer at a time: writers hold an exclusive lock on `<store>/import.lock` (`ProductionStore.locked`: `flock`,
non-blocking; the file holds the holder's pid, start time and what it does). `harness logs import` holds it for the
whole import (state read to state written); `append` takes it itself when its caller does not hold it, and
re-reads the stored ids then. A second writer gets an InputError naming the holder. Readers take no lock (they see
whole files only). The lock is advisory: only these code paths honour it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from harness.errors import InputError
from harness.records.table import COLUMNS

PRODUCTION_COLUMNS: dict[str, str] = {
    "source": "string",  # the import source's name (`harness logs import --name`)
    "customer": "string",  # pseudonymous customer (keyed hash of the sender id); null when senders are not customers
    "sent_at": "datetime64[us, UTC]",  # when the customer's message reached the bot
    "conversation_start": "datetime64[us, UTC]",  # when the conversation's first customer message arrived
    "ended_by": "string",  # how the conversation ended: see ENDINGS
    "awaiting_reply": "boolean",  # after this turn the bot waited for the customer (a form, a question, a fallback)
}
"""Columns of a production row beyond the turn table's."""

ENDINGS = ("handoff", "timeout", "session_start", "restart", "session_end")
"""`ended_by`: handed to a human; the customer went idle past the inactivity timeout (or the log ends past it); the
bot started a new session; the conversation was restarted; the bot or channel closed the session."""

ALL_COLUMNS: dict[str, str] = {**COLUMNS, **PRODUCTION_COLUMNS}
TURNS = "turns"
STATE = "state.json"
LOCK = "import.lock"
DAY = "day"


def _arrow_type(dtype: str) -> pa.DataType:
    if dtype.startswith("datetime64"):
        return pa.timestamp("us", tz="UTC")
    return {
        "string": pa.string(),
        "boolean": pa.bool_(),
        "int32": pa.int32(),
        "int16": pa.int16(),
        "Int16": pa.int16(),
        "float32": pa.float32(),
    }[dtype]


SCHEMA = pa.schema([pa.field(name, _arrow_type(dtype)) for name, dtype in ALL_COLUMNS.items()])
"""The Arrow schema of a stored production file (the `day` partition column lives in the folder name)."""


def to_production_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A production table with the canonical columns and dtypes from row dicts (missing keys become null)."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(ALL_COLUMNS))
    return frame.astype(ALL_COLUMNS)


@dataclass(frozen=True)
class Window:
    """Days `first`..`last` inclusive (UTC), by the day a conversation started; None: unbounded on that side."""

    first: date | None = None
    last: date | None = None

    def __str__(self) -> str:
        return f"{self.first or ''}..{self.last or ''}"

    def contains(self, day: date) -> bool:
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


_DAYS = re.compile(r"^(\d+)d$")


def parse_window(text: str | None, today: date | None = None) -> Window:
    """A window from `YYYY-MM-DD..YYYY-MM-DD` (either side may be empty), `YYYY-MM-DD` (one day) or `<n>d` (the last
    n days up to and including today, UTC). None or empty: everything. InputError for anything else."""
    if not text:
        return Window()
    text = text.strip()
    days = _DAYS.match(text)
    if days:
        n = int(days.group(1))
        if n < 1:
            raise InputError("bad window", [f"{text!r}: give at least 1 day, for example 7d"])
        end = today or datetime.now(UTC).date()
        return Window(end - timedelta(days=n - 1), end)
    first, sep, last = text.partition("..")
    try:
        start = date.fromisoformat(first) if first else None
        stop = (date.fromisoformat(last) if last else None) if sep else start
    except ValueError:
        raise InputError(
            "bad window", [f"{text!r}: give YYYY-MM-DD..YYYY-MM-DD (either side may be empty), YYYY-MM-DD or 7d"]
        ) from None
    if start and stop and stop < start:
        raise InputError("bad window", [f"{text!r}: the last day is before the first"])
    return Window(start, stop)


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table of SCHEMA (timestamps converted column by column, keeping their time zone)."""
    arrays = []
    for field_ in SCHEMA:
        column = frame[field_.name]
        if pa.types.is_timestamp(field_.type):
            utc = column.dt.tz_convert("UTC").dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
            arrays.append(pa.array(utc, type=pa.timestamp("us"), from_pandas=True).cast(field_.type))
        else:
            arrays.append(pa.array(column, type=field_.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


class ProductionStore:
    """One production store folder (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._known: dict[date, set[str]] = {}
        """Conversation ids per day, read once per day and kept up to date by `append` (an import appends in
        chunks that each cover many days: re-reading every day's files per chunk would grow quadratically).
        Dropped whenever this object takes the lock: another writer may have appended since."""
        self._lock: int | None = None
        """The lock file's descriptor while this object holds the lock (`locked`)."""

    @property
    def turns_dir(self) -> Path:
        return self.path / TURNS

    @property
    def state_file(self) -> Path:
        return self.path / STATE

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    @contextmanager
    def locked(self, what: str) -> Iterator[None]:
        """Hold the store's writer lock (`<store>/import.lock`, `fcntl.flock` exclusive, non-blocking) for the
        block; re-entrant for this object. `what` is recorded in the lock file with this process's pid and the
        start time (UTC) for whoever finds it taken. Creates the store folder.

        Raises InputError when another process (or another ProductionStore object) holds it, naming the holder.
        """
        if self._lock is not None:
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
            os.close(descriptor)
            raise InputError(
                "the production store is locked by another import",
                [
                    f"{self.lock_file}: held by {holder or 'another process (it has not written its pid yet)'}; "
                    "two writers at once would store conversations twice. Wait for it to finish and run this "
                    "again (a lock whose process has ended is released by the system: nothing to delete)"
                ],
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        try:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"pid {os.getpid()} since {started} ({what})\n".encode(), 0)
            self._lock = descriptor
            self._known.clear()
            yield
        finally:
            self._lock = None
            try:
                os.ftruncate(descriptor, 0)
            finally:
                os.close(descriptor)  # closing releases the flock

    def days(self, window: Window = Window()) -> list[date]:
        """The stored days inside `window`, in order."""
        found = []
        for folder in self.turns_dir.glob(f"{DAY}=*"):
            try:
                day = date.fromisoformat(folder.name.split("=", 1)[1])
            except ValueError:
                continue
            if window.contains(day) and any(folder.glob("*.parquet")):
                found.append(day)
        return sorted(found)

    def files(self, window: Window = Window()) -> list[Path]:
        """The Parquet files of the days inside `window`."""
        return [f for day in self.days(window) for f in sorted((self.turns_dir / f"{DAY}={day}").glob("*.parquet"))]

    def read(self, window: Window = Window(), columns: list[str] | None = None) -> pd.DataFrame:
        """The stored turns of `window` as a pandas frame with canonical dtypes and a `day` column (the in-memory
        path; engines read `files` themselves). An empty store gives an empty frame."""
        files = self.files(window)
        wanted = columns or list(ALL_COLUMNS)
        if not files:
            frame = to_production_frame([])[[c for c in wanted if c in ALL_COLUMNS]]
            return frame.assign(**{DAY: pd.Series(dtype="string")})
        parts = []
        for path in files:
            table = pq.read_table(path, columns=[c for c in wanted if c in ALL_COLUMNS])
            parts.append(table.to_pandas().assign(**{DAY: path.parent.name.split("=", 1)[1]}))
        frame = pd.concat(parts, ignore_index=True)
        return frame.astype({c: ALL_COLUMNS[c] for c in frame.columns if c in ALL_COLUMNS} | {DAY: "string"})

    def conversation_ids(self, days: Iterable[date]) -> set[str]:
        """The conversation ids stored on these days."""
        ids: set[str] = set()
        for day in days:
            ids |= self._day_ids(day)
        return ids

    def _day_ids(self, day: date) -> set[str]:
        if day not in self._known:
            found: set[str] = set()
            for path in (self.turns_dir / f"{DAY}={day}").glob("*.parquet"):
                found.update(pq.read_table(path, columns=["conversation_id"]).column(0).to_pylist())
            self._known[day] = found
        return self._known[day]

    def append(self, frame: pd.DataFrame, import_id: str) -> int:
        """Store the turns of `frame` (production columns; every turn of a conversation in one call), one file per
        day its conversations started; conversations already stored are skipped. Returns the number of new
        conversations. `import_id` names the files (letters, digits, `-` and `_`).

        Single writer: holds the store's lock while it runs (`locked`; taken here unless the caller holds it, as an
        import does for its whole run). Every day's table is built before any file is written, so a frame whose
        values do not fit the columns writes nothing. Raises InputError when another process holds the lock,
        ValueError for a bad import id, and what pandas/pyarrow raise for values that do not fit the columns."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", import_id):
            raise ValueError(f"import id {import_id!r}: letters, digits, - and _ only")
        if frame.empty:
            return 0
        frame = frame.astype(ALL_COLUMNS)
        with self.locked(f"append {import_id}"):
            day = frame["conversation_start"].dt.strftime("%Y-%m-%d")
            known = self.conversation_ids(date.fromisoformat(d) for d in day.unique())
            fresh = ~frame["conversation_id"].isin(known)
            added = frame.loc[fresh, "conversation_id"].nunique()
            tables = []
            for value, part in frame[fresh].groupby(day[fresh], sort=True):
                ordered = part.sort_values(["conversation_id", "turn_index"], kind="stable")
                tables.append((str(value), _to_arrow(ordered), set(ordered["conversation_id"].unique())))
            for value, table, ids in tables:
                folder = self.turns_dir / f"{DAY}={value}"
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / f"part-{import_id}.parquet"
                n = 0
                while target.exists():
                    n += 1
                    target = folder / f"part-{import_id}-{n}.parquet"
                staged = folder / f".{target.name}.tmp"
                pq.write_table(table, staged)
                os.replace(staged, target)
                self._day_ids(date.fromisoformat(value)).update(ids)
        return int(added)

    def check(self, frame: pd.DataFrame) -> None:
        """Raise what `append` would raise for values of `frame` that do not fit the columns; writes nothing."""
        _to_arrow(frame.astype(ALL_COLUMNS))

    def state(self) -> dict[str, Any]:
        """state.json (`{"sources": {name: {...}}, "imports": [...]}`); an empty state when there is none."""
        if not self.state_file.is_file():
            return {"sources": {}, "imports": []}
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(
                "cannot read the production store's state", [f"{self.state_file}: {exc}; restore it from a backup"]
            ) from None

    def write_state(self, state: dict[str, Any]) -> None:
        """Write state.json whole or not at all."""
        self.path.mkdir(parents=True, exist_ok=True)
        staged = self.path / (STATE + ".tmp")
        staged.write_text(json.dumps(state, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(staged, self.state_file)

    def dataset(self, window: Window = Window()) -> ds.Dataset:
        """The window's files as one pyarrow dataset (hive partitioning on `day`)."""
        return ds.dataset([str(p) for p in self.files(window)], schema=SCHEMA, format="parquet")
