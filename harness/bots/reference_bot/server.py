"""Train the reference bot and run it (Rasa server + action server) on loopback, from the harness environment.

The bot lives in its own virtual environment (.venv-bot, Rasa's pins); this module only starts its commands.
A model is named after a fingerprint of everything training reads, so an unchanged bot is never retrained.
`BotServer` is a context manager that stops every process it started, also on errors and Ctrl-C. Each start makes a
new shared secret between the Rasa server and the action server (`python -m bankbot.action_server`, which refuses
every other caller), and keeps conversations in a persistent tracker store (an SQLite file by default).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.errors import BotProcessError
from harness.project.paths import project_root

TRAINING_INPUTS = ("config.yml", "domain", "data", "bankbot/nlu")
"""What a trained model depends on: the pipeline, the domain, the training data and the custom NLU components."""


@dataclass(frozen=True)
class BotLayout:
    """Where the bot's project, environment and models are (default: bot/ and .venv-bot/ of the project root)."""

    bot_dir: Path = field(default_factory=lambda: project_root() / "bot")
    venv: Path = field(default_factory=lambda: project_root() / ".venv-bot")

    @property
    def rasa(self) -> Path:
        return self.venv / "bin" / "rasa"

    @property
    def models(self) -> Path:
        return self.bot_dir / "models"


def fingerprint(bot_dir: Path) -> str:
    """A short hash of the bot's training inputs (TRAINING_INPUTS; compiled caches ignored)."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        root = bot_dir / name
        found = root.rglob("*") if root.is_dir() else [root]
        files = sorted(p for p in found if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            digest.update(str(path.relative_to(bot_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def bot_env(layout: BotLayout, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of Rasa processes: offline, no telemetry, and Sanic (the action server) on loopback."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(layout.bot_dir)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["HF_HUB_OFFLINE"] = "1"
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["SANIC_HOST"] = "127.0.0.1"
    env.update(extra or {})
    return env


def train_command(layout: BotLayout, out: Path | str, name: str) -> list[str]:
    """`rasa train` of the project in `layout.bot_dir` (the current folder), writing `<out>/<name>.tar.gz`."""
    return [
        str(layout.rasa),
        "train",
        "--domain",
        "domain",
        "--data",
        "data",
        "--config",
        "config.yml",
        "--out",
        str(out),
        "--fixed-model-name",
        name,
    ]


def train(layout: BotLayout | None = None, *, log: Path | None = None) -> Path:
    """The model for the bot's current training inputs (default layout: the project's bot/), training it first if
    no such model exists."""
    layout = layout or BotLayout()
    if not layout.rasa.exists():
        raise BotProcessError(f"the bot environment is missing ({layout.rasa}): run `make bot-env`")
    name = f"bankbot-{fingerprint(layout.bot_dir)}"
    model = layout.models / f"{name}.tar.gz"
    if model.exists():
        return model
    log = log or layout.bot_dir / "var" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = train_command(layout, layout.models, name)
    with log.open("w") as out, tempfile.TemporaryDirectory(prefix="bot-train-") as scratch:
        env = bot_env(layout, {"TMPDIR": scratch})  # Rasa and TensorFlow leave files in the temporary folder
        result = subprocess.run(command, cwd=layout.bot_dir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0 or not model.exists():
        raise BotProcessError(f"training the bot failed (exit {result.returncode}); see {log}")
    return model


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:`port` and it can be bound now."""
    with socket.socket() as s:
        # As the servers bind: connections of a stopped server lingering in TIME_WAIT do not make the port taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tracker_store_url(location: Path | str) -> str:
    """An SQLAlchemy URL for the bot's tracker store: `location` as given if it has a scheme (`postgresql://...`),
    else an SQLite file at that path (made absolute)."""
    text = str(location)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


