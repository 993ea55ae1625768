"""The bot kinds the harness can measure, registered under versioned names, and how a run configuration's
`bot:` section becomes a connected `Bot` and the vocabulary its eval sets may use.

| kind        | talks to                                         | vocabulary from                       |
|-------------|--------------------------------------------------|---------------------------------------|
| `reference` | the reference bot's channel                      | intents/ and bot/escalation.yml       |
| `rasa`      | any stock Rasa 3.x (REST channel + HTTP API)     | the bot's domain and handoff mapping  |
| `http_json` | any HTTP bot answering JSON (JMESPath mapping)   | the configuration                     |
| `scripted`  | a Python function (tests)                        | the configuration                     |
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.bots.base import Bot, HttpOptions, Vocabulary, VocabularySettings
from harness.bots.handoff_mapping import load_handoff_mapping
from harness.bots.http_json import HttpJsonSettings, connect_http_json, observes_of
from harness.bots.rasa import OBSERVES as RASA_OBSERVES
from harness.bots.rasa import START_HINT as RASA_START_HINT
from harness.bots.rasa import RasaSettings, connect_rasa, observes_for, rasa_vocabulary
from harness.bots.reference import OBSERVES as REFERENCE_OBSERVES
from harness.bots.reference import ReferenceBot, ReferenceSettings
from harness.bots.scripted import ScriptedBot
from harness.errors import InputError
from harness.project.bot_config import load_queue_config
from harness.project.config import RunConfig
from harness.project.intents import load_catalog
from harness.project.paths import ProjectPaths
from harness.project.problems import problem_message, yaml_location
from harness.records import ALL_OBSERVATIONS, Observation
from harness.registry import Registry


@dataclass(frozen=True)
class BotKind:
    """One kind of bot: what it observes, its settings, how to connect and where its vocabulary comes from."""

    name: str
    """Versioned, for example `rasa.v1`."""
    summary: str
    observes: frozenset[Observation]
    settings: type[BaseModel]
    """Validates the run configuration's `bot:` section (unknown keys rejected)."""
    connect: Callable[[Any, str, HttpOptions], Bot]
    """(settings, token, HTTP options) -> a Bot; the token is '' when none is set."""
    vocabulary: Callable[[Any, Path], Vocabulary]
    """(settings, repository root) -> what eval sets may name."""
    token_env: str | None = None
    """The default environment variable of the bot's token; None when the kind has none."""
    token_required: bool = False
    """True when the bot cannot be talked to without a token."""
    start_hint: str = "is it running?"
    observes_of: Callable[[Any], frozenset[Observation]] | None = None
    """What a bot with these settings observes, when that depends on them (`observes` is then the most)."""


