"""Running one probe (harness.sources.probes): fresh sender per attempt, judged in order (unreachable, refused,
status, outcome, queue, reply, latency), retried once, a failing bot recorded as data. Bots: a small fake built on
the scripted kind's `bot_turn`, the `scripted` kind through harness.bots.kinds, and the reference and http_json
kinds on httpx's MockTransport. Every expected figure is worked out from the fake clock and the scripted replies."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.bots import kinds
from harness.bots.base import BotTurn
from harness.bots.scripted import bot_turn
from harness.errors import BotRefused, BotUnreachable
from harness.project.eval_set import Conversation
from harness.project.probe_config import ProbeConfig
from harness.records import ALL_OBSERVATIONS, Observation, TurnStatus
from harness.records.probe_log import FAILED_CHECKS
from harness.sources import probes
from harness.sources.probes import PROBE_SENDER_PREFIX, probe_sender_id, run_cycle, run_probe

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=185)
SENDER = re.compile(r"^harness-probe:reference-bot:(?P<probe>[\w.-]+):[0-9a-f]{8}$")

Reply = BotTurn | BaseException
Script = Callable[[int, int, str], Reply]
"""(attempt number from 1, turn index within the attempt, text) -> the bot's reply, or an exception to raise."""


@dataclass
class FakeBot:
    """A bot whose replies come from `script`; each new sender id is a new attempt."""

    script: Script
    observes: frozenset[Observation] = ALL_OBSERVATIONS
    kind: str = "fake.v1"
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        senders = list(dict.fromkeys(s for s, _ in self.sent))
        attempt = senders.index(conversation_id) + 1 if conversation_id in senders else len(senders) + 1
        turn = sum(1 for s, _ in self.sent if s == conversation_id)
        self.sent.append((conversation_id, text))
        reply = self.script(attempt, turn, text)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def aclose(self) -> None:
        return None

    def senders(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.sent))


