"""`uptime.v1`: the time-weighted share of a window in which a bot was up, as its synthetic probes saw it.

COPC's "system uptime" is the share of time the digital-assisted system is fully functional from the customer's
point of view (../shared/kpis.md). The harness observes it with probe conversations (harness.records.probe_log):

- Each result of probe p stands from its `started_at` until the next result of p, and at most until its
  `holds_until`. A probe whose result expired drops out (a probe removed from the set stops counting).
- At time s the bot is **down** when any probe's standing result failed, **up** when at least one probe has a
  standing result and every standing result passed, **unknown** when no probe has one (the prober stopped, or
  before its first result).
- `uptime.v1` = up time / (up time + down time) in the window. Unknown time is reported, never counted as up or
  down (a prober that stops must not make a bot look up, nor down); None when no time in the window is known.
- Incidents are the maximal down periods, clipped to the window. One ends when the bot is up again
  (`recovered`), when every result expired (`probes stopped`), or is still down at the window's end (`ongoing`).
  The failing result that opened it (the earliest-started one standing when it began) names its probe and check.
- Bounds (the probe spacing): a change from up to down happened after the last result showing the bot up and by
  the first showing it down, and the reverse at recovery. The lower bound puts every down change at its earliest
  moment (right after the result before the failing one) and every recovery at its latest (the passing result);
  the upper bound the reverse, so a single failed result between two passes may be a blip of zero length. Only
  changes between two counted results of one probe move; unknown time stays excluded from both.

Results whose standing time lies entirely outside the window are ignored (they neither count nor name an
incident), so the report is the same whether it is given the whole log or `ProbeLog.read(target, start, end)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from harness.errors import InputError
from harness.records.probe_log import ProbeResult

if TYPE_CHECKING:
    from harness.scoring.metrics.intervals import Interval

NAME = "uptime.v1"
METHOD = "probe spacing bounds"
"""The interval method of `UptimeReport.bounds`: not a confidence interval, the range the probe spacing allows."""
END_REASONS = ("recovered", "probes stopped", "ongoing")


@dataclass(frozen=True, slots=True)
class Incident:
    """One maximal period in which the bot was down, clipped to the report's window."""

    start: datetime
    """When the bot went down (the failing result's `started_at`), or the window's start when already down then."""
    end: datetime | None
    """When it stopped being down; None when still down at the window's end (`ongoing`)."""
    duration_s: float
    """Seconds down within the window: `end - start`, or `window end - start` when ongoing."""
    probe: str
    """The probe of the first failing result (the earliest-started one standing when the incident began)."""
    check: str | None
    """That result's `failed_check` (one of harness.records.probe_log.FAILED_CHECKS)."""
    detail: str | None
    """That result's `detail`, for people."""
    started_before_window: bool
    """True when the bot was already down at the window's start (the first failing result started before it)."""
    end_reason: str
    """`recovered` (the bot was up again), `probes stopped` (every result expired: unknown follows) or `ongoing`."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 times (UTC), seconds."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end is not None else None,
            "duration_s": self.duration_s,
            "probe": self.probe,
            "check": self.check,
            "detail": self.detail,
            "started_before_window": self.started_before_window,
            "end_reason": self.end_reason,
        }


@dataclass(frozen=True, slots=True)
class UptimeReport:
    """`uptime.v1` of one target over the window [start, end) (see the module docstring for the definition)."""

    start: datetime
    end: datetime
    value: float | None
    """up_s / (up_s + down_s), in [0, 1]; None when no time of the window is known."""
    up_s: float
    down_s: float
    unknown_s: float
    """Seconds of the window with no standing result; up_s + down_s + unknown_s is the window's length."""
    bounds: Interval | None
    """(low, high): the uptime with every change at its earliest / latest moment the probe spacing allows (see the
    module docstring); contains `value`; None when `value` is."""
    results: int
    """Results counted: those standing for some time inside the window."""
    probes: tuple[str, ...]
    """The probes of the counted results, sorted."""
    incidents: tuple[Incident, ...]
    """The down periods in time order; their durations add up to down_s."""
    name: str = NAME
    method: str = METHOD

    @property
    def window_s(self) -> float:
        """The window's length in seconds."""
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 times (UTC), seconds, the bounds as [low, high] (null when undefined)."""
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "value": self.value,
            "bounds": list(self.bounds) if self.bounds is not None else None,
            "method": self.method,
            "up_s": self.up_s,
            "down_s": self.down_s,
            "unknown_s": self.unknown_s,
            "results": self.results,
            "probes": list(self.probes),
            "incidents": [incident.as_dict() for incident in self.incidents],
        }


def render(report: UptimeReport) -> str:
    """The report as text for a terminal: the value with its bounds, the time split, then one line per incident."""
    if report.value is None or report.bounds is None:
        value = "undefined (no probe result stands in the window)"
    else:
        low, high = report.bounds
        value = f"{report.value:.4%} ({report.method}: {low:.4%} .. {high:.4%})"
    lines = [
        f"{report.name} {report.start.isoformat()} .. {report.end.isoformat()}: {value}",
        f"  up {_duration(report.up_s)}, down {_duration(report.down_s)}, unknown {_duration(report.unknown_s)}; "
        f"{report.results} results of {len(report.probes)} probes",
        f"  incidents: {len(report.incidents)}",
    ]
    for incident in report.incidents:
        end = incident.end.isoformat() if incident.end is not None else "..."
        before = " (started before the window)" if incident.started_before_window else ""
        detail = f": {incident.detail}" if incident.detail else ""
        lines.append(
            f"  - {incident.start.isoformat()} .. {end} {_duration(incident.duration_s)} "
            f"{incident.end_reason}{before}: {incident.probe} {incident.check or '?'}{detail}"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@dataclass(frozen=True, slots=True)
class _Standing:
    """One counted result and the part of the window it stands for, with its state under the point estimate and
    the two bounds."""

    result: ProbeResult
    begin: datetime
    stop: datetime
    down: bool
    low_down: bool
    high_down: bool


def uptime(results: Sequence[ProbeResult], start: datetime, end: datetime) -> UptimeReport:
    """`uptime.v1` of one target over [start, end) from its probe results (any order; see the module docstring).

    `results` are ProbeResults of ONE target; those standing before `start` decide the state at `start`, those
    standing entirely outside the window are ignored. Durations are exact (microseconds) and reported in seconds.

    Raises InputError when results of several targets are mixed, `start` or `end` or a result's time is naive
    (no time zone), `start` is not before `end`, or a result's `holds_until` is before its `started_at`."""
    _check(results, start, end)
    standings = _standings(results, start, end)
    # Sweep over the window: at each time where a result starts or stops standing, the counts change.
    changes: dict[datetime, list[int]] = {start: [0, 0, 0, 0], end: [0, 0, 0, 0]}
    for s in standings:
        for at, sign in ((s.begin, 1), (s.stop, -1)):
            delta = changes.setdefault(at, [0, 0, 0, 0])
            delta[0] += sign
            delta[1] += sign * s.down
            delta[2] += sign * s.low_down
            delta[3] += sign * s.high_down
    times = sorted(changes)
    zero = timedelta(0)
    up = down = unknown = low_up = high_up = zero
    segments: list[tuple[datetime, datetime, str]] = []
    standing = failing = low_failing = high_failing = 0
    for begin, stop in zip(times, times[1:], strict=False):
        delta = changes[begin]
        standing, failing = standing + delta[0], failing + delta[1]
        low_failing, high_failing = low_failing + delta[2], high_failing + delta[3]
        length = stop - begin
        if standing == 0:
            state = "unknown"
            unknown += length
        else:
            state = "down" if failing else "up"
            if failing:
                down += length
            else:
                up += length
            if not low_failing:
                low_up += length
            if not high_failing:
                high_up += length
        if segments and segments[-1][2] == state:
            segments[-1] = (segments[-1][0], stop, state)
        else:
            segments.append((begin, stop, state))
    known = up + down
    value = up / known if known else None
    bounds = (low_up / known, high_up / known) if known else None
    counted = sorted({s.result.probe for s in standings})
    return UptimeReport(
        start=start,
        end=end,
        value=value,
        up_s=up.total_seconds(),
        down_s=down.total_seconds(),
        unknown_s=unknown.total_seconds(),
        bounds=bounds,
        results=len(standings),
        probes=tuple(counted),
        incidents=tuple(_incidents(segments, standings, start)),
    )


