"""Replay overhead: conversations/s of the harness's replay against the real reference bot, versus a bare loop
that posts the same turns with no harness logic, at the same concurrency, side by side in one run.

    .venv/bin/python bench/replay_overhead.py [--rounds 3] [--concurrency 4]

The bare loop sends each conversation's turns in order and stops at a handoff, exactly like the replay, but does
nothing else: no record building, no checks, no journal. Rounds alternate (bare, harness, bare, harness, ...)
so drift on a shared machine hits both. Target (issue 3): the harness keeps at least 95% of the bare loop's
throughput. Writes bench/results/replay.json and replay.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.bots.base import HttpOptions
from harness.bots.reference import ReferenceBot
from harness.bots.reference_bot.server import BotServer, free_port, train
from harness.pipeline import load_suite
from harness.project.config import load_config
from harness.sources.replay import Journal, replay

RESULTS = Path(__file__).resolve().parent / "results"


async def bare_loop(url: str, token: str, conversations: list[list[str]], concurrency: int) -> float:
    """Seconds to post every conversation's turns, stopping at a handoff, with no harness logic."""
    gate = asyncio.Semaphore(concurrency)
    prefix = secrets.token_hex(4)
    async with httpx.AsyncClient(
        timeout=60,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=max(4, concurrency)),
    ) as client:

        async def one(index: int, texts: list[str]) -> None:
            async with gate:
                for text in texts:
                    body = (await client.post(url, json={"sender": f"{prefix}:{index}", "message": text})).json()
                    if body.get("state") == "handed_off":
                        return

        started = time.perf_counter()
        await asyncio.gather(*(one(i, texts) for i, texts in enumerate(conversations)))
        return time.perf_counter() - started


async def harness_replay(url: str, token: str, suite, concurrency: int, folder: Path) -> float:  # type: ignore[no-untyped-def]
    """Seconds for the harness's replay (channel client, records, checks, journal) of the same suite."""
    channel = ReferenceBot(url, token, HttpOptions(max_connections=max(4, concurrency)))
    journal = Journal(folder / f"journal-{secrets.token_hex(4)}.jsonl")
    started = time.perf_counter()
    try:
        await replay(suite, channel, run_id=secrets.token_hex(4), journal=journal, concurrency=concurrency)
    finally:
        await channel.aclose()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    suite = load_suite(load_config().resolved())
    conversations = [[t.text for t in c.conversation.turns] for c in suite.conversations]
    model = train()
    bare_s: list[float] = []
    harness_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = BotServer(
            model=model,
            token="bench",
            handoff_db=Path(tmp) / "h.sqlite3",
            rasa_port=free_port(),
            action_port=free_port(),
            log_dir=Path(tmp) / "logs",
        )
        with server:
            asyncio.run(bare_loop(server.url, "bench", conversations[:20], args.concurrency))  # warm-up
            for _ in range(args.rounds):
                bare_s.append(asyncio.run(bare_loop(server.url, "bench", conversations, args.concurrency)))
                harness_s.append(asyncio.run(harness_replay(server.url, "bench", suite, args.concurrency, Path(tmp))))
    n = len(conversations)
    bare_rate = n / statistics.median(bare_s)
    harness_rate = n / statistics.median(harness_s)
    ratio = harness_rate / bare_rate
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": model.name,
        "conversations": n,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "bare_loop_s": [round(s, 2) for s in bare_s],
        "harness_s": [round(s, 2) for s in harness_s],
        "bare_conversations_per_s": round(bare_rate, 2),
        "harness_conversations_per_s": round(harness_rate, 2),
        "harness_over_bare_throughput": round(ratio, 3),
        "target_min_ratio": 0.95,
        "meets_target": ratio >= 0.95,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "replay.md").write_text(
        f"# Replay overhead\n\nMeasured {result['measured_at']} on {os.cpu_count()} CPUs by "
        f"`bench/replay_overhead.py`, model `{model.name}`, {n} conversations, concurrency {args.concurrency}, "
        f"{args.rounds} alternating rounds (medians).\n\n"
        "| loop | seconds per round | conversations/s |\n|---|---|---|\n"
        f"| bare (posts only) | {', '.join(f'{s:.1f}' for s in bare_s)} | {bare_rate:.2f} |\n"
        f"| harness replay | {', '.join(f'{s:.1f}' for s in harness_s)} | {harness_rate:.2f} |\n\n"
        f"Harness throughput is **{ratio:.1%}** of the bare loop's (target: at least 95%: "
        f"{'met' if ratio >= 0.95 else 'NOT met'}).\n"
    )
    print((RESULTS / "replay.md").read_text())


if __name__ == "__main__":
    main()
