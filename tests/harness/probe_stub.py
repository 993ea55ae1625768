"""A local JSON bot for probe tests (kind `http_json`, as bench/probe_memory.py's) on 127.0.0.1, and a probe
configuration pointing at it, so `harness probe` can be tested without Rasa.

The bot answers `balance` questions itself and hands requests for a person to the `general` queue. Its `mode`
changes what it does: `up` (answers well), `down` (503 to everything), `wrong` (answers a balance question with a
greeting: the probe's reply check fails), `hold` (every request waits until `release()`, so a test can look at
the service between two results). Every change of mode is timed (`switches`, aware UTC datetimes).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

TARGET = "stub-bot"
PROBES: dict[str, Any] = {
    "version": 1,
    "name": "stub probes",
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
VOCABULARY = {"intents": ["check_balance", "greet", "human_handoff"], "queues": ["general"]}


@dataclass
class StubState:
    mode: str = "up"
    requests: int = 0
    held: threading.Event = field(default_factory=threading.Event)
    """Set while a request waits in `hold` mode."""
    release_event: threading.Event = field(default_factory=threading.Event)
    switches: list[tuple[str, datetime]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with state.lock:
            state.requests += 1
            mode = state.mode
        if mode == "hold":
            state.held.set()
            state.release_event.wait(10)
            mode = "up"
        if mode == "down":
            self._send(503, {"error": "down"})
            return
        text = str(body.get("text", "")).lower()
        if "person" in text:
            reply = {"replies": [{"text": "Passing you on."}], "intent": "human_handoff", "queue": "general"}
        elif "balance" in text and mode != "wrong":
            reply = {"replies": [{"text": "Your balance is 120.00 GBP."}], "intent": "check_balance"}
        else:
            reply = {"replies": [{"text": "Hello! How can I help?"}], "intent": "greet"}
        self._send(200, reply)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: StubState


class StubBot:
    """The stub bot, serving in a thread from construction until `close()`."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = StubState()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def state(self) -> StubState:
        return self._server.state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/chat"

    def set_mode(self, mode: str) -> datetime:
        """Switch to `mode` and return when it happened (aware UTC)."""
        assert mode in ("up", "down", "wrong", "hold")
        with self.state.lock:
            if mode == "hold":
                self.state.held.clear()
                self.state.release_event.clear()
            self.state.mode = mode
            moment = datetime.now(UTC)
            self.state.switches.append((mode, moment))
        return moment

    def release(self) -> None:
        """End `hold`: waiting requests are answered (as `up`) and the bot is up."""
        self.set_mode("up")
        self.state.release_event.set()

    def close(self) -> None:
        self.state.release_event.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StubBot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def write_config(
    scratch: Path,
    bot_url: str,
    *,
    interval_s: float = 60.0,
    jitter_s: float = 0.0,
    metrics_port: int = 0,
    probes: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
    **extra: Any,
) -> Path:
    """A probe configuration (`probe.yml`) and its probe set (`probes.yml`) in `scratch`; the store is
    `scratch/probes.sqlite3`. `extra` adds or replaces top-level keys."""
    probe_set = scratch / "probes.yml"
    probe_set.write_text(yaml.safe_dump(probes or PROBES, sort_keys=False), encoding="utf-8")
    config: dict[str, Any] = {
        "version": 1,
        "target": TARGET,
        "bot": {
            "kind": "http_json",
            "url": bot_url,
            "request": {"json": {"session": "{conversation_id}", "text": "{text}"}},
            "response": {"messages": "replies[].text", "intent": "intent", "handoff_queue": "queue"},
            "vocabulary": VOCABULARY,
        },
        "probes": str(probe_set),
        "schedule": {"interval_s": interval_s, "jitter_s": jitter_s},
        "retry_delay_s": 0.05,
        "turn_timeout_s": 5,
        "latency_budget_ms": 5000,
        "store": f"sqlite:///{scratch / 'probes.sqlite3'}",
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "tracking": {"uri": tracking_uri or f"sqlite:///{scratch / 'mlflow.db'}", "experiment": "probes-test"},
    }
    config.update({key: value for key, value in extra.items() if value is not None})
    path = scratch / "probe.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def store_url(scratch: Path) -> str:
    return f"sqlite:///{scratch / 'probes.sqlite3'}"
