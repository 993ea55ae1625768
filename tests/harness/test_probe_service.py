"""The probe service (harness.probing.service.ProbeService) without a bot: `run_cycle` is a fake returning
hand-made ProbeResults, the probe log a real SQLite ProbeLog in tmp_path (wrapped to go down on demand), the
metrics a real ProbeMetrics. Every expected order, count and value is worked out from the fake cycles here."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProbeLogError
from harness.probing.service import ProbeService
from harness.records.probe_log import ProbeLog, ProbeResult
from harness.sinks.probe_metrics import ProbeMetrics

TARGET = "svc-bot"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def result(probe: str, second: float, ok: bool = True, *, check: str = "status") -> ProbeResult:
    started = T0 + timedelta(seconds=second)
    return ProbeResult(
        target=TARGET,
        probe=probe,
        started_at=started,
        finished_at=started + timedelta(seconds=0.5),
        ok=ok,
        attempts=1 if ok else 2,
        latency_ms=250.0 if ok else None,
        holds_until=started + timedelta(seconds=185),
        failed_check=None if ok else check,
        detail=None if ok else f"{check} at {second:g} s",
    )


def batch(cycle: int, *, ok: bool = True) -> list[ProbeResult]:
    """Cycle `cycle`'s results: probes `a` then `b`, 60 s apart per cycle (b a second after a)."""
    return [result("a", 60 * cycle, ok), result("b", 60 * cycle + 1, ok)]


def key(r: ProbeResult) -> tuple[str, datetime, bool]:
    return (r.probe, r.started_at, r.ok)


@dataclass
class Events:
    """Records what the service tells its watcher."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def cycle_done(self, results: list[ProbeResult]) -> None:
        self.calls.append(("cycle_done", [key(r) for r in results]))

    def log_failed(self, error: str, pending: int, dropped: int) -> None:
        self.calls.append(("log_failed", error, pending, dropped))

    def log_recovered(self, appended: int) -> None:
        self.calls.append(("log_recovered", appended))

    def cycle_failed(self, error: str) -> None:
        self.calls.append(("cycle_failed", error))

    def uptime(self, report: Any) -> None:
        self.calls.append(("uptime", report))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


class FlakyLog:
    """A real ProbeLog whose appends fail (ProbeLogError, as the log raises when its database is unreachable) while
    `down`, or after `fail_after` more successful appends; `gate`, when given, holds the first append until set."""

    def __init__(self, log: ProbeLog) -> None:
        self.log = log
        self.down = False
        self.fail_after: int | None = None
        self.attempts = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def append(self, r: ProbeResult) -> ProbeResult:
        self.attempts += 1
        if self.gate is not None and self.attempts == 1:
            self.entered.set()
            self.gate.wait(5)
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down, self.fail_after = True, None
            else:
                self.fail_after -= 1
        if self.down:
            raise ProbeLogError("cannot append to the probe log sqlite:///x: OperationalError: disk I/O error")
        return self.log.append(r)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


class FakeCycles:
    """`run_cycle` returning `batch(n)` on its n-th call (from 0), after `delay_s`; `script` may replace a call's
    outcome (a list of results, or an exception to raise). Counts calls running at once."""

    def __init__(self, delay_s: float = 0.0, script: dict[int, Any] | None = None) -> None:
        self.delay_s = delay_s
        self.script = script or {}
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.starts: list[float] = []
        self.started = asyncio.Event()

    async def __call__(self) -> list[ProbeResult]:
        n = self.calls
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.starts.append(time.monotonic())
        self.started.set()
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            outcome = self.script.get(n, batch(n))
            if isinstance(outcome, BaseException):
                raise outcome
            return list(outcome)
        finally:
            self.running -= 1


@pytest.fixture
def log(tmp_path: Path) -> Iterator[ProbeLog]:
    with ProbeLog(f"sqlite:///{tmp_path / 'probes.sqlite3'}") as opened:
        yield opened


def stored(log: ProbeLog) -> list[tuple[str, datetime, bool]]:
    """The log's results in the order they were appended (row ids)."""
    return [key(r) for r in sorted(log.read(TARGET), key=lambda r: r.id or 0)]


