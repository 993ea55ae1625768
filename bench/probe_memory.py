"""Does the probe service's memory stay flat over a long run? `harness probe` runs as the long-lived process it is
in production, probing at a fast pace a local HTTP bot (kind `http_json`) that goes down for a few seconds every
half minute (so failures, retries and recoveries are exercised, not only the happy path), while its Prometheus
endpoint is scraped; the resident memory of the process is sampled throughout, then SIGTERM stops it.

Reported: cycles and results, resident memory after the warm-up and at the end, the least-squares slope of the
samples after the warm-up (MB per hour, and per 10,000 cycles) and over the run's second half, the time SIGTERM
took to stop the service and its exit code. Results: bench/results/probe_memory.{md,json}.

    .venv/bin/python bench/probe_memory.py                 # 20 minutes (make bench-probe)
    .venv/bin/python bench/probe_memory.py --minutes 2     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HARNESS = ROOT / ".venv" / "bin" / "harness"
DOWN_EVERY_S, DOWN_FOR_S = 30.0, 4.0

PROBES = {
    "version": 1,
    "name": "bench probes",
    "conversations": [
        {
            "id": "balance",
            "turns": [{"text": "what's my balance", "intent": "check_balance", "expect": {"reply_matches": "balance"}}],
            "expected": {"outcome": "self_served"},
            "resolvable": True,
        },
        {
            "id": "human",
            "turns": [
                {"text": "hi there", "intent": "greet"},
                {"text": "can I talk to a person please", "intent": "human_handoff"},
            ],
            "expected": {"outcome": "escalated", "queue": "general"},
            "resolvable": False,
        },
    ],
}


class StubBot(BaseHTTPRequestHandler):
    """A JSON bot: answers `balance` questions itself, hands requests for a person to `general`; 503 while down."""

    started = time.monotonic()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if (time.monotonic() - self.started) % DOWN_EVERY_S > DOWN_EVERY_S - DOWN_FOR_S:
            self._send(503, {"error": "down"})
            return
        text = str(body.get("text", "")).lower()
        if "person" in text:
            reply = {"replies": [{"text": "Passing you on."}], "intent": "human_handoff", "queue": "general"}
        elif "balance" in text:
            reply = {"replies": [{"text": "Your balance is 120.00 GBP."}], "intent": "check_balance"}
        else:
            reply = {"replies": [{"text": "Hello! How can I help?"}], "intent": "greet"}
        self._send(200, reply)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(scratch: Path, bot_port: int, metrics_port: int, interval: float) -> Path:
    probes = scratch / "probes.yml"
    probes.write_text(yaml.safe_dump(PROBES, sort_keys=False), encoding="utf-8")
    config = {
        "version": 1,
        "target": "bench-stub",
        "bot": {
            "kind": "http_json",
            "url": f"http://127.0.0.1:{bot_port}/chat",
            "request": {"json": {"session": "{conversation_id}", "text": "{text}"}},
            "response": {"messages": "replies[].text", "intent": "intent", "handoff_queue": "queue"},
            "vocabulary": {"intents": ["check_balance", "greet", "human_handoff"], "queues": ["general"]},
        },
        "probes": str(probes),
        "schedule": {"interval_s": interval, "jitter_s": interval / 5},
        "retry_delay_s": 0.05,
        "turn_timeout_s": 5,
        "latency_budget_ms": 2000,
        "store": f"sqlite:///{scratch / 'probes.sqlite3'}",
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
    }
    path = scratch / "probe.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def count_results(store: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(store) as db:
        total, failed = db.execute("SELECT COUNT(*), SUM(CASE WHEN ok THEN 0 ELSE 1 END) FROM probe_results").fetchone()
    return int(total or 0), int(failed or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="How long the service runs.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Minutes before memory samples count.")
    parser.add_argument("--interval", type=float, default=0.1, help="Seconds between probe cycles.")
    parser.add_argument("--out", type=Path, default=RESULTS / "probe_memory")
    args = parser.parse_args()
    warmup = min(args.warmup, args.minutes / 2)

    scratch = Path(tempfile.mkdtemp(prefix="probe-memory-"))
    stub = ThreadingHTTPServer(("127.0.0.1", free_port()), StubBot)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    metrics_port = free_port()
    config = write_config(scratch, stub.server_address[1], metrics_port, args.interval)
    log = (scratch / "probe.log").open("w")
    process = subprocess.Popen(
        [str(HARNESS), "probe", "--config", str(config), "--window", "2m"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    ps = psutil.Process(process.pid)
    samples: list[tuple[float, float]] = []
    scrapes = scrape_failures = 0
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < args.minutes * 60:
            time.sleep(5)
            if process.poll() is not None:
                raise SystemExit(f"the probe service exited early ({process.returncode}); see {log.name}")
            samples.append((elapsed / 60, ps.memory_info().rss / 2**20))
            try:
                httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).raise_for_status()
                scrapes += 1
            except httpx.HTTPError:
                scrape_failures += 1
    finally:
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        stop_s = time.monotonic() - asked
        log.close()
        stub.shutdown()
    total, failed = count_results(scratch / "probes.sqlite3")
    cycles = total / len(PROBES["conversations"])
    steady = [(m, rss) for m, rss in samples if m >= warmup]
    per_hour = slope(steady) * 60
    minutes_steady = steady[-1][0] - steady[0][0]
    per_10k = per_hour / (cycles / (args.minutes / 60)) * 10_000 if cycles else 0.0
    half = [(m, rss) for m, rss in samples if m >= args.minutes / 2]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_end": os.getloadavg()[0],
        "minutes": args.minutes,
        "warmup_minutes": warmup,
        "interval_s": args.interval,
        "cycles": round(cycles),
        "results": total,
        "failed_results": failed,
        "scrapes": scrapes,
        "scrape_failures": scrape_failures,
        "rss_mb_after_warmup": round(steady[0][1], 1),
        "rss_mb_end": round(samples[-1][1], 1),
        "rss_mb_max": round(max(r for _, r in samples), 1),
        "slope_mb_per_hour": round(per_hour, 2),
        "slope_mb_per_10k_cycles": round(per_10k, 2),
        "steady_minutes": round(minutes_steady, 1),
        "second_half_growth_mb": round(max(r for _, r in half) - half[0][1], 1),
        "second_half_slope_mb_per_hour": round(slope(half) * 60, 2),
        "sigterm_exit_code": code,
        "sigterm_stop_s": round(stop_s, 2),
        "samples": [(round(m, 2), round(r, 1)) for m, r in samples],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))


def render(r: dict) -> str:
    return f"""# Probe service memory over a long run

