"""The reference channel's parts without a server: request validation, the per-turn decision trace, the limits,
admission control and the per-conversation locks."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import aiohttp
import pytest
from bankbot.channel import (
    Admission,
    BadRequest,
    ConversationLocks,
    Limits,
    Overloaded,
    ReferenceChannel,
    conversation_state,
    customer_text,
    parse_body,
    turn_trace,
)
from bankbot.handoff_store import HandoffStore
from rasa.core.channels.channel import register
from raw_http import read_response
from sanic import Sanic


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "body is not valid JSON"),
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"message": "hi"}', "sender: required"),
        (b'{"sender": "  ", "message": "hi"}', "sender: required"),
        (b'{"sender": "c1"}', "message: required"),
        (b'{"sender": "c1", "message": 42}', "message: required"),
        (b'{"sender": "c1", "message": "hi", "text": "x"}', "unknown key(s) text"),
        (b'{"sender": "c1", "message": "hi", "metadata": []}', "metadata: must be a JSON object"),
        (json.dumps({"sender": "c1", "message": "x" * 4001}).encode(), "message: at most 4000 characters"),
    ],
)
def test_malformed_bodies_are_rejected_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_body(body)


def test_a_valid_body_parses() -> None:
    assert parse_body(b'{"sender": "c1", "message": "hi", "metadata": {"a": 1}}') == ("c1", "hi", {"a": 1})
    assert parse_body(b'{"sender": "c1", "message": "hi"}') == ("c1", "hi", {})


def test_the_channel_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValueError, match="needs a bearer token"):
        ReferenceChannel.from_credentials({"token": ""})


EVENTS = [
    {"event": "user", "text": "hi", "message_id": "m0", "parse_data": {"intent": {"name": "greet"}}},
    {"event": "action", "name": "utter_greet"},
    {"event": "action", "name": "action_listen"},
    {
        "event": "user",
        "text": "blah",
        "message_id": "m1",
        "parse_data": {
            "intent": {"name": "nlu_fallback", "confidence": 0.5},
            "intent_ranking": [
                {"name": "nlu_fallback", "confidence": 0.5},
                {"name": "fees", "confidence": 0.41},
                {"name": "top_up", "confidence": 0.3},
                {"name": "greet", "confidence": 0.2},
                {"name": "thanks", "confidence": 0.05},
            ],
            "entities": [],
        },
    },
    {"event": "action", "name": "action_extract_slots"},
    {"event": "slot", "name": "not_understood_streak", "value": 2.0},
    {"event": "action", "name": "action_not_understood"},
    {"event": "slot", "name": "handoff_queue", "value": "general"},
    {"event": "slot", "name": "handoff_rule", "value": "not_understood_twice"},
    {"event": "slot", "name": "handoff_ticket", "value": "T-1"},
    {"event": "slot", "name": "card_type", "value": None},
    {"event": "action", "name": "action_listen"},
]


def test_the_trace_reports_the_turns_decision_not_earlier_ones() -> None:
    slots = {"handoff_queue": "general", "handoff_rule": "not_understood_twice", "handoff_ticket": "T-1"}
    trace = turn_trace(EVENTS, "m1", slots)
    assert trace["fallback"] is True
    assert trace["intent"] == {"name": "fees", "confidence": 0.41}
    assert [r["name"] for r in trace["ranking"]] == ["fees", "top_up", "greet"]
    assert trace["actions"] == ["action_not_understood"]
    assert trace["slots_set"]["not_understood_streak"] == 2.0 and trace["slots_cleared"] == ["card_type"]
    assert trace["handoff"] == {"queue": "general", "rule": "not_understood_twice", "ticket_id": "T-1"}
    assert conversation_state(slots) == "handed_off"


def test_an_understood_turn_has_no_handoff() -> None:
    trace = turn_trace(EVENTS[:3], "m0", {})
    assert trace["fallback"] is False and trace["handoff"] is None and trace["actions"] == ["utter_greet"]
    assert conversation_state({"conversation_state": "ended"}) == "ended"


def test_a_turn_missing_from_the_tracker_is_an_error_not_an_empty_trace() -> None:
    with pytest.raises(RuntimeError, match="no user event for message m9"):
        turn_trace(EVENTS, "m9", {})


# --- text the bot cannot store, nesting -------------------------------------------------------------------------


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"sender": "c1", "message": "lost \udfff card"},
            "message: contains an unpaired surrogate (U+DFFF at character 5)",
        ),
        ({"sender": "c\ud800", "message": "hi"}, "sender: contains an unpaired surrogate (U+D800 at character 1)"),
        ({"sender": "c1", "message": "hi", "metadata": {"k\udc80": 1}}, "metadata (key 'k\\udc80'): contains"),
        ({"sender": "c1", "message": "hi", "metadata": {"t": ["a", {"d": "\udfff"}]}}, "metadata.t[1].d: contains"),
        ({"sender": "c1", "message": "hi", "metadata": {"a b": "\udfff"}}, "metadata['a b']: contains"),
        ({"sender": "c1", "message": "hi\x00"}, "message: contains U+0000 (NUL) at character 2"),
        (
            {"sender": "c1", "message": "hi", "metadata": _nested(10)},
            "metadata.a.a.a.a.a.a.a.a.a: nested deeper than 10",
        ),
        (
            {"sender": "c1", "message": "hi", "metadata": {"x": [[[[[[[[[1]]]]]]]]]}},
            "metadata.x[0][0][0][0][0][0][0][0]: nested",
        ),
        ({"sender": "c1", "message": "hi", "\udfff": 1}, "unknown key(s) '\\udfff'"),
    ],
)
def test_text_the_bot_cannot_store_and_deep_nesting_are_refused_naming_the_field(body: dict, problem: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(json.dumps(body).encode())
    assert str(caught.value).startswith(problem)
    str(caught.value).encode("utf-8")  # the error message itself is storable and sendable


def test_a_1000_deep_body_is_a_bad_request_not_a_recursion_error() -> None:
    with pytest.raises(BadRequest, match="nested deeper than 10"):
        parse_body(b'{"sender": "c", "message": "hi", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_valid_text_and_nesting_up_to_the_limit_are_accepted() -> None:
    metadata = {"page": "café ☕ 𝄞", "deep": _nested(8), "list": [[1, 2], {"k": None}]}
    assert parse_body(json.dumps({"sender": "c1", "message": "naïve 🙂", "metadata": metadata}).encode()) == (
        "c1",
        "naïve 🙂",
        metadata,
    )
    assert parse_body(json.dumps({"sender": "c", "message": "x", "metadata": {"a": _nested(3)}}).encode(), 5)[2]
    with pytest.raises(BadRequest, match="nested deeper than 4"):
        parse_body(json.dumps({"sender": "c", "message": "x", "metadata": {"a": _nested(3)}}).encode(), 4)


# --- configuration ------------------------------------------------------------------------------------------------


def test_limits_come_from_credentials_as_numbers_or_substituted_strings() -> None:
    channel = ReferenceChannel.from_credentials(
        {"token": "t", "max_in_flight": "3", "max_queue": 7, "max_wait_s": "1.5", "max_body_bytes": None}
    )
    assert channel.limits == Limits(max_in_flight=3, max_queue=7, max_wait_s=1.5)
    assert ReferenceChannel.from_credentials({"token": "t"}).limits == Limits()


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({"max_in_flight": 0}, "max_in_flight must be a positive whole number (credentials.yml), got 0"),
        ({"max_queue": "many"}, "max_queue must be a positive whole number (credentials.yml), got 'many'"),
        ({"max_wait_s": -1}, "max_wait_s must be a positive number (credentials.yml), got -1"),
        ({"max_in_flite": 2}, "unknown key(s) max_in_flite; allowed: token, max_body_bytes, max_depth"),
        ({"max_depth": 1}, "max_depth must be at least 2 (the body and its metadata object), got 1"),
    ],
)
def test_bad_limits_stop_the_server_naming_the_key(credentials: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        ReferenceChannel.from_credentials({"token": "t", **credentials})


class _Headers(dict):
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer  s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer \udcff\udcfe", False),
        ("\udcff\udcfe", False),
        ("", False),
    ],
)
def test_the_token_check_never_raises_on_undecodable_header_bytes(header: str, ok: bool) -> None:
    # Sanic decodes header bytes that are not UTF-8 as surrogate escapes (\xff -> \udcff).
    request = SimpleNamespace(headers=_Headers({"authorization": header}))
    assert ReferenceChannel("s3cret")._authorised(request) is ok


# --- admission and per-conversation locks ---------------------------------------------------------------------------


def test_admission_runs_max_in_flight_queues_max_queue_and_refuses_the_rest_at_once() -> None:
    async def scenario() -> None:
        admission = Admission(Limits(max_in_flight=1, max_queue=1, max_wait_s=5))
        release = asyncio.Event()
        order: list[str] = []

        async def turn(name: str) -> None:
            async with admission.slot():
                order.append(name)
                await release.wait()

        first = asyncio.create_task(turn("first"))
        await asyncio.sleep(0)
        second = asyncio.create_task(turn("second"))
        await asyncio.sleep(0)
        assert (admission.in_flight, admission.queued, order) == (1, 1, ["first"])
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="1 turns running and 1 waiting") as refused:
            await turn("third")
        assert time.perf_counter() - started < 1 and refused.value.retry_after_s >= 1  # max_wait_s is 5
        release.set()
        await asyncio.gather(first, second)
        assert (admission.in_flight, admission.queued, order) == (0, 0, ["first", "second"])

    asyncio.run(scenario())


def test_a_turn_that_would_wait_too_long_is_refused_at_once_and_retry_after_follows_the_turn_time() -> None:
    async def scenario() -> None:
        admission = Admission(Limits(max_in_flight=2, max_queue=10, max_wait_s=2))
        for took in (9.0, 1.5, 1.5, 1.4, 1.6):  # a slow first turn, then about 1.5 s each
            admission.record(took)
        hold = asyncio.Event()

        async def turn() -> None:
            async with admission.slot():
                await hold.wait()

        running = [asyncio.create_task(turn()) for _ in range(4)]  # 2 run, 2 wait: (1 + 1) * 1.5 / 2 <= 2
        await asyncio.sleep(0)
        assert (admission.in_flight, admission.queued) == (2, 2)
        with pytest.raises(Overloaded, match=r"estimated wait \(2.2 s\) is longer than 2 s") as refused:
            await turn()  # (2 + 1) * 1.5 / 2 = 2.25 s
        assert refused.value.retry_after_s == 3  # (2 running + 2 waiting) * 1.5 / 2
        hold.set()
        await asyncio.gather(*running)

    asyncio.run(scenario())


def test_a_turn_that_waited_max_wait_s_is_refused_and_a_cancelled_wait_frees_its_place() -> None:
    async def scenario() -> None:
        admission = Admission(Limits(max_in_flight=1, max_queue=2, max_wait_s=0.05))
        async with admission.slot():
            with pytest.raises(Overloaded, match="no turn slot within 0.05 s"):
                async with admission.slot():
                    pass
            waiting = asyncio.create_task(admission.slot().__aenter__())
            await asyncio.sleep(0)
            assert admission.queued == 1
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert admission.queued == 0
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_conversation_locks_serialise_one_conversation_and_are_dropped_when_idle() -> None:
    async def scenario() -> None:
        locks = ConversationLocks()
        log: list[str] = []

        async def turn(sender: str, name: str) -> None:
            async with locks.hold(sender):
                log.append(f"{name} in")
                await asyncio.sleep(0.01)
                log.append(f"{name} out")

        await asyncio.gather(turn("a", "a1"), turn("a", "a2"), turn("b", "b1"))
        assert log.index("a1 out") < log.index("a2 in")
        assert log.index("b1 in") < log.index("a1 out")  # other conversations are not held up
        assert len(locks) == 0

    asyncio.run(scenario())


# --- the channel's routes in an in-process Sanic server, with a fake dialogue engine ------------------------------


class _Event(dict):
    def as_dict(self) -> dict[str, Any]:
        return dict(self)


class _Tracker:
    def __init__(self, events: list[_Event]) -> None:
        self.events = events

    def current_slot_values(self) -> dict[str, Any]:
        return {e["name"]: e["value"] for e in self.events if e["event"] == "slot"}

    def get_slot(self, name: str) -> Any:
        return self.current_slot_values().get(name)


class _FakeAgent:
    """Rasa's agent as the channel uses it: a message containing 'fraud' opens a ticket after `turn_s` seconds
    (the action server's round trip) and hands off; anything else is answered. Like Rasa's policies, it answers
    whatever reaches it, so keeping handed-off conversations silent is the channel's job."""

    def __init__(self, turn_s: float) -> None:
        self.turn_s = turn_s
        self.conversations: dict[str, list[_Event]] = {}
        self.tracker_store = self

    def is_ready(self) -> bool:
        return True

    async def retrieve(self, sender: str) -> _Tracker | None:
        events = self.conversations.get(sender)
        return _Tracker(list(events)) if events is not None else None

    async def handle_message(self, message: Any) -> None:
        events = self.conversations.setdefault(message.sender_id, [])
        intent = "report_fraud" if "fraud" in message.text else "greet"
        parse = {"intent": {"name": intent, "confidence": 0.9}, "intent_ranking": [{"name": intent, "confidence": 0.9}]}
        events.append(_Event(event="user", text=message.text, message_id=message.message_id, parse_data=parse))
        await asyncio.sleep(self.turn_s)
        if intent == "report_fraud":
            ticket = HandoffStore().create_ticket(
                conversation_id=message.sender_id,
                queue="fraud",
                priority="high",
                rule="fraud_immediate",
                summary="fraud",
                slots={},
                transcript=[("customer", message.text)],
            )
            for name, value in (
                ("handoff_queue", "fraud"),
                ("handoff_rule", "fraud_immediate"),
                ("handoff_ticket", ticket),
            ):
                events.append(_Event(event="slot", name=name, value=value))
            events.append(_Event(event="action", name="action_escalate"))
            await message.output_channel.send_text_message(message.sender_id, "A colleague will take over.")
        else:
            events.append(_Event(event="action", name="utter_greet"))
            await message.output_channel.send_text_message(message.sender_id, "Hi!")


_apps = itertools.count()
_touched_up: list[str] = []
_TIMEOUT = aiohttp.ClientTimeout(total=10)


@contextmanager
def _serving(channel: ReferenceChannel, agent: _FakeAgent) -> Iterator[str]:
    """The channel's blueprint on a Sanic server on loopback, in a thread with its own event loop (so a server that
    freezes its loop cannot freeze the test's client); yields the webhook URL."""
    app = Sanic(f"channel-test-{next(_apps)}")
    app.ctx.agent = agent
    register([channel], app, "/webhooks/")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    servers: list[Any] = []

    async def start() -> None:
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
        if _touched_up:
            # Sanic rewrites its HTTP class at the first app's start; doing it again fails, and is not needed.
            with patch("sanic.app.TouchUp.run"):
                await server.startup()
        else:
            await server.startup()
            _touched_up.append(app.name)
        await server.before_start()
        await server.after_start()
        servers.append(server)

    async def stop() -> None:
        server = servers[0]
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}/webhooks/reference/webhook"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _post(session: aiohttp.ClientSession, url: str, body: Any, delay: float = 0.0) -> tuple[int, Any, dict]:
    await asyncio.sleep(delay)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url, data=data, headers={"Authorization": "Bearer tok"}) as r:
        return r.status, await r.json(content_type=None), dict(r.headers)