class Clock:
    """Starts at T0 and moves 1 s at every reading."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return T0 + timedelta(seconds=self.readings - 1)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


BALANCE = Conversation.model_validate(
    {
        "id": "probe-balance",
        "turns": [
            {"text": "hello", "intent": "greet"},
            {
                "text": "how much have I got",
                "intent": "check_balance",
                "expect": {"actions": ["action_check_balance"], "reply_matches": "Everyday Account"},
            },
        ],
        "expected": {"outcome": "self_served"},
        "resolvable": True,
    }
)
HANDOFF = Conversation.model_validate(
    {
        "id": "probe-handoff-cards",
        "turns": [
            {"text": "my card has not come", "intent": "card_not_arrived"},
            {"text": "a person please", "intent": "request_human", "expect": {"reply_matches": "Cards team"}},
            {"text": "hello?", "intent": None},
        ],
        "expected": {"outcome": "escalated", "queue": "cards", "rule": "explicit_human_request"},
        "resolvable": True,
    }
)


def good_balance(attempt: int, turn: int, text: str) -> Reply:
    if turn == 0:
        return bot_turn("greet", messages=["Hi, I'm Penny"], actions=["utter_greet"], latency_ms=120.0)
    return bot_turn(
        "check_balance",
        messages=["Here are your balances right now. Everyday Account: £1,243.57"],
        actions=["action_check_balance"],
        latency_ms=340.0,
        model="m-7",
    )


def good_handoff(attempt: int, turn: int, text: str) -> Reply:
    if turn == 0:
        return bot_turn("card_not_arrived", messages=["It was posted Monday"], latency_ms=200.0)
    return bot_turn(
        "request_human",
        messages=["A colleague from our Cards team now has this conversation. Your reference is T-1."],
        actions=["action_escalate"],
        handoff=("cards", "explicit_human_request"),
        latency_ms=450.0,
    )


def probe(bot: FakeBot, conversation: Conversation = BALANCE, budget_ms: float = 3000.0, **kwargs: Any) -> Any:
    clock, sleeps = Clock(), Sleeps()
    result = asyncio.run(
        run_probe(
            bot,
            conversation,
            target="reference-bot",
            budget_ms=budget_ms,
            retry_delay_s=2.0,
            stale_after=STALE,
            now=clock,
            sleep=sleeps,
            **kwargs,
        )
    )
    return result, sleeps.waits


def test_a_passing_probe_is_one_attempt_with_its_slowest_turn() -> None:
    bot = FakeBot(good_balance)
    result, waits = probe(bot, prober="host:1")
    assert (result.ok, result.attempts, result.failed_check, result.detail, result.first_failure) == (
        True,
        1,
        None,
        None,
        None,
    )
    assert (result.target, result.probe, result.latency_ms, result.model, result.prober) == (
        "reference-bot",
        "probe-balance",
        340.0,
        "m-7",
        "host:1",
    )
    # Clock readings: the attempt's start (T0) and end (T0 + 1 s); the result holds 185 s from the start.
    assert (result.started_at, result.finished_at, result.holds_until) == (
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=185),
    )
    assert waits == [] and [t for _, t in bot.sent] == ["hello", "how much have I got"]


def test_a_handoff_probe_passes_and_stops_sending_at_the_handoff() -> None:
    bot = FakeBot(good_handoff)
    result, _ = probe(bot, HANDOFF)
    assert (result.ok, result.latency_ms) == (True, 450.0)
    assert [t for _, t in bot.sent] == ["my card has not come", "a person please"]


def test_every_attempt_is_a_fresh_sender_with_the_probe_prefix() -> None:
    bot = FakeBot(lambda attempt, turn, text: BotUnreachable("down"))
    probe(bot)
    first, second = bot.senders()
    assert first != second
    for sender in (first, second):
        match = SENDER.match(sender)
        assert match is not None and match["probe"] == "probe-balance"
        assert sender.startswith(PROBE_SENDER_PREFIX)
    assert SENDER.match(probe_sender_id("reference-bot", "probe-x")) is not None


def test_the_prefix_is_the_one_the_reference_bot_knows() -> None:
    source = (REPO / "bot" / "bankbot" / "handoff_store.py").read_text(encoding="utf-8")
    (value,) = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "PROBE_SENDER_PREFIX" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert value == PROBE_SENDER_PREFIX == "harness-probe:"


@pytest.mark.parametrize(
    ("script", "check", "detail"),
    [
        (lambda a, t, x: BotUnreachable("cannot reach the bot at http://x"), "unreachable", "turn 0: cannot reach"),
        (lambda a, t, x: BotRefused("the bot rejected the bearer token (401)"), "refused", "turn 0: the bot rejected"),
        (
            lambda a, t, x: (
                good_balance(a, t, x) if t == 0 else BotTurn(TurnStatus.timeout, 10_000.0, error="no reply within 10 s")
            ),
            "status",
            "turn 1: timeout: no reply within 10 s",
        ),
        (lambda a, t, x: bot_turn("greet", messages=[]), "status", "turn 0: empty_reply: HTTP 200 with no bot message"),
        (
            lambda a, t, x: bot_turn("request_human", messages=["passing you on"], handoff=("general", "r")),
            "outcome",
            "turn 0: expected self-service, the bot handed off to general",
        ),
        (
            lambda a, t, x: good_balance(a, t, x) if t == 0 else bot_turn("check_balance", messages=["£5"]),
            "reply",
            "turn 1: action action_check_balance did not run; reply does not match /Everyday Account/",
        ),
        (lambda a, t, x: RuntimeError("boom"), "status", "turn 0: the bot adapter failed: RuntimeError: boom"),
    ],
    ids=["unreachable", "refused", "timeout", "empty", "handed-off", "reply", "adapter-exception"],
)
def test_each_failed_check_is_named(script: Script, check: str, detail: str) -> None:
    bot = FakeBot(script)
    result, waits = probe(bot)
    assert check in FAILED_CHECKS
    assert (result.ok, result.failed_check, result.attempts, waits) == (False, check, 2, [2.0])
    assert result.detail.startswith(detail), result.detail
    assert result.first_failure == f"{check}: {result.detail}"


def test_a_failed_turn_stops_the_attempt() -> None:
    bot = FakeBot(lambda a, t, x: BotTurn(TurnStatus.channel_error, 5.0, error="HTTP 502"))
    result, _ = probe(bot)
    # One turn per attempt, two attempts; nothing answered, so no latency.
    assert [t for _, t in bot.sent] == ["hello", "hello"]
    assert (result.failed_check, result.detail, result.latency_ms) == (
        "status",
        "turn 0: channel_error: HTTP 502",
        None,
    )


def test_an_escalated_probe_that_self_serves_fails_on_outcome() -> None:
    bot = FakeBot(lambda a, t, x: bot_turn("greet", messages=["hi"]))
    result, _ = probe(bot, HANDOFF)
    assert (result.failed_check, result.detail) == (
        "outcome",
        "expected a handoff to cards, the bot self-served (3 turn(s))",
    )


def test_a_handoff_to_another_queue_fails_on_queue() -> None:
    def script(attempt: int, turn: int, text: str) -> Reply:
        return bot_turn("request_human", messages=["Your Cards team reference"], handoff=("payments", "r"))

    result, _ = probe(FakeBot(script), HANDOFF)
    assert (result.failed_check, result.detail) == ("queue", "turn 0: handed off to payments, expected cards")


def test_a_reply_check_the_bot_cannot_be_judged_on_does_not_fail() -> None:
    # A bot that reports no actions: the `actions` check is not judged, the reply check still is (and passes).
    result, _ = probe(FakeBot(good_balance, observes=ALL_OBSERVATIONS - {Observation.actions}))
    assert result.ok


@pytest.mark.parametrize(("budget_ms", "ok"), [(340.0, True), (339.99, False)])
def test_latency_budget_edge(budget_ms: float, ok: bool) -> None:
    result, _ = probe(FakeBot(good_balance), budget_ms=budget_ms)
    # The slowest turn took 340 ms: exactly on budget passes, a hair over fails.
    assert result.ok is ok and result.latency_ms == 340.0
    if not ok:
        assert (result.failed_check, result.detail) == ("latency", "turn 1: 340 ms, over the budget of 339.99 ms")


def test_a_retry_that_passes_counts_as_ok_with_the_first_failure_kept() -> None:
    def script(attempt: int, turn: int, text: str) -> Reply:
        return BotUnreachable("connection refused") if attempt == 1 else good_balance(attempt, turn, text)

    bot = FakeBot(script)
    result, waits = probe(bot)
    assert (result.ok, result.attempts, result.failed_check, result.detail) == (True, 2, None, None)
    assert result.first_failure == "unreachable: turn 0: connection refused"
    assert waits == [2.0] and len(bot.senders()) == 2
    # Readings: attempt 1 starts T0, ends T0+1; attempt 2 starts T0+2, ends T0+3. The observation is the first start.
    assert (result.started_at, result.finished_at, result.holds_until) == (
        T0,
        T0 + timedelta(seconds=3),
        T0 + STALE,
    )
    assert result.latency_ms == 340.0


def test_when_both_attempts_fail_the_second_counts() -> None:
    def script(attempt: int, turn: int, text: str) -> Reply:
        if attempt == 1:
            return BotUnreachable("connection refused")
        return bot_turn("request_human", messages=["passing you on"], handoff=("cards", "r"), latency_ms=80.0)

    result, waits = probe(FakeBot(script))
    assert (result.ok, result.attempts, result.failed_check) == (False, 2, "outcome")
    assert result.detail == "turn 0: expected self-service, the bot handed off to cards"
    assert result.first_failure == "unreachable: turn 0: connection refused"
    assert result.latency_ms == 80.0 and waits == [2.0]


def test_a_send_that_hangs_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "SEND_GRACE_S", 0.0)

    class Hanging(FakeBot):
        async def send(self, conversation_id: str, text: str) -> BotTurn:
            self.sent.append((conversation_id, text))
            await asyncio.sleep(30)
            raise AssertionError("not reached")

    result, _ = probe(Hanging(good_balance), turn_timeout_s=0.05)
    assert (result.failed_check, result.detail) == ("status", "turn 0: timeout: no reply within 0.05 s")


def world(sender: str, text: str, turn: int) -> BotTurn:
    """The scripted kind's script (`test_probe_runs:world`): balance and handoff probes answered well."""
    if "card" in text:
        return good_handoff(1, 0, text)  # type: ignore[return-value]
    if "person" in text:
        return good_handoff(1, 1, text)  # type: ignore[return-value]
    return good_balance(1, 0 if text == "hello" else 1, text)  # type: ignore[return-value]


