"""The reference channel against hostile or careless clients, on the real servers (loopback): messages of one
conversation at once, text the bot cannot store, oversized and malformed requests, and more conversations at once
than the bot can serve."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ERROR_SCHEMA, SCHEMA, handoff_store
from raw_http import read_response

from harness.bots.reference_bot.server import BotServer, free_port, train

pytestmark = pytest.mark.integration

FRAUD = "there's a payment on my account I never made, I think someone has my details"


def _auth(server: BotServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def _body(sender: str, message: str, **extra: Any) -> bytes:
    """A request body as bytes; json.dumps escapes lone surrogates (`\\udfff`), which httpx's `json=` cannot encode."""
    return json.dumps({"sender": sender, "message": message, **extra}).encode()


async def _post_all(server: BotServer, bodies: list[bytes], *, delays: list[float] | None = None) -> list[Any]:
    """POST every body at once (each after its delay in seconds); responses in order, with their arrival times."""
    started = time.perf_counter()

    async def one(client: httpx.AsyncClient, body: bytes, delay: float) -> tuple[httpx.Response, float]:
        await asyncio.sleep(delay)
        response = await client.post(server.url, content=body, headers=_auth(server))
        return response, time.perf_counter() - started

    limits = httpx.Limits(max_connections=len(bodies) + 1)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(one(client, b, d) for b, d in zip(bodies, delays or [0.0] * len(bodies), strict=True))
        )


def _error(response: httpx.Response) -> dict[str, str]:
    ERROR_SCHEMA.validate(response.json())
    return response.json()["error"]


# --- one message at a time per conversation (issue 13, item 2) ---------------------------------------------------


def test_a_message_sent_while_the_fraud_turn_runs_is_silenced_and_reaches_the_ticket(bot: BotServer) -> None:
    sender = "abuse-" + secrets.token_hex(4)
    later = "hello?? are you still there"
    (first, _), (second, _) = asyncio.run(_post_all(bot, [_body(sender, FRAUD), _body(sender, later)], delays=[0, 0.2]))
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    SCHEMA.validate(first.json())
    SCHEMA.validate(second.json())
    handoff = first.json()["trace"]["handoff"]
    assert handoff is not None and handoff["queue"] == "fraud"
    assert second.json()["messages"] == [] and second.json()["state"] == "handed_off"
    assert second.json()["trace"]["silenced"] is True
    tickets = handoff_store(bot.handoff_db).for_conversation(sender)
    assert [t.ticket_id for t in tickets] == [handoff["ticket_id"]]
    assert tickets[0].transcript[-1].text == later


@pytest.mark.parametrize("copies", [2, 20])
def test_identical_fraud_messages_at_once_make_exactly_one_ticket(bot: BotServer, copies: int) -> None:
    sender = "abuse-" + secrets.token_hex(4)
    started = time.perf_counter()
    results = asyncio.run(_post_all(bot, [_body(sender, FRAUD)] * copies))
    assert time.perf_counter() - started < 120
    answered = [r.json() for r, _ in results if r.status_code == 200]
    refused = [_error(r)["code"] for r, _ in results if r.status_code != 200]
    assert set(refused) <= {"overloaded"}, [r.text for r, _ in results if r.status_code != 200]
    for body in answered:
        SCHEMA.validate(body)
    handed_off = [b for b in answered if b["trace"]["handoff"] is not None]
    silenced = [b for b in answered if b["trace"]["silenced"]]
    assert len(handed_off) == 1 and len(silenced) == len(answered) - 1 and len(silenced) >= 1
    assert all(b["messages"] == [] and b["state"] == "handed_off" for b in silenced)
    tickets = handoff_store(bot.handoff_db).for_conversation(sender)
    assert [t.ticket_id for t in tickets] == [handed_off[0]["trace"]["handoff"]["ticket_id"]]
    # The ticket opens with the fraud message and gets every silenced copy after it.
    assert [m.text for m in tickets[0].transcript if m.sender == "customer"] == [FRAUD] * len(answered)


