"""The probe log (harness.records.probe_log.ProbeLog) on SQLite and on a throw-away PostgreSQL: round trips (aware
UTC, microseconds), read()'s window, append-only refused by the database itself, two processes appending to one
log, and the errors of a log that cannot be opened. Expected rows are picked by hand from the results written."""

from __future__ import annotations

import multiprocessing
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from postgres_server import create_database, postgres  # noqa: F401 - postgres is a fixture

from harness.errors import InputError, ProbeLogError
from harness.records.probe_log import ProbeLog, ProbeResult

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def result(
    probe: str,
    start: timedelta,
    holds: timedelta,
    *,
    target: str = "bot",
    ok: bool = True,
    **extra: object,
) -> ProbeResult:
    """A result of `probe` started at T0 + start, holding until T0 + holds."""
    fields: dict[str, object] = {
        "target": target,
        "probe": probe,
        "started_at": T0 + start,
        "finished_at": T0 + start + timedelta(seconds=1),
        "ok": ok,
        "attempts": 1,
        "latency_ms": 250.0,
        "holds_until": T0 + holds,
    }
    if not ok:
        fields |= {"failed_check": "status", "detail": "turn 1: timeout"}
    return ProbeResult(**(fields | extra))  # type: ignore[arg-type]


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty log's URL on each database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logs' / 'probes.sqlite3'}"
    server = request.getfixturevalue("postgres")
    return create_database(server, f"probes_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def log(url: str) -> Iterator[ProbeLog]:
    with ProbeLog(url) as opened:
        yield opened


def raw_engine(url: str) -> sa.Engine:
    """An engine that bypasses ProbeLog (as another program or a person would)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url)


def test_round_trip_reads_back_aware_utc_with_microseconds(url: str) -> None:
    if url.startswith("postgresql"):
        # A session time zone far from UTC: timestamptz comes back in it unless the log converts to UTC.
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute(f"ALTER DATABASE \"{database}\" SET timezone TO 'Asia/Kolkata'")
    plus_two = timezone(timedelta(hours=2))
    written = ProbeResult(
        target="reference-bot",
        probe="card-lost",
        started_at=datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=plus_two),  # 10:00:00.000005 UTC
        finished_at=datetime(2026, 3, 1, 10, 0, 3, 999999, tzinfo=UTC),
        ok=False,
        attempts=2,
        latency_ms=3012.5,
        holds_until=datetime(2026, 3, 1, 10, 3, 5, 123456, tzinfo=UTC),
        failed_check="latency",
        detail="turn 2: 3012 ms > 3000 ms",
        first_failure="status: turn 1 timed out",
        model="20260301-abc",
        prober="host-a:4242",
    )
    with ProbeLog(url) as log:
        first = log.append(written)
        second = log.append(result("balance", minutes(1), minutes(4), target="reference-bot"))
        assert first.id is not None and second.id is not None and second.id > first.id
        back = log.read("reference-bot")
    assert back[0] == first
    started = back[0].started_at
    assert started.tzinfo is UTC
    assert (started.hour, started.minute, started.second, started.microsecond) == (10, 0, 0, 5)
    assert back[0].finished_at.microsecond == 999999 and back[0].finished_at.tzinfo is UTC
    assert back[0].holds_until == datetime(2026, 3, 1, 10, 3, 5, 123456, tzinfo=UTC)
    assert back[1] == second and back[1].failed_check is None and back[1].model is None and back[1].prober == ""


def test_read_returns_what_can_hold_in_the_window(log: ProbeLog) -> None:
    written = {
        name: log.append(r)
        for name, r in {
            # b: from 09:50, holding until 10:05: before the window but still standing at its start.
            "b_before_still_holding": result("b", minutes(-10), minutes(5), ok=False),
            # b: from 09:40, holding until exactly 10:00: expired at the window's start.
            "b_expired_at_start": result("b", minutes(-20), minutes(0)),
            "a_first": result("a", minutes(0), minutes(3)),
            "a_same_start_later_id": result("a", minutes(0), minutes(3), ok=False),
            "a_second": result("a", minutes(1), minutes(4)),
            # a: from 10:09:59.999999, a microsecond before the end.
            "a_last_microsecond": result("a", minutes(10) - timedelta(microseconds=1), minutes(13)),
            "a_at_end": result("a", minutes(10), minutes(13)),
            "other_target": result("a", minutes(2), minutes(5), target="other-bot"),
        }.items()
    }
    window = log.read("bot", T0, T0 + minutes(10))
    assert [r.id for r in window] == [
        written[n].id
        for n in ("b_before_still_holding", "a_first", "a_same_start_later_id", "a_second", "a_last_microsecond")
    ]
    assert window[0] == written["b_before_still_holding"]
    # Unbounded sides.
    assert [r.id for r in log.read("bot", None, T0)] == [
        written[n].id for n in ("b_expired_at_start", "b_before_still_holding")
    ]
    # From 10:10 on, a_at_end (10:10) has replaced a_last_microsecond, which therefore no longer stands.
    assert [r.id for r in log.read("bot", T0 + minutes(10))] == [written["a_at_end"].id]
    assert len(log.read("bot")) == 7
    assert log.read("nobody") == []
    with pytest.raises(InputError, match="start: naive datetime"):
        log.read("bot", datetime(2026, 3, 1, 10, 0))


def test_a_result_superseded_before_the_window_is_not_read_even_if_its_successor_expired(log: ProbeLog) -> None:
    # c at 09:30 holds until 10:30 (a long stale_after); c again at 09:50 holds only until 09:55 (a shorter one).
    # At 10:00 the 09:30 result no longer stands (the 09:50 one replaced it) and the 09:50 one has expired: the
    # probe's state at the window's start is unknown, so neither is read.
    log.append(result("c", minutes(-30), minutes(30), ok=False))
    log.append(result("c", minutes(-10), minutes(-5)))
    kept = log.append(result("c", minutes(2), minutes(8)))
    assert [r.id for r in log.read("bot", T0, T0 + minutes(10))] == [kept.id]
    # A window starting before the second result still sees the first standing until it.
    assert [r.started_at for r in log.read("bot", T0 - minutes(20), T0)] == [T0 - minutes(30), T0 - minutes(10)]


def test_targets_and_latest(log: ProbeLog) -> None:
    assert log.targets() == [] and log.latest("bot") == {}
    log.append(result("a", minutes(0), minutes(3)))
    newest_a = log.append(result("a", minutes(2), minutes(5), ok=False))
    log.append(result("a", minutes(1), minutes(4)))  # arrives last but started earlier
    log.append(result("b", minutes(1), minutes(4)))
    newest_b = log.append(result("b", minutes(1), minutes(4), ok=False))  # same start: the higher id wins
    log.append(result("a", minutes(9), minutes(12), target="another"))
    assert log.targets() == ["another", "bot"]
    assert log.latest("bot") == {"a": newest_a, "b": newest_b}


def test_the_database_refuses_updates_and_deletes(url: str) -> None:
    with ProbeLog(url) as log:
        kept = log.append(result("a", minutes(0), minutes(3)))
    ProbeLog(url).close()  # opening again keeps the rows and the triggers
    engine = raw_engine(url)
    statements = [
        "UPDATE probe_results SET ok = false",
        f"UPDATE probe_results SET detail = 'edited' WHERE id = {kept.id}",
        "DELETE FROM probe_results",  # no WHERE: SQLite's truncate optimisation must not bypass the trigger
        f"DELETE FROM probe_results WHERE id = {kept.id}",
    ]
    if url.startswith("postgresql"):
        statements.append("TRUNCATE probe_results")
    try:
        for statement in statements:
            with (
                pytest.raises(sa.exc.DBAPIError, match="probe_results is append-only"),
                engine.begin() as connection,
            ):
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    with ProbeLog(url) as log:
        assert log.read("bot") == [kept]


def _append_many(url: str, worker: int, count: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    log = ProbeLog(url)
    barrier.wait(timeout=60)
    for i in range(count):
        log.append(result(f"p{worker}", timedelta(seconds=i), timedelta(seconds=i + 180), prober=f"w{worker}"))
    log.close()


def test_two_processes_append_to_one_log(url: str) -> None:
    ProbeLog(url).close()  # created once; the workers open the existing log at the same moment
    count = 60
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(url, w, count, barrier)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with ProbeLog(url) as log:
        rows = log.read("bot")
    assert len(rows) == 2 * count and len({r.id for r in rows}) == 2 * count
    for w in (1, 2):
        mine = sorted((r for r in rows if r.prober == f"w{w}"), key=lambda r: r.id or 0)
        # Each worker's rows in the order it wrote them: started 0 s, 1 s, ... 59 s after T0.
        assert [r.started_at for r in mine] == [T0 + timedelta(seconds=i) for i in range(count)]


def test_a_new_log_creates_its_folder_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ProbeLog("sqlite:///deep/er/probes.sqlite3") as log:
        log.append(result("a", minutes(0), minutes(3)))
    assert (tmp_path / "deep" / "er" / "probes.sqlite3").is_file()


def test_append_refuses_results_it_cannot_hold_faithfully(tmp_path: Path) -> None:
    with ProbeLog(f"sqlite:///{tmp_path / 'p.sqlite3'}") as log:
        with pytest.raises(InputError) as caught:
            log.append(result("a", minutes(0), minutes(3), started_at=datetime(2026, 3, 1, 10, 0)))
        assert "started_at: naive datetime 2026-03-01T10:00:00" in str(caught.value)
        with pytest.raises(InputError, match="failed_check: 'slow' is not one of unreachable, refused"):
            log.append(result("a", minutes(0), minutes(3), ok=False, failed_check="slow"))
        assert log.read("bot") == []


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    with pytest.raises(ProbeLogError) as caught:
        ProbeLog(f"sqlite:///{notes}")
    message = str(caught.value)
    assert message.startswith(f"cannot open the probe log sqlite:///{notes}: DatabaseError: file is not a database")
    assert "give another path" in message
    assert notes.read_text() == "not a database\n" * 100


def test_a_folder_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(ProbeLogError, match=r"taken/probes.sqlite3: cannot create its folder \(FileExistsError"):
        ProbeLog(f"sqlite:///{tmp_path / 'taken' / 'probes.sqlite3'}")


@pytest.mark.parametrize(
    ("bad", "shown", "why"),
    [
        ("not a url", "not a url", "not a database URL"),
        (
            "postgresql://probe:s3cret@localhost:port/db",
            "postgresql://probe:***@localhost:port/db",
            "not a database URL",
        ),
        ("mysql://probe:s3cret@localhost/db", "mysql://probe:***@localhost/db", "unsupported database kind 'mysql'"),
    ],
)
def test_bad_urls_are_reported_without_the_password(bad: str, shown: str, why: str) -> None:
    with pytest.raises(ProbeLogError) as caught:
        ProbeLog(bad)
    message = str(caught.value)
    assert message.startswith(f"cannot open the probe log {shown}: {why}")
    assert "s3cret" not in message
    assert "sqlite:///path/to/probes.sqlite3" in message and "postgresql://user:password@host:5432/db" in message


def test_an_unreachable_server_is_reported_without_the_password() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProbeLogError) as caught:
        ProbeLog(f"postgresql://probe:s3cret@127.0.0.1:{port}/probes")
    message = str(caught.value)
    assert message.startswith(f"cannot open the probe log postgresql://probe:***@127.0.0.1:{port}/probes: ")
    assert "OperationalError" in message and "Connection refused" in message and "s3cret" not in message


def test_a_table_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE probe_results (id INTEGER PRIMARY KEY, target TEXT, ok BOOLEAN)")
    engine.dispose()
    with pytest.raises(ProbeLogError, match="its table `probe_results` lacks columns probe, started_at, finished_at"):
        ProbeLog(f"sqlite:///{path}")


def test_append_after_the_database_went_away_raises_probe_log_error(postgres: str) -> None:  # noqa: F811
    name = f"probes_{uuid.uuid4().hex[:12]}"
    with ProbeLog(create_database(postgres, name)) as log:
        log.append(result("a", minutes(0), minutes(3)))
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        with pytest.raises(ProbeLogError) as caught:
            log.append(result("a", minutes(1), minutes(4)))
        message = str(caught.value)
        assert message.startswith(f"cannot append to the probe log {postgres}/{name}: OperationalError: ")
        assert f'database "{name}" does not exist' in message and "check that the database is reachable" in message
