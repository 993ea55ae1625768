"""The reference chat channel: the one contract between the bot and any client (the harness, a web chat).

POST /webhooks/reference/webhook, one request per customer message, `Authorization: Bearer <token>`:
    {"sender": "<conversation id>", "message": "<text>", "metadata": {...optional}}
answers 200 with the bot's messages and a structured trace of the bot's decision for that turn
(docs/channel-protocol.md, docs/channel.schema.json). Errors never look like an empty success: 400 malformed body
(also text the bot cannot store, or JSON nested too deep), 401 missing or wrong token, 413 body over the size limit,
503 model not loaded (`not_ready`) or too many turns waiting (`overloaded`, with Retry-After), 500 internal failure
or no reply. GET /webhooks/reference/ is an unauthenticated health check that never waits for a turn.

One turn at a time per conversation. Rasa's lock store (`Agent.handle_message` holds `lock_store.lock(sender)`)
covers only the dialogue engine's processing. This channel also reads the tracker before it (is the conversation
handed off? then stay silent and pass the message to the ticket) and after it (the decision trace). With only
Rasa's lock, a second message checks "not handed off" while the first is still being processed, then queues on
Rasa's lock, is processed after the handoff and answered, and can open a second ticket. So the channel makes the
whole turn (silence check, processing, trace) one critical section per conversation: a per-sender asyncio lock,
dropped when no turn of that conversation is running or waiting. That holds for one Rasa process, which is how the
reference bot runs; several Rasa processes behind a balancer would need the lock in a shared store (Redis) held
around the same section.

Admission control. The bot is CPU bound on one event loop: more turns in progress only share the same core and
make every one of them slower (without a bound, 200 conversations at once here all waited, the median 13 s; with an
earlier, slower model every one of them got Sanic's 503 Response Timeout).
So at most `max_in_flight` turns run at once and at most `max_queue` wait, each for at most `max_wait_s`; a request
that cannot be admitted (queue full, or its estimated wait, from the recent turn times, is longer than
`max_wait_s`) is refused at once with 503 `overloaded` and a Retry-After header. Limits come from credentials.yml.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage, SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bankbot.handoff_store import HandoffStore

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_MESSAGE_CHARS = 4000
MAX_SENDER_CHARS = 128
FALLBACK_INTENT = "nlu_fallback"
# Actions that are the dialogue engine's own plumbing, not decisions worth reporting.
_PLUMBING_ACTIONS = {"action_listen", "action_extract_slots", "action_session_start"}
_FRAMING_ERROR_CODES = {400: "bad_request", 413: "payload_too_large"}


class BadRequest(ValueError):
    """The request body is malformed; the message names the problem."""


class PayloadTooLarge(ValueError):
    """The request body is longer than the channel accepts."""


class Overloaded(RuntimeError):
    """A turn cannot be admitted now; `retry_after_s` is when trying again is sensible."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Limits:
    """What the channel accepts and how many turns it runs; keys of the channel's section in credentials.yml."""

    max_body_bytes: int = 65536
    """Largest request body in bytes (64 KiB: a message is at most 4,000 characters, metadata is small)."""
    max_depth: int = 10
    """Deepest nesting of JSON objects and arrays in the body; the body itself is level 1, metadata level 2."""
    max_in_flight: int = 2
    """Turns processed at once. They share one event loop: measured on 2 cores, 1, 2 and 4 served the same turns
    per second and more only made each turn slower; 2 keeps serving while one turn waits for the action server."""
    max_queue: int = 8
    """Turns waiting for a slot (about half a second of work at about 15 turns/s, bench/results/bot.md); one more
    is refused at once."""
    max_wait_s: float = 2.0
    """Longest a turn may wait for a slot; a turn whose estimated wait is longer is refused at once."""
    max_metadata_bytes: int = 4096
    """Largest `metadata` object, as UTF-8 JSON. Rasa stores it with every message of the conversation and reloads
    the whole conversation at every turn, so large metadata makes every later turn slower (the body limit alone
    let 60 KB a message pile up: a turn took 500 ms after 80 of them)."""
    max_turn_s: float = 20.0
    """Longest a turn may take once admitted (processing, the action server, the stores): past it the turn is
    cancelled and answered 504 `turn_timeout`, freeing its slot. Rasa itself waits 300 s for an action server."""

    def __post_init__(self) -> None:
        if self.max_depth < 2:
            raise ValueError(f"bankbot.channel.ReferenceChannel: max_depth must be at least 2 (the body and its "
                             f"metadata object), got {self.max_depth}")

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> Limits:
        """The limits given in the channel's credentials (YAML numbers or `${VAR}` strings); defaults elsewhere.

        Raises ValueError naming the key when a value is not a positive number."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = credentials.get(f.name)
            if raw is None or raw == "":
                continue
            kind = int if f.type == "int" else float
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                value = 0
            if value <= 0 or isinstance(raw, bool):
                raise ValueError(
                    f"bankbot.channel.ReferenceChannel: {f.name} must be a positive "
                    f"{'whole ' if kind is int else ''}number (credentials.yml), got {raw!r}"
                )
            values[f.name] = value
        return cls(**values)


def error(status: int, code: str, message: str, **headers: str) -> HTTPResponse:
    return response.json({"error": {"code": code, "message": message}}, status=status, headers=headers or None)


def parse_body(
    raw: bytes, max_depth: int = Limits.max_depth, max_metadata_bytes: int = Limits.max_metadata_bytes
) -> tuple[str, str, dict[str, Any]]:
    """(sender, message, metadata) from a request body; raises BadRequest naming the problem.

    Besides the shape, every string (sender, message, metadata keys and values) must be text the bot can store:
    valid Unicode without unpaired surrogates (such as a JSON `\\udfff` escape, which SQLite and PostgreSQL cannot
    encode) and without U+0000. Objects and arrays may nest at most `max_depth` levels (the body is level 1); the
    metadata takes at most `max_metadata_bytes` as UTF-8 JSON. The JSON must be strict (RFC 8259): no key twice in
    one object (readers disagree on which one wins), no NaN or Infinity, no number too large for a double, no
    integer longer than MAX_INTEGER_DIGITS digits."""
    try:
        body = json.loads(raw or b"", object_pairs_hook=_unique_keys, parse_constant=_not_a_number,
                          parse_float=_finite_float, parse_int=_bounded_int)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"body is nested deeper than {max_depth} levels of objects and arrays") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON ({exc}); send {{\"sender\": ..., \"message\": ...}}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with keys sender and message")
    unknown = sorted(set(body) - {"sender", "message", "metadata"})
    if unknown:
        raise BadRequest(f"unknown key(s) {', '.join(map(_shown, unknown))}; allowed: sender, message, metadata")
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata", {})
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest("sender: required, a non-empty string identifying the conversation")
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"sender: at most {MAX_SENDER_CHARS} characters")
    if not isinstance(message, str) or not message.strip():
        raise BadRequest("message: required, a non-empty string with the customer's text")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"message: at most {MAX_MESSAGE_CHARS} characters, got {len(message)}")
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: must be a JSON object when given")
    _check_text("sender", sender)
    _check_text("message", message)
    _check_tree("metadata", metadata, 2, max_depth)
    size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    if size > max_metadata_bytes:
        raise BadRequest(f"metadata: {size} bytes as JSON, at most {max_metadata_bytes}: it is stored with every "
                         "message of the conversation; send identifiers, not documents")
    return sender, message, metadata


MAX_INTEGER_DIGITS = 30


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise BadRequest(f"key {_shown(key)} appears twice in one object; send each key once")
        seen.add(key)
    return dict(pairs)


def _not_a_number(name: str) -> float:
    raise BadRequest(f"{name} is not a JSON number (RFC 8259); send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large for a double")
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise BadRequest(f"an integer of {digits} digits; at most {MAX_INTEGER_DIGITS}")
    return int(text)


def _check_text(where: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(
            f"{where}: contains an unpaired surrogate (U+{ord(text[exc.start]):04X} at character {exc.start}), "
            "which cannot be stored; send valid Unicode text (UTF-8, surrogate pairs only in pairs)"
        ) from None
    if "\x00" in text:
        raise BadRequest(f"{where}: contains U+0000 (NUL) at character {text.index(chr(0))}, which cannot be stored")


def _check_tree(where: str, value: Any, depth: int, max_depth: int) -> None:
    """Raise BadRequest when `value` (at nesting level `depth`) holds unstorable text or nests too deep."""
    if isinstance(value, str):
        _check_text(where, value)
        return
    if not isinstance(value, dict | list):
        return
    if depth > max_depth:
        raise BadRequest(f"{where}: nested deeper than {max_depth} levels of objects and arrays (the body is level 1)")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_tree(f"{where}[{i}]", item, depth + 1, max_depth)
        return
    for key, item in value.items():
        _check_text(f"{where} (key {_shown(key)})", key)
        _check_tree(f"{where}.{key}" if key.isidentifier() else f"{where}[{ascii(key)}]", item, depth + 1, max_depth)


def _shown(name: str) -> str:
    """A name as it can be put in an error message: itself when printable ASCII, else its escaped repr."""
    return name if name.isascii() and name.isprintable() else ascii(name)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body of a streaming route, read chunk by chunk and never more than `limit` bytes.

    Raises PayloadTooLarge when Content-Length says more than `limit` (before reading anything) or the body turns
    out longer; BadRequest when the framing is broken (for example a bad chunk header)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest(f"Content-Length must be a whole number of bytes, got {ascii(declared)}")
        if int(declared) > limit:
            raise PayloadTooLarge(f"Content-Length {int(declared)}")
    chunks: list[bytes] = []
    size = 0
    try:
        while (chunk := await request.stream.read()) is not None:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"more than {limit} bytes")
            chunks.append(chunk)
    except SanicException as exc:  # Sanic's own framing errors (bad chunked encoding)
        raise BadRequest(f"the request body is malformed ({exc})") from None
    return b"".join(chunks)


class Admission:
    """At most `max_in_flight` turns at once, at most `max_queue` waiting (first come, first served), each for at
    most `max_wait_s` seconds; refuses with Overloaded otherwise (see the module docstring)."""

    RECENT_TURNS = 20
    """How many of the latest turn times the wait estimate is the median of (robust to a slow first turn)."""
    MIN_TURNS = 3
    """Turns needed before waits are estimated; until then only the queue length and max_wait_s bound them."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._recent: deque[float] = deque(maxlen=self.RECENT_TURNS)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def turn_s(self) -> float | None:
        """The median time a recent turn held its slot, in seconds; None before MIN_TURNS turns."""
        return statistics.median(self._recent) if len(self._recent) >= self.MIN_TURNS else None

    def retry_after_s(self) -> int:
        """Seconds until the turns now running and waiting are likely done: at least 1, at most 60."""
        per_turn = self.turn_s or 1.0
        return min(60, max(1, math.ceil((self.in_flight + self.queued) * per_turn / self.limits.max_in_flight)))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the turn slots for the body of the `async with`; raises Overloaded when none can be had."""
        await self._enter()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(time.perf_counter() - started)
            self._leave()

    def record(self, turn_s: float) -> None:
        """Count one turn that held a slot for `turn_s` seconds into the recent turn times."""
        self._recent.append(turn_s)

    async def _enter(self) -> None:
        limits = self.limits
        if self.in_flight < limits.max_in_flight and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= limits.max_queue:
            raise Overloaded(f"{self.in_flight} turns running and {len(self._waiters)} waiting", self.retry_after_s())
        turn_s = self.turn_s
        if turn_s is not None:
            estimate = (len(self._waiters) + 1) * turn_s / limits.max_in_flight
            if estimate > limits.max_wait_s:
                reason = f"the estimated wait ({estimate:.1f} s) is longer than {limits.max_wait_s:g} s"
                raise Overloaded(reason, self.retry_after_s())
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), limits.max_wait_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # the slot was handed over just as the wait ended: pass it on
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise Overloaded(f"no turn slot within {limits.max_wait_s:g} s", self.retry_after_s()) from None

    def _leave(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next waiter; in_flight is unchanged
                return
        self.in_flight -= 1


class ConversationLocks:
    """One asyncio lock per conversation, existing only while a turn of it runs or waits."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, sender: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(sender) or (asyncio.Lock(), 0)
        self._locks[sender] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[sender]
            if users == 1:
                del self._locks[sender]
            else:
                self._locks[sender] = (lock, users - 1)


