"""Bot kind `http_json`: any bot that answers an HTTP request with JSON, described in the run configuration (the
generic HTTP connector). The request is a JSON template; the reply is read with JMESPath expressions, one per
observation, and the kind observes exactly what the configuration maps.

```yaml
bot:
  kind: http_json
  url: http://127.0.0.1:8080/chat
  token_env: MY_BOT_TOKEN
  headers: {Authorization: "Bearer {token}"}
  request:
    json: {session: "{conversation_id}", message: {text: "{text}"}}
  response:
    messages: "replies[].text"
    intent: "nlu.intent.name"
    handoff_queue: "handoff.queue"
  vocabulary: {intents: [greet, fees], queues: [general]}
```

**Templates.** The url, header values, query parameters and every string value of the JSON body (at any depth;
keys are kept as written) may hold the placeholders `{conversation_id}` (the bot-side conversation of one attempt),
`{text}` (the customer's message) and `{token}` (the value of `$token_env`); headers take no `{text}`. Nothing else
is interpreted: a lone `{` or `}` and braces around any other word are sent as written. Escaping: `{{` sends `{` and
`}}` sends `}`, so `{{text}}` sends `{text}`. A braced word that looks like a misspelt placeholder (`{txt}`,
`{conversationId}`) is refused at load with a did-you-mean (double its braces to send it). Substituted values are
never scanned again: a customer typing `{token}` sends those seven characters. In the url the values are
percent-encoded; the body is built as Python objects and serialised by httpx, so nothing is escaped by hand. At
load, `{text}` must be in the url, body or parameters and `{conversation_id}` somewhere too (else the bot could not
tell the replayed conversations apart). Cookies the bot sets are sent back within their conversation only.

**Reply.** Non-2xx: `channel_error` with the head of the body; 401 and 403 raise BotRefused (token or headers),
404 raises BotRefused naming the URL. A 2xx body that is not JSON: `channel_error`. A mapped value of the wrong type
(a confidence that is not a number in [0, 1], messages that are not strings, ...) means the bot broke the contract
the configuration describes: `channel_error` naming the expression and what it gave. Mapped `messages` that give
null, `[]` or `""`: `empty_reply` (the rest of the observation is kept). A non-empty `handoff_queue` is a handoff,
unless a `handoff` expression is mapped: then that boolean decides.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal
from urllib.parse import quote

import httpx
import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from harness.bots.base import Bot, BotTurn, Handoff, HttpOptions, RankedIntent, VocabularySettings
from harness.bots.http import HttpClient
from harness.errors import BotRefused, InputError
from harness.records import Observation, TurnStatus

KIND = "http_json.v1"
PLACEHOLDERS = ("conversation_id", "text", "token")
_TOKENS = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""Escaped braces, or one word in braces (a placeholder when the word is one of PLACEHOLDERS)."""
_HEAD = 200
"""Characters of a body quoted in an error."""


