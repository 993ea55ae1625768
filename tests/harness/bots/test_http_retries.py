"""Retries of transient answers (harness.bots.http) and how the reference kind tells a refusal it may send again
(503 `not_ready` / `overloaded`) from one it must not (any other 503), on httpx.MockTransport."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from harness.bots.base import BotTurn, HttpOptions
from harness.bots.http import JITTER, RETRY_AFTER_CAP_S, HttpClient, retry_after_s
from harness.bots.reference import ReferenceBot
from harness.records import TurnStatus

URL = "http://bot/webhooks/reference/webhook"
OK_BODY = {
    "conversation_id": "c",
    "messages": [{"text": "hi"}],
    "state": "active",
    "trace": {"intent": {"name": "greet", "confidence": 0.9}, "handoff": None},
}


def overloaded(retry_after: str | None = "2") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": "overloaded", "message": "the bot is serving as many conversations as it can"}}
    return httpx.Response(503, json=body, headers=headers)


def scripted(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[int]]:
    """A transport giving `answers` in order (the last one again when they run out); the list counts requests."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    return httpx.MockTransport(handler), calls


def client(transport: httpx.MockTransport, *, retries: int = 3, backoff_s: float = 0.5) -> tuple[HttpClient, list]:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    options = HttpOptions(retries=retries, backoff_s=backoff_s, transport=transport)
    return HttpClient(options, sleep=record), waits


def test_a_503_is_retried_waiting_the_longer_of_backoff_and_retry_after_with_jitter() -> None:
    transport, calls = scripted(overloaded("2"), overloaded(None), overloaded("1"), httpx.Response(200, json=OK_BODY))
    http, waits = client(transport)
    exchange = asyncio.run(http.request("POST", URL, json={}))
    assert exchange.response is not None and exchange.response.status_code == 200
    assert (exchange.attempts, len(calls)) == (4, 4)
    # Retry-After 2 beats the 0.5 s backoff; no header: backoff 1 s; Retry-After 1 loses to the 2 s backoff.
    for waited, base in zip(waits, [2.0, 1.0, 2.0], strict=True):
        assert base <= waited <= base * (1 + JITTER)


def test_a_long_retry_after_is_capped() -> None:
    transport, _ = scripted(overloaded("3600"), httpx.Response(200, json=OK_BODY))
    http, waits = client(transport)
    asyncio.run(http.request("POST", URL))
    assert waits == [RETRY_AFTER_CAP_S]


def test_when_the_retries_run_out_the_last_refusal_is_the_answer() -> None:
    transport, calls = scripted(overloaded("1"))
    http, waits = client(transport, retries=2)
    exchange = asyncio.run(http.request("POST", URL))
    assert exchange.response is not None and exchange.response.status_code == 503
    assert (exchange.attempts, len(calls), len(waits)) == (3, 3, 2)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 0 ", 0.0), ("", None), ("soon", None), ("-3", None), ("Wed, 21 Oct 2015 07:28:00", None)],
)
def test_retry_after_reads_delay_seconds(value: str, seconds: float | None) -> None:
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": value})) == seconds


def test_retry_after_reads_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 9, tzinfo=UTC), usegmt=True)
    earlier = format_datetime(datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": later}), now) == 9.0
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": earlier}), now) == 0.0


# --- the reference kind -------------------------------------------------------------------------------------------


def reference(transport: httpx.MockTransport, retries: int = 3) -> ReferenceBot:
    return ReferenceBot(URL, "tok", HttpOptions(retries=retries, backoff_s=0, transport=transport))


def send(bot: ReferenceBot) -> BotTurn:
    return asyncio.run(bot.send("c", "hello"))


def test_the_reference_kind_retries_overloaded_and_not_ready_and_counts_the_attempts() -> None:
    not_ready = httpx.Response(503, json={"error": {"code": "not_ready", "message": "loading"}})
    transport, calls = scripted(overloaded("0"), not_ready, httpx.Response(200, json=OK_BODY))
    turn = send(reference(transport))
    assert (turn.status, turn.attempts, len(calls), turn.messages) == (TurnStatus.ok, 3, 3, ("hi",))


def test_a_refusal_that_outlasts_the_retries_is_a_channel_error_turn_not_a_crash() -> None:
    transport, calls = scripted(overloaded("0"))
    turn = send(reference(transport, retries=2))
    assert (turn.status, turn.attempts, turn.http_status, len(calls)) == (TurnStatus.channel_error, 3, 503, 3)
    assert turn.error == "HTTP 503: overloaded: the bot is serving as many conversations as it can"
    assert turn.messages is None and turn.handoff is None


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, text="Response Timeout"),  # Sanic's own: the bot may have processed the message
        httpx.Response(503, json={"error": {"code": "internal_error", "message": "x"}}),
        httpx.Response(413, json={"error": {"code": "payload_too_large", "message": "at most 65536 bytes"}}),
        httpx.Response(400, json={"error": {"code": "bad_request", "message": "message: contains U+0000"}}),
    ],
)
def test_other_errors_are_recorded_at_once_not_retried(response: httpx.Response) -> None:
    transport, calls = scripted(response)
    turn = send(reference(transport))
    assert (turn.status, turn.attempts, len(calls)) == (TurnStatus.channel_error, 1, 1)
    assert turn.error is not None and turn.error.startswith(f"HTTP {response.status_code}: ")
