"""`uptime.v1` on hand-made probe logs whose answers are worked out here, its registry entry, `--window` parsing,
and properties checked against a second-by-second reading of the definition.

Times are minutes after T0 unless said otherwise; "stands [a, b)" is the time a result holds for (until the
probe's next result, at most until holds_until = started_at + stale)."""

from __future__ import annotations

import dataclasses
import random
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from records_factory import worked_example

from harness.errors import InputError
from harness.records.probe_log import ProbeResult
from harness.scoring.metrics import REGISTRY, ScoringOptions, UndefinedMetricWarning, build_core, compute_all
from harness.scoring.metrics import registry as metric_registry
from harness.scoring.uptime import Incident, UptimeReport, parse_window, render, uptime

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
TARGET = "bankbot"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def probe(
    name: str,
    minute: float,
    ok: bool = True,
    *,
    check: str = "status",
    detail: str | None = None,
    stale: float = 3,
    attempts: int = 1,
    target: str = TARGET,
    first_failure: str | None = None,
) -> ProbeResult:
    """A result of probe `name` started at `minute`, standing at most `stale` minutes."""
    started = at(minute)
    return ProbeResult(
        target=target,
        probe=name,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        ok=ok,
        attempts=attempts,
        latency_ms=150.0 if ok else None,
        holds_until=started + timedelta(minutes=stale),
        failed_check=None if ok else check,
        detail=None if ok else (detail or f"{check} at minute {minute}"),
        first_failure=first_failure,
    )


def every_minute(name: str, minutes: range, *, offset: float = 0, failing: dict[float, tuple[str, str]] | None = None):
    """Results of `name` at each minute (+ offset); `failing` maps a minute to (check, detail) of a failed one."""
    failing = failing or {}
    out = []
    for m in minutes:
        minute = m + offset
        if minute in failing:
            check, detail = failing[minute]
            out.append(probe(name, minute, False, check=check, detail=detail))
        else:
            out.append(probe(name, minute))
    return out


def test_all_up() -> None:
    # One result a minute at 0..9, each standing a minute (the next one comes): the bot is up all 10 minutes.
    report = uptime(every_minute("balance", range(10)), at(0), at(10))
    assert report.name == "uptime.v1" and report.method == "probe spacing bounds"
    assert (report.value, report.up_s, report.down_s, report.unknown_s) == (1.0, 600.0, 0.0, 0.0)
    assert report.bounds == (1.0, 1.0)
    assert report.incidents == () and report.results == 10 and report.probes == ("balance",)


def two_probes_one_incident() -> list[ProbeResult]:
    # "transfer" at every whole minute fails at 4 (status) and 5 (status); "balance" at every half minute fails at
    # 4.5 (reply). Named so that alphabetical order would pick the wrong one: "transfer" failed first.
    transfer = every_minute(
        "transfer", range(10), failing={4: ("status", "turn 1 timed out"), 5: ("status", "turn 1 timed out again")}
    )
    balance = every_minute("balance", range(10), offset=0.5, failing={4.5: ("reply", "turn 2: no balance shown")})
    return transfer + balance


def test_one_incident_in_the_middle_named_by_its_first_failing_result() -> None:
    report = uptime(two_probes_one_incident(), at(0), at(10))
    # Down while any standing result failed: transfer [4, 6) (failed at 4 and 5, passed at 6), balance [4.5, 5.5):
    # together [4, 6) = 120 s. Up the other 480 s (at [0, 0.5) only transfer stands, and it passed). 480 / 600.
    assert (report.up_s, report.down_s, report.unknown_s) == (480.0, 120.0, 0.0)
    assert report.value == pytest.approx(0.8)
    assert report.incidents == (
        Incident(
            start=at(4),
            end=at(6),
            duration_s=120.0,
            probe="transfer",
            check="status",
            detail="turn 1 timed out",
            started_before_window=False,
            end_reason="recovered",
        ),
    )
    # Lower bound: each down change as early as allowed: transfer's pass at 3 and balance's at 3.5 may already
    # have been down, so down is [3, 6) = 180 s: 420 / 600 = 0.7. Upper: each recovery as early as allowed:
    # transfer down only between its two failures [4, 5), balance's single failure a blip of zero length: 60 s
    # down, 540 / 600 = 0.9.
    assert report.bounds == pytest.approx((0.7, 0.9))
    assert report.results == 20 and report.probes == ("balance", "transfer")