def turn_trace(events: list[dict[str, Any]], message_id: str, slots: dict[str, Any]) -> dict[str, Any]:
    """The bot's decision for one turn, from the tracker's events (as dicts) and its current slots."""
    start = next(
        (i for i in range(len(events) - 1, -1, -1)
         if events[i].get("event") == "user" and events[i].get("message_id") == message_id),
        None,
    )
    if start is None:
        raise RuntimeError(f"the tracker has no user event for message {message_id}")
    parse = events[start].get("parse_data") or {}
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    top = (parse.get("intent") or {}).get("name")
    turn_events = events[start + 1:]
    slots_set: dict[str, Any] = {}
    slots_cleared: list[str] = []
    for e in turn_events:
        if e.get("event") != "slot" or e.get("name") == "requested_slot":
            continue
        if e.get("value") is not None:
            slots_set[e["name"]] = e["value"]
        elif e["name"] not in slots_set and e["name"] not in slots_cleared:
            slots_cleared.append(e["name"])
    handoff = None
    if "handoff_ticket" in slots_set and slots_set["handoff_ticket"]:
        handoff = {"queue": slots.get("handoff_queue"), "rule": slots.get("handoff_rule"),
                   "ticket_id": slots_set["handoff_ticket"]}
    best = ranking[0] if ranking else None
    return {
        "intent": {"name": best["name"], "confidence": round(float(best["confidence"]), 4)} if best else None,
        "ranking": [{"name": r["name"], "confidence": round(float(r["confidence"]), 4)} for r in ranking[:3]],
        "fallback": top == FALLBACK_INTENT,
        "entities": [{"entity": e.get("entity"), "value": e.get("value")} for e in parse.get("entities") or []],
        "actions": [e["name"] for e in turn_events
                    if e.get("event") == "action" and e.get("name") not in _PLUMBING_ACTIONS],
        "slots_set": slots_set,
        "slots_cleared": slots_cleared,
        "active_form": slots.get("requested_slot") and _active_loop(events),
        "topic": slots.get("topic"),
        "handoff": handoff,
    }


