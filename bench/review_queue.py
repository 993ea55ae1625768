"""Review app response times as the review database grows: the queue (plain, filtered, deep pages) and the
dialog view (which finds the next dialog to review), on SQLite with 1,000 to 50,000 synthetic dialogs.

    .venv/bin/python bench/review_queue.py [--sizes 1000 10000 50000] [--repeats 5]

A contact centre loading a day's flagged dialogs reaches tens of thousands within months; the queue must stay
quick (target: under 0.5 s a page at 50,000 dialogs). Each figure is the median of `repeats` requests through
Flask's test client (no network), after one warm-up request. Writes bench/results/review_queue.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from harness.project.paths import ProjectPaths
from harness.review.app import Vocabulary, create_app
from harness.review.config import load_review_config
from harness.review.database import connect
from harness.review.flagging import RULES
from harness.review.store import Dialog, DialogFlag, Role, Run, add_user

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "benchmark password"
INTENTS = ["card_lost_stolen", "check_balance", "transfer_status", "fees", "report_fraud", "update_address"]
QUEUES = ["cards", "fraud", "payments", "complaints", None]


def synthetic_dialog(rng: np.random.Generator, run: Run, number: int) -> Dialog:
    """A dialog shaped like the replayed ones: 2-8 turns, each with a ranking, actions, slots and bot messages."""
    rules = sorted(set(rng.choice(list(RULES), size=int(rng.integers(1, 4)))))
    turns = [
        {
            "index": index,
            "text": "I think someone has used my card for a payment I never made " * 2,
            "bot_messages": ["I'm sorry to hear that. Let me check the recent payments on your account."],
            "intent": str(rng.choice(INTENTS)),
            "confidence": float(rng.random()),
            "ranking": [{"name": name, "confidence": float(rng.random())} for name in INTENTS],
            "actions": ["action_check_recent_payments", "utter_ask_confirm"],
            "slots": {"card_type": "debit", "amount": "£23.40"},
            "handoff": None,
        }
        for index in range(int(rng.integers(2, 9)))
    ]
    return Dialog(
        run=run,
        conversation_id=f"conversation-{number:06d}",
        intent=str(rng.choice(INTENTS)),
        actual_outcome="self_served",
        expected_label="escalated:fraud",
        expected_queue=QUEUES[int(rng.integers(0, len(QUEUES)))],
        actual_queue=QUEUES[int(rng.integers(0, len(QUEUES)))],
        priority=int(rng.integers(0, 15)),
        sampled=bool(rng.random() < 0.1),
        flags=[{"rule": rule, "reason": f"{rule} fired on turn 0"} for rule in rules],
        flag_rows=[DialogFlag(rule=rule) for rule in rules],
        turns=turns,
    )


def fill(database: str, size: int) -> None:
    rng = np.random.default_rng(size)
    with Session(connect(database)) as session:
        add_user(session, "analyst", PASSWORD, Role.analyst, actor="bench")
        for start in range(0, size, 5000):
            run = Run(run_id=f"run-{start}", source="bench", conversations=5000, selection={})
            session.add_all(synthetic_dialog(rng, run, n) for n in range(start, min(size, start + 5000)))
            session.commit()


def median_seconds(client: Any, path: str, repeats: int) -> float:
    assert client.get(path).status_code == 200, path  # warm-up, and a check that the page works
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(size: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/review.db"
        fill(database, size)
        paths = ProjectPaths()
        app = create_app(database, load_review_config(), paths, Vocabulary.of(paths), testing=True)
        app.config["WTF_CSRF_ENABLED"] = False
        client = app.test_client()
        client.post("/login", data={"username": "analyst", "password": PASSWORD})
        middle = size // 2
        return {
            "queue": median_seconds(client, "/", repeats),
            "queue, filtered by flag": median_seconds(client, "/?flag=repetition", repeats),
            "queue, not reviewed by me": median_seconds(client, "/?status=open", repeats),
            "queue, last page": median_seconds(client, f"/?page={size // 100}", repeats),
            "dialog view": median_seconds(client, f"/dialogs/{middle}", repeats),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {size: measure(size, args.repeats) for size in args.sizes}
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "repeats": args.repeats,
        "seconds": {str(size): figures for size, figures in results.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "review_queue.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    pages = list(next(iter(results.values())))
    lines = [
        "# Review app: response time as the database grows",
        "",
        f"`bench/review_queue.py`, {record['measured_at']}, {record['machine']}; SQLite; median of "
        f"{args.repeats} requests, in seconds. Target: under 0.5 s a page at 50,000 dialogs.",
        "",
        "| page | " + " | ".join(f"{size:,} dialogs" for size in results) + " |",
        "|---|" + "---:|" * len(results),
        *[f"| {page} | " + " | ".join(f"{results[size][page]:.3f}" for size in results) + " |" for page in pages],
        "",
    ]
    (RESULTS / "review_queue.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
