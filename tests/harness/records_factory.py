"""Small hand-made turn-record tables for metric tests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from harness.records import to_frame


def turn(
    conversation: str,
    index: int,
    expected_intent: str | None,
    intent: str | None = None,
    *,
    expected: str | None = "self_served",
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
        # A silenced turn was sent and answered by the channel (with no message): it has a latency too.
        "latency_ms": latency if status in ("ok", "silenced") else None,
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


STATUSES = ("ok", "empty_reply", "channel_error", "timeout", "silenced", "not_sent")
"""Every turn status a record can have (harness.records.TurnStatus)."""


def _maybe(strategy: Any) -> Any:
    return st.one_of(st.none(), strategy)


def record_tables(max_conversations: int = 6, max_turns: int = 4) -> Any:
    """A hypothesis strategy of record tables over every status and label state (labelled, partially labelled,
    unlabelled), with nulls wherever the bot's trace or an optional label can be null, JSON `null` in the JSON
    cells a bot may leave out, and sequences a replay would never write (a turn sent after a failure) as well as
    the ones it does."""
    json_list = st.sampled_from([None, "null", "[]", '["x"]', '["a", "b"]'])
    ranking = st.sampled_from(
        [None, "null", "[]", '[{"name": "a", "confidence": 0.9}, {"name": "b", "confidence": 0.1}, 3]']
    )

    @st.composite
    def one_turn(draw: Any, conversation: str, index: int, labels: dict[str, Any]) -> dict[str, Any]:
        status = draw(st.sampled_from(STATUSES))
        sent = status != "not_sent"
        answered = status == "ok"
        trace = sent and draw(st.booleans())  # a failed turn may still carry a trace, or none at all
        return {
            **labels,
            "run_id": "r",
            "eval_set": draw(_maybe(st.just("t"))),
            "conversation_id": conversation,
            "turn_index": index,
            "text": draw(_maybe(st.sampled_from(["where is my card", "hello", "\x1b<b>bold</b>"]))),
            "expected_intent": draw(_maybe(st.sampled_from(["a", "b", "out_of_scope"]))),
            "checks": draw(st.sampled_from([None, '{"actions": ["x"]}'])),
            "status": status,
            "attempts": int(sent),
            "http_status": draw(_maybe(st.sampled_from([200, 500]))) if sent else None,
            "error": draw(_maybe(st.just("boom"))) if sent and not answered else None,
            "bot_messages": draw(st.sampled_from([None, "null", "[]", '["hi <there>"]'])),
            "n_bot_messages": draw(st.integers(0, 3)) if answered else 0,
            "intent": draw(_maybe(st.sampled_from(["a", "b", "out_of_scope", "nlu_fallback"]))) if trace else None,
            "confidence": draw(_maybe(st.floats(0, 1, width=32))) if trace else None,
            "ranking": draw(ranking) if trace else None,
            "fallback": draw(_maybe(st.booleans())) if trace else None,
            "actions": draw(json_list) if trace else None,
            "slots_set": draw(st.sampled_from([None, "null", "{}", '{"card": "x"}'])) if trace else None,
            "handoff_queue": draw(_maybe(st.sampled_from(["q1", "q2"]))) if trace else None,
            "handoff_rule": draw(_maybe(st.just("rule"))) if trace else None,
            "state": draw(_maybe(st.sampled_from(["active", "handed_off"]))) if trace else None,
            "active_form": draw(_maybe(st.just("form"))) if trace else None,
            "latency_ms": draw(_maybe(st.floats(0, 5000, width=32))) if sent else None,
            "model": draw(_maybe(st.just("m"))) if trace else None,
            "check_passed": draw(_maybe(st.booleans())) if sent else None,
            "check_failures": draw(json_list) if sent else None,
        }

    @st.composite
    def conversation(draw: Any, code: int) -> list[dict[str, Any]]:
        outcome = draw(st.sampled_from(["self_served", "escalated", None]))
        labels = {
            "tags": draw(st.sampled_from([None, "null", "[]", '["fraud"]'])),
            "critical": draw(_maybe(st.just("pin asked"))),
            "expected_outcome": outcome,
            "expected_queue": draw(_maybe(st.sampled_from(["q1", "q2"]))) if outcome == "escalated" else None,
            "resolvable": draw(_maybe(st.booleans())),
        }
        length = draw(st.integers(1, max_turns))
        return [draw(one_turn(f"c{code}", i, labels)) for i in range(length)]

    @st.composite
    def table(draw: Any) -> pd.DataFrame:
        size = draw(st.integers(0, max_conversations))
        return to_frame([row for code in range(size) for row in draw(conversation(code))])

    return table()