def test_two_probes_where_only_one_fails() -> None:
    results = every_minute("transfer", range(10)) + every_minute(
        "balance", range(10), offset=0.5, failing={4.5: ("reply", "turn 2: no balance shown")}
    )
    report = uptime(results, at(0), at(10))
    # balance's failure at 4.5 stands until its pass at 5.5: 60 s down of 600, 540 / 600 = 0.9, although
    # transfer passed all along (down when ANY probe fails).
    assert (report.up_s, report.down_s) == (540.0, 60.0)
    assert report.value == pytest.approx(0.9)
    (incident,) = report.incidents
    assert (incident.start, incident.end, incident.probe, incident.check) == (at(4.5), at(5.5), "balance", "reply")
    # Lower: balance's pass at 3.5 may have been down too: [3.5, 5.5) = 120 s, 480 / 600. Upper: a blip, 1.0.
    assert report.bounds == pytest.approx((0.8, 1.0))


def test_a_retried_probe_counts_as_its_retry() -> None:
    results = [
        probe("balance", 0),
        # Failed once, passed on the retry: it counts as passed.
        probe("balance", 1, attempts=2, first_failure="status: turn 1 timed out"),
        # Failed twice: it counts as failed, on what the retry failed.
        probe("balance", 2, False, attempts=2, check="latency", detail="turn 1: 4.2 s > 3 s"),
        probe("balance", 3),
        probe("balance", 4),
    ]
    report = uptime(results, at(0), at(5))
    # Down only while the failure at 2 stands, [2, 3): 60 s of 300, 240 / 300 = 0.8.
    assert (report.up_s, report.down_s, report.value) == (240.0, 60.0, pytest.approx(0.8))
    (incident,) = report.incidents
    assert (incident.check, incident.detail, incident.end) == ("latency", "turn 1: 4.2 s > 3 s", at(3))
    # Lower: the pass at 1 may have been down too: 120 s down, 180 / 300 = 0.6. Upper: a blip, 1.0.
    assert report.bounds == pytest.approx((0.6, 1.0))


def test_a_window_starting_mid_incident_is_clipped_and_decided_by_the_result_standing_at_its_start() -> None:
    results = [
        probe("balance", -5, stale=60),
        probe("balance", -1.5, False, check="unreachable", detail="first", stale=60),
        probe("balance", -0.5, False, check="unreachable", detail="second", stale=60),
        probe("balance", 0.5, False, check="unreachable", detail="third", stale=60),
        probe("balance", 1.5, stale=60),
    ]
    report = uptime(results, at(0), at(10))
    # The failure at -0.5 stands [-0.5, 0.5): the bot is down at the window's start, and stays down until the pass
    # at 1.5: [0, 1.5) = 90 s. Up [1.5, 10) = 510 s (that pass stands 60 minutes). 510 / 600 = 0.85.
    assert (report.up_s, report.down_s, report.unknown_s) == (510.0, 90.0, 0.0)
    assert report.value == pytest.approx(0.85)
    # The results at -5 and -1.5 stand only before the window: ignored (not counted, not naming the incident).
    assert report.incidents == (Incident(at(0), at(1.5), 90.0, "balance", "unreachable", "second", True, "recovered"),)
    assert report.results == 3
    # Lower: no pass precedes a failure inside the window, so as the value, 0.85. Upper: down only between the
    # failures at -0.5 and 0.5, [0, 0.5) = 30 s: 570 / 600 = 0.95.
    assert report.bounds == pytest.approx((0.85, 0.95))
    # Given only the results standing in the window, the report is the same.
    assert uptime(results[2:], at(0), at(10)) == report


