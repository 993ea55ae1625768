"""`harness probe` and `harness uptime` against a local JSON bot (tests/harness/probe_stub.py, kind http_json, on
127.0.0.1) with a probe configuration and a probe set in tmp_path: no Rasa. `--once` and `harness uptime` run in
process; the long-lived service runs as the real `.venv/bin/harness` process: its Prometheus endpoint is scraped
and parsed with prometheus_client's own parser, the bot goes down for a measured time, SIGTERM stops it.

Expected uptime figures are worked out by hand from the hand-made logs (times in minutes after T0)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from probe_stub import PROBES, TARGET, StubBot, store_url, write_config
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from harness.cli import app
from harness.records.probe_log import ProbeLog, ProbeResult

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / ".venv" / "bin" / "harness"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def stub() -> Iterator[StubBot]:
    with StubBot() as bot:
        yield bot


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def results(scratch: Path, target: str = TARGET) -> list[ProbeResult]:
    with ProbeLog(store_url(scratch)) as log:
        return log.read(target)


# --- (a) one cycle ---------------------------------------------------------------------------------------------


def test_probe_once_exits_0_when_every_probe_passes_and_1_when_one_fails(tmp_path: Path, stub: StubBot) -> None:
    config = write_config(tmp_path, stub.url)

    passed = invoke("probe", "--once", "--config", str(config))
    assert passed.exit_code == 0, passed.output
    assert re.search(r"ok balance .*ok human", passed.output), passed.output
    first = results(tmp_path)
    assert [(r.probe, r.ok, r.attempts) for r in first] == [("balance", True, 1), ("human", True, 1)]
    assert all(r.prober.endswith(f":{os.getpid()}") for r in first), "prober is <host>:<pid>"

    stub.set_mode("wrong")  # a balance question answered with a greeting: balance's reply check fails, twice
    failed = invoke("probe", "--once", "--config", str(config))
    assert failed.exit_code == 1, failed.output
    assert "FAIL balance reply" in failed.output
    second = results(tmp_path)[2:]
    assert [(r.probe, r.ok, r.attempts, r.failed_check) for r in second] == [
        ("balance", False, 2, "reply"),
        ("human", True, 1, None),
    ]
    assert second[0].first_failure is not None and second[0].first_failure.startswith("reply: ")
    assert "incident since" in failed.output


# --- (b) the long-lived service ----------------------------------------------------------------------------------


class Process:
    """A `harness probe` process whose stdout and stderr lines are collected by threads."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.popen = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_for(self, condition: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            found = condition()
            if found:
                return found
            if self.popen.poll() is not None:
                self.finish()
                pytest.fail(f"harness probe exited ({self.popen.returncode}) waiting for {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def finish(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.finish()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"target": TARGET, **labels}.items())))


def check_metrics_match_the_log(samples: Samples, logged: list[ProbeResult]) -> None:
    """Every probe's series against the log's results of that probe, worked out here."""
    probes = [c["id"] for c in PROBES["conversations"]]
    latest = {}
    for probe in probes:
        mine = [r for r in logged if r.probe == probe]
        assert mine, f"no result of {probe} yet"
        latest[probe] = mine[-1]
        ok = [r for r in mine if r.ok]
        timed = [r.latency_ms for r in mine if r.latency_ms is not None]
        assert value(samples, "harness_probe_runs_total", probe=probe, result="ok") == len(ok)
        assert value(samples, "harness_probe_runs_total", probe=probe, result="failed") == len(mine) - len(ok)
        assert value(samples, "harness_probe_retries_total", probe=probe) == sum(r.attempts > 1 for r in mine)
        assert value(samples, "harness_probe_latency_seconds_count", probe=probe) == len(timed)
        assert value(samples, "harness_probe_latency_seconds_sum", probe=probe) == pytest.approx(sum(timed) / 1000)
        assert value(samples, "harness_probe_success", probe=probe) == (1 if mine[-1].ok else 0)
        if ok:
            last = max(r.finished_at for r in ok).timestamp()
            assert value(samples, "harness_probe_last_success_timestamp_seconds", probe=probe) == pytest.approx(last)
    up = 1 if all(r.ok for r in latest.values()) else 0
    assert samples[("harness_bot_up", frozenset({"target": TARGET}.items()))] == up
    assert ("harness_prober_start_time_seconds", frozenset({"target": TARGET}.items())) in samples


def port_is_free(port: int) -> bool:
    """Nothing listens on the port and a new server can bind it (with SO_REUSEADDR, as servers do: the closed
    scrape connections may linger in TIME_WAIT)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_service_publishes_its_results_records_an_outage_and_stops_cleanly_on_sigterm(
    tmp_path: Path, stub: StubBot
) -> None:
    config = write_config(tmp_path, stub.url, interval_s=1.0, stale_after_s=None)
    process = Process([str(HARNESS), "probe", "--config", str(config), "--interval", "0.2", "--port", "0"])
    try:
        started = process.wait_for(
            lambda: next(
                (m for line in process.stdout if (m := re.search(r"metrics http://127\.0\.0\.1:(\d+)/metrics", line))),
                None,
            ),
            "the start line",
        )
        port = int(started.group(1))
        assert "every 0.2 s" in process.output()
        process.wait_for(lambda: len(results(tmp_path)) >= 4, "two cycles")

        # Hold the bot's next answer: between two cycles the metrics and the log hold the same results.
        stub.set_mode("hold")
        process.wait_for(stub.state.held.is_set, "a held request")
        check_metrics_match_the_log(scrape(port), results(tmp_path))
        stub.release()

        # The outage: 503 for a measured time.
        down = stub.set_mode("down")
        time.sleep(1.5)
        up = stub.set_mode("up")
        outage_s = (up - down).total_seconds()

        def recovered() -> bool:
            after = [r for r in results(tmp_path) if r.started_at > up]
            return {r.probe for r in after if r.ok} == {"balance", "human"}

        process.wait_for(recovered, "passing results after the outage")
        process.wait_for(lambda: "incident over" in process.output(), "the console's end of the incident")
        assert "incident since" in "".join(process.stderr)
        logged = results(tmp_path)
        report = tmp_path / "uptime.json"
        window = f"{(logged[0].started_at - timedelta(seconds=1)).isoformat()}/{datetime.now(UTC).isoformat()}"
        shown = invoke("uptime", "--config", str(config), "--window", window, "--json", str(report))
        assert shown.exit_code == 0, shown.output
        incidents = json.loads(report.read_text())["incidents"]
        assert len(incidents) == 1, incidents
        (incident,) = incidents
        assert incident["end_reason"] == "recovered" and incident["probe"] in ("balance", "human")
        assert incident["check"] in ("unreachable", "status"), incident
        # The probe spacing around the outage: the longest time between consecutive results of one probe that
        # bound a change (the earlier one started by the end of the outage, the later one after its start). A change
        # is seen at most that late, and a failing result may have started up to one attempt before the outage.
        pairs = [
            (a, b)
            for probe in ("balance", "human")
            for a, b in zip(
                [r for r in logged if r.probe == probe], [r for r in logged if r.probe == probe][1:], strict=False
            )
            if a.started_at <= up and b.started_at >= down
        ]
        spacing = max((b.started_at - a.started_at).total_seconds() for a, b in pairs)
        attempt = max((r.finished_at - r.started_at).total_seconds() for pair in pairs for r in pair)
        assert abs(incident["duration_s"] - outage_s) <= spacing + attempt, (incident, outage_s, spacing, attempt)
        start = datetime.fromisoformat(incident["start"])
        assert down - timedelta(seconds=attempt) <= start <= down + timedelta(seconds=spacing)

        # The metrics after the outage still match the log.
        stub.set_mode("hold")
        process.wait_for(stub.state.held.is_set, "a held request")
        check_metrics_match_the_log(scrape(port), results(tmp_path))
        stub.release()

        asked = time.monotonic()
        process.popen.send_signal(signal.SIGTERM)
        code = process.popen.wait(timeout=15)
        took = time.monotonic() - asked
        process.finish()
    finally:
        process.kill()
    output = process.output()
    assert code == 0, output
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "probe service stopped" in "".join(process.stdout)
    assert "Traceback" not in output
    assert port_is_free(port)


# --- (c) harness uptime on a hand-made log ----------------------------------------------------------------------


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def hand_made_log(scratch: Path) -> Path:
    """Probe `balance` at minutes 0..9, each result standing at most 3 minutes; those at 3 and 4 failed (status).

    Standing times: the result at m stands [m, m+1) for m < 9 (the next one comes a minute later), the one at 9
    stands [9, 12) (holds_until), after 12 nothing stands. So: up [0, 3) and [5, 12), down [3, 5), unknown from 12.
    """
    config = write_config(scratch, "http://127.0.0.1:9/chat")
    with ProbeLog(store_url(scratch)) as log:
        for m in range(10):
            ok = m not in (3, 4)
            log.append(
                ProbeResult(
                    target=TARGET,
                    probe="balance",
                    started_at=at(m),
                    finished_at=at(m) + timedelta(seconds=1),
                    ok=ok,
                    attempts=1 if ok else 2,
                    latency_ms=100.0 if ok else None,
                    holds_until=at(m + 3),
                    failed_check=None if ok else "status",
                    detail=None if ok else "turn 0: timeout",
                )
            )
    return config


def test_uptime_prints_the_value_bounds_and_incidents(tmp_path: Path) -> None:
    config = hand_made_log(tmp_path)
    # Window [0, 10): up 8 min, down 2 min: 80%. Bounds: the down change happened after the pass at 2 and by the
    # failure at 3, recovery after the failure at 4 and by the pass at 5: down [2, 5) = 3 min (70%) at worst,
    # [3, 4) = 1 min (90%) at best.
    shown = invoke("uptime", "--config", str(config), "--window", "2026-06-01T12:00/2026-06-01T12:10")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert f"{TARGET}: uptime.v1 over 2026-06-01T12:00/2026-06-01T12:10: 80.000% [70.000%, 90.000%]" in text
    assert "up 0:08:00, down 0:02:00, unknown 0:00:00 · 1 incident(s)" in text
    assert "window 2026-06-01 12:00:00 to 2026-06-01 12:10:00 UTC, 10 probe result(s)" in text
    row = next(line for line in text.splitlines() if "2026-06-01 12:03:00" in line)
    cells = [cell.strip() for cell in row.strip("│ \n").split("│")]
    assert cells == [
        "2026-06-01 12:03:00",
        "2026-06-01 12:05:00",
        "0:02:00",
        "balance",
        "status",
        "recovered",
        "turn 0: timeout",
    ]


def test_uptime_json_worked_out_by_hand(tmp_path: Path) -> None:
    config = hand_made_log(tmp_path)
    out = tmp_path / "out" / "uptime.json"
    # Window [0, 15): up [0, 3) + [5, 12) = 10 min, down 2 min, unknown [12, 15) = 3 min; value 10 / 12.
    # Bounds: down 3 min (2..5) gives 9 / 12, down 1 min (3..4) gives 11 / 12; unknown stays out of both.
    shown = invoke(
        "uptime", "--config", str(config), "--window", "2026-06-01T12:00/2026-06-01T12:15", "--json", str(out)
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(out.read_text())
    assert report == {
        "name": "uptime.v1",
        "start": "2026-06-01T12:00:00+00:00",
        "end": "2026-06-01T12:15:00+00:00",
        "value": pytest.approx(10 / 12),
        "bounds": [pytest.approx(9 / 12), pytest.approx(11 / 12)],
        "method": "probe spacing bounds",
        "up_s": 600.0,
        "down_s": 120.0,
        "unknown_s": 180.0,
        "results": 10,
        "probes": ["balance"],
        "incidents": [
            {
                "start": "2026-06-01T12:03:00+00:00",
                "end": "2026-06-01T12:05:00+00:00",
                "duration_s": 120.0,
                "probe": "balance",
                "check": "status",
                "detail": "turn 0: timeout",
                "started_before_window": False,
                "end_reason": "recovered",
            }
        ],
    }
    assert "83.333% [75.000%, 91.667%]" in shown.output


def test_uptime_window_starting_mid_incident(tmp_path: Path) -> None:
    config = hand_made_log(tmp_path)
    # Window [3.5, 10): the failure at 3 stands at 3.5, so the bot is down from the window's start until the pass
    # at 5: down 1.5 min, up [5, 10) = 5 min: 5 / 6.5. The incident began at 3, before the window: clipped to 3.5.
    # Results counted: those at 3 (standing until 4) to 9, 7 of them.
    out = tmp_path / "uptime.json"
    shown = invoke(
        "uptime", "--config", str(config), "--window", "2026-06-01T12:03:30/2026-06-01T12:10", "--json", str(out)
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(out.read_text())
    assert report["value"] == pytest.approx(5 / 6.5) and report["results"] == 7
    assert (report["up_s"], report["down_s"], report["unknown_s"]) == (300.0, 90.0, 0.0)
    (incident,) = report["incidents"]
    assert incident["start"] == "2026-06-01T12:03:30+00:00" and incident["started_before_window"] is True
    assert (incident["duration_s"], incident["end_reason"]) == (90.0, "recovered")
    # Bounds: the change to down and the first failure are before the window, so only the recovery moves: after
    # the failure at 4 at the earliest (down 0.5 min: 6 / 6.5), at the pass at 5 at the latest (the value).
    assert report["bounds"] == [pytest.approx(5 / 6.5), pytest.approx(6 / 6.5)]
    assert "2026-06-01 12:03:30 (before" in shown.output  # the table may wrap "(before window)"


def test_uptime_bad_window_exits_2_and_says_what_is_accepted(tmp_path: Path) -> None:
    config = hand_made_log(tmp_path)
    shown = invoke("uptime", "--config", str(config), "--window", "soon")
    assert shown.exit_code == 2
    assert "bad window" in shown.stderr and "--window 'soon'" in shown.stderr
    assert "7d" in shown.stderr and "START/END" in shown.stderr
    backwards = invoke("uptime", "--config", str(config), "--window", "2026-06-01T12:10/2026-06-01T12:00")
    assert backwards.exit_code == 2 and "the start must be before the end" in backwards.stderr


def test_uptime_of_an_unknown_target_is_undefined(tmp_path: Path) -> None:
    config = hand_made_log(tmp_path)
    out = tmp_path / "uptime.json"
    window = "2026-06-01T12:00/2026-06-01T12:10"
    shown = invoke("uptime", "--config", str(config), "--window", window, "--target", "nobody", "--json", str(out))
    assert shown.exit_code == 0, shown.output
    assert "nobody: uptime.v1 over" in shown.output and ": undefined · " in shown.output
    assert "0 probe result(s)" in shown.output and "no incidents" in shown.output
    report = json.loads(out.read_text())
    assert (report["value"], report["bounds"], report["results"], report["unknown_s"]) == (None, None, 0, 600.0)


# --- (d) bad configuration ----------------------------------------------------------------------------------------


def test_a_bad_probe_configuration_exits_2_with_each_location(tmp_path: Path, stub: StubBot) -> None:
    config = write_config(tmp_path, stub.url)
    raw = yaml.safe_load(config.read_text())
    raw["bogus"] = 1
    raw["schedule"]["interval_s"] = 0
    config.write_text(yaml.safe_dump(raw))
    for command in (["probe", "--once"], ["uptime"]):
        shown = invoke(*command, "--config", str(config))
        assert shown.exit_code == 2, shown.output
        assert "invalid probe configuration" in shown.stderr
        assert f"{config}: bogus: " in shown.stderr
        assert f"{config}: schedule.interval_s: " in shown.stderr and "greater than 0" in shown.stderr
    assert stub.state.requests == 0 and not (tmp_path / "probes.sqlite3").exists()


def test_a_probe_naming_an_intent_the_bot_does_not_know_exits_2(tmp_path: Path, stub: StubBot) -> None:
    probes = json.loads(json.dumps(PROBES))
    probes["conversations"][0]["turns"][0]["intent"] = "check_balanse"
    config = write_config(tmp_path, stub.url, probes=probes)
    shown = invoke("probe", "--once", "--config", str(config))
    assert shown.exit_code == 2, shown.output
    assert "probes.yml" in shown.stderr and "check_balanse" in shown.stderr
    assert "check_balance" in shown.stderr, "a did-you-mean"
    assert stub.state.requests == 0 and not (tmp_path / "probes.sqlite3").exists()


def test_sighup_stops_the_service_cleanly(tmp_path: Path, stub: StubBot) -> None:
    # A closed terminal or SSH session sends SIGHUP: the service stops as on SIGTERM (no orphaned bot or port).
    config = write_config(tmp_path, stub.url, interval_s=1.0)
    process = Process([str(HARNESS), "probe", "--config", str(config), "--interval", "0.2", "--port", "0"])
    try:
        process.wait_for(lambda: any("metrics http://" in line for line in process.stdout), "the start line")
        process.wait_for(lambda: len(results(tmp_path)) >= 2, "a stored cycle")
        process.popen.send_signal(signal.SIGHUP)
        code = process.popen.wait(timeout=15)
        process.finish()
    finally:
        process.kill()
    assert code == 0, process.output()
    assert "probe service stopped" in "".join(process.stdout)


def test_a_bot_that_refuses_every_first_probe_stops_the_service_and_stores_nothing(tmp_path: Path) -> None:
    # A wrong token or URL is the monitoring's fault, not downtime customers saw: nothing is stored, exit 2.
    with RefusingServer() as url:
        config = write_config(tmp_path, url, interval_s=1.0)
        once = invoke("probe", "--once", "--config", str(config))
        served = invoke("probe", "--config", str(config), "--port", "0", "--interval", "0.2")
    for outcome in (once, served):
        assert outcome.exit_code == 2, outcome.output
        assert "refused every probe of the first cycle" in outcome.output
    assert results(tmp_path) == []


class RefusingServer:
    """A bot answering 401 to everything (a token the bot does not accept)."""

    def __enter__(self) -> str:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Refuse(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/chat"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_stale_after_must_outlast_a_cycle_against_a_hanging_bot(tmp_path: Path, stub: StubBot) -> None:
    # Two probes of 1 and 2 turns, turn_timeout_s 5 (+5 s grace), retry 0.05 s: a hanging bot makes a cycle last up to
    # 2 * 3 * 10 + 2 * 0.05 = 60.1 s; with interval 1 s and jitter 0, a result must stand more than 61.1 s.
    config = write_config(tmp_path, stub.url, interval_s=1.0, stale_after_s=61)
    refused = invoke("probe", "--once", "--config", str(config))
    assert refused.exit_code == 2, refused.output
    assert "stale_after_s: 61 s is not above 61.1 s" in refused.output
    accepted = invoke("probe", "--once", "--config", str(write_config(tmp_path, stub.url, stale_after_s=None)))
    assert accepted.exit_code == 0, accepted.output
    # The default: the larger of 3 * 60 + 0 = 180 s and 60.1 + 60 + 0 + 60 = 180.1 s.
    (first, *_) = results(tmp_path)
    assert (first.holds_until - first.started_at).total_seconds() == pytest.approx(180.1)
