"""Clients of the reference chat channel: the real HTTP one, and a deterministic in-process fake for tests.

`send` never raises for a failing bot: an empty reply, an error status and a timeout come back as distinct
statuses, because a failing bot is data. It raises only when the run cannot go on at all: the bot is
unreachable after the retries (BotUnreachable) or rejects the token (ChannelConfigError).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from harness.errors import HarnessError
from harness.records import TurnStatus


class BotUnreachable(HarnessError):
    """The bot did not accept connections, even after retries."""


class ChannelConfigError(HarnessError):
    """The channel refused the harness itself (wrong token, wrong URL): no point sending more."""


@dataclass(frozen=True)
class ChannelReply:
    status: TurnStatus
    latency_ms: float
    """Client-side time from the first attempt's request to the reply (or the failure)."""
    attempts: int = 1
    http_status: int | None = None
    body: dict[str, Any] | None = None
    """The parsed 200 body (messages, state, trace)."""
    error: str | None = None


class Channel(Protocol):
    async def send(self, sender: str, text: str) -> ChannelReply: ...

    async def aclose(self) -> None: ...


@dataclass
class HttpChannel:
    """The reference channel over HTTP, with a per-turn timeout and retries with backoff on transient errors.

    Transient means the message certainly did not reach the bot (connection refused or not established) or the
    bot said it is not ready (503); those are retried. A read timeout is not retried: the bot may have
    processed the message, and sending it twice would change the conversation.
    """

    url: str
    token: str
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    max_connections: int = 16
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0)),
                limits=httpx.Limits(max_connections=self.max_connections),
                headers={"Authorization": f"Bearer {self.token}"},
            )
        return self._client

    async def send(self, sender: str, text: str) -> ChannelReply:
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http().post(self.url, json={"sender": sender, "message": text})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt > self.retries:
                    raise BotUnreachable(
                        f"cannot reach the bot at {self.url} ({type(exc).__name__}: {exc}) after {attempt} "
                        "attempts; is it running? (`make bot` starts the reference bot)"
                    ) from None
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            except httpx.TimeoutException:
                return ChannelReply(
                    TurnStatus.timeout, _ms(started), attempt, error=f"no reply within {self.timeout_s:g} s"
                )
            except httpx.HTTPError as exc:
                return ChannelReply(
                    TurnStatus.channel_error, _ms(started), attempt, error=f"{type(exc).__name__}: {exc}"
                )
            if response.status_code == 503 and attempt <= self.retries:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            return interpret(response.status_code, response.content, _ms(started), attempt, self.url)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def interpret(http_status: int, content: bytes, latency_ms: float, attempts: int, url: str) -> ChannelReply:
    """Classify one HTTP answer of the channel into a reply status."""
    import json

    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if http_status == 401:
        raise ChannelConfigError(
            f"the bot at {url} rejected the bearer token (401); set the token the bot was "
            "started with (--token or the variable named by bot.token_env in the config)"
        )
    if http_status == 404:
        raise ChannelConfigError(f"{url} answered 404: is this the reference channel's webhook URL?")
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    if http_status != 200:
        status = TurnStatus.empty_reply if error and error.get("code") == "empty_reply" else TurnStatus.channel_error
        message = f"{error.get('code')}: {error.get('message')}" if error else content[:200].decode(errors="replace")
        return ChannelReply(status, latency_ms, attempts, http_status, error=f"HTTP {http_status}: {message}")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or "trace" not in body:
        return ChannelReply(
            TurnStatus.channel_error,
            latency_ms,
            attempts,
            http_status,
            error="HTTP 200 with a body that is not a channel reply",
        )
    if body.get("state") == "handed_off" and body["trace"].get("silenced"):
        return ChannelReply(TurnStatus.silenced, latency_ms, attempts, http_status, body)
    if not body["messages"]:
        return ChannelReply(
            TurnStatus.empty_reply, latency_ms, attempts, http_status, body, error="HTTP 200 with no bot message"
        )
    return ChannelReply(TurnStatus.ok, latency_ms, attempts, http_status, body)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


Script = Callable[[str, str, int], ChannelReply]
"""(sender, text, turn number within the sender's conversation) -> the reply."""


@dataclass
class FakeChannel:
    """A deterministic in-process channel for tests: replies come from a script function."""

    script: Script
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, sender: str, text: str) -> ChannelReply:
        turn = sum(1 for s, _ in self.sent if s == sender)
        self.sent.append((sender, text))
        return self.script(sender, text, turn)

    async def aclose(self) -> None:
        return None


@dataclass
class CutOffChannel:
    """A channel that passes its first `sends` messages to `inner`, then raises BotUnreachable as a bot that died
    would: for tests that interrupt a run at a chosen message (resume, journal)."""

    inner: Channel
    sends: int
    passed: int = 0

    async def send(self, sender: str, text: str) -> ChannelReply:
        if self.passed >= self.sends:
            raise BotUnreachable("cannot reach the bot (cut off by the test)")
        self.passed += 1
        return await self.inner.send(sender, text)

    async def aclose(self) -> None:
        await self.inner.aclose()


def bot_reply(
    intent: str | None,
    *,
    confidence: float = 0.9,
    messages: list[str] = ("ok",),  # type: ignore[assignment]
    fallback: bool = False,
    actions: list[str] = (),  # type: ignore[assignment]
    slots: dict[str, Any] | None = None,
    handoff: tuple[str, str] | None = None,
    state: str | None = None,
    active_form: str | None = None,
    latency_ms: float = 10.0,
) -> ChannelReply:
    """A successful channel reply, for fakes and tests (handoff is (queue, rule))."""
    trace = {
        "intent": {"name": intent, "confidence": confidence} if intent else None,
        "ranking": [{"name": intent, "confidence": confidence}] if intent else [],
        "fallback": fallback,
        "entities": [],
        "actions": list(actions),
        "slots_set": dict(slots or {}),
        "slots_cleared": [],
        "active_form": active_form,
        "topic": None,
        "handoff": {"queue": handoff[0], "rule": handoff[1], "ticket_id": "T-FAKE"} if handoff else None,
        "silenced": False,
        "model": "fake-model",
        "latency_ms": latency_ms,
    }
    body = {
        "conversation_id": "fake",
        "messages": [{"text": m} for m in messages],
        "state": state or ("handed_off" if handoff else "active"),
        "trace": trace,
    }
    return ChannelReply(TurnStatus.ok if messages else TurnStatus.empty_reply, latency_ms, 1, 200, body)
