"""The HTTP exchange every HTTP bot kind shares: a per-turn timeout, retries with backoff on transient failures,
and the failed statuses a failing bot is recorded with.

Transient means the message certainly did not reach the bot (connection refused or not established) or the bot
said it is not ready (503); those are retried. A read timeout is not retried: the bot may have processed the
message, and sending it twice would change the conversation.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.bots.base import BotTurn, HttpOptions
from harness.errors import BotUnreachable
from harness.records import TurnStatus


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
                await asyncio.sleep(self.options.backoff_s * 2 ** (attempt - 1))
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
            if response.status_code == 503 and attempt <= self.options.retries:
                await asyncio.sleep(self.options.backoff_s * 2 ** (attempt - 1))
                continue
            return Exchange(response, None, ms(started), attempt)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return (time.perf_counter() - started) * 1000
