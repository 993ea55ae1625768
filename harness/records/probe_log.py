"""The probe log: every synthetic probe conversation's result, appended to a database and never changed.

A probe is one conversation of the probe set (an eval-set file) sent to a bot in a fresh conversation; its result
is what `uptime.v1` (harness.scoring.uptime) and the Prometheus metrics (harness.sinks.probe_metrics) read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
