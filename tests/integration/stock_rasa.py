"""Stock Rasa 3.x assistants for the integration tests of the `rasa` bot kind: create Rasa's starter assistant
with `rasa init`, train a project, and serve a model with `rasa run --enable-api` (plus `rasa run actions`) on
loopback ports, stopping everything on exit.

The assistants are used as they come; only deployment settings are chosen here (ports, the auth token, the
action server's URL). Models and Rasa's caches are written to the caller's folders, never into
tests/fixtures. Every command runs in the bot environment (.venv-bot) with Rasa's telemetry off and a private
TMPDIR; nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.bots.reference_bot.server import BotLayout, BotProcessError, bot_env, free_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stock_rasa"
HELPDESK = FIXTURES / "helpdesk"
"""The Brightline Broadband helpdesk: a small stock-style assistant with a form, custom actions and handoffs."""
STARTER_EVAL = FIXTURES / "starter_eval.yml"
"""An eval set for the assistant `rasa init` creates."""

_LAYOUT = BotLayout(Path(__file__).resolve().parents[2] / "bot", Path(__file__).resolve().parents[2] / ".venv-bot")
_LOG_TAIL_LINES = 40


def rasa_command() -> Path:
    """The bot environment's `rasa` executable; raises BotProcessError when the environment is missing."""
    if not _LAYOUT.rasa.exists():
        raise BotProcessError(f"the bot environment is missing ({_LAYOUT.rasa}): run `make bot-env`")
    return _LAYOUT.rasa


