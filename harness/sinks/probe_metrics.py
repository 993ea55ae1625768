"""Prometheus metrics of the probe service, through the official client (`prometheus_client`): each counted probe
result updates them; `serve` exposes them over HTTP on a loopback port for Prometheus to scrape.

Metrics (labels `target`, the monitored bot, and `probe`, the probe's id):

| name | type | meaning |
|---|---|---|
| `harness_probe_success` | gauge | 1 if the probe's latest counted result passed, 0 if it failed |
| `harness_probe_latency_seconds` | histogram | slowest turn of the counted attempt (LATENCY_BUCKETS) |
| `harness_probe_last_success_timestamp_seconds` | gauge | Unix time the probe's latest passing result finished |
| `harness_probe_runs_total{result="ok"/"failed"}` | counter | counted results |
| `harness_probe_retries_total` | counter | results that needed the retry (attempts = 2), passed or not |
| `harness_bot_up{target}` | gauge | 1 when every probe's latest result passed, 0 when any failed |
| `harness_prober_start_time_seconds{target}` | gauge | Unix time this exporter (the probe service) started |
| `harness_uptime_ratio{target,window}` | gauge | `uptime.v1` of the window up to the latest cycle (NaN: undefined) |
| `harness_uptime_bound_ratio{target,window,bound="lower"/"upper"}` | gauge | its probe-spacing bounds |
| `harness_uptime_seconds{target,window,state="up"/"down"/"unknown"}` | gauge | the window's time in each state |
| `harness_incidents{target,window}` | gauge | incidents in the window (an ongoing one included) |
| `harness_incident_open{target}` | gauge | 1 while an incident is under way, else 0 |
| `harness_incident_start_timestamp_seconds{target}` | gauge | Unix time the ongoing incident began (0 when none) |

Plus the client's `process_*` metrics (memory, CPU, open files, start time) of the probe service's process when the
exporter owns its registry. Series appear when a probe's first result is recorded (`harness_bot_up` with the
first result of any probe): before that they are absent, not 0. monitoring/ holds the Grafana dashboard and the
alert rules built on these names.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server

from harness.errors import InputError
from harness.records.probe_log import ProbeResult
from harness.scoring.uptime import UptimeReport

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
"""Upper bounds (seconds) of the latency histogram's buckets (+Inf is added): a chat turn takes from tens of
milliseconds to the turn timeout; 3 s is the default latency budget, so "over budget" is a bucket boundary."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
"""The exporter's default address (9464 is the port commonly used by Prometheus exporters of this kind)."""