class ScriptedSettings(BaseModel):
    """`kind: scripted`: `script` is `package.module:function`, called as (conversation id, text, turn number)
    and returning a BotTurn (harness.bots.scripted)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "scripted"
    url: str = "scripted:"
    token_env: str | None = None
    script: str = Field(pattern=r"^[\w.]+:\w+$")
    vocabulary: VocabularySettings = VocabularySettings()


def reference_vocabulary(settings: ReferenceSettings, root: Path) -> Vocabulary:
    paths = ProjectPaths(root)
    queues = load_queue_config(paths.escalation_policy)
    catalog = load_catalog(paths.intents, known_queues=queues.queues)
    return Vocabulary(tuple(catalog.names()), queues.queues, queues.rules, "intents/ and bot/escalation.yml")


def connect_scripted(settings: ScriptedSettings, token: str, options: HttpOptions) -> Bot:
    module, function = settings.script.split(":")
    try:
        script = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise InputError("cannot load the scripted bot", [f"bot.script: {settings.script}: {exc}"]) from None
    return ScriptedBot(script)


def rasa_observes_of(settings: RasaSettings) -> frozenset[Observation]:
    """A rasa bot observes handoffs only with a handoff mapping (and rules only when it declares them)."""
    return observes_for(load_handoff_mapping(settings.handoff) if settings.handoff is not None else None)


def configured_vocabulary(settings: Any, root: Path) -> Vocabulary:
    v = settings.vocabulary
    return Vocabulary(tuple(v.intents), tuple(v.queues), tuple(v.rules), "the bot section's `vocabulary`")


BOT_KINDS: Registry[BotKind] = Registry("bot kind")
BOT_KINDS.add(
    "reference.v1",
    BotKind(
        "reference.v1",
        "the reference bot's channel",
        REFERENCE_OBSERVES,
        ReferenceSettings,
        lambda s, token, options: ReferenceBot(s.url, token, options),
        reference_vocabulary,
        token_env="REFERENCE_CHANNEL_TOKEN",
        token_required=True,
        start_hint="is it running? (`make bot` starts the reference bot)",
    ),
)
BOT_KINDS.add(
    "scripted.v1",
    BotKind(
        "scripted.v1",
        "a Python function (tests)",
        ALL_OBSERVATIONS,
        ScriptedSettings,
        connect_scripted,
        configured_vocabulary,
    ),
)
BOT_KINDS.add(
    "http_json.v1",
    BotKind(
        "http_json.v1",
        "any HTTP bot answering JSON (JMESPath mapping)",
        ALL_OBSERVATIONS,  # the most it can observe; a bot observes what its settings map (http_json.observes_of)
        HttpJsonSettings,
        connect_http_json,
        configured_vocabulary,
        observes_of=observes_of,
    ),
)
BOT_KINDS.add(
    "rasa.v1",
    BotKind(
        "rasa.v1",
        "any stock Rasa 3.x assistant (REST channel + HTTP API)",
        RASA_OBSERVES,  # the most it can observe; a bot drops handoff(_rule) without a mapping (rasa.observes_for)
        RasaSettings,
        connect_rasa,
        rasa_vocabulary,
        token_env="RASA_AUTH_TOKEN",
        start_hint=RASA_START_HINT,
        observes_of=rasa_observes_of,
    ),
)


def bot_settings(config: RunConfig, where: str = "bot") -> tuple[BotKind, Any]:
    """The configured bot's kind and validated settings; InputError naming each bad key (with did-you-mean for
    the kind)."""
    from harness.errors import UnknownName

    raw = config.bot.model_dump(exclude_none=True)
    try:
        kind = BOT_KINDS.get(raw.get("kind", "reference"))
    except UnknownName as exc:
        raise InputError("unknown bot kind", [f"{where}.kind: {exc}"]) from None
    try:
        settings = kind.settings.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"invalid settings for a {kind.name} bot",
            [f"{where}.{yaml_location(e['loc'], {})}: {problem_message(kind.settings, e)}" for e in exc.errors()],
        ) from None
    return kind, settings


def observes(config: RunConfig) -> frozenset[Observation]:
    """What the configured bot observes (its kind's `observes_of` for these settings, else the kind's set)."""
    kind, settings = bot_settings(config)
    return kind.observes_of(settings) if kind.observes_of else kind.observes


def token_env(config: RunConfig) -> str | None:
    """The environment variable of the configured bot's token: the bot section's, else the kind's default."""
    kind, _ = bot_settings(config)
    return config.bot.token_env or kind.token_env


def connect(config: RunConfig, token: str | None = None, transport: Any = None) -> Bot:
    """The configured bot, ready to send (nothing is sent yet). `token` overrides the one in the environment.

    Raises InputError for invalid settings or a missing token the kind needs.
    """
    kind, settings = bot_settings(config)
    variable = config.bot.token_env or kind.token_env
    token = token or (os.environ.get(variable, "") if variable else "")
    if kind.token_required and not token:
        raise InputError(
            "no token for the bot",
            [
                f"set ${variable}, pass --token"
                + (", or use --serve-bot to start the reference bot" if kind.name.startswith("reference") else "")
            ],
        )
    r = config.replay
    options = HttpOptions(r.turn_timeout_s, r.retries, r.backoff_s, max(4, r.concurrency), transport)
    return kind.connect(settings, token, options)


def vocabulary(config: RunConfig, root: Path) -> Vocabulary:
    """What eval sets may name when run against the configured bot."""
    kind, settings = bot_settings(config)
    return kind.vocabulary(settings, root)