async def _post_all(url: str, bodies: list[Any], delays: list[float] | None = None) -> list[tuple[int, Any, dict]]:
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
        return await asyncio.gather(
            *(_post(s, url, b, d) for b, d in zip(bodies, delays or [0.0] * len(bodies), strict=True))
        )


def test_a_message_during_the_fraud_turn_waits_for_it_and_is_silenced(handoff_db: Any) -> None:
    with _serving(ReferenceChannel("tok"), _FakeAgent(turn_s=0.3)) as url:
        messages = [{"sender": "c1", "message": "fraud!"}, {"sender": "c1", "message": "hi?"}]
        (status1, first, _), (status2, second, _) = asyncio.run(_post_all(url, messages, [0, 0.1]))
    assert (status1, status2) == (200, 200)
    assert first["trace"]["handoff"]["queue"] == "fraud" and first["messages"]
    assert (second["messages"], second["state"], second["trace"]["silenced"]) == ([], "handed_off", True)
    (ticket,) = HandoffStore().for_conversation("c1")
    assert [m.text for m in ticket.transcript] == ["fraud!", "hi?"]


def test_identical_messages_at_once_make_one_ticket(handoff_db: Any) -> None:
    with _serving(ReferenceChannel("tok"), _FakeAgent(turn_s=0.05)) as url:
        replies = asyncio.run(_post_all(url, [{"sender": "c2", "message": "fraud!"}] * 10))
    assert [status for status, _, _ in replies] == [200] * 10
    assert sum(body["trace"]["handoff"] is not None for _, body, _ in replies) == 1
    assert sum(body["trace"]["silenced"] for _, body, _ in replies) == 9
    assert len(HandoffStore().for_conversation("c2")) == 1