@dataclass
class ExporterHandle:
    """A running metrics endpoint (`http://host:port/metrics`); `close()` stops it and frees the port."""

    host: str
    port: int
    """The port it listens on (the one the system chose when 0 was asked)."""
    _server: WSGIServer | None = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port; waits for the server thread (at most 5 s). Idempotent."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> ExporterHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class ProbeMetrics:
    """The probe metrics of one target, in their own CollectorRegistry (a fresh one unless `registry` is given:
    two exporters in one process, and tests, do not collide; one ProbeMetrics per registry).

    Thread-safe: `record` runs in the probe scheduler's thread while the server thread scrapes.
    """

    def __init__(self, target: str, registry: CollectorRegistry | None = None) -> None:
        self.target = target
        owned = registry is None
        self.registry = CollectorRegistry() if registry is None else registry
        """The registry the metrics live in (what `serve` exposes)."""
        labels = ["target", "probe"]
        reg = self.registry
        self._success = Gauge(
            "harness_probe_success", "1 if the probe's latest counted result passed, 0 if not", labels, registry=reg
        )
        self._latency = Histogram(
            "harness_probe_latency_seconds",
            "Slowest turn of the probe's counted attempt, in seconds",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._last_success = Gauge(
            "harness_probe_last_success_timestamp_seconds",
            "Unix time the probe's latest passing result finished",
            labels,
            registry=reg,
        )
        self._runs = Counter(
            "harness_probe_runs", "Counted probe results, by result (ok or failed)", [*labels, "result"], registry=reg
        )
        self._retries = Counter(
            "harness_probe_retries", "Probe results that needed the retry (passed or not)", labels, registry=reg
        )
        self._up = Gauge(
            "harness_bot_up", "1 when every probe's latest result passed, 0 when any failed", ["target"], registry=reg
        )
        self._started = Gauge(
            "harness_prober_start_time_seconds", "Unix time the probe service started", ["target"], registry=reg
        )
        self._started.labels(target).set(time.time())
        window = ["target", "window"]
        self._uptime = Gauge(
            "harness_uptime_ratio", "uptime.v1 over the window up to the latest probe cycle", window, registry=reg
        )
        self._bounds = Gauge(
            "harness_uptime_bound_ratio", "uptime.v1's probe-spacing bounds", [*window, "bound"], registry=reg
        )
        self._seconds = Gauge(
            "harness_uptime_seconds",
            "Seconds of the window the bot was up, down or unknown",
            [*window, "state"],
            registry=reg,
        )
        self._incidents = Gauge("harness_incidents", "Incidents in the window", window, registry=reg)
        self._open = Gauge("harness_incident_open", "1 while an incident is under way", ["target"], registry=reg)
        self._open_since = Gauge(
            "harness_incident_start_timestamp_seconds",
            "Unix time the ongoing incident began (0 when none)",
            ["target"],
            registry=reg,
        )
        if owned:
            ProcessCollector(registry=reg)
        self._lock = threading.Lock()
        self._latest: dict[str, ProbeResult] = {}
        self._last_success_at: dict[str, float] = {}

    def record(self, result: ProbeResult) -> None:
        """Count one probe result (what counted, after its retry). A result older than the probe's latest one
        (by started_at) is counted (runs, retries, latency) but does not change the current state (success, bot up).
        Raises InputError for a result of another target."""
        if result.target != self.target:
            raise InputError(
                "probe result of another bot",
                [f"target '{result.target}': these metrics are for '{self.target}'; one ProbeMetrics per target"],
            )
        probe = result.probe
        with self._lock:
            if probe not in self._latest:  # every series of the probe from 0, so rate() and increase() see the first
                for outcome in ("ok", "failed"):
                    self._runs.labels(self.target, probe, outcome)
                self._retries.labels(self.target, probe)
            self._runs.labels(self.target, probe, "ok" if result.ok else "failed").inc()
            if result.attempts > 1:
                self._retries.labels(self.target, probe).inc()
            if result.latency_ms is not None:
                self._latency.labels(self.target, probe).observe(result.latency_ms / 1000)
            if result.ok:
                finished = max(result.finished_at.timestamp(), self._last_success_at.get(probe, 0.0))
                self._last_success_at[probe] = finished
                self._last_success.labels(self.target, probe).set(finished)
            previous = self._latest.get(probe)
            if previous is None or result.started_at >= previous.started_at:
                self._latest[probe] = result
                self._success.labels(self.target, probe).set(1 if result.ok else 0)
                self._up.labels(self.target).set(1 if all(r.ok for r in self._latest.values()) else 0)

    def record_uptime(self, report: UptimeReport, window: str) -> None:
        """Publish `uptime.v1` of the window named `window` (the label, e.g. `24h`), computed by
        harness.scoring.uptime up to now: value (NaN when undefined), bounds, seconds per state, incident count, and
        whether an incident is under way (the last incident still down at the window's end) and since when."""
        nan = float("nan")
        with self._lock:
            self._uptime.labels(self.target, window).set(nan if report.value is None else report.value)
            low, high = report.bounds if report.bounds is not None else (nan, nan)
            self._bounds.labels(self.target, window, "lower").set(low)
            self._bounds.labels(self.target, window, "upper").set(high)
            for state, seconds in (("up", report.up_s), ("down", report.down_s), ("unknown", report.unknown_s)):
                self._seconds.labels(self.target, window, state).set(seconds)
            self._incidents.labels(self.target, window).set(len(report.incidents))
            ongoing = next((i for i in report.incidents if i.end is None), None)
            self._open.labels(self.target).set(0 if ongoing is None else 1)
            self._open_since.labels(self.target).set(0 if ongoing is None else ongoing.start.timestamp())

    def serve(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, allow_remote: bool = False
    ) -> ExporterHandle:
        """Serve the metrics at `http://host:port/metrics` from a daemon thread (prometheus_client's
        `start_http_server`); port 0 picks a free port (see the handle's `port`).

        Raises InputError when `host` is not a loopback address and `allow_remote` is False (the endpoint has no
        authentication: expose it deliberately), when the port is in use or cannot be bound."""
        if not allow_remote and not _is_loopback(host):
            raise InputError(
                "the probe metrics would be reachable from other machines",
                [
                    f"metrics.host {host}: not a loopback address; use 127.0.0.1 (Prometheus on this machine) or "
                    "set metrics.allow_remote: true in the probe configuration (the endpoint has no authentication)"
                ],
            )
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                problem = (
                    f"metrics.port {port}: already in use on {host}; choose another port in the probe "
                    "configuration (metrics.port; 0 picks a free one) or stop the program using it"
                )
            else:
                problem = f"metrics {host}:{port}: {exc.strerror or exc}; give a local address and a free port"
            raise InputError("cannot serve the probe metrics", [problem]) from None
        return ExporterHandle(host=host, port=int(server.server_address[1]), _server=server, _thread=thread)


def _is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1); False for unknown names."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
