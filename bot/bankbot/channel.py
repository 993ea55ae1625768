"""The reference chat channel: the one contract between the bot and any client (the harness, a web chat).

POST /webhooks/reference/webhook, one request per customer message, `Authorization: Bearer <token>`:
    {"sender": "<conversation id>", "message": "<text>", "metadata": {...optional}}
answers 200 with the bot's messages and a structured trace of the bot's decision for that turn
(docs/channel-protocol.md, docs/channel.schema.json). Errors never look like an empty success:
400 malformed body, 401 missing or wrong token, 503 model not loaded, 500 internal failure or no reply.
GET /webhooks/reference/ is an unauthenticated health check.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
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


class BadRequest(ValueError):
    """The request body is malformed; the message names the problem."""


def error(status: int, code: str, message: str, **headers: str) -> HTTPResponse:
    return response.json({"error": {"code": code, "message": message}}, status=status, headers=headers or None)


def parse_body(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """(sender, message, metadata) from a request body; raises BadRequest naming the problem."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON ({exc}); send {{\"sender\": ..., \"message\": ...}}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with keys sender and message")
    unknown = sorted(set(body) - {"sender", "message", "metadata"})
    if unknown:
        raise BadRequest(f"unknown key(s) {', '.join(unknown)}; allowed: sender, message, metadata")
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
    return sender, message, metadata


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
    """The project's reference channel. Configure in credentials.yml under `bankbot.channel.ReferenceChannel`."""

    @classmethod
    def name(cls) -> str:
        return "reference"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> ReferenceChannel:
        token = (credentials or {}).get("token")
        if not token or not str(token).strip():
            raise ValueError(
                "bankbot.channel.ReferenceChannel needs a bearer token: set `token:` in credentials.yml "
                "(the shipped file reads it from $REFERENCE_CHANNEL_TOKEN)"
            )
        return cls(str(token))

    def __init__(self, token: str) -> None:
        self.token = token

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, supplied = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), self.token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("reference_channel", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            ready = bool(agent and agent.is_ready())
            return response.json({"status": "ok" if ready else "loading", "protocol_version": PROTOCOL_VERSION,
                                  "model": model_name(agent) if ready else None}, status=200 if ready else 503)

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            started = time.perf_counter()
            if not self._authorised(request):
                return error(401, "unauthorized", "missing or wrong bearer token: send 'Authorization: Bearer "
                             "<token>' with the token configured for the reference channel",
                             **{"WWW-Authenticate": 'Bearer realm="reference"'})
            try:
                sender, text, metadata = parse_body(request.body)
            except BadRequest as exc:
                return error(400, "bad_request", str(exc))
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return error(503, "not_ready", "the bot's model is not loaded yet; retry shortly")
            try:
                body = await self._handle(agent, on_new_message, sender, text, metadata)
            except Exception as exc:  # noqa: BLE001 - any failure must become a 500 with a body, never a 200
                logger.exception("reference channel failed on a message from %s", sender)
                return error(500, "internal_error", f"the bot failed while handling this message: "
                             f"{type(exc).__name__}: {exc}")
            if body is None:
                return error(500, "empty_reply", "the bot produced no reply to this message (an action failed or "
                             "the action server is unreachable; see the Rasa server log)")
            body["trace"]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            return response.json(body)

        return hook

    async def _handle(self, agent: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]], sender: str,
                      text: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
        tracker = await agent.tracker_store.retrieve(sender)
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
        message = UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata)
        await on_new_message(message)
        tracker = await agent.tracker_store.retrieve(sender)
        slots = tracker.current_slot_values()
        trace = turn_trace([e.as_dict() for e in tracker.events], message.message_id, slots)
        trace.update({"silenced": False, "model": model_name(agent)})
        messages = [_client_message(m) for m in collector.messages]
        if not messages:
            return None
        return {"conversation_id": sender, "messages": messages, "state": conversation_state(slots), "trace": trace}


def _client_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": m.get("text") or ""}
    if m.get("buttons"):
        out["buttons"] = [{"title": b.get("title"), "payload": b.get("payload")} for b in m["buttons"]]
    return out