def _check(results: Sequence[ProbeResult], start: datetime, end: datetime) -> None:
    problems = []
    for label, moment in (("start", start), ("end", end)):
        if not _aware(moment):
            problems.append(f"window {label} {moment.isoformat()}: no time zone; give an aware UTC datetime")
    if not problems and start >= end:
        problems.append(f"window {start.isoformat()} .. {end.isoformat()}: the start must be before the end")
    targets = sorted({r.target for r in results})
    if len(targets) > 1:
        problems.append(f"results of {len(targets)} targets ({', '.join(targets)}): give the results of one target")
    for r in results:
        if not (_aware(r.started_at) and _aware(r.holds_until)):
            problems.append(f"result {_where(r)}: started_at or holds_until has no time zone; store aware UTC times")
        elif r.holds_until < r.started_at:
            problems.append(f"result {_where(r)}: holds_until {r.holds_until.isoformat()} is before its started_at")
    if problems:
        raise InputError(f"cannot compute {NAME}", problems)


def _aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


def _where(r: ProbeResult) -> str:
    row = f" (id {r.id})" if r.id is not None else ""
    return f"{r.target}/{r.probe} at {r.started_at.isoformat()}{row}"


def _order(r: ProbeResult) -> tuple[Any, ...]:
    # Deterministic whatever the input order, even for two results of one probe started at the same time.
    return (r.started_at, r.finished_at, r.id is None, r.id or 0, r.ok, r.prober, r.attempts)


