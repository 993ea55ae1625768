"""Bot kind `http_json`: the settings and their load-time problems, request templates, the response mapping and
every failure status on httpx's MockTransport, and one replay through a real JSON bot (starlette + uvicorn) on
loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.bots.base import BotTurn, Handoff, HttpOptions, RankedIntent
from harness.bots.http_json import HttpJsonBot, HttpJsonSettings, fill, observes_of
from harness.bots.kinds import bot_settings, connect
from harness.errors import BotRefused, BotUnreachable, InputError
from harness.project.config import RunConfig, load_config
from harness.project.eval_set import Conversation, EvalConversation, EvalSuite
from harness.records import ALL_OBSERVATIONS, Observation, TurnStatus, to_frame
from harness.sources.replay import Journal, replay

EXAMPLE = Path(__file__).parents[3] / "experiments" / "examples" / "http_json.yml"
URL = "http://bot.test/chat"
TOKEN = "s3cret"
REQUEST = {"json": {"session": "{conversation_id}", "message": {"text": "{text}"}}}
FULL_RESPONSE = {
    "messages": "replies[].text",
    "intent": "nlu.intent.name",
    "confidence": "nlu.intent.confidence",
    "ranking": "nlu.ranking[].{name: name, confidence: confidence}",
    "fallback": "nlu.fallback",
    "actions": "actions",
    "slots": "memory",
    "handoff_queue": "handoff.queue",
    "handoff_rule": "handoff.rule",
    "ticket": "handoff.ticket",
    "state": "status",
    "active_form": "form",
    "model": "version",
}
REPLY = {
    "replies": [{"text": "Hello!"}, {"image": "wave.png"}, {"text": "How can I help?"}],
    "nlu": {
        "intent": {"name": "greet", "confidence": 0.93},
        "ranking": [{"name": "greet", "confidence": 0.93, "source": "nlu"}, {"name": "fees", "confidence": 0.05}],
        "fallback": False,
    },
    "actions": ["utter_greet"],
    "memory": {"name": "Ann", "vip": True},
    "handoff": {"queue": "human_agent", "rule": "asked_for_human", "ticket": "T-7"},
    "status": "handed_off",
    "form": "card_form",
    "version": "tiny-1",
}


def bot_section(**changes: Any) -> dict[str, Any]:
    """A valid `bot:` section with `changes` applied (a None value removes the key)."""
    section: dict[str, Any] = {
        "kind": "http_json",
        "url": URL,
        "token_env": "MY_BOT_TOKEN",
        "headers": {"Authorization": "Bearer {token}"},
        "request": REQUEST,
        "response": {"messages": "replies[].text"},
    }
    section.update(changes)
    return {key: value for key, value in section.items() if value is not None}


def settings(**changes: Any) -> HttpJsonSettings:
    return HttpJsonSettings.model_validate(bot_section(**changes))


def problems(**changes: Any) -> list[str]:
    """The problems bot_settings reports for a `bot:` section (through the kinds registry, as a run loads it)."""
    config = RunConfig.model_validate({"version": 1, "bot": bot_section(**changes)})
    with pytest.raises(InputError) as caught:
        bot_settings(config)
    return caught.value.problems


Handler = Callable[[httpx.Request], httpx.Response]


def answering(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def exchange(
    handler: Handler, *, text: str = "hi", conversation_id: str = "run1:c1:00ff", retries: int = 0, **changes: Any
) -> BotTurn:
    """One message through an HttpJsonBot on a MockTransport."""
    options = HttpOptions(timeout_s=5, retries=retries, backoff_s=0, transport=httpx.MockTransport(handler))
    bot = HttpJsonBot(settings(**changes), TOKEN, options)

    async def go() -> BotTurn:
        try:
            return await bot.send(conversation_id, text)
        finally:
            await bot.aclose()

    return asyncio.run(go())


def capture(**changes: Any) -> tuple[httpx.Request, BotTurn]:
    """The request the bot sends for `text` (and the turn of a plain reply)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"replies": [{"text": "ok"}]})

    turn = exchange(handler, **changes)
    assert len(seen) == 1
    return seen[0], turn