def _active_loop(events: list[dict[str, Any]]) -> str | None:
    for e in reversed(events):
        if e.get("event") == "active_loop":
            return e.get("name")
    return None


def model_name(agent: Any) -> str | None:
    """The loaded model's file name without extension (bankbot-<fingerprint of training inputs>)."""
    filename = getattr(getattr(agent, "processor", None), "model_filename", None)
    return Path(filename).name.removesuffix(".tar.gz") if filename else None


def conversation_state(slots: dict[str, Any]) -> str:
    state = slots.get("conversation_state") or "active"
    return "handed_off" if slots.get("handoff_ticket") else state


class ReferenceChannel(InputChannel):
    """The project's reference channel. Configure in credentials.yml under `bankbot.channel.ReferenceChannel`:
    `token` (required) and the optional `Limits` keys."""

    @classmethod
    def name(cls) -> str:
        return "reference"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> ReferenceChannel:
        credentials = credentials or {}
        token = credentials.get("token")
        if not token or not str(token).strip():
            raise ValueError(
                "bankbot.channel.ReferenceChannel needs a bearer token: set `token:` in credentials.yml "
                "(the shipped file reads it from $REFERENCE_CHANNEL_TOKEN)"
            )
        unknown = sorted(set(credentials) - {"token"} - {f.name for f in fields(Limits)})
        if unknown:
            allowed = ", ".join(["token"] + [f.name for f in fields(Limits)])
            raise ValueError(f"bankbot.channel.ReferenceChannel: unknown key(s) {', '.join(unknown)}; "
                             f"allowed: {allowed}")
        return cls(str(token), Limits.from_credentials(credentials))

    def __init__(self, token: str, limits: Limits | None = None) -> None:
        self.token = token
        self.limits = limits or Limits()
        self.admission = Admission(self.limits)
        self.conversations = ConversationLocks()

    def _authorised(self, request: Request) -> bool:
        # Sanic decodes header bytes that are not UTF-8 as surrogate escapes; encode them back, never raise.
        header = request.headers.get("authorization", "")
        scheme, _, supplied = header.partition(" ")
        given = supplied.strip().encode("utf-8", "surrogateescape")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("reference_channel", __name__)
        prefix = f"/webhooks/{self.url_prefix()}/"

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            ready = bool(agent and agent.is_ready())
            return response.json({"status": "ok" if ready else "loading", "protocol_version": PROTOCOL_VERSION,
                                  "model": model_name(agent) if ready else None}, status=200 if ready else 503)

        @hook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            started = time.perf_counter()
            if not self._authorised(request):
                return error(401, "unauthorized", "missing or wrong bearer token: send 'Authorization: Bearer "
                             "<token>' with the token configured for the reference channel",
                             **{"WWW-Authenticate": 'Bearer realm="reference"'})
            try:
                sender, text, metadata = parse_body(await read_body(request, self.limits.max_body_bytes),
                                                    self.limits.max_depth, self.limits.max_metadata_bytes)
            except PayloadTooLarge as exc:
                return error(413, "payload_too_large", f"the request body is too large ({exc}); at most "
                             f"{self.limits.max_body_bytes} bytes")
            except BadRequest as exc:
                return error(400, "bad_request", str(exc))
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return error(503, "not_ready", "the bot's model is not loaded yet; retry shortly",
                             **{"Retry-After": "5"})
            try:
                async with self.admission.slot(), self.conversations.hold(sender):
                    body = await asyncio.wait_for(self._handle(agent, on_new_message, sender, text, metadata),
                                                  self.limits.max_turn_s)
            except Overloaded as exc:
                return error(503, "overloaded", f"the bot is serving as many conversations as it can ({exc}); "
                             f"retry after {exc.retry_after_s} s", **{"Retry-After": str(exc.retry_after_s)})
            except TimeoutError:
                logger.error("turn of %s cancelled after %g s", ascii(sender), self.limits.max_turn_s)
                return error(504, "turn_timeout", f"the bot did not finish this turn within "
                             f"{self.limits.max_turn_s:g} s (the action server or a store is not answering); the "
                             "turn was cancelled, but the message may have been recorded: check before resending")
            except Exception as exc:  # noqa: BLE001 - any failure must become a 500 with a body, never a 200
                logger.exception("reference channel failed on a message from %s", ascii(sender))
                return error(500, "internal_error", f"the bot failed while handling this message: "
                             f"{type(exc).__name__}: {exc}")
            if body is None:
                return error(500, "empty_reply", "the bot produced no reply to this message (an action failed or "
                             "the action server is unreachable; see the Rasa server log)")
            body["trace"]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            return response.json(body)

        @hook.listener("before_server_start")
        async def protocol_errors(app: Any, loop: Any) -> None:
            _answer_framing_errors_with_the_protocol_body(app, prefix)

        @hook.signal("http.lifecycle.request")
        async def refuse_a_broken_length(request: Request) -> None:
            # Sanic 21.12 takes a negative Content-Length at its word and then spins forever reading the body,
            # freezing the event loop for every conversation; refuse it (for every route) before the body is read.
            declared = request.headers.get("content-length")
            if declared is not None and not declared.strip().isdigit():
                raise InvalidUsage(f"Content-Length must be a whole number of bytes, got {ascii(declared)}")
            # Two framings for one body are how requests are smuggled past a proxy (RFC 9112, section 6.1): refuse
            # them; an error raised here, before the body, also closes the connection (Sanic's error_response), so
            # the bytes after this request are never read as another one.
            lengths = {v.strip() for v in request.headers.getall("content-length", [])}
            if len(lengths) > 1 or (lengths and "transfer-encoding" in request.headers):
                raise InvalidUsage("the request declares its body length twice (several Content-Length values, or "
                                   "Content-Length with Transfer-Encoding); send exactly one")

        return hook

    async def _handle(self, agent: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]], sender: str,
                      text: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """One turn; the caller holds the conversation's lock (see the module docstring)."""
        # Read through Rasa's FailSafeTrackerStore to the real store: the fail-safe answers a database error with
        # "no such conversation", which would make a handed-off conversation look new and the bot answer again.
        # Here the error becomes a 500 and the message is not processed.
        store = getattr(agent.tracker_store, "_tracker_store", agent.tracker_store)
        tracker = await store.retrieve(sender)
        if tracker is not None and tracker.get_slot("handoff_ticket"):
            # A human owns the conversation now: the bot stays silent and passes the message to the ticket.
            ticket = tracker.get_slot("handoff_ticket")
            HandoffStore().append_message(ticket, "customer", text)
            return {"conversation_id": sender, "messages": [], "state": "handed_off",
                    "trace": {"intent": None, "ranking": [], "fallback": False, "entities": [], "actions": [],
                              "slots_set": {}, "slots_cleared": [], "active_form": None,
                              "topic": tracker.get_slot("topic"), "handoff": None, "silenced": True,
                              "model": model_name(agent)}}
        collector = CollectingOutputChannel()
        message = UserMessage(customer_text(text), collector, sender, input_channel=self.name(), metadata=metadata)
        await on_new_message(message)
        tracker = await agent.tracker_store.retrieve(sender)
        slots = tracker.current_slot_values()
        trace = turn_trace([e.as_dict() for e in tracker.events], message.message_id, slots)
        trace.update({"silenced": False, "model": model_name(agent)})
        messages = [_client_message(m) for m in collector.messages]
        if not messages:
            return None
        return {"conversation_id": sender, "messages": messages, "state": conversation_state(slots), "trace": trace}