`.venv/bin/python bench/probe_memory.py --minutes {r["minutes"]:g}` ({r["date"]}, {r["machine"]}).
`harness probe` probed a local JSON bot (kind `http_json`, down {DOWN_FOR_S:g} s of every {DOWN_EVERY_S:g} s)
every {r["interval_s"]:g} s (2 probes, one with a handoff), with its Prometheus endpoint scraped every 5 s; resident
memory sampled every 5 s.

| measure | value |
|---|---|
| cycles / probe results (failed) | {r["cycles"]:,} / {r["results"]:,} ({r["failed_results"]:,}) |
| scrapes (failed) | {r["scrapes"]} ({r["scrape_failures"]}) |
| resident memory after {r["warmup_minutes"]:g} min warm-up | {r["rss_mb_after_warmup"]} MB |
| resident memory at the end | {r["rss_mb_end"]} MB (max {r["rss_mb_max"]} MB) |
| slope after warm-up ({r["steady_minutes"]:g} min) | {r["slope_mb_per_hour"]} MB/hour |
| slope per 10,000 cycles | {r["slope_mb_per_10k_cycles"]} MB |
| second half: growth (max minus first sample) | {r["second_half_growth_mb"]} MB |
| second half: slope | {r["second_half_slope_mb_per_hour"]} MB/hour |
| SIGTERM: exit code, time to stop | {r["sigterm_exit_code"]}, {r["sigterm_stop_s"]} s |

At the default schedule (one cycle a minute) 10,000 cycles are about a week. The slope over the whole run after the
warm-up includes the allocator and SQLite caches filling; the second half shows whether memory still grows once they
are full.
"""


if __name__ == "__main__":
    main()