# --- templates ---------------------------------------------------------------------------------------------------


def test_the_body_is_the_template_with_placeholders_filled_and_every_other_brace_kept() -> None:
    body = {
        "session": "{conversation_id}",
        "message": {"text": "{text}", "parts": ["{text}!", 3, True, None]},
        "auth": "key={token}",
        "{text}": "keys are kept",
        "raw": '{"a": 1} {b} {} a { lone } brace',
        "escaped": "{{text}} and {{{{ and }}",
        "near": "{{tokens}}",
    }
    request, turn = capture(request={"json": body})
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "session": "run1:c1:00ff",
        "message": {"text": "hi", "parts": ["hi!", 3, True, None]},
        "auth": "key=s3cret",
        "{text}": "keys are kept",
        "raw": '{"a": 1} {b} {} a { lone } brace',
        "escaped": "{text} and {{ and }",
        "near": "{tokens}",
    }
    assert request.headers["authorization"] == "Bearer s3cret"
    assert turn.status is TurnStatus.ok and turn.messages == ("ok",)


def test_the_customers_text_is_sent_as_typed_and_never_read_as_a_template() -> None:
    typed = 'my {token} is "{{x}}" \\ ünïcode {conversation_id}'
    request, _ = capture(text=typed)
    assert json.loads(request.content)["message"]["text"] == typed
    assert TOKEN not in request.content.decode()


def test_url_placeholders_are_percent_encoded_and_get_sends_query_parameters() -> None:
    request, _ = capture(
        url="http://bot.test/conversations/{conversation_id}/messages",
        method="GET",
        request={"params": {"q": "{text}", "lang": "en"}},
        headers={"X-Session": "{conversation_id}"},
        token_env=None,
        text="fees & charges?",
    )
    assert request.method == "GET" and request.content == b""
    assert request.url.raw_path == b"/conversations/run1%3Ac1%3A00ff/messages?q=fees+%26+charges%3F&lang=en"
    assert request.url.params["q"] == "fees & charges?"
    assert request.headers["x-session"] == "run1:c1:00ff"


def test_fill_replaces_only_whole_placeholders() -> None:
    values = {"conversation_id": "c", "text": "t", "token": "k"}
    template = "{text}{text} {textual} {TEXT} { text} {{token}} {{{token}}} }{"
    assert fill(template, values) == "tt {textual} {TEXT} { text} {token} {k} }{"


@pytest.mark.parametrize("configured", [None, "consent=yes"])
def test_cookies_stay_within_their_conversation(configured: str | None) -> None:
    """A bot keeping its session in a cookie gets it back in that conversation only, beside a configured cookie."""
    cookies_seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        session = json.loads(request.content)["session"]
        cookies_seen.append((session, request.headers.get("cookie")))
        return httpx.Response(200, json={"replies": [{"text": "ok"}]}, headers={"set-cookie": f"sid={session}"})

    options = HttpOptions(retries=0, transport=httpx.MockTransport(handler))
    headers = {"Authorization": "Bearer {token}", **({"Cookie": configured} if configured else {})}
    bot = HttpJsonBot(settings(headers=headers), TOKEN, options)

    async def go() -> None:
        for conversation_id in ("a", "b", "a", "b"):
            await bot.send(conversation_id, "hi")
        await bot.aclose()

    asyncio.run(go())
    before = f"{configured}; " if configured else ""
    assert cookies_seen == [("a", configured), ("b", configured), ("a", before + "sid=a"), ("b", before + "sid=b")]


# --- the response mapping ----------------------------------------------------------------------------------------


def test_every_mapped_field_is_read_from_the_reply() -> None:
    turn = exchange(answering(REPLY), response=FULL_RESPONSE, queues={"human_agent": "general"})
    assert turn == BotTurn(
        TurnStatus.ok,
        turn.latency_ms,
        1,
        messages=("Hello!", "How can I help?"),
        intent="greet",
        confidence=0.93,
        ranking=(RankedIntent("greet", 0.93), RankedIntent("fees", 0.05)),
        fallback=False,
        actions=("utter_greet",),
        slots_set={"name": "Ann", "vip": True},
        handoff=Handoff("general", "asked_for_human", "T-7"),
        state="handed_off",
        active_form="card_form",
        model="tiny-1",
        http_status=200,
    )
    assert turn.latency_ms > 0


