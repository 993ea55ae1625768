"""Bot kind `reference`: the reference bot's chat channel (`docs/channel.schema.json`), bearer-token HTTP.

The channel answers every message with the bot's messages, the conversation state and the decision trace
(intent, ranking, fallback, actions, slots, handoff with queue, rule and ticket, model), so this kind observes
everything. It reports an empty reply as HTTP 500 `empty_reply` and a message sent after a handoff as `silenced`.
It refuses a message it has not processed with 503 `not_ready` or `overloaded` (with Retry-After): those are
retried (harness.bots.http); any other 503 (a proxy's, or a server timeout after the bot may have processed the
message) is not, and is recorded as a `channel_error` turn, as is a refusal still standing when the retries run out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from harness.bots.base import BotTurn, Handoff, HttpOptions, RankedIntent
from harness.bots.http import HttpClient
from harness.errors import BotRefused
from harness.records import ALL_OBSERVATIONS, Observation, TurnStatus

OBSERVES = ALL_OBSERVATIONS
REFUSED_UNPROCESSED = frozenset({"not_ready", "overloaded"})
"""The channel's 503 error codes for a message it did not process: safe to send again."""


def refused_unprocessed(response: httpx.Response) -> bool:
    """True for the channel's 503 `not_ready` / `overloaded` answers (the retry rule of this kind)."""
    if response.status_code != 503:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") in REFUSED_UNPROCESSED


class ReferenceSettings(BaseModel):
    """The `bot:` section of a run configuration for `kind: reference`."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "reference"
    url: str
    """The channel's webhook, `http://HOST:PORT/webhooks/reference/webhook`."""
    token_env: str = "REFERENCE_CHANNEL_TOKEN"
    """The environment variable holding the channel's bearer token."""


@dataclass
class ReferenceBot:
    """The reference channel over HTTP (see the module docstring)."""

    url: str
    token: str
    options: HttpOptions = field(default_factory=HttpOptions)
    kind: str = "reference.v1"
    observes: frozenset[Observation] = OBSERVES

    def __post_init__(self) -> None:
        self._http = HttpClient(
            self.options,
            {"Authorization": f"Bearer {self.token}"},
            "is it running? (`make bot` starts the reference bot)",
            transient=refused_unprocessed,
        )

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        exchange = await self._http.request("POST", self.url, json={"sender": conversation_id, "message": text})
        if exchange.response is None:
            assert exchange.failed is not None
            return exchange.failed
        response = exchange.response
        return parse_reply(response.status_code, response.content, exchange.latency_ms, exchange.attempts, self.url)

    async def aclose(self) -> None:
        await self._http.aclose()


def parse_reply(http_status: int, content: bytes, latency_ms: float, attempts: int, url: str) -> BotTurn:
    """One HTTP answer of the reference channel as a BotTurn.

    Raises BotRefused on 401 (wrong token) and 404 (not the channel's URL): no later message would fare better.
    """
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if http_status == 401:
        raise BotRefused(
            f"the bot at {url} rejected the bearer token (401); set the token the bot was "
            "started with (--token or the variable named by bot.token_env in the config)"
        )
    if http_status == 404:
        raise BotRefused(f"{url} answered 404: is this the reference channel's webhook URL?")
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    if http_status != 200:
        status = TurnStatus.empty_reply if error and error.get("code") == "empty_reply" else TurnStatus.channel_error
        message = f"{error.get('code')}: {error.get('message')}" if error else content[:200].decode(errors="replace")
        return BotTurn(status, latency_ms, attempts, http_status=http_status, error=f"HTTP {http_status}: {message}")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or "trace" not in body:
        error_text = "HTTP 200 with a body that is not a channel reply"
        return BotTurn(TurnStatus.channel_error, latency_ms, attempts, http_status=http_status, error=error_text)
    turn = observe(body, latency_ms, attempts, http_status)
    if body.get("state") == "handed_off" and (body.get("trace") or {}).get("silenced"):
        return _with(turn, status=TurnStatus.silenced)
    if not turn.messages:
        return _with(turn, status=TurnStatus.empty_reply, error="HTTP 200 with no bot message")
    return turn


def observe(body: dict[str, Any], latency_ms: float, attempts: int = 1, http_status: int | None = 200) -> BotTurn:
    """The observation in a channel reply body (`messages`, `state`, `trace`), status ok."""
    trace = body.get("trace") or {}
    intent = trace.get("intent") or {}
    handoff = trace.get("handoff")
    return BotTurn(
        TurnStatus.ok,
        latency_ms,
        attempts,
        messages=tuple(m.get("text", "") if isinstance(m, dict) else str(m) for m in body.get("messages") or []),
        intent=intent.get("name"),
        confidence=intent.get("confidence"),
        ranking=tuple(RankedIntent(r["name"], r["confidence"]) for r in trace.get("ranking") or []),
        fallback=trace.get("fallback"),
        actions=tuple(trace.get("actions") or ()),
        slots_set=dict(trace.get("slots_set") or {}),
        handoff=Handoff(handoff.get("queue"), handoff.get("rule"), handoff.get("ticket_id")) if handoff else None,
        state=body.get("state"),
        active_form=trace.get("active_form"),
        model=trace.get("model"),
        http_status=http_status,
    )


def _with(turn: BotTurn, **changes: Any) -> BotTurn:
    from dataclasses import replace

    return replace(turn, **changes)