def fill(template: str, values: Mapping[str, str], encode: Callable[[str], str] = str) -> str:
    """`template` with each placeholder replaced by `encode(values[name])` and `{{`, `}}` by `{`, `}` (see the
    module docstring); other braces are kept. A placeholder missing from `values` is kept as written."""

    def substitute(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            return token[0]
        return encode(values[name]) if name in PLACEHOLDERS and name in values else token

    return _TOKENS.sub(substitute, template)


def render(template: JsonValue, values: Mapping[str, str]) -> JsonValue:
    """A JSON template (from YAML) with `fill` applied to every string value at any depth; keys are kept."""
    if isinstance(template, str):
        return fill(template, values)
    if isinstance(template, list):
        return [render(item, values) for item in template]
    if isinstance(template, dict):
        return {key: render(item, values) for key, item in template.items()}
    return template


def placeholders(template: JsonValue) -> set[str]:
    """The placeholder names used in a template's strings (escaped ones left out)."""
    found: set[str] = set()
    for text in _strings(template):
        found |= {m.group(1) for m in _TOKENS.finditer(text) if m.group(1) in PLACEHOLDERS}
    return found


def _strings(template: JsonValue) -> list[str]:
    if isinstance(template, str):
        return [template]
    if isinstance(template, list):
        return [s for item in template for s in _strings(item)]
    if isinstance(template, dict):
        return [s for item in template.values() for s in _strings(item)]
    return []


def _check_template(template: JsonValue, where: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> None:
    """Refuse a placeholder not allowed in `where`, and a braced word that looks like a misspelt placeholder."""
    for text in _strings(template):
        for match in _TOKENS.finditer(text):
            name = match.group(1)
            if name is None:
                continue
            if name in PLACEHOLDERS and name not in allowed:
                raise _error(f"{{{name}}} cannot be used in {where}; allowed here: {_braced(allowed)}")
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1, cutoff=0.75)
            if name not in PLACEHOLDERS and close:
                raise _error(
                    f"unknown placeholder {{{name}}} in {where} (did you mean {{{close[0]}}}?); placeholders: "
                    f"{_braced(PLACEHOLDERS)}; to send the braces as written, double them: {{{{{name}}}}}"
                )


def _braced(names: tuple[str, ...]) -> str:
    return ", ".join(f"{{{name}}}" for name in names)


def _error(message: str) -> PydanticCustomError:
    # No context: the message is preformatted and may hold braces.
    return PydanticCustomError("http_json", message)


def _needs_token(used: set[str], info: ValidationInfo, where: str) -> None:
    if "token" in used and not info.data.get("token_env"):
        raise _error(f"{where} uses {{token}} but no token_env is set: name the environment variable of the token")


class RequestSettings(BaseModel):
    """What is sent for each customer message, besides the url and headers."""

    model_config = ConfigDict(extra="forbid")

    body: JsonValue = Field(default=None, alias="json")
    """The JSON body, a template (`json:` in YAML): every string value at any depth may hold placeholders. Null
    sends no body (with `method: GET`)."""
    params: dict[str, str] = {}
    """Query parameters, name -> template (percent-encoded by httpx)."""

    @field_validator("body", "params")
    @classmethod
    def _placeholders(cls, template: Any, info: ValidationInfo) -> Any:
        _check_template(template, "request.json" if info.field_name == "body" else "request.params")
        return template


class ResponseSettings(BaseModel):
    """JMESPath expressions (https://jmespath.org) on the JSON reply; the kind observes exactly the ones given."""

    model_config = ConfigDict(extra="forbid")

    messages: str | None = None
    """The bot's reply texts: a list of strings or one string. Null, `[]` or `""` is an empty reply."""
    intent: str | None = None
    """The recognised intent's name (a string or null)."""
    confidence: str | None = None
    """The recognised intent's confidence, a number in [0, 1] or null (needs `intent`)."""
    ranking: str | None = None
    """The intent ranking, a list of `{name: string, confidence: number}` objects or null: for example
    `nlu.ranking[].{name: name, confidence: confidence}`."""
    fallback: str | None = None
    """True when the bot fell back (a boolean or null); see also `fallback_intents`."""
    actions: str | None = None
    """What the bot did in the turn, a list of strings (or one string) or null."""
    slots: str | None = None
    """What the bot remembered in the turn, an object (name -> value) or null."""
    handoff_queue: str | None = None
    """The queue the bot handed off to: a non-empty string means it handed off (unless `handoff` says it did not);
    the bot's word is mapped by `queues`."""
    handoff: str | None = None
    """Whether the bot handed off, a boolean (null means no); when given it decides, and `handoff_queue` only names
    the queue. For bots that report a queue even when they do not hand off, or no queue at all."""
    handoff_rule: str | None = None
    """The escalation rule that fired, a string or null (needs `handoff_queue` or `handoff`)."""
    ticket: str | None = None
    """The human queue's ticket id, a string or null (needs `handoff_queue` or `handoff`)."""
    state: str | None = None
    """The conversation's state after the turn, a string kept as the bot says it (needs `handoff_queue` or
    `handoff`; without it the state is `handed_off` or `active` after the handoff observation)."""
    active_form: str | None = None
    """The form waiting for an answer, a string or null."""
    model: str | None = None
    """The bot model that answered, a string or null (a run stops when it changes)."""

    @field_validator("*")
    @classmethod
    def _compiles(cls, expression: str | None, info: ValidationInfo) -> str | None:
        if expression is None:
            return None
        try:
            jmespath.compile(expression)
        except JMESPathError as exc:
            raise _error(f"not a JMESPath expression: {_parser_message(exc)}") from None
        needs = {"confidence": ("intent",), "handoff_rule": _HANDOFF, "ticket": _HANDOFF, "state": _HANDOFF}
        required = needs.get(info.field_name or "", ())
        if required and all(info.data.get(name, "") is None for name in required):
            either = " or ".join(f"response.{name}" for name in required)
            raise _error(f"map {either} too: {info.field_name} is only read beside it")
        return expression


_HANDOFF = ("handoff_queue", "handoff")


def _parser_message(exc: JMESPathError) -> str:
    """The parser's message on one line (without its multi-line caret picture)."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first.removesuffix(", for expression:").rstrip(":")


class HttpJsonSettings(BaseModel):
    """The `bot:` section of a run configuration for `kind: http_json`."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "http_json"
    """`http_json` (its latest version) or `http_json.v1`."""
    url: str
    """Where each customer message is sent, `http(s)://...`; may hold placeholders (percent-encoded), for example
    `http://127.0.0.1:8080/conversations/{conversation_id}/messages`."""
    method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    """The HTTP method of each message; GET sends no body (put the fields in `request.params`)."""
    token_env: str | None = None
    """The environment variable holding the bot's token, available to templates as `{token}`; None for none."""
    headers: dict[str, str] = {}
    """Request headers, name -> template (`{token}` and `{conversation_id}` only)."""
    request: RequestSettings = Field(default_factory=RequestSettings, validate_default=True)
    """The body and query parameters; `{text}` must appear in the url, the body or the parameters, and
    `{conversation_id}` in one of them or a header."""
    response: ResponseSettings = ResponseSettings()
    """Where each observation is in the reply; an observation not mapped is not observed (its KPIs undefined)."""
    fallback_intents: list[str] = []
    """Intent names that also count as a fallback (for example `nlu_fallback`); needs `response.intent`."""
    vocabulary: VocabularySettings = VocabularySettings()
    """The intents, queues and rules eval sets may name against this bot."""
    queues: dict[str, str] = {}
    """The bot's queue words -> eval-set queue names (a word not listed is kept as it is)."""

    @field_validator("url")
    @classmethod
    def _url(cls, url: str, info: ValidationInfo) -> str:
        if not url.startswith(("http://", "https://")):
            raise _error(f"not an http(s) URL: {url!r}")
        _check_template(url, "the url")
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for name, value in headers.items():
            _check_template(value, f"header {name}", ("conversation_id", "token"))
            _needs_token(placeholders(value), info, f"header {name}")
        return headers

    @field_validator("request")
    @classmethod
    def _request(cls, request: RequestSettings, info: ValidationInfo) -> RequestSettings:
        in_request = placeholders(request.body) | placeholders(dict(request.params))
        url = placeholders(info.data.get("url", ""))
        _needs_token(in_request | url, info, "the request (url, json or params)")
        if info.data.get("method") == "GET" and request.body is not None:
            raise _error("method GET sends no body: move the fields to request.params, or use POST")
        headers = placeholders(dict(info.data.get("headers") or {}))
        if "text" not in in_request | url:
            raise _error("the customer's message is never sent: put {text} in request.json, request.params or the url")
        if "conversation_id" not in in_request | url | headers:
            raise _error(
                "the bot cannot tell conversations apart: put {conversation_id} in request.json, request.params, "
                'the url or a header (for example `X-Conversation-Id: "{conversation_id}"`)'
            )
        return request

    @field_validator("fallback_intents")
    @classmethod
    def _fallback_intents(cls, names: list[str], info: ValidationInfo) -> list[str]:
        response = info.data.get("response")
        if names and response is not None and response.intent is None:
            raise _error("fallback intents are recognised by name: map response.intent too")
        return names

    @field_validator("queues")
    @classmethod
    def _queues(cls, queues: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        response = info.data.get("response")
        if queues and response is not None and response.handoff_queue is None:
            raise _error("queue words are read by response.handoff_queue: map it too")
        vocabulary = info.data.get("vocabulary")
        known = set(vocabulary.queues) if vocabulary is not None else set()
        for word, queue in queues.items():
            if known and queue not in known:
                close = difflib.get_close_matches(queue, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _error(f"{word}: {queue!r} is not in vocabulary.queues{hint}; known: {', '.join(sorted(known))}")
        return queues


def observes_of(settings: HttpJsonSettings) -> frozenset[Observation]:
    """What a bot with these settings observes: exactly what the response section maps."""
    r = settings.response
    handoff = r.handoff_queue is not None or r.handoff is not None
    mapped = {
        Observation.messages: r.messages is not None,
        Observation.intent: r.intent is not None,
        Observation.ranking: r.ranking is not None,
        Observation.fallback: r.fallback is not None or bool(settings.fallback_intents and r.intent),
        Observation.actions: r.actions is not None,
        Observation.slots: r.slots is not None,
        Observation.handoff: handoff,
        Observation.handoff_rule: handoff and r.handoff_rule is not None,
        Observation.ticket: handoff and r.ticket is not None,
        Observation.active_form: r.active_form is not None,
        Observation.model: r.model is not None,
    }
    return frozenset(o for o, seen in mapped.items() if seen)


@dataclass
class HttpJsonBot:
    """An HTTP bot answering JSON, talked to as its settings describe (see the module docstring)."""

    settings: HttpJsonSettings
    token: str = ""
    options: HttpOptions = field(default_factory=HttpOptions)
    kind: str = KIND
    observes: frozenset[Observation] = field(init=False)

    def __post_init__(self) -> None:
        self.observes = observes_of(self.settings)
        self._reader = ReplyReader(self.settings)
        self._http = HttpClient(self.options)
        # Cookies are kept per conversation (a bot may keep its session in one), never in the shared client,
        # where one conversation's session cookie would reach every other conversation.
        self._http.client().cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
        self._cookies: dict[str, httpx.Cookies] = {}

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        s = self.settings
        values = {"conversation_id": conversation_id, "text": text, "token": self.token}
        url = fill(s.url, values, lambda value: quote(value, safe=""))
        headers = {name: fill(value, values) for name, value in s.headers.items()}
        cookies = self._cookies.get(conversation_id)
        if cookies:
            probe = httpx.Request(s.method, url)
            cookies.set_cookie_header(probe)
            headers = {k: v for k, v in headers.items() if k.lower() != "cookie"}
            headers["Cookie"] = "; ".join(c for c in (self._configured_cookie(values), probe.headers["cookie"]) if c)
        kwargs: dict[str, Any] = {"headers": headers}
        if s.request.body is not None:
            kwargs["json"] = render(s.request.body, values)
        if s.request.params:
            kwargs["params"] = {name: fill(value, values) for name, value in s.request.params.items()}
        exchange = await self._http.request(s.method, url, **kwargs)
        if exchange.response is None:
            assert exchange.failed is not None
            return exchange.failed
        response = exchange.response
        if "set-cookie" in response.headers:
            self._cookies.setdefault(conversation_id, httpx.Cookies()).extract_cookies(response)
        return self._reader.read(response.status_code, response.content, exchange.latency_ms, exchange.attempts, url)

    def _configured_cookie(self, values: Mapping[str, str]) -> str:
        """The `Cookie` header of the settings, filled ('' when none)."""
        return next((fill(v, values) for k, v in self.settings.headers.items() if k.lower() == "cookie"), "")

    async def aclose(self) -> None:
        await self._http.aclose()


def connect_http_json(settings: HttpJsonSettings, token: str, options: HttpOptions) -> Bot:
    """The bot the settings describe; InputError when its templates use `{token}` and the token is not set."""
    s = settings
    used = (
        placeholders(s.url)
        | placeholders(dict(s.headers))
        | placeholders(s.request.body)
        | placeholders(dict(s.request.params))
    )
    if "token" in used and not token:
        raise InputError("no token for the bot", [f"bot.token_env: set ${s.token_env} (the templates use {{token}})"])
    return HttpJsonBot(settings, token, options)


class _ContractBroken(Exception):
    """A mapped value of the wrong type (internal: becomes a channel_error turn)."""


class ReplyReader:
    """Reads one HTTP answer into a BotTurn with the settings' compiled expressions."""

    def __init__(self, settings: HttpJsonSettings) -> None:
        self.settings = settings
        self.expressions = {
            name: jmespath.compile(expression)
            for name, expression in settings.response.model_dump().items()
            if expression is not None
        }

    def read(self, http_status: int, content: bytes, latency_ms: float, attempts: int, url: str) -> BotTurn:
        """The turn an answer stands for (see the module docstring for the mapping of statuses).

        Raises BotRefused on 401, 403 and 404: no later message would fare better.
        """
        s = self.settings

        def failed(error: str) -> BotTurn:
            return BotTurn(TurnStatus.channel_error, latency_ms, attempts, http_status=http_status, error=error)

        if http_status in (401, 403):
            where = f"${s.token_env} and bot.headers" if s.token_env else "bot.headers"
            raise BotRefused(
                f"the bot at {url} refused the harness (HTTP {http_status}: {_head(content)}); check the token "
                f"and the headers it is sent in ({where})"
            )
        if http_status == 404:
            raise BotRefused(f"{url} answered 404 Not Found: is bot.url the address the bot takes messages at?")
        if not 200 <= http_status < 300:
            return failed(f"HTTP {http_status}: {_head(content)}")
        try:
            body = json.loads(content)
        except ValueError:
            return failed(f"HTTP {http_status} with a body that is not JSON: {_head(content) or '(empty)'}")
        try:
            turn = self._observe(body, latency_ms, attempts, http_status)
        except _ContractBroken as exc:
            return failed(f"HTTP {http_status}, but the reply does not fit the response mapping: {exc}")
        if turn.messages is not None and not turn.messages:
            error = f"HTTP {http_status} with no bot message (response.messages `{s.response.messages}` gave none)"
            return replace(turn, status=TurnStatus.empty_reply, error=error)
        return turn

    def _observe(self, body: Any, latency_ms: float, attempts: int, http_status: int) -> BotTurn:
        s, r = self.settings, self.settings.response
        intent = self._string(body, "intent")
        flagged = self._boolean(body, "fallback")
        by_name = (intent in s.fallback_intents) if s.fallback_intents and intent is not None else None
        fallback = True if flagged or by_name else (False if False in (flagged, by_name) else None)
        word = self._string(body, "handoff_queue")
        handed_off = self._boolean(body, "handoff") is True if r.handoff is not None else bool(word)
        handoff = None
        if handed_off:
            queue = s.queues.get(word, word) if word else None
            handoff = Handoff(queue, self._string(body, "handoff_rule"), self._string(body, "ticket"))
        state = self._string(body, "state")
        if state is None and (r.handoff_queue is not None or r.handoff is not None):
            state = "handed_off" if handed_off else "active"
        slots = self._value(body, "slots")
        if slots is not None and not isinstance(slots, dict):
            raise self._broken("slots", slots, "an object or null")
        return BotTurn(
            TurnStatus.ok,
            latency_ms,
            attempts,
            messages=self._texts(body, "messages"),
            intent=intent,
            confidence=self._confidence(body),
            ranking=self._ranking(body),
            fallback=fallback,
            actions=self._texts(body, "actions"),
            slots_set=slots,
            handoff=handoff,
            state=state,
            active_form=self._string(body, "active_form"),
            model=self._string(body, "model"),
            http_status=http_status,
        )

    def _value(self, body: Any, name: str) -> Any:
        expression = self.expressions.get(name)
        if expression is None:
            return None
        try:
            return expression.search(body)
        except JMESPathError as exc:
            raise _ContractBroken(f"response.{name} `{expression.expression}` failed: {_parser_message(exc)}") from None

    def _broken(self, name: str, value: Any, expected: str) -> _ContractBroken:
        shown = json.dumps(value, ensure_ascii=False)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return _ContractBroken(
            f"response.{name} `{self.expressions[name].expression}` gave {shown}, expected {expected}"
        )

    def _string(self, body: Any, name: str) -> str | None:
        value = self._value(body, name)
        if value is not None and not isinstance(value, str):
            raise self._broken(name, value, "a string or null")
        return value

    def _boolean(self, body: Any, name: str) -> bool | None:
        value = self._value(body, name)
        if value is not None and not isinstance(value, bool):
            raise self._broken(name, value, "true, false or null")
        return value

    def _texts(self, body: Any, name: str) -> tuple[str, ...] | None:
        """None when not mapped; () for null, [] or ''."""
        if name not in self.expressions:
            return None
        value = self._value(body, name)
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise self._broken(name, value, "a list of strings, one string or null")

    def _confidence(self, body: Any) -> float | None:
        value = self._value(body, "confidence")
        if value is not None and not _is_confidence(value):
            raise self._broken("confidence", value, "a number in [0, 1] or null")
        return None if value is None else float(value)

    def _ranking(self, body: Any) -> tuple[RankedIntent, ...] | None:
        value = self._value(body, "ranking")
        if value is None:
            return None
        expected = "a list of {name: string, confidence: number in [0, 1]} or null"
        if not isinstance(value, list):
            raise self._broken("ranking", value, expected)
        for item in value:
            if not (
                isinstance(item, dict) and isinstance(item.get("name"), str) and _is_confidence(item.get("confidence"))
            ):
                raise self._broken("ranking", item, "each item {name: string, confidence: number in [0, 1]}")
        return tuple(RankedIntent(item["name"], float(item["confidence"])) for item in value)


def _is_confidence(value: Any) -> bool:
    """A JSON number in [0, 1] (not a boolean, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _head(content: bytes) -> str:
    """The first characters of a body, on one line."""
    text = " ".join(content[: _HEAD * 4].decode("utf-8", errors="replace").split())
    return text if len(text) <= _HEAD else text[: _HEAD - 3] + "..."