def config(bot: dict[str, Any], **changes: Any) -> ProbeConfig:
    return ProbeConfig.model_validate(
        {"version": 1, "target": "reference-bot", "bot": bot, "probes": "probes.yml", **changes}
    )


def test_a_cycle_runs_every_probe_with_its_own_budget_through_the_scripted_kind() -> None:
    cfg = config(
        {"kind": "scripted", "script": "test_probe_runs:world"},
        latency_budget_ms=400,
        latency_budgets={"probe-handoff-cards": 500},
        stale_after_s=200,
    )
    bot = kinds.connect(cfg.run_config())
    clock, sleeps = Clock(), Sleeps()
    results = asyncio.run(run_cycle(bot, [BALANCE, HANDOFF], cfg, now=clock, sleep=sleeps))
    # Balance: slowest 340 ms within 400. Handoff: slowest 450 ms, over 400 but within its own 500.
    assert [(r.probe, r.ok, r.latency_ms) for r in results] == [
        ("probe-balance", True, 340.0),
        ("probe-handoff-cards", True, 450.0),
    ]
    # One probe after the other: balance reads T0, T0+1; handoff reads T0+2, T0+3.
    assert [r.started_at for r in results] == [T0, T0 + timedelta(seconds=2)]
    assert [r.holds_until for r in results] == [T0 + timedelta(seconds=200), T0 + timedelta(seconds=202)]
    lower = config({"kind": "scripted", "script": "test_probe_runs:world"}, latency_budget_ms=400, stale_after_s=200)
    again = asyncio.run(run_cycle(bot, [HANDOFF], lower, now=Clock(), sleep=Sleeps()))
    assert again[0].failed_check == "latency"


