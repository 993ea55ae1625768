"""The HTTP exchange every HTTP bot kind shares: a per-turn timeout, retries with backoff on transient failures,
and the failed statuses a failing bot is recorded with.

Transient means the message certainly did not reach the bot (connection refused or not established) or the bot
refused it before processing (503: not ready, overloaded; a bot kind can narrow which 503s count, as the reference
kind does with its error codes). Those are retried up to `HttpOptions.retries` times. The wait is `backoff_s`,
doubled each retry, or the bot's `Retry-After` when that is longer, stretched by up to 25% random jitter (so that
conversations refused together do not all come back together), and never more than RETRY_AFTER_CAP_S. Every
request counts in `attempts`. When the retries run out the last answer is recorded like any other (a 503 becomes
a `channel_error` turn with the bot's message): a failing bot is data. A read timeout is not retried: the bot may
have processed the message, and sending it twice would change the conversation.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from harness.bots.base import BotTurn, HttpOptions
from harness.errors import BotUnreachable
from harness.records import TurnStatus

RETRY_AFTER_CAP_S = 30.0
"""The longest wait before a retry, whatever the backoff or the bot's Retry-After says (seconds)."""
JITTER = 0.25
"""Retry waits are stretched by a random factor in [1, 1 + JITTER]."""


def is_503(response: httpx.Response) -> bool:
    """The default transient answer: 503 Service Unavailable."""
    return response.status_code == 503


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The response's Retry-After in seconds (delay-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Exchange:
    """One request's outcome: the response, or the failed turn to record instead."""

    response: httpx.Response | None
    failed: BotTurn | None
    latency_ms: float
    attempts: int


@dataclass
class HttpClient:
    """An async HTTP client with the harness's retry policy (see the module docstring)."""

    options: HttpOptions
    headers: dict[str, str] = field(default_factory=dict)
    hint: str = "is it running?"
    """Said after 'cannot reach the bot at <url>', for example how to start it."""
    transient: Callable[[httpx.Response], bool] = is_503
    """Whether an answer means the bot refused the message before processing it, so that sending it again is safe."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How to wait between attempts (tests pass a recorder)."""
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            o = self.options
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(o.timeout_s, connect=min(o.timeout_s, 5.0)),
                limits=httpx.Limits(max_connections=o.max_connections),
                headers=self.headers,
                transport=o.transport,
            )
        return self._client

    async def request(self, method: str, url: str, **kwargs: Any) -> Exchange:
        """Send with retries. Raises BotUnreachable when the bot cannot be reached after the retries."""
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client().request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt > self.options.retries:
                    raise BotUnreachable(
                        f"cannot reach the bot at {url} ({type(exc).__name__}: {exc}) after {attempt} attempts; "
                        + self.hint
                    ) from None
                await self.sleep(self.delay_s(attempt))
                continue
            except httpx.TimeoutException:
                error = f"no reply within {self.options.timeout_s:g} s"
                return Exchange(
                    None, BotTurn(TurnStatus.timeout, ms(started), attempt, error=error), ms(started), attempt
                )
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                turn = BotTurn(TurnStatus.channel_error, ms(started), attempt, error=error)
                return Exchange(None, turn, ms(started), attempt)
            if attempt <= self.options.retries and self.transient(response):
                await self.sleep(self.delay_s(attempt, retry_after_s(response)))
                continue
            return Exchange(response, None, ms(started), attempt)

    def delay_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): the doubling backoff or the bot's
        Retry-After, whichever is longer, stretched by the jitter, and never more than RETRY_AFTER_CAP_S."""
        delay = self.options.backoff_s * 2 ** (attempt - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay * random.uniform(1.0, 1.0 + JITTER), RETRY_AFTER_CAP_S)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return (time.perf_counter() - started) * 1000
