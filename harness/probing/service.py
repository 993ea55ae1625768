"""The probe service: runs the probe set against a bot on a schedule, appends every result to the probe log, keeps
the Prometheus metrics current and tells the console; long-lived, it stops cleanly when `stop` is set (SIGTERM,
Ctrl-C) and survives the bot being down, which is what it measures.

Scheduling is APScheduler's (an interval trigger with jitter; `max_instances=1` and `coalesce=True`, so a cycle that
runs long is never overlapped by the next and missed runs are not made up in a burst). The probe log may be down
too: results that could not be appended wait in memory (at most `max_pending`, oldest dropped first with a
warning) and are appended, in order, at the next cycle; the metrics never wait for the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from harness.errors import BotRefused, InputError, ProbeLogError
from harness.records.probe_log import ProbeLog, ProbeResult
from harness.scoring.uptime import UptimeReport, parse_window, uptime
from harness.sinks.probe_metrics import ProbeMetrics


class ProbeEvents(Protocol):
    """What the service tells whoever watches it (the console of `harness probe`)."""

    def cycle_done(self, results: list[ProbeResult]) -> None:
        """Every probe of one cycle finished; `results` are appended (or pending, see `log_failed`)."""

    def log_failed(self, error: str, pending: int, dropped: int) -> None:
        """The probe log refused an append; `pending` results wait in memory, `dropped` were lost to the cap."""

    def log_recovered(self, appended: int) -> None:
        """The probe log accepted the results that were waiting."""

    def cycle_failed(self, error: str) -> None:
        """A cycle raised (a harness fault); the schedule goes on."""

    def uptime(self, report: UptimeReport) -> None:
        """`uptime.v1` of the service's window after a cycle (not called while the probe log is down)."""


class QuietProbeEvents:
    def cycle_done(self, results: list[ProbeResult]) -> None: ...

    def log_failed(self, error: str, pending: int, dropped: int) -> None: ...

    def log_recovered(self, appended: int) -> None: ...

    def cycle_failed(self, error: str) -> None: ...

    def uptime(self, report: UptimeReport) -> None: ...


@dataclass
class ProbeService:
    """One target's probes: `run_cycle` runs the whole probe set once (harness.sources.probes.run_cycle, bound to
    the bot and the set) and returns the counted results; the service stores and publishes them."""

    run_cycle: Callable[[], Awaitable[list[ProbeResult]]]
    log: ProbeLog
    metrics: ProbeMetrics | None = None
    events: ProbeEvents = field(default_factory=QuietProbeEvents)
    window: str | None = None
    """When set (`24h`, `7d`, as harness.scoring.uptime.parse_window reads it), `uptime.v1` of that window up to now
    is computed from the probe log after every cycle and published (metrics and `events.uptime`)."""
    max_pending: int = 10_000
    """Results kept in memory while the probe log is down; beyond it the oldest are dropped (and counted)."""
    cycles: int = 0
    """Cycles completed since the service started."""
    _pending: deque[ProbeResult] = field(default_factory=deque, init=False, repr=False)
    _dropped: int = field(default=0, init=False, repr=False)
    _log_down: bool = field(default=False, init=False, repr=False)
    _flushing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    """One flush at a time: a cycle cancelled while its flush runs in a worker thread leaves that thread running,
    and serve's last flush must wait for it (else both append the same result and pop one never appended)."""

    async def cycle(self) -> list[ProbeResult]:
        """Run every probe once, publish the results to the metrics at once and append them to the probe log
        (with any results still waiting from a log outage first, so the log stays in time order)."""
        results = await self.run_cycle()
        if self.cycles == 0 and results and all(r.failed_check == "refused" for r in results):
            # The bot refused the harness itself (token, URL): the monitoring's fault, not downtime customers saw.
            raise BotRefused(
                f"the bot refused every probe of the first cycle ({results[0].detail}); nothing was stored: check "
                "the token (the variable bot.token_env names, or --token) and the bot's URL"
            )
        for result in results:
            if self.metrics is not None:
                self.metrics.record(result)
            self._pending.append(result)
        await asyncio.to_thread(self._flush)
        self.cycles += 1
        self.events.cycle_done(results)
        if self.window is not None and results and not self._log_down:
            report = await asyncio.to_thread(self._uptime, results[0].target, self.window)
            if report is not None:
                if self.metrics is not None:
                    self.metrics.record_uptime(report, self.window)
                self.events.uptime(report)
        return results

    def _uptime(self, target: str, window: str) -> UptimeReport | None:
        start, end = parse_window(window, datetime.now(UTC))
        try:
            return uptime(self.log.read(target, start, end), start, end)
        except ProbeLogError as exc:
            self.events.log_failed(str(exc), len(self._pending), self._dropped)
            return None

    @property
    def pending(self) -> int:
        """Results waiting for the probe log."""
        return len(self._pending)

    def _flush(self) -> None:
        with self._flushing:
            appended = 0
            try:
                while self._pending:
                    result = self._pending[0]
                    try:
                        self.log.append(result)
                    except InputError as exc:  # this result can never be logged: drop it, keep the others coming
                        self.events.cycle_failed(f"probe result dropped, the probe log refuses it: {exc}")
                    else:
                        appended += 1
                    self._pending.popleft()
            except ProbeLogError as exc:
                self._log_down = True
                while len(self._pending) > self.max_pending:  # cap only what the log could not take
                    self._pending.popleft()
                    self._dropped += 1
                self.events.log_failed(str(exc), len(self._pending), self._dropped)
                return
            if self._log_down:
                self._log_down = False
                self.events.log_recovered(appended)

    async def serve(self, interval_s: float, jitter_s: float, stop: asyncio.Event) -> None:
        """Run a cycle now and then every `interval_s` seconds (plus or minus up to `jitter_s`) until `stop` is set.

        A cycle in flight when `stop` is set is cancelled and leaves no results (a half-run probe says nothing about
        the bot; a cycle takes seconds); results waiting for the probe log get one last try. A cycle that raises
        (a fault of the harness, not of the bot: the bot's faults are results) is reported and the schedule goes
        on. Raises BotRefused when the first cycle's every probe was refused (a wrong token or URL: stopping beats
        recording the monitoring's own fault as the bot's downtime)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        running: set[asyncio.Task[list[ProbeResult]]] = set()
        fatal: list[BotRefused] = []

        async def job() -> None:
            task = asyncio.current_task()
            assert task is not None
            running.add(task)  # type: ignore[arg-type]
            try:
                await self.cycle()
            except asyncio.CancelledError:
                return  # stopped mid-cycle on purpose (below); nothing to report
            except BotRefused as exc:
                fatal.append(exc)
                stop.set()
            except Exception as exc:  # noqa: BLE001 - keep probing; the console says what went wrong
                self.events.cycle_failed(f"{type(exc).__name__}: {exc}")
            finally:
                running.discard(task)  # type: ignore[arg-type]

        # APScheduler logs a cycle it skipped because the previous one still ran (a slow bot) as a warning on every
        # tick; the console's cycle lines already show the slow cycle.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
        scheduler = AsyncIOScheduler()
        trigger = IntervalTrigger(seconds=interval_s, jitter=jitter_s or None)
        scheduler.add_job(
            job, trigger, next_run_time=datetime.now(UTC), max_instances=1, coalesce=True, misfire_grace_time=None
        )
        scheduler.start()
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            for task in list(running):
                task.cancel()
            for task in list(running):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(self._flush)
        if fatal:
            raise fatal[0]
