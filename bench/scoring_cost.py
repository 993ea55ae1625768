"""Scoring cost: every KPI with its interval over 1,000,000 synthetic turn records (about 200,000 conversations).

    .venv/bin/python bench/scoring_cost.py [--turns 1000000] [--replicates 1000]

Target (issue 3): under 10 s and under 2 GB of memory on a 2-core machine. Time covers building the scoring core
and computing the current version of every registered KPI with its interval (each KPI's own method, see
harness/scoring/metrics/intervals.py; the bootstrap is built only for the gate's paired tests), from a record
table already in memory. Memory is the process's peak resident set (VmHWM, reset just before scoring), so it
includes the records.
Writes bench/results/scoring.json and scoring.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from harness.records import COLUMNS
from harness.scoring.metrics import ScoringOptions, build_core, compute_all

RESULTS = Path(__file__).resolve().parent / "results"
INTENTS = np.array(
    [
        "card_lost_stolen",
        "check_balance",
        "transfer_status",
        "fees",
        "report_fraud",
        "greet",
        "out_of_scope",
        "request_human",
    ]
)


def synthetic_records(turns: int, seed: int = 1) -> pd.DataFrame:
    """A realistic-shaped record table: 1-9 turns per conversation (mean 5), some handoffs, errors, fallbacks."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, size=turns // 5 + 1000)
    lengths = lengths[np.cumsum(lengths) <= turns]
    conversation = np.repeat(np.arange(lengths.size), lengths)
    n = conversation.size
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    turn_index = np.arange(n) - starts
    escalated = rng.random(lengths.size) < 0.3
    expected_intent = INTENTS[rng.integers(0, INTENTS.size, n)]
    predicted = np.where(rng.random(n) < 0.85, expected_intent, INTENTS[rng.integers(0, INTENTS.size, n)])
    status = np.where(rng.random(n) < 0.995, "ok", "timeout")
    last = turn_index == np.repeat(lengths, lengths) - 1
    handoff = np.where(last & np.repeat(escalated, lengths) & (rng.random(n) < 0.9), "cards", None)
    frame = pd.DataFrame(
        {
            "run_id": "bench",
            "eval_set": "synthetic",
            "conversation_id": pd.Series(conversation).map("c{:07d}".format),
            "tags": "[]",
            "critical": None,
            "expected_outcome": np.repeat(np.where(escalated, "escalated", "self_served"), lengths),
            "expected_queue": np.repeat(np.where(escalated, "cards", None), lengths),
            "expected_rule": None,
            "resolvable": np.repeat(~escalated, lengths),
            "turn_index": turn_index,
            "text": "synthetic",
            "expected_intent": expected_intent,
            "checks": np.where(last & (rng.random(n) < 0.3), '{"actions":["x"]}', None),
            "status": status,
            "attempts": 1,
            "http_status": 200,
            "error": None,
            "bot_messages": "[]",
            "n_bot_messages": rng.integers(1, 3, n),
            "intent": predicted,
            "confidence": rng.random(n),
            "ranking": None,
            "fallback": rng.random(n) < 0.05,
            "actions": None,
            "slots_set": None,
            "handoff_queue": handoff,
            "handoff_rule": np.where(handoff == "cards", "explicit_human_request", None),
            "ticket_id": None,
            "state": "active",
            "active_form": None,
            "latency_ms": rng.gamma(2.0, 60.0, n),
            "model": "bench",
            "check_passed": rng.random(n) < 0.9,
            "check_failures": None,
        }
    )
    return frame.reindex(columns=list(COLUMNS)).astype(COLUMNS)  # columns it does not set are null


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--replicates", type=int, default=1000)
    args = parser.parse_args()
    records = synthetic_records(args.turns)
    conversations = records["conversation_id"].nunique()
    reset_peak_rss()
    started = time.perf_counter()
    results = compute_all(build_core(records, ScoringOptions(bootstrap_replicates=args.replicates)))
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "turns": len(records),
        "conversations": conversations,
        "bootstrap_replicates": args.replicates,
        "kpis": len(results),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak),
        "targets": {"seconds": 10, "peak_rss_mb": 2048},
        "meets_targets": seconds < 10 and peak < 2048,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scoring.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "scoring.md").write_text(
        f"# Scoring cost\n\nMeasured {result['measured_at']} on {os.cpu_count()} CPUs by `bench/scoring_cost.py`.\n\n"
        f"All {len(results)} current KPIs with their 95% intervals (bootstrap_replicates {args.replicates}) over "
        f"{len(records):,} synthetic turn records ({conversations:,} conversations): **{seconds:.2f} s**, process "
        f"peak RSS **{peak:.0f} MB** (records included). Targets: < 10 s, < 2048 MB: "
        f"{'met' if result['meets_targets'] else 'NOT met'}.\n"
    )
    print((RESULTS / "scoring.md").read_text())


if __name__ == "__main__":
    main()