def test_probes_that_stop_arriving_leave_unknown_time_not_uptime() -> None:
    report = uptime(every_minute("balance", range(5)), at(0), at(10))
    # The last result (at 4) stands 3 minutes, to 7: up [0, 7) = 420 s, unknown [7, 10) = 180 s, uptime 1.0 (not
    # 0.7: the unknown time is not counted as down either).
    assert (report.up_s, report.down_s, report.unknown_s, report.value) == (420.0, 0.0, 180.0, 1.0)

    failing = every_minute("balance", range(5), failing={3: ("status", "503"), 4: ("status", "503 again")})
    report = uptime(failing, at(0), at(10))
    # Up [0, 3) = 180 s, down [3, 7) = 240 s (the failure at 4 expires at 7), unknown [7, 10) = 180 s: 180 / 420.
    assert (report.up_s, report.down_s, report.unknown_s) == (180.0, 240.0, 180.0)
    assert report.value == pytest.approx(3 / 7)
    assert report.incidents == (Incident(at(3), at(7), 240.0, "balance", "status", "503", False, "probes stopped"),)
    # Lower: the pass at 2 may have been down: 300 s down, 120 / 420. Upper: no pass after the failures, so no
    # recovery to move: 3 / 7.
    assert report.bounds == pytest.approx((2 / 7, 3 / 7))


def test_before_the_first_result_is_unknown() -> None:
    report = uptime([probe("balance", 2, stale=60)], at(0), at(10))
    # Unknown [0, 2) = 120 s, up [2, 10) = 480 s: uptime 1.0.
    assert (report.up_s, report.down_s, report.unknown_s, report.value) == (480.0, 0.0, 120.0, 1.0)
    assert report.bounds == (1.0, 1.0)

    # No result at all, or none standing in the window: nothing known, uptime undefined (None, not 0 or 1).
    for results in ([], [probe("balance", -10, False)], [probe("balance", 11)]):
        empty = uptime(results, at(0), at(10))
        assert (empty.value, empty.bounds, empty.unknown_s, empty.results, empty.probes) == (None, None, 600.0, 0, ())
        assert empty.incidents == ()


def test_an_incident_still_ongoing_at_the_window_end() -> None:
    results = [
        probe("balance", 0, stale=60),
        probe("balance", 8, False, check="outcome", detail="handed off a balance question", stale=60),
        # After the window: ignored, even as evidence of a recovery.
        probe("balance", 12, stale=60),
    ]
    report = uptime(results, at(0), at(10))
    # Up [0, 8) = 480 s, down [8, 10) = 120 s: 0.8.
    assert (report.up_s, report.down_s, report.value) == (480.0, 120.0, pytest.approx(0.8))
    assert report.incidents == (
        Incident(at(8), None, 120.0, "balance", "outcome", "handed off a balance question", False, "ongoing"),
    )
    # Lower: the pass at 0 may have been down right after it: all 600 s down, 0.0. Upper: no recovery in the
    # window to move: 0.8.
    assert report.bounds == pytest.approx((0.0, 0.8))
    assert report.results == 2


def test_results_out_of_order_give_the_same_report() -> None:
    results = two_probes_one_incident()
    expected = uptime(results, at(0), at(10))
    for seed in range(3):
        shuffled = results[:]
        random.Random(seed).shuffle(shuffled)
        assert uptime(shuffled, at(0), at(10)) == expected
    assert uptime(results[::-1], at(0), at(10)) == expected


def test_a_single_failed_result_between_two_passes_and_its_zero_length_blip() -> None:
    results = [
        probe("balance", 0, stale=60),
        probe("balance", 1, False, check="reply", detail="wrong balance", stale=60),
        probe("balance", 2, stale=60),
    ]
    report = uptime(results, at(0), at(3))
    # Value: down while the failure stands, [1, 2): 120 / 180 = 2/3.
    assert report.value == pytest.approx(2 / 3)
    assert report.incidents == (Incident(at(1), at(2), 60.0, "balance", "reply", "wrong balance", False, "recovered"),)
    # Lower: down as early as right after the pass at 0, recovered as late as the pass at 2: [0, 2) down, 60 / 180.
    # Upper: down at the failure's instant only, recovered right after it: a blip of zero length, 180 / 180.
    assert report.bounds == pytest.approx((1 / 3, 1.0))


