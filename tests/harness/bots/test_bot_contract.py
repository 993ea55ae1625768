"""The contract every bot kind passes: the same eval set replayed through `scripted` and through the kind's
adapter, talking to the same behaviour encoded in the kind's wire format on httpx's MockTransport, gives
identical records (ARCHITECTURE.md, seam 1).

The behaviour ("world") is a deterministic function of the conversation and the text, covering answers, intent
rankings, fallbacks, forms, slots, actions, handoffs with queue and rule, and empty replies. Each kind's encoder
writes a BotTurn the way that kind's bot would put it on the wire; the adapter must read it back unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from harness.bots.base import Bot, BotTurn, HttpOptions
from harness.bots.http_json import HttpJsonBot, HttpJsonSettings
from harness.bots.reference import ReferenceBot
from harness.bots.scripted import ScriptedBot, bot_turn
from harness.pipeline import load_suite
from harness.project.config import load_config
from harness.records import COLUMNS, TurnStatus, to_frame
from harness.sources.replay import Journal, replay

EVAL_SETS = Path(__file__).parents[3] / "eval_sets"
CLIENT_SIDE = ["sender_id", "latency_ms", "error", "http_status"]
"""Measured or worded by the client, not observed from the bot: left out of the comparison."""
QUEUES = [("cards", "explicit_human_request"), ("fraud", "fraud_immediate"), ("general", "not_understood_twice")]


def world(sender: str, text: str, turn: int) -> BotTurn:
    """A deterministic bot: what it does depends only on the text and the turn number."""
    draw = int(hashlib.sha256(f"{text}|{turn}".encode()).hexdigest(), 16)
    kind = draw % 10
    confidence = round(0.3 + (draw // 10 % 70) / 100, 2)
    intent = ["greet", "card_lost_stolen", "check_balance", "transfer_money"][draw // 1000 % 4]
    if kind == 0:
        return bot_turn(None, fallback=True, actions=["action_not_understood"], messages=["Sorry?"])
    if kind == 1:
        queue, rule = QUEUES[draw // 100 % 3]
        return bot_turn("request_human", confidence=confidence, handoff=(queue, rule), messages=["Passing you on"])
    if kind == 2:
        return bot_turn(intent, confidence=confidence, messages=[], actions=["action_lookup"])
    if kind == 3:
        return bot_turn(intent, confidence=confidence, active_form="block_card_form", slots={"card_type": "debit"})
    return bot_turn(intent, confidence=confidence, actions=[f"utter_{intent}"], messages=[f"About {intent}", "More?"])


def reference_wire(turn: BotTurn) -> httpx.Response:
    """`turn` as the reference channel sends it (docs/channel.schema.json)."""
    if turn.status is TurnStatus.empty_reply:
        return httpx.Response(500, json={"error": {"code": "empty_reply", "message": "the bot said nothing"}})
    handoff = turn.handoff
    trace = {
        "intent": {"name": turn.intent, "confidence": turn.confidence} if turn.intent else None,
        "ranking": [{"name": r.name, "confidence": r.confidence} for r in turn.ranking or ()],
        "fallback": turn.fallback,
        "entities": [],
        "actions": list(turn.actions or ()),
        "slots_set": dict(turn.slots_set or {}),
        "slots_cleared": [],
        "active_form": turn.active_form,
        "topic": None,
        "handoff": {"queue": handoff.queue, "rule": handoff.rule, "ticket_id": handoff.ticket} if handoff else None,
        "silenced": False,
        "model": turn.model,
        "latency_ms": turn.latency_ms,
    }
    messages = [{"text": m} for m in turn.messages or ()]
    return httpx.Response(200, json={"conversation_id": "c", "messages": messages, "state": turn.state, "trace": trace})


HTTP_JSON = HttpJsonSettings.model_validate(
    {
        "kind": "http_json",
        "url": "http://bot/chat",
        "request": {"json": {"session": "{conversation_id}", "text": "{text}"}},
        "response": {
            "messages": "replies",
            "intent": "nlu.intent",
            "confidence": "nlu.confidence",
            "ranking": "nlu.ranking",
            "fallback": "nlu.fallback",
            "actions": "actions",
            "slots": "slots",
            "handoff_queue": "handoff.queue",
            "handoff_rule": "handoff.rule",
            "ticket": "handoff.ticket",
            "state": "state",
            "active_form": "form",
            "model": "model",
        },
    }
)


def http_json_wire(turn: BotTurn) -> httpx.Response:
    """`turn` as an HTTP bot answering JSON in the shape HTTP_JSON maps."""
    handoff = turn.handoff
    return httpx.Response(
        200,
        json={
            "replies": list(turn.messages or ()),
            "nlu": {
                "intent": turn.intent,
                "confidence": turn.confidence,
                "ranking": None
                if turn.ranking is None
                else [{"name": r.name, "confidence": r.confidence} for r in turn.ranking],
                "fallback": turn.fallback,
            },
            "actions": None if turn.actions is None else list(turn.actions),
            "slots": None if turn.slots_set is None else dict(turn.slots_set),
            "handoff": {"queue": handoff.queue, "rule": handoff.rule, "ticket": handoff.ticket} if handoff else None,
            "state": turn.state,
            "form": turn.active_form,
            "model": turn.model,
        },
    )


def served(encode: Callable[[BotTurn], httpx.Response], read: Callable[[httpx.Request], tuple[str, str]]) -> Any:
    """A MockTransport serving `world`, encoded by `encode`; `read` takes (sender, text) from a request."""
    turns: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        sender, text = read(request)
        turn = turns.get(sender, 0)
        turns[sender] = turn + 1
        return encode(world(sender, text, turn))

    return httpx.MockTransport(handler)


def reference_bot() -> Bot:
    def read(request: httpx.Request) -> tuple[str, str]:
        body = json.loads(request.content)
        return body["sender"], body["message"]

    options = HttpOptions(transport=served(reference_wire, read))
    return ReferenceBot("http://bot/webhooks/reference/webhook", "token", options)


def http_json_bot() -> Bot:
    def read(request: httpx.Request) -> tuple[str, str]:
        body = json.loads(request.content)
        return body["session"], body["text"]

    return HttpJsonBot(HTTP_JSON, "", HttpOptions(transport=served(http_json_wire, read)))


def reference_carries(turn: BotTurn) -> BotTurn:
    """The reference channel reports an empty reply as HTTP 500 with no trace: only the status is known."""
    if turn.status is TurnStatus.empty_reply:
        return BotTurn(turn.status, turn.latency_ms, turn.attempts)
    return turn


def http_json_carries(turn: BotTurn) -> BotTurn:
    """An HTTP bot's reply carries every observation HTTP_JSON maps."""
    return turn


