"""The probe service against the real reference bot: `harness probe` runs as the long-lived process it is in
production, the test stops the bot's action server for a measured interval and starts it again, and checks that
the probe log holds exactly one incident whose start, end and length match the outage within the probe spacing,
that the Prometheus endpoint (parsed with prometheus_client's own parser) says what the log says, that probe
handoffs opened no ticket agents would see, and that SIGTERM stops the service cleanly. It uses the session's bot
(conftest.py) and leaves its action server running again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.bots.reference_bot.server import BotServer, free_port
from harness.project.paths import ProjectPaths
from harness.records.probe_log import ProbeLog, ProbeResult

pytestmark = pytest.mark.integration
ROOT = ProjectPaths().root
HARNESS = Path(sys.executable).with_name("harness")
INTERVAL_S = 3.0
OUTAGE_S = 20.0
TARGET = "reference-bot-it"


def probe_config(tmp: Path, bot: BotServer, metrics_port: int) -> Path:
    config = {
        "version": 1,
        "target": TARGET,
        "bot": {"kind": "reference", "url": bot.url, "token_env": "REFERENCE_CHANNEL_TOKEN"},
        "probes": str(ROOT / "experiments" / "probes" / "reference.yml"),
        "schedule": {"interval_s": INTERVAL_S, "jitter_s": 0.5},
        "retry_delay_s": 0.5,
        "turn_timeout_s": 10,
        "latency_budget_ms": 8000,
        "store": f"sqlite:///{tmp / 'probes.sqlite3'}",
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
    }
    path = tmp / "probe.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def results(store: Path) -> list[ProbeResult]:
    log = ProbeLog(f"sqlite:///{store}")
    try:
        return log.read(TARGET, None, None)
    finally:
        log.close()


def wait_for(condition: Any, timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the probe service exited ({process.returncode}) while waiting for {what}")
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def cycles_since(store: Path, since: datetime, *, ok: bool) -> int:
    """Results (every probe) that started after `since` with the given verdict."""
    return sum(1 for r in results(store) if r.started_at > since and r.ok is ok)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_stopping_the_action_server_is_one_incident_of_the_outage_length(bot: BotServer, tmp_path: Path) -> None:
    metrics_port = free_port()
    config = probe_config(tmp_path, bot, metrics_port)
    store = tmp_path / "probes.sqlite3"
    env = {**os.environ, "REFERENCE_CHANNEL_TOKEN": bot.token}
    service_log = (tmp_path / "probe.log").open("w")
    process = subprocess.Popen(
        [str(HARNESS), "probe", "--config", str(config), "--window", "1h"],
        cwd=ROOT,
        env=env,
        stdout=service_log,
        stderr=subprocess.STDOUT,
    )
    try:
        started = datetime.now(UTC)
        wait_for(lambda: store.exists() and cycles_since(store, started, ok=True) >= 6, 120, "passing probes", process)
        probes = {r.probe for r in results(store)}
        assert len(probes) >= 2

        stopped_at = datetime.now(UTC)
        try:
            bot.stop_process("actions")
            time.sleep(OUTAGE_S)
            during = scrape(metrics_port)
        finally:
            bot.start_process("actions")  # the session's bot serves the other tests afterwards
        up_again = datetime.now(UTC)
        wait_for(lambda: cycles_since(store, up_again, ok=True) >= 2 * len(probes), 120, "recovery", process)

        samples = scrape(metrics_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        service_log.close()
    output = (tmp_path / "probe.log").read_text()
    assert "probe service stopped" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    log = results(store)
    first, last = log[0].started_at, log[-1].started_at
    report_file = tmp_path / "uptime.json"
    window = f"{first.isoformat()}/{last.isoformat()}"
    shown = subprocess.run(
        [str(HARNESS), "uptime", "--config", str(config), "--window", window, "--json", str(report_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(report_file.read_text())
    (incident,) = report["incidents"]

    # The probe spacing: the largest gap between two consecutive observations of one probe.
    spacing = max(
        (b.started_at - a.started_at).total_seconds()
        for probe in probes
        for a, b in zip([r for r in log if r.probe == probe], [r for r in log if r.probe == probe][1:], strict=False)
    )
    start = datetime.fromisoformat(incident["start"])
    end = datetime.fromisoformat(incident["end"])
    # The outage began when the action server was stopped and ended when it answered its health check again; the
    # probes see it at their next observation (a probe already in flight when it stopped may see it first: it
    # started up to one probe's length, a few seconds, before).
    assert -5 <= (start - stopped_at).total_seconds() <= spacing, (start, stopped_at, spacing)
    assert -2 <= (end - up_again).total_seconds() <= spacing, (end, up_again, spacing)
    outage = (up_again - stopped_at).total_seconds()
    assert abs(incident["duration_s"] - outage) <= spacing, (incident, outage, spacing)
    assert incident["end_reason"] == "recovered"

    # The failed results name the check that failed; every failed result lies inside the incident.
    failed = [r for r in log if not r.ok]
    assert failed and all(start <= r.started_at < end for r in failed)
    assert incident["probe"] in probes and incident["check"]

    # Prometheus says what the log says, read with the client's own parser.
    for probe in probes:
        labels = (("probe", probe), ("target", TARGET))
        assert samples[("harness_probe_success", labels)] == 1.0
        last_ok = max(r.started_at for r in log if r.probe == probe and r.ok)
        assert samples[("harness_probe_last_success_timestamp_seconds", labels)] >= last_ok.timestamp() - 60
    assert samples[("harness_bot_up", (("target", TARGET),))] == 1.0
    # The endpoint carries the window's uptime and incidents too: one under way during the outage, over after it.
    assert during[("harness_incident_open", (("target", TARGET),))] == 1.0
    assert during[("harness_bot_up", (("target", TARGET),))] == 0.0
    window = (("target", TARGET), ("window", "1h"))
    assert samples[("harness_incident_open", (("target", TARGET),))] == 0.0
    assert samples[("harness_incidents", window)] == 1.0
    assert 0 < samples[("harness_uptime_ratio", window)] < 1
    failed_runs = sum(
        v
        for (name, labels), v in samples.items()
        if name == "harness_probe_runs_total" and ("result", "failed") in labels
    )
    assert 1 <= failed_runs <= len(failed)  # results of a cycle after the scrape are in the log only

    # Probe handoffs went through the ticket store without opening a ticket an agent would pick up.
    sys.path.append(str(ProjectPaths().bot))
    import sqlite3

    from bankbot.handoff_store import HandoffStore  # noqa: E402 - the bot's own store, standard library only

    with sqlite3.connect(bot.handoff_db) as db:
        statuses = db.execute(
            "SELECT status, COUNT(*) FROM tickets WHERE conversation_id LIKE 'harness-probe:%' GROUP BY status"
        ).fetchall()
    probe_tickets = dict(statuses)
    assert set(probe_tickets) == {"probe"} and probe_tickets["probe"] >= 1, probe_tickets
    assert all(not t.conversation_id.startswith("harness-probe:") for t in HandoffStore(bot.handoff_db).open_tickets())