# --- text the bot cannot store (item 4) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "message", "metadata", "field"),
    [
        ("ok", "my card \udfff is lost", {}, "message"),
        ("conv-\ud800", "hello", {}, "sender"),
        ("ok", "hello", {"page\udfff": "x"}, "metadata"),
        ("ok", "hello", {"tags": ["a", {"deep": "\udc80"}]}, "metadata.tags[1].deep"),
        ("ok", "hello\x00", {}, "message"),
    ],
)
def test_text_the_bot_cannot_store_gets_400_naming_the_field(
    bot: BotServer, sender: str, message: str, metadata: dict[str, Any], field: str
) -> None:
    conversation = "abuse-" + secrets.token_hex(4) + (sender if sender != "ok" else "")
    response = httpx.post(
        bot.url, content=_body(conversation, message, metadata=metadata), headers=_auth(bot), timeout=60
    )
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "bad_request" and error["message"].startswith(field)


def test_after_a_refused_surrogate_the_conversation_still_hands_off(bot: BotServer) -> None:
    sender = "abuse-" + secrets.token_hex(4)
    refused = httpx.post(bot.url, content=_body(sender, "lost card \udfff"), headers=_auth(bot), timeout=60)
    assert refused.status_code == 400 and _error(refused)["message"].startswith("message")
    reply = httpx.post(bot.url, content=_body(sender, FRAUD), headers=_auth(bot), timeout=60)
    assert reply.status_code == 200, reply.text
    handoff = reply.json()["trace"]["handoff"]
    assert handoff is not None and handoff["queue"] == "fraud"
    tickets = handoff_store(bot.handoff_db).for_conversation(sender)
    assert [t.ticket_id for t in tickets] == [handoff["ticket_id"]]
    assert [m.text for m in tickets[0].transcript if m.sender == "customer"] == [FRAUD]


# --- oversized and malformed requests (item 6) --------------------------------------------------------------------


def test_a_10_mb_body_gets_413_with_the_error_body(bot: BotServer) -> None:
    big = _body("abuse-big", "hi", metadata={"blob": "x" * 10_000_000})
    response = httpx.post(bot.url, content=big, headers=_auth(bot), timeout=60)
    assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(bot: BotServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"sender": "abuse-chunked", "message": "hi", "metadata": {"blob": "'
        for _ in range(160):  # 160 x 64 KiB = 10 MiB
            yield b"x" * 65536
        yield b'"}}'

    response = httpx.post(bot.url, content=chunks(), headers=_auth(bot), timeout=60)
    assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"sender": "abuse-deep", "message": "hi", "metadata": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested"),
        (_body("abuse-deep", "hi", metadata=_nested(10)), "nested deeper than 10"),
        (b'{"sender": "abuse-bytes", "message": "caf\xe9"}', "not valid JSON"),
    ],
)
def test_deep_or_undecodable_json_gets_400(bot: BotServer, content: bytes, problem: str) -> None:
    response = httpx.post(bot.url, content=content, headers=_auth(bot), timeout=60)
    assert response.status_code == 400, response.text
    assert _error(response)["code"] == "bad_request" and problem in _error(response)["message"]


@pytest.mark.parametrize("command", ["/restart", "/session_start", "/report_fraud"])
def test_rasa_intent_commands_typed_by_a_customer_are_read_as_text(bot: BotServer, command: str) -> None:
    # Rasa reads "/<intent>" as a command: "/restart" reset the conversation and then failed the turn with a 500,
    # "/report_fraud" handed off with confidence 1.0 whatever the NLU says.
    sender = "abuse-" + secrets.token_hex(4)
    response = httpx.post(bot.url, content=_body(sender, command), headers=_auth(bot), timeout=60)
    assert response.status_code == 200, response.text
    SCHEMA.validate(response.json())
    intent = response.json()["trace"]["intent"]
    assert intent is None or intent["confidence"] < 1.0, intent


def test_metadata_nested_to_the_limit_is_accepted(bot: BotServer) -> None:
    body = _body("abuse-" + secrets.token_hex(4), "what are your opening hours", metadata=_nested(9))
    response = httpx.post(bot.url, content=body, headers=_auth(bot), timeout=60)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", b"\xff\xfe", b"Bearer " + b"\xc3" * 3])