class _BrokenStore:
    async def retrieve(self, sender: str) -> None:
        raise OSError("database is locked")


def test_a_tracker_store_failure_is_a_500_not_a_new_conversation(handoff_db: Any) -> None:
    agent = _FakeAgent(turn_s=0)
    # Rasa's FailSafeTrackerStore would answer the error with None (a new conversation); the channel reads past it.
    agent.tracker_store = SimpleNamespace(_tracker_store=_BrokenStore(), retrieve=agent.retrieve)
    with _serving(ReferenceChannel("tok"), agent) as url:
        ((status, body, _),) = asyncio.run(_post_all(url, [{"sender": "c3", "message": "fraud!"}]))
    assert (
        status == 500 and body["error"]["code"] == "internal_error" and "database is locked" in body["error"]["message"]
    )
    assert agent.conversations == {} and HandoffStore().for_conversation("c3") == []


def test_more_conversations_than_the_limits_allow_are_refused_at_once_with_retry_after(handoff_db: Any) -> None:
    channel = ReferenceChannel("tok", Limits(max_in_flight=1, max_queue=1, max_wait_s=5))

    async def scenario(url: str) -> tuple[list[tuple[int, float]], float]:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
            started = time.perf_counter()

            async def timed(i: int) -> tuple[int, float]:
                status, body, headers = await _post(s, url, {"sender": f"c{i}", "message": "hello"})
                if status == 503:
                    assert body["error"]["code"] == "overloaded" and int(headers["Retry-After"]) >= 1
                return status, time.perf_counter() - started

            async def health() -> float:
                await asyncio.sleep(0.1)
                async with s.get(url.removesuffix("webhook")) as answer:
                    assert answer.status == 200
                return time.perf_counter() - started

            return await asyncio.gather(asyncio.gather(*(timed(i) for i in range(6))), health())

    with _serving(channel, _FakeAgent(turn_s=1.0)) as url:
        replies, health_at = asyncio.run(scenario(url))
    # One turn runs, one waits, four are refused, each of them (and the health check) before the first turn is done.
    assert sorted(status for status, _ in replies) == [200, 200, 503, 503, 503, 503]
    first_answer = min(at for status, at in replies if status == 200)
    assert max(at for status, at in replies if status == 503) < first_answer and health_at < first_answer