def customer_text(text: str) -> str:
    """The text the dialogue engine gets for a customer's message: without leading slashes.

    Rasa reads a message starting with `/` as an intent command, not as text: `/restart` resets the conversation,
    `/report_fraud` hands off with confidence 1.0. That shortcut is for buttons and developers; the reference bot
    offers no buttons, so a customer's text is always read as text. A message of slashes alone is kept as it is
    (it names no intent)."""
    return text.lstrip().lstrip("/").lstrip() or text


def _answer_framing_errors_with_the_protocol_body(app: Any, prefix: str) -> None:
    """Requests under the channel's path that Sanic rejects before they reach a route (a Content-Length that is
    not a number, a broken request line) get the protocol's error body with 400 (413 for size), never a 500.

    Registered as the app's handler of last resort for any exception (through `error_handler.add`, which also
    reaches the handler that sanic-cors wraps around Sanic's); everything else falls back to Sanic's answer."""

    def answer(request: Request | None, exception: BaseException) -> HTTPResponse | None:
        path = getattr(request, "path", "") or ""
        if request is None or getattr(request, "route", None) is not None or not path.startswith(prefix):
            return None  # Sanic's default answer
        status = exception.status_code if isinstance(exception, SanicException) else 400
        if status not in _FRAMING_ERROR_CODES:  # 404, 405 and the like keep Sanic's answer
            return None
        said = str(exception)[:200].encode("utf-8", "backslashreplace").decode("utf-8")
        return error(status, _FRAMING_ERROR_CODES[status], f"malformed HTTP request ({type(exception).__name__}: "
                     f"{said})")

    app.error_handler.add(Exception, answer)


def _client_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": m.get("text") or ""}
    if m.get("buttons"):
        out["buttons"] = [{"title": b.get("title"), "payload": b.get("payload")} for b in m["buttons"]]
    return out