ADAPTERS: dict[str, tuple[Callable[[], Bot], Callable[[BotTurn], BotTurn]]] = {
    "reference": (reference_bot, reference_carries),
    "http_json": (http_json_bot, http_json_carries),
}
"""Each kind: its adapter on a mocked transport serving `world`, and what of a BotTurn its wire can carry."""


def records(bot: Bot, tmp_path: Path) -> pd.DataFrame:
    suite = load_suite(load_config(overrides={"eval_sets": str(EVAL_SETS)}).resolved())
    journal = Journal(tmp_path / f"{bot.kind}.jsonl")
    rows = asyncio.run(replay(suite, bot, run_id="contract", journal=journal, concurrency=4))
    frame = to_frame([row for conversation in rows.values() for row in conversation])
    return frame.drop(columns=CLIENT_SIDE).sort_values(["conversation_id", "turn_index"]).reset_index(drop=True)


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_a_kind_gives_the_records_scripted_gives_for_the_same_behaviour(kind: str, tmp_path: Path) -> None:
    adapter, carries = ADAPTERS[kind]
    expected = records(ScriptedBot(lambda sender, text, turn: carries(world(sender, text, turn))), tmp_path)
    actual = records(adapter(), tmp_path)
    statuses = set(expected["status"])
    assert {"ok", "empty_reply", "not_sent"} <= statuses, statuses  # the world exercises what it should
    assert expected["handoff_queue"].notna().sum() > 20 and expected["active_form"].notna().sum() > 20
    pd.testing.assert_frame_equal(actual, expected)


def test_the_comparison_leaves_out_only_client_side_columns() -> None:
    assert set(CLIENT_SIDE) < set(COLUMNS) and {"intent", "handoff_queue", "bot_messages"} <= set(COLUMNS)