def reference_response(text: str) -> httpx.Response:
    handoff = "person" in text
    trace = {
        "intent": {"name": "request_human" if handoff else "card_not_arrived", "confidence": 0.9},
        "ranking": [],
        "fallback": False,
        "entities": [],
        "actions": ["action_escalate"] if handoff else ["action_card_delivery_status"],
        "slots_set": {},
        "slots_cleared": [],
        "active_form": None,
        "topic": None,
        "handoff": {"queue": "cards", "rule": "explicit_human_request", "ticket_id": "T-P"} if handoff else None,
        "silenced": False,
        "model": "m-9",
        "latency_ms": 12.0,
    }
    message = "A colleague from our Cards team now has this. Your reference is T-P." if handoff else "Posted Monday"
    body = {
        "conversation_id": "c",
        "messages": [{"text": message}],
        "state": "handed_off" if handoff else "active",
        "trace": trace,
    }
    return httpx.Response(200, json=body)


REFERENCE_BOT = {"kind": "reference", "url": "http://bot.test/webhooks/reference/webhook"}


def test_the_reference_kind_on_a_mocked_channel() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        return reference_response(body["message"])

    cfg = config(REFERENCE_BOT)
    bot = kinds.connect(cfg.run_config(), token="t", transport=httpx.MockTransport(handler))
    (result,) = asyncio.run(run_cycle(bot, [HANDOFF], cfg, now=Clock(), sleep=Sleeps()))
    assert (result.ok, result.model, result.attempts) == (True, "m-9", 1)
    assert [b["message"] for b in seen] == ["my card has not come", "a person please"]
    assert SENDER.match(seen[0]["sender"]) and seen[0]["sender"] == seen[1]["sender"]


@pytest.mark.parametrize(
    ("handler", "check"),
    [
        (lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)), "unreachable"),
        (lambda request: httpx.Response(401, json={"error": {"code": "unauthorized"}}), "refused"),
        (lambda request: httpx.Response(503, json={"error": {"code": "not_ready", "message": "x"}}), "status"),
    ],
    ids=["connection-refused", "wrong-token", "not-ready"],
)
def test_a_failing_reference_channel_is_data(handler: Callable[[httpx.Request], httpx.Response], check: str) -> None:
    calls: list[str] = []

    def counted(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return handler(request)

    cfg = config(REFERENCE_BOT)
    bot = kinds.connect(cfg.run_config(), token="t", transport=httpx.MockTransport(counted))
    (result,) = asyncio.run(run_cycle(bot, [BALANCE], cfg, now=Clock(), sleep=Sleeps()))
    assert (result.ok, result.failed_check, result.attempts) == (False, check, 2)
    # run_config() turns the HTTP client's own retries off: one request per attempt, the probe's retry is the retry.
    assert len(calls) == 2


def test_the_http_json_kind_on_a_mocked_transport() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["text"]
        if text == "hello":
            return httpx.Response(200, json={"replies": ["Hi"], "actions": ["utter_greet"]})
        return httpx.Response(
            200, json={"replies": ["Everyday Account: £1,243.57"], "actions": ["action_check_balance"]}
        )

    bot_section = {
        "kind": "http_json",
        "url": "http://bot.test/chat",
        "request": {"json": {"session": "{conversation_id}", "text": "{text}"}},
        "response": {"messages": "replies", "actions": "actions"},
    }
    cfg = config(bot_section)
    bot = kinds.connect(cfg.run_config(), transport=httpx.MockTransport(handler))
    (result,) = asyncio.run(run_cycle(bot, [BALANCE], cfg, now=Clock(), sleep=Sleeps()))
    assert (result.ok, result.failed_check) == (True, None)
    wrong = httpx.MockTransport(lambda request: httpx.Response(200, json={"replies": ["Hi"], "actions": []}))
    bot = kinds.connect(cfg.run_config(), transport=wrong)
    (result,) = asyncio.run(run_cycle(bot, [BALANCE], cfg, now=Clock(), sleep=Sleeps()))
    assert (result.failed_check, result.detail) == (
        "reply",
        "turn 1: action action_check_balance did not run; reply does not match /Everyday Account/",
    )
