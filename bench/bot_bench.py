"""Benchmark of the reference bot on this machine: training time from scratch, and per-turn latency and
throughput through the reference channel, sequential and concurrent, measured side by side in one run.

    .venv/bin/python bench/bot_bench.py [--turns 300] [--concurrency 8] [--skip-training]

Writes bench/results/bot.json and bench/results/bot.md. Latency is measured by the client (request sent to
reply parsed), so it includes HTTP, NLU, dialogue policy and the action server round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.bots.reference_bot.server import BotLayout, BotServer, bot_env, free_port, train, train_command

RESULTS = Path(__file__).resolve().parent / "results"
# Four-turn self-service conversations that never hand off, so every turn does the full work.
CONVERSATION = [
    "hi there",
    "what's my balance",
    "how much is 100 pounds in euros",
    "what time do branches open on saturday",
]


def train_from_scratch(layout: BotLayout) -> float:
    """Seconds to train the bot in a fresh copy of bot/ (no Rasa cache, no earlier model)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bot"
        shutil.copytree(layout.bot_dir, copy, ignore=shutil.ignore_patterns("models", ".rasa", "var"))
        started = time.perf_counter()
        subprocess.run(
            train_command(layout, "models", "bench"),
            cwd=copy,
            env=bot_env(BotLayout(bot_dir=copy, venv=layout.venv)),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


async def drive(server: BotServer, turns: int, concurrency: int) -> tuple[list[float], float]:
    """Send `turns` turns as 4-turn conversations, `concurrency` conversations at a time; (latencies ms, wall s)."""
    conversations = -(-turns // len(CONVERSATION))
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def conversation() -> None:
            sender = "bench-" + secrets.token_hex(6)
            async with gate:
                for text in CONVERSATION:
                    started = time.perf_counter()
                    response = await client.post(server.url, json={"sender": sender, "message": text}, headers=headers)
                    response.raise_for_status()
                    response.json()
                    latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(conversation() for _ in range(conversations)))
        return latencies, time.perf_counter() - started


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "turns": len(ordered),
        "turns_per_s": round(len(ordered) / wall, 1),
        "latency_p50_ms": round(statistics.median(ordered), 1),
        "latency_p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-training", action="store_true", help="keep the training time of the last results")
    args = parser.parse_args()

    layout = BotLayout()
    previous = json.loads((RESULTS / "bot.json").read_text()) if (RESULTS / "bot.json").exists() else {}
    train_s = previous.get("train_from_scratch_s") if args.skip_training else round(train_from_scratch(layout), 1)
    model = train(layout)
    with tempfile.TemporaryDirectory() as tmp:
        server = BotServer(
            model=model,
            token=secrets.token_urlsafe(12),
            handoff_db=Path(tmp) / "h.sqlite3",
            rasa_port=free_port(),
            action_port=free_port(),
            log_dir=Path(tmp) / "logs",
        )
        with server:
            asyncio.run(drive(server, 40, 1))  # warm-up: first turns load lazily
            sequential = summary(*asyncio.run(drive(server, args.turns, 1)))
            concurrent = summary(*asyncio.run(drive(server, args.turns, args.concurrency)))
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "model": model.name,
        "train_from_scratch_s": train_s,
        "sequential": sequential,
        "concurrent": {"concurrency": args.concurrency, **concurrent},
        "concurrent_over_sequential_throughput": round(concurrent["turns_per_s"] / sequential["turns_per_s"], 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bot.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "bot.md").write_text(
        f"# Reference bot benchmark\n\nMeasured {result['measured_at']} on {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, model `{model.name}`, by `make bench-bot` (bench/bot_bench.py).\n\n"
        f"- Training from scratch (fresh copy of bot/, no cache): **{train_s} s**\n\n"
        "| mode | turns | turns/s | latency p50 (ms) | latency p95 (ms) |\n|---|---|---|---|---|\n"
        f"| sequential | {sequential['turns']} | {sequential['turns_per_s']} | {sequential['latency_p50_ms']} | "
        f"{sequential['latency_p95_ms']} |\n"
        f"| {args.concurrency} concurrent conversations | {concurrent['turns']} | {concurrent['turns_per_s']} | "
        f"{concurrent['latency_p50_ms']} | {concurrent['latency_p95_ms']} |\n\n"
        f"Concurrent over sequential throughput: {result['concurrent_over_sequential_throughput']}x. Each "
        "conversation is 4 self-service turns (greeting, balance, exchange rate, branch hours) that never hand off; "
        "latency is client-side per turn through the reference channel (HTTP, NLU, policy, action server).\n"
    )
    print((RESULTS / "bot.md").read_text())


if __name__ == "__main__":
    main()