def test_undecodable_authorization_bytes_get_401(bot: BotServer, header: bytes) -> None:
    response = httpx.post(bot.url, content=_body("abuse-auth", "hi"), headers={"Authorization": header}, timeout=60)
    assert response.status_code == 401 and _error(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "head", "body", "status"),
    [
        ("POST /webhooks/reference/webhook", b"Content-Length: abc\r\n", b"{}", 400),
        ("POST /webhooks/reference/webhook", b"Content-Length: -5\r\n", b"{}", 400),
        ("GET /webhooks/reference/", b"Content-Length: -5\r\n", b"{}", 400),  # Sanic alone would spin forever
        ("POST /webhooks/reference/webhook", b"Content-Length: 70000\r\n", b"{}", 413),
        ("POST /webhooks/reference/webhook", b"Transfer-Encoding: chunked\r\n", b"zz;\r\nxx\r\n", 400),
    ],
)
def test_malformed_http_framing_gets_a_protocol_error_not_500(
    bot: BotServer, path: str, head: bytes, body: bytes, status: int
) -> None:
    request = f"{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
    request += b"Authorization: Bearer " + bot.token.encode() + b"\r\n" + head + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", bot.rasa_port), timeout=30) as conn:
        conn.sendall(request)
        answer = read_response(conn)
    assert answer[0] == status, answer
    if path.startswith("POST"):
        ERROR_SCHEMA.validate(json.loads(answer[1]))


def test_after_the_abuse_the_bot_answers_normally(bot: BotServer) -> None:
    body = _body("abuse-" + secrets.token_hex(4), "what are your opening hours on saturday")
    response = httpx.post(bot.url, content=body, headers=_auth(bot), timeout=60)
    assert response.status_code == 200 and response.json()["trace"]["intent"]["name"] == "branch_hours"


# --- overload (item 5) --------------------------------------------------------------------------------------------

LIMITS = {"max_in_flight": 2, "max_queue": 4, "max_wait_s": 3}
BURST = 64


@pytest.fixture(scope="module")
def small_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    """The bot with a channel that admits 2 turns at once and 4 waiting (the limits live in its credentials)."""
    tmp = tmp_path_factory.mktemp("small-bot")
    credentials = tmp / "credentials.yml"
    lines = [f"  {key}: {value}" for key, value in LIMITS.items()]
    credentials.write_text(
        "bankbot.channel.ReferenceChannel:\n  token: ${REFERENCE_CHANNEL_TOKEN}\n" + "\n".join(lines) + "\n"
    )
    server = BotServer(
        model=train(),
        token=secrets.token_urlsafe(12),
        handoff_db=tmp / "handoff.sqlite3",
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp / "logs",
        credentials=credentials,
    )
    with server:
        yield server


def test_overload_refuses_fast_with_retry_after_and_serves_the_admitted(small_bot: BotServer) -> None:
    warm = httpx.post(small_bot.url, content=_body("warm-up", "hello"), headers=_auth(small_bot), timeout=60)
    assert warm.status_code == 200
    bodies = [_body(f"load-{i}-{secrets.token_hex(3)}", "what's my balance") for i in range(BURST)]

    async def burst_and_health() -> tuple[list[Any], float]:
        async def health() -> float:
            await asyncio.sleep(0.5)
            started = time.perf_counter()
            async with httpx.AsyncClient(timeout=60) as client:
                assert (await client.get(small_bot.health_url)).status_code == 200
            return time.perf_counter() - started

        results, health_s = await asyncio.gather(_post_all(small_bot, bodies), health())
        return results, health_s

    started = time.perf_counter()
    results, health_s = asyncio.run(burst_and_health())
    elapsed = time.perf_counter() - started
    answered = [(r, t) for r, t in results if r.status_code == 200]
    refused = [(r, t) for r, t in results if r.status_code == 503]
    assert len(answered) + len(refused) == BURST, sorted({r.status_code for r, _ in results})
    assert len(refused) >= 1 and len(answered) >= LIMITS["max_in_flight"]
    for response, _ in refused:
        assert _error(response)["code"] == "overloaded"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    for response, _ in answered:
        SCHEMA.validate(response.json())
        assert response.json()["messages"]
    first_refusal = min(t for _, t in refused)
    slowest_answer = max(t for _, t in answered)
    print(
        f"\n{BURST} at once with {LIMITS}: {len(answered)} answered (slowest {slowest_answer:.2f} s), "
        f"{len(refused)} refused (first after {first_refusal:.2f} s), health {health_s:.2f} s, all in {elapsed:.1f} s"
    )
    # Generous bounds: today every request waited about a minute and a half for Sanic's "Response Timeout".
    assert first_refusal < 15 and slowest_answer < 60 and health_s < 15
    after = httpx.post(small_bot.url, content=_body("after-load", "hello"), headers=_auth(small_bot), timeout=60)
    assert after.status_code == 200 and after.json()["messages"]