def observed(turn: BotTurn) -> dict[str, Any]:
    """A turn's values by the name of the response field that maps them."""
    handoff = turn.handoff
    return {
        "messages": turn.messages,
        "intent": turn.intent,
        "confidence": turn.confidence,
        "ranking": turn.ranking,
        "fallback": turn.fallback,
        "actions": turn.actions,
        "slots": turn.slots_set,
        "handoff_queue": handoff.queue if handoff else None,
        "handoff_rule": handoff.rule if handoff else None,
        "ticket": handoff.ticket if handoff else None,
        "state": turn.state,
        "active_form": turn.active_form,
        "model": turn.model,
    }


DEPENDENT = {"intent": ("confidence",), "handoff_queue": ("handoff_rule", "ticket", "state")}
"""Fields read only beside another: left out with it."""


@pytest.mark.parametrize("field", list(FULL_RESPONSE))
def test_a_field_not_mapped_is_not_observed_and_the_others_are(field: str) -> None:
    left_out = {field, *DEPENDENT.get(field, ())}
    full = observed(exchange(answering(REPLY), response=FULL_RESPONSE))
    turn = exchange(answering(REPLY), response={k: v for k, v in FULL_RESPONSE.items() if k not in left_out})
    assert turn.status is TurnStatus.ok
    expected = {k: None if k in left_out else v for k, v in full.items()}
    if field == "state":
        expected["state"] = "handed_off"  # without a state expression the state follows the handoff observation
    assert observed(turn) == expected
    assert all(v is not None for v in full.values())


def test_observes_is_exactly_what_the_response_section_maps() -> None:
    assert observes_of(settings(response=FULL_RESPONSE)) == ALL_OBSERVATIONS
    assert observes_of(settings(response={"messages": "m"})) == {Observation.messages}
    assert observes_of(settings(response={"intent": "i"})) == {Observation.intent}
    assert observes_of(settings(response={"intent": "i"}, fallback_intents=["nlu_fallback"])) == {
        Observation.intent,
        Observation.fallback,
    }
    assert observes_of(settings(response={"handoff": "h != null", "ticket": "h.id"})) == {
        Observation.handoff,
        Observation.ticket,
    }
    assert observes_of(settings(response={})) == frozenset()
    bot = HttpJsonBot(settings(response={"messages": "m", "model": "v"}), TOKEN)
    assert bot.observes == {Observation.messages, Observation.model} and bot.kind == "http_json.v1"


def test_one_string_is_one_message() -> None:
    assert exchange(answering({"reply": "Hi"}), response={"messages": "reply"}).messages == ("Hi",)


@pytest.mark.parametrize(
    ("flag", "intent", "expected"),
    [
        (None, "nlu_fallback", True),
        (False, "nlu_fallback", True),
        (True, "greet", True),
        (False, "greet", False),
        (None, "greet", False),
        (None, None, None),
        (False, None, False),
    ],
)
def test_fallback_is_the_flag_or_a_fallback_intent(flag: bool | None, intent: str | None, expected: bool) -> None:
    body = {"replies": [{"text": "?"}], "nlu": {"intent": {"name": intent}, "fallback": flag}}
    response = {"messages": "replies[].text", "intent": "nlu.intent.name", "fallback": "nlu.fallback"}
    turn = exchange(answering(body), response=response, fallback_intents=["nlu_fallback"])
    assert turn.fallback is expected


def test_without_a_fallback_expression_fallback_follows_the_intent_alone() -> None:
    response = {"messages": "replies[].text", "intent": "nlu.intent.name"}
    for name, expected in [("nlu_fallback", True), ("greet", False), (None, None)]:
        body = {"replies": [{"text": "?"}], "nlu": {"intent": {"name": name}}}
        assert exchange(answering(body), response=response, fallback_intents=["nlu_fallback"]).fallback is expected


