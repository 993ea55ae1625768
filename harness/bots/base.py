"""Seam 1: the bot as the harness sees it. `Bot.send` returns a `BotTurn`, a normalised, frozen observation of
one customer turn; each bot kind's adapter parses its own wire format into it once, so replay, checks and tests
never see wire JSON.

A failing bot is data: an empty reply, an error status and a timeout come back as `BotTurn`s with their status.
`send` raises only when the run cannot go on (BotUnreachable after the retries, BotRefused on a refused token or
a wrong URL), both from `harness.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from harness.records import Observation, TurnStatus


@dataclass(frozen=True, slots=True)
class Handoff:
    """The bot passed the conversation to a human queue."""

    queue: str | None
    """The queue's name in the eval sets' vocabulary (a bot kind maps its own words to it); None if unknown."""
    rule: str | None = None
    """The escalation rule that fired, when the bot says."""
    ticket: str | None = None
    """The queue's ticket id, when the bot says."""


@dataclass(frozen=True, slots=True)
class RankedIntent:
    name: str
    confidence: float
    """In [0, 1]."""


@dataclass(frozen=True, slots=True)
class BotTurn:
    """What the bot did with one customer turn. None means "not observed" (by this kind, or in this turn)."""

    status: TurnStatus
    """ok, empty_reply, channel_error, timeout or silenced (never not_sent: that turn was not sent)."""
    latency_ms: float
    """Client-side time from the first attempt's request to the reply or the failure, in milliseconds."""
    attempts: int = 1
    """Requests made (more than 1 after retries on connection failures or 503)."""
    messages: tuple[str, ...] | None = None
    """The bot's reply texts in order (non-text replies as their JSON)."""
    intent: str | None = None
    """The recognised intent's name (`nlu_fallback`, `out_of_scope` as the bot names them)."""
    confidence: float | None = None
    """The recognised intent's confidence, in [0, 1]."""
    ranking: tuple[RankedIntent, ...] | None = None
    fallback: bool | None = None
    """True when the bot fell back (did not understand)."""
    actions: tuple[str, ...] | None = None
    """Actions run in this turn, in order (Rasa's `action_listen` left out)."""
    slots_set: Mapping[str, Any] | None = None
    """Slots set in this turn, name -> value (read-only)."""
    handoff: Handoff | None = None
    """Set in the turn the bot handed off; None when it did not (or the kind cannot observe handoffs)."""
    state: str | None = None
    """The conversation's state after the turn: `active` or `handed_off` (a kind's other words kept as they are)."""
    active_form: str | None = None
    """The form waiting for an answer after the turn, if any."""
    model: str | None = None
    """The bot model that answered."""
    http_status: int | None = None
    error: str | None = None
    """Why the turn failed (for failed statuses)."""

    def __post_init__(self) -> None:
        if self.slots_set is not None and not isinstance(self.slots_set, MappingProxyType):
            object.__setattr__(self, "slots_set", MappingProxyType(dict(self.slots_set)))

    @property
    def handed_off(self) -> bool:
        return self.handoff is not None or self.state == "handed_off"

    @property
    def reply(self) -> str:
        """The reply texts joined by newlines ('' when none or not observed)."""
        return "\n".join(self.messages or ())


class Bot(Protocol):
    """A bot the harness talks to. `kind` is the versioned kind name; `observes` what its turns report."""

    kind: str
    observes: frozenset[Observation]

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        """Send one customer message in the bot-side conversation `conversation_id`; the bot's reaction.

        Raises BotUnreachable / BotRefused (harness.errors) when the run cannot go on."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Vocabulary:
    """What an eval set may name when it runs against a bot: its intents, handoff queues and escalation rules."""

    intents: tuple[str, ...]
    queues: tuple[str, ...]
    rules: tuple[str, ...]
    source: str
    """Where the names come from, for messages (`intents/ and bot/escalation.yml`, `domain.yml and handoff.yml`)."""


class VocabularySettings(BaseModel):
    """Names an eval set may use against a bot whose vocabulary the harness cannot read from the bot itself
    (the `vocabulary:` key of a `bot:` section)."""

    model_config = ConfigDict(extra="forbid")

    intents: list[str] = []
    queues: list[str] = []
    rules: list[str] = []


@dataclass(frozen=True)
class HttpOptions:
    """How an HTTP bot kind talks: per-turn timeout, retries of transient failures, connection pool."""

    timeout_s: float = 30.0
    retries: int = 3
    """Retries of a request that certainly did not reach the bot (connection refused) or got 503."""
    backoff_s: float = 0.5
    """First retry delay in seconds; doubles each retry."""
    max_connections: int = 16
    transport: Any = None
    """An httpx transport to use instead of the network (`httpx.MockTransport` in tests)."""
