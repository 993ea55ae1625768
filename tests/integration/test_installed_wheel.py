"""The harness as a bot team installs it (issue 18, item 4): the built wheel in a fresh virtual environment outside
this repository, `harness init` in the folder of a stock Rasa bot, then `harness run`, `harness gate`, `harness review
load` and the pytest plugin there, against that bot served stock.

The bot is tests/fixtures/stock_rasa/helpdesk copied to a temporary folder without its hand-written handoff.yml
(init proposes one) and trained there. The environment gets the wheel with its `review` extra and PyTorch's CPU
build (what a CPU-only team pins; the machine's wheel folder has it). Every harness command runs with the bot's
folder as its working directory and the fresh environment's executables: no path of this repository is given, and
the installed package is checked to come from the environment, not from here.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stock_rasa import HELPDESK, copy_project, serve_stock_rasa, train_project

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_urlsafe(12)
CPU_TORCH = "torch==2.13.0+cpu"
"""PyTorch's CPU build, as the harness environment pins it (requirements.lock); the default wheel pulls CUDA."""


@dataclass(frozen=True)
class Installed:
    bin: Path
    """The fresh environment's bin/ folder."""
    tmp: Path


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900):  # type: ignore[no-untyped-def]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`python -m build` of this repository, installed with the `review` extra into a new virtual environment."""
    tmp = tmp_path_factory.mktemp("wheel")
    ok(run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(REPO)], tmp))
    (wheel,) = (tmp / "dist").glob("bot_quality_harness-*.whl")
    ok(run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp))
    pip = [str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    ok(run([*pip, f"{wheel}[review]", CPU_TORCH, "pytest"], tmp, timeout=1800))
    return Installed(tmp / "venv" / "bin", tmp)


@dataclass(frozen=True)
class Bot:
    folder: Path
    url: str


@pytest.fixture(scope="module")
def bot(installed: Installed) -> Iterator[Bot]:
    """The helpdesk, unchanged but for its missing handoff.yml, trained and served with its action server."""
    folder = copy_project(HELPDESK, installed.tmp / "helpdesk-bot")
    (folder / "handoff.yml").unlink()
    model = train_project(folder, installed.tmp / "models")
    with serve_stock_rasa(folder, model, token=TOKEN, actions=True, log_dir=installed.tmp / "logs") as served:
        yield Bot(folder, served.url)


def harness(installed: Installed, bot: Bot, *args: str) -> subprocess.CompletedProcess[str]:
    """`harness ARGS` from the fresh environment, in the bot's folder, as its team runs it."""
    env = {
        "PATH": f"{installed.bin}:/usr/bin:/bin",
        "HOME": str(installed.tmp),
        "RASA_AUTH_TOKEN": TOKEN,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return run([str(installed.bin / "harness"), *args], bot.folder, env)


@pytest.fixture(scope="module")
def initialised(installed: Installed, bot: Bot) -> str:
    return ok(harness(installed, bot, "init", "--bot-url", bot.url))


def test_the_installed_package_is_the_environments_own(installed: Installed, bot: Bot) -> None:
    where = ok(run([str(installed.bin / "python"), "-c", "import harness; print(harness.__file__)"], bot.folder))
    assert "site-packages" in where and not where.startswith(str(REPO))
    files = ok(run([str(installed.bin / "pip"), "show", "-f", "bot-quality-harness"], bot.folder))
    for shipped in ("harness/project/templates/gate.yml", "harness/review/templates/base.html", "migrations"):
        assert shipped in files, shipped


def test_init_run_gate_and_review_in_the_bots_own_folder(installed: Installed, bot: Bot, initialised: str) -> None:
    assert "harness run" in initialised and "harness gate" in initialised
    for name in ("harness.yml", "handoff.yml", "gate.yml", "review.yml", "eval_sets/helpdesk-bot.yml"):
        assert (bot.folder / name).is_file(), name

    ok(harness(installed, bot, "run"))
    (run_dir,) = (bot.folder / "runs").iterdir()
    for name in ("scorecard.json", "report.html", "turns.parquet", "run.json"):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["eval_set_files"] == ["eval_sets/helpdesk-bot.yml"]  # relative to their project, not this repository
    kpis = json.loads((run_dir / "scorecard.json").read_text())["kpis"]
    assert kpis["conversation_count.v1"]["value"] == 8
    assert kpis["escalation_accuracy.v1"]["value"] is not None  # handoffs observed through the proposed mapping
    with sqlite3.connect(bot.folder / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1

    gate = harness(installed, bot, "gate", "--update-baseline", "baseline")
    assert gate.returncode in (0, 1), gate.stderr
    decision = json.loads((run_dir / "gate.json").read_text())
    assert decision["passed"] == (gate.returncode == 0) and decision["baseline"] is None  # none until one is kept
    if gate.returncode == 0:
        assert (bot.folder / "baseline" / "scorecard.json").is_file()
    against_itself = harness(installed, bot, "gate", "--baseline", str(run_dir))
    assert against_itself.returncode == gate.returncode, against_itself.stdout[-3000:]
    assert json.loads((run_dir / "gate.json").read_text())["baseline"] is not None

    loaded = harness(installed, bot, "review", "load")
    ok(loaded)
    assert (bot.folder / "review.db").is_file()  # beside review.yml

    (bot.folder / "test_release.py").write_text("def test_release(harness_gate):\n    harness_gate().assert_passed()\n")
    plugin = run([str(installed.bin / "python"), "-m", "pytest", "-q", "test_release.py"], bot.folder)
    assert plugin.returncode == gate.returncode, plugin.stdout[-3000:]