@pytest.mark.parametrize(
    ("handoff", "expected", "state"),
    [
        ({"queue": "human_agent"}, Handoff("general"), "handed_off"),
        ({"queue": "fraud"}, Handoff("fraud"), "handed_off"),  # not in `queues`: kept as the bot says it
        ({"queue": ""}, None, "active"),
        ({"queue": None}, None, "active"),
        (None, None, "active"),
    ],
)
def test_a_queue_word_means_a_handoff_and_is_mapped_to_the_eval_sets_queue(
    handoff: dict | None, expected: Handoff | None, state: str
) -> None:
    body = {"replies": [{"text": "ok"}], "handoff": handoff}
    response = {"messages": "replies[].text", "handoff_queue": "handoff.queue"}
    turn = exchange(answering(body), response=response, queues={"human_agent": "general"})
    assert (turn.handoff, turn.state, turn.handed_off) == (expected, state, expected is not None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"escalate": True, "routing": {"queue": "general"}}, Handoff("general")),
        ({"escalate": False, "routing": {"queue": "general"}}, None),  # the flag decides; the queue only names it
        ({"escalate": True}, Handoff(None)),
        ({"escalate": None, "routing": {"queue": "general"}}, None),
    ],
)
def test_a_handoff_flag_decides_whether_the_bot_handed_off(body: dict, expected: Handoff | None) -> None:
    response = {"messages": "m", "handoff": "escalate", "handoff_queue": "routing.queue"}
    turn = exchange(answering({"m": "ok", **body}), response=response)
    assert turn.handoff == expected and turn.state == ("handed_off" if expected else "active")


# --- statuses ----------------------------------------------------------------------------------------------------


def test_an_error_status_is_a_channel_error_with_the_head_of_the_body() -> None:
    body = "Traceback (most recent call last):\n  " + "x" * 500
    turn = exchange(lambda request: httpx.Response(500, text=body))
    assert turn.status is TurnStatus.channel_error and turn.http_status == 500
    assert turn.error is not None and turn.error.startswith("HTTP 500: Traceback (most recent call last): xxx")
    assert turn.error.endswith("...") and len(turn.error) == len("HTTP 500: ") + 200
    assert turn.messages is None and turn.intent is None


def test_503_is_retried_then_recorded() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, text="warming up")

    turn = exchange(handler, retries=2)
    assert (turn.status, turn.attempts, len(calls), turn.error) == (
        TurnStatus.channel_error,
        3,
        3,
        "HTTP 503: warming up",
    )


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_stops_the_run(status: int) -> None:
    with pytest.raises(
        BotRefused, match=rf"bot at {URL} refused the harness \(HTTP {status}: .*bad token.*\$MY_BOT_TOKEN"
    ):
        exchange(answering({"error": "bad token"}, status))


def test_404_stops_the_run_naming_the_url() -> None:
    url = "http://bot.test/conversations/{conversation_id}"
    with pytest.raises(BotRefused, match=r"^http://bot.test/conversations/run1%3Ac1%3A00ff answered 404 Not Found"):
        exchange(answering({}, 404), url=url)


@pytest.mark.parametrize(
    ("content", "shown"), [(b"<html>Bad gateway</html>", "<html>Bad gateway</html>"), (b"", "(empty)")]
)
def test_a_body_that_is_not_json_is_a_channel_error(content: bytes, shown: str) -> None:
    turn = exchange(lambda request: httpx.Response(200, content=content))
    assert turn.status is TurnStatus.channel_error and turn.http_status == 200
    assert turn.error == f"HTTP 200 with a body that is not JSON: {shown}"


@pytest.mark.parametrize("replies", [[], None, [{"image": "x.png"}], "missing"])
def test_no_message_is_an_empty_reply_that_keeps_the_rest_of_the_observation(replies: Any) -> None:
    body = {"nlu": {"intent": {"name": "greet", "confidence": 0.9}}}
    if replies != "missing":
        body["replies"] = replies
    turn = exchange(answering(body), response={"messages": "replies[].text", "intent": "nlu.intent.name"})
    assert (turn.status, turn.messages, turn.intent) == (TurnStatus.empty_reply, (), "greet")
    assert turn.error == "HTTP 200 with no bot message (response.messages `replies[].text` gave none)"