def _standings(results: Iterable[ProbeResult], start: datetime, end: datetime) -> list[_Standing]:
    """The counted results with the part of [start, end) each stands for, and their state in the point estimate
    and the bounds: the lower bound also counts a passing result down when the probe's next counted result failed
    (the change may have come right after it); the upper bound counts a failing result up when the probe's next
    counted result passed (the recovery may have come right after it)."""
    by_probe: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_probe.setdefault(r.probe, []).append(r)
    standings: list[_Standing] = []
    for probe_results in by_probe.values():
        probe_results.sort(key=_order)
        kept: list[tuple[ProbeResult, datetime, datetime]] = []
        for i, r in enumerate(probe_results):
            stop = r.holds_until
            if i + 1 < len(probe_results):
                stop = min(stop, probe_results[i + 1].started_at)
            begin, stop = max(r.started_at, start), min(stop, end)
            if begin < stop:
                kept.append((r, begin, stop))
        for i, (r, begin, stop) in enumerate(kept):
            after = kept[i + 1][0] if i + 1 < len(kept) else None
            next_failed = after is not None and not after.ok
            standings.append(
                _Standing(
                    result=r,
                    begin=begin,
                    stop=stop,
                    down=not r.ok,
                    low_down=not r.ok or next_failed,
                    high_down=not r.ok and (after is None or next_failed),
                )
            )
    return standings


