"""The probe service's Prometheus exporter (harness.sinks.probe_metrics): results recorded by hand, the endpoint
served on a free loopback port, scraped with httpx and parsed with prometheus_client's own text parser. Every
expected value is worked out by hand from the results recorded."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import InputError
from harness.records.probe_log import ProbeResult
from harness.sinks.probe_metrics import ExporterHandle, ProbeMetrics

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
T0_EPOCH = (56 * 365 + 14) * 86400.0
"""T0 as a Unix time: 56 years of 365 days and 14 leap days (1972 ... 2024) since 1970, times 86400 s."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def result(
    probe: str,
    start_s: float,
    *,
    ok: bool = True,
    attempts: int = 1,
    latency_ms: float | None = 400.0,
    took_s: float = 2.0,
    target: str = "reference-bot",
) -> ProbeResult:
    started = T0 + timedelta(seconds=start_s)
    return ProbeResult(
        target=target,
        probe=probe,
        started_at=started,
        finished_at=started + timedelta(seconds=took_s),
        ok=ok,
        attempts=attempts,
        latency_ms=latency_ms,
        holds_until=started + timedelta(seconds=195),
        failed_check=None if ok else "status",
        detail=None if ok else "turn 1: timeout",
    )


def scrape(handle: ExporterHandle) -> Samples:
    """Every sample of the endpoint, parsed by the client's parser: (name, labels) -> value."""
    response = httpx.get(f"http://127.0.0.1:{handle.port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def metrics() -> ProbeMetrics:
    return ProbeMetrics("reference-bot")


@pytest.fixture
def served(metrics: ProbeMetrics) -> Iterator[ExporterHandle]:
    with metrics.serve(port=0) as handle:
        yield handle


BUCKETS = ["0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "3.0", "5.0", "10.0", "20.0", "30.0", "+Inf"]


def test_scraped_values_follow_the_results(metrics: ProbeMetrics, served: ExporterHandle) -> None:
    target = "reference-bot"
    before = scrape(served)
    assert value(before, "harness_bot_up", target=target) is None  # no result yet: absent, not 0 or 1

    metrics.record(result("balance", 0, latency_ms=400))  # finished T0 + 2 s
    metrics.record(result("card-lost", 0, attempts=2, latency_ms=50, took_s=5))  # retried, passed
    first = scrape(served)
    assert value(first, "harness_bot_up", target=target) == 1
    assert value(first, "harness_probe_success", target=target, probe="balance") == 1
    assert value(first, "harness_probe_last_success_timestamp_seconds", target=target, probe="balance") == (
        T0_EPOCH + 2
    )
    assert value(first, "harness_probe_last_success_timestamp_seconds", target=target, probe="card-lost") == (
        T0_EPOCH + 5
    )
    assert value(first, "harness_probe_retries_total", target=target, probe="card-lost") == 1
    assert value(first, "harness_probe_retries_total", target=target, probe="balance") == 0
    assert value(first, "harness_probe_runs_total", target=target, probe="balance", result="failed") == 0

    metrics.record(result("balance", 60, ok=False, attempts=2, latency_ms=3500))  # slow, failed after its retry
    metrics.record(result("card-lost", 60))  # passes, but balance's failure still stands: the bot stays down
    second = scrape(served)
    assert value(second, "harness_bot_up", target=target) == 0
    assert value(second, "harness_probe_success", target=target, probe="balance") == 0
    assert value(second, "harness_probe_success", target=target, probe="card-lost") == 1
    assert value(second, "harness_probe_last_success_timestamp_seconds", target=target, probe="balance") == (
        T0_EPOCH + 2
    )

    metrics.record(result("balance", 120, latency_ms=30000, took_s=31.5))  # at the top bucket's bound
    metrics.record(result("card-lost", 120, ok=False, latency_ms=None))  # unreachable: no latency observed
    metrics.record(result("card-lost", 100))  # arrives late: counted, but the newer failure stays current
    third = scrape(served)
    assert value(third, "harness_bot_up", target=target) == 0
    assert value(third, "harness_probe_success", target=target, probe="balance") == 1
    assert value(third, "harness_probe_success", target=target, probe="card-lost") == 0
    assert value(third, "harness_probe_last_success_timestamp_seconds", target=target, probe="balance") == (
        T0_EPOCH + 151.5
    )
    assert value(third, "harness_probe_last_success_timestamp_seconds", target=target, probe="card-lost") == (
        T0_EPOCH + 102
    )
    runs = {
        (probe, outcome): value(third, "harness_probe_runs_total", target=target, probe=probe, result=outcome)
        for probe in ("balance", "card-lost")
        for outcome in ("ok", "failed")
    }
    assert runs == {("balance", "ok"): 2, ("balance", "failed"): 1, ("card-lost", "ok"): 3, ("card-lost", "failed"): 1}
    assert value(third, "harness_probe_retries_total", target=target, probe="balance") == 1
    assert value(third, "harness_probe_retries_total", target=target, probe="card-lost") == 1

    # balance: 0.4 s, 3.5 s, 30 s. Cumulative buckets (le is inclusive): 0.4 from 0.5 up, 3.5 from 5 up, 30 at 30.
    balance = [
        value(third, "harness_probe_latency_seconds_bucket", target=target, probe="balance", le=le) for le in BUCKETS
    ]
    assert balance == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3]
    assert value(third, "harness_probe_latency_seconds_count", target=target, probe="balance") == 3
    assert value(third, "harness_probe_latency_seconds_sum", target=target, probe="balance") == pytest.approx(33.9)
    # card-lost: 0.05 s (on the first bound), 0.4 s, no latency (unreachable), 0.4 s.
    card = [
        value(third, "harness_probe_latency_seconds_bucket", target=target, probe="card-lost", le=le) for le in BUCKETS
    ]
    assert card == [1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3]

    metrics.record(result("card-lost", 180))
    assert value(scrape(served), "harness_bot_up", target=target) == 1


def test_start_time_and_process_metrics(served: ExporterHandle) -> None:
    before = time.time()
    fresh = ProbeMetrics("other-bot")
    after = time.time()
    with fresh.serve(port=0) as handle:
        samples = scrape(handle)
    started = value(samples, "harness_prober_start_time_seconds", target="other-bot")
    assert started is not None and before <= started <= after
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    # The first exporter's registry is its own: nothing of other-bot in it.
    assert not any(("target", "other-bot") in labels for _, labels in scrape(served))


def test_a_result_of_another_target_is_refused(metrics: ProbeMetrics) -> None:
    with pytest.raises(InputError, match="target 'other-bot': these metrics are for 'reference-bot'"):
        metrics.record(result("balance", 0, target="other-bot"))


def test_close_frees_the_port(metrics: ProbeMetrics) -> None:
    handle = metrics.serve(port=0)
    port = handle.port
    assert port > 0 and scrape(handle)
    handle.close()
    handle.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    with ProbeMetrics("reference-bot").serve(port=port) as again:  # the same port is free again
        assert again.port == port and scrape(again) is not None


def test_a_port_in_use_says_which_and_how_to_choose_another(metrics: ProbeMetrics) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError) as caught:
            metrics.serve(port=port)
    message = str(caught.value)
    assert f"metrics.port {port}: already in use on 127.0.0.1" in message
    assert "choose another port in the probe configuration (metrics.port; 0 picks a free one)" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_a_non_loopback_host_is_refused_unless_allowed(metrics: ProbeMetrics, host: str) -> None:
    with pytest.raises(InputError, match=f"metrics.host {host}: not a loopback address"):
        metrics.serve(host=host, port=0)