def test_an_empty_string_is_an_empty_reply() -> None:
    assert exchange(answering({"reply": ""}), response={"messages": "reply"}).status is TurnStatus.empty_reply


def test_without_a_messages_expression_a_json_reply_is_ok_and_messages_are_not_observed() -> None:
    turn = exchange(answering({"nlu": {"intent": {"name": "greet"}}}), response={"intent": "nlu.intent.name"})
    assert (turn.status, turn.messages, turn.intent) == (TurnStatus.ok, None, "greet")


def test_a_read_timeout_is_a_timeout_and_a_refused_connection_stops_the_run() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    turn = exchange(slow)
    assert (turn.status, turn.error) == (TurnStatus.timeout, "no reply within 5 s")
    with pytest.raises(BotUnreachable, match=rf"cannot reach the bot at {URL} .* after 2 attempts"):
        exchange(refused, retries=1)


@pytest.mark.parametrize(
    ("field", "expression", "body", "error"),
    [
        ("confidence", "c", {"c": "high"}, 'response.confidence `c` gave "high", expected a number in [0, 1] or null'),
        ("confidence", "c", {"c": 87}, "response.confidence `c` gave 87, expected a number in [0, 1] or null"),
        ("confidence", "c", {"c": True}, "response.confidence `c` gave true, expected a number in [0, 1] or null"),
        ("messages", "m", {"m": ["hi", 3]}, 'response.messages `m` gave ["hi", 3], expected a list of strings, one'),
        ("messages", "m", {"m": {"text": "hi"}}, 'response.messages `m` gave {"text": "hi"}, expected a list of'),
        ("intent", "i", {"i": {"name": "greet"}}, 'response.intent `i` gave {"name": "greet"}, expected a string'),
        ("fallback", "f", {"f": "yes"}, 'response.fallback `f` gave "yes", expected true, false or null'),
        ("actions", "a", {"a": [["x"]]}, 'response.actions `a` gave [["x"]], expected a list of strings'),
        ("slots", "s", {"s": ["name"]}, 'response.slots `s` gave ["name"], expected an object or null'),
        ("ranking", "r", {"r": {"greet": 1}}, 'response.ranking `r` gave {"greet": 1}, expected a list of'),
        ("ranking", "r", {"r": [{"name": "greet"}]}, 'response.ranking `r` gave {"name": "greet"}, expected each item'),
        ("handoff", "h", {"h": "true"}, 'response.handoff `h` gave "true", expected true, false or null'),
        ("handoff_queue", "q", {"q": 7}, "response.handoff_queue `q` gave 7, expected a string or null"),
        ("model", "v", {"v": ["x" * 100]}, 'response.model `v` gave ["' + "x" * 75 + "..., expected a string"),
        ("intent", "length(i)", {"i": 5}, "response.intent `length(i)` failed: In function length(), invalid type"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_channel_error_naming_the_expression(
    field: str, expression: str, body: dict, error: str
) -> None:
    response = {field: expression, **({"intent": "i"} if field == "confidence" else {})}
    turn = exchange(answering(body), response=response)
    assert turn.status is TurnStatus.channel_error and turn.http_status == 200
    assert turn.error is not None
    prefix = "HTTP 200, but the reply does not fit the response mapping: "
    assert turn.error.startswith(prefix + error), turn.error


# --- settings: problems reported at load -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"response": {"intent": "nlu..name"}},
            "bot.response.intent: not a JMESPath expression: Expecting: ['quoted_identifier', 'unquoted_identifier', "
            "'lbracket', 'lbrace'], got: dot: Parse error at column 4, token \".\" (DOT)",
        ),
        (
            {"response": {"messages": "replies[", "model": "v"}},
            "bot.response.messages: not a JMESPath expression: Invalid jmespath expression: Incomplete expression",
        ),
        ({"response": {"confidence": "c"}}, "bot.response.confidence: map response.intent too"),
        ({"response": {"ticket": "t"}}, "bot.response.ticket: map response.handoff_queue or response.handoff too"),
        ({"response": {"state": "s"}}, "bot.response.state: map response.handoff_queue or response.handoff too"),
        (
            {"request": {"json": {"q": "{txt}", "s": "{conversation_id}"}}},
            "bot.request.json: unknown placeholder {txt} in request.json (did you mean {text}?); placeholders: "
            "{conversation_id}, {text}, {token}; to send the braces as written, double them: {{txt}}",
        ),
        (
            {"request": {"json": {"q": "{text}", "s": "{conversationId}"}}},
            "bot.request.json: unknown placeholder {conversationId} in request.json (did you mean {conversation_id}?)",
        ),
        (
            {"request": {"json": {"q": "hello", "s": "{conversation_id}"}}},
            "bot.request: the customer's message is never sent: put {text} in request.json, request.params or the url",
        ),
        (
            {"request": None},
            "bot.request: the customer's message is never sent",
        ),
        (
            {"request": {"json": {"q": "{text}"}}},
            "bot.request: the bot cannot tell conversations apart: put {conversation_id} in request.json",
        ),
        ({"headers": {"X-Text": "{text}"}}, "bot.headers: {text} cannot be used in header X-Text; allowed here:"),
        (
            {"token_env": None},
            "bot.headers: header Authorization uses {token} but no token_env is set",
        ),
        (
            {"token_env": None, "headers": {}, "url": "http://bot.test/chat?key={token}"},
            "bot.request: the request (url, json or params) uses {token} but no token_env is set",
        ),
        ({"method": "GET"}, "bot.request: method GET sends no body: move the fields to request.params, or use POST"),
        ({"method": "DELETE"}, "bot.method: Input should be 'POST', 'PUT', 'PATCH' or 'GET'"),
        ({"url": "127.0.0.1:8080/chat"}, "bot.url: not an http(s) URL: '127.0.0.1:8080/chat'"),
        ({"fallback_intents": ["nlu_fallback"]}, "bot.fallback_intents: fallback intents are recognised by name"),
        ({"queues": {"human_agent": "general"}}, "bot.queues: queue words are read by response.handoff_queue"),
        (
            {
                "queues": {"human_agent": "genral"},
                "vocabulary": {"queues": ["general", "fraud"]},
                "response": {"handoff_queue": "q"},
            },
            "bot.queues: human_agent: 'genral' is not in vocabulary.queues (did you mean 'general'?); known: "
            "fraud, general",
        ),
        ({"respones": {"messages": "m"}}, "bot.respones: unknown key 'respones' (did you mean 'response'?)"),
        ({"response": {"mesages": "m"}}, "bot.response.mesages: unknown key 'mesages' (did you mean 'messages'?)"),
    ],
)
def test_bad_settings_are_reported_at_load_with_their_location(changes: dict, problem: str) -> None:
    reported = problems(**changes)
    assert any(p.startswith(problem) for p in reported), reported