def _incidents(
    segments: list[tuple[datetime, datetime, str]], standings: list[_Standing], start: datetime
) -> list[Incident]:
    # A down period begins where a failing result begins to stand (or at the window's start): the results that
    # opened it are the failing ones beginning there.
    opening: dict[datetime, list[ProbeResult]] = {}
    for s in standings:
        if s.down:
            opening.setdefault(s.begin, []).append(s.result)
    incidents = []
    for i, (begin, stop, state) in enumerate(segments):
        if state != "down":
            continue
        first = min(opening[begin], key=lambda r: (r.started_at, r.probe, *_order(r)))
        following = segments[i + 1][2] if i + 1 < len(segments) else None
        reason = {"up": "recovered", "unknown": "probes stopped", None: "ongoing"}[following]
        incidents.append(
            Incident(
                start=begin,
                end=stop if following is not None else None,
                duration_s=(stop - begin).total_seconds(),
                probe=first.probe,
                check=first.failed_check,
                detail=first.detail,
                started_before_window=begin == start and first.started_at < start,
                end_reason=reason,
            )
        )
    return incidents


_SPAN = re.compile(r"^(\d+)([mhdw])$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_HOW = (
    "give <n>m, <n>h, <n>d or <n>w (the last n minutes, hours, days or weeks up to now, for example 7d), "
    "an ISO range START/END (2026-11-01T00:00/2026-11-08T00:00; UTC unless an offset is given) "
    "or whole UTC days YYYY-MM-DD..YYYY-MM-DD"
)


def parse_window(text: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """See `_parse_window`; a window beyond the calendar's range (`99999999d`, year 9999 with an offset) is
    InputError too, not OverflowError."""
    try:
        return _parse_window(text, now)
    except (OverflowError, ValueError) as exc:
        raise InputError("bad window", [f"--window {text!r}: out of the calendar's range ({exc}); {_HOW}"]) from None


def _parse_window(text: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window [start, end) of `--window`, as aware UTC datetimes.

    - `<n>m`, `<n>h`, `<n>d`, `<n>w` (n >= 1): the last n minutes, hours, days (24 h) or weeks up to `now` (a
      rolling window: `7d` is the 168 hours before now, not seven calendar days as in `harness logs`).
    - `START/END`: ISO 8601 datetimes (or dates); a time without an offset is UTC.
    - `YYYY-MM-DD..YYYY-MM-DD` or `YYYY-MM-DD`: whole UTC days, the last one included, as `harness logs` reads
      them (harness.records.production.parse_window); an open end (`2026-11-01..`) ends at `now`.

    `now` defaults to the current time and must be aware. Raises InputError (with the accepted forms) otherwise."""
    now = datetime.now(UTC) if now is None else now
    if not _aware(now):
        raise InputError("bad window", [f"now {now.isoformat()}: no time zone; give an aware datetime"])
    now = now.astimezone(UTC)
    given = (text or "").strip()
    span = _SPAN.match(given)
    if span:
        n = int(span.group(1))
        if n < 1:
            raise InputError("bad window", [f"--window {given!r}: give at least 1, for example 7d"])
        return now - n * _UNITS[span.group(2)], now
    if "/" in given:
        first, _, last = given.partition("/")
        start, end = _instant(first, given), _instant(last, given)
    elif ".." in given or _DAY.match(given):
        start, end = _days(given, now)
    else:
        raise InputError("bad window", [f"--window {given!r}: {_HOW}"])
    if start >= end:
        raise InputError("bad window", [f"--window {given!r}: the start must be before the end"])
    return start, end


def _instant(text: str, window: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            "bad window", [f"--window {window!r}: {text.strip()!r} is not an ISO datetime; {_HOW}"]
        ) from None
    return moment.replace(tzinfo=UTC) if not _aware(moment) else moment.astimezone(UTC)


def _days(text: str, now: datetime) -> tuple[datetime, datetime]:
    from harness.records.production import parse_window as parse_days

    try:
        days = parse_days(text)
    except InputError as error:
        raise InputError("bad window", [*error.problems, f"--window {text!r}: {_HOW}"]) from None
    if days.first is None:
        raise InputError("bad window", [f"--window {text!r}: give the first day (YYYY-MM-DD..YYYY-MM-DD)"])
    start = datetime(days.first.year, days.first.month, days.first.day, tzinfo=UTC)
    if days.last is None:
        return start, now
    end = datetime(days.last.year, days.last.month, days.last.day, tzinfo=UTC) + timedelta(days=1)
    return start, end