def test_a_probe_removed_from_the_set_drops_out_when_its_result_expires() -> None:
    results = every_minute("balance", range(10)) + [
        probe("transfer", 0),
        probe("transfer", 1),
        probe("transfer", 2, False, check="reply", detail="no ticket number"),
    ]
    report = uptime(results, at(0), at(10))
    # transfer's failure at 2 stands until it expires at 5; then only balance stands, and passes: up again (not
    # unknown for the rest of the window). Down [2, 5) = 180 s, up 420 s: 0.7.
    assert (report.up_s, report.down_s, report.unknown_s) == (420.0, 180.0, 0.0)
    assert report.value == pytest.approx(0.7)
    assert report.incidents == (
        Incident(at(2), at(5), 180.0, "transfer", "reply", "no ticket number", False, "recovered"),
    )
    # Lower: transfer's pass at 1 may have been down: [1, 5) = 240 s, 360 / 600 = 0.6. Upper: no pass of transfer
    # follows, nothing moves: 0.7.
    assert report.bounds == pytest.approx((0.6, 0.7))


def test_a_later_result_that_expired_hides_an_earlier_one() -> None:
    # The result at -2 would hold 10 minutes, but the probe's next result (at -1, standing 1 minute after a change
    # of stale_after) replaces it at -1 and expires at 0: the window [0, 10) has no standing result.
    results = [probe("balance", -2, stale=10), probe("balance", -1, False, stale=1)]
    report = uptime(results, at(0), at(10))
    assert (report.value, report.unknown_s, report.results) == (None, 600.0, 0)


def test_bad_input_is_refused_with_what_and_how() -> None:
    mixed = [probe("balance", 0), probe("balance", 1, target="other-bot")]
    with pytest.raises(InputError, match=r"2 targets \(bankbot, other-bot\): give the results of one target"):
        uptime(mixed, at(0), at(10))
    with pytest.raises(InputError, match="window start .*no time zone; give an aware UTC datetime"):
        uptime([], at(0).replace(tzinfo=None), at(10))
    naive = dataclasses.replace(probe("balance", 0), started_at=T0.replace(tzinfo=None))
    with pytest.raises(InputError, match="result bankbot/balance at 2026-11-02T00:00:00: .*no time zone"):
        uptime([naive], at(0), at(10))
    with pytest.raises(InputError, match="the start must be before the end"):
        uptime([], at(10), at(10))
    backwards = probe("balance", 1, stale=-1)
    with pytest.raises(InputError, match="holds_until .* is before its started_at"):
        uptime([backwards], at(0), at(10))


NOW = datetime(2026, 11, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("30m", datetime(2026, 11, 8, 11, 30, tzinfo=UTC), NOW),
        ("24h", datetime(2026, 11, 7, 12, 0, tzinfo=UTC), NOW),
        ("7d", datetime(2026, 11, 1, 12, 0, tzinfo=UTC), NOW),
        (" 2w ", datetime(2026, 10, 25, 12, 0, tzinfo=UTC), NOW),
        ("2026-11-01T00:00/2026-11-08T00:00", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
        # An offset is honoured and turned into UTC: 01:00 at +01:00 is midnight UTC.
        (
            "2026-11-01T01:00+01:00/2026-11-02T00:00Z",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 11, 2, tzinfo=UTC),
        ),
        # Whole UTC days, as `harness logs` reads them: the last day included.
        ("2026-11-01..2026-11-07", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
        ("2026-11-05", datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)),
        ("2026-11-05..", datetime(2026, 11, 5, tzinfo=UTC), NOW),
    ],
)
def test_window_parsing(text: str, start: datetime, end: datetime) -> None:
    assert parse_window(text, NOW) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7x", "'7x': give <n>m, <n>h, <n>d or <n>w"),
        ("", "'': give <n>m"),
        ("0d", "give at least 1, for example 7d"),
        ("2026-11-08T00:00/2026-11-01T00:00", "the start must be before the end"),
        ("yesterday/today", "'yesterday' is not an ISO datetime"),
        ("..2026-11-07", "give the first day"),
        ("2026-11-07..2026-11-01", "the last day is before the first"),
        ("2026-13-01", "give <n>m"),
    ],
)
def test_bad_windows_say_how_to_fix(text: str, message: str) -> None:
    with pytest.raises(InputError, match="bad window") as error:
        parse_window(text, NOW)
    assert message in str(error.value)


