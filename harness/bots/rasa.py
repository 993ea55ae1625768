"""Bot kind `rasa`: any stock Rasa 3.x assistant, unchanged, served with `rasa run --enable-api [--auth-token T]`.

Each customer turn is two requests. The message goes to the REST channel (`POST /webhooks/rest/webhook`, whose
answer is the list of bot messages and whose time is the turn's latency); then the conversation's tracker
(`GET /conversations/<id>/tracker`, Rasa's HTTP API) gives what the bot did with it: the events after the turn's
`user` event hold the intent, its confidence and ranking, the actions run and the slots set; the tracker state
holds the active form. Handoffs, which stock Rasa has no word for, are recognised by the bot's handoff mapping
(`harness.bots.handoff_mapping`); without one this kind observes no handoffs.

What Rasa's wire does that the harness must know:
- the REST channel answers `200 []` when an action crashes or the bot says nothing: recorded as `empty_reply`,
  with the tracker's observation still read;
- the HTTP API does not percent-decode path parameters (Sanic 21.12), so the conversation id goes into the
  tracker URL as it is (RFC 3986 path characters such as `:` unquoted), and the tracker's `sender_id` is checked;
- `--auth-token` guards the HTTP API only (passed as `?token=`), never the REST channel.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from harness.bots.base import BotTurn, HttpOptions, RankedIntent, Vocabulary
from harness.bots.handoff_mapping import HandoffMapping, check_against_domain, detect_handoff, load_handoff_mapping
from harness.bots.http import HttpClient
from harness.bots.rasa_domain import eval_intents, find_domain, load_domain
from harness.errors import BotRefused
from harness.records import Observation, TurnStatus

DEFAULT_REST_PATH = "/webhooks/rest/webhook"
DEFAULT_FALLBACK_ACTIONS = ("action_default_fallback", "action_two_stage_fallback")
DEFAULT_FALLBACK_INTENTS = ("nlu_fallback",)
PATH_CHARACTERS = "/!$&'()*+,;=:@"
"""Characters besides letters, digits and `_.-~` that RFC 3986 allows unquoted in a URL path."""
START_HINT = "is it running? (in the bot's folder: `rasa run --enable-api --auth-token <token>`)"

OBSERVES = frozenset(
    {
        Observation.messages,
        Observation.intent,
        Observation.ranking,
        Observation.fallback,
        Observation.actions,
        Observation.slots,
        Observation.handoff,
        Observation.handoff_rule,
        Observation.active_form,
        Observation.model,
    }
)
"""The most this kind observes. A bot's own `observes` drops `handoff` without a handoff mapping and
`handoff_rule` when the mapping declares no rules; it never observes tickets."""


class NoHandoffMapping(UserWarning):
    """A rasa bot is measured without a handoff mapping, so no handoff can be observed."""


class RasaSettings(BaseModel):
    """The `bot:` section of a run configuration for `kind: rasa`.

    In a run configuration, relative paths (`project`, `domain`, `handoff`) are relative to the repository root,
    as `eval_sets` is (`harness.project.config.BOT_PATHS`); settings built directly take them as given.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str = "rasa"
    url: str
    """The Rasa server's root, `http://HOST:PORT` (a trailing slash is dropped)."""
    token_env: str = "RASA_AUTH_TOKEN"
    """The environment variable holding the token given to `rasa run --auth-token`; unset or empty: no token."""
    project: Path | None = None
    """The bot's folder, holding `domain.yml` or `domain/` (the eval sets' intents come from its domain)."""
    domain: Path | None = None
    """The domain file or folder, when it is not `<project>/domain.yml` or `<project>/domain/`."""
    handoff: Path | None = None
    """The handoff mapping (`handoff.yml`); without it no handoff is observed (a warning says so)."""
    rest_path: str = DEFAULT_REST_PATH
    """The REST channel's path under the root (another path for a REST channel mounted elsewhere)."""
    fallback_actions: list[str] = list(DEFAULT_FALLBACK_ACTIONS)
    """Actions whose running in a turn means the bot fell back."""
    fallback_intents: list[str] = list(DEFAULT_FALLBACK_INTENTS)
    """Intents whose recognition means the bot fell back (the FallbackClassifier's `nlu_fallback`)."""

    @field_validator("url")
    @classmethod
    def _root(cls, url: str) -> str:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL; give the Rasa server's root, http://HOST:PORT")
        if "/webhooks/" in url:
            root = url.split("/webhooks/")[0]
            raise ValueError(
                f"{url} is a channel's webhook; give the Rasa server's root ({root}): the harness posts to "
                "the REST channel at `rest_path` and reads the tracker from the HTTP API beside it"
            )
        return url

    @field_validator("rest_path")
    @classmethod
    def _path(cls, path: str) -> str:
        return "/" + path.strip("/")

    @model_validator(mode="after")
    def _domain_somewhere(self) -> RasaSettings:
        if self.project is None and self.domain is None:
            raise ValueError("give `project` (the bot's folder, with domain.yml or domain/) or `domain`")
        return self


