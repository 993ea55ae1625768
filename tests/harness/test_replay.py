"""Replay semantics with the scripted bot, and the reference adapter against httpx's MockTransport."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from harness.bots.base import BotTurn, HttpOptions
from harness.bots.reference import ReferenceBot
from harness.bots.scripted import ScriptedBot, bot_turn
from harness.errors import BotRefused, BotUnreachable
from harness.project.eval_set import Conversation, EvalConversation, EvalSuite
from harness.records import TurnStatus, to_frame
from harness.scoring.checks import judge_checks
from harness.sources.replay import Journal, replay


def suite(*conversations: dict) -> EvalSuite:
    items = tuple(EvalConversation("t", Path("t.yml"), Conversation.model_validate(c)) for c in conversations)
    return EvalSuite(items, (Path("t.yml"),), "hash")


def conversation(cid: str, *texts: str, checks: dict | None = None) -> dict:
    turns = [{"text": t, "intent": "fees"} for t in texts]
    if checks:
        turns[-1]["expect"] = checks
    return {"id": cid, "turns": turns, "expected": {"outcome": "self_served"}, "resolvable": True}


def run(s: EvalSuite, channel: ScriptedBot, tmp_path: Path, concurrency: int = 2) -> dict:
    return asyncio.run(
        replay(s, channel, run_id="r1", journal=Journal(tmp_path / "journal.jsonl"), concurrency=concurrency)
    )


def test_a_handoff_stops_the_conversation_and_later_turns_are_not_sent(tmp_path: Path) -> None:
    def script(sender: str, text: str, turn: int) -> BotTurn:
        return bot_turn("report_fraud", handoff=("fraud", "fraud_immediate")) if text == "fraud!" else bot_turn("fees")

    channel = ScriptedBot(script)
    rows = run(suite(conversation("c1", "hi", "fraud!", "hello?", "anyone?")), channel, tmp_path)["c1"]
    assert [r["status"] for r in rows] == ["ok", "ok", "not_sent", "not_sent"]
    assert rows[1]["handoff_queue"] == "fraud" and [t for _, t in channel.sent] == ["hi", "fraud!"]


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (BotTurn(TurnStatus.timeout, 30000.0, error="no reply within 30 s"), "timeout"),
        (BotTurn(TurnStatus.channel_error, 5.0, http_status=500, error="HTTP 500"), "channel_error"),
        (bot_turn("fees", messages=[]), "empty_reply"),
    ],
)
def test_a_failing_turn_is_recorded_with_its_own_state_and_stops_the_conversation(
    reply: BotTurn, status: str, tmp_path: Path
) -> None:
    channel = ScriptedBot(lambda s, t, n: reply if n == 1 else bot_turn("fees"))
    rows = run(suite(conversation("c1", "a", "b", "c")), channel, tmp_path)["c1"]
    assert [r["status"] for r in rows] == ["ok", status, "not_sent"]
    assert to_frame(rows)["status"].tolist() == ["ok", status, "not_sent"]


def test_checks_are_judged_from_the_table_against_the_recorded_reply(tmp_path: Path) -> None:
    checks = {
        "actions": ["utter_fees"],
        "slots": {"card_type": "debit"},
        "reply_matches": "no monthly fee",
        "reply_excludes": "PIN",
    }
    channel = ScriptedBot(
        lambda s, t, n: bot_turn("fees", actions=["utter_fees"], messages=["Your PIN: no monthly fee"])
    )
    rows = run(suite(conversation("c1", "fees?", checks=checks)), channel, tmp_path)["c1"]
    assert rows[0].get("check_passed") is None  # replay records; scoring judges
    row = judge_checks(to_frame(rows)).iloc[0]
    assert row["check_passed"] is False or row["check_passed"] == False  # noqa: E712 (pandas boolean)
    assert json.loads(row["check_failures"]) == [
        "slot card_type was None, expected 'debit'",
        "reply matches forbidden /PIN/",
    ]


def test_a_resumed_replay_does_not_resend_finished_conversations(tmp_path: Path) -> None:
    s = suite(conversation("c1", "a"), conversation("c2", "b"), conversation("c3", "c"))
    journal = Journal(tmp_path / "journal.jsonl")
    first = ScriptedBot(lambda sender, text, n: bot_turn("fees"))
    asyncio.run(replay(suite(*[{**conversation("c1", "a")}]), first, run_id="r1", journal=journal, concurrency=1))
    # A crash mid-write leaves a cut line; it is ignored.
    with journal.path.open("a") as out:
        out.write('{"conversation_id": "c2", "rows": [')
    second = ScriptedBot(lambda sender, text, n: bot_turn("fees"))
    rows = asyncio.run(replay(s, second, run_id="r1", journal=journal, concurrency=2))
    assert sorted(text for _, text in second.sent) == ["b", "c"]
    assert list(rows) == ["c1", "c2", "c3"]


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    in_flight = peak = 0

    class Slow(ScriptedBot):
        async def send(self, sender: str, text: str) -> BotTurn:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return bot_turn("fees")

    run(suite(*[conversation(f"c{i}", "a", "b") for i in range(12)]), Slow(lambda *a: bot_turn("x")), tmp_path, 3)
    assert peak == 3


def test_an_unreachable_bot_stops_the_run_and_keeps_finished_conversations(tmp_path: Path) -> None:
    def script(sender: str, text: str, turn: int) -> BotTurn:
        if text == "down":
            raise BotUnreachable("cannot reach the bot")
        return bot_turn("fees")

    journal = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(BotUnreachable):
        asyncio.run(
            replay(
                suite(conversation("c1", "a"), conversation("c2", "down")),
                ScriptedBot(script),
                run_id="r",
                journal=journal,
                concurrency=1,
            )
        )
    assert list(journal.finished()) == ["c1"]


def http(handler, retries: int = 3) -> ReferenceBot:  # type: ignore[no-untyped-def]
    options = HttpOptions(backoff_s=0, retries=retries, transport=httpx.MockTransport(handler))
    return ReferenceBot("http://bot/webhooks/reference/webhook", "tok", options)


OK_BODY = {
    "conversation_id": "c",
    "messages": [{"text": "hi"}],
    "state": "active",
    "trace": {"intent": {"name": "greet", "confidence": 0.9}, "handoff": None},
}


def send(channel: ReferenceBot) -> BotTurn:
    return asyncio.run(channel.send("c", "hello"))


def test_connection_failures_and_503_are_retried_then_succeed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, json={"error": {"code": "not_ready", "message": "loading"}})
        return httpx.Response(200, json=OK_BODY)

    reply = send(http(handler))
    assert reply.status is TurnStatus.ok and reply.attempts == 3


def test_a_bot_that_never_accepts_connections_is_unreachable_after_the_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BotUnreachable, match="cannot reach the bot .* after 3 attempts"):
        send(http(handler, retries=2))


def test_a_read_timeout_is_recorded_and_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow")

    reply = send(http(handler))
    assert reply.status is TurnStatus.timeout and len(calls) == 1


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (httpx.Response(500, json={"error": {"code": "empty_reply", "message": "no reply"}}), TurnStatus.empty_reply),
        (httpx.Response(500, json={"error": {"code": "internal_error", "message": "boom"}}), TurnStatus.channel_error),
        (httpx.Response(200, content=b"<html>"), TurnStatus.channel_error),
        (httpx.Response(200, json={**OK_BODY, "messages": []}), TurnStatus.empty_reply),
        (
            httpx.Response(200, json={**OK_BODY, "messages": [], "state": "handed_off", "trace": {"silenced": True}}),
            TurnStatus.silenced,
        ),
    ],
)
def test_replies_are_classified_into_distinct_states(response: httpx.Response, status: TurnStatus) -> None:
    assert send(http(lambda request: response)).status is status


def test_a_rejected_token_stops_the_run_with_a_configuration_error() -> None:
    with pytest.raises(BotRefused, match="rejected the bearer token"):
        send(http(lambda request: httpx.Response(401, json={"error": {"code": "unauthorized", "message": "x"}})))