def test_localhost_names_are_loopback(metrics: ProbeMetrics) -> None:
    with metrics.serve(host="localhost", port=0) as handle:
        assert handle.host == "localhost" and handle.port > 0


def test_the_windows_uptime_and_incidents_are_on_the_endpoint(metrics: ProbeMetrics, served: ExporterHandle) -> None:
    from harness.scoring.uptime import uptime

    # One probe, every 60 s from T0 over a 10-minute window: ok at 0..180 s, failed at 240 and 300 s, ok from 360 s,
    # failed again at 540 s. Up: 0-240 and 360-540 s = 420 s; down: 240-360 and 540-600 s = 180 s; uptime 0.7.
    # Bounds: the first change to down may have come right after 180 s and the recovery right after 300 s; the
    # second change right after 480 s: lower = (420 - 60 - 60) / 600 = 0.5, upper = (420 + 60) / 600 = 0.8.
    log = [result("probe-a", s, ok=s not in (240, 300, 540)) for s in range(0, 600, 60)]
    report = uptime(log, T0, T0 + timedelta(minutes=10))
    metrics.record_uptime(report, "10m")
    samples = scrape(served)
    window = {"target": "reference-bot", "window": "10m"}
    assert value(samples, "harness_uptime_ratio", **window) == pytest.approx(0.7)
    assert value(samples, "harness_uptime_bound_ratio", **window, bound="lower") == pytest.approx(0.5)
    assert value(samples, "harness_uptime_bound_ratio", **window, bound="upper") == pytest.approx(0.8)
    assert value(samples, "harness_uptime_seconds", **window, state="up") == pytest.approx(420)
    assert value(samples, "harness_uptime_seconds", **window, state="down") == pytest.approx(180)
    assert value(samples, "harness_uptime_seconds", **window, state="unknown") == pytest.approx(0)
    assert value(samples, "harness_incidents", **window) == 2
    assert value(samples, "harness_incident_open", target="reference-bot") == 1
    assert value(samples, "harness_incident_start_timestamp_seconds", target="reference-bot") == T0_EPOCH + 540
    # The bot recovers: no incident under way.
    log.append(result("probe-a", 600))
    metrics.record_uptime(uptime(log, T0, T0 + timedelta(minutes=11)), "10m")
    samples = scrape(served)
    assert value(samples, "harness_incident_open", target="reference-bot") == 0
    assert value(samples, "harness_incident_start_timestamp_seconds", target="reference-bot") == 0