def sample(metrics: ProbeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"target": TARGET, **labels})


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def serving(
    service: ProbeService, interval_s: float, control: Callable[[asyncio.Event], Awaitable[None]]
) -> float:
    """Run `service.serve` while `control` runs, `control` setting the stop event; seconds serve took to return
    after stop was set."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.serve(interval_s, 0, stop))
    await control(stop)
    assert stop.is_set()
    asked = time.monotonic()
    await asyncio.wait_for(task, 10)
    return time.monotonic() - asked


# --- one cycle at a time ----------------------------------------------------------------------------------------


def test_results_are_appended_in_order_and_published(log: ProbeLog) -> None:
    metrics, events = ProbeMetrics(TARGET), Events()
    cycles = FakeCycles(script={1: [result("a", 60, False), result("b", 61)]})
    service = ProbeService(cycles, log, metrics, events)

    for _ in range(3):
        asyncio.run(service.cycle())

    # Cycle 0: a, b ok; cycle 1: a failed, b ok; cycle 2: a, b ok.
    assert stored(log) == [key(r) for r in [*batch(0), result("a", 60, False), result("b", 61), *batch(2)]]
    assert service.cycles == 3 and service.pending == 0
    assert [c[0] for c in events.calls] == ["cycle_done"] * 3
    assert events.calls[1] == (
        "cycle_done",
        [("a", T0 + timedelta(seconds=60), False), ("b", T0 + timedelta(seconds=61), True)],
    )
    # a: 2 ok, 1 failed, 1 retry (the failed one had attempts 2), latency observed for the 2 ok results only.
    assert sample(metrics, "harness_probe_runs_total", probe="a", result="ok") == 2
    assert sample(metrics, "harness_probe_runs_total", probe="a", result="failed") == 1
    assert sample(metrics, "harness_probe_runs_total", probe="b", result="ok") == 3
    assert sample(metrics, "harness_probe_retries_total", probe="a") == 1
    assert sample(metrics, "harness_probe_latency_seconds_count", probe="a") == 2
    assert sample(metrics, "harness_probe_latency_seconds_sum", probe="a") == pytest.approx(0.5)
    assert sample(metrics, "harness_probe_success", probe="a") == 1
    assert metrics.registry.get_sample_value("harness_bot_up", {"target": TARGET}) == 1
    # a's latest passing result (cycle 2) finished at T0 + 120.5 s.
    finished = (T0 + timedelta(seconds=120.5)).timestamp()
    assert sample(metrics, "harness_probe_last_success_timestamp_seconds", probe="a") == pytest.approx(finished)


def test_a_log_outage_keeps_results_waiting_and_appends_them_in_order_once_it_recovers(log: ProbeLog) -> None:
    metrics, events, flaky = ProbeMetrics(TARGET), Events(), FlakyLog(log)
    service = ProbeService(FakeCycles(), flaky, metrics, events)  # type: ignore[arg-type]

    flaky.down = True
    asyncio.run(service.cycle())
    assert service.pending == 2 and stored(log) == []
    # The metrics do not wait for the log.
    assert sample(metrics, "harness_probe_runs_total", probe="a", result="ok") == 1
    asyncio.run(service.cycle())
    assert service.pending == 4 and stored(log) == []
    failed = events.named("log_failed")
    assert [(pending, dropped) for _, _, pending, dropped in failed] == [(2, 0), (4, 0)]
    assert all("disk I/O error" in error for _, error, _, _ in failed)
    assert events.named("log_recovered") == []

    flaky.down = False
    asyncio.run(service.cycle())
    assert stored(log) == [key(r) for r in [*batch(0), *batch(1), *batch(2)]]
    assert service.pending == 0
    assert events.named("log_recovered") == [("log_recovered", 6)]
    assert [c[0] for c in events.calls] == [
        "log_failed",
        "cycle_done",
        "log_failed",
        "cycle_done",
        "log_recovered",
        "cycle_done",
    ]
    # A later cycle with the log up reports no recovery again.
    asyncio.run(service.cycle())
    assert events.named("log_recovered") == [("log_recovered", 6)] and len(stored(log)) == 8


def test_a_log_failing_part_way_through_loses_and_repeats_nothing(log: ProbeLog) -> None:
    events, flaky = Events(), FlakyLog(log)
    service = ProbeService(FakeCycles(), flaky, None, events)  # type: ignore[arg-type]

    flaky.fail_after = 1  # cycle 0: a is appended, then the log goes down before b
    asyncio.run(service.cycle())
    assert stored(log) == [key(batch(0)[0])] and service.pending == 1
    assert [(p, d) for _, _, p, d in events.named("log_failed")] == [(1, 0)]

    flaky.down = False
    asyncio.run(service.cycle())
    assert stored(log) == [key(r) for r in [*batch(0), *batch(1)]]
    assert events.named("log_recovered") == [("log_recovered", 3)]  # 0.b waiting, then 1.a and 1.b


def test_max_pending_drops_the_oldest_and_counts_them(log: ProbeLog) -> None:
    events, flaky = Events(), FlakyLog(log)
    service = ProbeService(FakeCycles(), flaky, None, events, max_pending=3)  # type: ignore[arg-type]
    flaky.down = True
    for _ in range(3):
        asyncio.run(service.cycle())
    # 2 results a cycle, at most 3 kept: after cycle 0 (0a 0b) 2 wait; cycle 1 adds 1a 1b: 4 > 3, 0a dropped;
    # cycle 2 adds 2a 2b: 5 > 3, 0b and 1a dropped: 3 dropped in all, 1b 2a 2b waiting.
    assert [(p, d) for _, _, p, d in events.named("log_failed")] == [(2, 0), (3, 1), (3, 3)]
    assert service.pending == 3
    assert stored(log) == []


def test_the_cycle_after_a_log_outage_appends_every_waiting_result_before_capping(log: ProbeLog) -> None:
    # As above, then the log is back for cycle 3. The three waiting results (1b 2a 2b) and cycle 3's two fit once
    # the log takes them: nothing more should be lost (appending first, then capping what still waits), or a loss
    # would at least be told. The log should hold 1b 2a 2b 3a 3b.
    events, flaky = Events(), FlakyLog(log)
    service = ProbeService(FakeCycles(), flaky, None, events, max_pending=3)  # type: ignore[arg-type]
    flaky.down = True
    for _ in range(3):
        asyncio.run(service.cycle())
    flaky.down = False
    asyncio.run(service.cycle())
    assert stored(log) == [key(r) for r in [batch(1)[1], *batch(2), *batch(3)]]
    assert events.named("log_recovered") == [("log_recovered", 5)]


# --- the schedule ------------------------------------------------------------------------------------------------


def test_serve_runs_cycles_on_schedule_never_two_at_once(log: ProbeLog, caplog: pytest.LogCaptureFixture) -> None:
    # Cycles take 0.15 s, three times the 0.05 s interval: max_instances=1 keeps them one at a time.
    cycles = FakeCycles(delay_s=0.15)
    metrics, events = ProbeMetrics(TARGET), Events()
    service = ProbeService(cycles, log, metrics, events)

    async def control(stop: asyncio.Event) -> None:
        await until(lambda: service.cycles >= 4)
        stop.set()

    with caplog.at_level(logging.WARNING):
        asyncio.run(serving(service, 0.05, control))
    assert cycles.most_at_once == 1
    gaps = [b - a for a, b in zip(cycles.starts, cycles.starts[1:], strict=False)]
    assert min(gaps) >= 0.15 - 0.01, gaps
    done = len(events.named("cycle_done"))
    assert done == service.cycles >= 4
    assert stored(log) == [key(r) for n in range(done) for r in batch(n)]
    assert sample(metrics, "harness_probe_runs_total", probe="b", result="ok") == done
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_stop_during_a_slow_cycle_returns_promptly_and_leaves_no_result(
    log: ProbeLog, caplog: pytest.LogCaptureFixture
) -> None:
    # Cycle 0 is quick; cycle 1 would take 5 s. Stop is asked while cycle 1 runs.
    cycles = FakeCycles()
    metrics, events = ProbeMetrics(TARGET), Events()
    service = ProbeService(cycles, log, metrics, events)

    async def control(stop: asyncio.Event) -> None:
        await until(lambda: service.cycles == 1)
        cycles.delay_s = 5.0
        await until(lambda: cycles.running == 1)
        await asyncio.sleep(0.05)
        stop.set()

    with caplog.at_level(logging.DEBUG):
        took = asyncio.run(serving(service, 0.05, control))
    assert took < 1.0, f"serve took {took:.2f} s to return after stop (the cycle would have taken 5 s)"
    assert cycles.calls == 2 and service.cycles == 1
    assert stored(log) == [key(r) for r in batch(0)]
    assert sample(metrics, "harness_probe_runs_total", probe="a", result="ok") == 1
    assert [c[0] for c in events.calls] == ["cycle_done"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r for r in caplog.records if r.exc_info] == []


def test_a_cycle_that_raises_is_reported_and_the_schedule_goes_on(
    log: ProbeLog, caplog: pytest.LogCaptureFixture
) -> None:
    cycles = FakeCycles(script={1: RuntimeError("the bot adapter broke")})
    events = Events()
    service = ProbeService(cycles, log, None, events)

    async def control(stop: asyncio.Event) -> None:
        await until(lambda: service.cycles >= 3)
        stop.set()

    with caplog.at_level(logging.WARNING):
        asyncio.run(serving(service, 0.05, control))
    assert events.named("cycle_failed") == [("cycle_failed", "RuntimeError: the bot adapter broke")]
    names = [c[0] for c in events.calls]
    assert names[:3] == ["cycle_done", "cycle_failed", "cycle_done"]
    # Call 1 left nothing; calls 0, 2, 3... are stored.
    done = service.cycles
    assert stored(log) == [key(r) for n in [0, *range(2, done + 1)] for r in batch(n)]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_stop_while_results_are_being_appended_neither_repeats_nor_loses_any(log: ProbeLog) -> None:
    # The only cycle returns 0a and 0b at once; appending 0a hangs (a slow database) until 0.3 s after stop is set.
    # The cycle is cancelled while its append runs in a worker thread; serve then flushes what waits, once more.
    # The log must end with 0a and 0b, each once.
    flaky = FlakyLog(log)
    flaky.gate = gate = threading.Event()
    service = ProbeService(FakeCycles(), flaky, None, Events())  # type: ignore[arg-type]

    async def control(stop: asyncio.Event) -> None:
        await until(flaky.entered.is_set)
        stop.set()
        threading.Timer(0.3, gate.set).start()

    asyncio.run(serving(service, 60, control))
    assert stored(log) == [key(r) for r in batch(0)]
    assert service.pending == 0


def test_a_result_the_log_refuses_does_not_block_the_ones_after_it(log: ProbeLog) -> None:
    # Cycle 0's `a` cannot be logged (an unknown failed_check: ProbeLog.append raises InputError, and will every
    # time). The results after it must still reach the log, and the refusal must be told.
    bad = result("a", 0, False, check="no-such-check")
    cycles = FakeCycles(script={0: [bad, result("b", 1)]})
    events = Events()
    service = ProbeService(cycles, log, None, events)

    async def control(stop: asyncio.Event) -> None:
        await until(lambda: cycles.calls >= 3)
        await asyncio.sleep(0.1)
        stop.set()

    asyncio.run(serving(service, 0.05, control))
    assert stored(log)[:3] == [key(r) for r in [result("b", 1), *batch(1)]]
    assert any(c[0] in ("cycle_failed", "log_failed") for c in events.calls)


def test_after_each_cycle_the_windows_uptime_is_published(log: ProbeLog) -> None:
    metrics, events = ProbeMetrics(TARGET), Events()
    window = f"{T0.isoformat()}/{(T0 + timedelta(minutes=5)).isoformat()}"
    cycles = FakeCycles(script={1: batch(1, ok=False)})
    service = ProbeService(cycles, log, metrics, events, window=window)
    for _ in range(3):
        asyncio.run(service.cycle())
    # a: ok at 0 s, failed at 60 s, ok at 120 s; b the same one second later; each holds 185 s. Down from a's failure
    # (60 s) until b's recovery (121 s): 61 s; up the other 239 s of the 300 s window; one incident, first failure a.
    reports = [c[1] for c in events.named("uptime")]
    assert len(reports) == 3
    last = reports[-1]
    assert (last.up_s, last.down_s, last.unknown_s) == (pytest.approx(239), pytest.approx(61), pytest.approx(0))
    (incident,) = last.incidents
    assert (incident.start, incident.end, incident.probe) == (
        T0 + timedelta(seconds=60),
        T0 + timedelta(seconds=121),
        "a",
    )
    assert sample(metrics, "harness_uptime_ratio", window=window) == pytest.approx(239 / 300)
    assert sample(metrics, "harness_incidents", window=window) == 1
    assert sample(metrics, "harness_incident_open") == 0
    # After the failing cycle, nothing newer stood: the failed results held until 60 + 185 s, then unknown time.
    assert reports[1].incidents[0].end_reason == "probes stopped"
    assert reports[1].incidents[0].end == T0 + timedelta(seconds=246)


def test_no_uptime_while_the_log_is_down(log: ProbeLog) -> None:
    flaky = FlakyLog(log)
    flaky.down = True
    events = Events()
    service = ProbeService(FakeCycles(), flaky, None, events, window="1h")  # type: ignore[arg-type]
    asyncio.run(service.cycle())
    assert events.named("uptime") == [] and len(events.named("log_failed")) == 1