def test_bodies_over_the_limit_get_413_whether_declared_or_streamed() -> None:
    big = json.dumps({"sender": "c", "message": "hi", "metadata": {"x": "y" * 2000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    async def scenario(url: str) -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
            out = []
            for data in (big, chunks()):
                async with s.post(url, data=data, headers={"Authorization": "Bearer tok"}) as r:
                    out.append((r.status, await r.json(content_type=None)))
            return out

    with _serving(ReferenceChannel("tok", Limits(max_body_bytes=1000)), _FakeAgent(turn_s=0)) as url:
        answers = asyncio.run(scenario(url))
    for status, body in answers:
        assert status == 413 and body["error"]["code"] == "payload_too_large"
        assert "at most 1000 bytes" in body["error"]["message"]


def _raw_exchange(path: str, head: bytes, body: bytes) -> tuple[int, bytes]:
    """One hand-made HTTP/1.1 request to a served channel: (status, body); a socket timeout if no answer in 10 s."""
    with _serving(ReferenceChannel("tok"), _FakeAgent(turn_s=0)) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(f"{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + head + b"\r\n" + body)
            return read_response(conn)


@pytest.mark.parametrize(
    ("head", "body", "status", "code"),
    [
        (b"Content-Length: abc\r\n", b"{}", 400, "bad_request"),
        (b"Content-Length: -5\r\n", b"{}", 400, "bad_request"),
        (b"Transfer-Encoding: chunked\r\n", b"zz;\r\nxx\r\n", 400, "bad_request"),
        (b"Content-Length: 70000\r\n", b"{}", 413, "payload_too_large"),
        (b"Authorization: Bearer \xff\xfe\r\nContent-Length: 2\r\n", b"{}", 401, "unauthorized"),
    ],
)
def test_malformed_framing_gets_the_protocol_error_body(head: bytes, body: bytes, status: int, code: str) -> None:
    auth = b"" if b"Authorization" in head else b"Authorization: Bearer tok\r\n"
    answer = _raw_exchange("POST /webhooks/reference/webhook", auth + head, body)
    assert answer[0] == status, answer
    assert json.loads(answer[1])["error"]["code"] == code


def test_a_negative_content_length_on_any_route_is_refused_instead_of_freezing_the_server() -> None:
    # Sanic 21.12 alone spins forever reading such a body (see the channel's http.lifecycle.request signal).
    assert _raw_exchange("GET /webhooks/reference/", b"Content-Length: -5\r\n", b"{}")[0] == 400


def test_other_paths_keep_their_404() -> None:
    assert _raw_exchange("POST /webhooks/reference/nope", b"Content-Length: 2\r\n", b"{}")[0] == 404


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"sender": "c1", "message": "hi", "message": "fraud"}', "key message appears twice"),
        (b'{"sender": "c1", "message": "hi", "metadata": {"a": 1, "a": 2}}', "key a appears twice"),
        (b'{"sender": "c1", "message": "hi", "metadata": {"x": NaN}}', "NaN is not a JSON number"),
        (b'{"sender": "c1", "message": "hi", "metadata": {"x": -Infinity}}', "-Infinity is not a JSON number"),
        (b'{"sender": "c1", "message": "hi", "metadata": {"x": 1e999999}}', "too large for a double"),
        (b'{"sender": "c1", "message": "hi", "metadata": {"x": ' + b"9" * 5000 + b"}}", "integer of 5000 digits"),
    ],
    ids=["duplicate-key", "duplicate-metadata-key", "nan", "infinity", "huge-float", "huge-integer"],
)
def test_json_that_readers_disagree_on_is_refused(raw: bytes, problem: str) -> None:
    # Duplicate keys: a filter reading the first value and Rasa reading the last would see different messages.
    # NaN and Infinity are not JSON: stored in the tracker, they break any strict reader of the events table.
    with pytest.raises(BadRequest, match=problem):
        parse_body(raw)


def test_metadata_is_bounded_because_every_message_of_the_conversation_stores_it() -> None:
    small = json.dumps({"sender": "c", "message": "hi", "metadata": {"k": "x" * 100}}).encode()
    assert parse_body(small, max_metadata_bytes=200)[2] == {"k": "x" * 100}
    # As JSON, {"k": "<300 x>"} is 7 + 300 + 2 = 309 bytes.
    large = json.dumps({"sender": "c", "message": "hi", "metadata": {"k": "x" * 300}}).encode()
    with pytest.raises(BadRequest, match=r"metadata: 309 bytes as JSON, at most 200"):
        parse_body(large, max_metadata_bytes=200)


def test_a_turn_past_its_deadline_gets_504_and_frees_its_slot(handoff_db: Any) -> None:
    limits = Limits(max_in_flight=1, max_turn_s=0.3)
    agent = _FakeAgent(turn_s=2.0)
    with _serving(ReferenceChannel("tok", limits), agent) as url:
        stuck = asyncio.run(_post_all(url, [{"sender": "s1", "message": "hi"}]))
        agent.turn_s = 0
        after = asyncio.run(_post_all(url, [{"sender": "s2", "message": "hi"}]))
    ((status, body, _),) = stuck
    assert status == 504 and body["error"]["code"] == "turn_timeout", body
    assert [status for status, _, _ in after] == [200]


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"Content-Length: 5\r\nContent-Length: 70\r\n"],
    ids=["length-and-chunked", "two-lengths"],
)
def test_a_body_framed_twice_is_refused_and_the_connection_closed(framing: bytes) -> None:
    # Request smuggling: a proxy framing by one header and the bot by the other would read the bytes after this
    # request as a second request. The smuggled request here would hand off (a fraud message) if it were read.
    smuggled = json.dumps({"sender": "smug", "message": "fraud!"}).encode()
    second = (
        b"POST /webhooks/reference/webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
        b"Content-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled
    )
    with _serving(ReferenceChannel("tok"), _FakeAgent(turn_s=0)) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            head = b"POST /webhooks/reference/webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n" + framing
            conn.sendall(head + b"\r\n0\r\n\r\n" + second)
            status, _ = read_response(conn)
            rest = b""
            while chunk := conn.recv(65536):
                rest += chunk
    assert status == 400
    assert rest == b"", rest  # closed: no answer to the smuggled request
    assert HandoffStore().for_conversation("smug") == []


@pytest.mark.parametrize(
    ("typed", "read"),
    [("/restart", "restart"), ("  //session_start", "session_start"), ("/ what?", "what?"), ("/", "/"), ("hi", "hi")],
)
def test_a_customer_cannot_send_rasa_intent_commands(typed: str, read: str) -> None:
    assert customer_text(typed) == read


def test_the_dialogue_engine_gets_the_customer_text_without_a_leading_slash(handoff_db: Any) -> None:
    agent = _FakeAgent(turn_s=0)
    with _serving(ReferenceChannel("tok"), agent) as url:
        ((status, _, _),) = asyncio.run(_post_all(url, [{"sender": "slash", "message": "/restart"}]))
    assert status == 200
    assert [e["text"] for e in agent.conversations["slash"] if e["event"] == "user"] == ["restart"]