def test_every_problem_of_the_response_section_is_reported_at_once() -> None:
    reported = problems(response={"messages": "a[", "intent": "b..c", "model": "ok"})
    assert [p.split(":")[0] for p in reported] == ["bot.response.messages", "bot.response.intent"]


def test_connect_needs_the_token_the_templates_use(monkeypatch: pytest.MonkeyPatch) -> None:
    config = RunConfig.model_validate({"version": 1, "bot": bot_section()})
    monkeypatch.delenv("MY_BOT_TOKEN", raising=False)
    with pytest.raises(InputError, match=r"no token for the bot\n  bot.token_env: set \$MY_BOT_TOKEN"):
        connect(config)
    monkeypatch.setenv("MY_BOT_TOKEN", TOKEN)
    bot = connect(config)
    assert isinstance(bot, HttpJsonBot) and bot.token == TOKEN and bot.observes == {Observation.messages}
    no_token = RunConfig.model_validate({"version": 1, "bot": bot_section(token_env=None, headers={})})
    assert isinstance(connect(no_token), HttpJsonBot)


def test_the_example_configuration_is_valid() -> None:
    config = load_config(EXAMPLE)
    kind, loaded = bot_settings(config)
    assert kind.name == "http_json.v1" and isinstance(loaded, HttpJsonSettings)
    assert observes_of(loaded) == ALL_OBSERVATIONS - {Observation.active_form}