def rasa_env(project: Path, scratch: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Rasa command for `project`: its folder on PYTHONPATH (for `actions`), telemetry off
    (the machine's Rasa config may enable it, and it would try the network), the action server on loopback
    (rasa-sdk binds SANIC_HOST, default 0.0.0.0), TMPDIR in `scratch`."""
    settings = {"TMPDIR": str(scratch), "RASA_TELEMETRY_ENABLED": "false", "SANIC_HOST": "127.0.0.1"}
    return bot_env(BotLayout(bot_dir=project), {**settings, **(extra or {})})


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of the assistant at `source` in `destination` (created), without models, caches or compiled files,
    so that training and serving never write into the original (for example tests/fixtures)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("models", ".rasa", "__pycache__", "*.pyc"))
    return destination


def _run_logged(command: list[str], *, cwd: Path, log: Path, what: str) -> None:
    """Run a Rasa command with its output in `log`; raises BotProcessError with the log's tail when it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stock-rasa-") as scratch, log.open("w") as out:
        # Rasa's training cache goes to the scratch folder too, not into the project.
        env = rasa_env(cwd, Path(scratch), {"RASA_CACHE_DIRECTORY": str(Path(scratch) / "cache")})
        result = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BotProcessError(f"{what} failed (exit {result.returncode}); the end of {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(the log cannot be read: {exc})"


def rasa_init_project(tmp: Path) -> Path:
    """Rasa's starter assistant, created by `rasa init --no-prompt` in `<tmp>/starter` and returned.

    `--no-prompt` always trains the starter's model too (the default pipeline, 100 DIET and TED epochs; about
    130 s on 2 shared cores); that model is in `<project>/models/` (see `init_model`). Raises BotProcessError
    with the log's tail (`<tmp>/rasa-init.log`) when the command fails.
    """
    project = tmp / "starter"
    project.mkdir(parents=True)
    command = [str(rasa_command()), "init", "--no-prompt", "--init-dir", str(project)]
    _run_logged(command, cwd=project, log=tmp / "rasa-init.log", what="`rasa init --no-prompt`")
    init_model(project)
    return project


def init_model(project: Path) -> Path:
    """The newest model in `<project>/models/` (the one `rasa init` trained); raises BotProcessError if none."""
    models = sorted((project / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise BotProcessError(f"no trained model in {project / 'models'}: did `rasa init` train one?")
    return models[-1]


def train_project(project: Path, out: Path, *, name: str | None = None) -> Path:
    """Train the assistant in `project` (config.yml, domain.yml or domain/, data/) into `<out>/<name>.tar.gz`
    and return that path; `name` defaults to the project folder's name. The log is `<out>/train-<name>.log`.

    Raises BotProcessError with the log's tail when training fails or leaves no model.
    """
    project, out = project.resolve(), out.resolve()
    name = name or project.name
    domain = "domain.yml" if (project / "domain.yml").exists() else "domain"
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(rasa_command()),
        "train",
        "--config",
        "config.yml",
        "--domain",
        domain,
        "--data",
        "data",
        "--out",
        str(out),
        "--fixed-model-name",
        name,
    ]
    log = out / f"train-{name}.log"
    _run_logged(command, cwd=project, log=log, what=f"training {project}")
    model = out / f"{name}.tar.gz"
    if not model.exists():
        raise BotProcessError(f"training {project} left no model at {model}; the end of {log}:\n{_tail(log)}")
    return model


@dataclass(frozen=True)
class StockRasa:
    """A served stock Rasa assistant."""

    url: str
    """The Rasa server's root, `http://127.0.0.1:<port>` (the REST channel is `<url>/webhooks/rest/webhook`)."""
    token: str
    """The HTTP API's `--auth-token` (pass it as `?token=`; the REST channel needs none)."""
    model: Path
    """The model file being served."""
    actions_url: str | None
    """The action server's webhook URL, or None when no action server runs."""
    log_dir: Path
    """Where `rasa.log` and `actions.log` are."""

    def tracker(self, sender: str) -> dict:
        """The conversation's tracker as the HTTP API gives it (`GET /conversations/<sender>/tracker`)."""
        response = httpx.get(f"{self.url}/conversations/{sender}/tracker", params={"token": self.token}, timeout=60)
        response.raise_for_status()
        return response.json()

    def status(self) -> dict:
        """The server's `GET /status`: `model_id` (the id the tracker's events carry) and `model_file`."""
        response = httpx.get(f"{self.url}/status", params={"token": self.token}, timeout=60)
        response.raise_for_status()
        return response.json()

    def say(self, sender: str, text: str) -> list[dict]:
        """Send one message through the REST channel; the bot's messages as the channel returns them."""
        response = httpx.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        response.raise_for_status()
        return response.json()


@contextmanager
def serve_stock_rasa(
    project: Path, model: Path, *, token: str, actions: bool, log_dir: Path, startup_timeout_s: float = 240.0
) -> Iterator[StockRasa]:
    """Serve `model` with `rasa run --enable-api --auth-token <token>` (REST channel from the project's
    credentials.yml) on a free loopback port, and `rasa run actions` from the project's `actions` package when
    `actions` is true; yields once `GET /status` answers with the model loaded (and the action server's `/health`
    answers), and stops every process it started on exit, also on errors.

    The project's own endpoints.yml is not used (it may name stores or ports of another machine): when `actions`
    is true, an endpoints file naming only the action server is written to `log_dir`. Raises BotProcessError
    when a process exits during start-up or the server is not ready within `startup_timeout_s` (with log tails).
    """
    model, project, log_dir = model.resolve(), project.resolve(), log_dir.resolve()
    if not model.is_file():
        # `rasa run` would start without a model and answer every request with 409 "No agent loaded".
        raise BotProcessError(f"no model file at {model}")
    log_dir.mkdir(parents=True, exist_ok=True)
    rasa = str(rasa_command())
    rasa_port = free_port()
    actions_url = None
    # Without --endpoints, `rasa run` reads the project's endpoints.yml anyway; ours names only the action server.
    endpoints = log_dir / "endpoints.yml"
    command = [rasa, "run", "--enable-api", "--auth-token", token, "--model", str(model), "--endpoints", str(endpoints)]
    command += ["--interface", "127.0.0.1", "--port", str(rasa_port), "--credentials", "credentials.yml"]
    scratch = Path(tempfile.mkdtemp(prefix="stock-rasa-serve-"))
    processes: dict[str, subprocess.Popen] = {}
    try:
        env = rasa_env(project, scratch)
        if actions:
            action_port = free_port()
            actions_url = f"http://127.0.0.1:{action_port}/webhook"
            endpoints.write_text(f'action_endpoint:\n  url: "{actions_url}"\n')
            action_command = [rasa, "run", "actions", "--actions", "actions", "--port", str(action_port)]
            processes["actions"] = _spawn("actions", action_command, project, env, log_dir)
        else:
            endpoints.write_text("{}\n")
        processes["rasa"] = _spawn("rasa", command, project, env, log_dir)
        served = StockRasa(f"http://127.0.0.1:{rasa_port}", token, model, actions_url, log_dir)
        _wait_ready(served, processes, startup_timeout_s)
        yield served
    finally:
        _stop(processes)
        shutil.rmtree(scratch, ignore_errors=True)


def _spawn(name: str, command: list[str], cwd: Path, env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    with (log_dir / f"{name}.log").open("w") as log:
        # A session of its own, so that stopping it also stops whatever it started.
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(served: StockRasa, processes: dict[str, subprocess.Popen], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                log = served.log_dir / f"{name}.log"
                raise BotProcessError(
                    f"`rasa {'run actions' if name == 'actions' else 'run'}` exited during start-up "
                    f"(exit {process.returncode}); the end of {log}:\n{_tail(log)}"
                )
        if _answers(served):
            return
        time.sleep(0.5)
    raise BotProcessError(
        f"the stock Rasa server did not become ready within {timeout_s:.0f} s; see the logs in {served.log_dir}"
    )


def _answers(served: StockRasa) -> bool:
    """True once the server has its model loaded and the action server (if any) is up."""
    try:
        status = httpx.get(f"{served.url}/status", params={"token": served.token}, timeout=2)
        if status.status_code != 200 or not status.json().get("model_id"):
            return False
        if served.actions_url is not None:
            health = served.actions_url.removesuffix("/webhook") + "/health"
            return httpx.get(health, timeout=2).status_code == 200
        return True
    except (httpx.HTTPError, ValueError):
        return False


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each process's session, then SIGKILL after 10 s."""
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    processes.clear()