def test_window_parsing_needs_an_aware_now_and_defaults_to_the_clock() -> None:
    with pytest.raises(InputError, match="no time zone"):
        parse_window("7d", NOW.replace(tzinfo=None))
    start, end = parse_window("1h")
    assert end.tzinfo is not None and end - start == timedelta(hours=1)
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=1)


def test_uptime_is_registered_but_never_computed_on_a_replay() -> None:
    spec = metric_registry.get("uptime.v1")
    assert (spec.higher_is_better, spec.value_range, spec.unit, spec.source) == (True, (0.0, 1.0), "ratio", "probes")
    assert "unknown" in spec.description and spec.superseded_by is None
    assert "uptime.v1" not in REGISTRY
    core = build_core(worked_example(), ScoringOptions(bootstrap_replicates=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        names = [r.name for r in compute_all(core, include_superseded=True)]
    assert "uptime.v1" not in names and "recognition_rate.v2" in names
    with pytest.raises(InputError, match="harness uptime"):
        spec(core)
    with pytest.raises(ValueError, match="registered twice"):
        metric_registry._add(spec)


def test_render_and_as_dict() -> None:
    report = uptime(two_probes_one_incident(), at(0), at(10))
    text = render(report)
    assert "uptime.v1 2026-11-02T00:00:00+00:00 .. 2026-11-02T00:10:00+00:00: 80.0000%" in text
    assert "(probe spacing bounds: 70.0000% .. 90.0000%)" in text
    assert "up 8m00s, down 2m00s, unknown 0m00s; 20 results of 2 probes" in text
    assert "2026-11-02T00:04:00+00:00 .. 2026-11-02T00:06:00+00:00 2m00s recovered: transfer status" in text
    data = report.as_dict()
    assert data["incidents"][0]["start"] == "2026-11-02T00:04:00+00:00" and data["incidents"][0]["duration_s"] == 120
    assert data["bounds"] == pytest.approx([0.7, 0.9]) and data["probes"] == ["balance", "transfer"]
    assert "undefined" in render(uptime([], at(0), at(10)))
    assert uptime([], at(0), at(10)).as_dict()["bounds"] is None


# Property tests: integer-second logs, read second by second straight from the definition (a second reading,
# independent of the sweep in harness.scoring.uptime).

WINDOW_END = 900


@st.composite
def probe_logs(draw: st.DrawFn) -> list[ProbeResult]:
    results = []
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        starts = draw(st.lists(st.integers(-300, WINDOW_END + 100), max_size=12, unique=True))
        # One stale_after for the probe (as one prober writes them), or one per result (configuration changes).
        fixed = draw(st.one_of(st.none(), st.integers(1, 400)))
        for s in starts:
            ok = draw(st.booleans())
            stale = fixed if fixed is not None else draw(st.integers(1, 400))
            started = T0 + timedelta(seconds=s)
            results.append(
                ProbeResult(
                    target=TARGET,
                    probe=name,
                    started_at=started,
                    finished_at=started + timedelta(seconds=1),
                    ok=ok,
                    attempts=1,
                    latency_ms=None,
                    holds_until=started + timedelta(seconds=stale),
                    failed_check=None if ok else draw(st.sampled_from(["status", "reply", "latency"])),
                    detail=None if ok else f"{name}@{s}",
                )
            )
    return results


def second_by_second(results: list[ProbeResult], end: int) -> list[tuple[str, str, str]]:
    """(state, lower-bound state, upper-bound state) of each second [k, k+1) of [0, end)."""
    by_probe: dict[str, list[ProbeResult]] = {}
    for r in sorted(results, key=lambda r: r.started_at):
        by_probe.setdefault(r.probe, []).append(r)
    states = []
    for k in range(end):
        moment = T0 + timedelta(seconds=k)
        standing = []
        for rs in by_probe.values():
            before = [i for i, r in enumerate(rs) if r.started_at <= moment]
            if not before or rs[before[-1]].holds_until <= moment:
                continue
            r = rs[before[-1]]
            after = rs[before[-1] + 1] if before[-1] + 1 < len(rs) else None
            # The next result counts as evidence of a change only when it starts inside the window.
            nxt = after if after is not None and after.started_at < T0 + timedelta(seconds=end) else None
            standing.append(
                (not r.ok, not r.ok or (nxt is not None and not nxt.ok), not r.ok and (nxt is None or not nxt.ok))
            )
        if not standing:
            states.append(("unknown", "unknown", "unknown"))
        else:
            down = ["down" if any(s[i] for s in standing) else "up" for i in range(3)]
            states.append((down[0], down[1], down[2]))
    return states


@settings(max_examples=150, deadline=None)
@given(probe_logs(), st.integers(1, WINDOW_END))
def test_properties_against_a_second_by_second_reading(results: list[ProbeResult], end_s: int) -> None:
    start, end = T0, T0 + timedelta(seconds=end_s)
    report = uptime(results, start, end)
    states = second_by_second(results, end_s)
    point = [s[0] for s in states]
    assert report.up_s + report.down_s + report.unknown_s == pytest.approx(end_s)
    assert (report.up_s, report.down_s, report.unknown_s) == (
        point.count("up"),
        point.count("down"),
        point.count("unknown"),
    )
    known = point.count("up") + point.count("down")
    if not known:
        assert report.value is None and report.bounds is None
    else:
        assert report.value == pytest.approx(point.count("up") / known)
        assert report.bounds is not None
        low, high = report.bounds
        assert low == pytest.approx([s[1] for s in states].count("up") / known)
        assert high == pytest.approx([s[2] for s in states].count("up") / known)
        assert low <= report.value <= high
    # Incidents: the maximal runs of down seconds, adding up to down_s, ended by what follows them.
    runs = []
    for k, state in enumerate(point):
        if state == "down" and (k == 0 or point[k - 1] != "down"):
            runs.append([k, k + 1])
        elif state == "down":
            runs[-1][1] = k + 1
    assert [((i.start - T0).total_seconds(), i.duration_s) for i in report.incidents] == [(a, b - a) for a, b in runs]
    assert sum(i.duration_s for i in report.incidents) == pytest.approx(report.down_s)
    for incident, (_, b) in zip(report.incidents, runs, strict=True):
        following = point[b] if b < end_s else None
        assert incident.end_reason == {"up": "recovered", "unknown": "probes stopped", None: "ongoing"}[following]
        assert (incident.end is None) == (following is None)
    # Order does not matter, and what ProbeLog.read would return (started before the end, holding past the start)
    # gives the same report as the whole log, as long as a later result of a probe never expires before an earlier
    # one (one prober with one stale_after; see test_a_later_result_that_expired_hides_an_earlier_one).
    assert uptime(results[::-1], start, end) == report
    readable = [r for r in results if r.started_at < end and r.holds_until > start]
    by_start = sorted(results, key=lambda r: (r.probe, r.started_at))
    monotone = all(
        a.holds_until <= b.holds_until for a, b in zip(by_start, by_start[1:], strict=False) if a.probe == b.probe
    )
    if monotone:
        assert uptime(readable, start, end) == report


def test_the_report_is_a_frozen_record() -> None:
    report = uptime([], at(0), at(10))
    assert isinstance(report, UptimeReport)
    with pytest.raises(AttributeError):
        report.value = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "window",
    ["99999999999d", "1000000w", "9999-12-31T20:00-05:00/9999-12-31T23:00-05:00", "0001-01-01T00:30+01:00/0001-01-02"],
)
def test_windows_beyond_the_calendar_are_bad_input(window: str) -> None:
    with pytest.raises(InputError, match="bad window"):
        parse_window(window, datetime(2026, 12, 1, tzinfo=UTC))
