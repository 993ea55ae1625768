"""Bot kind `scripted`: a deterministic in-process bot for tests, building `BotTurn`s directly (as httpx's
`MockTransport` builds a `Response`, not bytes), and `CutOff`, a bot that dies at a chosen message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.bots.base import Bot, BotTurn, Handoff, RankedIntent
from harness.errors import BotUnreachable
from harness.records import ALL_OBSERVATIONS, Observation, TurnStatus

Script = Callable[[str, str, int], BotTurn]
"""(conversation id, text, turn number within that conversation, from 0) -> the bot's turn."""


@dataclass
class ScriptedBot:
    """Replies come from a script function; `sent` records every (conversation id, text) in order."""

    script: Script
    observes: frozenset[Observation] = ALL_OBSERVATIONS
    kind: str = "scripted.v1"
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        turn = sum(1 for sender, _ in self.sent if sender == conversation_id)
        self.sent.append((conversation_id, text))
        return self.script(conversation_id, text, turn)

    async def aclose(self) -> None:
        return None


@dataclass
class CutOff:
    """Passes its first `sends` messages to `inner`, then raises BotUnreachable as a bot that died would: for tests
    that interrupt a run at a chosen message (resume, journal)."""

    inner: Bot
    sends: int
    passed: int = 0

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def observes(self) -> frozenset[Observation]:
        return self.inner.observes

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        if self.passed >= self.sends:
            raise BotUnreachable("cannot reach the bot (cut off by the test)")
        self.passed += 1
        return await self.inner.send(conversation_id, text)

    async def aclose(self) -> None:
        await self.inner.aclose()


def bot_turn(
    intent: str | None,
    *,
    confidence: float = 0.9,
    messages: tuple[str, ...] | list[str] = ("ok",),
    fallback: bool = False,
    actions: tuple[str, ...] | list[str] = (),
    slots: Mapping[str, Any] | None = None,
    handoff: tuple[str, str] | None = None,
    state: str | None = None,
    active_form: str | None = None,
    latency_ms: float = 10.0,
    model: str | None = "fake-model",
) -> BotTurn:
    """An answered turn, for scripts and tests (`handoff` is (queue, rule)); no messages means `empty_reply`."""
    return BotTurn(
        TurnStatus.ok if messages else TurnStatus.empty_reply,
        latency_ms,
        messages=tuple(messages),
        intent=intent,
        confidence=confidence if intent else None,
        ranking=(RankedIntent(intent, confidence),) if intent else (),
        fallback=fallback,
        actions=tuple(actions),
        slots_set=dict(slots or {}),
        handoff=Handoff(handoff[0], handoff[1], "T-FAKE") if handoff else None,
        state=state or ("handed_off" if handoff else "active"),
        active_form=active_form,
        model=model,
        http_status=200,
        error=None if messages else "HTTP 200 with no bot message",
    )
