"""Small hand-made turn-record tables for metric tests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from harness.records import to_frame


def turn(
    conversation: str,
    index: int,
    expected_intent: str | None,
    intent: str | None = None,
    *,
    expected: str = "self_served",
    queue: str | None = None,
    resolvable: bool = True,
    status: str = "ok",
    fallback: bool = False,
    handoff: str | None = None,
    messages: int = 1,
    latency: float | None = 10.0,
    checks: bool = False,
    check_passed: bool | None = None,
    active_form: str | None = None,
) -> dict[str, Any]:
    sent = status != "not_sent"
    return {
        "run_id": "r",
        "eval_set": "t",
        "conversation_id": conversation,
        "tags": "[]",
        "expected_outcome": expected,
        "expected_queue": queue,
        "resolvable": resolvable,
        "turn_index": index,
        "text": f"{conversation}-{index}",
        "expected_intent": expected_intent,
        "checks": json.dumps({"actions": ["x"]}) if checks else None,
        "status": status,
        "attempts": 1 if sent else 0,
        "n_bot_messages": messages if status == "ok" else 0,
        "bot_messages": "[]",
        "intent": intent if sent else None,
        "confidence": 0.9 if intent else None,
        "fallback": fallback if sent else None,
        "handoff_queue": handoff,
        "active_form": active_form,
        "latency_ms": latency if status == "ok" else None,
        "check_passed": check_passed,
    }


def fraud_conversation(*, handed_to_fraud: bool) -> dict[str, Any]:
    """`fraud-1`, tagged fraud: one report_fraud turn, handed to the fraud queue or misread as `fees`."""
    row = turn(
        "fraud-1",
        0,
        "report_fraud",
        "report_fraud" if handed_to_fraud else "fees",
        expected="escalated",
        queue="fraud",
        resolvable=False,
        handoff="fraud" if handed_to_fraud else None,
    )
    return {**row, "tags": '["fraud"]'}


def worked_example() -> pd.DataFrame:
    """Five conversations whose KPIs are worked out in test_metrics.py."""
    return to_frame(
        [
            # A: lost-card flow, completed, checks pass.
            turn("A", 0, "card_lost_stolen", "card_lost_stolen", latency=10),
            turn("A", 1, "inform", "inform", latency=20, active_form="block_card_form"),
            turn("A", 2, "affirm", "affirm", latency=30, checks=True, check_passed=True),
            # B: balance then fraud, handed to the fraud queue as expected.
            turn(
                "B",
                0,
                "check_balance",
                "check_balance",
                expected="escalated",
                queue="fraud",
                resolvable=False,
                latency=40,
            ),
            turn(
                "B",
                1,
                "report_fraud",
                "report_fraud",
                expected="escalated",
                queue="fraud",
                resolvable=False,
                handoff="fraud",
                latency=50,
            ),
            # C: transfer misread as refund, then a human request sent to general instead of payments.
            turn("C", 0, "transfer_status", "refund_status", expected="escalated", queue="payments", latency=60),
            turn(
                "C",
                1,
                "request_human",
                "request_human",
                expected="escalated",
                queue="payments",
                handoff="general",
                latency=70,
            ),
            # D: out-of-scope question falsely accepted, then a fallback: abandoned.
            turn("D", 0, "out_of_scope", "top_up", latency=80),
            turn("D", 1, "fees", "fees", fallback=True, latency=90),
            # E: the channel fails on the first turn; the second is not sent.
            turn("E", 0, "check_balance", None, status="channel_error"),
            turn("E", 1, "thanks", None, status="not_sent", checks=True),
        ]
    )


def random_records(seed: int, conversations: int = 30) -> pd.DataFrame:
    """A random but well-formed record table (for contract tests)."""
    rng = np.random.default_rng(seed)
    intents = ["a", "b", "c", "out_of_scope", None]
    rows = []
    for c in range(conversations):
        expected = rng.choice(["self_served", "escalated"])
        queue = rng.choice(["q1", "q2"]) if expected == "escalated" else None
        length = int(rng.integers(1, 5))
        stopped = False
        for i in range(length):
            if stopped:
                rows.append(turn(f"c{c}", i, rng.choice(intents), status="not_sent", expected=expected, queue=queue))
                continue
            status = rng.choice(["ok"] * 8 + ["timeout", "channel_error", "empty_reply"])
            handoff = rng.choice(["q1", "q2"]) if status == "ok" and rng.random() < 0.2 else None
            rows.append(
                turn(
                    f"c{c}",
                    i,
                    rng.choice(intents),
                    rng.choice(["a", "b", "c", "out_of_scope"]),
                    expected=expected,
                    queue=queue,
                    resolvable=bool(rng.random() < 0.7),
                    status=status,
                    fallback=bool(rng.random() < 0.2),
                    handoff=handoff,
                    messages=int(rng.integers(1, 3)),
                    latency=float(rng.gamma(2, 50)),
                    checks=bool(rng.random() < 0.3),
                    check_passed=bool(rng.random() < 0.8),
                )
            )
            stopped = handoff is not None or status != "ok"
    return to_frame(rows)