def observes_for(mapping: HandoffMapping | None) -> frozenset[Observation]:
    """What a rasa bot with this handoff mapping observes (see OBSERVES)."""
    observes = OBSERVES - {Observation.handoff, Observation.handoff_rule}
    if mapping is not None:
        observes |= {Observation.handoff}
        if mapping.declares_rules:
            observes |= {Observation.handoff_rule}
    return frozenset(observes)


@dataclass
class RasaBot:
    """A stock Rasa server over its REST channel and HTTP API (see the module docstring)."""

    url: str
    """The server's root, `http://HOST:PORT`."""
    token: str = ""
    """The `--auth-token` of the HTTP API; '' when the server has none."""
    mapping: HandoffMapping | None = None
    options: HttpOptions = field(default_factory=HttpOptions)
    rest_path: str = DEFAULT_REST_PATH
    fallback_actions: tuple[str, ...] = DEFAULT_FALLBACK_ACTIONS
    fallback_intents: tuple[str, ...] = DEFAULT_FALLBACK_INTENTS
    kind: str = "rasa.v1"
    observes: frozenset[Observation] = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.observes = observes_for(self.mapping)
        self._http = HttpClient(self.options, {}, START_HINT)
        self._status_model: str | None = None
        self._status_read = False
        self._status_lock = asyncio.Lock()

    @property
    def webhook(self) -> str:
        return self.url + self.rest_path

    async def send(self, conversation_id: str, text: str) -> BotTurn:
        exchange = await self._http.request("POST", self.webhook, json={"sender": conversation_id, "message": text})
        if exchange.response is None:
            assert exchange.failed is not None
            return exchange.failed
        response = exchange.response
        turn, payloads = parse_rest_reply(
            response.status_code, response.content, exchange.latency_ms, exchange.attempts
        )
        if turn.status is TurnStatus.channel_error:
            _refuse_webhook(response.status_code, self.webhook)
            return turn
        tracker = await self._tracker(conversation_id)
        if isinstance(tracker, str):
            return replace(turn, status=TurnStatus.channel_error, error=tracker)
        observed = observe_tracker(
            tracker,
            conversation_id,
            text,
            TrackerReading(self.mapping, self.fallback_actions, self.fallback_intents, payloads),
        )
        if isinstance(observed, str):
            return replace(turn, status=TurnStatus.channel_error, error=observed)
        if observed.model is None:
            observed = replace(observed, model=await self._model_from_status())
        return replace(
            observed,
            status=turn.status,
            latency_ms=turn.latency_ms,
            attempts=turn.attempts,
            messages=turn.messages,
            http_status=turn.http_status,
            error=turn.error,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _api_params(self, **params: str) -> dict[str, str]:
        return {**params, "token": self.token} if self.token else params

    async def _tracker(self, conversation_id: str) -> dict[str, Any] | str:
        """The tracker after the turn, or why it could not be read (raises BotRefused when it never will be)."""
        url = tracker_url(self.url, conversation_id)
        exchange = await self._http.request("GET", url, params=self._api_params(include_events="ALL"))
        if exchange.response is None:
            assert exchange.failed is not None
            return f"the bot answered but its tracker could not be read: {exchange.failed.error}"
        status = exchange.response.status_code
        if status in (401, 403):
            raise BotRefused(
                f"Rasa's HTTP API at {self.url} refused the harness ({status}) when it read a tracker: start rasa "
                "with --enable-api --auth-token <token> and give that token in the environment variable named "
                "by bot.token_env (RASA_AUTH_TOKEN by default)"
            )
        if status == 404:
            raise BotRefused(
                f"{url} answered 404: the harness reads what the bot did from Rasa's HTTP API; start rasa with "
                "--enable-api (and is bot.url the server's root?)"
            )
        if status == 409:
            raise BotRefused(f"the Rasa server at {self.url} has no model loaded (409 from its HTTP API)")
        if status != 200:
            head = exchange.response.content[:200].decode(errors="replace")
            return f"the bot answered but its tracker could not be read: HTTP {status}: {head}"
        try:
            body = exchange.response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return "the bot answered but its tracker is not a Rasa tracker (no `events` list)"
        if body.get("sender_id") not in (None, conversation_id):
            raise BotRefused(
                f"Rasa returned the tracker of {body.get('sender_id')!r} for conversation {conversation_id!r}; "
                "the conversation id has characters Rasa's HTTP API cannot take in a URL"
            )
        return body

    async def _model_from_status(self) -> str | None:
        """The server's model id from `GET /status`, read once (None when it cannot be read)."""
        async with self._status_lock:
            if not self._status_read:
                self._status_read = True
                exchange = await self._http.request("GET", self.url + "/status", params=self._api_params())
                response = exchange.response
                if response is not None and response.status_code == 200:
                    try:
                        body = response.json()
                    except ValueError:
                        body = {}
                    if isinstance(body, dict):
                        self._status_model = body.get("model_id") or body.get("model_file")
            return self._status_model


def tracker_url(root: str, conversation_id: str) -> str:
    """The tracker URL of a conversation: the id as it is, only characters outside RFC 3986's path set quoted
    (Rasa does not decode them, so such an id cannot round-trip; the tracker's `sender_id` check catches it)."""
    return f"{root}/conversations/{quote(conversation_id, safe=PATH_CHARACTERS)}/tracker"


def _refuse_webhook(status: int, url: str) -> None:
    if status in (401, 403):
        raise BotRefused(
            f"{url} refused the harness ({status}); Rasa's REST channel takes no token, so something in front of "
            "the bot (a proxy or a custom channel) wants credentials"
        )
    if status == 404:
        raise BotRefused(
            f"{url} answered 404: is the REST channel enabled in the bot's credentials.yml (`rest:`)? "
            "is bot.url the server's root, and bot.rest_path the channel's path?"
        )


def parse_rest_reply(http_status: int, content: bytes, latency_ms: float, attempts: int) -> tuple[BotTurn, list[Any]]:
    """The REST channel's answer as a BotTurn with messages only (`ok`, `empty_reply` for `[]`, or
    `channel_error` for an error status or a body that is not a list of messages) and its custom payloads.

    Each message is its `text`, or, without text, its other parts (image, buttons, custom, attachment) as compact
    JSON; buttons that come with a text are not in the messages.
    """

    def failed(error: str) -> tuple[BotTurn, list[Any]]:
        return BotTurn(TurnStatus.channel_error, latency_ms, attempts, http_status=http_status, error=error), []

    if http_status != 200:
        return failed(f"HTTP {http_status}: {content[:200].decode(errors='replace')}")
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if not isinstance(body, list) or not all(isinstance(m, dict) for m in body):
        return failed(f"HTTP 200 with a body that is not a Rasa REST reply: {content[:200].decode(errors='replace')}")
    messages = tuple(message_text(m) for m in body)
    payloads = [m["custom"] for m in body if m.get("custom") is not None]
    if not messages:
        error = "HTTP 200 with no bot message (Rasa answers [] when an action fails or the bot says nothing)"
        return BotTurn(TurnStatus.empty_reply, latency_ms, attempts, messages=(), http_status=200, error=error), []
    return BotTurn(TurnStatus.ok, latency_ms, attempts, messages=messages, http_status=200), payloads


def message_text(message: dict[str, Any]) -> str:
    """One REST message as a text: its `text`, else its other parts as compact JSON."""
    text = message.get("text")
    if isinstance(text, str):
        return text
    parts = {k: v for k, v in message.items() if k != "recipient_id" and v is not None}
    return json.dumps(parts, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class TrackerReading:
    """How to read a tracker: the handoff mapping, what counts as a fallback, and the turn's custom payloads."""

    mapping: HandoffMapping | None
    fallback_actions: tuple[str, ...] = DEFAULT_FALLBACK_ACTIONS
    fallback_intents: tuple[str, ...] = DEFAULT_FALLBACK_INTENTS
    payloads: list[Any] = field(default_factory=list)


def observe_tracker(tracker: dict[str, Any], conversation_id: str, text: str, reading: TrackerReading) -> BotTurn | str:
    """What the bot did with the message `text`, from the tracker after the turn (state `as_dict` with events);
    a BotTurn with status ok and no messages or latency, or why the turn cannot be read from this tracker.

    The turn's events are those from the last `user` event on, which must be the message sent.
    """
    events = [e for e in tracker.get("events") or [] if isinstance(e, dict)]
    last_user = next((i for i in range(len(events) - 1, -1, -1) if events[i].get("event") == "user"), None)
    if last_user is None:
        return f"the tracker of {conversation_id!r} has no user message after the bot answered"
    turn_events = events[last_user:]
    user = turn_events[0]
    if (user.get("text") or "").strip() != text.strip():
        return (
            f"the last user message in the tracker of {conversation_id!r} is {user.get('text')!r}, not the message "
            "sent: is something else writing to this conversation?"
        )
    loop = tracker.get("active_loop") or {}
    return read_turn(
        turn_events,
        events,
        reading,
        paused=bool(tracker.get("paused")),
        active_loop=(loop.get("name") or None) if isinstance(loop, dict) else None,
    )


def read_turn(
    turn_events: list[dict[str, Any]],
    history: list[dict[str, Any]],
    reading: TrackerReading,
    *,
    paused: bool = False,
    active_loop: str | None = None,
) -> BotTurn:
    """What the bot did in one turn, from Rasa events alone (pure; shared by the `rasa` kind and the production
    importer): a BotTurn with status ok and no messages or latency.

    `turn_events`: the turn's events in `as_dict` form, from its `user` event on; `history`: the conversation's
    events up to the end of the turn (ending with `turn_events`), for slot values before the turn; `paused`: the
    conversation was paused after the turn (Rasa's ConversationPaused); `active_loop`: the form active after it.
    """
    user = turn_events[0] if turn_events else {}
    parse_data = user.get("parse_data") or {}
    intent = parse_data.get("intent") or {}
    ranking = tuple(
        RankedIntent(r["name"], float(r.get("confidence") or 0.0))
        for r in parse_data.get("intent_ranking") or []
        if isinstance(r, dict) and r.get("name")
    )
    actions = tuple(
        e["name"] for e in turn_events if e.get("event") == "action" and e.get("name") and e["name"] != "action_listen"
    )
    slots = {e["name"]: e.get("value") for e in turn_events if e.get("event") == "slot" and e.get("name")}
    intent_name = intent.get("name")
    fallback = intent_name in reading.fallback_intents or any(a in reading.fallback_actions for a in actions)
    handoff = (
        detect_handoff(reading.mapping, turn_events, {"events": history}, reading.payloads)
        if reading.mapping is not None
        else None
    )
    paused = paused and reading.mapping is not None and reading.mapping.observes_pause
    model = next(
        (
            e["metadata"]["model_id"]
            for e in turn_events
            if isinstance(e.get("metadata"), dict) and e["metadata"].get("model_id")
        ),
        None,
    )
    confidence = intent.get("confidence")
    return BotTurn(
        TurnStatus.ok,
        0.0,
        intent=intent_name,
        confidence=float(confidence) if confidence is not None else None,
        ranking=ranking,
        fallback=fallback,
        actions=actions,
        slots_set=slots,
        handoff=handoff,
        state="handed_off" if handoff is not None or paused else "active",
        active_form=active_loop,
        model=model,
    )


def connect_rasa(settings: RasaSettings, token: str, options: HttpOptions) -> RasaBot:
    """A RasaBot for these settings (nothing sent yet); loads the handoff mapping, or warns that there is none.

    Raises InputError for an invalid mapping.
    """
    mapping = load_handoff_mapping(settings.handoff) if settings.handoff is not None else None
    if mapping is None:
        warnings.warn(
            "bot.handoff is not set, so this rasa bot observes no handoffs: escalation KPIs are undefined and a "
            "conversation the bot hands off is replayed to its end; write a handoff mapping (handoff.yml, see "
            "harness/bots/handoff_mapping.py) and set bot.handoff to its path",
            NoHandoffMapping,
            stacklevel=2,
        )
    return RasaBot(
        settings.url,
        token,
        mapping,
        options,
        settings.rest_path,
        tuple(settings.fallback_actions),
        tuple(settings.fallback_intents),
    )


def rasa_vocabulary(settings: RasaSettings, root: Path) -> Vocabulary:
    """What eval sets may name against this bot: the domain's intents (not `nlu_fallback`), and the queues and
    rules the handoff mapping can produce. `root` is unused: a run configuration has already made the paths
    absolute (`RunConfig.resolved`).

    Raises InputError for a missing or invalid domain or mapping, or a mapping naming what the domain lacks.
    """
    domain = load_domain(find_domain(settings.project, settings.domain))
    if settings.handoff is None:
        return Vocabulary(eval_intents(domain), (), (), domain.source)
    mapping = load_handoff_mapping(settings.handoff)
    check_against_domain(mapping, intents=domain.intents, actions=domain.known_actions(), slots=domain.slots)
    return Vocabulary(
        eval_intents(domain), mapping.queue_names(), mapping.rule_names(), f"{domain.source} and {mapping.path}"
    )
