"""A small world for review tests: a copy of the project's intents/, eval sets and escalation policy in a temporary
folder, a hand-made run folder whose dialogs carry personal data, and analyst accounts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from records_factory import turn
from sqlalchemy.orm import Session

from harness.project.paths import ProjectPaths
from harness.records import to_frame, write
from harness.review.database import connect
from harness.review.store import Role, add_user

PASSWORD = "correct horse battery"
USERS = {"lea": Role.lead, "ann": Role.analyst, "bob": Role.analyst}
FRAUD_TEXT = "honestly that payment to Zentrixa Ltd was not me at all, my card is 4111 1111 1111 1111"
FRAUD_MASKED = "honestly that payment to Zentrixa Ltd was not me at all, my card is [card number]"
EVAL_TURN = "someone's using my card!!"
"""A customer turn of eval_sets/escalation.yml (conversation escalation-002)."""


def review_project(tmp_path: Path) -> ProjectPaths:
    real = ProjectPaths()
    root = tmp_path / "project"
    shutil.copytree(real.intents, root / "intents")
    shutil.copytree(real.eval_sets, root / "eval_sets")
    (root / "bot").mkdir()
    shutil.copy(real.escalation_policy, root / "bot" / "escalation.yml")
    return ProjectPaths(root)


def _with(row: dict, **values: object) -> dict:
    return {**row, **values}


def review_run(tmp_path: Path) -> Path:
    """A finished run folder: a missed fraud report with a card number, a replayed eval conversation whose
    fraud report was misread, a contact-details change with e-mail and phone, and a clean balance check."""
    rows = [
        _with(
            turn(
                "demo-fraud", 0, "report_fraud", "check_balance", expected="escalated", queue="fraud", resolvable=False
            ),
            text=FRAUD_TEXT,
            confidence=0.27,
            critical="fraud must reach the fraud queue",
            bot_messages='["Your balance is £1,204.50."]',
            ranking='[{"name": "check_balance", "confidence": 0.27}, {"name": "report_fraud", "confidence": 0.22}]',
            actions='["action_check_balance"]',
        ),
        _with(
            turn(
                "escalation-002",
                0,
                "report_fraud",
                "card_lost_stolen",
                expected="escalated",
                queue="fraud",
                resolvable=False,
            ),
            text=EVAL_TURN,
            confidence=0.55,
            eval_set="escalation",
        ),
        _with(
            turn("demo-contact", 0, "update_address", "update_address", fallback=True),
            text="change my email to jo.bloggs@example.com and my mobile to 07700 900123",
            confidence=0.12,
            slots_set='{"email": "jo.bloggs@example.com"}',
        ),
        _with(
            turn("demo-contact", 1, "update_address", "update_address", fallback=True),
            text="change my email to jo.bloggs@example.com and my mobile to 07700 900123 please",
            confidence=0.15,
        ),
        _with(turn("demo-balance", 0, "check_balance", "check_balance"), text="what's my balance"),
    ]
    run_dir = tmp_path / "runs" / "20261122-000000-abcdef"
    run_dir.mkdir(parents=True)
    frame = to_frame(rows)
    frame["run_id"] = "20261122-000000-abcdef"
    write(frame.astype(to_frame([]).dtypes.to_dict()), run_dir / "turns.parquet")
    return run_dir


def add_users(database: str) -> None:
    with Session(connect(database)) as session:
        for name, role in USERS.items():
            add_user(session, name, PASSWORD, role, actor="test")
        session.commit()


@contextmanager
def serving(tmp_path: Path, database: str, root: Path, *flags: str) -> Iterator[str]:
    """`harness review serve` as a real process (waitress) on a free loopback port; its base URL while it runs."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("w") as log:
        command = [sys.executable, "-m", "harness", "review", "serve", "--db", database, "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--root", str(root), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"review app did not start: {log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