# --- a real JSON bot on loopback ---------------------------------------------------------------------------------

TINY_CANNED = {
    "hello": ("greet", 0.97, ["Hi! How can I help?"], {}),
    "what are the fees?": ("fees", 0.91, ["The account has no monthly fee.", "Anything else?"], {"topic": "fees"}),
    "someone stole my card": ("report_fraud", 0.88, ["I'm passing you to our fraud team."], {}),
}


def tiny_bot(heard: list[tuple[str, str]]) -> Starlette:
    """A small JSON bot: canned intents, a fallback, a handoff to its `fraud_desk`, a crash on "boom"."""

    async def chat(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        body = await request.json()
        session, text = body["session"], body["message"]["text"]
        heard.append((session, text))
        if text == "boom":
            return PlainTextResponse("internal error: the database is down", status_code=500)
        intent, confidence, replies, memory = TINY_CANNED.get(text, ("nlu_fallback", 0.31, ["Sorry?"], {}))
        handoff = {"queue": "fraud_desk", "rule": "fraud_immediate", "ticket": "T-" + session.rsplit(":", 1)[1]}
        return JSONResponse(
            {
                "replies": [{"text": reply} for reply in replies],
                "nlu": {
                    "intent": {"name": intent, "confidence": confidence},
                    "ranking": [{"name": intent, "confidence": confidence}],
                },
                "actions": [f"utter_{intent}"],
                "memory": memory,
                "handoff": handoff if intent == "report_fraud" else None,
                "status": "handed_off" if intent == "report_fraud" else "active",
                "version": "tiny-1",
            }
        )

    return Starlette(routes=[Route("/chat", chat, methods=["POST"])])


@pytest.fixture
def tiny_bot_url() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The tiny bot served by uvicorn on a free loopback port (a thread), and the (session, text) it heard."""
    heard: list[tuple[str, str]] = []
    server = uvicorn.Server(uvicorn.Config(tiny_bot(heard), log_level="warning", lifespan="off"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the tiny bot did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/chat", heard
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def conversation(cid: str, turns: list[tuple[str, str | None]], expected: dict) -> EvalConversation:
    raw = {"id": cid, "turns": [{"text": t, "intent": i} for t, i in turns], "expected": expected}
    return EvalConversation("tiny", Path("tiny.yml"), Conversation.model_validate({**raw, "resolvable": True}))


def test_replay_through_a_real_json_bot_on_loopback(
    tiny_bot_url: tuple[str, list[tuple[str, str]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, heard = tiny_bot_url
    response = {k: v for k, v in FULL_RESPONSE.items() if k not in ("fallback", "active_form")}
    section = bot_section(
        url=url,
        response=response,
        fallback_intents=["nlu_fallback"],
        queues={"fraud_desk": "fraud"},
        vocabulary={"intents": ["greet", "fees", "report_fraud"], "queues": ["fraud", "general"]},
    )
    monkeypatch.setenv("MY_BOT_TOKEN", TOKEN)
    bot = connect(RunConfig.model_validate({"version": 1, "bot": section}))
    fraud = {"outcome": "escalated", "queue": "fraud", "rule": "fraud_immediate"}
    suite = EvalSuite(
        (
            conversation("fees", [("hello", "greet"), ("what are the fees?", "fees")], {"outcome": "self_served"}),
            conversation(
                "fraud", [("hello", "greet"), ("someone stole my card", "report_fraud"), ("hello?", None)], fraud
            ),
            conversation("gibberish", [("qwxz", "out_of_scope")], {"outcome": "self_served"}),
            conversation("crash", [("hello", "greet"), ("boom", None), ("hello", "greet")], {"outcome": "self_served"}),
        ),
        (Path("tiny.yml"),),
        "hash",
    )

    async def run() -> dict[str, list[dict[str, Any]]]:
        try:
            return await replay(suite, bot, run_id="run1", journal=Journal(tmp_path / "journal.jsonl"), concurrency=2)
        finally:
            await bot.aclose()

    rows = asyncio.run(run())
    frame = to_frame([row for cid in ("fees", "fraud", "gibberish", "crash") for row in rows[cid]])

    def column(name: str) -> list[Any]:
        return [None if pd.isna(v) else v for v in frame[name].tolist()]

    assert column("conversation_id") == ["fees"] * 2 + ["fraud"] * 3 + ["gibberish"] + ["crash"] * 3
    assert column("turn_index") == [0, 1, 0, 1, 2, 0, 0, 1, 2]
    assert column("status") == ["ok", "ok", "ok", "ok", "not_sent", "ok", "ok", "channel_error", "not_sent"]
    assert column("attempts") == [1, 1, 1, 1, 0, 1, 1, 1, 0]
    assert column("http_status") == [200, 200, 200, 200, None, 200, 200, 500, None]
    assert column("error") == [None] * 7 + ["HTTP 500: internal error: the database is down", None]
    assert [json.loads(m) if m else m for m in column("bot_messages")] == [
        ["Hi! How can I help?"],
        ["The account has no monthly fee.", "Anything else?"],
        ["Hi! How can I help?"],
        ["I'm passing you to our fraud team."],
        [],
        ["Sorry?"],
        ["Hi! How can I help?"],
        [],
        [],
    ]
    assert column("n_bot_messages") == [1, 2, 1, 1, 0, 1, 1, 0, 0]
    intents = ["greet", "fees", "greet", "report_fraud", None, "nlu_fallback", "greet", None, None]
    assert column("intent") == intents
    confidences = [0.97, 0.91, 0.97, 0.88, None, 0.31, 0.97, None, None]
    assert column("confidence") == [c if c is None else pytest.approx(c, abs=1e-6) for c in confidences]
    assert [json.loads(r) if r else None for r in column("ranking")] == [
        [{"name": i, "confidence": pytest.approx(c)}] if i else None for i, c in zip(intents, confidences, strict=True)
    ]
    assert column("fallback") == [False, False, False, False, None, True, False, None, None]
    assert column("actions") == [json.dumps([f"utter_{i}"]) if i else None for i in intents]
    assert column("slots_set") == ["{}", '{"topic": "fees"}', "{}", "{}", None, "{}", "{}", None, None]
    assert column("handoff_queue") == [None, None, None, "fraud", None, None, None, None, None]
    assert column("handoff_rule") == [None, None, None, "fraud_immediate", None, None, None, None, None]
    fraud_nonce = column("sender_id")[3].rsplit(":", 1)[1]
    assert column("ticket_id") == [None, None, None, f"T-{fraud_nonce}", None, None, None, None, None]
    assert column("state") == ["active"] * 3 + ["handed_off", None, "active", "active", None, None]
    assert column("active_form") == [None] * 9  # not mapped: not observed
    assert column("model") == ["tiny-1"] * 4 + [None, "tiny-1", "tiny-1", None, None]
    latencies = column("latency_ms")
    assert all((v is None) == (s == "not_sent") for v, s in zip(latencies, column("status"), strict=True))
    assert all(v is None or v > 0 for v in latencies)
    # The expectation columns come from the eval set, unchanged.
    expected_intents = ["greet", "fees", "greet", "report_fraud", None, "out_of_scope", "greet", None, "greet"]
    assert column("expected_intent") == expected_intents
    assert column("text") == [t for c in suite.conversations for t in (turn.text for turn in c.conversation.turns)]
    assert column("expected_queue") == [None, None, "fraud", "fraud", "fraud", None, None, None, None]
    # Each conversation went to the bot under its own sender id, and the bot heard exactly the sent turns.
    senders = dict(zip(column("conversation_id"), column("sender_id"), strict=False))
    assert all(sender.startswith(f"run1:{cid}:") for cid, sender in senders.items())
    sent = frame[frame["status"] != "not_sent"]
    assert sorted(heard) == sorted(zip(sent["sender_id"], sent["text"], strict=True))
    for cid in senders:
        assert [t for s, t in heard if s == senders[cid]] == sent[sent["conversation_id"] == cid]["text"].tolist()