def shown_url(url: str) -> str:
    """A database URL fit to print: the password, if any, replaced by ***."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


@dataclass
class BotServer:
    """The Rasa server with the reference channel and the action server, on loopback, as a context manager."""

    model: Path
    token: str
    handoff_db: Path
    layout: BotLayout = field(default_factory=BotLayout)
    rasa_port: int = 5005
    action_port: int = 5055
    log_dir: Path | None = None
    """Where the processes' logs go; default var/logs in the bot's folder."""
    escalation_policy: Path | None = None
    """A different escalation policy file (for example a degraded variant); default bot/escalation.yml."""
    tracker_store: str | None = None
    """Where conversations are kept: an SQLAlchemy URL or an SQLite file path; default `<handoff_db stem>-tracker
    .sqlite3` beside the ticket store, so a server started again on the same ticket store finds its conversations."""
    credentials: Path | None = None
    """A credentials file instead of bot/credentials.yml (for example a channel with other limits)."""
    actions_package: str = "bankbot.actions"
    """The package the action server loads (tests substitute a wrapper that injects faults)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Environment variables for both processes, applied last (tests: PYTHONPATH, SANIC_HOST)."""
    startup_timeout_s: float = 180.0
    _processes: list[subprocess.Popen] = field(default_factory=list, init=False, repr=False)
    _scratch: Path | None = field(default=None, init=False, repr=False)
    """The processes' temporary folder (TMPDIR), removed when they stop: Rasa and TensorFlow leave files there."""
    _action_token: str = field(default="", init=False, repr=False)
    _commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict, init=False, repr=False)
    """How each process was started (command, environment), so `start_process` can start it again."""

    @property
    def logs(self) -> Path:
        """The folder of the processes' logs: `log_dir`, else var/logs in the bot's folder."""
        return self.log_dir if self.log_dir is not None else self.layout.bot_dir / "var" / "logs"

    @property
    def tracker_store_url(self) -> str:
        """The SQLAlchemy URL of the tracker store the Rasa server uses."""
        default = self.handoff_db.with_name(f"{self.handoff_db.stem}-tracker.sqlite3")
        return tracker_store_url(self.tracker_store or default)

    @property
    def action_token(self) -> str:
        """The secret the action server requires (`Authorization: Bearer ...`) in the current start; '' if stopped."""
        return self._action_token

    @property
    def url(self) -> str:
        """The reference channel's webhook URL."""
        return f"http://127.0.0.1:{self.rasa_port}/webhooks/reference/webhook"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}/webhooks/reference/"

    def __enter__(self) -> BotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not self.layout.rasa.exists():
            raise BotProcessError(f"the bot environment is missing ({self.layout.rasa}): run `make bot-env`")
        for name, port in (("--port", self.rasa_port), ("--action-port", self.action_port)):
            if not port_is_free(port):
                # Another server answering there would pass the readiness checks and be taken for this bot.
                raise BotProcessError(
                    f"port {port} on 127.0.0.1 is already in use (another bot or server?): stop it, or choose "
                    f"another port ({name})"
                )
        self.logs.mkdir(parents=True, exist_ok=True)
        self._action_token = secrets.token_urlsafe(32)
        extra = {
            "HANDOFF_DB": str(self.handoff_db),
            "REFERENCE_CHANNEL_TOKEN": self.token,
            "ACTION_SERVER_URL": f"http://127.0.0.1:{self.action_port}/webhook",
            "ACTION_SERVER_TOKEN": self._action_token,
            "TRACKER_STORE_URL": self.tracker_store_url,
        }
        if self.escalation_policy is not None:
            extra["ESCALATION_POLICY"] = str(self.escalation_policy)
        self._scratch = Path(tempfile.mkdtemp(prefix="bot-serve-"))
        extra["TMPDIR"] = str(self._scratch)
        env = bot_env(self.layout, {**extra, **self.extra_env})
        try:
            self._spawn(
                "actions",
                [
                    str(self.layout.venv / "bin" / "python"),
                    "-m",
                    "bankbot.action_server",
                    "--actions",
                    self.actions_package,
                    "--port",
                    str(self.action_port),
                ],
                env,
            )
            self._spawn(
                "rasa",
                [
                    str(self.layout.rasa),
                    "run",
                    "--model",
                    str(self.model),
                    "--credentials",
                    str(self.credentials.resolve()) if self.credentials else "credentials.yml",
                    "--endpoints",
                    "endpoints.yml",
                    "--interface",
                    "127.0.0.1",
                    "--port",
                    str(self.rasa_port),
                ],
                env,
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _log(self, name: str) -> Path:
        return self.logs / f"{name}-{self.rasa_port}.log"

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self._commands[name] = (command, env)
        self._processes.append(self._popen(name, mode="w"))

    def _popen(self, name: str, mode: str) -> subprocess.Popen:
        command, env = self._commands[name]
        log = self._log(name).open(mode)
        process = subprocess.Popen(
            command, cwd=self.layout.bot_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return process

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        action_url = f"http://127.0.0.1:{self.action_port}/health"
        while time.monotonic() < deadline:
            for name, process in zip(("actions", "rasa"), self._processes, strict=False):
                if process.poll() is not None:
                    log = self._log(name)
                    raise BotProcessError(
                        f"the bot's {name} process exited during start-up (exit {process.returncode}); "
                        f"the end of {log}:\n{_tail(log)}"
                    )
            try:
                if (
                    httpx.get(self.health_url, timeout=2).status_code == 200
                    and httpx.get(action_url, timeout=2).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise BotProcessError(
            f"the bot did not become ready within {self.startup_timeout_s:.0f} s; see the logs in {self.logs}"
        )

    def process(self, name: str) -> subprocess.Popen:
        """The running process `actions` or `rasa` (for fault-injection tests and benchmarks)."""
        return self._processes[("actions", "rasa").index(name)]

    def stop_process(self, name: str) -> None:
        """Stop one process, `actions` or `rasa` (SIGTERM, then SIGKILL after 10 s), leaving the other running: an
        outage of one component, as a crash or an operator would cause (fault-injection tests, the probe demo)."""
        _terminate(self.process(name))

    def start_process(self, name: str) -> None:
        """Start a process stopped by `stop_process` (or one that died) again, with the command, environment and
        secret of this start; returns once the bot answers its health checks. Its log is appended to.

        Raises BotProcessError if the process exits during start-up or is not ready within `startup_timeout_s`."""
        index = ("actions", "rasa").index(name)
        if self._processes[index].poll() is None:
            return
        self._processes[index] = self._popen(name, mode="a")
        self._wait_ready()

    def running(self) -> bool:
        """True while every process this server started is alive."""
        return bool(self._processes) and all(p.poll() is None for p in self._processes)

    def stop(self) -> None:
        """Stop every process this server started (SIGTERM, then SIGKILL after 10 s)."""
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            _terminate(process)
        self._processes.clear()
        self._commands.clear()
        self._action_token = ""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def _terminate(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group, SIGKILL after 10 s; returns when it has exited."""
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _tail(log: Path, lines: int = 12) -> str:
    """The last lines of a process log (where Rasa and the action server say why they stopped)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
